//! Buckets and tables through the real `skyform` binary on the `local` target, in a sealed
//! project whose program prints a manifest: `up` deploys a function, a bucket with an
//! object-created notification filtered by prefix, and a table; boto3 in the user's shell (with
//! `skyform local env`) uploads objects and writes an item; the function receives the S3 event
//! for the matching key only; `skyform local status` lists the bucket and the table; `destroy`
//! removes them, and keeps the local cloud running while a bucket made with the S3 API remains.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const PY_ON_UPLOAD: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        for r in event["Records"]:
            f.write(r["eventName"] + " " + r["s3"]["bucket"]["name"] + " " + r["s3"]["object"]["key"] + "\n")
    return {}
"#;

#[test]
fn buckets_and_tables_through_the_cli() {
    let venv = common::peers_venv();
    let env = TestEnv::new("e2e-storage");
    let _stop = StopDaemon(&env);
    env.write("functions/on_upload/app.py", PY_ON_UPLOAD);
    let out = env.path().join("uploads.txt");
    env.manifest(json!([
        {"name": "on-upload", "type": "local:Function", "inputs": {
            "code": "functions/on_upload", "handler": "app.handler", "runtime": "python3",
            "environment": {"OUT": out.to_string_lossy()}}},
        {"name": "photos", "type": "local:Bucket", "inputs": {"versioning": false, "force_destroy": true}},
        {"name": "photos-created-on-upload", "type": "local:BucketNotification", "inputs": {
            "bucket": {"$ref": "photos", "output": "bucket_name"},
            "function": {"$ref": "on-upload", "output": "function_name"},
            "events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": null}},
        {"name": "notes", "type": "local:Table", "inputs": {
            "hash_key": {"name": "id", "type": "S"}, "range_key": null}}
    ]));
    env.run(&["up", "--yes"]).ok();

    let text = String::from_utf8(env.command(&["local", "env"]).output().unwrap().stdout).unwrap();
    let vars: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap().split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    let script = "import boto3\n\
        s3 = boto3.client('s3')\n\
        s3.put_object(Bucket='photos', Key='in/cat.jpg', Body=b'meow')\n\
        s3.put_object(Bucket='photos', Key='elsewhere/dog.jpg', Body=b'woof')\n\
        s3.create_bucket(Bucket='scratch')\n\
        assert s3.get_object(Bucket='photos', Key='in/cat.jpg')['Body'].read() == b'meow'\n\
        db = boto3.client('dynamodb')\n\
        db.put_item(TableName='notes', Item={'id': {'S': 'n1'}, 'text': {'S': 'hello'}})\n\
        assert db.get_item(TableName='notes', Key={'id': {'S': 'n1'}})['Item']['text']['S'] == 'hello'\n";
    let py = Command::new(format!("{venv}/bin/python"))
        .args(["-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", env.path())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));

    // The notification fires for the key under `in/` only.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !std::fs::read_to_string(&out).is_ok_and(|s| s.contains("cat.jpg")) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ObjectCreated:Put photos in/cat.jpg\n");

    let status = env.run(&["local", "status"]);
    let text = &status.ok().stdout;
    assert!(text.contains("bucket   photos  2 objects"), "{text}");
    assert!(text.contains("table    notes  1 items"), "{text}");

    // A second `up` changes nothing. Destroy removes what the stack made; the bucket made with
    // the S3 API stays, so the local cloud keeps running to serve it.
    let again = env.run(&["up", "--yes"]);
    assert!(again.ok().stdout.contains("no changes"), "{}", again.text());
    let destroy = env.run(&["destroy", "--yes"]);
    assert!(!destroy.ok().stderr.contains("stopped the local cloud"), "{}", destroy.text());
    let raw = env.command(&["local", "status", "--json"]).output().unwrap();
    let json: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(json["tables"], json!([]), "{json}");
    assert_eq!(json["buckets"]["buckets"], json!([{"name": "scratch", "objects": 0}]), "{json}");
}
