//! Schedules (`local:Schedule`) end to end: the real provider process, the real daemon and a
//! real Python function that records every event it receives in a file.

mod common;

use std::path::Path;

use common::*;
use jiff::Timestamp;
use serde_json::{Value, json};

/// Appends each event to `$OUT` (one JSON line) and returns it.
const PY_RECORD: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\n")
    return {"got": event, "request_id": context.aws_request_id}
"#;

fn recorder(p: &Project, prov: &mut Provider, name: &str) -> std::path::PathBuf {
    p.write("functions/rec/app.py", PY_RECORD);
    let out = p.dir.join(format!("{name}.jsonl"));
    prov.function(
        name,
        "functions/rec",
        "python3",
        "app.handler",
        json!({"environment": {"OUT": out.to_string_lossy()}}),
    );
    out
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn schedule(expression: &str, function: &str, payload: Value) -> Value {
    json!({"schedule": expression, "function": function, "payload": payload, "enabled": true})
}

fn read(prov: &mut Provider, name: &str) -> Value {
    prov.call("read", json!({"type": "local:Schedule", "name": name, "id": name, "inputs": {}}))
        .unwrap()["resource"]
        .clone()
}

fn run(p: &Project, name: &str) -> Result<skyform_local::InvokeOutput, skyform_local::LocalError> {
    rt().block_on(skyform_local::run_schedule(&p.dir, "dev", name))
}

/// `at(…)` for `secs` seconds from now, in `tz`.
fn at_in(secs: i64, tz: &str) -> (String, Timestamp) {
    let t = Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    let t = Timestamp::from_second(t.as_second()).unwrap();
    let local = jiff::tz::TimeZone::get(tz).unwrap().to_datetime(t);
    (format!("at({})", local.strftime("%Y-%m-%dT%H:%M:%S")), t)
}

#[test]
fn run_now_sends_the_payload_scheduler_would_send() {
    let p = Project::new("sched-run");
    let mut prov = Provider::start(&p, "dev");
    let out = recorder(&p, &mut prov, "rec");

    let payload = json!({"kind": "nightly", "at": "<aws.scheduler.scheduled-time>",
                         "arn": "<aws.scheduler.schedule-arn>", "attempt": "<aws.scheduler.attempt-number>"});
    let (inputs, id, outputs) =
        prov.create("local:Schedule", "nightly", schedule("cron(0 3 * * ? *)", "rec", payload));
    assert_eq!(id, "nightly");
    assert_eq!(inputs["timezone"], "UTC");
    assert_eq!(outputs["arn"], "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly");
    // The next 03:00 UTC.
    // The next run is the daemon's (`local status`), not an output: it changes with time.
    assert_eq!(outputs.as_object().unwrap().keys().collect::<Vec<_>>(), ["arn", "name"]);
    let nightly_next = read_view(&p, "nightly")["next_run"].clone();
    let next: Timestamp = nightly_next.as_str().unwrap().parse().unwrap();
    let now = Timestamp::now();
    assert!(next > now && next.as_second() - now.as_second() <= 86400, "{next}");
    assert_eq!(next.as_second() % 86400, 3 * 3600);

    let before = Timestamp::now().as_second();
    let r = run(&p, "nightly").unwrap();
    assert!(r.function_error.is_none());
    let got: Value = serde_json::from_slice(&r.payload).unwrap();
    let ev = &got["got"];
    assert_eq!(ev["kind"], "nightly");
    assert_eq!(ev["arn"], "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly");
    assert_eq!(ev["attempt"], "1");
    let at: Timestamp = ev["at"].as_str().unwrap().parse().unwrap();
    assert!(at.as_second() >= before && at.as_second() <= Timestamp::now().as_second(), "{at}");
    assert_eq!(got["request_id"].as_str().unwrap(), r.request_id);
    assert_eq!(events(&out).len(), 1);

    // Without a payload the function gets `{}`, as from Scheduler with no `Input`.
    prov.create("local:Schedule", "bare", schedule("rate(7 days)", "rec", Value::Null));
    let r = run(&p, "bare").unwrap();
    let got: Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(got["got"], json!({}));

    // A run now does not move the next run.
    assert_eq!(read_view(&p, "nightly")["next_run"], nightly_next);
    assert_eq!(read(&mut prov, "nightly")["outputs"], outputs);

    // Unknown schedule: a clear error.
    let e = run(&p, "nope").unwrap_err();
    assert!(e.message.contains("no schedule `nope` in stack `dev`"), "{}", e.message);
}

#[test]
fn an_at_schedule_fires_once_for_real_in_its_time_zone() {
    let p = Project::new("sched-at");
    let mut prov = Provider::start(&p, "dev");
    let out = recorder(&p, &mut prov, "rec");
    // 3 s ahead, written in Tokyo's local time: firing on time proves the zone is applied.
    let (expr, when) = at_in(3, "Asia/Tokyo");
    let mut inputs = schedule(&expr, "rec", json!({"t": "<aws.scheduler.scheduled-time>"}));
    inputs["timezone"] = json!("Asia/Tokyo");
    let (_, _, outputs) = prov.create("local:Schedule", "once", inputs);
    assert_eq!(read_view(&p, "once")["next_run"], skyform_local::schedule::format_utc(when));

    assert!(eventually(15, || !events(&out).is_empty()), "the at() schedule did not fire");
    let fired_at = Timestamp::now();
    let evs = events(&out);
    assert_eq!(evs, vec![json!({"t": skyform_local::schedule::format_utc(when)})]);
    assert!(fired_at >= when, "fired early: {fired_at} < {when}");
    assert!(fired_at.as_second() - when.as_second() < 5, "fired late: {fired_at} vs {when}");

    // Once: nothing left, and no second event.
    assert!(eventually(5, || read_view(&p, "once")["next_run"].is_null()));
    // The outputs did not change with time: `refresh` sees no drift.
    assert_eq!(read(&mut prov, "once")["outputs"], outputs);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(events(&out).len(), 1);
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    let s = st.schedules.iter().find(|s| s.name == "once").unwrap();
    assert_eq!((s.runs, s.next_run.as_deref(), s.timezone.as_str()), (1, None, "Asia/Tokyo"));
}

#[test]
fn a_rate_starts_at_once_and_a_disabled_schedule_does_not_run() {
    let p = Project::new("sched-rate");
    let mut prov = Provider::start(&p, "dev");
    let out = recorder(&p, &mut prov, "rec");
    let other = recorder(&p, &mut prov, "paused");

    let mut off = schedule("rate(1 minute)", "paused", json!({"who": "paused"}));
    off["enabled"] = json!(false);
    let (_, _, off_out) = prov.create("local:Schedule", "off", off);
    assert!(off_out.get("next_run").is_none() && read_view(&p, "off")["next_run"].is_null(), "{off_out}");

    // Scheduler starts a rate schedule without a start date at once.
    let t0 = Timestamp::now();
    let (_, _, outputs) =
        prov.create("local:Schedule", "tick", schedule("rate(1 minute)", "rec", json!({"n": 1})));
    assert!(eventually(10, || events(&out).len() == 1), "rate(1 minute) did not fire at once");
    assert_eq!(events(&out), vec![json!({"n": 1})]);
    // The next run is a minute after the first, which was at once.
    let next: Timestamp = read_view(&p, "tick")["next_run"].as_str().unwrap().parse().unwrap();
    assert!((next.as_second() - t0.as_second() - 60).abs() <= 2, "{next} vs {t0}");
    assert_eq!(read(&mut prov, "tick")["outputs"], outputs);

    // The disabled one never ran, but can be run by hand.
    assert!(events(&other).is_empty());
    run(&p, "off").unwrap();
    assert_eq!(events(&other), vec![json!({"who": "paused"})]);
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    let s = st.schedules.iter().find(|s| s.name == "off").unwrap();
    assert!(!s.enabled && s.next_run.is_none());

    // Changing only the payload keeps the rate's rhythm; delete removes it.
    let news = schedule("rate(1 minute)", "rec", json!({"n": 2}));
    let up = prov
        .call("update", json!({"type": "local:Schedule", "name": "tick", "id": "tick", "olds": {}, "news": news, "old_outputs": {}}))
        .unwrap();
    assert_eq!(up["outputs"], outputs);
    assert_eq!(read_view(&p, "tick")["next_run"], json!(skyform_local::schedule::format_utc(next)));
    prov.call(
        "delete",
        json!({"type": "local:Schedule", "name": "tick", "id": "tick", "inputs": {}, "outputs": {}}),
    )
    .unwrap();
    assert!(read(&mut prov, "tick").is_null());
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    assert!(st.schedules.iter().all(|s| s.name != "tick"));
}

#[test]
fn bad_schedules_fail_at_check_with_the_expected_form() {
    let p = Project::new("sched-check");
    let mut prov = Provider::start(&p, "dev");
    let failures = |prov: &mut Provider, inputs: Value| -> Vec<(String, String)> {
        let r = prov.check("local:Schedule", "s", inputs);
        r["failures"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| (f["property"].as_str().unwrap().to_string(), f["reason"].as_str().unwrap().to_string()))
            .collect()
    };
    let f = failures(&mut prov, schedule("cron(0 12 * * *)", "f", Value::Null));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "schedule");
    assert!(
        f[0].1.starts_with(
            "bad schedule expression \"cron(0 12 * * *)\": cron takes six fields (minutes hours day-of-month \
             month day-of-week year), e.g. cron(0 12 * * ? *)"
        ),
        "{}",
        f[0].1
    );
    let f = failures(&mut prov, schedule("cron(0 12 * * * *)", "f", Value::Null));
    assert!(f[0].1.contains("exactly one of day-of-month and day-of-week must be `?`"), "{f:?}");
    let f = failures(&mut prov, schedule("rate(1 minutes)", "f", Value::Null));
    assert!(f[0].1.contains("write rate(1 minute)"), "{f:?}");
    let f = failures(&mut prov, schedule("at(2030-13-01T00:00:00)", "f", Value::Null));
    assert!(f[0].1.contains("e.g. at(2030-01-31T12:00:00)"), "{f:?}");
    let f = failures(&mut prov, schedule("every day", "f", Value::Null));
    assert!(f[0].1.contains("write rate(5 minutes), cron(0 12 * * ? *) or at(2030-01-31T12:00:00)"), "{f:?}");
    let mut tz = schedule("rate(1 hour)", "f", Value::Null);
    tz["timezone"] = json!("Europe/Atlantis");
    let f = failures(&mut prov, tz);
    assert_eq!(f[0].0, "timezone");
    assert!(f[0].1.contains("use an IANA name"), "{f:?}");
    let f = failures(&mut prov, schedule("rate(1 hour)", "f", json!("not json")));
    assert_eq!(f[0].0, "payload");

    // A schedule whose function is not deployed fails at create, saying what to do.
    let checked = prov.check("local:Schedule", "s", schedule("rate(1 hour)", "ghost", Value::Null));
    let e = prov
        .call("create", json!({"type": "local:Schedule", "name": "s", "inputs": checked["inputs"]}))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("targets function `ghost`, which is not deployed in stack `dev`"), "{msg}");
    assert!(read(&mut prov, "s").is_null());
}

#[test]
fn schedules_survive_a_restart_and_a_missed_at_runs_once_late() {
    let p = Project::new("sched-restart");
    let mut prov = Provider::start(&p, "dev");
    let out = recorder(&p, &mut prov, "rec");
    let (_, _, cron) = prov.create(
        "local:Schedule",
        "weekly",
        json!({"schedule": "cron(30 9 ? * MON *)", "function": "rec", "payload": null, "enabled": true,
               "timezone": "Europe/Paris"}),
    );
    let cron_next = read_view(&p, "weekly")["next_run"].clone();
    assert!(cron_next.is_string(), "{cron_next}");
    let (expr, when) = at_in(4, "UTC");
    prov.create(
        "local:Schedule",
        "soon",
        schedule(&expr, "rec", json!({"late": "<aws.scheduler.scheduled-time>"})),
    );

    // Down while the at() comes due.
    assert!(skyform_local::stop(&p.dir).unwrap());
    assert!(Timestamp::now() < when, "the daemon took too long to stop for this test");
    let wait = when.as_millisecond() - Timestamp::now().as_millisecond() + 1000;
    std::thread::sleep(std::time::Duration::from_millis(wait as u64));
    assert!(events(&out).is_empty());
    let st = skyform_local::start_with_exe(&p.dir, Some(Path::new(EXE))).unwrap();
    let weekly = st.schedules.iter().find(|s| s.name == "weekly").unwrap();
    assert_eq!(weekly.next_run.as_ref(), cron_next.as_str().map(str::to_string).as_ref());
    assert_eq!(weekly.expression, "cron(30 9 ? * MON *)");

    // The missed at() ran once, at start, with its scheduled time.
    assert!(eventually(10, || events(&out).len() == 1), "the missed at() did not run");
    assert_eq!(events(&out), vec![json!({"late": skyform_local::schedule::format_utc(when)})]);
    assert!(read_view(&p, "soon")["next_run"].is_null());

    // kill -9 too: the schedules come back from schedules.json.
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));
    let r = read(&mut prov, "weekly");
    assert_eq!(r["outputs"], cron);
    assert_eq!(read_view(&p, "weekly")["next_run"], cron_next);
    assert_eq!(r["inputs"]["timezone"], "Europe/Paris");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(events(&out).len(), 1, "the at() ran again after a restart");
}

#[test]
fn the_control_api_refuses_bad_schedules_and_a_corrupt_file_is_named() {
    let p = Project::new("sched-control");
    let mut prov = Provider::start(&p, "dev");
    recorder(&p, &mut prov, "rec");
    let token = std::fs::read_to_string(p.dir.join(".skyform/local/token")).unwrap();
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(p.dir.join(".skyform/local/daemon.json")).unwrap())
            .unwrap();
    let port = info["port"].as_u64().unwrap() as u16;
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: &str| {
        http(port, method, path, &[("Authorization", auth.as_str())], body.as_bytes())
    };

    let r = call("PUT", "/v1/stacks/dev/schedules/s", "{not json");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("bad schedule spec"), "{}", r.text());
    let r =
        call("PUT", "/v1/stacks/dev/schedules/s", r#"{"expression": "cron(0 12 * * ?)", "function": "rec"}"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("cron takes six fields"), "{}", r.text());
    let r = call(
        "PUT",
        "/v1/stacks/dev/schedules/s",
        r#"{"expression": "rate(1 hour)", "function": "rec", "timezone": "Nowhere"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("unknown time zone \"Nowhere\""),
        "{}",
        r.text()
    );
    assert_eq!(call("POST", "/v1/stacks/dev/schedules/s/run", "").status, 404);
    assert_eq!(call("DELETE", "/v1/stacks/dev/schedules/s", "").status, 404);
    assert_eq!(call("POST", "/v1/stacks/dev/schedules/s/pause", "").status, 405);
    assert_eq!(http(port, "GET", "/v1/stacks/dev/schedules/s", &[], b"").status, 401);
    // Nothing half-written.
    assert!(!p.dir.join(".skyform/local/schedules.json").exists());

    // A good one, then a corrupt file: the daemon refuses to start and says which file.
    let r = call("PUT", "/v1/stacks/dev/schedules/s", r#"{"expression": "rate(1 hour)", "function": "rec"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["spec"]["timezone"], "UTC");
    assert!(skyform_local::stop(&p.dir).unwrap());
    std::fs::write(p.dir.join(".skyform/local/schedules.json"), "{garbage").unwrap();
    assert!(skyform_local::start_with_exe(&p.dir, Some(Path::new(EXE))).is_err());
    let log = std::fs::read_to_string(p.dir.join(".skyform/local/daemon.log")).unwrap();
    assert!(log.contains("schedules.json is not a valid schedules file"), "{log}");
    assert!(log.contains("move it away and run `skyform up` again"), "{log}");
}

/// Records each event, then fails until it has seen `FAIL_TIMES` + 1 of them.
const PY_FLAKY: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\n")
    with open(os.environ["OUT"]) as f:
        seen = len(f.readlines())
    if seen <= int(os.environ["FAIL_TIMES"]):
        raise RuntimeError(f"failure {seen}")
    return {"ok": seen}
"#;

#[test]
fn a_failed_run_is_retried_as_lambda_retries_async_invocations() {
    let p = Project::new("sched-retry");
    let mut prov = Provider::start(&p, "dev");
    p.write("functions/flaky/app.py", PY_FLAKY);
    let mut flaky = |name: &str, fail_times: &str| {
        let out = p.dir.join(format!("{name}.jsonl"));
        let env = json!({"OUT": out.to_string_lossy(), "FAIL_TIMES": fail_times});
        prov.function(name, "functions/flaky", "python3", "app.handler", json!({"environment": env}));
        out
    };
    let twice = flaky("twice", "2");
    let always = flaky("always", "99");
    let (expr, when) = at_in(2, "UTC");
    let payload = json!({"at": "<aws.scheduler.scheduled-time>", "id": "<aws.scheduler.execution-id>"});
    prov.create("local:Schedule", "s-twice", schedule(&expr, "twice", payload.clone()));
    prov.create("local:Schedule", "s-always", schedule(&expr, "always", payload));

    // Fails twice, then succeeds on the second retry: three identical events.
    assert!(eventually(20, || events(&twice).len() == 3), "{:?}", events(&twice));
    let evs = events(&twice);
    assert!(evs.iter().all(|e| *e == evs[0]), "{evs:?}");
    assert_eq!(evs[0]["at"], skyform_local::schedule::format_utc(when));
    assert_eq!(evs[0]["id"].as_str().unwrap().len(), 16);
    // Always failing: three attempts, then it gives up.
    assert!(eventually(20, || events(&always).len() == 3));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(events(&always).len(), 3, "more than two retries");

    let view = |name: &str| {
        let st = skyform_local::status(&p.dir).unwrap().unwrap();
        st.schedules.iter().find(|s| s.name == name).unwrap().clone()
    };
    assert_eq!(view("s-twice").runs, 1);
    assert!(eventually(5, || view("s-always").last_run.is_some_and(|l| l.finished)));
    let last = view("s-always").last_run.unwrap();
    assert_eq!(
        (last.error.as_deref(), last.attempts, last.trigger.as_str()),
        (Some("RuntimeError"), 3, "schedule")
    );
    assert_eq!(view("s-twice").last_run.unwrap().error, None);
    assert!(eventually(5, || {
        let last = read_view(&p, "s-always");
        last["last_run"]["attempts"] == 3 && last["last_run"]["error"] == "RuntimeError"
    }));
    let last = read_view(&p, "s-twice");
    assert_eq!(
        (last["last_run"]["attempts"].clone(), last["last_run"]["error"].clone()),
        (json!(3), Value::Null)
    );

    // A run by hand is synchronous and not retried: the error comes back.
    let r = run(&p, "s-always").unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(events(&always).len(), 4);
}

/// The daemon's full view of a schedule (`GET .../schedules/{name}`).
fn read_view(p: &Project, name: &str) -> Value {
    let token = std::fs::read_to_string(p.dir.join(".skyform/local/token")).unwrap();
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(p.dir.join(".skyform/local/daemon.json")).unwrap())
            .unwrap();
    let port = info["port"].as_u64().unwrap() as u16;
    http(
        port,
        "GET",
        &format!("/v1/stacks/dev/schedules/{name}"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .json()
}
