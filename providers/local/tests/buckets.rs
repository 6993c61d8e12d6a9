//! Buckets on the local cloud, driven by real clients: boto3 (`buckets_boto3.py`, beside this
//! file) and the AWS CLI from the peers venv (`tests/peers/setup.sh`), against buckets and
//! notifications deployed through the provider as the engine deploys them; and a crash test
//! that kills the daemon with `kill -9` during 1,000 uploads.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Records every event it gets in `$RECORD_DIR/<function name>/`.
const RECORDER: &str = r#"
import json, os, uuid

def handler(event, context):
    d = os.path.join(os.environ["RECORD_DIR"], context.function_name)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, ".%s.tmp" % uuid.uuid4().hex)
    with open(tmp, "w") as f:
        json.dump(event, f)
    os.rename(tmp, os.path.join(d, "%s.json" % uuid.uuid4().hex))
    return {"ok": True}
"#;

/// The S3 records function `name` got, in no particular order.
fn records(dir: &Path, name: &str) -> Vec<Value> {
    let files: Vec<_> = std::fs::read_dir(dir.join(name))
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default();
    files
        .iter()
        .filter_map(|f| serde_json::from_slice::<Value>(&std::fs::read(f).ok()?).ok())
        .flat_map(|e| e["Records"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn boto3_drives_every_operation_against_a_deployed_bucket() {
    let venv = venv();
    let p = Project::new("buckets-boto3");
    let mut prov = Provider::start(&p, "dev");
    let (_, id, out) = prov.create("local:Bucket", "Test_Bucket", json!({}));
    assert_eq!(id, "test-bucket");
    assert_eq!(out, json!({"bucket_name": "test-bucket", "arn": "arn:aws:s3:::test-bucket"}));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buckets_boto3.py");
    let o = Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .envs(aws_env(&p))
        .env("BUCKET", "test-bucket")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "buckets_boto3.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains(r#"{"done": true}"#), "{stdout}");
    // Nothing of the odd keys reached outside the buckets' folders.
    let mut top: Vec<String> = std::fs::read_dir(p.dir.join(".skyform/local/buckets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["made-by-boto3", "test-bucket"]);
    assert!(!p.dir.join(".skyform/etc").exists() && !p.dir.join("escape").exists());
}

#[test]
fn aws_cli_copies_syncs_lists_and_removes_including_a_100_mib_multipart_upload() {
    let venv = venv();
    let p = Project::new("buckets-cli");
    let mut prov = Provider::start(&p, "dev");
    prov.create("local:Bucket", "cli", json!({}));
    let env = aws_env(&p);
    let tmp = p.dir.join("files");
    std::fs::create_dir_all(tmp.join("tree/sub")).unwrap();

    // 100 MiB of pseudo-random bytes: the CLI uploads it in 8 MiB parts.
    let big = tmp.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..(100 * 1024 * 1024 / 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    let big_s = big.to_string_lossy().into_owned();
    cli(&venv, &env, &["s3", "cp", &big_s, "s3://cli/big/big.bin", "--only-show-errors"]);
    let head = cli_json(&venv, &env, &["s3api", "head-object", "--bucket", "cli", "--key", "big/big.bin"]);
    assert_eq!(head["ContentLength"], 100 * 1024 * 1024);
    assert!(head["ETag"].as_str().unwrap().ends_with("-13\""), "multipart ETag: {head}");
    let back = tmp.join("back.bin");
    cli(&venv, &env, &["s3", "cp", "s3://cli/big/big.bin", &back.to_string_lossy(), "--only-show-errors"]);
    assert!(
        std::fs::read(&big).unwrap() == std::fs::read(&back).unwrap(),
        "the 100 MiB object came back intact"
    );

    // sync, ls, rm.
    std::fs::write(tmp.join("tree/a.txt"), "a").unwrap();
    std::fs::write(tmp.join("tree/sub/b.txt"), "bb").unwrap();
    std::fs::write(tmp.join("tree/with space.txt"), "c").unwrap();
    // `aws s3 sync` uploads a file whose mtime is newer than the object's LastModified, which S3
    // gives in whole seconds: files written in the second of their upload would look newer.
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    for f in ["tree/a.txt", "tree/sub/b.txt", "tree/with space.txt"] {
        std::fs::File::options().write(true).open(tmp.join(f)).unwrap().set_modified(before).unwrap();
    }
    let tree = tmp.join("tree").to_string_lossy().into_owned();
    cli(&venv, &env, &["s3", "sync", &tree, "s3://cli/tree", "--only-show-errors"]);
    let ls = cli(&venv, &env, &["s3", "ls", "s3://cli/tree/"]);
    assert!(ls.contains("PRE sub/") && ls.contains("a.txt") && ls.contains("with space.txt"), "{ls}");
    let ls = cli(&venv, &env, &["s3", "ls", "s3://cli", "--recursive"]);
    assert_eq!(ls.lines().count(), 4, "{ls}");
    // A second sync uploads nothing; a changed file is uploaded again.
    let again = cli(&venv, &env, &["s3", "sync", &tree, "s3://cli/tree"]);
    assert!(again.trim().is_empty(), "{again}");
    std::fs::write(tmp.join("tree/a.txt"), "changed").unwrap();
    let again = cli(&venv, &env, &["s3", "sync", &tree, "s3://cli/tree"]);
    assert!(again.contains("tree/a.txt") && !again.contains("b.txt"), "{again}");
    let down = tmp.join("down");
    cli(&venv, &env, &["s3", "sync", "s3://cli/tree", &down.to_string_lossy(), "--only-show-errors"]);
    assert_eq!(std::fs::read_to_string(down.join("a.txt")).unwrap(), "changed");
    assert_eq!(std::fs::read_to_string(down.join("sub/b.txt")).unwrap(), "bb");
    cli(&venv, &env, &["s3", "rm", "s3://cli/tree", "--recursive", "--only-show-errors"]);
    let ls = cli(&venv, &env, &["s3", "ls", "s3://cli", "--recursive"]);
    assert_eq!(ls.lines().count(), 1, "{ls}");

    // s3api calls.
    let f = tmp.join("small.txt");
    std::fs::write(&f, "small body").unwrap();
    let put = cli_json(
        &venv,
        &env,
        &[
            "s3api",
            "put-object",
            "--bucket",
            "cli",
            "--key",
            "api/small.txt",
            "--body",
            &f.to_string_lossy(),
            "--content-type",
            "text/plain",
            "--metadata",
            "k=v",
        ],
    );
    assert_eq!(put["ETag"], format!("\"{}\"", md5_hex(b"small body")));
    let got = tmp.join("got.txt");
    let meta = cli_json(
        &venv,
        &env,
        &["s3api", "get-object", "--bucket", "cli", "--key", "api/small.txt", &got.to_string_lossy()],
    );
    assert_eq!(meta["Metadata"], json!({"k": "v"}));
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "small body");
    let list = cli_json(&venv, &env, &["s3api", "list-objects-v2", "--bucket", "cli", "--prefix", "api/"]);
    assert_eq!(list["Contents"].as_array().map(Vec::len), Some(1), "{list}");
    cli(
        &venv,
        &env,
        &[
            "s3api",
            "copy-object",
            "--bucket",
            "cli",
            "--key",
            "api/copy.txt",
            "--copy-source",
            "cli/api/small.txt",
        ],
    );
    cli(&venv, &env, &["s3api", "delete-object", "--bucket", "cli", "--key", "api/small.txt"]);
    let missing =
        aws_cli(&venv, &env, &["s3api", "head-object", "--bucket", "cli", "--key", "api/small.txt"]);
    assert!(!missing.status.success() && String::from_utf8_lossy(&missing.stderr).contains("404"));
    let missing =
        aws_cli(&venv, &env, &["s3api", "get-object", "--bucket", "cli", "--key", "nope", "/dev/null"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NoSuchKey"));
    let bad = aws_cli(&venv, &env, &["s3", "mb", "s3://Bad_Name"]);
    assert!(!bad.status.success());
    let loc = cli_json(&venv, &env, &["s3api", "get-bucket-location", "--bucket", "cli"]);
    assert_eq!(loc["LocationConstraint"], Value::Null);
}

fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn bucket_resources_check_persist_and_refuse_to_delete_non_empty() {
    let venv = venv();
    let p = Project::new("buckets-provider");
    // The daemon inherits the variable: every write is fsynced before its answer.
    let mut prov = Provider::start_with_env(&p, "dev", &[("SKYFORM_LOCAL_SYNC", "always")]);
    // Bad inputs fail at check.
    let c = prov.check("local:Bucket", "b", json!({"force_destroy": "yes"}));
    assert_eq!(c["failures"][0]["property"], "force_destroy", "{c}");
    let c = prov.check(
        "local:BucketNotification",
        "n",
        json!({"bucket": "b", "function": "f", "events": ["s3:ObjectCreated:Nope"]}),
    );
    let reasons: Vec<&str> =
        c["failures"].as_array().unwrap().iter().map(|f| f["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.contains("not a valid bucket name")), "{c}");
    assert!(reasons.iter().any(|r| r.contains("unknown event")), "{c}");

    let (inputs, id, out) = prov.create("local:Bucket", "keep", json!({}));
    assert_eq!(inputs, json!({"versioning": false, "force_destroy": false}));
    let env = aws_env(&p);
    let f = p.dir.join("o.txt");
    std::fs::write(&f, "persisted").unwrap();
    cli(&venv, &env, &["s3", "cp", &f.to_string_lossy(), "s3://keep/o.txt", "--only-show-errors"]);

    // kill -9, then the provider's read starts the daemon again: the object is there.
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));
    let read = prov
        .call("read", json!({"type": "local:Bucket", "name": "keep", "id": id, "inputs": inputs}))
        .unwrap();
    assert_eq!(read["resource"]["outputs"], out);
    assert_eq!(read["resource"]["inputs"], inputs);
    assert_eq!(cli(&venv, &env, &["s3", "cp", "s3://keep/o.txt", "-"]), "persisted");
    let token = std::fs::read_to_string(p.dir.join(".skyform/local/token")).unwrap();
    let daemon: Value =
        serde_json::from_slice(&std::fs::read(p.dir.join(".skyform/local/daemon.json")).unwrap()).unwrap();
    let st = http(
        daemon["port"].as_u64().unwrap() as u16,
        "GET",
        "/v1/status",
        &[("Authorization", &format!("Bearer {}", token.trim()))],
        b"",
    )
    .json();
    assert_eq!(st["buckets"]["durability"], "fsync before every answer", "{st}");

    // Not empty: refused, with what to do.
    let del = json!({"type": "local:Bucket", "name": "keep", "id": id, "inputs": inputs, "outputs": out});
    let e = prov.call("delete", del.clone()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("BucketNotEmpty") && msg.contains("force_destroy"), "{msg}");
    assert_eq!(cli(&venv, &env, &["s3", "cp", "s3://keep/o.txt", "-"]), "persisted");
    // With force_destroy the bucket goes with its objects.
    let forced = json!({"versioning": false, "force_destroy": true});
    prov.call(
        "update",
        json!({"type": "local:Bucket", "name": "keep", "id": id, "olds": inputs, "news": forced, "old_outputs": out}),
    )
    .unwrap();
    prov.call(
        "delete",
        json!({"type": "local:Bucket", "name": "keep", "id": id, "inputs": forced, "outputs": out}),
    )
    .unwrap();
    let gone = prov
        .call("read", json!({"type": "local:Bucket", "name": "keep", "id": id, "inputs": forced}))
        .unwrap();
    assert_eq!(gone["resource"], Value::Null);
    assert!(!p.dir.join(".skyform/local/buckets/keep").exists());
}

#[test]
fn notifications_deliver_s3_event_records_with_prefix_and_suffix_filters() {
    let venv = venv();
    let p = Project::new("buckets-events");
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    let mut prov = Provider::start(&p, "dev");
    let env_in = json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}});
    prov.function("created", "functions/rec", "python3", "app.handler", env_in.clone());
    prov.function("removed", "functions/rec", "python3", "app.handler", env_in);
    prov.create("local:Bucket", "events", json!({}));
    // As the SDK expands on_object_created with a filter, and on_object_removed.
    prov.create(
        "local:BucketNotification",
        "events-created-created",
        json!({"bucket": "events", "function": "created", "events": ["s3:ObjectCreated:*"], "prefix": "in/", "suffix": ".txt"}),
    );
    prov.create(
        "local:BucketNotification",
        "events-removed-removed",
        json!({"bucket": "events", "function": "removed", "events": ["s3:ObjectRemoved:*"], "prefix": null, "suffix": null}),
    );
    let env = aws_env(&p);
    let script = r#"
import os, boto3
s3 = boto3.client("s3")
s3.put_object(Bucket="events", Key="in/a b+c.txt", Body=b"12345")
s3.put_object(Bucket="events", Key="in/skip.jpg", Body=b"x")
s3.put_object(Bucket="events", Key="out/skip.txt", Body=b"x")
s3.copy_object(Bucket="events", Key="in/copied.txt", CopySource={"Bucket": "events", "Key": "out/skip.txt"})
u = s3.create_multipart_upload(Bucket="events", Key="in/mp.txt")["UploadId"]
e = s3.upload_part(Bucket="events", Key="in/mp.txt", UploadId=u, PartNumber=1, Body=b"part")["ETag"]
s3.complete_multipart_upload(Bucket="events", Key="in/mp.txt", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
s3.delete_object(Bucket="events", Key="out/skip.txt")
s3.delete_objects(Bucket="events", Delete={"Objects": [{"Key": "in/skip.jpg"}, {"Key": "never-there"}]})
"#;
    let o =
        Command::new(format!("{venv}/bin/python")).arg("-c").arg(script).envs(env.clone()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    assert!(eventually(20, || records(&record_dir, "created").len() >= 3
        && records(&record_dir, "removed").len() >= 2));
    std::thread::sleep(Duration::from_millis(500));
    let created = records(&record_dir, "created");
    let by_key: HashMap<String, &Value> =
        created.iter().map(|r| (r["s3"]["object"]["key"].as_str().unwrap().to_string(), r)).collect();
    let mut keys: Vec<&str> = by_key.keys().map(String::as_str).collect();
    keys.sort();
    // S3 form-encodes keys in event records: space as `+`, `+` as `%2B`.
    assert_eq!(keys, ["in/a+b%2Bc.txt", "in/copied.txt", "in/mp.txt"], "{created:#?}");
    let put = by_key["in/a+b%2Bc.txt"];
    assert_eq!(put["eventVersion"], "2.1");
    assert_eq!(put["eventSource"], "aws:s3");
    assert_eq!(put["awsRegion"], "us-east-1");
    assert_eq!(put["eventName"], "ObjectCreated:Put");
    assert_eq!(put["s3"]["bucket"]["name"], "events");
    assert_eq!(put["s3"]["bucket"]["arn"], "arn:aws:s3:::events");
    assert_eq!(put["s3"]["configurationId"], "events-created-created");
    assert_eq!(put["s3"]["object"]["size"], 5);
    assert_eq!(put["s3"]["object"]["eTag"], md5_hex(b"12345"));
    assert_eq!(put["s3"]["object"]["sequencer"].as_str().unwrap().len(), 16);
    let t = put["eventTime"].as_str().unwrap();
    assert!(t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    assert_eq!(by_key["in/copied.txt"]["eventName"], "ObjectCreated:Copy");
    assert_eq!(by_key["in/mp.txt"]["eventName"], "ObjectCreated:CompleteMultipartUpload");
    assert!(by_key["in/mp.txt"]["s3"]["object"]["eTag"].as_str().unwrap().ends_with("-1"));

    let removed = records(&record_dir, "removed");
    let mut keys: Vec<&str> = removed.iter().map(|r| r["s3"]["object"]["key"].as_str().unwrap()).collect();
    keys.sort();
    // An absent key deletes nothing and sends no event, as on S3.
    assert_eq!(keys, ["in/skip.jpg", "out/skip.txt"], "{removed:#?}");
    assert!(
        removed
            .iter()
            .all(|r| r["eventName"] == "ObjectRemoved:Delete" && r["s3"]["object"].get("size").is_none())
    );
    let seqs: Vec<String> = created
        .iter()
        .chain(&removed)
        .map(|r| r["s3"]["object"]["sequencer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), seqs.len(), "one sequencer per event");
    // The daemon's status shows the bucket, its notifications and an empty outbox.
    let token = std::fs::read_to_string(p.dir.join(".skyform/local/token")).unwrap();
    let daemon: Value =
        serde_json::from_slice(&std::fs::read(p.dir.join(".skyform/local/daemon.json")).unwrap()).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let status = || {
        http(daemon["port"].as_u64().unwrap() as u16, "GET", "/v1/status", &[("Authorization", &auth)], b"")
            .json()
    };
    assert!(eventually(5, || status()["buckets"]["pending_events"] == 0), "{}", status());
    let st = status();
    assert_eq!(st["buckets"]["buckets"], json!([{"name": "events", "objects": 3}]), "{st}");
    assert_eq!(st["buckets"]["durability"], "kill -9-safe, fsynced within a second", "the default: {st}");
    assert_eq!(st["buckets"]["notifications"].as_array().unwrap().len(), 2, "{st}");
    // The outbox is empty once delivered.
    assert!(eventually(5, || std::fs::read_dir(p.dir.join(".skyform/local/bucket_events"))
        .unwrap()
        .flatten()
        .all(|e| e.file_name().to_string_lossy().starts_with('.'))));
}

/// Uploads keys `start..end` with 4 threads (every fifth twice: an overwrite), printing each
/// acknowledged key on its own line;
/// stops at the first connection error (the daemon was killed).
const UPLOADER: &str = r#"
import os, sys, threading
import boto3
from botocore.config import Config

start, end = int(sys.argv[1]), int(sys.argv[2])
cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
lock = threading.Lock()
stop = threading.Event()

def body(i):
    return (("object %d " % i) * (1 + i % 50)).encode()

def work(ids):
    c = boto3.client("s3", config=cfg)
    for i in ids:
        if stop.is_set():
            return
        try:
            if i % 5 == 0:
                # Overwritten at once: the second write swaps the first one out.
                c.put_object(Bucket="crash", Key="up/%04d.txt" % i, Body=b"stale")
            c.put_object(Bucket="crash", Key="up/%04d.txt" % i, Body=body(i))
        except Exception:
            stop.set()
            return
        with lock:
            sys.stdout.write("%d\n" % i)
            sys.stdout.flush()

ids = list(range(start, end))
ts = [threading.Thread(target=work, args=(ids[k::4],)) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
"#;

/// Prints `{key: body}` of every object, as JSON.
const DOWNLOADER: &str = r#"
import json, boto3
c = boto3.client("s3")
out = {}
for page in c.get_paginator("list_objects_v2").paginate(Bucket="crash"):
    for o in page.get("Contents", []):
        out[o["Key"]] = c.get_object(Bucket="crash", Key=o["Key"])["Body"].read().decode()
print(json.dumps(out))
"#;

#[test]
fn kill_9_during_1000_uploads_loses_no_acknowledged_object_or_event() {
    const TOTAL: u64 = 1000;
    let venv = venv();
    let p = Project::new("buckets-crash");
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    p.write("uploader.py", UPLOADER);
    p.write("downloader.py", DOWNLOADER);
    let mut prov = Provider::start(&p, "dev");
    prov.function(
        "recorder",
        "functions/rec",
        "python3",
        "app.handler",
        json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}}),
    );
    prov.create("local:Bucket", "crash", json!({}));
    prov.create(
        "local:BucketNotification",
        "crash-created-recorder",
        json!({"bucket": "crash", "function": "recorder", "events": ["s3:ObjectCreated:*"]}),
    );
    let aws = aws_env(&p);
    let python = format!("{venv}/bin/python");
    let uploader = |start: u64, end: u64| {
        Command::new(&python)
            .arg(p.dir.join("uploader.py"))
            .args([start.to_string(), end.to_string()])
            .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let body = |i: u64| format!("object {i} ").repeat(1 + (i % 50) as usize);

    // Phase 1: upload until the daemon is killed, once a few hundred are acknowledged.
    let started = Instant::now();
    let mut child = uploader(0, TOTAL);
    let pid = p.daemon_pid().unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let reader = {
        let acked = acked.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(i) = l.trim().parse() {
                    acked.lock().unwrap().push(i);
                }
            }
        })
    };
    assert!(eventually(60, || acked.lock().unwrap().len() >= 300), "uploads are acknowledged");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    child.wait().unwrap();
    reader.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!((acked.len() as u64) < TOTAL, "the kill came during the uploads: {} acknowledged", acked.len());
    // Nothing half-written is left in view: the temporary files are cleared at the next start.

    // Restart (the provider starts the daemon again) and upload the rest.
    prov.call("read", json!({"type": "local:Bucket", "name": "crash", "id": "crash", "inputs": {}})).unwrap();
    let done: HashSet<u64> = acked.iter().copied().collect();
    let first_rest = (0..TOTAL).find(|i| !done.contains(i)).unwrap();
    let o = uploader(first_rest, TOTAL).wait_with_output().unwrap();
    let acked2 = String::from_utf8_lossy(&o.stdout).lines().count() as u64;
    assert_eq!(acked2, TOTAL - first_rest, "phase 2 uploaded everything");

    // Every acknowledged object is intact; every object is whole.
    let o = Command::new(&python)
        .arg(p.dir.join("downloader.py"))
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objects: Value = serde_json::from_slice(&o.stdout).unwrap();
    let objects = objects.as_object().unwrap();
    for i in &acked {
        let got = objects
            .get(&format!("up/{i:04}.txt"))
            .unwrap_or_else(|| panic!("acknowledged object {i} is gone"));
        assert_eq!(got.as_str().unwrap(), body(*i));
    }
    for (k, v) in objects {
        let i: u64 = k[3..7].parse().unwrap();
        assert_eq!(v.as_str().unwrap(), body(i), "{k} is whole");
    }
    assert_eq!(objects.len() as u64, TOTAL);
    // Nothing but empty spare files stays in tmp/: the files left by the kill were removed at
    // the restart, the overwritten ones by the background thread.
    let tmp = p.dir.join(".skyform/local/buckets/crash/tmp");
    let leftovers = || -> Vec<String> {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(eventually(10, || leftovers().is_empty()), "files left in {}: {:?}", tmp.display(), leftovers());

    // The trigger fired at least once for every object (at-least-once across the kill).
    let seen = |dir: &Path| -> HashSet<String> {
        records(dir, "recorder")
            .iter()
            .filter_map(|r| r["s3"]["object"]["key"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        eventually(60, || seen(&record_dir).len() as u64 == TOTAL),
        "the trigger saw {} of {TOTAL} objects",
        seen(&record_dir).len()
    );
    eprintln!("crash test: {} acknowledged before the kill; {:?} in all", acked.len(), started.elapsed());
}
