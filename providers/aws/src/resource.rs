//! What every resource type shares: its [`Spec`] (the schema in the handshake, which inputs
//! force a replacement, how its physical name is made), the [`Kind`] trait that each service
//! module implements, and the generic `check` and `diff` built from the spec.
//!
//! The spec is the single source of truth for a type's inputs: the handshake publishes it,
//! `check` validates against it, and `RESOURCES.md` is tested to document every input in it.

use std::future::Future;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use skyform_protocol::{CheckFailure, DiffResponse, ResourceSchema, default_diff, has_unknown};

use crate::http::{Aws, Result, random_u64};

/// What a resource operation can reach: the AWS client and the project's folder.
pub struct Ctx {
    pub aws: Aws,
    pub project_dir: PathBuf,
    /// Configured for a preview: nothing may change.
    pub dry_run: bool,
}

/// How a type's physical name is generated when the program gives none:
/// `<logical-name>-<7 random lowercase alphanumerics>`, cut to fit.
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    /// The input property that holds the name (`name`, `statement_id`).
    pub prop: &'static str,
    pub max_len: usize,
    /// Only lowercase letters, digits and hyphens (S3 buckets).
    pub lowercase: bool,
}

pub const NAME: NameRule = NameRule { prop: "name", max_len: 64, lowercase: false };

#[derive(Debug, Clone)]
pub struct Spec {
    pub token: &'static str,
    pub description: &'static str,
    /// `{property: JSON Schema}`; `default` values are filled in by `check`.
    pub properties: Value,
    pub required: &'static [&'static str],
    pub outputs: &'static [&'static str],
    pub replace_on_changes: &'static [&'static str],
    /// The inputs that make the resource unique in the account (a name, a function and a
    /// source). When a replacement keeps them, the old one must go first: the new one could
    /// not exist beside it.
    pub identity: &'static [&'static str],
    pub name: Option<NameRule>,
    /// Inputs that `diff` does not compare (a code path whose content `code_sha256` stands for).
    pub diff_ignore: &'static [&'static str],
}

impl Spec {
    pub fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            description: self.description.to_string(),
            inputs: json!({
                "type": "object",
                "properties": self.properties,
                "required": self.required,
                "additionalProperties": false,
            }),
            outputs: self.outputs.iter().map(|s| s.to_string()).collect(),
            replace_on_changes: self.replace_on_changes.iter().map(|s| s.to_string()).collect(),
            stable_outputs: stable_outputs(self.token).iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Outputs an in-place update cannot change: identifiers derived from the id or from inputs
/// whose change forces a replacement (every physical `name` below is replace-forcing).
fn stable_outputs(token: &str) -> &'static [&'static str] {
    match token {
        "aws:iam:Role" => &["arn", "name", "unique_id"],
        "aws:iam:RolePolicy" => &["role", "name"],
        "aws:lambda:Function" => &["arn", "name", "invoke_arn"],
        "aws:lambda:FunctionUrl" => &["url", "function_arn"],
        "aws:logs:LogGroup" => &["name", "arn"],
        "aws:apigatewayv2:Api" => &["id", "api_endpoint", "execution_arn"],
        "aws:apigatewayv2:Integration" => &["integration_id", "target"],
        "aws:apigatewayv2:Route" => &["route_id"],
        "aws:apigatewayv2:Stage" => &["name", "invoke_url"],
        "aws:sqs:Queue" => &["url", "arn", "name"],
        "aws:sqs:QueuePolicy" => &["queue_url"],
        "aws:sns:Topic" => &["arn", "name"],
        "aws:s3:Bucket" => &["name", "arn", "bucket_domain_name", "region"],
        "aws:dynamodb:Table" => &["name", "arn"],
        "aws:scheduler:Schedule" => &["arn", "name"],
        _ => &[],
    }
}

/// What `create` returns.
pub struct Created {
    pub id: String,
    pub outputs: Value,
}

/// What `read` returns: the real inputs and the outputs.
pub struct Found {
    pub inputs: Value,
    pub outputs: Value,
}

/// One AWS resource type. `inputs` are always the checked inputs (an object).
pub trait Kind: Send + Sync + 'static {
    fn spec(&self) -> Spec;

    /// Type-specific checks and computed inputs, after the generic ones passed.
    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        _inputs: &mut Map<String, Value>,
        _failures: &mut Vec<CheckFailure>,
    ) {
    }

    fn create(&self, ctx: &Ctx, inputs: &Value) -> impl Future<Output = Result<Created>> + Send;

    /// The resource as it is, or `None` when it is gone. A not-found error from AWS is
    /// taken as gone by the caller, so implementations can use `?` freely.
    fn read(&self, ctx: &Ctx, id: &str, inputs: &Value)
    -> impl Future<Output = Result<Option<Found>>> + Send;

    /// The id of the resource the inputs describe, for a `read` without an id (an interrupted
    /// create). The default is the physical name.
    fn find(&self, _ctx: &Ctx, inputs: &Value) -> impl Future<Output = Result<Option<String>>> + Send {
        let id = self.spec().name.and_then(|r| inputs.get(r.prop)).and_then(Value::as_str).map(String::from);
        async move { Ok(id) }
    }

    /// Applies the changed inputs; returns the new outputs.
    fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        olds: &Value,
        news: &Value,
    ) -> impl Future<Output = Result<Value>> + Send;

    /// Deletes the resource. A not-found error is taken as success by the caller.
    fn delete(&self, ctx: &Ctx, id: &str, inputs: &Value) -> impl Future<Output = Result<()>> + Send;
}

/// True for the errors AWS gives while a role it was just handed has not propagated through
/// IAM yet: Lambda's "The role defined for the function cannot be assumed by Lambda", an event
/// source mapping's "The provided execution role does not have permissions to call
/// ReceiveMessage", Scheduler's "The execution role you provide must allow AWS EventBridge
/// Scheduler to assume the role".
pub fn is_iam_propagation(e: &crate::http::Error) -> bool {
    match e {
        crate::http::Error::Api { code, message, .. } => {
            matches!(code.as_str(), "InvalidParameterValueException" | "ValidationException")
                && message.contains("role")
                && (message.contains("assume") || message.contains("does not have permissions"))
        }
        _ => false,
    }
}

/// Runs `call` again while it fails with [`is_iam_propagation`], for up to two minutes (or
/// `wait_timeout_secs` when shorter): IAM changes take seconds to reach other services.
pub async fn retry_iam_propagation<T, F, Fut>(ctx: &Ctx, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(ctx.aws.settings.wait_timeout_secs.min(120));
    loop {
        match call().await {
            Err(e) if is_iam_propagation(&e) && std::time::Instant::now() < deadline => {
                eprintln!("aws: {what}: {e}; IAM may still be propagating a new role, retrying in 2 s");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

/// What `check` can see besides the inputs.
pub struct CheckCtx<'a> {
    pub logical_name: &'a str,
    pub project_dir: &'a std::path::Path,
    pub olds: Option<&'a Value>,
}

fn type_matches(expected: &Value, v: &Value) -> bool {
    let one = |t: &str| match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    };
    match expected {
        Value::String(t) => one(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}

/// Names each key of the object input `prop` that is not one of `allowed` (a typo in a nested
/// table would otherwise be dropped silently); true when there was one.
pub fn unknown_nested_keys(
    inputs: &Map<String, Value>,
    prop: &str,
    allowed: &[&str],
    failures: &mut Vec<CheckFailure>,
) -> bool {
    let Some(obj) = inputs.get(prop).and_then(Value::as_object) else { return false };
    let mut found = false;
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        found = true;
        failures.push(CheckFailure {
            property: format!("{prop}.{k}"),
            reason: format!("`{prop}` has no key `{k}`; its keys are: {}", allowed.join(", ")),
        });
    }
    found
}

/// A generated physical name.
pub fn generate_name(logical: &str, rule: NameRule) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut base: String = if rule.lowercase {
        logical
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect()
    } else {
        logical.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '-' }).collect()
    };
    let room = rule.max_len.saturating_sub(8);
    base.truncate(room);
    let base = base.trim_matches('-');
    let mut n = random_u64();
    let suffix: String = (0..7)
        .map(|_| {
            let c = ALNUM[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect();
    if base.is_empty() { format!("r-{suffix}") } else { format!("{base}-{suffix}") }
}

/// A type's spec with the inputs every type of its kind shares: `tags` for the taggable ones.
pub fn full_spec<K: Kind>(kind: &K) -> Spec {
    let mut spec = kind.spec();
    if crate::tags::is_taggable(spec.token)
        && let Some(props) = spec.properties.as_object_mut()
    {
        props.insert("tags".into(), crate::tags::property());
    }
    spec
}

/// The generic `check`: unknown properties, types, required properties, defaults, the
/// generated name; then the type's own [`Kind::validate`].
pub fn check<K: Kind>(kind: &K, ctx: &CheckCtx<'_>, inputs: Value) -> (Value, Vec<CheckFailure>) {
    let spec = full_spec(kind);
    let mut failures = Vec::new();
    let Value::Object(mut map) = inputs else {
        failures
            .push(CheckFailure { property: String::new(), reason: "the inputs must be an object".into() });
        return (inputs, failures);
    };
    let props = spec.properties.as_object().cloned().unwrap_or_default();
    map.retain(|_, v| !v.is_null());
    for (k, v) in &map {
        match props.get(k) {
            None => failures.push(CheckFailure {
                property: k.clone(),
                reason: format!(
                    "{} has no input `{k}`; its inputs are: {}",
                    spec.token,
                    props.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
            Some(schema) if !has_unknown(v) && !type_matches(&schema["type"], v) => {
                failures.push(CheckFailure {
                    property: k.clone(),
                    reason: format!("`{k}` must be of type {}, got {v}", schema["type"]),
                })
            }
            _ => {}
        }
    }
    for (k, schema) in &props {
        if !map.contains_key(k)
            && let Some(d) = schema.get("default")
        {
            map.insert(k.clone(), d.clone());
        }
    }
    if let Some(rule) = spec.name
        && !map.contains_key(rule.prop)
    {
        let kept = ctx
            .olds
            .and_then(|o| o.get(rule.prop))
            .filter(|v| v.as_str().is_some_and(|s| s != skyform_protocol::UNKNOWN))
            .cloned();
        map.insert(
            rule.prop.to_string(),
            kept.unwrap_or_else(|| Value::String(generate_name(ctx.logical_name, rule))),
        );
    }
    for r in spec.required {
        if !map.contains_key(*r) {
            failures.push(CheckFailure { property: r.to_string(), reason: format!("`{r}` is required") });
        }
    }
    if let Some(problem) = map.get("tags").and_then(crate::tags::problem) {
        failures.push(CheckFailure { property: "tags".into(), reason: problem });
    }
    if failures.is_empty() {
        kind.validate(ctx, &mut map, &mut failures);
    }
    (Value::Object(map), failures)
}

/// The generic `diff`: changed properties, the ones that force a replacement, and
/// delete-before-replace when the replacement keeps the identity.
pub fn diff(spec: &Spec, olds: &Value, news: &Value) -> DiffResponse {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in spec.diff_ignore {
                m.remove(*k);
            }
        }
        v
    };
    let replace_on: Vec<String> = spec.replace_on_changes.iter().map(|s| s.to_string()).collect();
    let mut d = default_diff(&strip(olds), &strip(news), &replace_on);
    if !d.replaces.is_empty() && !spec.identity.is_empty() {
        d.delete_before_replace = spec
            .identity
            .iter()
            .all(|k| olds.get(*k) == news.get(*k) && !news.get(*k).is_some_and(has_unknown));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit_the_rule() {
        let n = generate_name("My_Bucket.x", NameRule { prop: "name", max_len: 63, lowercase: true });
        assert!(n.starts_with("my-bucket-x-"), "{n}");
        assert_eq!(n.len(), "my-bucket-x-".len() + 7);
        let long = "a".repeat(100);
        assert_eq!(generate_name(&long, NAME).len(), 64);
        assert_ne!(generate_name("x", NAME), generate_name("x", NAME));
    }
}
