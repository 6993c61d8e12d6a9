//! `examples/upload-pipeline` end to end on the local cloud, through the real `skyform` binary,
//! in a sealed temporary copy, as its README tells a user to watch it: `POST /uploads` answers a
//! presigned URL; a PUT to it stores the file in the bucket; the bucket's event runs `enqueue`,
//! which queues a job; the `worker` trigger records the file in the `files` table; the table's
//! change stream runs `announce`, which publishes on the `processed` topic, whose `feed` queue
//! holds the SNS envelope. `aws s3 ls`, `aws dynamodb scan` and `aws sqs receive-message` (with
//! `skyform local env`) see each step; the `cleanup` schedule run now keeps the fresh upload, and
//! `sweep` invoked with `{"max_age_secs": 0}` deletes it; `destroy` removes everything.

mod common;

use common::example::{Example, http};
use serde_json::{Value, json};

#[test]
fn upload_pipeline_example_on_the_local_cloud() {
    let p = Example::new("upload-pipeline");
    let up = p.ok(&["up", "--yes"]);
    assert!(up.contains("+  17 created"), "{up}");
    let url = p.output("url");
    let bucket = p.output("bucket");
    let table = p.output("table");
    let feed_url = p.output("feed_queue_url");
    assert_eq!((bucket.as_str(), table.as_str()), ("uploads", "files"));

    // A bad file name is refused by `presign` with what to send.
    let (status, body) = http("POST", &format!("{url}/uploads"), "application/json", br#"{"name": "../x"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"send a JSON object with a file \"name\""#), "{body}");

    // A presigned URL, and the upload through it, straight to the bucket.
    let (status, body) =
        http("POST", &format!("{url}/uploads"), "application/json", br#"{"name": "cat.txt"}"#);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let (put_url, key) = (answer["url"].as_str().unwrap(), answer["key"].as_str().unwrap());
    assert!(key.starts_with("incoming/") && key.ends_with("/cat.txt"), "{answer}");
    assert!(put_url.contains("X-Amz-Signature="), "a SigV4 presigned URL: {put_url}");
    let content = b"a cat, in text\n";
    // The URL signs this key only: the same signature for another key is refused.
    let other = put_url.replacen("/cat.txt?", "/dog.txt?", 1);
    let (status, body) = http("PUT", &other, "text/plain", content);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let (status, body) = http("PUT", put_url, "text/plain", content);
    assert_eq!(status, 200, "{body}");

    // The bucket event, the job, the record, the change stream, the topic.
    p.wait_for_log("presign", &format!("presign: {key} may be uploaded for 300 s"));
    p.wait_for_log("enqueue", &format!("enqueue: {key} ({} bytes) queued", content.len()));
    p.wait_for_log("worker", &format!("worker: {key} recorded ({} bytes", content.len()));
    p.wait_for_log("announce", &format!("announce: {key} published"));

    let (_, listing) = p.aws(&["s3", "ls", "--recursive", &format!("s3://{bucket}/incoming/")]);
    assert!(listing.contains(key) && listing.contains(&format!(" {} ", content.len())), "{listing}");

    let (scan, _) = p.aws(&["dynamodb", "scan", "--table-name", &table]);
    let items = scan["Items"].as_array().expect("Items");
    assert_eq!(items.len(), 1, "{scan}");
    let sha = "sha256 of the content, from the worker";
    let item = &items[0];
    assert_eq!(item["key"], json!({"S": key}), "{item}");
    assert_eq!(item["size"], json!({"N": content.len().to_string()}), "{item}");
    let digest = item["sha256"]["S"].as_str().expect(sha);
    assert_eq!(digest.len(), 64, "{item}");

    let (received, _) = p.aws(&[
        "sqs",
        "receive-message",
        "--queue-url",
        &feed_url,
        "--wait-time-seconds",
        "5",
        "--max-number-of-messages",
        "10",
    ]);
    let messages = received["Messages"].as_array().expect("the feed queue has a message");
    assert_eq!(messages.len(), 1, "one new file: {received}");
    let envelope: Value = serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], "arn:aws:sns:us-east-1:000000000000:processed");
    assert_eq!(envelope["MessageAttributes"]["event"]["Value"], "file-processed");
    let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message, json!({"key": key, "size": content.len(), "sha256": digest}));

    // The daily cleanup, run now: the upload is younger than a day and stays.
    p.ok(&["local", "run-schedule", "cleanup"]);
    p.wait_for_log("sweep", "sweep: deleted 0 of 1 upload(s) older than 86400 s");
    // Invoked by hand with a maximum age of 0, it deletes it.
    let out = p.path().join("sweep.json");
    p.aws(&[
        "lambda",
        "invoke",
        "--function-name",
        "sweep",
        "--payload",
        r#"{"max_age_secs": 0}"#,
        out.to_str().unwrap(),
    ]);
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(result, json!({"deleted": 1, "seen": 1}));
    let (_, listing) = p.aws(&["s3", "ls", "--recursive", &format!("s3://{bucket}/")]);
    assert_eq!(listing.trim(), "", "the bucket is empty after the sweep");

    let status = p.ok(&["local", "status"]);
    for text in ["uploads", "files", "processed", "cleanup", "jobs-worker"] {
        assert!(status.contains(text), "local status does not show {text}:\n{status}");
    }
    let destroy = p.ok(&["destroy", "--yes"]);
    assert!(destroy.contains("17 deleted"), "{destroy}");
    assert!(p.ok(&["local", "status"]).contains("not running"));
}
