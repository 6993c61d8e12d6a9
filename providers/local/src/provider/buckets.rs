//! `local:Bucket` and `local:BucketNotification` in the provider: `check` validates and fills
//! defaults (so a bad setting fails at preview), the rest calls the daemon's bucket and
//! bucket-notification routes ([`crate::buckets`]).
//!
//! A bucket's S3 name is its resource name made a valid bucket name
//! ([`crate::buckets::bucket_name_for`]: lowercased, other characters `-`). Deleting a
//! bucket that holds objects fails with `BucketNotEmpty`, as on AWS, unless `force_destroy`
//! is set, which deletes the objects with it (as the aws provider's `force_destroy` does).

use serde_json::{Value, json};
use skyform_protocol::*;

use super::{LocalProvider, Res, is_unknown};
use crate::buckets::bucket_name_for;
use crate::buckets::events::{EVENT_NAMES, NotificationSpec};
use crate::http::percent_encode;

pub const BUCKET: &str = "local:Bucket";
pub const BUCKET_NOTIFICATION: &str = "local:BucketNotification";

pub fn handles(type_: &str) -> bool {
    type_ == BUCKET || type_ == BUCKET_NOTIFICATION
}

fn bucket_path(stack: &str, bucket: &str) -> String {
    format!("/v1/stacks/{}/buckets/{}", percent_encode(stack), percent_encode(bucket))
}

fn notification_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/bucket-notifications/{}", percent_encode(stack), percent_encode(name))
}

pub fn schemas(m: &mut std::collections::BTreeMap<String, ResourceSchema>) {
    m.insert(
        BUCKET.to_string(),
        ResourceSchema {
            description: "An S3 bucket of the local cloud, served on its AWS endpoint".into(),
            inputs: json!({
                "type": "object",
                "properties": {
                    "versioning": {"type": "boolean", "default": false, "description": "recorded; the local cloud keeps the latest version only"},
                    "force_destroy": {"type": "boolean", "default": false, "description": "on delete, delete the objects too (otherwise a non-empty bucket refuses)"}
                }
            }),
            outputs: vec!["bucket_name".into(), "arn".into()],
            replace_on_changes: Vec::new(),
            stable_outputs: vec!["bucket_name".into(), "arn".into()],
        },
    );
    m.insert(
        BUCKET_NOTIFICATION.to_string(),
        ResourceSchema {
            description: "Invokes a function with S3 event records when objects are created or removed"
                .into(),
            inputs: json!({
                "type": "object",
                "required": ["bucket", "function", "events"],
                "properties": {
                    "bucket": {"type": "string", "description": "the bucket's name"},
                    "function": {"type": "string", "description": "the function's name"},
                    "events": {"type": "array", "items": {"type": "string", "enum": EVENT_NAMES}},
                    "prefix": {"type": ["string", "null"]},
                    "suffix": {"type": ["string", "null"]}
                }
            }),
            outputs: vec!["bucket".into(), "function".into()],
            replace_on_changes: vec!["bucket".into()],
            stable_outputs: vec!["bucket".into()],
        },
    );
}

fn boolean(obj: &serde_json::Map<String, Value>, key: &str, failures: &mut Vec<CheckFailure>) -> Value {
    match obj.get(key) {
        None | Some(Value::Null) => json!(false),
        Some(v @ Value::Bool(_)) => v.clone(),
        Some(v) if is_unknown(v) => v.clone(),
        Some(other) => {
            failures.push(CheckFailure {
                property: key.into(),
                reason: format!("expected true or false, got {other}"),
            });
            other.clone()
        }
    }
}

pub fn check(type_: &str, inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let obj = inputs.as_object().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    if type_ == BUCKET {
        let checked = json!({
            "versioning": boolean(&obj, "versioning", &mut failures),
            "force_destroy": boolean(&obj, "force_destroy", &mut failures),
        });
        return (checked, failures);
    }
    for key in ["bucket", "function"] {
        match obj.get(key) {
            Some(Value::String(s)) if key == "bucket" && !is_unknown(&json!(s)) => {
                if let Err(m) = crate::buckets::store::valid_bucket_name(s) {
                    failures.push(CheckFailure { property: key.into(), reason: m });
                }
            }
            Some(Value::String(_)) => {}
            Some(v) if is_unknown(v) => {}
            other => failures.push(CheckFailure {
                property: key.into(),
                reason: format!("expected the {key}'s name, got {}", other.cloned().unwrap_or(Value::Null)),
            }),
        }
    }
    match obj.get("events") {
        Some(Value::Array(a)) if !a.is_empty() => {
            for e in a {
                if !e.as_str().is_some_and(|s| EVENT_NAMES.contains(&s)) && !is_unknown(e) {
                    failures.push(CheckFailure {
                        property: "events".into(),
                        reason: format!("unknown event {e}; expected one of {}", EVENT_NAMES.join(", ")),
                    });
                }
            }
        }
        Some(v) if is_unknown(v) => {}
        other => failures.push(CheckFailure {
            property: "events".into(),
            reason: format!(
                "expected a list of events such as [\"s3:ObjectCreated:*\"], got {}",
                other.cloned().unwrap_or(Value::Null)
            ),
        }),
    }
    for key in ["prefix", "suffix"] {
        match obj.get(key) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(v) if is_unknown(v) => {}
            Some(other) => failures.push(CheckFailure {
                property: key.into(),
                reason: format!("expected a string or null, got {other}"),
            }),
        }
    }
    let checked = json!({
        "bucket": obj.get("bucket").cloned().unwrap_or(Value::Null),
        "function": obj.get("function").cloned().unwrap_or(Value::Null),
        "events": obj.get("events").cloned().unwrap_or(Value::Null),
        "prefix": obj.get("prefix").cloned().unwrap_or(Value::Null),
        "suffix": obj.get("suffix").cloned().unwrap_or(Value::Null),
    });
    (checked, failures)
}

fn bucket_outputs(view: &Value) -> Value {
    json!({"bucket_name": view["bucket_name"], "arn": view["arn"]})
}

fn notification_outputs(view: &Value) -> Value {
    json!({"bucket": view["spec"]["bucket"], "function": view["spec"]["function"]})
}

fn spec_of(inputs: &Value) -> NotificationSpec {
    NotificationSpec {
        bucket: inputs["bucket"].as_str().unwrap_or_default().to_string(),
        function: inputs["function"].as_str().unwrap_or_default().to_string(),
        events: inputs["events"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        prefix: inputs["prefix"].as_str().map(str::to_string),
        suffix: inputs["suffix"].as_str().map(str::to_string),
    }
}

impl LocalProvider {
    fn bucket_resource_path(&self, type_: &str, name: &str) -> Res<String> {
        let cfg = self.config()?;
        Ok(if type_ == BUCKET {
            bucket_path(&cfg.stack, &bucket_name_for(name))
        } else {
            notification_path(&cfg.stack, name)
        })
    }

    /// Creates or updates a bucket or a notification; answers its outputs.
    pub(super) async fn put_bucket_resource(&self, type_: &str, name: &str, inputs: &Value) -> Res<Value> {
        let path = self.bucket_resource_path(type_, name)?;
        let body = if type_ == BUCKET {
            json!({
                "force_destroy": inputs["force_destroy"].as_bool().unwrap_or(false),
                "versioning": inputs["versioning"].as_bool().unwrap_or(false),
            })
            .to_string()
        } else {
            serde_json::to_string(&spec_of(inputs)).map_err(|e| ProviderError::failed(e.to_string()))?
        };
        let view = self.control_put(&path, body.as_bytes(), &format!("`{name}`")).await?;
        Ok(if type_ == BUCKET { bucket_outputs(&view) } else { notification_outputs(&view) })
    }

    pub(super) async fn create_bucket_resource(&self, req: CreateRequest) -> Res<CreateResponse> {
        let outputs = self.put_bucket_resource(&req.type_, &req.name, &req.inputs).await?;
        let id = if req.type_ == BUCKET {
            outputs["bucket_name"].as_str().unwrap_or(&req.name).to_string()
        } else {
            req.name.clone()
        };
        Ok(CreateResponse { id, outputs })
    }

    pub(super) async fn read_bucket_resource(&self, req: &ReadRequest) -> Res<ReadResponse> {
        let path = self.bucket_resource_path(&req.type_, &req.name)?;
        let Some(view) = self.control_get(&path).await? else {
            return Ok(ReadResponse { resource: None });
        };
        let resource = if req.type_ == BUCKET {
            ReadResource {
                id: view["bucket_name"].as_str().unwrap_or(&req.name).to_string(),
                inputs: json!({"versioning": view["versioning"], "force_destroy": view["force_destroy"]}),
                outputs: bucket_outputs(&view),
            }
        } else {
            let s = &view["spec"];
            ReadResource {
                id: req.name.clone(),
                inputs: json!({
                    "bucket": s["bucket"], "function": s["function"], "events": s["events"],
                    "prefix": s["prefix"], "suffix": s["suffix"],
                }),
                outputs: notification_outputs(&view),
            }
        };
        Ok(ReadResponse { resource: Some(resource) })
    }

    pub(super) async fn delete_bucket_resource(&self, req: &DeleteRequest) -> Res<DeleteResponse> {
        let path = self.bucket_resource_path(&req.type_, &req.name)?;
        if req.type_ == BUCKET {
            // The recorded force_destroy decides, as on aws: make sure the daemon has it.
            let body = json!({
                "force_destroy": req.inputs["force_destroy"].as_bool().unwrap_or(false),
                "versioning": req.inputs["versioning"].as_bool().unwrap_or(false),
            })
            .to_string();
            let a = self.call("GET", &path, &[]).await?;
            if a.status == 404 {
                return Ok(DeleteResponse {});
            }
            let a = self.call("PUT", &path, body.as_bytes()).await?;
            if a.status != 200 {
                return Err(ProviderError::failed(format!("cannot delete `{}`: {}", req.name, a.message())));
            }
        }
        self.control_delete(&path, &[], &req.name).await
    }
}
