//! `examples/jobs` end to end on the local cloud, through the real `skyform` binary, in a sealed
//! temporary copy: `POST /jobs` is queued by `submit` (boto3), the `worker` trigger processes it
//! and publishes to the `done` topic, the `notify` function gets the SNS event, the `audit` queue
//! holds the SNS envelope (read with the AWS CLI from the user's shell, `skyform local env`),
//! `skyform local run-schedule cleanup` runs `sweep`, and `destroy` removes everything.
//!
//! The functions import boto3, which Lambda's Python runtime bundles but a machine's `python3`
//! may not have: as the example's README says, boto3 must be importable by the `python3` the
//! local cloud starts (from `PATH`). The test puts the peers venv (`tests/peers/setup.sh`, boto3
//! and the AWS CLI) first on `PATH`, as a user with that virtualenv activated would.
//!
//! The program is built into `target/e2e-programs`, shared with `local_e2e`.

mod common;

use common::example::{Example, http};
use serde_json::Value;

#[test]
fn jobs_example_on_the_local_cloud() {
    let p = Example::new("jobs");
    let up = p.ok(&["up", "--yes"]);
    assert!(up.contains("+  13 created"), "{up}");
    let url = p.output("url");
    let audit_url = p.output("audit_queue_url");
    let topic_arn = p.output("done_topic_arn");
    assert_eq!(topic_arn, "arn:aws:sns:us-east-1:000000000000:done");

    // A bad body is refused by `submit` with what to send.
    let (status, body) = http("POST", &format!("{url}/jobs"), "application/json", b"not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"send a JSON object with a \"task\" string"#), "{body}");

    // A job and a failing one.
    let (status, body) = http(
        "POST",
        &format!("{url}/jobs"),
        "application/json",
        br#"{"task": "resize", "input": "cat.png"}"#,
    );
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let (status, _) =
        http("POST", &format!("{url}/jobs"), "application/json", br#"{"task": "oops", "fail": true}"#);
    assert_eq!(status, 202);

    let submitted = p.wait_for_log("submit", &format!("submit: job {id} (resize) queued"));
    assert!(submitted.contains("(oops) queued"), "{submitted}");
    let worked = p.wait_for_log("worker", &format!("worker: job {id} (resize) done"));
    let failed = p.wait_for_log("worker", "failed: the job asked to fail");
    assert!(!worked.contains("(oops) done") && !failed.contains("(oops) done"), "{failed}");
    p.wait_for_log("notify", &format!("notify: job {id} (resize) is done"));

    // The audit queue holds the SNS envelope; read it as the README says, with the AWS CLI.
    let (received, _) = p.aws(&[
        "sqs",
        "receive-message",
        "--queue-url",
        &audit_url,
        "--wait-time-seconds",
        "5",
        "--max-number-of-messages",
        "10",
    ]);
    let messages = received["Messages"].as_array().expect("the audit queue has a message");
    assert_eq!(messages.len(), 1, "one result (the failing job publishes nothing): {received}");
    let envelope: Value = serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "done");
    let result: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(result, serde_json::json!({"id": id, "task": "resize", "input": "cat.png", "status": "done"}));

    // The hourly schedule, run now.
    p.ok(&["local", "run-schedule", "cleanup"]);
    p.wait_for_log("sweep", "sweep: 0 failed job(s) in jobs-failed");
    let status = p.ok(&["local", "status"]);
    for text in ["jobs-worker", "done", "cleanup"] {
        assert!(status.contains(text), "local status does not show {text}:\n{status}");
    }

    let destroy = p.ok(&["destroy", "--yes"]);
    assert!(destroy.contains("13 deleted"), "{destroy}");
    assert!(p.ok(&["local", "status"]).contains("not running"));
}
