//! What goes wrong, and what the user is told: missing or bad credentials, a wrong region,
//! throttling (through a small proxy that answers 429 before passing requests on to moto),
//! and the waiters for what AWS does asynchronously.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Provider, Proxy, moto};
use serde_json::{Value, json};

fn expect_error(p: &mut Provider, method: &str, params: Value) -> common::CallError {
    p.call(method, params).expect_err("the call should fail")
}

#[test]
fn missing_credentials_fail_configure_saying_how_to_set_them() {
    let mut p = Provider::spawn(&[("AWS_REGION", "us-east-1")]);
    let e = p.configure(json!({})).unwrap_err();
    assert_eq!(e.code, "configuration");
    assert!(
        e.message.contains("AWS_ACCESS_KEY_ID") && e.message.contains("~/.aws/credentials"),
        "{}",
        e.message
    );
    // Before a successful configure, resource calls say so instead of guessing.
    let e = expect_error(
        &mut p,
        "read",
        json!({"type": "aws:sqs:Queue", "name": "q", "id": "x", "inputs": {}, "outputs": {}}),
    );
    assert_eq!(e.code, "configuration");
}

#[test]
fn credentials_from_a_named_profile_in_the_shared_files() {
    let m = moto();
    let dir = std::env::temp_dir().join(format!("skyform-aws-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("credentials");
    std::fs::write(&creds, format!("[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n", m.key_id, m.secret)).unwrap();
    let conf = dir.join("config");
    std::fs::write(&conf, "[profile ci]\nregion = us-east-1\n").unwrap();
    let mut p = Provider::spawn(&[
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
    ]);
    p.configure(json!({"profile": "ci", "endpoint": m.endpoint})).unwrap();
    let inputs = p.check("aws:logs:LogGroup", "profiled", json!({}), None);
    let (id, _) = p.create("aws:logs:LogGroup", "profiled", &inputs);
    p.delete("aws:logs:LogGroup", &id, &inputs);

    // The default profile's keys are wrong: moto (verifying signatures) refuses them.
    let mut p = Provider::spawn(&[
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
        ("AWS_REGION", "us-east-1"),
    ]);
    // `configure` asks STS who the credentials are, so the refusal comes before any step.
    let e = p.configure(json!({"endpoint": m.endpoint})).unwrap_err();
    assert_eq!(e.code, "configuration", "{e:?}");
    assert!(e.message.contains("AWS refused the credentials"), "{}", e.message);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_wrong_secret_is_a_clear_signature_error() {
    let m = moto();
    let mut p = Provider::spawn(&[
        ("AWS_ACCESS_KEY_ID", &m.key_id),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &m.endpoint),
    ]);
    let e = p.configure(json!({})).unwrap_err();
    assert_eq!(e.code, "configuration");
    assert!(e.message.starts_with("AWS refused the credentials (SignatureDoesNotMatch: "), "{}", e.message);
}

#[test]
fn wrong_regions() {
    // Not a region at all: configure says so.
    let m = moto();
    let mut p = Provider::spawn(&[("AWS_ACCESS_KEY_ID", &m.key_id), ("AWS_SECRET_ACCESS_KEY", &m.secret)]);
    let e = p.configure(json!({"region": "us-east", "endpoint": m.endpoint})).unwrap_err();
    assert_eq!(e.code, "configuration");
    assert!(e.message.contains("`us-east` is not an AWS region name"), "{}", e.message);
    let e = p.configure(json!({"endpoint": m.endpoint})).unwrap_err();
    assert!(e.message.contains("no AWS region is set"), "{}", e.message);

    // A real region, but not the one the queue lives in: the queue is not there.
    let mut east = Provider::moto(json!({}));
    let inputs = east.check("aws:sqs:Queue", "regional", json!({}), None);
    let (url, _) = east.create("aws:sqs:Queue", "regional", &inputs);
    let mut west = Provider::moto(json!({"region": "eu-west-1"}));
    assert!(west.read("aws:sqs:Queue", None, &inputs).is_null(), "eu-west-1 has no such queue");
    assert_eq!(east.read("aws:sqs:Queue", None, &inputs)["id"], url);
    east.delete("aws:sqs:Queue", &url, &inputs);
}

/// A proxy in front of moto that answers the first `throttle` requests with 429 Throttling.
fn throttling_proxy(throttle: usize) -> (String, Arc<AtomicUsize>) {
    let proxy = Proxy::start(
        &moto().endpoint,
        move |n, head| {
            // `configure`'s STS call goes through; the resource calls are throttled.
            (n < throttle && !head.contains("/sts/aws4_request")).then(|| {
                let msg = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
                (429, vec![("Content-Type", "text/xml")], msg.to_string())
            })
        },
        |_head, answer| answer,
    );
    (proxy.endpoint, proxy.seen)
}

#[test]
fn throttling_is_retried_then_succeeds() {
    let (endpoint, seen) = throttling_proxy(3);
    let mut p = Provider::moto(json!({"endpoint": endpoint, "max_attempts": 5, "retry_base_ms": 10}));
    let inputs = p.check("aws:logs:LogGroup", "throttled", json!({}), None);
    let (id, _) = p.create("aws:logs:LogGroup", "throttled", &inputs);
    assert!(seen.load(Ordering::SeqCst) >= 4, "three 429s, then the request went through");
    assert_eq!(p.read("aws:logs:LogGroup", Some(&id), &inputs)["id"], id);
    p.delete("aws:logs:LogGroup", &id, &inputs);
}

#[test]
fn endless_throttling_fails_clearly() {
    let (endpoint, seen) = throttling_proxy(usize::MAX);
    let mut p = Provider::moto(json!({"endpoint": endpoint, "max_attempts": 3, "retry_base_ms": 10}));
    let inputs = p.check("aws:sqs:Queue", "jobs", json!({}), None);
    let e =
        expect_error(&mut p, "create", json!({"type": "aws:sqs:Queue", "name": "jobs", "inputs": inputs}));
    assert_eq!(e.code, "failed");
    assert_eq!(
        e.message,
        "creating aws:sqs:Queue `jobs`: Throttling: Rate exceeded (gave up after 3 attempts)"
    );
    // One request for `configure`'s STS call, then max_attempts tries of the create.
    assert_eq!(seen.load(Ordering::SeqCst), 1 + 3, "max_attempts bounds the tries");
}

#[test]
fn unreachable_endpoint_names_the_endpoint() {
    let port = common::free_port();
    let m = moto();
    let mut p = Provider::spawn(&[
        ("AWS_ACCESS_KEY_ID", &m.key_id),
        ("AWS_SECRET_ACCESS_KEY", &m.secret),
        ("AWS_REGION", "us-east-1"),
    ]);
    let e = p
        .configure(
            json!({"endpoint": format!("http://127.0.0.1:{port}"), "max_attempts": 2, "retry_base_ms": 1}),
        )
        .unwrap_err();
    assert_eq!(e.code, "configuration", "{e:?}");
    assert!(
        e.message
            .starts_with(&format!("cannot check the AWS credentials: cannot reach http://127.0.0.1:{port}")),
        "{}",
        e.message
    );
    assert!(e.message.contains("`endpoint` under [providers.aws]"), "{}", e.message);
}

#[test]
fn handshake_lists_every_type_and_unknown_types_are_refused() {
    let mut p = Provider::spawn(&[]);
    let h = p.call("handshake", json!({"protocol_versions": [1], "engine_version": "test"})).unwrap();
    let types: Vec<&String> = h["resources"].as_object().unwrap().keys().collect();
    assert_eq!(types.len(), 19, "{types:?}");
    assert_eq!(
        h["resources"]["aws:dynamodb:Table"]["replace_on_changes"],
        json!(["name", "hash_key", "hash_key_type", "range_key", "range_key_type"])
    );
    let e = expect_error(&mut p, "check", json!({"type": "aws:ec2:Instance", "name": "x", "inputs": {}}));
    assert_eq!(e.code, "unsupported");
}

/// Lambda finishes updates asynchronously: the provider waits for `LastUpdateStatus:
/// Successful` (here the proxy reports `InProgress` twice) before answering; and a role that
/// IAM has not propagated yet (`…cannot be assumed by Lambda`) is retried.
#[test]
fn lambda_waits_for_state_and_retries_role_propagation() {
    let polls = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let (p2, r2) = (polls.clone(), rejected.clone());
    let proxy = Proxy::start(
        &moto().endpoint,
        move |_n, head| {
            let create = head.starts_with("POST /2015-03-31/functions ");
            (create && r2.fetch_add(1, Ordering::SeqCst) == 0).then(|| {
                let msg = r#"{"Type":"User","message":"The role defined for the function cannot be assumed by Lambda."}"#;
                (400, vec![("x-amzn-ErrorType", "InvalidParameterValueException")], msg.to_string())
            })
        },
        move |head, answer| {
            if head.starts_with("GET /2015-03-31/functions/")
                && head.contains("/configuration ")
                && p2.fetch_add(1, Ordering::SeqCst) < 2
            {
                // Same length, so Content-Length stays right.
                let text = String::from_utf8_lossy(&answer)
                    .replace(r#""LastUpdateStatus": "Successful""#, r#""LastUpdateStatus": "InProgress""#);
                return text.into_bytes();
            }
            answer
        },
    );
    let mut p = Provider::moto(json!({"endpoint": proxy.endpoint}));
    let role = p.check("aws:iam:Role", "slow", json!({"assume_role_policy": common::LAMBDA_TRUST}), None);
    let role_arn = p.create("aws:iam:Role", "slow", &role).1["arn"].clone();
    let f = p.check(
        "aws:lambda:Function",
        "slow",
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        None,
    );
    let (id, out) = p.create("aws:lambda:Function", "slow", &f);
    assert_eq!(out["code_sha256"], f["code_sha256"]);
    assert_eq!(rejected.load(Ordering::SeqCst), 2, "CreateFunction was refused once, then retried");
    assert!(polls.load(Ordering::SeqCst) >= 3, "the waiter polled past two InProgress answers");
    p.delete("aws:lambda:Function", &id, &f);
}

#[test]
fn a_preview_changes_nothing() {
    let mut p = Provider::moto(json!({}));
    let inputs = p.check("aws:sqs:Queue", "jobs", json!({}), None);
    let m = moto();
    let dir = env!("CARGO_MANIFEST_DIR");
    p.call("configure", json!({"project": "t", "stack": "dev", "project_dir": dir, "config": {"endpoint": m.endpoint}, "dry_run": true}))
        .unwrap();
    let e =
        expect_error(&mut p, "create", json!({"type": "aws:sqs:Queue", "name": "jobs", "inputs": inputs}));
    assert_eq!(e.code, "bad_request");
    assert!(e.message.contains("preview"), "{}", e.message);
    // Reads are fine in a preview.
    assert!(p.read("aws:sqs:Queue", None, &inputs).is_null());
}
