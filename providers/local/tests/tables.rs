//! Tables on the local cloud, driven by real clients: boto3 (`tables_boto3.py`, beside this
//! file) and the AWS CLI from the peers venv (`tests/peers/setup.sh`), against tables, change
//! triggers and functions deployed through the provider, as the engine deploys them; and a
//! crash test that kills the daemon with `kill -9` during 10,000 writes, and two that kill it
//! right after acknowledged writes (before the checkpoint; and with `SKYFORM_LOCAL_SYNC=always`).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Records every event it gets in `$RECORD_DIR/<function name>/`; `flaky` fails its first two.
const RECORDER: &str = r#"
import json, os, uuid

def handler(event, context):
    d = os.path.join(os.environ["RECORD_DIR"], context.function_name)
    os.makedirs(d, exist_ok=True)
    n = len([f for f in os.listdir(d) if f.endswith(".json")])
    tmp = os.path.join(d, ".%s.tmp" % uuid.uuid4().hex)
    with open(tmp, "w") as f:
        json.dump(event, f)
    os.rename(tmp, os.path.join(d, "%06d-%s.json" % (n, uuid.uuid4().hex)))
    if context.function_name == "flaky" and n < 2:
        raise RuntimeError("flaky fails attempt %d" % (n + 1))
    return {"ok": True}
"#;

/// The events function `name` recorded, oldest first.
fn records(dir: &Path, name: &str) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(name))
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|f| serde_json::from_slice(&std::fs::read(f).ok()?).ok()).collect()
}

fn key(name: &str, t: &str) -> Value {
    json!({"name": name, "type": t})
}

#[test]
fn tables_with_boto3_the_cli_and_the_provider() {
    let venv = venv();
    let p = Project::new("tables");
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    let mut prov = Provider::start(&p, "dev");
    let env = json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}});
    prov.function("recorder", "functions/rec", "python3", "app.handler", env.clone());
    prov.function("flaky", "functions/rec", "python3", "app.handler", env);

    // Bad schemas fail at check, before anything is deployed.
    let c = prov.check("local:Table", "bad", json!({"hash_key": {"name": "id", "type": "text"}}));
    assert_eq!(c["failures"][0]["property"], "hash_key", "{c}");
    let c = prov.check("local:Table", "bad", json!({"range_key": null}));
    assert!(c["failures"][0]["reason"].as_str().unwrap().contains("name"), "{c}");

    // The table as the SDK expands `Table` with an index, and its change trigger.
    let inputs = json!({
        "hash_key": key("pk", "string"),
        "range_key": key("sk", "string"),
        "indexes": [{"name": "byStatus", "hash_key": key("st", "string"), "range_key": key("n", "number")}],
    });
    let (checked, id, out) = prov.create("local:Table", "app/orders", inputs);
    assert_eq!(id, "app-orders");
    assert_eq!(out["table_name"], "app-orders");
    assert_eq!(out["arn"], "arn:aws:dynamodb:us-east-1:000000000000:table/app-orders");
    let (sub_checked, sub_id, sub) = prov.create(
        "local:TableSubscription",
        "orders-recorder",
        json!({"table": out["arn"], "function": "recorder"}),
    );
    assert_eq!(sub_checked["batch_size"], 100);
    assert_eq!(sub_checked["maximum_retry_attempts"], -1);
    assert!(
        sub["stream_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/app-orders/stream/")
    );
    let (_, _, flaky_table) =
        prov.create("local:Table", "flaky-events", json!({"hash_key": key("id", "string")}));
    prov.create(
        "local:TableSubscription",
        "flaky-sub",
        json!({"table": "flaky-events", "function": "flaky", "batch_size": 10}),
    );

    // The provider reads back what it deployed: no diff.
    let read = prov
        .call("read", json!({"type": "local:Table", "name": "app/orders", "id": id, "inputs": checked}))
        .unwrap();
    assert_eq!(read["resource"]["inputs"], checked);
    assert_eq!(read["resource"]["outputs"], out);
    let read = prov
        .call("read", json!({"type": "local:TableSubscription", "name": "orders-recorder", "id": sub_id, "inputs": sub_checked}))
        .unwrap();
    assert_eq!(read["resource"]["inputs"], sub_checked);

    // boto3: every operation, its errors, the change stream and its retries.
    let aws = aws_env(&p);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tables_boto3.py");
    let o = Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TABLE", "app-orders")
        .env("FLAKY_TABLE", flaky_table["table_name"].as_str().unwrap())
        .env("RECORD_DIR", &record_dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tables_boto3.py failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");

    // The AWS CLI.
    let t = "app-orders";
    cli_json(
        &venv,
        &aws,
        &[
            "dynamodb",
            "put-item",
            "--table-name",
            t,
            "--item",
            r#"{"pk": {"S": "cli"}, "sk": {"S": "1"}, "n": {"N": "7"}}"#,
        ],
    );
    let got = cli_json(
        &venv,
        &aws,
        &["dynamodb", "get-item", "--table-name", t, "--key", r#"{"pk": {"S": "cli"}, "sk": {"S": "1"}}"#],
    );
    assert_eq!(got["Item"]["n"], json!({"N": "7"}));
    let up = cli_json(
        &venv,
        &aws,
        &[
            "dynamodb",
            "update-item",
            "--table-name",
            t,
            "--key",
            r#"{"pk": {"S": "cli"}, "sk": {"S": "1"}}"#,
            "--update-expression",
            "SET n = n + :d",
            "--expression-attribute-values",
            r#"{":d": {"N": "3"}}"#,
            "--return-values",
            "ALL_NEW",
        ],
    );
    assert_eq!(up["Attributes"]["n"], json!({"N": "10"}));
    let q = cli_json(
        &venv,
        &aws,
        &[
            "dynamodb",
            "query",
            "--table-name",
            t,
            "--key-condition-expression",
            "pk = :p",
            "--expression-attribute-values",
            r#"{":p": {"S": "cli"}}"#,
        ],
    );
    assert_eq!(q["Count"], 1);
    let s = cli_json(&venv, &aws, &["dynamodb", "scan", "--table-name", t, "--select", "COUNT"]);
    assert!(s["Count"].as_u64().unwrap() > 30, "{s}");
    let bad = aws_cli(
        &venv,
        &aws,
        &[
            "dynamodb",
            "put-item",
            "--table-name",
            t,
            "--item",
            r#"{"pk": {"S": "cli"}, "sk": {"S": "1"}}"#,
            "--condition-expression",
            "attribute_not_exists(pk)",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ConditionalCheckFailedException"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let missing = aws_cli(&venv, &aws, &["dynamodb", "scan", "--table-name", "no-such-table"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));

    // An index added in place is built from the items already there.
    let mut with_index = checked.clone();
    with_index["indexes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "byN", "hash_key": key("n", "number"), "range_key": null}));
    prov.call("update", json!({"type": "local:Table", "name": "app/orders", "id": id, "olds": checked, "news": with_index, "old_outputs": out}))
        .unwrap();
    let q = cli_json(
        &venv,
        &aws,
        &[
            "dynamodb",
            "query",
            "--table-name",
            t,
            "--index-name",
            "byN",
            "--key-condition-expression",
            "n = :n",
            "--expression-attribute-values",
            r#"{":n": {"N": "10"}}"#,
        ],
    );
    assert_eq!(q["Items"][0]["pk"], json!({"S": "cli"}), "{q}");

    // Items survive a restart of the daemon.
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));
    let read = prov
        .call("read", json!({"type": "local:Table", "name": "app/orders", "id": id, "inputs": with_index}))
        .unwrap();
    assert_eq!(read["resource"]["inputs"], with_index);
    let got = cli_json(
        &venv,
        &aws,
        &["dynamodb", "get-item", "--table-name", t, "--key", r#"{"pk": {"S": "cli"}, "sk": {"S": "1"}}"#],
    );
    assert_eq!(got["Item"]["n"], json!({"N": "10"}));

    // Delete: the trigger, then the table.
    prov.call("delete", json!({"type": "local:TableSubscription", "name": "orders-recorder", "id": sub_id, "inputs": sub_checked, "outputs": sub}))
        .unwrap();
    prov.call(
        "delete",
        json!({"type": "local:Table", "name": "app/orders", "id": id, "inputs": with_index, "outputs": out}),
    )
    .unwrap();
    let gone = prov
        .call("read", json!({"type": "local:Table", "name": "app/orders", "id": id, "inputs": with_index}))
        .unwrap();
    assert_eq!(gone["resource"], Value::Null);
    let missing = aws_cli(&venv, &aws, &["dynamodb", "describe-table", "--table-name", t]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
}

/// Writes items `start..end` with 8 threads, in BatchWriteItem requests of 25 items, printing
/// each acknowledged id on its own line; stops at the first connection error (the daemon was
/// killed).
const WRITER: &str = r#"
import os, sys, threading
import boto3
from botocore.config import Config

table = os.environ["TABLE"]
start, end = int(sys.argv[1]), int(sys.argv[2])
cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
lock = threading.Lock()
stop = threading.Event()

def work(chunks):
    c = boto3.client("dynamodb", config=cfg)
    for ids in chunks:
        if stop.is_set():
            return
        reqs = [{"PutRequest": {"Item": {"id": {"N": str(i)}, "body": {"S": "item-%d-" % i + "x" * 64}}}} for i in ids]
        try:
            r = c.batch_write_item(RequestItems={table: reqs})
            assert not r["UnprocessedItems"], r
        except Exception:
            stop.set()
            return
        with lock:
            sys.stdout.write("".join("%d\n" % i for i in ids))
            sys.stdout.flush()

ids = list(range(start, end))
chunks = [ids[k:k + 25] for k in range(0, len(ids), 25)]
ts = [threading.Thread(target=work, args=(chunks[k::8],)) for k in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
"#;

/// Reads every item and prints `{id: body}` as JSON.
const READER: &str = r#"
import json, os, boto3
c = boto3.client("dynamodb")
out = {}
for page in c.get_paginator("scan").paginate(TableName=os.environ["TABLE"]):
    for it in page["Items"]:
        out[it["id"]["N"]] = it["body"]["S"]
print(json.dumps(out))
"#;

#[test]
fn kill_9_during_10000_writes_loses_no_acknowledged_item() {
    const TOTAL: u64 = 10_000;
    let venv = venv();
    let p = Project::new("tables-crash");
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    p.write("writer.py", WRITER);
    p.write("reader.py", READER);
    let mut prov = Provider::start(&p, "dev");
    prov.function(
        "recorder",
        "functions/rec",
        "python3",
        "app.handler",
        json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}}),
    );
    prov.create("local:Table", "crash", json!({"hash_key": key("id", "number")}));
    prov.create(
        "local:TableSubscription",
        "crash-recorder",
        json!({"table": "crash", "function": "recorder", "batch_size": 500}),
    );
    let aws = aws_env(&p);
    let python = format!("{venv}/bin/python");
    let writer = |start: u64, end: u64| {
        Command::new(&python)
            .arg(p.dir.join("writer.py"))
            .args([start.to_string(), end.to_string()])
            .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("TABLE", "crash")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };

    // Phase 1: write until the daemon is killed, once 2,000 writes are acknowledged.
    let started = Instant::now();
    let mut child = writer(0, TOTAL);
    let pid = p.daemon_pid().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if let Ok(i) = l.trim().parse() {
                let _ = tx.send(i);
            }
        }
    });
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 2000 && Instant::now() < deadline {
        if let Ok(i) = rx.recv_timeout(Duration::from_millis(100)) {
            acked.push(i);
        }
    }
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
    reader.join().unwrap();
    acked.extend(rx.try_iter());
    assert!(
        acked.len() >= 2000 && (acked.len() as u64) < TOTAL,
        "the kill came during the writes: {} acknowledged",
        acked.len()
    );
    let phase1 = started.elapsed();

    // Restart (the provider starts the daemon again): every acknowledged item is intact.
    prov.call("read", json!({"type": "local:Table", "name": "crash", "id": "crash", "inputs": {}})).unwrap();
    let read_all = || -> serde_json::Map<String, Value> {
        let o = Command::new(&python)
            .arg(p.dir.join("reader.py"))
            .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("TABLE", "crash")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap().as_object().unwrap().clone()
    };
    let items = read_all();
    for i in &acked {
        let body = items.get(&i.to_string()).unwrap_or_else(|| panic!("acknowledged item {i} is gone"));
        assert_eq!(body.as_str().unwrap(), format!("item-{i}-{}", "x".repeat(64)));
    }

    // Then the rest is written (from the first unacknowledged id on).
    let done: HashSet<u64> = acked.iter().copied().collect();
    let first_rest = (0..TOTAL).find(|i| !done.contains(i)).unwrap();
    let o = writer(first_rest, TOTAL).wait_with_output().unwrap();
    let acked2 = String::from_utf8_lossy(&o.stdout).lines().count() as u64;
    assert_eq!(acked2, TOTAL - first_rest, "phase 2 wrote everything");
    assert_eq!(read_all().len() as u64, TOTAL);

    // The change trigger fired at least once for every item (at-least-once across the kill).
    let seen = |dir: &Path| -> HashSet<String> {
        records(dir, "recorder")
            .iter()
            .flat_map(|e| e["Records"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["dynamodb"]["Keys"]["id"]["N"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        eventually(60, || seen(&record_dir).len() as u64 == TOTAL),
        "the trigger saw {} of {TOTAL} items",
        seen(&record_dir).len()
    );
    eprintln!(
        "crash test: {} acknowledged before the kill ({phase1:?}); {:?} in all",
        acked.len(),
        started.elapsed()
    );
}

/// Starts (`ready` once the client is up), then on a line on stdin writes ids 0..220 in a
/// burst — BatchWriteItem, PutItem, then an UpdateItem and a DeleteItem — and prints `done`
/// once every write is acknowledged.
const BURST: &str = r#"
import os, sys, boto3
c = boto3.client("dynamodb")
t = os.environ["TABLE"]
c.describe_table(TableName=t)
print("ready", flush=True)
sys.stdin.readline()
item = lambda i: {"id": {"N": str(i)}, "color": {"S": "c%d" % (i % 4)}}
for k in range(0, 200, 25):
    r = c.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": item(i)}} for i in range(k, k + 25)]})
    assert not r["UnprocessedItems"], r
for i in range(200, 220):
    c.put_item(TableName=t, Item=item(i))
c.update_item(TableName=t, Key={"id": {"N": "0"}}, UpdateExpression="SET color = :c",
              ExpressionAttributeValues={":c": {"S": "updated"}})
c.delete_item(TableName=t, Key={"id": {"N": "1"}})
print("done", flush=True)
"#;

/// Prints `{"items": {id: color}, "index": {color: [ids]}}`: a Scan, and a Query of the index
/// for each color.
const CHECK: &str = r#"
import json, os, boto3
c = boto3.client("dynamodb")
t = os.environ["TABLE"]
items = {}
for page in c.get_paginator("scan").paginate(TableName=t):
    for it in page["Items"]:
        items[it["id"]["N"]] = it["color"]["S"]
index = {}
for color in ["c0", "c1", "c2", "c3", "updated"]:
    q = c.get_paginator("query").paginate(TableName=t, IndexName="byColor",
        KeyConditionExpression="color = :c", ExpressionAttributeValues={":c": {"S": color}})
    index[color] = sorted(int(it["id"]["N"]) for page in q for it in page["Items"])
print(json.dumps({"items": items, "index": index}))
"#;

/// What [`burst_then_kill`] saw.
struct Burst {
    /// From the first write to the `kill -9`.
    took: Duration,
    /// The size of `tables.wal` after the kill.
    log: u64,
    /// [`CHECK`]'s answer after the restart.
    got: Value,
}

/// Deploys table `wal` (with index `byColor`) and a change trigger recording into
/// `records/recorder/`, on a daemon with `env`; writes [`BURST`] and kills the daemon with
/// `kill -9` as soon as the last write is acknowledged; restarts it and reads everything back.
fn burst_then_kill(p: &Project, env: &[(&str, &str)]) -> Burst {
    use std::io::{BufRead, Write};
    let venv = venv();
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    p.write("burst.py", BURST);
    p.write("check.py", CHECK);
    let mut prov = Provider::start_with_env(p, "dev", env);
    prov.function(
        "recorder",
        "functions/rec",
        "python3",
        "app.handler",
        json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}}),
    );
    let inputs = json!({
        "hash_key": key("id", "number"),
        "indexes": [{"name": "byColor", "hash_key": key("color", "string"), "range_key": null}],
    });
    prov.create("local:Table", "wal", inputs.clone());
    prov.create("local:TableSubscription", "wal-recorder", json!({"table": "wal", "function": "recorder"}));
    let aws = aws_env(p);
    let python = format!("{venv}/bin/python");
    let mut burst = Command::new(&python)
        .arg(p.dir.join("burst.py"))
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TABLE", "wal")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(burst.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // The last checkpoint is over a second old: the burst's writes open a new one-second window.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = p.daemon_pid().unwrap();
    let started = Instant::now();
    writeln!(burst.stdin.take().unwrap()).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let took = started.elapsed();
    assert_eq!(line.trim(), "done", "every write of the burst was acknowledged");
    assert!(burst.wait().unwrap().success());
    assert!(eventually(5, || !alive(pid)));
    let log = std::fs::metadata(p.dir.join(".skyform/local/tables.wal")).map(|m| m.len()).unwrap_or(0);

    // Restart (the provider starts the daemon again) and read everything back.
    prov.call("read", json!({"type": "local:Table", "name": "wal", "id": "wal", "inputs": inputs})).unwrap();
    let o = Command::new(&python)
        .arg(p.dir.join("check.py"))
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TABLE", "wal")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Burst { took, log, got: serde_json::from_slice(&o.stdout).unwrap() }
}

/// Every write of [`BURST`] is in `got`: the items and their index entries.
fn assert_burst_kept(got: &Value) {
    let items = got["items"].as_object().unwrap();
    assert_eq!(items.len(), 219, "220 written, 1 deleted");
    for i in 2..220 {
        assert_eq!(items[&i.to_string()], json!(format!("c{}", i % 4)), "item {i}");
    }
    assert_eq!(items["0"], json!("updated"));
    assert!(!items.contains_key("1"));
    for c in 0..4 {
        let want: Vec<u64> = (2..220).filter(|i| i % 4 == c).collect();
        assert_eq!(got["index"][format!("c{c}")], json!(want), "index entries of color c{c}");
    }
    assert_eq!(got["index"]["updated"], json!([0]));
}

/// Writes acknowledged right before a `kill -9` — before the checkpoint that puts them on
/// disk, so only the write-ahead log holds them — are all there after the restart: the items,
/// their index entries, and their change records (the trigger delivers every one).
#[test]
fn kill_9_right_after_acknowledged_writes_keeps_items_index_entries_and_change_records() {
    let p = Project::new("tables-wal");
    let b = burst_then_kill(&p, &[]);
    if b.took < Duration::from_millis(900) {
        // Killed inside the checkpoint window: the log is what holds the burst.
        assert!(b.log > 0, "the burst took {:?} and yet the log is empty", b.took);
    } else {
        eprintln!(
            "the burst took {:?} (a loaded machine): a checkpoint may have come before the kill",
            b.took
        );
    }
    assert_burst_kept(&b.got);

    // The change records: every write reaches the trigger (at least once).
    let record_dir = p.dir.join("records");
    let seen = || -> HashSet<String> {
        records(&record_dir, "recorder")
            .iter()
            .flat_map(|e| e["Records"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                format!(
                    "{} {}",
                    r["eventName"].as_str().unwrap_or(""),
                    r["dynamodb"]["Keys"]["id"]["N"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let mut want: HashSet<String> = (0..220).map(|i| format!("INSERT {i}")).collect();
    want.insert("MODIFY 0".into());
    want.insert("REMOVE 1".into());
    assert!(
        eventually(30, || want.is_subset(&seen())),
        "change records missing after the restart: {:?}",
        want.difference(&seen()).take(10).collect::<Vec<_>>()
    );
}

/// `SKYFORM_LOCAL_SYNC=always`: every write is committed with an fsync before its answer, so
/// nothing goes to the log, and a `kill -9` right after loses nothing either.
#[test]
fn sync_always_writes_no_log_and_keeps_acknowledged_writes() {
    let p = Project::new("tables-sync");
    let b = burst_then_kill(&p, &[("SKYFORM_LOCAL_SYNC", "always")]);
    assert_eq!(b.log, 0, "with SKYFORM_LOCAL_SYNC=always nothing is logged");
    assert_burst_kept(&b.got);
}
