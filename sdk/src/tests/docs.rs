//! The documents beside the crate say what the SDK does: their examples are checked here.

use serde_json::{Value, json};

use crate::{Function, HttpApi, Program, Queue, ResourceOptions, Runtime, Target, interpolate, secret};

const MANIFEST_MD: &str = include_str!("../../MANIFEST.md");

/// The first ```json block after `marker` in `doc`.
fn json_block_after(doc: &str, marker: &str) -> Value {
    let start = doc.find(marker).unwrap_or_else(|| panic!("no {marker:?} in the document"));
    let rest = &doc[start..];
    let open = rest.find("```json\n").expect("a json block") + "```json\n".len();
    let close = rest[open..].find("\n```").expect("the end of the json block");
    serde_json::from_str(&rest[open..open + close]).expect("the block is valid JSON")
}

/// The program of MANIFEST.md's full example, without `run` (whose Rust source the doctest of
/// `ManifestDoc` compiles).
fn full_example() -> Result<Program, crate::ProgramError> {
    let ctx = Program::new("shop", "dev", Target::Local, json!({"stripe_key": "sk_test_123"}));
    let orders = ctx.add(Queue::new("orders").visibility_timeout_secs(60))?;
    let checkout = ctx.add(
        Function::new("checkout")
            .code("functions/checkout")
            .handler("app.handler")
            .runtime(Runtime::Python3)
            .env("ORDERS_URL", orders.url())
            .env("STRIPE_KEY", secret(ctx.require_config::<String>("stripe_key")?)),
    )?;
    let fulfil = ctx.add(Function::rust("fulfil", "fulfil-fn").timeout_secs(30))?;
    orders.subscribe(&fulfil)?;
    let api = ctx.add(HttpApi::new("api").route("POST /checkout", &checkout))?;
    ctx.resource("release", "core:Data", json!({ "value": ctx.stack(), "triggers": api.id() }))
        .options(ResourceOptions::new().protect(true).aliases(["version"]));
    ctx.export("url", api.url());
    ctx.export("checkout_url", interpolate!("{}/checkout", api.url()));
    Ok(ctx)
}

#[test]
fn manifest_md_full_example_is_what_the_sdk_writes() {
    let documented = json_block_after(MANIFEST_MD, "prints this manifest:");
    assert_eq!(full_example().unwrap().manifest(), documented);
}

#[test]
fn manifest_md_and_the_schema_agree_on_the_version() {
    assert!(MANIFEST_MD.starts_with("# skyform manifest format, version 1\n"));
    assert_eq!(crate::MANIFEST_VERSION, 1);
}

const COMPONENTS_MD: &str = include_str!("../../COMPONENTS.md");

#[test]
fn components_md_documents_every_local_type_and_input() {
    let manifests = super::schema::sample_manifests();
    let resources = manifests.iter().flat_map(|m| m["resources"].as_array().cloned().unwrap_or_default());
    let mut checked = 0;
    for r in resources {
        let type_ = r["type"].as_str().unwrap_or_default();
        if !type_.starts_with("local:") {
            continue;
        }
        assert!(COMPONENTS_MD.contains(&format!("`{type_}`")), "COMPONENTS.md does not mention `{type_}`");
        for key in r["inputs"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
        {
            assert!(
                COMPONENTS_MD.contains(&format!("`{key}`")),
                "COMPONENTS.md does not document `{key}` of {type_}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "the sample programs should use every local type");
}
