//! `core:Data`: a value kept in state.
//!
//! It has no real counterpart, so `create` and `update` only echo the value back as an output;
//! what makes it useful is the lifecycle: a change of `value` is an update in place (dependent
//! resources see the new output), a change of `triggers` is a replacement.

use serde_json::{Value, json};
use skyform_protocol::{CreateResponse, ReadRequest, ReadResource, ResourceSchema, UpdateResponse};

pub fn schema() -> ResourceSchema {
    ResourceSchema {
        description: "A value kept in state, like Terraform's terraform_data. `value` is copied to \
                      the output `value` (a change updates it in place); a change of `triggers` \
                      replaces the resource, so resources that depend on it are replaced too."
            .to_string(),
        inputs: json!({
            "type": "object",
            "properties": {
                "value": { "description": "Any JSON value; copied to the output `value`." },
                "triggers": { "description": "Any JSON value; a change replaces the resource." }
            },
            "additionalProperties": false
        }),
        outputs: vec!["value".to_string()],
        replace_on_changes: vec!["triggers".to_string()],
        stable_outputs: Vec::new(),
    }
}

fn outputs(inputs: &Value) -> Value {
    json!({ "value": inputs.get("value").cloned().unwrap_or(Value::Null) })
}

pub fn create(inputs: &Value) -> CreateResponse {
    CreateResponse { id: crate::new_id(), outputs: outputs(inputs) }
}

pub fn update(news: &Value) -> UpdateResponse {
    UpdateResponse { outputs: outputs(news) }
}

/// The recorded values, for both types: they exist wherever state says so.
pub fn read_recorded(req: &ReadRequest) -> Option<ReadResource> {
    let id = req.id.clone()?;
    let inputs = if req.inputs.is_null() { crate::empty_object() } else { req.inputs.clone() };
    let outputs = if req.outputs.is_null() && req.type_ == crate::DATA {
        outputs(&inputs)
    } else {
        req.outputs.clone()
    };
    Some(ReadResource { id, inputs, outputs })
}
