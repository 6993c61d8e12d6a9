//! `local:Table` and `local:TableSubscription` in the provider: `check` validates the key
//! schema and indexes (so a bad one fails at preview), the rest calls the daemon's table and
//! table-subscription routes ([`crate::tables::control`], [`crate::tables::stream`]).
//!
//! A table's DynamoDB name is its resource name, with characters DynamoDB does not allow
//! replaced by `-` (at least 3 characters, at most 255).

use serde_json::{Value, json};
use skyform_protocol::*;

use super::{LocalProvider, Res, is_unknown};
use crate::http::percent_encode;
use crate::tables::stream::SubscriptionSpec;
use crate::tables::{IndexSpec, KeyAttr, TableSpec};

pub const TABLE: &str = "local:Table";
pub const TABLE_SUBSCRIPTION: &str = "local:TableSubscription";

pub fn handles(type_: &str) -> bool {
    type_ == TABLE || type_ == TABLE_SUBSCRIPTION
}

pub fn table_path(stack: &str, table_name: &str) -> String {
    format!("/v1/stacks/{}/tables/{}", percent_encode(stack), percent_encode(table_name))
}

pub fn subscription_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/table-subscriptions/{}", percent_encode(stack), percent_encode(name))
}

/// The DynamoDB name of the table resource `name`.
pub fn table_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    s.truncate(255);
    while s.len() < 3 {
        s.push('_');
    }
    s
}

pub fn schemas(m: &mut std::collections::BTreeMap<String, ResourceSchema>) {
    let key = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": ["string", "number", "binary"]}
    }});
    m.insert(
        TABLE.to_string(),
        ResourceSchema {
            description: "A DynamoDB table of the local cloud, served on its AWS endpoint".into(),
            inputs: json!({
                "type": "object",
                "required": ["hash_key"],
                "properties": {
                    "hash_key": key,
                    "range_key": {"oneOf": [key, {"type": "null"}]},
                    "indexes": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "hash_key": key,
                        "range_key": {"oneOf": [key, {"type": "null"}]}
                    }}}
                }
            }),
            outputs: vec!["table_name".into(), "arn".into(), "stream_arn".into()],
            replace_on_changes: vec!["hash_key".into(), "range_key".into()],
            stable_outputs: vec!["table_name".into(), "arn".into()],
        },
    );
    m.insert(
        TABLE_SUBSCRIPTION.to_string(),
        ResourceSchema {
            description: "Invokes a function with batches of a table's changes (a DynamoDB Streams event), as \
                          Lambda's event source mapping does"
                .into(),
            inputs: json!({
                "type": "object",
                "required": ["table", "function"],
                "properties": {
                    "table": {"type": "string", "description": "the table's name or ARN"},
                    "function": {"type": "string", "description": "the function's name"},
                    "batch_size": {"type": "integer", "default": 100, "description": "1 to 10000"},
                    "maximum_retry_attempts": {"type": "integer", "default": -1, "description": "-1 (until it succeeds) to 10000"}
                }
            }),
            outputs: vec!["uuid".into(), "table".into(), "function".into(), "stream_arn".into()],
            replace_on_changes: vec!["table".into()],
            stable_outputs: vec!["uuid".into()],
        },
    );
}

/// `{"name", "type": "string"|"number"|"binary"}` → `KeyAttr` (`S`/`N`/`B`).
fn key_attr(v: &Value) -> Result<KeyAttr, String> {
    let name = v["name"].as_str().filter(|n| !n.is_empty()).ok_or("a key needs a non-empty `name`")?;
    let t = match v["type"].as_str() {
        Some("string") | Some("S") => "S",
        Some("number") | Some("N") => "N",
        Some("binary") | Some("B") => "B",
        other => {
            return Err(format!(
                "key `{name}` has type {}; use \"string\", \"number\" or \"binary\"",
                other.map(|s| format!("`{s}`")).unwrap_or("null".into())
            ));
        }
    };
    Ok(KeyAttr { name: name.into(), type_: t.into() })
}

fn portable_type(t: &str) -> &'static str {
    match t {
        "N" => "number",
        "B" => "binary",
        _ => "string",
    }
}

fn key_json(k: &KeyAttr) -> Value {
    json!({"name": k.name, "type": portable_type(&k.type_)})
}

/// The table spec of checked inputs.
fn spec(inputs: &Value) -> Result<TableSpec, String> {
    let hash_key = key_attr(&inputs["hash_key"]).map_err(|e| format!("hash_key: {e}"))?;
    let range_key = match &inputs["range_key"] {
        Value::Null => None,
        v => Some(key_attr(v).map_err(|e| format!("range_key: {e}"))?),
    };
    let mut indexes = Vec::new();
    for (i, ix) in inputs["indexes"].as_array().into_iter().flatten().enumerate() {
        let name = ix["name"].as_str().unwrap_or_default().to_string();
        indexes.push(IndexSpec {
            name,
            hash_key: key_attr(&ix["hash_key"]).map_err(|e| format!("indexes[{i}].hash_key: {e}"))?,
            range_key: match &ix["range_key"] {
                Value::Null => None,
                v => Some(key_attr(v).map_err(|e| format!("indexes[{i}].range_key: {e}"))?),
            },
        });
    }
    Ok(TableSpec { hash_key, range_key, indexes })
}

fn spec_inputs(s: &TableSpec) -> Value {
    json!({
        "hash_key": key_json(&s.hash_key),
        "range_key": s.range_key.as_ref().map(key_json),
        "indexes": s.indexes.iter().map(|i| json!({
            "name": i.name,
            "hash_key": key_json(&i.hash_key),
            "range_key": i.range_key.as_ref().map(key_json),
        })).collect::<Vec<_>>(),
    })
}

pub fn check(type_: &str, inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let obj = inputs.as_object().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    if obj.values().any(is_unknown) {
        return (inputs.clone(), failures);
    }
    if type_ == TABLE {
        let mut checked = json!({
            "hash_key": obj.get("hash_key").cloned().unwrap_or(Value::Null),
            "range_key": obj.get("range_key").cloned().unwrap_or(Value::Null),
            "indexes": obj.get("indexes").cloned().filter(|v| !v.is_null()).unwrap_or(json!([])),
        });
        match spec(&checked) {
            Ok(s) => {
                // The same validation as the daemon's, at preview.
                if let Err(e) = crate::tables::check_spec_public(&s) {
                    failures.push(CheckFailure { property: "indexes".into(), reason: e });
                }
                checked = spec_inputs(&s);
            }
            Err(e) => {
                let property = e.split(':').next().unwrap_or("hash_key").to_string();
                failures.push(CheckFailure { property, reason: e });
            }
        }
        (checked, failures)
    } else {
        for k in ["table", "function"] {
            if !obj.get(k).is_some_and(Value::is_string) {
                failures.push(CheckFailure { property: k.into(), reason: format!("`{k}` must be a name") });
            }
        }
        let num = |k: &str, d: i64, min: i64, max: i64, failures: &mut Vec<CheckFailure>| -> Value {
            match obj.get(k) {
                None | Some(Value::Null) => json!(d),
                Some(v) => match v.as_i64() {
                    Some(n) if (min..=max).contains(&n) => json!(n),
                    _ => {
                        failures.push(CheckFailure {
                            property: k.into(),
                            reason: format!("{k} must be an integer from {min} to {max}, got {v}"),
                        });
                        v.clone()
                    }
                },
            }
        };
        let checked = json!({
            "table": obj.get("table").cloned().unwrap_or(Value::Null),
            "function": obj.get("function").cloned().unwrap_or(Value::Null),
            "batch_size": num("batch_size", 100, 1, 10_000, &mut failures),
            "maximum_retry_attempts": num("maximum_retry_attempts", -1, -1, 10_000, &mut failures),
        });
        (checked, failures)
    }
}

fn table_outputs(view: &Value) -> Value {
    json!({"table_name": view["table_name"], "arn": view["arn"], "stream_arn": view["stream_arn"]})
}

fn subscription_outputs(view: &Value) -> Value {
    json!({
        "uuid": view["uuid"],
        "table": view["spec"]["table"],
        "function": view["spec"]["function"],
        "stream_arn": view["stream_arn"],
    })
}

impl LocalProvider {
    fn table_physical(&self, type_: &str, name: &str) -> Res<String> {
        let cfg = self.config()?;
        Ok(if type_ == TABLE {
            table_path(&cfg.stack, &table_name(name))
        } else {
            subscription_path(&cfg.stack, name)
        })
    }

    /// Creates or updates a table or a subscription; answers its outputs.
    pub(super) async fn put_table_resource(&self, type_: &str, name: &str, inputs: &Value) -> Res<Value> {
        let path = self.table_physical(type_, name)?;
        let body = if type_ == TABLE {
            serde_json::to_vec(&spec(inputs).map_err(ProviderError::invalid_inputs)?)
        } else {
            serde_json::to_vec(&SubscriptionSpec {
                table: inputs["table"].as_str().unwrap_or_default().to_string(),
                function: inputs["function"].as_str().unwrap_or_default().to_string(),
                batch_size: inputs["batch_size"].as_u64().unwrap_or(100) as u32,
                maximum_retry_attempts: inputs["maximum_retry_attempts"].as_i64().unwrap_or(-1),
            })
        }
        .map_err(|e| ProviderError::failed(e.to_string()))?;
        let view = self.control_put(&path, &body, &format!("`{name}`")).await?;
        Ok(if type_ == TABLE { table_outputs(&view) } else { subscription_outputs(&view) })
    }

    pub(super) async fn create_table_resource(&self, req: CreateRequest) -> Res<CreateResponse> {
        let outputs = self.put_table_resource(&req.type_, &req.name, &req.inputs).await?;
        let id = if req.type_ == TABLE {
            outputs["table_name"].as_str().unwrap_or(&req.name).to_string()
        } else {
            outputs["uuid"].as_str().unwrap_or(&req.name).to_string()
        };
        Ok(CreateResponse { id, outputs })
    }

    pub(super) async fn read_table_resource(&self, req: &ReadRequest) -> Res<ReadResponse> {
        let path = self.table_physical(&req.type_, &req.name)?;
        let Some(view) = self.control_get(&path).await? else {
            return Ok(ReadResponse { resource: None });
        };
        let resource = if req.type_ == TABLE {
            let s: TableSpec = serde_json::from_value(view["spec"].clone())
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            ReadResource {
                id: view["table_name"].as_str().unwrap_or_default().into(),
                inputs: spec_inputs(&s),
                outputs: table_outputs(&view),
            }
        } else {
            let s = &view["spec"];
            ReadResource {
                id: view["uuid"].as_str().unwrap_or_default().into(),
                inputs: json!({
                    "table": s["table"],
                    "function": s["function"],
                    "batch_size": s["batch_size"],
                    "maximum_retry_attempts": s["maximum_retry_attempts"],
                }),
                outputs: subscription_outputs(&view),
            }
        };
        Ok(ReadResponse { resource: Some(resource) })
    }

    pub(super) async fn delete_table_resource(&self, req: &DeleteRequest) -> Res<DeleteResponse> {
        let path = self.table_physical(&req.type_, &req.name)?;
        self.control_delete(&path, &[], &req.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_valid_dynamodb_names() {
        assert_eq!(table_name("orders"), "orders");
        assert_eq!(table_name("app/orders"), "app-orders");
        assert_eq!(table_name("a"), "a__");
    }

    #[test]
    fn bad_schemas_fail_at_check() {
        let (c, f) = check(TABLE, &json!({"hash_key": {"name": "id", "type": "string"}}));
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(c["range_key"], Value::Null);
        let (_, f) = check(TABLE, &json!({"hash_key": {"name": "id", "type": "text"}}));
        assert!(f[0].reason.contains("\"string\", \"number\" or \"binary\""), "{f:?}");
        let (_, f) = check(TABLE, &json!({}));
        assert_eq!(f[0].property, "hash_key");
        let (_, f) = check(
            TABLE,
            &json!({"hash_key": {"name": "id", "type": "string"}, "indexes": [
                {"name": "byEmail", "hash_key": {"name": "id", "type": "number"}}
            ]}),
        );
        assert!(f[0].reason.contains("two types"), "{f:?}");
        let (_, f) = check(TABLE_SUBSCRIPTION, &json!({"table": "t", "function": "f", "batch_size": 0}));
        assert_eq!(f[0].property, "batch_size");
    }
}
