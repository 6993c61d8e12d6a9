//! The manifests this SDK writes conform to `manifest.schema.json`.
//!
//! The SDK may not depend on a JSON Schema crate, so this module carries a small validator for
//! the keywords the schema uses. It fails loudly on a keyword it does not know, so that the
//! schema cannot silently outgrow it. Patterns, which would need a regex engine, are checked by
//! hand-written predicates looked up by their exact text.

use serde_json::{Map, Value, json};

use super::local;
use crate::{
    Bucket, Function, HttpApi, KeyType, Queue, ResourceOptions, Runtime, Schedule, Table, Topic, core,
    interpolate, secret,
};

const SCHEMA: &str = include_str!("../../manifest.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("manifest.schema.json is valid JSON")
}

/// The predicates standing in for the schema's `pattern`s.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    let name_char = |c: char| c.is_ascii_alphanumeric() || "_./:-".contains(c);
    let segment_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    match pattern {
        "^[A-Za-z0-9_./:-]+$" => !s.is_empty() && s.chars().all(name_char),
        "^\\$" => s.starts_with('$'),
        "^[a-z][a-z0-9-]*(:[A-Za-z0-9_.-]+){1,2}$" => {
            let parts: Vec<&str> = s.split(':').collect();
            let provider = parts[0];
            (2..=3).contains(&parts.len())
                && provider.starts_with(|c: char| c.is_ascii_lowercase())
                && provider.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && parts[1..].iter().all(|p| !p.is_empty() && p.chars().all(segment_char))
        }
        other => panic!("the test validator has no predicate for the pattern {other:?}; add one"),
    }
}

struct Validator {
    root: Value,
}

impl Validator {
    /// Every error found, as `path: message`.
    fn errors(&self, schema: &Value, value: &Value, path: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(schema) = schema.as_object() else {
            panic!("schema at {path} is not an object");
        };
        for (keyword, arg) in schema {
            let mut fail = |msg: String| errors.push(format!("{path}: {msg}"));
            match keyword.as_str() {
                "$schema" | "$id" | "title" | "description" | "default" | "$defs" => {}
                "$ref" => {
                    let target = self.resolve(arg.as_str().unwrap());
                    errors.extend(self.errors(target, value, path));
                }
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("bad type keyword"),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        fail(format!("expected {types:?}, got {value}"));
                    }
                }
                "const" => {
                    if value != arg {
                        fail(format!("expected {arg}, got {value}"));
                    }
                }
                "enum" => {
                    if !arg.as_array().unwrap().contains(value) {
                        fail(format!("{value} is not one of {arg}"));
                    }
                }
                "minLength" => {
                    if let Some(s) = value.as_str()
                        && (s.chars().count() as u64) < arg.as_u64().unwrap()
                    {
                        fail(format!("{value} is too short"));
                    }
                }
                "maxLength" => {
                    if let Some(s) = value.as_str()
                        && (s.chars().count() as u64) > arg.as_u64().unwrap()
                    {
                        fail(format!("{value} is too long"));
                    }
                }
                "pattern" => {
                    if let Some(s) = value.as_str()
                        && !pattern_matches(arg.as_str().unwrap(), s)
                    {
                        fail(format!("{value} does not match {arg}"));
                    }
                }
                "required" => {
                    if let Some(obj) = value.as_object() {
                        for key in arg.as_array().unwrap().iter().filter_map(Value::as_str) {
                            if !obj.contains_key(key) {
                                fail(format!("missing required `{key}`"));
                            }
                        }
                    }
                }
                "properties" | "additionalProperties" | "propertyNames" => {
                    if let Some(obj) = value.as_object() {
                        errors.extend(self.object_errors(keyword, schema, arg, obj, path));
                    }
                }
                "items" => {
                    if let Some(items) = value.as_array() {
                        for (i, item) in items.iter().enumerate() {
                            errors.extend(self.errors(arg, item, &format!("{path}/{i}")));
                        }
                    }
                }
                "anyOf" => {
                    let branches = arg.as_array().unwrap();
                    if !branches.iter().any(|b| self.errors(b, value, path).is_empty()) {
                        fail(format!("{value} matches none of the anyOf branches"));
                    }
                }
                "not" => {
                    if self.errors(arg, value, path).is_empty() {
                        fail(format!("{value} matches a `not` schema"));
                    }
                }
                other => panic!("the test validator does not know the keyword `{other}`; teach it"),
            }
        }
        errors
    }

    /// `properties`, `additionalProperties` and `propertyNames` of one object.
    fn object_errors(
        &self,
        keyword: &str,
        schema: &Map<String, Value>,
        arg: &Value,
        obj: &Map<String, Value>,
        path: &str,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let declared = schema.get("properties").and_then(Value::as_object);
        for (key, item) in obj {
            let item_path = format!("{path}/{key}");
            match keyword {
                "properties" => {
                    if let Some(sub) = arg.get(key) {
                        errors.extend(self.errors(sub, item, &item_path));
                    }
                }
                "additionalProperties" => {
                    if declared.is_some_and(|d| d.contains_key(key)) {
                        continue;
                    }
                    match arg {
                        Value::Bool(false) => errors.push(format!("{item_path}: property not allowed")),
                        Value::Bool(true) => {}
                        sub => errors.extend(self.errors(sub, item, &item_path)),
                    }
                }
                _ => errors.extend(self.errors(arg, &Value::String(key.clone()), &item_path)),
            }
        }
        errors
    }

    fn resolve(&self, reference: &str) -> &Value {
        let name = reference.strip_prefix("#/$defs/").expect("only local $defs references");
        self.root["$defs"].get(name).unwrap_or_else(|| panic!("no $defs/{name}"))
    }

    fn validate(&self, value: &Value) -> Vec<String> {
        self.errors(&self.root, value, "")
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// Programs that together use every field of the format.
pub(crate) fn sample_manifests() -> Vec<Value> {
    let mut manifests = vec![local().manifest()];

    let ctx = local();
    let site = ctx.component("site", "acme:Website");
    let version = ctx.declare("version", core::Data { value: json!({"v": [1, 2]}), triggers: json!("t") });
    let db = ctx
        .resource(
            "db",
            "aws:rds:Instance",
            json!({"password": secret("pw"), "nested": {"list": [version.value()]}}),
        )
        .options(
            ResourceOptions::new()
                .depends_on(&version)
                .protect(true)
                .ignore_changes(["tags"])
                .replace_on_changes(["engine"])
                .delete_before_replace(true)
                .retain_on_delete(true)
                .aliases(["database"])
                .parent(&site),
        );
    ctx.export("dsn", secret(interpolate!("postgres://{}:{}/x", db.output("host"), 5432)));
    ctx.export("id", db.id());
    manifests.push(ctx.manifest());

    let ctx = local();
    let hello = ctx
        .add(Function::new("hello").code("functions/hello").handler("app.handler").runtime(Runtime::Python3))
        .unwrap();
    let rust = ctx.add(Function::rust("api", "rust-api-fn")).unwrap();
    let api =
        ctx.add(HttpApi::new("api-gw").route("GET /hello/{name}", &hello).route("$default", &rust)).unwrap();
    let q = ctx.add(Queue::new("jobs")).unwrap();
    q.subscribe(&hello).unwrap();
    let t = ctx.add(Topic::new("events")).unwrap();
    t.subscribe(&hello).unwrap();
    let b = ctx.add(Bucket::new("uploads")).unwrap();
    b.on_object_created(&hello).unwrap();
    ctx.add(Schedule::rate("tick", "1 minute", &hello)).unwrap();
    ctx.add(Table::new("users").hash_key("id", KeyType::String)).unwrap();
    ctx.export("url", api.url());
    manifests.push(ctx.manifest());
    manifests
}

#[test]
fn the_schema_file_is_json_schema_2020_12() {
    let schema = schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["properties"]["manifest"]["const"], json!(crate::MANIFEST_VERSION));
}

#[test]
fn sdk_manifests_conform_to_the_schema() {
    let validator = Validator { root: schema() };
    for manifest in sample_manifests() {
        let errors = validator.validate(&manifest);
        assert!(errors.is_empty(), "{errors:#?}\nin {manifest:#}");
    }
}

#[test]
fn the_validator_catches_what_the_schema_forbids() {
    let validator = Validator { root: schema() };
    let good = json!({"manifest": 1, "project": "p", "stack": "s", "resources": []});
    assert!(validator.validate(&good).is_empty());
    let resource = |r: Value| json!({"manifest": 1, "project": "p", "stack": "s", "resources": [r]});
    let bad = [
        json!({"manifest": 2, "project": "p", "stack": "s", "resources": []}),
        json!({"manifest": 1, "project": "p", "resources": []}),
        json!({"manifest": 1, "project": "p", "stack": "s", "resources": [], "extra": 1}),
        resource(json!({"name": "a b", "type": "core:Data", "inputs": {}})),
        resource(json!({"name": "a".repeat(201), "type": "core:Data", "inputs": {}})),
        resource(json!({"name": "a", "type": "Data", "inputs": {}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {"x": {"$ref": 1}}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {"x": {"$ref": "b", "extra": 1}}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {"x": {"$concat": [true]}}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {"x": {"$unknown": 1}}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {}, "options": {"protect": "yes"}})),
        resource(json!({"name": "a", "type": "core:Data", "inputs": {}, "options": {"typo": true}})),
    ];
    for manifest in bad {
        assert!(!validator.validate(&manifest).is_empty(), "accepted {manifest}");
    }
}

/// The keys of an object schema's `properties`, sorted.
fn property_keys(schema: &Value) -> Vec<String> {
    let mut keys: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn the_schema_describes_exactly_the_fields_the_sdk_writes() {
    let schema = schema();
    let manifests = sample_manifests();
    let mut top: Vec<String> = manifests[0].as_object().unwrap().keys().cloned().collect();
    top.sort();
    // The SDK writes every top-level field, the required ones and the optional ones.
    assert_eq!(property_keys(&schema), top);
    for required in schema["required"].as_array().unwrap() {
        assert!(top.contains(&required.as_str().unwrap().to_string()), "{required}");
    }

    let resources: Vec<&Value> = manifests.iter().flat_map(|m| m["resources"].as_array().unwrap()).collect();
    let mut resource_keys: Vec<String> =
        resources.iter().flat_map(|r| r.as_object().unwrap().keys().cloned()).collect();
    resource_keys.sort();
    resource_keys.dedup();
    assert_eq!(property_keys(&schema["$defs"]["resource"]), resource_keys);
    for required in schema["$defs"]["resource"]["required"].as_array().unwrap() {
        assert!(resources.iter().all(|r| r.get(required.as_str().unwrap()).is_some()), "{required}");
    }

    let mut option_keys: Vec<String> =
        resources.iter().flat_map(|r| r["options"].as_object().unwrap().keys().cloned()).collect();
    option_keys.sort();
    option_keys.dedup();
    assert_eq!(property_keys(&schema["$defs"]["options"]), option_keys);

    let components: Vec<&Value> =
        manifests.iter().flat_map(|m| m["components"].as_array().unwrap()).collect();
    for c in components {
        let mut keys: Vec<String> = c.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(property_keys(&schema["$defs"]["component"]), keys);
    }
}
