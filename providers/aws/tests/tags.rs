//! Tags for cost allocation: the stack's default tags (`tags` under `[providers.aws]`) and each
//! resource's own reach every taggable type, read back as written (no drift after a create),
//! follow an update, and show as drift when changed behind skyform's back.

mod common;

use common::{LAMBDA_TRUST, Provider, moto};
use serde_json::{Value, json};

#[test]
fn default_and_own_tags_reach_every_taggable_type() {
    let mut p = Provider::moto(json!({"tags": {"team": "payments", "cost-center": "42"}}));
    let role = p.check("aws:iam:Role", "tagged-role", json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let (_, role_out) = p.create("aws:iam:Role", "tagged-role", &role);
    let cases: Vec<(&str, Value)> = vec![
        ("aws:iam:Role", json!({"assume_role_policy": LAMBDA_TRUST})),
        (
            "aws:lambda:Function",
            json!({"role": role_out["arn"], "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        ),
        ("aws:logs:LogGroup", json!({})),
        ("aws:sqs:Queue", json!({})),
        ("aws:sns:Topic", json!({})),
        ("aws:apigatewayv2:Api", json!({})),
        ("aws:s3:Bucket", json!({})),
        ("aws:dynamodb:Table", json!({"hash_key": "pk", "hash_key_type": "S"})),
    ];
    let want = json!({"team": "web", "cost-center": "42", "app": "shop"});
    for (ty, mut inputs) in cases {
        inputs["tags"] = json!({"app": "shop", "team": "web"});
        let checked = p.check(ty, "tagged", inputs, None);
        assert_eq!(checked["tags"], want, "{ty}: the resource's own tags win over the stack's");
        let (id, outputs) = p.create(ty, "tagged", &checked);
        let read = p.read(ty, Some(&id), &checked);
        assert_eq!(read["inputs"], checked, "{ty}: no drift right after create");
        assert_eq!(read["outputs"], outputs, "{ty}");

        // An update: one tag changes, one goes.
        let mut news = checked.clone();
        news["tags"] = json!({"team": "web", "cost-center": "43"});
        let d = p.diff(ty, &id, &checked, &news);
        assert_eq!(d["changed"], json!(["tags"]), "{ty}: {d}");
        assert!(d["replaces"].as_array().is_none_or(Vec::is_empty), "{ty}: tags change in place: {d}");
        p.update(ty, &id, &checked, &news);
        assert_eq!(
            p.read(ty, Some(&id), &news)["inputs"]["tags"],
            news["tags"],
            "{ty}: the update applied the tags"
        );
        p.delete(ty, &id, &news);
    }
}

#[test]
fn tag_drift_shows_in_read_and_bad_tags_are_refused() {
    let mut p = Provider::moto(json!({}));
    let queue = p.check("aws:sqs:Queue", "drifting", json!({"tags": {"team": "web"}}), None);
    let (url, _) = p.create("aws:sqs:Queue", "drifting", &queue);
    moto().py(&format!("client('sqs').tag_queue(QueueUrl='{url}', Tags={{'team': 'data', 'extra': 'x'}})"));
    let read = p.read("aws:sqs:Queue", Some(&url), &queue);
    assert_eq!(read["inputs"]["tags"], json!({"team": "data", "extra": "x"}), "{read}");
    p.delete("aws:sqs:Queue", &url, &queue);

    // Without tags, none appear.
    let plain = p.check("aws:sns:Topic", "plain", json!({}), None);
    assert!(plain.get("tags").is_none(), "{plain}");

    let f = p.check_failures("aws:sqs:Queue", json!({"tags": {"team": 3}}));
    assert_eq!(f[0]["property"], "tags", "{f:?}");
    assert!(f[0]["reason"].as_str().unwrap().contains("tag `team` must be a string"), "{f:?}");
    let mut bad = Provider::spawn(&[
        ("AWS_ACCESS_KEY_ID", "a"),
        ("AWS_SECRET_ACCESS_KEY", "b"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let e = bad.configure(json!({"tags": ["team"]})).unwrap_err();
    assert!(e.message.contains("`tags` must be a table"), "{}", e.message);
}
