//! Lambda (REST-JSON): `aws:lambda:Function`, `aws:lambda:Permission`,
//! `aws:lambda:EventSourceMapping` and `aws:lambda:FunctionUrl`.
//!
//! Lambda changes a function asynchronously: after a create or an update the function is
//! `Pending` / `InProgress` for a while, and the next change fails with
//! `ResourceConflictException` until it settles. [`wait_ready`] polls until the function is
//! `Active` and its last update `Successful` before every change and after it, so an `update`
//! that changes both code and configuration, or a dependant created right after, just works.
//!
//! A role created a moment ago may not yet be assumable by Lambda (IAM propagates slowly);
//! `CreateFunction` then fails with `InvalidParameterValueException` "…cannot be assumed…",
//! which [`Function::create`] retries until the wait timeout.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use skyform_protocol::{CheckFailure, ProviderError, UNKNOWN};

use crate::http::{Error, Result};
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NAME, Spec, retry_iam_propagation};
use crate::sigv4::uri_encode;
use crate::util::{Inputs, base64, canonical_json_string, set};

const FUNCTIONS: &str = "/2015-03-31/functions";

async fn lambda(ctx: &Ctx, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    ctx.aws.rest("lambda", method, path, body).await
}

fn fn_path(function: &str) -> String {
    format!("{FUNCTIONS}/{}", uri_encode(function))
}

/// The code folder (or file) of a function, resolved against the project folder.
fn code_path(project_dir: &Path, code: &str) -> std::path::PathBuf {
    let p = Path::new(code);
    if p.is_absolute() { p.to_path_buf() } else { project_dir.join(p) }
}

/// Lambda's `CodeSha256`: the base64 SHA-256 of the zip.
pub fn code_sha256(zip: &[u8]) -> String {
    base64(&Sha256::digest(zip))
}

/// Polls until the function can take the next change.
pub async fn wait_ready(ctx: &Ctx, function: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs);
    let mut pause = Duration::from_millis(250);
    loop {
        let c = lambda(ctx, Method::GET, &format!("{}/configuration", fn_path(function)), None).await?;
        let state = c["State"].as_str().unwrap_or("Active");
        let update = c["LastUpdateStatus"].as_str().unwrap_or("Successful");
        if state == "Failed" || update == "Failed" {
            let reason = c["LastUpdateStatusReason"]
                .as_str()
                .or(c["StateReason"].as_str())
                .unwrap_or("no reason given");
            return Err(Error::Api {
                status: 400,
                code: "FunctionFailed".into(),
                message: format!("function {function} is in state {state}/{update}: {reason}"),
            });
        }
        if state == "Active" && update == "Successful" {
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err(Error::Transport(format!(
                "function {function} stayed {state}/{update} for {} s; raise `wait_timeout_secs` under [providers.aws]",
                ctx.aws.settings.wait_timeout_secs
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

pub struct Function;

fn function_outputs(region: &str, c: &Value) -> Value {
    let arn = c["FunctionArn"].as_str().unwrap_or_default();
    json!({
        "arn": arn,
        "name": c["FunctionName"],
        "invoke_arn": format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"),
        "code_sha256": c["CodeSha256"],
        "version": c["Version"],
    })
}

/// The configuration fields shared by create and update.
fn configuration(inputs: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Role".into(), inputs["role"].clone());
    m.insert("Runtime".into(), inputs["runtime"].clone());
    if let Some(h) = inputs.str_of("handler") {
        m.insert("Handler".into(), json!(h));
    }
    m.insert("MemorySize".into(), inputs["memory_size"].clone());
    m.insert("Timeout".into(), inputs["timeout"].clone());
    m.insert("Description".into(), json!(inputs.str_of("description").unwrap_or("")));
    m.insert(
        "Environment".into(),
        json!({"Variables": inputs.obj_of("environment").cloned().unwrap_or_default()}),
    );
    m
}

fn zip_code(ctx: &Ctx, inputs: &Value) -> Result<Vec<u8>> {
    let code = inputs.str_of("code").unwrap_or_default();
    package(&code_path(&ctx.project_dir, code), inputs).map_err(|e| {
        Error::Provider(ProviderError::invalid_inputs(format!(
            "cannot package the code folder `{code}`: {e}"
        )))
    })
}

/// The function's zip: its folder, with its dependencies installed for Lambda
/// ([`crate::package`]) when it declares some.
fn package(path: &Path, inputs: &Value) -> std::result::Result<Vec<u8>, String> {
    if path.is_file() {
        return crate::zip::zip_path(path).map_err(|e| e.to_string());
    }
    let runtime = inputs.str_of("runtime").unwrap_or_default();
    let architecture = inputs.str_of("architecture").unwrap_or("x86_64");
    let handler = inputs.str_of("handler").unwrap_or_default();
    let layers = crate::package::layers(path, runtime, architecture, handler)?;
    let skips: Vec<Vec<&str>> = layers.iter().map(|(_, s)| s.iter().map(String::as_str).collect()).collect();
    let refs: Vec<(&Path, &[&str])> =
        layers.iter().zip(&skips).map(|((p, _), s)| (p.as_path(), s.as_slice())).collect();
    crate::zip::zip_layers(&refs).map_err(|e| e.to_string())
}

impl Kind for Function {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:lambda:Function",
            description: "A Lambda function, its code zipped deterministically from a folder. Id: the function name.",
            properties: json!({
                "name": {"type": "string", "description": "The function name (1-64 characters); generated when absent."},
                "role": {"type": "string", "description": "The ARN of the execution role."},
                "runtime": {"type": "string", "description": "The runtime: `python3.12`, `nodejs20.x`, `provided.al2023`, …"},
                "handler": {"type": "string", "description": "The handler (`app.handler`); not needed by `provided.*` runtimes."},
                "code": {"type": "string", "description": "The folder (or single file) to zip, relative to the project folder."},
                "code_sha256": {"type": "string", "description": "Computed by `check`: the base64 SHA-256 of the zip, as Lambda reports it."},
                "memory_size": {"type": "integer", "default": 128, "description": "Memory in MB (128-10240)."},
                "timeout": {"type": "integer", "default": 3, "description": "Timeout in seconds (1-900)."},
                "environment": {"type": "object", "description": "Environment variables (string values)."},
                "description": {"type": "string", "description": "A description."},
                "architecture": {"type": "string", "default": "x86_64", "description": "`x86_64` or `arm64` (Graviton; build Rust with `--target aarch64-unknown-linux-gnu`)."},
            }),
            required: &["role", "runtime", "code"],
            outputs: &["arn", "name", "invoke_arn", "code_sha256", "version"],
            replace_on_changes: &["name"],
            identity: &["name"],
            name: Some(NAME),
            // The folder's content is what matters, and `code_sha256` stands for it.
            diff_ignore: &["code"],
        }
    }

    fn validate(
        &self,
        ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        if let Some(env) = inputs.get("environment").and_then(Value::as_object) {
            for (k, v) in env {
                if !v.is_string() {
                    failures.push(CheckFailure {
                        property: "environment".into(),
                        reason: format!("environment variable `{k}` must be a string, got {v}"),
                    });
                }
            }
            if env.is_empty() {
                inputs.remove("environment");
            }
        }
        if let Some(a) = inputs.get("architecture").and_then(Value::as_str)
            && !["x86_64", "arm64", UNKNOWN].contains(&a)
        {
            failures.push(CheckFailure {
                property: "architecture".into(),
                reason: format!("`{a}` is not a Lambda architecture; use x86_64 or arm64"),
            });
        }
        if let Some(m) = inputs.get("memory_size").and_then(Value::as_i64)
            && !(128..=10240).contains(&m)
        {
            failures.push(CheckFailure {
                property: "memory_size".into(),
                reason: format!("{m} MB is outside 128-10240"),
            });
        }
        if let Some(t) = inputs.get("timeout").and_then(Value::as_i64)
            && !(1..=900).contains(&t)
        {
            failures
                .push(CheckFailure { property: "timeout".into(), reason: format!("{t} s is outside 1-900") });
        }
        match inputs.get("code").and_then(Value::as_str) {
            Some(UNKNOWN) | None => {}
            Some(code) => {
                let path = code_path(ctx.project_dir, code);
                match package(&path, &Value::Object(inputs.clone())) {
                    Ok(zip) => {
                        inputs.insert("code_sha256".into(), json!(code_sha256(&zip)));
                    }
                    Err(e) => failures.push(CheckFailure {
                        property: "code".into(),
                        reason: format!("cannot read the code folder {}: {e}", path.display()),
                    }),
                }
            }
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default().to_string();
        let zip = zip_code(ctx, inputs)?;
        let mut body = configuration(inputs);
        body.insert("FunctionName".into(), json!(name));
        body.insert("Code".into(), json!({"ZipFile": base64(&zip)}));
        body.insert("Architectures".into(), json!([inputs["architecture"]]));
        body.insert("Publish".into(), json!(false));
        let body = Value::Object(body);
        let what = format!("creating function {name}");
        retry_iam_propagation(ctx, &what, || lambda(ctx, Method::POST, FUNCTIONS, Some(body.clone())))
            .await?;
        match wait_ready(ctx, &name).await {
            Ok(c) => Ok(Created { id: name, outputs: function_outputs(ctx.aws.region(), &c) }),
            Err(e) => {
                let _ = lambda(ctx, Method::DELETE, &fn_path(&name), None).await;
                Err(e)
            }
        }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let c = lambda(ctx, Method::GET, &format!("{}/configuration", fn_path(id)), None).await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", c["FunctionName"].clone());
        set(&mut inputs, "role", c["Role"].clone());
        set(&mut inputs, "runtime", c["Runtime"].clone());
        set(&mut inputs, "handler", c["Handler"].clone());
        set(&mut inputs, "memory_size", c["MemorySize"].clone());
        set(&mut inputs, "timeout", c["Timeout"].clone());
        set(&mut inputs, "code_sha256", c["CodeSha256"].clone());
        set(&mut inputs, "architecture", json!(c["Architectures"][0].as_str().unwrap_or("x86_64")));
        set(&mut inputs, "description", json!(c["Description"].as_str().filter(|d| !d.is_empty())));
        let env = c["Environment"]["Variables"].as_object().filter(|m| !m.is_empty()).cloned();
        set(&mut inputs, "environment", env.map(Value::Object).unwrap_or(Value::Null));
        Ok(Some(Found { inputs, outputs: function_outputs(ctx.aws.region(), &c) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        wait_ready(ctx, id).await?;
        // The architecture changes with the code (UpdateFunctionCode), since the code is built for it.
        if olds.get("code_sha256") != news.get("code_sha256")
            || olds.get("architecture") != news.get("architecture")
        {
            let zip = zip_code(ctx, news)?;
            let body =
                json!({"ZipFile": base64(&zip), "Publish": false, "Architectures": [news["architecture"]]});
            lambda(ctx, Method::PUT, &format!("{}/code", fn_path(id)), Some(body)).await?;
            wait_ready(ctx, id).await?;
        }
        if configuration(olds) != configuration(news) {
            let body = Value::Object(configuration(news));
            lambda(ctx, Method::PUT, &format!("{}/configuration", fn_path(id)), Some(body)).await?;
        }
        let c = wait_ready(ctx, id).await?;
        Ok(function_outputs(ctx.aws.region(), &c))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        lambda(ctx, Method::DELETE, &fn_path(id), None).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// A statement in a function's resource policy, letting a service invoke it.
pub struct Permission;

fn split2(id: &str, what: &str) -> Result<(String, String)> {
    id.rsplit_once('/')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| Error::Provider(ProviderError::invalid_inputs(format!("`{id}` is not a {what} id"))))
}

async fn policy_statement(ctx: &Ctx, function: &str, sid: &str) -> Result<Option<Value>> {
    let v = lambda(ctx, Method::GET, &format!("{}/policy", fn_path(function)), None).await?;
    let policy: Value =
        v["Policy"].as_str().and_then(|p| serde_json::from_str(p).ok()).unwrap_or(Value::Null);
    Ok(policy["Statement"].as_array().and_then(|s| s.iter().find(|st| st["Sid"] == sid)).cloned())
}

impl Kind for Permission {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:lambda:Permission",
            description: "Lets a service (API Gateway, S3, SNS, EventBridge) invoke a function. Every input forces a \
                          replacement. Id: `FUNCTION/STATEMENT_ID`.",
            properties: json!({
                "function": {"type": "string", "description": "The function's name or ARN."},
                "statement_id": {"type": "string", "description": "The statement id; generated when absent."},
                "action": {"type": "string", "default": "lambda:InvokeFunction", "description": "The action allowed."},
                "principal": {"type": "string", "description": "Who may invoke: `apigateway.amazonaws.com`, an account id, `*`…"},
                "source_arn": {"type": "string", "description": "Only on behalf of this ARN (an API's execution ARN pattern, a bucket)."},
                "source_account": {"type": "string", "description": "Only on behalf of this account."},
                "function_url_auth_type": {"type": "string", "description": "For `lambda:InvokeFunctionUrl`: `NONE` or `AWS_IAM`."},
            }),
            required: &["function", "principal"],
            outputs: &["statement_id", "statement"],
            replace_on_changes: &[
                "function",
                "statement_id",
                "action",
                "principal",
                "source_arn",
                "source_account",
                "function_url_auth_type",
            ],
            identity: &["function", "statement_id"],
            name: Some(crate::resource::NameRule { prop: "statement_id", max_len: 100, lowercase: false }),
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let function = inputs.str_of("function").unwrap_or_default();
        let sid = inputs.str_of("statement_id").unwrap_or_default();
        let mut body =
            json!({"StatementId": sid, "Action": inputs["action"], "Principal": inputs["principal"]});
        set(&mut body, "SourceArn", inputs["source_arn"].clone());
        set(&mut body, "SourceAccount", inputs["source_account"].clone());
        set(&mut body, "FunctionUrlAuthType", inputs["function_url_auth_type"].clone());
        let v = lambda(ctx, Method::POST, &format!("{}/policy", fn_path(function)), Some(body)).await?;
        Ok(Created {
            id: format!("{function}/{sid}"),
            outputs: json!({"statement_id": sid, "statement": canonical_json_string(&v["Statement"])}),
        })
    }

    fn find(&self, _ctx: &Ctx, inputs: &Value) -> impl Future<Output = Result<Option<String>>> + Send {
        let id = match (inputs.str_of("function"), inputs.str_of("statement_id")) {
            (Some(f), Some(s)) => Some(format!("{f}/{s}")),
            _ => None,
        };
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (function, sid) = split2(id, "permission")?;
        let Some(st) = policy_statement(ctx, &function, &sid).await? else { return Ok(None) };
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({"function": function}) };
        set(&mut inputs, "statement_id", json!(sid));
        set(&mut inputs, "action", st["Action"].clone());
        let principal = match &st["Principal"] {
            Value::Object(m) => m.get("Service").or(m.get("AWS")).cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        // An account principal comes back as `arn:aws:iam::ACCOUNT:root`.
        let principal = match principal.as_str().and_then(|p| p.strip_prefix("arn:aws:iam::")) {
            Some(rest)
                if rest.ends_with(":root")
                    && !stored.str_of("principal").unwrap_or("").starts_with("arn:") =>
            {
                json!(rest.trim_end_matches(":root"))
            }
            _ => principal,
        };
        set(&mut inputs, "principal", principal);
        let cond = &st["Condition"];
        set(&mut inputs, "source_arn", cond["ArnLike"]["AWS:SourceArn"].clone());
        set(&mut inputs, "source_account", cond["StringEquals"]["AWS:SourceAccount"].clone());
        let mut auth_type = cond["StringEquals"]["lambda:FunctionUrlAuthType"].clone();
        if auth_type.is_null() && st["Action"] == "lambda:InvokeFunctionUrl" {
            // AWS answers the condition; moto keeps the parameter as it came, beside the
            // statement's fields. Failing both, what was written stands, and for an import the
            // function URL's own auth type.
            auth_type = match stored.get("function_url_auth_type") {
                _ if st["FunctionUrlAuthType"].is_string() => st["FunctionUrlAuthType"].clone(),
                Some(v) if v.is_string() => v.clone(),
                _ => match lambda(ctx, Method::GET, &url_path(&function), None).await {
                    Ok(url) => url["AuthType"].clone(),
                    Err(e) if e.is_not_found() => Value::Null,
                    Err(e) => return Err(e),
                },
            };
        }
        set(&mut inputs, "function_url_auth_type", auth_type);
        Ok(Some(Found {
            inputs,
            outputs: json!({"statement_id": sid, "statement": canonical_json_string(&st)}),
        }))
    }

    async fn update(&self, _ctx: &Ctx, id: &str, _olds: &Value, _news: &Value) -> Result<Value> {
        Err(Error::Provider(ProviderError::failed(format!(
            "permission {id} cannot change in place: every input forces a replacement (an engine bug if you see this)"
        ))))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (function, sid) = split2(id, "permission")?;
        lambda(ctx, Method::DELETE, &format!("{}/policy/{}", fn_path(&function), uri_encode(&sid)), None)
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// Polls a queue (or stream) and invokes a function with batches of its messages.
pub struct EventSourceMapping;

const MAPPINGS: &str = "/2015-03-31/event-source-mappings";

fn mapping_outputs(m: &Value) -> Value {
    json!({"uuid": m["UUID"], "function_arn": m["FunctionArn"], "state": m["State"]})
}

/// `FunctionResponseTypes` as the API takes it: an empty list turns partial batch responses off.
fn response_types(inputs: &Value) -> Value {
    match inputs.get("function_response_types") {
        Some(v @ Value::Array(_)) => v.clone(),
        _ => json!([]),
    }
}

/// `ScalingConfig`: `{}` (no limit) without `maximum_concurrency`.
fn scaling_config(inputs: &Value) -> Value {
    match inputs.i64_of("maximum_concurrency") {
        Some(n) => json!({"MaximumConcurrency": n}),
        None => json!({}),
    }
}

impl Kind for EventSourceMapping {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:lambda:EventSourceMapping",
            description: "Feeds a function batches from an SQS queue (or a stream). Id: the mapping's UUID.",
            properties: json!({
                "function": {"type": "string", "description": "The function's name or ARN."},
                "event_source_arn": {"type": "string", "description": "The queue's (or stream's) ARN."},
                "batch_size": {"type": "integer", "default": 10, "description": "Records per invocation."},
                "maximum_batching_window_in_seconds": {"type": "integer", "default": 0, "description": "How long to gather a batch."},
                "function_response_types": {"type": "array", "items": {"type": "string"}, "description": "`[\"ReportBatchItemFailures\"]`: the function may return `batchItemFailures`, and only those messages are retried."},
                "maximum_concurrency": {"type": "integer", "description": "SQS only: at most this many concurrent invocations (2-1000; `ScalingConfig`)."},
                "enabled": {"type": "boolean", "default": true, "description": "Whether it polls."},
                "starting_position": {"type": "string", "description": "For a stream: `LATEST` or `TRIM_HORIZON` (required by Lambda for streams)."},
            }),
            required: &["function", "event_source_arn"],
            outputs: &["uuid", "function_arn", "state"],
            replace_on_changes: &["event_source_arn", "starting_position"],
            identity: &["function", "event_source_arn"],
            name: None,
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let mut body = json!({
            "FunctionName": inputs["function"],
            "EventSourceArn": inputs["event_source_arn"],
            "BatchSize": inputs["batch_size"],
            "MaximumBatchingWindowInSeconds": inputs["maximum_batching_window_in_seconds"],
            "Enabled": inputs["enabled"],
            "FunctionResponseTypes": response_types(inputs),
        });
        if inputs.has("maximum_concurrency") {
            body["ScalingConfig"] = scaling_config(inputs);
        }
        if inputs.has("starting_position") {
            body["StartingPosition"] = inputs["starting_position"].clone();
        }
        let path = format!("{MAPPINGS}/");
        let m = retry_iam_propagation(ctx, "creating an event source mapping", || {
            lambda(ctx, Method::POST, &path, Some(body.clone()))
        })
        .await?;
        Ok(Created { id: m["UUID"].as_str().unwrap_or_default().to_string(), outputs: mapping_outputs(&m) })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let (Some(f), Some(src)) = (inputs.str_of("function"), inputs.str_of("event_source_arn")) else {
            return Ok(None);
        };
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("FunctionName", f), ("EventSourceArn", src)];
            if let Some(m) = &marker {
                query.push(("Marker", m.as_str()));
            }
            let v = ctx.aws.rest_query("lambda", Method::GET, &format!("{MAPPINGS}/"), &query, None).await?;
            if let Some(id) =
                v["EventSourceMappings"].as_array().and_then(|a| a.first()).and_then(|m| m["UUID"].as_str())
            {
                return Ok(Some(id.to_string()));
            }
            match v["NextMarker"].as_str() {
                Some(m) if !m.is_empty() && marker.as_deref() != Some(m) => marker = Some(m.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let m = lambda(ctx, Method::GET, &format!("{MAPPINGS}/{}", uri_encode(id)), None).await?;
        let mut inputs =
            if stored.is_object() { stored.clone() } else { json!({"function": m["FunctionArn"]}) };
        set(&mut inputs, "event_source_arn", m["EventSourceArn"].clone());
        set(&mut inputs, "starting_position", m["StartingPosition"].clone());
        set(&mut inputs, "batch_size", m["BatchSize"].clone());
        set(
            &mut inputs,
            "maximum_batching_window_in_seconds",
            json!(m["MaximumBatchingWindowInSeconds"].as_i64().unwrap_or(0)),
        );
        let types = m["FunctionResponseTypes"].as_array().filter(|a| !a.is_empty());
        set(&mut inputs, "function_response_types", types.map(|a| json!(a)).unwrap_or(Value::Null));
        set(&mut inputs, "maximum_concurrency", m["ScalingConfig"]["MaximumConcurrency"].clone());
        let state = m["State"].as_str().unwrap_or("Enabled");
        set(&mut inputs, "enabled", json!(!matches!(state, "Disabled" | "Disabling")));
        Ok(Some(Found { inputs, outputs: mapping_outputs(&m) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let body = json!({
            "FunctionName": news["function"],
            "BatchSize": news["batch_size"],
            "MaximumBatchingWindowInSeconds": news["maximum_batching_window_in_seconds"],
            "Enabled": news["enabled"],
            "FunctionResponseTypes": response_types(news),
            "ScalingConfig": scaling_config(news),
        });
        let m = lambda(ctx, Method::PUT, &format!("{MAPPINGS}/{}", uri_encode(id)), Some(body)).await?;
        Ok(mapping_outputs(&m))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        // A mapping that is still `Creating` or `Updating` refuses deletion for a moment.
        let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs.min(120));
        loop {
            match lambda(ctx, Method::DELETE, &format!("{MAPPINGS}/{}", uri_encode(id)), None).await {
                Err(Error::Api { code, .. })
                    if code == "ResourceInUseException" && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(2)).await
                }
                other => return other.map(|_| ()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A function's own HTTPS endpoint.
pub struct FunctionUrl;

fn url_path(function: &str) -> String {
    format!("/2021-10-31/functions/{}/url", uri_encode(function))
}

fn url_outputs(u: &Value) -> Value {
    json!({"url": u["FunctionUrl"], "function_arn": u["FunctionArn"]})
}

impl Kind for FunctionUrl {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:lambda:FunctionUrl",
            description: "A function URL. With `auth_type = NONE`, add an `aws:lambda:Permission` with action \
                          `lambda:InvokeFunctionUrl`, principal `*` and `function_url_auth_type = NONE`. Id: the function.",
            properties: json!({
                "function": {"type": "string", "description": "The function's name."},
                "auth_type": {"type": "string", "default": "NONE", "description": "`NONE` or `AWS_IAM`."},
                "invoke_mode": {"type": "string", "default": "BUFFERED", "description": "`BUFFERED` or `RESPONSE_STREAM`."},
            }),
            required: &["function"],
            outputs: &["url", "function_arn"],
            replace_on_changes: &["function"],
            identity: &["function"],
            name: None,
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let function = inputs.str_of("function").unwrap_or_default();
        let body = json!({"AuthType": inputs["auth_type"], "InvokeMode": inputs["invoke_mode"]});
        let u = lambda(ctx, Method::POST, &url_path(function), Some(body)).await?;
        Ok(Created { id: function.to_string(), outputs: url_outputs(&u) })
    }

    fn find(&self, _ctx: &Ctx, inputs: &Value) -> impl Future<Output = Result<Option<String>>> + Send {
        let id = inputs.str_of("function").map(String::from);
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let u = lambda(ctx, Method::GET, &url_path(id), None).await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "function", json!(id));
        set(&mut inputs, "auth_type", u["AuthType"].clone());
        set(&mut inputs, "invoke_mode", json!(u["InvokeMode"].as_str().unwrap_or("BUFFERED")));
        Ok(Some(Found { inputs, outputs: url_outputs(&u) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let body = json!({"AuthType": news["auth_type"], "InvokeMode": news["invoke_mode"]});
        let u = lambda(ctx, Method::PUT, &url_path(id), Some(body)).await?;
        Ok(url_outputs(&u))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        lambda(ctx, Method::DELETE, &url_path(id), None).await?;
        Ok(())
    }
}
