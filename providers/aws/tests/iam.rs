//! IAM roles and inline policies against moto, through the protocol.

mod common;

use common::{LAMBDA_TRUST, Provider, import_find_delete, moto};
use serde_json::{Value, json};

#[test]
fn role_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:iam:Role";
    let inputs =
        p.check(ty, "exec-role", json!({"assume_role_policy": LAMBDA_TRUST, "description": "first"}), None);
    let name = inputs["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("exec-role-") && name.len() == "exec-role-".len() + 7, "{name}");
    assert!(inputs["assume_role_policy"].is_object(), "a policy string is normalised to an object");
    assert_eq!(inputs["path"], "/");
    // The generated name is kept from the recorded inputs.
    let again = p.check(
        ty,
        "exec-role",
        json!({"assume_role_policy": LAMBDA_TRUST, "description": "first"}),
        Some(&inputs),
    );
    assert_eq!(again, inputs);

    let (id, outputs) = p.create(ty, "exec-role", &inputs);
    assert_eq!(id, name);
    assert_eq!(outputs["arn"], format!("arn:aws:iam::123456789012:role/{name}"));

    // Update in place.
    let mut news = inputs.clone();
    news["description"] = json!("second");
    news["managed_policy_arns"] = json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    let d = p.diff(ty, &id, &inputs, &news);
    assert_eq!(d["changed"], json!(["description", "managed_policy_arns"]));
    assert_eq!(d["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    let read = p.read(ty, Some(&id), &news);
    assert_eq!(read["inputs"], news, "read after update shows no drift");

    // Drift: a change behind skyform's back shows in read.
    moto().py(&format!("client('iam').update_role(RoleName='{name}', Description='by hand')"));
    let read = p.read(ty, Some(&id), &news);
    assert_eq!(read["inputs"]["description"], "by hand");

    // Replace: a new name is created before the old role is deleted.
    let fresh = p.check(
        ty,
        "exec-role",
        json!({"assume_role_policy": LAMBDA_TRUST, "name": format!("{name}-b")}),
        None,
    );
    let d = p.diff(ty, &id, &news, &fresh);
    assert!(d["replaces"].as_array().unwrap().contains(&json!("name")), "{d}");
    assert_eq!(d["delete_before_replace"], false);
    let (id2, _) = p.create(ty, "exec-role", &fresh);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    // Same name, changed path: the replacement must delete first.
    let mut moved = fresh.clone();
    moved["path"] = json!("/service/");
    let d = p.diff(ty, &id2, &fresh, &moved);
    assert_eq!(d["delete_before_replace"], true, "{d}");

    import_find_delete(&mut p, ty, &id2, &fresh);
}

#[test]
fn role_policy_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let role = p.check("aws:iam:Role", "rp-role", json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let (role_id, _) = p.create("aws:iam:Role", "rp-role", &role);
    let ty = "aws:iam:RolePolicy";
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]});
    let inputs = p.check(ty, "queue-access", json!({"role": role_id, "policy": policy}), None);
    let (id, _) = p.create(ty, "queue-access", &inputs);
    assert_eq!(id, format!("{role_id}:{}", inputs["name"].as_str().unwrap()));

    let mut news = inputs.clone();
    news["policy"]["Statement"][0]["Action"] = json!("s3:*");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    let (r, n) = (role_id.clone(), news["name"].as_str().unwrap().to_string());
    moto().py(&format!(
        "client('iam').put_role_policy(RoleName='{r}', PolicyName='{n}', PolicyDocument=json.dumps({{'Version':'2012-10-17','Statement':[{{'Effect':'Deny','Action':'*','Resource':'*'}}]}}))"
    ));
    let read = p.read(ty, Some(&id), &news);
    assert_eq!(read["inputs"]["policy"]["Statement"][0]["Effect"], "Deny");

    // Replace under a new name: create first, then delete the old one.
    let renamed =
        p.check(ty, "queue-access", json!({"role": role_id, "policy": policy, "name": "renamed"}), None);
    let d = p.diff(ty, &id, &news, &renamed);
    assert_eq!((d["replaces"].clone(), d["delete_before_replace"].clone()), (json!(["name"]), json!(false)));
    let (id2, _) = p.create(ty, "queue-access", &renamed);
    p.delete(ty, &id, &news);
    import_find_delete(&mut p, ty, &id2, &renamed);
    p.delete("aws:iam:Role", &role_id, &role);
    assert_eq!(p.read("aws:iam:Role", Some(&role_id), &Value::Null), Value::Null);
}

/// Against a plain `moto_server` (no managed policies loaded), a role that names an AWS managed
/// policy fails with an error that says what to set, and leaves no half-made role behind.
#[test]
fn a_missing_aws_managed_policy_says_what_to_set() {
    let endpoint = common::plain_moto();
    let mut p = Provider::spawn(&[
        ("AWS_ACCESS_KEY_ID", "anything"),
        ("AWS_SECRET_ACCESS_KEY", "anything"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &endpoint),
    ]);
    p.configure(json!({"retry_base_ms": 20})).unwrap();
    let arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    let inputs = p.check(
        "aws:iam:Role",
        "plain",
        json!({"assume_role_policy": common::LAMBDA_TRUST, "managed_policy_arns": [arn]}),
        None,
    );
    let e = p.call("create", json!({"type": "aws:iam:Role", "name": "plain", "inputs": inputs})).unwrap_err();
    assert_eq!(e.code, "configuration", "{e:?}");
    assert!(
        e.message.contains(&format!("the AWS managed policy {arn} does not exist at {endpoint}")),
        "{}",
        e.message
    );
    assert!(e.message.contains("MOTO_IAM_LOAD_MANAGED_POLICIES=true"), "{}", e.message);
    assert!(p.read("aws:iam:Role", None, &inputs).is_null(), "the role was taken away again");
}
