//! DynamoDB tables with global secondary indexes and streams, and a stream's event source
//! mapping (what `table.on_change` expands to), against moto through the protocol.

mod common;

use common::{LAMBDA_TRUST, Provider, moto};
use serde_json::{Value, json};

fn function(p: &mut Provider, name: &str) -> String {
    let role = p.check("aws:iam:Role", name, json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let role_arn = p.create("aws:iam:Role", name, &role).1["arn"].clone();
    let f = p.check(
        "aws:lambda:Function",
        name,
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        None,
    );
    p.create("aws:lambda:Function", name, &f).0
}

fn gsi(name: &str, hash: &str, range: Option<(&str, &str)>) -> Value {
    let mut g = json!({"name": name, "hash_key": hash, "hash_key_type": "S"});
    if let Some((r, t)) = range {
        g["range_key"] = json!(r);
        g["range_key_type"] = json!(t);
    }
    g
}

#[test]
fn table_indexes_and_stream_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:dynamodb:Table";
    let f = p.check_failures(ty, json!({"hash_key": "pk", "stream_view_type": "NEW_IMAGE"}));
    assert!(f[0]["reason"].as_str().unwrap().contains("needs `stream_enabled"), "{f:?}");
    let f = p.check_failures(
        ty,
        json!({"hash_key": "pk", "global_secondary_indexes": [{"name": "ab", "hash_key": "x"}]}),
    );
    assert!(f[0]["reason"].as_str().unwrap().contains("at least 3"), "{f:?}");

    let inputs = p.check(
        ty,
        "users",
        json!({
            "hash_key": "id",
            "global_secondary_indexes": [{"name": "byTeam", "hash_key": "team", "range_key": "joined", "range_key_type": "N"}],
            "stream_enabled": true,
        }),
        None,
    );
    assert_eq!(inputs["stream_view_type"], "NEW_AND_OLD_IMAGES");
    assert_eq!(inputs["global_secondary_indexes"], json!([gsi("byTeam", "team", Some(("joined", "N")))]));
    let (id, out) = p.create(ty, "users", &inputs);
    let stream_arn = out["stream_arn"].as_str().unwrap().to_string();
    assert!(
        stream_arn.starts_with(&format!("arn:aws:dynamodb:us-east-1:123456789012:table/{id}/stream/")),
        "{out}"
    );
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);
    let described = moto().py(&format!(
        "t = client('dynamodb').describe_table(TableName='{id}')['Table']; \
         print(t['GlobalSecondaryIndexes'][0]['Projection']['ProjectionType'], t['StreamSpecification']['StreamViewType'])"
    ));
    assert_eq!(described.trim(), "ALL NEW_AND_OLD_IMAGES");

    // An index added and one removed in place; the stream turned off.
    let mut news = inputs.clone();
    news["global_secondary_indexes"] = json!([gsi("byEmail", "email", None)]);
    news.as_object_mut().unwrap().remove("stream_enabled");
    news.as_object_mut().unwrap().remove("stream_view_type");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());

    // A table without a stream gets one in place (moto cannot turn a stream back on once it
    // was off, so this is another table); the change trigger's mapping reads it from its end.
    let plain = p.check(ty, "events", json!({"hash_key": "id"}), None);
    let (id, _) = p.create(ty, "events", &plain);
    let mut streamed = plain.clone();
    streamed["stream_enabled"] = json!(true);
    streamed["stream_view_type"] = json!("NEW_AND_OLD_IMAGES");
    assert_eq!(p.diff(ty, &id, &plain, &streamed)["replaces"], json!([]));
    p.update(ty, &id, &plain, &streamed);
    let read = p.read(ty, Some(&id), &streamed);
    assert_eq!(read["inputs"], streamed);
    let stream_arn = read["outputs"]["stream_arn"].as_str().unwrap().to_string();
    assert!(stream_arn.contains("/stream/"), "{read}");
    let fn_name = function(&mut p, "audit");
    let ty_m = "aws:lambda:EventSourceMapping";
    let m = p.check(
        ty_m,
        "users-audit",
        json!({"function": fn_name, "event_source_arn": stream_arn, "batch_size": 100, "starting_position": "LATEST"}),
        None,
    );
    let (mid, _) = p.create(ty_m, "users-audit", &m);
    assert_eq!(p.read(ty_m, Some(&mid), &m)["inputs"], m);
    let mut from_start = m.clone();
    from_start["starting_position"] = json!("TRIM_HORIZON");
    assert_eq!(p.diff(ty_m, &mid, &m, &from_start)["replaces"], json!(["starting_position"]));
    p.delete(ty_m, &mid, &m);
    p.delete(ty, &id, &streamed);
}
