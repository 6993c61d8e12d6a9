//! Topics on the local cloud, driven by real clients: boto3 (`sns_boto3.py`, beside this file)
//! and the AWS CLI from the peers venv (`tests/peers/setup.sh`), against topics, queues and
//! functions deployed through the provider, as the engine deploys them.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    files.iter().map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap()).collect()
}

fn messages(dir: &Path, name: &str) -> Vec<String> {
    records(dir, name)
        .iter()
        .map(|e| e["Records"][0]["Sns"]["Message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn queue(prov: &mut Provider, name: &str, fifo: bool) -> Value {
    prov.create(
        "local:Queue",
        name,
        json!({"fifo": fifo, "visibility_timeout": 30, "message_retention": 345600, "delay": 0, "dead_letter": null}),
    )
    .2
}

#[test]
fn topics_with_boto3_the_cli_and_the_provider() {
    let venv = venv();
    let p = Project::new("sns");
    let record_dir = p.dir.join("records");
    p.write("functions/rec/app.py", RECORDER);
    let mut prov = Provider::start(&p, "dev");
    let env = json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}});
    prov.function("recorder", "functions/rec", "python3", "app.handler", env.clone());
    let flaky = prov.function("flaky", "functions/rec", "python3", "app.handler", env);

    // The topic and its function subscription, as the SDK expands `Topic` and `subscribe`.
    let (topic_inputs, topic_id, topic) = prov.create("local:Topic", "events", json!({"fifo": false}));
    let topic_arn = topic["arn"].as_str().unwrap().to_string();
    assert_eq!(topic_arn, "arn:aws:sns:us-east-1:000000000000:events");
    assert_eq!(topic["topic_name"], "events");
    assert_eq!(topic_id, topic_arn);
    let sub_inputs = json!({"topic": topic_arn, "function": "recorder"});
    let (sub_checked, sub_id, sub_out) =
        prov.create("local:TopicSubscription", "events-recorder", sub_inputs);
    assert!(sub_id.starts_with(&format!("{topic_arn}:")), "{sub_id}");
    assert_eq!(sub_out["arn"], sub_id.as_str());
    let q = queue(&mut prov, "notified", false);
    let raw_q = queue(&mut prov, "notified-raw", false);
    let fifo_q = queue(&mut prov, "ordered", true);

    // boto3: every operation, the envelope, raw delivery, filters, errors, retries.
    let aws = aws_env(&p);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sns_boto3.py");
    let out = Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TOPIC_ARN", &topic_arn)
        .env("QUEUE_URL", q["url"].as_str().unwrap())
        .env("RAW_QUEUE_URL", raw_q["url"].as_str().unwrap())
        .env("FIFO_QUEUE_URL", fifo_q["url"].as_str().unwrap())
        .env("FLAKY_ARN", flaky["arn"].as_str().unwrap())
        .env("RECORD_DIR", &record_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sns_boto3.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");

    // The AWS CLI.
    let topics = cli_json(&venv, &aws, &["sns", "list-topics"]);
    assert_eq!(topics["Topics"], json!([{"TopicArn": topic_arn}]));
    let r = cli_json(
        &venv,
        &aws,
        &[
            "sns",
            "publish",
            "--topic-arn",
            &topic_arn,
            "--message",
            "from the cli",
            "--message-attributes",
            r#"{"color": {"DataType": "String", "StringValue": "red"}}"#,
        ],
    );
    assert!(r["MessageId"].as_str().is_some_and(|m| m.len() == 36), "{r}");
    assert!(eventually(15, || messages(&record_dir, "recorder").contains(&"from the cli".to_string())));
    let subs = cli_json(&venv, &aws, &["sns", "list-subscriptions-by-topic", "--topic-arn", &topic_arn]);
    assert_eq!(subs["Subscriptions"].as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(subs["Subscriptions"][0]["SubscriptionArn"], sub_id.as_str());
    assert_eq!(
        subs["Subscriptions"][0]["Endpoint"],
        "arn:aws:lambda:us-east-1:000000000000:function:recorder"
    );
    let missing = aws_cli(
        &venv,
        &aws,
        &["sns", "publish", "--topic-arn", &format!("{topic_arn}-nope"), "--message", "x"],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("NotFound"), "{err}");

    // The provider: read what runs, update the filter policy in place, refuse a bad one at check.
    let read = prov
        .call("read", json!({"type": "local:TopicSubscription", "name": "events-recorder", "id": sub_id, "inputs": sub_checked}))
        .unwrap();
    assert_eq!(read["resource"]["inputs"], sub_checked);
    assert_eq!(read["resource"]["id"], sub_id.as_str());
    let read = prov
        .call(
            "read",
            json!({"type": "local:Topic", "name": "events", "id": topic_id, "inputs": topic_inputs}),
        )
        .unwrap();
    assert_eq!(read["resource"]["outputs"], topic);
    let mut news = sub_checked.clone();
    news["filter_policy"] = json!({"color": ["blue"]});
    let up = prov
        .call(
            "update",
            json!({"type": "local:TopicSubscription", "name": "events-recorder", "id": sub_id,
                   "olds": sub_checked, "news": news, "old_outputs": sub_out}),
        )
        .unwrap();
    assert_eq!(up["outputs"]["arn"], sub_id.as_str(), "an attribute change keeps the subscription");
    let before = messages(&record_dir, "recorder").len();
    for (color, text) in [("red", "filtered out"), ("blue", "let through")] {
        let attrs = format!(r#"{{"color": {{"DataType": "String", "StringValue": "{color}"}}}}"#);
        cli_json(
            &venv,
            &aws,
            &["sns", "publish", "--topic-arn", &topic_arn, "--message", text, "--message-attributes", &attrs],
        );
    }
    assert!(eventually(15, || messages(&record_dir, "recorder").contains(&"let through".to_string())));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        messages(&record_dir, "recorder")[before..],
        ["let through".to_string()],
        "the filter applies"
    );
    let bad = prov.check("local:TopicSubscription", "bad", json!({"topic": topic_arn, "function": "recorder", "filter_policy": {"n": [{"numeric": [">", "x"]}]}}));
    assert_eq!(bad["failures"][0]["property"], "filter_policy", "{bad}");
    let bad = prov.check("local:Topic", "bad name", json!({"fifo": false}));
    assert_eq!(bad["failures"][0]["property"], "name", "{bad}");
    let e = prov
        .call(
            "create",
            json!({"type": "local:TopicSubscription", "name": "orphan",
               "inputs": {"topic": format!("{topic_arn}-nope"), "function": "recorder"}}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("deploy the topic first"), "{e}");

    // Topics and subscriptions survive a `kill -9` of the daemon, on the same endpoint port.
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));
    let read = prov
        .call("read", json!({"type": "local:TopicSubscription", "name": "events-recorder", "id": sub_id, "inputs": news}))
        .unwrap();
    assert_eq!(read["resource"]["inputs"]["filter_policy"], json!({"color": ["blue"]}));
    assert_eq!(aws_env(&p), aws);
    cli_json(
        &venv,
        &aws,
        &[
            "sns",
            "publish",
            "--topic-arn",
            &topic_arn,
            "--message",
            "after restart",
            "--message-attributes",
            r#"{"color": {"DataType": "String", "StringValue": "blue"}}"#,
        ],
    );
    assert!(eventually(15, || messages(&record_dir, "recorder").contains(&"after restart".to_string())));

    // Deleting through the provider: the subscription, then the topic.
    prov.call("delete", json!({"type": "local:TopicSubscription", "name": "events-recorder", "id": sub_id, "inputs": news, "outputs": sub_out}))
        .unwrap();
    let subs = cli_json(&venv, &aws, &["sns", "list-subscriptions", "--no-paginate"]);
    assert_eq!(subs["Subscriptions"], json!([]));
    let gone = prov
        .call("read", json!({"type": "local:TopicSubscription", "name": "events-recorder", "id": sub_id, "inputs": news}))
        .unwrap();
    assert!(gone["resource"].is_null(), "{gone}");
    prov.call("delete", json!({"type": "local:Topic", "name": "events", "id": topic_id, "inputs": topic_inputs, "outputs": topic}))
        .unwrap();
    assert_eq!(cli_json(&venv, &aws, &["sns", "list-topics"])["Topics"], json!([]));
    // Deleting again is not an error (already gone).
    prov.call("delete", json!({"type": "local:Topic", "name": "events", "id": topic_id, "inputs": topic_inputs, "outputs": topic}))
        .unwrap();
}

/// A topic name is the project's: a second stack cannot take a topic another stack deployed.
#[test]
fn a_topic_belongs_to_one_stack() {
    let p = Project::new("sns-stacks");
    let mut dev = Provider::start(&p, "dev");
    dev.create("local:Topic", "shared", json!({"fifo": false}));
    let mut prod = Provider::start(&p, "prod");
    let e = prod
        .call("create", json!({"type": "local:Topic", "name": "shared", "inputs": {"fifo": false}}))
        .unwrap_err();
    assert!(e.to_string().contains("already deployed by stack `dev`"), "{e}");
    // FIFO topics get the `.fifo` suffix.
    let (_, _, out) = prod.create("local:Topic", "orders", json!({"fifo": true}));
    assert_eq!(out["topic_name"], "orders.fifo");
    assert_eq!(out["arn"], "arn:aws:sns:us-east-1:000000000000:orders.fifo");
}

/// A create-before-delete replacement deploys the new copy under the same resource name, then
/// deletes the old one by its id: that delete must leave the new copy alone.
#[test]
fn replacements_delete_only_the_old_copy() {
    let p = Project::new("sns-replace");
    let mut prov = Provider::start(&p, "dev");
    let (old_inputs, old_id, old_out) = prov.create("local:Topic", "events", json!({"fifo": false}));
    let (new_inputs, new_id, new_out) = prov.create("local:Topic", "events", json!({"fifo": true}));
    assert_eq!(new_out["topic_name"], "events.fifo");
    let sub = |topic: &str, function: &str| json!({"topic": topic, "function": function});
    let (s_old_in, s_old_id, s_old_out) =
        prov.create("local:TopicSubscription", "events-f", sub(&old_id, "f"));
    let (_, s_new_id, _) = prov.create("local:TopicSubscription", "events-f", sub(&new_id, "g"));
    assert_ne!(s_old_id, s_new_id);
    prov.call(
        "delete",
        json!({"type": "local:TopicSubscription", "name": "events-f", "id": s_old_id, "inputs": s_old_in, "outputs": s_old_out}),
    )
    .unwrap();
    prov.call("delete", json!({"type": "local:Topic", "name": "events", "id": old_id, "inputs": old_inputs, "outputs": old_out}))
        .unwrap();
    let read = |prov: &mut Provider, ty: &str, id: &str| {
        prov.call("read", json!({"type": ty, "name": if ty == "local:Topic" { "events" } else { "events-f" }, "id": id, "inputs": {}}))
            .unwrap()["resource"]
            .clone()
    };
    assert_eq!(read(&mut prov, "local:Topic", &new_id)["id"], new_id.as_str());
    let s = read(&mut prov, "local:TopicSubscription", &s_new_id);
    assert_eq!(s["id"], s_new_id.as_str(), "the new subscription survived the old one's delete");
    assert_eq!(s["inputs"]["function"], "g");
    assert_eq!(s["inputs"]["topic"], new_id.as_str());
    prov.call("delete", json!({"type": "local:Topic", "name": "events", "id": new_id, "inputs": new_inputs, "outputs": new_out}))
        .unwrap();
    assert!(read(&mut prov, "local:Topic", &new_id).is_null());
    assert!(
        read(&mut prov, "local:TopicSubscription", &s_new_id).is_null(),
        "a topic's subscriptions go with it"
    );
}

/// Fails each message's first delivery, so its retry waits (1 s) when the daemon is killed.
const FAIL_FIRST: &str = r#"
import os

def handler(event, context):
    msg = event["Records"][0]["Sns"]["Message"]
    d = os.environ["RECORD_DIR"]
    attempts, done = os.path.join(d, "attempts"), os.path.join(d, "done")
    os.makedirs(attempts, exist_ok=True)
    os.makedirs(done, exist_ok=True)
    seen = len([f for f in os.listdir(attempts) if f.startswith(msg + ".")])
    open(os.path.join(attempts, "%s.%d" % (msg, seen)), "w").close()
    if seen == 0:
        raise RuntimeError("the first attempt fails")
    open(os.path.join(done, msg), "w").close()
    return {}
"#;

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// `kill -9` of the daemon while deliveries to a function wait for their retry loses none of
/// them (they are in the outbox, delivered after the restart), and FIFO deduplication windows
/// (a topic's and a queue's) outlive the daemon: the same deduplication id after the restart
/// gets the first message's id and delivers nothing new.
#[test]
fn deliveries_and_deduplication_survive_kill_9() {
    let venv = venv();
    let p = Project::new("sns-kill9");
    let record_dir = p.dir.join("records");
    p.write("functions/ff/app.py", FAIL_FIRST);
    let mut prov = Provider::start(&p, "dev");
    let env = json!({"environment": {"RECORD_DIR": record_dir.to_string_lossy()}});
    prov.function("failfirst", "functions/ff", "python3", "app.handler", env);
    let (_, _, topic) = prov.create("local:Topic", "events", json!({"fifo": false}));
    let topic_arn = topic["arn"].as_str().unwrap().to_string();
    prov.create(
        "local:TopicSubscription",
        "events-failfirst",
        json!({"topic": topic_arn, "function": "failfirst"}),
    );
    let (_, _, fifo) = prov.create("local:Topic", "orders.fifo", json!({"fifo": true}));
    let fifo_arn = fifo["arn"].as_str().unwrap().to_string();
    let queue_url = queue(&mut prov, "orders.fifo", true)["url"].as_str().unwrap().to_string();
    let aws = aws_env(&p);

    // The MessageId of a FIFO message (group `g`) with `dedup` as its deduplication id.
    let fifo_id = |args: &[&str], dedup: &str| {
        let mut all = args.to_vec();
        all.extend(["--message-group-id", "g", "--message-deduplication-id", dedup]);
        cli_json(&venv, &aws, &all)["MessageId"].as_str().unwrap().to_string()
    };
    let publish_fifo =
        || fifo_id(&["sns", "publish", "--topic-arn", &fifo_arn, "--message", "one order"], "order-1");
    let send_fifo =
        || fifo_id(&["sqs", "send-message", "--queue-url", &queue_url, "--message-body", "one job"], "job-1");
    let (order_id, job_id) = (publish_fifo(), send_fifo());

    const N: usize = 5;
    let script = format!(
        "import boto3\nsns = boto3.client('sns')\nfor i in range({N}):\n    sns.publish(TopicArn='{topic_arn}', Message='m%d' % i)\n"
    );
    let py = Command::new(format!("{venv}/bin/python"))
        .args(["-c", &script])
        .envs(aws.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    // Every first attempt has failed: the retries wait; kill the daemon now.
    let attempts = record_dir.join("attempts");
    assert!(
        eventually(20, || files(&attempts).iter().filter(|f| f.ends_with(".0")).count() == N),
        "first attempts: {:?}",
        files(&attempts)
    );
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));

    // The provider starts the daemon again; the outbox delivers what the last run left.
    prov.call(
        "read",
        json!({"type": "local:Topic", "name": "events", "id": topic_arn, "inputs": {"fifo": false}}),
    )
    .unwrap();
    assert_ne!(p.daemon_pid(), Some(pid));
    let done = record_dir.join("done");
    let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert!(
        eventually(30, || files(&done) == want),
        "delivered: {:?}, attempts: {:?}",
        files(&done),
        files(&attempts)
    );

    // The deduplication windows: the same ids get the first messages' ids, and nothing new.
    assert_eq!(publish_fifo(), order_id, "the topic's deduplication window outlives the daemon");
    assert_eq!(send_fifo(), job_id, "the queue's deduplication window outlives the daemon");
    let received = cli_json(
        &venv,
        &aws,
        &["sqs", "receive-message", "--queue-url", &queue_url, "--max-number-of-messages", "10"],
    );
    assert_eq!(received["Messages"].as_array().map(Vec::len), Some(1), "{received}");
}
