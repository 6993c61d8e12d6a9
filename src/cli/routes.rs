//! Routes that shadow each other: `GET /notes/{id}` and `GET /notes/{name}` match exactly the
//! same requests, so API Gateway (and the local cloud) sends them all to one of the two and the
//! other can never be reached. The program is valid (the names differ), so this is a warning
//! at preview, not an error.
//!
//! It reads the routes from the plan's steps, whatever the provider: `local:HttpApi` lists them
//! in `routes: [{"route": KEY}]`; on `aws`, each `aws:apigatewayv2:Route` has a `route_key` and
//! belongs to the API its `api_id` refers to (the SDK nests both in the API's component).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::plan::{Plan, StepKind};

/// One warning per pair of routes of the same API that match the same requests.
pub fn shadowed(plan: &Plan) -> Vec<String> {
    // API name → its route keys, in declaration order.
    let mut apis: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in plan.steps.iter().filter(|s| s.kind != StepKind::Delete) {
        if let Some(routes) = s.inputs.get("routes").and_then(Value::as_array)
            && s.type_.ends_with(":HttpApi")
        {
            let keys = routes.iter().filter_map(|r| r.get("route").and_then(Value::as_str));
            apis.entry(s.name.clone()).or_default().extend(keys.map(str::to_string));
        } else if s.type_ == "aws:apigatewayv2:Route"
            && let Some(key) = s.inputs.get("route_key").and_then(Value::as_str)
        {
            let api = s.parent.clone().unwrap_or_default();
            apis.entry(api).or_default().push(key.to_string());
        }
    }
    let mut out = Vec::new();
    for (api, keys) in &apis {
        for (i, later) in keys.iter().enumerate() {
            if let Some(earlier) = keys[..i].iter().find(|k| shape(k) == shape(later)) {
                out.push(format!(
                    "HTTP API `{api}`: the routes `{earlier}` and `{later}` match the same requests, so one of \
                     them can never be reached; give them different paths (or merge them into one route)"
                ));
            }
        }
    }
    out
}

/// A route key with its path parameters' names erased: `GET /notes/{id}` → `GET /notes/{}`;
/// a greedy parameter stays distinct (`{proxy+}` → `{+}`).
fn shape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                let inner = &rest[open + 1..open + close];
                out.push_str(if inner.ends_with('+') { "{+}" } else { "{}" });
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(shape("GET /notes/{id}"), shape("GET /notes/{name}"));
        assert_ne!(shape("GET /notes/{id}"), shape("POST /notes/{name}"));
        assert_ne!(shape("GET /notes/{id}"), shape("GET /notes/{id+}"));
        assert_ne!(shape("GET /notes/{id}"), shape("GET /notes/latest"));
        assert_eq!(shape("GET /a/{x}/b/{y}"), "GET /a/{}/b/{}");
        assert_eq!(shape("$default"), "$default");
    }
}
