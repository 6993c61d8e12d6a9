//! Log groups and the Lambda types against moto, through the protocol.

mod common;

use common::{LAMBDA_TRUST, Provider, import_find_delete, moto};
use serde_json::{Value, json};

fn role(p: &mut Provider, name: &str) -> String {
    let inputs = p.check("aws:iam:Role", name, json!({"assume_role_policy": LAMBDA_TRUST}), None);
    p.create("aws:iam:Role", name, &inputs).1["arn"].as_str().unwrap().to_string()
}

fn function(p: &mut Provider, name: &str, role_arn: &str) -> (String, Value, Value) {
    let inputs = p.check(
        "aws:lambda:Function",
        name,
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        None,
    );
    let (id, outputs) = p.create("aws:lambda:Function", name, &inputs);
    (id, inputs, outputs)
}

#[test]
fn log_group_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:logs:LogGroup";
    let failures = p.check_failures(ty, json!({"retention_in_days": 2}));
    assert!(failures[0]["reason"].as_str().unwrap().contains("not a retention"), "{failures:?}");

    let inputs =
        p.check(ty, "app-logs", json!({"name": "/aws/lambda/app-logs-test", "retention_in_days": 7}), None);
    let (id, outputs) = p.create(ty, "app-logs", &inputs);
    assert_eq!(id, "/aws/lambda/app-logs-test");
    assert!(outputs["arn"].as_str().unwrap().ends_with(":log-group:/aws/lambda/app-logs-test"), "{outputs}");

    let mut news = inputs.clone();
    news["retention_in_days"] = json!(30);
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);

    moto().py(&format!("client('logs').delete_retention_policy(logGroupName='{id}')"));
    let read = p.read(ty, Some(&id), &news);
    assert!(read["inputs"].get("retention_in_days").is_none(), "drift: retention removed by hand: {read}");

    let other = p.check(ty, "app-logs", json!({"name": "/aws/lambda/app-logs-test-2"}), None);
    let d = p.diff(ty, &id, &news, &other);
    assert_eq!((d["replaces"].clone(), d["delete_before_replace"].clone()), (json!(["name"]), json!(false)));
    let (id2, _) = p.create(ty, "app-logs", &other);
    p.delete(ty, &id, &news);
    import_find_delete(&mut p, ty, &id2, &other);
}

#[test]
fn function_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:lambda:Function";
    let role_arn = role(&mut p, "fn-role");
    let (id, inputs, outputs) = function(&mut p, "hello", &role_arn);
    assert!(id.starts_with("hello-"), "{id}");
    // The zip is deterministic: check computes what Lambda reports, and again the same.
    assert_eq!(outputs["code_sha256"], inputs["code_sha256"], "{outputs} vs {inputs}");
    let rechecked = p.check(
        ty,
        "hello",
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        Some(&inputs),
    );
    assert_eq!(rechecked, inputs);
    assert_eq!(p.diff(ty, &id, &inputs, &rechecked)["changed"], json!([]));
    assert_eq!(outputs["arn"], format!("arn:aws:lambda:us-east-1:123456789012:function:{id}"));

    // Update code and configuration in place.
    let mut news = p.check(
        ty,
        "hello",
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello2",
               "memory_size": 256, "environment": {"STAGE": "dev"}}),
        Some(&inputs),
    );
    assert_ne!(news["code_sha256"], inputs["code_sha256"]);
    let d = p.diff(ty, &id, &inputs, &news);
    assert_eq!(d["changed"], json!(["code_sha256", "environment", "memory_size"]));
    assert_eq!(d["replaces"], json!([]));
    let out = p.update(ty, &id, &inputs, &news);
    assert_eq!(out["code_sha256"], news["code_sha256"]);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news, "no drift after update");

    // Drift made with boto3.
    moto().py(&format!("client('lambda').update_function_configuration(FunctionName='{id}', Timeout=30)"));
    let read = p.read(ty, Some(&id), &news);
    assert_eq!(read["inputs"]["timeout"], 30);
    news["timeout"] = json!(30);

    // Replace under a new name, create before delete.
    let renamed = p.check(
        ty,
        "hello",
        // (arm64 at create: moto's UpdateFunctionCode ignores `Architectures`, so an in-place
        // architecture change cannot be observed there.)
        json!({"name": format!("{id}-v2"), "role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello",
               "architecture": "arm64"}),
        None,
    );
    let d = p.diff(ty, &id, &news, &renamed);
    assert!(d["replaces"].as_array().unwrap().contains(&json!("name")));
    assert_eq!(d["delete_before_replace"], false);
    let (id2, _) = p.create(ty, "hello", &renamed);
    assert_eq!(p.read(ty, Some(&id2), &renamed)["inputs"], renamed);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    import_find_delete(&mut p, ty, &id2, &renamed);
}

#[test]
fn function_with_missing_code_fails_check() {
    let mut p = Provider::moto(json!({}));
    let f = p.check_failures(
        "aws:lambda:Function",
        json!({"role": "arn:aws:iam::123456789012:role/x", "runtime": "python3.12", "code": "nope"}),
    );
    assert_eq!(f[0]["property"], "code", "{f:?}");
    assert!(f[0]["reason"].as_str().unwrap().contains("cannot read the code folder"));
    let f = p.check_failures("aws:lambda:Function", json!({"runtime": 3, "code": "hello", "colour": "red"}));
    let props: Vec<&str> = f.iter().map(|x| x["property"].as_str().unwrap()).collect();
    assert!(props.contains(&"colour") && props.contains(&"runtime") && props.contains(&"role"), "{f:?}");
}

#[test]
fn permission_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let role_arn = role(&mut p, "perm-role");
    let (fn_id, _, _) = function(&mut p, "perm-fn", &role_arn);
    let ty = "aws:lambda:Permission";
    let inputs = p.check(
        ty,
        "api-invoke",
        json!({"function": fn_id, "principal": "apigateway.amazonaws.com",
               "source_arn": "arn:aws:execute-api:us-east-1:123456789012:abc/*/*"}),
        None,
    );
    assert_eq!(inputs["action"], "lambda:InvokeFunction");
    let (id, _) = p.create(ty, "api-invoke", &inputs);
    assert_eq!(id, format!("{fn_id}/{}", inputs["statement_id"].as_str().unwrap()));
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs, "read shows no drift");

    // Every input forces a replacement; a new statement id lets the new one exist first.
    let news = p.check(ty, "api-invoke", json!({"function": fn_id, "principal": "s3.amazonaws.com"}), None);
    let d = p.diff(ty, &id, &inputs, &news);
    assert!(d["replaces"].as_array().unwrap().contains(&json!("principal")), "{d}");
    assert_eq!(d["delete_before_replace"], false);
    let (id2, _) = p.create(ty, "api-invoke", &news);
    p.delete(ty, &id, &inputs);
    assert!(p.read(ty, Some(&id), &inputs).is_null());

    // Removed behind skyform's back: read says it is gone.
    let sid = news["statement_id"].as_str().unwrap();
    let third = p.check(ty, "again", json!({"function": fn_id, "principal": "sns.amazonaws.com"}), None);
    let (id3, _) = p.create(ty, "again", &third);
    let imported = p.read(ty, Some(&id3), &Value::Null);
    assert_eq!(imported["inputs"]["principal"], "sns.amazonaws.com", "{imported}");
    assert_eq!(p.read(ty, None, &third)["id"], id3);
    moto().py(&format!("client('lambda').remove_permission(FunctionName='{fn_id}', StatementId='{sid}')"));
    assert!(p.read(ty, Some(&id2), &news).is_null(), "statement {sid} was removed by hand");
    p.delete(ty, &id3, &third);
}

/// A TypeScript handler (`app.ts`, no `app.js`) ships bundled: the zip Lambda gets (its
/// `CodeSha256`, as moto reports it) is the folder plus esbuild's `app.js`, not the bare folder.
#[test]
fn typescript_function_ships_its_bundle() {
    use base64::Engine as _;
    use sha2::Digest as _;
    // esbuild is kept between runs in the cache the e2e tests use (CI installs it once).
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/skyform-cache");
    let mut p = Provider::moto_with(json!({}), &[("SKYFORM_CACHE_DIR", cache.to_str().unwrap())]);
    let role_arn = role(&mut p, "fn-role-ts");
    let inputs = p.check(
        "aws:lambda:Function",
        "hellots",
        json!({"role": role_arn, "runtime": "nodejs20.x", "handler": "app.handler", "code": "hellots"}),
        None,
    );
    let (_, outputs) = p.create("aws:lambda:Function", "hellots", &inputs);
    assert_eq!(outputs["code_sha256"], inputs["code_sha256"], "{outputs} vs {inputs}");

    let code = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hellots");
    let sha = |zip: &[u8]| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(zip));
    let layers =
        skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap();
    let refs: Vec<(&std::path::Path, &[&str])> = layers.iter().map(|(p, _)| (p.as_path(), &[][..])).collect();
    let bundled = skyform_aws::zip::zip_layers(&refs).unwrap();
    assert_eq!(outputs["code_sha256"], sha(&bundled), "Lambda got the folder with the bundle");
    assert!(layers.last().unwrap().0.join("app.js").is_file(), "{layers:?}");
    let bare = skyform_aws::zip::zip_path(&code).unwrap();
    assert_ne!(outputs["code_sha256"], sha(&bare), "not the folder alone");
}
