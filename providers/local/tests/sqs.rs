//! SQS, queue triggers and Lambda Invoke on the local cloud's AWS endpoint, driven by real
//! clients: boto3 (`sqs_boto3.py`, beside this file) and the AWS CLI from the peers venv
//! (`tests/peers/setup.sh`), against queues and functions deployed through the provider as the
//! engine deploys them. Ends with a durability test: the daemon is killed with `kill -9` again
//! and again while 10,000 messages flow from boto3 through a queue into a function.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The environment a client needs to reach the project's endpoint (what `skyform local env`
/// prints), with the user's AWS configuration files out of the way.
fn aws_env(p: &Project) -> Vec<(String, String)> {
    let mut env = skyform_local::aws_env(&p.dir, Some(Path::new(EXE))).unwrap();
    env.extend([
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("AWS_PAGER".into(), String::new()),
    ]);
    env
}

/// Runs Python code with boto3 (the venv's interpreter) in the endpoint's environment.
fn py(venv: &str, env: &[(String, String)], code: &str) -> String {
    let out = Command::new(format!("{venv}/bin/python"))
        .arg("-c")
        .arg(code)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn queue(p: &mut Provider, name: &str, inputs: Value) -> Value {
    p.create("local:Queue", name, inputs).2
}

#[test]
fn boto3_drives_every_sqs_operation_and_error() {
    let venv = venv();
    let project = Project::new("sqs-boto3");
    let mut p = Provider::start(&project, "dev");
    let dlq = queue(&mut p, "jobs-dlq", json!({}));
    assert_eq!(dlq["arn"], "arn:aws:sqs:us-east-1:000000000000:jobs-dlq");
    let jobs = queue(
        &mut p,
        "jobs",
        json!({"visibility_timeout": 2, "dead_letter": {"queue": dlq["arn"], "max_receive_count": 2}}),
    );
    let fifo = queue(&mut p, "orders", json!({"fifo": true, "content_based_deduplication": true}));
    assert_eq!(fifo["queue_name"], "orders.fifo");
    let env = aws_env(&project);
    let endpoint = &env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1;
    assert_eq!(jobs["url"], format!("{endpoint}/000000000000/jobs"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sqs_boto3.py");
    let out = Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .args(["jobs", "jobs-dlq", "orders.fifo"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqs_boto3.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // read answers what the daemon holds; a changed setting is an update in place.
    let read = p
        .call(
            "read",
            json!({"type": "local:Queue", "name": "jobs", "id": "jobs", "inputs": {}, "outputs": {}}),
        )
        .unwrap();
    assert_eq!(read["resource"]["inputs"]["visibility_timeout"], 2);
    assert_eq!(read["resource"]["inputs"]["dead_letter"]["max_receive_count"], 2);
    p.call("update", json!({"type": "local:Queue", "name": "jobs", "id": "jobs", "olds": {}, "news": {"visibility_timeout": 7, "fifo": false}, "old_outputs": {}}))
        .unwrap();
    let attrs = cli_json(
        &venv,
        &env,
        &[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            jobs["url"].as_str().unwrap(),
            "--attribute-names",
            "VisibilityTimeout",
        ],
    );
    assert_eq!(attrs["Attributes"]["VisibilityTimeout"], "7");

    // Bad settings fail at check, before anything is deployed.
    let checked = p.check("local:Queue", "bad", json!({"delay": 901, "fifo": "yes"}));
    let props: Vec<&str> =
        checked["failures"].as_array().unwrap().iter().map(|f| f["property"].as_str().unwrap()).collect();
    assert_eq!(props, ["fifo", "delay"], "{checked}");

    // Delete removes the queue (and is idempotent).
    for _ in 0..2 {
        p.call("delete", json!({"type": "local:Queue", "name": "orders", "id": "orders.fifo", "inputs": {"fifo": true}, "outputs": {}}))
            .unwrap();
    }
    let out = aws_cli(&venv, &env, &["sqs", "get-queue-url", "--queue-name", "orders.fifo"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NonExistentQueue"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn aws_cli_reaches_the_endpoint_with_the_local_env() {
    let venv = venv();
    let project = Project::new("sqs-cli");
    let mut p = Provider::start(&project, "dev");
    let q = queue(&mut p, "cli-q", json!({}));
    let url = q["url"].as_str().unwrap();
    let env = aws_env(&project);
    // The credentials file is the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        std::fs::metadata(project.dir.join(".skyform/local/credentials.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    assert_eq!(cli_json(&venv, &env, &["sqs", "get-queue-url", "--queue-name", "cli-q"])["QueueUrl"], url);
    let listed = cli_json(&venv, &env, &["sqs", "list-queues"]);
    assert_eq!(listed["QueueUrls"], json!([url]));
    let sent = cli_json(
        &venv,
        &env,
        &[
            "sqs",
            "send-message",
            "--queue-url",
            url,
            "--message-body",
            "from the cli",
            "--message-attributes",
            r#"{"k":{"DataType":"String","StringValue":"v"}}"#,
        ],
    );
    assert!(sent["MD5OfMessageAttributes"].is_string(), "{sent}");
    let got = cli_json(
        &venv,
        &env,
        &[
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--attribute-names",
            "All",
            "--message-attribute-names",
            "All",
            "--wait-time-seconds",
            "1",
        ],
    );
    let m = &got["Messages"][0];
    assert_eq!(m["Body"], "from the cli");
    assert_eq!(m["MessageAttributes"]["k"]["StringValue"], "v");
    assert_eq!(m["Attributes"]["ApproximateReceiveCount"], "1");
    cli_json(
        &venv,
        &env,
        &[
            "sqs",
            "delete-message",
            "--queue-url",
            url,
            "--receipt-handle",
            m["ReceiptHandle"].as_str().unwrap(),
        ],
    );
    let attrs = cli_json(
        &venv,
        &env,
        &["sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All"],
    );
    assert_eq!(attrs["Attributes"]["ApproximateNumberOfMessages"], "0");
    assert_eq!(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"], "0");

    // A wrong secret and no credentials at all are refused with AWS's codes.
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    wrong.push(("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    let out = aws_cli(&venv, &wrong, &["sqs", "list-queues"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aws_cli(&venv, &env, &["sqs", "list-queues", "--no-sign-request"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MissingAuthenticationToken"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A raw unsigned request gets SQS's JSON error shape.
    let port: u16 = env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .unwrap()
        .1
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = http(
        port,
        "POST",
        "/",
        &[("X-Amz-Target", "AmazonSQS.ListQueues"), ("Content-Type", "application/x-amz-json-1.0")],
        b"{}",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["__type"], "com.amazonaws.sqs#MissingAuthenticationToken");
    assert_eq!(r.header("x-amzn-query-error"), ["MissingAuthenticationToken;Sender"]);
    let r = http(
        port,
        "POST",
        "/2015-03-31/functions/f/invocations",
        &[("Authorization", "AWS4-HMAC-SHA256 Credential=x")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-amzn-errortype"), ["IncompleteSignature"]);
}

/// Records each record of each SQS event in $OUT; fails `partial*` messages through
/// `batchItemFailures` and raises on `crash`.
const WORKER: &str = r#"
import json, os

def handler(event, context):
    failures = []
    with open(os.environ["OUT"], "a") as f:
        for r in event["Records"]:
            f.write(json.dumps({"body": r["body"], "id": r["messageId"], "n": r["attributes"]["ApproximateReceiveCount"],
                                "size": len(event["Records"]), "record": r}) + "\n")
            if r["body"].startswith("partial"):
                failures.append({"itemIdentifier": r["messageId"]})
    if any(r["body"] == "crash" for r in event["Records"]):
        raise RuntimeError("crash on purpose")
    return {"batchItemFailures": failures}
"#;

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn trigger_batches_retries_partial_failures_and_dead_letters() {
    let venv = venv();
    let project = Project::new("sqs-trigger");
    project.write("worker/app.py", WORKER);
    let out = project.dir.join("worker.out");
    let mut p = Provider::start(&project, "dev");
    p.function(
        "worker",
        "worker",
        "python3",
        "app.handler",
        json!({"environment": {"OUT": out.to_string_lossy()}}),
    );
    let dlq = queue(&mut p, "work-dlq", json!({}));
    let work = queue(
        &mut p,
        "work",
        // A visibility timeout above the function's run time (cold start included), as Lambda advises.
        json!({"visibility_timeout": 3, "dead_letter": {"queue": dlq["arn"], "max_receive_count": 2}}),
    );
    let (_, _, sub) = p.create(
        "local:QueueSubscription",
        "work-worker",
        json!({"queue": work["arn"], "function": "worker", "batch_size": 10, "batching_window": 0.5}),
    );
    assert_eq!(sub["function"], "worker");
    let env = aws_env(&project);

    // Nine good messages and one that the handler reports failed, in one batch.
    py(
        &venv,
        &env,
        &format!(
            r#"
import boto3
sqs = boto3.client("sqs")
entries = [{{"Id": str(i), "MessageBody": "ok-%d" % i, "MessageAttributes": {{"k": {{"DataType": "String", "StringValue": "v"}}}}}} for i in range(9)]
entries.append({{"Id": "p", "MessageBody": "partial-1"}})
r = sqs.send_message_batch(QueueUrl="{}", Entries=entries)
assert len(r["Successful"]) == 10, r
"#,
            work["url"].as_str().unwrap()
        ),
    );
    // The partial failure is retried once (max_receive_count 2), then dead-lettered.
    assert!(eventually(20, || {
        let d = dlq_bodies(&venv, &env, dlq["url"].as_str().unwrap());
        !d.is_empty()
    }));
    let recs = records(&out);
    let ok: Vec<&Value> = recs.iter().filter(|r| r["body"].as_str().unwrap().starts_with("ok-")).collect();
    assert_eq!(ok.len(), 9, "each good message is handled once: {recs:?}");
    assert!(ok.iter().all(|r| r["n"] == "1"));
    let partial: Vec<&Value> = recs.iter().filter(|r| r["body"] == "partial-1").collect();
    assert_eq!(partial.iter().map(|r| r["n"].as_str().unwrap()).collect::<Vec<_>>(), ["1", "2"], "{recs:?}");
    assert_eq!(
        recs.iter().map(|r| r["size"].as_u64().unwrap()).max(),
        Some(10),
        "the batching window gathers a full batch"
    );
    // The SQS event, as Lambda sends it.
    let r = &ok[0]["record"];
    assert_eq!(r["eventSource"], "aws:sqs");
    assert_eq!(r["eventSourceARN"], work["arn"]);
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(
        r["messageAttributes"]["k"],
        json!({"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
    );
    assert_eq!(r["md5OfBody"].as_str().unwrap().len(), 32);
    assert!(r["receiptHandle"].is_string() && r["attributes"]["SentTimestamp"].is_string());

    // A raised error fails the whole batch: retried after the visibility timeout, then dead-lettered.
    std::fs::remove_file(&out).unwrap();
    py(
        &venv,
        &env,
        &format!(
            "import boto3; boto3.client('sqs').send_message(QueueUrl='{}', MessageBody='crash')",
            work["url"].as_str().unwrap()
        ),
    );
    assert!(eventually(20, || dlq_bodies(&venv, &env, dlq["url"].as_str().unwrap())
        .contains(&"crash".to_string())));
    let crash: Vec<String> = records(&out).iter().map(|r| r["n"].as_str().unwrap().to_string()).collect();
    assert_eq!(crash, ["1", "2"]);
    let status = skyform_local::status(&project.dir).unwrap().unwrap();
    let work_status = status.queues.iter().find(|q| q.name == "work").unwrap();
    assert_eq!((work_status.visible, work_status.in_flight), (0, 0));
    assert_eq!(status.queue_subscriptions[0]["name"], "work-worker");
    assert!(status.queue_subscriptions[0]["failed_invocations"].as_u64().unwrap() >= 3);

    // Deleting the subscription stops the pollers: a new message stays in the queue.
    p.call("delete", json!({"type": "local:QueueSubscription", "name": "work-worker", "id": "x", "inputs": {}, "outputs": {}}))
        .unwrap();
    py(
        &venv,
        &env,
        &format!(
            "import boto3; boto3.client('sqs').send_message(QueueUrl='{}', MessageBody='stays')",
            work["url"].as_str().unwrap()
        ),
    );
    std::thread::sleep(Duration::from_millis(700));
    let status = skyform_local::status(&project.dir).unwrap().unwrap();
    assert_eq!(status.queues.iter().find(|q| q.name == "work").unwrap().visible, 1);
}

/// Bodies in the dead-letter queue, left there (visibility 0 after peeking).
fn dlq_bodies(venv: &str, env: &[(String, String)], url: &str) -> Vec<String> {
    let out = py(
        venv,
        env,
        &format!(
            r#"
import boto3, json
sqs = boto3.client("sqs")
m = sqs.receive_message(QueueUrl="{url}", MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
print(json.dumps([x["Body"] for x in m]))
"#
        ),
    );
    serde_json::from_str(out.trim()).unwrap()
}

const CALLER: &str = r#"
import json, os
import boto3

def handler(event, context):
    lam = boto3.client("lambda")
    r = lam.invoke(FunctionName="callee", Payload=json.dumps({"x": 1}))
    ok = json.loads(r["Payload"].read())
    f = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:failing", Payload=b"{}")
    fpayload = json.loads(f["Payload"].read())
    e = lam.invoke(FunctionName="callee", InvocationType="Event", Payload=json.dumps({"async": True}))
    try:
        lam.invoke(FunctionName="missing")
        nf = None
    except lam.exceptions.ResourceNotFoundException as ex:
        nf = ex.response["Error"]["Code"]
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="from a function")
    return {"ok": ok, "status": r["StatusCode"], "ferr": f.get("FunctionError"), "fpayload": fpayload,
            "event_status": e["StatusCode"], "nf": nf, "endpoint": os.environ["AWS_ENDPOINT_URL"]}
"#;

const CALLEE: &str = r#"
import json, os
def handler(event, context):
    if event.get("async"):
        open(os.environ["OUT"], "w").write("async ran")
    return {"echo": event}
"#;

const FAILING: &str = r#"
def handler(event, context):
    raise ValueError("nope")
"#;

#[test]
fn a_function_invokes_another_and_sends_to_a_queue_with_boto3() {
    let venv = venv();
    let project = Project::new("sqs-invoke");
    project.write("caller/app.py", CALLER).write("callee/app.py", CALLEE).write("failing/app.py", FAILING);
    let out = project.dir.join("async.out");
    let mut p = Provider::start(&project, "dev");
    let python = format!("{venv}/bin/python");
    p.function(
        "caller",
        "caller",
        "python3",
        "app.handler",
        json!({"timeout": 20, "environment": {"SKYFORM_PYTHON": python}}),
    );
    p.function(
        "callee",
        "callee",
        "python3",
        "app.handler",
        json!({"environment": {"OUT": out.to_string_lossy()}}),
    );
    p.function("failing", "failing", "python3", "app.handler", json!({}));
    let q = queue(&mut p, "inbox", json!({}));
    let r = rt()
        .block_on(skyform_local::invoke(&project.dir, "dev", "caller", br#"{"queue": "inbox"}"#))
        .unwrap();
    assert_eq!(r.function_error, None, "{}", String::from_utf8_lossy(&r.payload));
    let v: Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(v["ok"], json!({"echo": {"x": 1}}));
    assert_eq!(v["status"], 200);
    assert_eq!(v["ferr"], "Unhandled");
    assert_eq!(v["fpayload"]["errorType"], "ValueError");
    assert_eq!(v["event_status"], 202);
    assert_eq!(v["nf"], "ResourceNotFoundException");
    let env = aws_env(&project);
    assert_eq!(
        v["endpoint"].as_str(),
        env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.as_str())
    );
    assert!(eventually(10, || std::fs::read_to_string(&out).is_ok_and(|s| s == "async ran")));
    let got = py(
        &venv,
        &env,
        &format!(
            "import boto3; print(boto3.client('sqs').receive_message(QueueUrl='{}')['Messages'][0]['Body'])",
            q["url"].as_str().unwrap()
        ),
    );
    assert_eq!(got.trim(), "from a function");

    // From the user's shell too: DryRun, a payload that is not JSON, an unknown type.
    let out = py(
        &venv,
        &env,
        r#"
import boto3, botocore
lam = boto3.client("lambda")
assert lam.invoke(FunctionName="callee", InvocationType="DryRun")["StatusCode"] == 204
for kwargs, code in [({"Payload": b"not json"}, "InvalidRequestContentException"),
                     ({"InvocationType": "Sometimes"}, "InvalidParameterValueException")]:
    try:
        lam.invoke(FunctionName="callee", **kwargs)
        raise SystemExit("expected " + code)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// Appends each record's body to $OUT.
const SINK: &str = r#"
import os
def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write("".join(r["body"] + "\n" for r in event["Records"]))
    return {}
"#;

/// Sends N messages in batches of 10, retrying a batch until it is accepted (the daemon is
/// being killed); prints the number of retried batches.
const SENDER: &str = r#"
import sys, time
import boto3
from botocore.config import Config
url, n = sys.argv[1], int(sys.argv[2])
sqs = boto3.client("sqs", config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5))
retries = 0
for start in range(0, n, 10):
    entries = [{"Id": str(i), "MessageBody": "m%d" % (start + i)} for i in range(min(10, n - start))]
    while True:
        try:
            r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if not r.get("Failed"):
                break
        except Exception:
            pass
        retries += 1
        time.sleep(0.05)
print(retries)
"#;

#[test]
fn no_message_is_lost_when_the_daemon_is_killed_again_and_again() {
    const N: usize = 10_000;
    let venv = venv();
    let project = Project::new("sqs-kill9");
    project.write("sink/app.py", SINK);
    let out = project.dir.join("sink.out");
    let mut p = Provider::start(&project, "dev");
    p.function(
        "sink",
        "sink",
        "python3",
        "app.handler",
        json!({"environment": {"OUT": out.to_string_lossy()}}),
    );
    let q = queue(&mut p, "flow", json!({"visibility_timeout": 2}));
    p.create(
        "local:QueueSubscription",
        "flow-sink",
        json!({"queue": q["arn"], "function": "sink", "batch_size": 10}),
    );
    drop(p);
    let env = aws_env(&project);
    let endpoint = env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1.clone();

    let mut sender = Command::new(format!("{venv}/bin/python"))
        .args(["-c", SENDER, q["url"].as_str().unwrap(), &N.to_string()])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let processed = |out: &Path| -> HashSet<String> {
        std::fs::read_to_string(out).unwrap_or_default().lines().map(str::to_string).collect()
    };
    let started = Instant::now();
    let mut kills = 0;
    let mut sender_done = false;
    while started.elapsed() < Duration::from_secs(50) {
        std::thread::sleep(Duration::from_millis(800));
        sender_done = sender_done || sender.try_wait().unwrap().is_some();
        if sender_done && processed(&out).len() == N {
            break;
        }
        if kills < 8 {
            let pid = project.daemon_pid().expect("a daemon runs");
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            assert!(eventually(5, || !alive(pid)));
            kills += 1;
            let s = skyform_local::start_with_exe(&project.dir, Some(Path::new(EXE))).unwrap();
            assert_eq!(s.endpoint.as_deref(), Some(endpoint.as_str()), "the endpoint keeps its port");
        }
    }
    let status = sender.wait_with_output().unwrap();
    assert!(status.status.success());
    let seen = processed(&out);
    let missing: Vec<usize> = (0..N).filter(|i| !seen.contains(&format!("m{i}"))).collect();
    assert!(
        missing.is_empty(),
        "{} of {N} messages were never processed (after {kills} kills), e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(kills >= 3, "the daemon was killed only {kills} times");
    let total_lines = std::fs::read_to_string(&out).unwrap().lines().count();
    eprintln!(
        "{N} messages, {kills} kills, {total_lines} handled ({} redelivered), sender retried {} batches, {:.1} s",
        total_lines - N,
        String::from_utf8_lossy(&status.stdout).trim(),
        started.elapsed().as_secs_f64()
    );
}
