//! Refresh you can trust: right after a create, `read` returns exactly the inputs and outputs
//! that were recorded (the engine's `refresh` compares both, so any difference is reported as
//! drift); an imported resource declared with only its name previews no change; nested typos
//! are named.

mod common;

use common::{LAMBDA_TRUST, Provider, moto};
use serde_json::{Value, json};

fn function(p: &mut Provider, name: &str) -> String {
    let role =
        p.check("aws:iam:Role", &format!("{name}-role"), json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let role_arn =
        p.create("aws:iam:Role", &format!("{name}-role"), &role).1["arn"].as_str().unwrap().to_string();
    let inputs = p.check(
        "aws:lambda:Function",
        name,
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        None,
    );
    p.create("aws:lambda:Function", name, &inputs).0
}

/// Creates, then reads back: no drift in inputs or outputs.
fn create_then_read(p: &mut Provider, ty: &str, name: &str, inputs: Value) -> (String, Value) {
    let inputs = p.check(ty, name, inputs, None);
    let (id, outputs) = p.create(ty, name, &inputs);
    let read = p.read(ty, Some(&id), &inputs);
    assert_eq!(read["inputs"], inputs, "{ty} `{name}`: the inputs read back are the ones written");
    assert_eq!(read["outputs"], outputs, "{ty} `{name}`: the outputs read back are the ones recorded");
    (id, inputs)
}

#[test]
fn permissions_read_back_as_written() {
    let mut p = Provider::moto(json!({}));
    let f = function(&mut p, "refresh-perm");
    let ty = "aws:lambda:Permission";
    let (id, _) = create_then_read(
        &mut p,
        ty,
        "api",
        json!({"function": f, "principal": "apigateway.amazonaws.com",
               "source_arn": "arn:aws:execute-api:us-east-1:123456789012:abc/*/*"}),
    );
    // The function URL's permission keeps `function_url_auth_type` (it was lost, so every `up`
    // after a `refresh --yes` replaced it).
    let (url_id, url_inputs) = create_then_read(
        &mut p,
        ty,
        "url",
        json!({"function": f, "principal": "*", "action": "lambda:InvokeFunctionUrl", "function_url_auth_type": "NONE"}),
    );
    assert_eq!(url_inputs["function_url_auth_type"], "NONE");
    // An import (no stored inputs) still sees it.
    let imported = p.read(ty, Some(&url_id), &Value::Null);
    assert_eq!(imported["inputs"]["function_url_auth_type"], "NONE", "{imported}");
    p.delete(ty, &url_id, &url_inputs);
    p.delete(ty, &id, &Value::Null);
}

#[test]
fn an_imported_queue_declared_by_name_previews_no_change() {
    let m = moto();
    let url = m.py("print(client('sqs').create_queue(QueueName='imported-by-name')['QueueUrl'])");
    let mut p = Provider::moto(json!({}));
    let ty = "aws:sqs:Queue";
    let real = p.read(ty, Some(&url), &Value::Null);
    let olds = real["inputs"].clone();
    let news = p.check(ty, "jobs", json!({"name": "imported-by-name"}), Some(&olds));
    let d = p.diff(ty, &url, &olds, &news);
    assert!(
        d["changed"].as_array().is_none_or(Vec::is_empty)
            && d["replaces"].as_array().is_none_or(Vec::is_empty),
        "declaring an imported queue by its name changes nothing: {d}\nolds {olds}\nnews {news}"
    );
    // A size inside the range drifted behind skyform's back is put back to the default.
    let news =
        p.check(ty, "jobs", json!({"name": "imported-by-name"}), Some(&json!({"max_message_size": 2048})));
    assert_eq!(news["max_message_size"], 262144);
    // A queue created by skyform reads back as written.
    create_then_read(&mut p, ty, "fresh", json!({}));
    p.delete(ty, &url, &olds);
}

#[test]
fn nested_typos_and_out_of_range_sizes_are_named() {
    let mut p = Provider::moto(json!({}));
    let f = p.check_failures(
        "aws:sqs:Queue",
        json!({"redrive_policy": {"dead_letter_target_arn": "arn:aws:sqs:us-east-1:1:dlq", "max_receive_count": 3, "max_recieve_count": 5}}),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["property"], "redrive_policy.max_recieve_count", "{f:?}");
    assert!(f[0]["reason"].as_str().unwrap().contains("has no key `max_recieve_count`"), "{f:?}");

    let target = json!({"arn": "arn:aws:lambda:us-east-1:1:function:f", "role_arn": "arn:aws:iam::1:role/r", "inptu": "{}"});
    let f = p.check_failures(
        "aws:scheduler:Schedule",
        json!({"schedule_expression": "rate(1 hour)", "target": target}),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["property"], "target.inptu", "{f:?}");

    for bad in [1023, 262_145, 1_048_576] {
        let f = p.check_failures("aws:sqs:Queue", json!({"max_message_size": bad}));
        assert_eq!(f.len(), 1, "{bad}: {f:?}");
        assert!(f[0]["reason"].as_str().unwrap().contains("between 1024 and 262144"), "{f:?}");
    }
    assert!(p.check_failures("aws:sqs:Queue", json!({"max_message_size": 1024})).is_empty());
}
