//! Topics through the real `skyform` binary on the `local` target, in a sealed project whose
//! program prints a manifest: a bad filter policy fails at preview, `up` deploys a function, a
//! topic, a queue and two subscriptions (the function, and the queue with raw delivery and a
//! filter policy), the AWS CLI from the user's shell (`skyform local env`) publishes, the
//! function and the queue get what SNS would send them, and `destroy` removes the topic.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const PY_RECORDER: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\n")
    return {}
"#;

fn resources(env: &TestEnv, policy: Value) -> Value {
    let out = env.path().join("events.jsonl");
    json!([
        {"name": "notify", "type": "local:Function", "inputs": {
            "code": "functions/notify", "handler": "app.handler", "runtime": "python3",
            "environment": {"OUT": out.to_string_lossy()}}},
        {"name": "events", "type": "local:Topic", "inputs": {"fifo": false}},
        {"name": "audit", "type": "local:Queue", "inputs": {
            "fifo": false, "visibility_timeout": 30, "message_retention": 345600, "delay": 0, "dead_letter": null}},
        {"name": "events-notify", "type": "local:TopicSubscription", "inputs": {
            "topic": {"$ref": "events", "output": "arn"},
            "function": {"$ref": "notify", "output": "function_name"}}},
        {"name": "events-audit", "type": "local:TopicSubscription", "inputs": {
            "topic": {"$ref": "events", "output": "arn"},
            "queue": {"$ref": "audit", "output": "arn"},
            "filter_policy": policy,
            "raw_message_delivery": true}}
    ])
}

#[test]
fn topics_through_the_cli() {
    let venv = common::peers_venv();
    let env = TestEnv::new("e2e-topic");
    let _stop = StopDaemon(&env);
    env.write("functions/notify/app.py", PY_RECORDER);

    env.manifest(resources(&env, json!({"kind": "audit"})));
    let preview = env.run(&["preview"]);
    assert_eq!(preview.code, 1, "{}", preview.text());
    assert!(
        preview.text().contains("the value of `kind` must be an array of conditions"),
        "{}",
        preview.text()
    );

    env.manifest_with_outputs(
        resources(&env, json!({"kind": ["audit"]})),
        json!({"events_arn": {"$ref": "events", "output": "arn"}}),
    );
    env.run(&["up", "--yes"]).ok();
    let arn = env.command(&["outputs", "events_arn"]).output().unwrap();
    let arn = String::from_utf8_lossy(&arn.stdout).trim().trim_matches('"').to_string();
    assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:events");

    // The AWS CLI in the user's shell, pointed at the local cloud by `skyform local env`.
    let out = env.command(&["local", "env"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vars: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let aws = |args: &[&str]| -> Value {
        let out = Command::new(format!("{venv}/bin/aws"))
            .args(args)
            .args(["--output", "json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", env.path())
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let topics = aws(&["sns", "list-topics"]);
    assert_eq!(topics["Topics"], json!([{"TopicArn": arn}]));
    let subs = aws(&["sns", "list-subscriptions-by-topic", "--topic-arn", &arn]);
    assert_eq!(subs["Subscriptions"].as_array().unwrap().len(), 2, "{subs}");
    for (text, kind) in [("for the function only", "info"), ("for both", "audit")] {
        let attrs = format!(r#"{{"kind": {{"DataType": "String", "StringValue": "{kind}"}}}}"#);
        aws(&["sns", "publish", "--topic-arn", &arn, "--message", text, "--message-attributes", &attrs]);
    }
    let events = env.path().join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && std::fs::read_to_string(&events).map_or(0, |s| s.lines().count()) < 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut got: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            assert_eq!(e["Records"][0]["EventSource"], "aws:sns");
            assert_eq!(e["Records"][0]["Sns"]["TopicArn"], arn.as_str());
            e["Records"][0]["Sns"]["Message"].as_str().unwrap().to_string()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["for both", "for the function only"]);
    // The AWS CLI v1 replaces AWS_ENDPOINT_URL for SQS (see the local cloud's README): say it.
    let endpoint = vars.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1.clone();
    let queue_url =
        aws(&["sqs", "get-queue-url", "--queue-name", "audit", "--endpoint-url", &endpoint])["QueueUrl"]
            .as_str()
            .unwrap()
            .to_string();
    let received = aws(&[
        "sqs",
        "--endpoint-url",
        &endpoint,
        "receive-message",
        "--queue-url",
        &queue_url,
        "--max-number-of-messages",
        "10",
        "--wait-time-seconds",
        "1",
    ]);
    let bodies: Vec<&str> =
        received["Messages"].as_array().unwrap().iter().map(|m| m["Body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["for both"], "raw delivery, filtered on `kind`");

    let status = env.run(&["local", "status"]);
    let text = &status.ok().stdout;
    let line = format!("topic    events  -> lambda notify, sqs audit (raw) (filtered)  {arn}");
    assert!(text.contains(&line), "{text}");

    // A second `up` changes nothing; destroy removes the topic and its subscriptions.
    let again = env.run(&["up", "--yes"]);
    assert!(
        again.ok().stdout.contains("no changes") || again.stdout.contains("0 to create"),
        "{}",
        again.text()
    );
    env.run(&["destroy", "--yes"]).ok();
    env.run(&["local", "start"]).ok();
    assert_eq!(aws(&["sns", "list-topics"])["Topics"], json!([]));
    assert_eq!(aws(&["sns", "list-subscriptions"])["Subscriptions"], json!([]));
}
