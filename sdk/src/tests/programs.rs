//! Manifests of small but complete programs, compared whole.

use serde_json::json;

use super::local;
use crate::{Program, ResourceOptions, Target, core, interpolate, secret};

#[test]
fn an_empty_program_has_every_top_level_field() {
    assert_eq!(
        local().manifest(),
        json!({
            "manifest": 1,
            "project": "shop",
            "stack": "dev",
            "resources": [],
            "components": [],
            "outputs": {}
        })
    );
}

#[test]
fn generic_resources_references_and_outputs() {
    let ctx = local();
    let db = ctx.resource("db", "acme:db:Instance", json!({"size": "small", "password": secret("hunter2")}));
    let app = ctx
        .resource(
            "app",
            "acme:App",
            json!({
                "db_host": db.output("endpoint.host"),
                "db_id": db.id(),
                "dsn": interpolate!("postgres://app@{}:{}/shop", db.output("host"), 5432),
                "tags": ["a", 1, null]
            }),
        )
        .options(ResourceOptions::new().depends_on(&db).protect(true).aliases(["application"]));
    ctx.export("app_url", interpolate!("https://{}/", app.output("host")));
    ctx.export("static", "plain");
    ctx.export("db", db.id());
    assert_eq!(
        ctx.manifest(),
        json!({
            "manifest": 1,
            "project": "shop",
            "stack": "dev",
            "resources": [
                {
                    "name": "db",
                    "type": "acme:db:Instance",
                    "inputs": {"size": "small", "password": {"$secret": "hunter2"}},
                    "options": {}
                },
                {
                    "name": "app",
                    "type": "acme:App",
                    "inputs": {
                        "db_host": {"$ref": "db", "output": "endpoint.host"},
                        "db_id": {"$ref": "db"},
                        "dsn": {"$concat": ["postgres://app@", {"$ref": "db", "output": "host"}, ":", 5432, "/shop"]},
                        "tags": ["a", 1, null]
                    },
                    "options": {"depends_on": ["db"], "protect": true, "aliases": ["application"]}
                }
            ],
            "components": [],
            "outputs": {
                "app_url": {"$concat": ["https://", {"$ref": "app", "output": "host"}, "/"]},
                "static": "plain",
                "db": {"$ref": "db"}
            }
        })
    );
}

#[test]
fn core_resources_are_typed() {
    let ctx = local();
    let version = ctx.declare("version", core::Data { value: json!("1.2.3"), ..Default::default() });
    let build = ctx
        .declare(
            "build",
            core::Command {
                create: "make dist".into(),
                delete: Some("rm -rf dist".into()),
                dir: Some("web".into()),
                environment: [("VERSION".to_string(), version.value().into())].into(),
                triggers: json!([version.value()]),
                ..Default::default()
            },
        )
        .options(ResourceOptions::new().delete_before_replace(true));
    ctx.declare("bare", core::Command { create: "true".into(), ..Default::default() });
    ctx.export("log", build.stdout());
    ctx.export("status", build.exit_code());
    let m = ctx.manifest();
    assert_eq!(
        m["resources"],
        json!([
            {"name": "version", "type": "core:Data", "inputs": {"value": "1.2.3", "triggers": null}, "options": {}},
            {
                "name": "build",
                "type": "core:Command",
                "inputs": {
                    "create": "make dist",
                    "delete": "rm -rf dist",
                    "dir": "web",
                    "environment": {"VERSION": {"$ref": "version", "output": "value"}},
                    "triggers": [{"$ref": "version", "output": "value"}]
                },
                "options": {"delete_before_replace": true}
            },
            {"name": "bare", "type": "core:Command", "inputs": {"create": "true"}, "options": {}}
        ])
    );
    assert_eq!(
        m["outputs"],
        json!({"log": {"$ref": "build", "output": "stdout"}, "status": {"$ref": "build", "output": "exit_code"}})
    );
}

#[test]
fn options_can_be_replaced_and_read_back() {
    let ctx = local();
    let r = ctx.resource("r", "core:Data", json!({"value": 1})).options(ResourceOptions::new().protect(true));
    let r = r.options(ResourceOptions::new().retain_on_delete(true).ignore_changes(["value"]));
    assert_eq!(r.current_options(), ResourceOptions::new().retain_on_delete(true).ignore_changes(["value"]));
    assert_eq!(
        ctx.manifest()["resources"][0]["options"],
        json!({"retain_on_delete": true, "ignore_changes": ["value"]})
    );
}

#[test]
fn user_components_group_resources() {
    let ctx = local();
    let site = ctx.component("site", "acme:Website");
    let assets = ctx.component("assets", "acme:Assets").parent(&site);
    ctx.resource("index", "core:Data", json!({"value": "<h1>hi</h1>"}))
        .options(ResourceOptions::new().parent(&assets).replace_on_changes(["value"]));
    let m = ctx.manifest();
    assert_eq!(
        m["components"],
        json!([
            {"name": "site", "type": "acme:Website", "parent": null},
            {"name": "assets", "type": "acme:Assets", "parent": "site"}
        ])
    );
    assert_eq!(
        m["resources"][0],
        json!({
            "name": "index",
            "type": "core:Data",
            "inputs": {"value": "<h1>hi</h1>"},
            "options": {"replace_on_changes": ["value"]},
            "parent": "assets"
        })
    );
}

#[test]
fn duplicate_names_are_left_for_the_engine_to_report() {
    let ctx = local();
    ctx.resource("same", "core:Data", json!({}));
    ctx.resource("same", "core:Data", json!({}));
    ctx.export("x", 1);
    ctx.export("x", 2);
    let m = ctx.manifest();
    assert_eq!(m["resources"].as_array().map(Vec::len), Some(2));
    assert_eq!(m["outputs"], json!({"x": 2}));
}

#[test]
fn config_drives_the_program() {
    let ctx = Program::new("shop", "prod", Target::Local, json!({"replicas": 3, "domain": "shop.example"}));
    let replicas: u32 = ctx.require_config("replicas").unwrap();
    let domain: String = ctx.require_config("domain").unwrap();
    for i in 0..replicas {
        ctx.resource(format!("replica-{i}"), "core:Data", json!({"value": domain}));
    }
    assert_eq!(ctx.manifest()["resources"].as_array().map(Vec::len), Some(3));
    assert_eq!(ctx.manifest()["stack"], "prod");
}

#[test]
fn to_json_is_the_manifest() {
    let ctx = local();
    ctx.resource("a", "core:Data", json!({"value": "é\"\n"}));
    let parsed: serde_json::Value = serde_json::from_str(&ctx.to_json()).unwrap();
    assert_eq!(parsed, ctx.manifest());
}

fn env(provider: &str) -> Result<Program, crate::Error> {
    Program::from_lookup(|k| match k {
        "SKYFORM_PROJECT" => Some("shop".to_string()),
        "SKYFORM_STACK" => Some("dev".to_string()),
        "SKYFORM_PROVIDER" => Some(provider.to_string()),
        _ => None,
    })
}

#[test]
fn run_prints_the_manifest_or_the_error() {
    let json = crate::build(env("local"), |ctx| {
        ctx.resource("a", "core:Data", json!({"value": 1}));
        Ok(())
    })
    .unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["resources"][0]["name"], "a");

    let err = crate::build(env("local"), |ctx| {
        let _missing: String = ctx.require_config("token")?;
        Ok(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("`token` is required"), "{err}");

    let err = crate::build(env("local"), |_| Err("custom failure".into())).unwrap_err();
    assert_eq!(err.to_string(), "custom failure");

    let err = crate::build(env("gcp"), |_| Ok(())).unwrap_err();
    assert!(err.to_string().starts_with("SKYFORM_PROVIDER names `gcp`"), "{err}");
}
