//! Schedules through the real `skyform` binary on the `local` target, in a sealed project
//! whose program prints a manifest: a bad expression fails at preview, `up` deploys a function
//! and its schedules, `skyform local status` shows the next runs, `skyform local run-schedule`
//! runs one now, and a real `at()` schedule fires by itself.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TestEnv;
use serde_json::{Value, json};

/// Appends each event to `events.jsonl` in the project (the function's working folder is its
/// artifact, so the path comes from the environment) and returns it.
const PY_RECORD: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\n")
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"got": event}
"#;

/// Stops the project's local cloud however the test ends.
struct StopDaemon<'a>(&'a TestEnv);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let _ = self.0.command(&["local", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn resources(env: &TestEnv, schedule: &str, at: &str) -> Value {
    let out = env.path().join("events.jsonl");
    json!([
        {"name": "rec", "type": "local:Function", "inputs": {
            "code": "functions/rec", "handler": "app.handler", "runtime": "python3",
            "environment": {"OUT": out.to_string_lossy()}}},
        {"name": "nightly", "type": "local:Schedule", "inputs": {
            "schedule": schedule,
            "function": {"$ref": "rec", "output": "function_name"},
            "payload": {"kind": "nightly", "at": "<aws.scheduler.scheduled-time>"},
            "enabled": true, "timezone": "Europe/Paris"}},
        {"name": "soon", "type": "local:Schedule", "inputs": {
            "schedule": at,
            "function": {"$ref": "rec", "output": "function_name"},
            "payload": null, "enabled": true, "timezone": null}}
    ])
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `yyyy-mm-ddThh:mm:ss` in UTC for epoch seconds (days to a civil date: H. Hinnant's algorithm).
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn events(env: &TestEnv) -> Vec<Value> {
    std::fs::read_to_string(env.path().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn schedules_through_the_cli() {
    let env = TestEnv::new("e2e-schedule");
    let _stop = StopDaemon(&env);
    env.write("functions/rec/app.py", PY_RECORD);

    // A five-field (Unix) cron fails at preview, saying what to write.
    env.manifest(resources(&env, "cron(0 3 * * *)", "at(2030-01-01T00:00:00)"));
    let preview = env.run(&["preview"]);
    assert_eq!(preview.code, 1, "{}", preview.text());
    assert!(
        preview.text().contains(
            "bad schedule expression \"cron(0 3 * * *)\": cron takes six fields (minutes hours \
             day-of-month month day-of-week year), e.g. cron(0 12 * * ? *)"
        ),
        "{}",
        preview.text()
    );

    // A real at() 8 s ahead (UTC), and a cron at 03:00 Paris time.
    let when = now_secs() + 8;
    let at = format!("at({})", utc(when));
    env.manifest(resources(&env, "cron(0 3 * * ? *)", &at));
    env.run(&["up", "--yes"]).ok();

    let status = env.run(&["local", "status"]);
    let text = &status.ok().stdout;
    assert!(
        text.contains("schedule dev/nightly  cron(0 3 * * ? *) Europe/Paris -> rec  next run [TIME]"),
        "{text}"
    );
    assert!(text.contains(&format!("schedule dev/soon  {at} -> rec  next run [TIME]")), "{text}");
    // Raw, not normalised: the times are the point.
    let raw = env.command(&["local", "status", "--json"]).output().unwrap();
    assert!(raw.status.success());
    let json: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let nightly = json["schedules"].as_array().unwrap().iter().find(|s| s["name"] == "nightly").unwrap();
    // 03:00 in Paris is 01:00 UTC in summer, 02:00 in winter.
    let next = nightly["next_run"].as_str().unwrap();
    assert!(next.ends_with("T01:00:00Z") || next.ends_with("T02:00:00Z"), "{next}");

    // Run now: the function gets the payload with the scheduled time filled in.
    let run = env.run(&["local", "run-schedule", "nightly"]);
    let got: Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(got["got"]["kind"], "nightly");
    // The keyword became a time (which the normalised output shows as [TIME]; the file has it).
    assert_eq!(got["got"]["at"], "[TIME]", "{got}");
    let at_text = events(&env)[0]["at"].as_str().unwrap().to_string();
    assert!(
        at_text.len() == 20 && at_text.ends_with('Z') && at_text[..19] >= *utc(now_secs() - 60),
        "{at_text}"
    );
    assert_eq!(utc(0), "1970-01-01T00:00:00");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00");
    // A failing one: the error is the command's, and status shows it.
    let mut r = resources(&env, "cron(0 3 * * ? *)", &at);
    r[1]["inputs"]["payload"] = json!({"fail": true});
    env.manifest(r);
    env.run(&["up", "--yes"]).ok();
    let failed = env.run(&["local", "run-schedule", "nightly"]);
    assert_eq!(failed.code, 1, "{}", failed.text());
    assert!(failed.stderr.contains("the function failed: ValueError: asked to fail"), "{}", failed.text());
    let status = env.run(&["local", "status"]);
    assert!(
        status.ok().stdout.contains("next run [TIME]  last run failed: ValueError (see `skyform logs rec`)"),
        "{}",
        status.stdout
    );
    env.manifest(resources(&env, "cron(0 3 * * ? *)", &at));
    env.run(&["up", "--yes"]).ok();
    let missing = env.run(&["local", "run-schedule", "nope"]);
    assert_eq!(missing.code, 1, "{}", missing.text());
    assert!(missing.stderr.contains("no schedule `nope` in stack `dev`"), "{}", missing.text());
    assert!(
        missing.stderr.contains("hint: list the schedules with `skyform local status`"),
        "{}",
        missing.text()
    );

    // The at() fires by itself, once, with `{}` (it has no payload).
    let fired = || events(&env).iter().filter(|e| **e == json!({})).count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fired() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(now_secs() >= when);
    assert_eq!(fired(), 1, "the at() schedule did not fire: {:?}", events(&env));
    // Two runs by hand (one failing) and the at().
    assert_eq!(events(&env).len(), 3, "{:?}", events(&env));
    // The at()'s next run is gone and the cron's moves on with time, yet the outputs do not
    // change: `refresh` finds no drift.
    let refresh = env.run(&["refresh", "--yes"]);
    assert!(refresh.ok().stdout.contains("no drift: every resource matches the state"), "{}", refresh.text());
    let status = env.run(&["local", "status"]);
    assert!(
        status.ok().stdout.contains(&format!("schedule dev/soon  {at} -> rec  no run left")),
        "{}",
        status.stdout
    );

    // Disabled by the program: status says so; destroy removes the schedules.
    let mut r = resources(&env, "cron(0 3 * * ? *)", &at);
    r[1]["inputs"]["enabled"] = json!(false);
    env.manifest(r);
    env.run(&["up", "--yes"]).ok();
    let status = env.run(&["local", "status"]);
    assert!(
        status.ok().stdout.contains("schedule dev/nightly  cron(0 3 * * ? *) Europe/Paris -> rec  disabled"),
        "{}",
        status.stdout
    );
    env.run(&["destroy", "--yes"]).ok();
    let help = env.run(&["local", "run-schedule", "--help"]);
    assert!(help.ok().stdout.contains("Run a schedule now"), "{}", help.stdout);
}
