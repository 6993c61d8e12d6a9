//! Queues through the real `skyform` binary on the `local` target, in a sealed project whose
//! program prints a manifest: a bad queue setting fails at preview, `up` deploys a function, a
//! queue with a dead-letter queue and the trigger between them, `skyform local env` points
//! boto3 at the local cloud so a message sent from the user's shell reaches the function,
//! `skyform local status` shows the queues, and `destroy` removes them.

mod common;

use std::process::Command;

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const PY_WORKER: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        for r in event["Records"]:
            f.write(r["body"] + "\n")
    return {}
"#;

fn resources(env: &TestEnv, visibility: u64) -> Value {
    let out = env.path().join("handled.txt");
    json!([
        {"name": "worker", "type": "local:Function", "inputs": {
            "code": "functions/worker", "handler": "app.handler", "runtime": "python3",
            "environment": {"OUT": out.to_string_lossy()}}},
        {"name": "jobs-failed", "type": "local:Queue", "inputs": {
            "fifo": false, "visibility_timeout": 30, "message_retention": 345600, "delay": 0, "dead_letter": null}},
        {"name": "jobs", "type": "local:Queue", "inputs": {
            "fifo": false, "visibility_timeout": visibility, "message_retention": 345600, "delay": 0,
            "dead_letter": {"queue": {"$ref": "jobs-failed", "output": "arn"}, "max_receive_count": 3}}},
        {"name": "jobs-worker", "type": "local:QueueSubscription", "inputs": {
            "queue": {"$ref": "jobs", "output": "arn"},
            "function": {"$ref": "worker", "output": "function_name"},
            "batch_size": 10}}
    ])
}

#[test]
fn queues_through_the_cli() {
    let venv = common::peers_venv();
    let env = TestEnv::new("e2e-queue");
    let _stop = StopDaemon(&env);
    env.write("functions/worker/app.py", PY_WORKER);

    env.manifest(resources(&env, 50_000));
    let preview = env.run(&["preview"]);
    assert_eq!(preview.code, 1, "{}", preview.text());
    assert!(
        preview.text().contains("visibility_timeout must be between 0 and 43200, got 50000"),
        "{}",
        preview.text()
    );

    env.manifest_with_outputs(resources(&env, 30), json!({"jobs_url": {"$ref": "jobs", "output": "url"}}));
    env.run(&["up", "--yes"]).ok();

    // `skyform local env` prints export lines; a script in the user's shell uses them.
    let out = env.command(&["local", "env"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut vars = Vec::new();
    for line in text.lines() {
        let (k, v) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
        vars.push((k.to_string(), v.trim_matches('\'').to_string()));
    }
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION"
        ]
    );
    let secret = &vars[2].1;
    assert!(!env.read("state/dev.json").contains(secret.as_str()), "the secret is not in the state");
    let url = env.command(&["outputs", "jobs_url"]).output().unwrap();
    let url = String::from_utf8_lossy(&url.stdout).trim().trim_matches('"').to_string();
    assert_eq!(url, format!("{}/000000000000/jobs", vars[0].1));
    let py = Command::new(format!("{venv}/bin/python"))
        .args(["-c", "import boto3,sys; q=boto3.client('sqs'); u=q.get_queue_url(QueueName='jobs')['QueueUrl']; q.send_message(QueueUrl=u, MessageBody='hello from the shell')"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", env.path())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let handled = env.path().join("handled.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(&handled).is_ok_and(|s| s.contains("hello from the shell"))
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&handled).unwrap(), "hello from the shell\n");

    let status = env.run(&["local", "status"]);
    let text = &status.ok().stdout;
    assert!(text.contains("AWS endpoint http://127.0.0.1:"), "{text}");
    assert!(text.contains("queue    jobs  0 visible, 0 in flight, 0 delayed"), "{text}");
    assert!(text.contains("queue    jobs-failed  0 visible"), "{text}");
    assert!(text.contains("trigger  dev/jobs-worker  jobs -> worker  1 invocations (0 failed)"), "{text}");

    // A second `up` changes nothing; destroy removes the queues.
    let again = env.run(&["up", "--yes"]);
    assert!(
        again.ok().stdout.contains("no changes") || again.stdout.contains("0 to create"),
        "{}",
        again.text()
    );
    env.run(&["destroy", "--yes"]).ok();
    env.run(&["local", "start"]).ok();
    let raw = env.command(&["local", "status", "--json"]).output().unwrap();
    let json: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(json["queues"], json!([]), "{json}");
    assert_eq!(json["queue_subscriptions"], json!([]), "{json}");
}
