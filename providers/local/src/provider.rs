//! The `local` provider: serves `local:Function` and `local:HttpApi` by calling the daemon's
//! control API, the way a cloud provider calls a cloud's API.
//!
//! `check` validates and fills defaults, and puts the code's content hash in the checked
//! inputs as `code_hash`, so unchanged code is no diff. `create`/`update` copy the code into
//! the artifact store (content-addressed, shared with the daemon through the project's
//! `.skyform/local/`) and deploy the spec; `read` answers what the daemon really runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use skyform_protocol::*;
use tokio::sync::Mutex;

use crate::artifact;
use crate::client::{self, Client, api_path, function_path};
use crate::layout::Layout;
use crate::registry::{ApiSpec, FunctionSpec, RouteSpec};
use crate::runtime;

pub const FUNCTION: &str = "local:Function";
pub const HTTP_API: &str = "local:HttpApi";
pub use schedules::{SCHEDULE, schedule_path};

mod buckets;
mod queues;
mod schedules;
mod tables;
mod topics;
pub use buckets::{BUCKET, BUCKET_NOTIFICATION};
pub use queues::{QUEUE, QUEUE_SUBSCRIPTION};
pub use tables::{TABLE, TABLE_SUBSCRIPTION};
pub use topics::{TOPIC, TOPIC_SUBSCRIPTION};

#[derive(Clone)]
struct Config {
    project_dir: PathBuf,
    stack: String,
}

#[derive(Default)]
pub struct LocalProvider {
    config: std::sync::Mutex<Option<Config>>,
    client: Mutex<Option<Client>>,
}

type Res<T> = std::result::Result<T, ProviderError>;

fn is_unknown(v: &Value) -> bool {
    v.as_str() == Some(UNKNOWN)
}

impl LocalProvider {
    fn config(&self) -> Res<Config> {
        self.config.lock().unwrap().clone().ok_or_else(|| {
            ProviderError::configuration("the local provider was not configured (no `configure` call)")
        })
    }

    async fn client(&self, fresh: bool) -> Res<Client> {
        let cfg = self.config()?;
        let mut guard = self.client.lock().await;
        if !fresh && let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = client::ensure_daemon(&cfg.project_dir, None)
            .await
            .map_err(|e| ProviderError::failed(e.message))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// One control API call; when the daemon is gone (killed, stopped), starts it again and
    /// retries once.
    async fn call(&self, method: &str, path: &str, body: &[u8]) -> Res<client::Answer> {
        let c = self.client(false).await?;
        match c.request(method, path, body).await {
            Ok(a) => Ok(a),
            Err(_) => {
                let c = self.client(true).await?;
                c.request(method, path, body).await.map_err(|e| ProviderError::failed(e.message))
            }
        }
    }

    /// Deploys a resource on the daemon (`PUT` of its spec); answers the daemon's view of it.
    /// `what` names it in the error (`topic \`jobs\``).
    async fn control_put(&self, path: &str, body: &[u8], what: &str) -> Res<Value> {
        let a = self.call("PUT", path, body).await?;
        if a.status != 200 {
            return Err(ProviderError::failed(format!("cannot deploy {what}: {}", a.message())));
        }
        Ok(a.json())
    }

    /// The daemon's view of a resource, `None` when it has none.
    async fn control_get(&self, path: &str) -> Res<Option<Value>> {
        let a = self.call("GET", path, &[]).await?;
        match a.status {
            404 => Ok(None),
            200 => Ok(Some(a.json())),
            _ => Err(ProviderError::failed(a.message())),
        }
    }

    /// Deletes a resource on the daemon; one already gone is deleted.
    async fn control_delete(&self, path: &str, body: &[u8], name: &str) -> Res<DeleteResponse> {
        let a = self.call("DELETE", path, body).await?;
        if a.status != 200 && a.status != 404 {
            return Err(ProviderError::failed(format!("cannot delete `{name}`: {}", a.message())));
        }
        Ok(DeleteResponse {})
    }

    fn check_function(cfg: &Config, inputs: &Value) -> (Value, Vec<CheckFailure>) {
        let mut failures = Vec::new();
        let mut fail = |property: &str, reason: String| {
            failures.push(CheckFailure { property: property.into(), reason })
        };
        let obj = inputs.as_object().cloned().unwrap_or_default();
        let code = obj.get("code").cloned().unwrap_or(Value::Null);
        let build = obj.get("build").cloned().unwrap_or(Value::Null);
        let runtime_v = obj.get("runtime").cloned().unwrap_or(Value::Null);
        let runtime = match &runtime_v {
            v if is_unknown(v) => None,
            Value::String(s) => match runtime::normalize(s) {
                Some(r) => Some(r),
                None => {
                    fail(
                        "runtime",
                        format!("unknown runtime `{s}`; valid runtimes: {}", runtime::VALID_RUNTIMES),
                    );
                    None
                }
            },
            Value::Null => {
                if build.is_object() {
                    Some("provided")
                } else {
                    fail(
                        "runtime",
                        format!("a runtime is required; valid runtimes: {}", runtime::VALID_RUNTIMES),
                    );
                    None
                }
            }
            other => {
                fail("runtime", format!("expected a string, got {other}"));
                None
            }
        };
        let handler = obj.get("handler").cloned().unwrap_or(Value::Null);
        match (&handler, runtime) {
            (v, _) if is_unknown(v) => {}
            (Value::String(h), Some("python3" | "nodejs")) => {
                if h.rsplit_once('.').is_none_or(|(m, f)| m.is_empty() || f.is_empty()) {
                    fail("handler", format!("handler `{h}` must be `module.function` (e.g. `app.handler`)"));
                }
            }
            (Value::Null, Some("python3" | "nodejs")) => {
                fail("handler", "a handler is required (e.g. `app.handler`)".into())
            }
            (Value::String(_) | Value::Null, _) => {}
            (other, _) => fail("handler", format!("expected a string, got {other}")),
        }
        let mut environment = Map::new();
        match obj.get("environment") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => continue,
                        other => other.to_string(),
                    };
                    environment.insert(k.clone(), Value::String(s));
                }
            }
            Some(other) => fail("environment", format!("expected an object of strings, got {other}")),
        }
        let number =
            |key: &str, default: f64, min: f64, max: f64, fail: &mut dyn FnMut(&str, String)| -> Value {
                match obj.get(key) {
                    None | Some(Value::Null) => json!(default),
                    Some(v) if is_unknown(v) => v.clone(),
                    Some(Value::Number(n)) => {
                        let x = n.as_f64().unwrap_or(0.0);
                        if x < min || x > max {
                            fail(key, format!("{key} must be between {min} and {max}, got {x}"));
                        }
                        Value::Number(n.clone())
                    }
                    Some(other) => {
                        fail(key, format!("expected a number, got {other}"));
                        other.clone()
                    }
                }
            };
        let memory = number("memory", 128.0, 128.0, 10240.0, &mut fail);
        let timeout = number("timeout", 3.0, 0.001, 900.0, &mut fail);
        let reserved = match obj.get("reserved_concurrency") {
            None | Some(Value::Null) => Value::Null,
            Some(_) => number("reserved_concurrency", 0.0, 1.0, 1000.0, &mut fail),
        };

        // The code: a folder, or a cargo package (hashed here, built by `create`/`update`, so
        // that `preview` compiles nothing).
        let mut code_hash = Value::Null;
        if is_unknown(&code) || is_unknown(&build) {
            code_hash = Value::String(UNKNOWN.into());
        } else if let Some(pkg) = build.get("cargo_package") {
            match pkg.as_str() {
                Some(p) if !p.is_empty() => {
                    let manifest = package_manifest(&cfg.project_dir, code.as_str(), p);
                    match artifact::hash_cargo_sources(&cfg.project_dir, manifest.as_deref()) {
                        Ok(h) => code_hash = Value::String(h),
                        Err(e) => fail("build", format!("cannot read the sources of `{p}`: {e}")),
                    }
                }
                _ => fail("build", "`build.cargo_package` must name a cargo package".into()),
            }
        } else if !build.is_null() {
            fail("build", format!("expected null or {{\"cargo_package\": \"NAME\"}}, got {build}"));
        } else {
            match &code {
                Value::String(c) => {
                    let dir = cfg.project_dir.join(c);
                    if !dir.is_dir() {
                        fail(
                            "code",
                            format!(
                                "code folder `{c}` does not exist (looked for {}); create it or fix the path",
                                dir.display()
                            ),
                        );
                    } else {
                        let env = string_map(&Value::Object(environment.clone()));
                        match code_source_hash(&dir, runtime_v.as_str().unwrap_or_default(), &env) {
                            Ok(h) => code_hash = Value::String(h),
                            Err(e) => fail("code", format!("cannot read code folder `{c}`: {e}")),
                        }
                    }
                }
                Value::Null => {
                    fail("code", "a function needs `code` (a folder) or `build.cargo_package`".into())
                }
                other => fail("code", format!("expected a folder path, got {other}")),
            }
        }
        let checked = json!({
            "code": code,
            "build": build,
            "handler": handler,
            "runtime": runtime_v,
            "environment": environment,
            "memory": memory,
            "timeout": timeout,
            "reserved_concurrency": reserved,
            "code_hash": code_hash,
        });
        (checked, failures)
    }

    /// Copies (or builds) the code into the artifact store and returns the spec to deploy.
    async fn function_spec(&self, cfg: &Config, name: &str, inputs: &Value) -> Res<FunctionSpec> {
        let runtime = inputs["runtime"]
            .as_str()
            .and_then(runtime::normalize)
            .or(if inputs["build"].is_object() { Some("provided") } else { None })
            .ok_or_else(|| {
                ProviderError::invalid_inputs(format!("bad runtime; valid: {}", runtime::VALID_RUNTIMES))
            })?;
        let project_dir = cfg.project_dir.clone();
        let code = inputs["code"].as_str().map(str::to_string);
        let package = inputs["build"]["cargo_package"].as_str().map(str::to_string);
        let environment = string_map(&inputs["environment"]);
        let runtime_name = inputs["runtime"].as_str().unwrap_or(runtime).to_string();
        let handler = inputs["handler"].as_str().unwrap_or("bootstrap").to_string();
        let name = name.to_string();
        let env = environment.clone();
        let built = tokio::task::spawn_blocking(move || -> Result<Built, String> {
            let artifacts = Layout::new(&project_dir).artifacts();
            if let Some(pkg) = package {
                let manifest = package_manifest(&project_dir, code.as_deref(), &pkg);
                let source_hash = artifact::hash_cargo_sources(&project_dir, manifest.as_deref())
                    .map_err(|e| format!("cannot read the sources of `{pkg}`: {e}"))?;
                let exe = artifact::cargo_build(&project_dir, &pkg, manifest.as_deref(), &name)?;
                let code_hash = artifact::store_bootstrap(&artifacts, &exe)
                    .map_err(|e| format!("cannot store the binary: {e}"))?;
                Ok(Built { code_hash, source_hash, ..Built::default() })
            } else if let Some(c) = code {
                let dir = project_dir.join(&c);
                if !dir.is_dir() {
                    return Err(format!("code folder `{c}` does not exist (looked for {})", dir.display()));
                }
                let source_hash = code_source_hash(&dir, &runtime_name, &env)
                    .map_err(|e| format!("cannot read code folder `{c}`: {e}"))?;
                let mut built = build_code(&artifacts, &dir, runtime, &runtime_name, &handler, &env, &name)
                    .map_err(|e| format!("function `{name}`: {e}"))?;
                built.source_hash = source_hash;
                built.source = Some(dir.to_string_lossy().into_owned());
                Ok(built)
            } else {
                Err("a function needs `code` or `build.cargo_package`".into())
            }
        })
        .await
        .map_err(|e| ProviderError::failed(e.to_string()))?
        .map_err(ProviderError::failed)?;
        Ok(FunctionSpec {
            code_hash: built.code_hash,
            handler: inputs["handler"].as_str().unwrap_or("bootstrap").to_string(),
            runtime: runtime.to_string(),
            environment,
            memory: inputs["memory"].as_u64().unwrap_or(128),
            timeout: inputs["timeout"].as_f64().unwrap_or(3.0),
            reserved_concurrency: inputs["reserved_concurrency"].as_u64().map(|n| n as u32),
            interpreter: built.interpreter,
            runtime_dir: built.runtime_dir,
            source: built.source,
            source_hash: Some(built.source_hash),
        })
    }

    async fn put_function(&self, name: &str, inputs: &Value) -> Res<Value> {
        let cfg = self.config()?;
        let spec = self.function_spec(&cfg, name, inputs).await?;
        let body = serde_json::to_vec(&spec).map_err(|e| ProviderError::failed(e.to_string()))?;
        self.control_put(&function_path(&cfg.stack, name), &body, &format!("function `{name}`")).await?;
        Ok(function_outputs(name, &spec.code_hash))
    }

    async fn put_api(&self, name: &str, inputs: &Value) -> Res<Value> {
        let cfg = self.config()?;
        let spec = api_spec(inputs).map_err(ProviderError::invalid_inputs)?;
        let body = serde_json::to_vec(&spec).map_err(|e| ProviderError::failed(e.to_string()))?;
        let view =
            self.control_put(&api_path(&cfg.stack, name), &body, &format!("HTTP API `{name}`")).await?;
        Ok(api_outputs(&view))
    }
}

/// What [`LocalProvider::function_spec`] made of a function's code.
#[derive(Default)]
struct Built {
    code_hash: String,
    source_hash: String,
    interpreter: Option<String>,
    runtime_dir: Option<String>,
    source: Option<String>,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// What `check` records for a code folder: its content hash, and when it declares
/// dependencies, the interpreter version they are installed for (a different Python installs
/// different wheels).
fn code_source_hash(
    dir: &Path,
    runtime_name: &str,
    env: &BTreeMap<String, String>,
) -> std::io::Result<String> {
    let files = artifact::hash_dir(dir)?;
    let version = match runtime::normalize(runtime_name) {
        Some("python3") if dir.join("requirements.txt").is_file() || dir.join("pyproject.toml").is_file() => {
            crate::deps::python_for(runtime_name, env).map(|i| i.version).unwrap_or_default()
        }
        Some("nodejs") if dir.join("package.json").is_file() || has_ts(dir) => {
            crate::deps::node_for(runtime_name, env).map(|i| i.version).unwrap_or_default()
        }
        _ => return Ok(files),
    };
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, files.as_bytes());
    sha2::Digest::update(&mut h, b"\0");
    sha2::Digest::update(&mut h, version.as_bytes());
    Ok(artifact::hex(&sha2::Digest::finalize(h)))
}

fn has_ts(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".ts")))
        .unwrap_or(false)
}

/// Makes the artifact of an interpreted function: its dependencies installed, a TypeScript
/// handler bundled, the code on top; and picks the interpreter ([`crate::deps`]).
fn build_code(
    artifacts: &Path,
    dir: &Path,
    runtime: &str,
    runtime_name: &str,
    handler: &str,
    env: &BTreeMap<String, String>,
    name: &str,
) -> Result<Built, String> {
    let store_err = |e: std::io::Error| format!("cannot copy the code into the artifact store: {e}");
    match runtime {
        "python3" => {
            let python = crate::deps::python_for(runtime_name, env)?;
            let deps = crate::deps::python_deps(dir, &python, name)?;
            let runtime_dir = if crate::deps::imports_boto3(dir) {
                Some(crate::deps::python_runtime_packages(&python)?.to_string_lossy().into_owned())
            } else {
                None
            };
            let mut layers: Vec<(&Path, &[&str])> = Vec::new();
            if let Some(d) = &deps {
                layers.push((d, &[]));
            }
            layers.push((dir, &[]));
            let code_hash = artifact::store_layers(artifacts, &layers).map_err(store_err)?;
            Ok(Built { code_hash, interpreter: Some(python.program), runtime_dir, ..Built::default() })
        }
        "nodejs" => {
            let node = crate::deps::node_for(runtime_name, env)?;
            let deps = crate::deps::node_deps(dir, name)?;
            let module = handler.rsplit_once('.').map(|(m, _)| m).unwrap_or(handler);
            let ts = dir.join(format!("{module}.ts"));
            let bundle = if ts.is_file() && !dir.join(format!("{module}.js")).is_file() {
                let out = artifacts.join(format!(".bundle-{}-{name}", std::process::id()));
                let _ = std::fs::remove_dir_all(&out);
                std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
                if let Err(e) =
                    crate::deps::bundle_typescript(dir, module, &node, deps.as_deref(), &out, name)
                {
                    let _ = std::fs::remove_dir_all(&out);
                    return Err(e);
                }
                Some(out)
            } else {
                None
            };
            let mut layers: Vec<(&Path, &[&str])> = Vec::new();
            if let Some(d) = &deps {
                layers.push((d, &[]));
            }
            let skip: &[&str] = if deps.is_some() { &["node_modules"] } else { &[] };
            layers.push((dir, skip));
            if let Some(b) = &bundle {
                layers.push((b, &[]));
            }
            let stored = artifact::store_layers(artifacts, &layers).map_err(store_err);
            if let Some(b) = &bundle {
                let _ = std::fs::remove_dir_all(b);
            }
            Ok(Built { code_hash: stored?, interpreter: Some(node.program), ..Built::default() })
        }
        _ => {
            let code_hash = artifact::store_dir(artifacts, dir).map_err(store_err)?;
            Ok(Built { code_hash, ..Built::default() })
        }
    }
}

/// The manifest to build `package` from: `code/Cargo.toml` when `code` is given, else the
/// package's manifest found under the project (else none: cargo runs in the project folder).
fn package_manifest(project_dir: &Path, code: Option<&str>, package: &str) -> Option<PathBuf> {
    match code {
        Some(c) => Some(project_dir.join(c).join("Cargo.toml")),
        None => artifact::find_package_manifest(project_dir, package),
    }
}

fn function_outputs(name: &str, code_hash: &str) -> Value {
    json!({"function_name": name, "arn": crate::daemon::arn(name), "code_hash": code_hash})
}

fn api_outputs(view: &Value) -> Value {
    json!({"url": view["url"], "port": view["port"], "api_id": view["api_id"]})
}

fn api_spec(inputs: &Value) -> Result<ApiSpec, String> {
    let routes = inputs["routes"].as_array().ok_or("`routes` must be a list of {route, function}")?;
    let mut out = Vec::new();
    for r in routes {
        let route = r["route"].as_str().ok_or("every route needs a `route` string")?;
        let function = r["function"].as_str().ok_or("every route needs a `function` name")?;
        out.push(RouteSpec { route: route.into(), function: function.into() });
    }
    Ok(ApiSpec { routes: out })
}

fn check_api(inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let mut failures = Vec::new();
    let mut routes_out = Vec::new();
    match inputs.get("routes") {
        Some(Value::Array(routes)) => {
            let mut seen = std::collections::HashSet::new();
            for (i, r) in routes.iter().enumerate() {
                let prop = format!("routes[{i}]");
                let route = r.get("route").cloned().unwrap_or(Value::Null);
                let function = r.get("function").cloned().unwrap_or(Value::Null);
                match &route {
                    v if is_unknown(v) => {}
                    Value::String(k) => {
                        if let Err(e) = crate::gateway::parse_route(k, "") {
                            failures.push(CheckFailure { property: format!("{prop}.route"), reason: e });
                        } else if !seen.insert(k.clone()) {
                            failures.push(CheckFailure {
                                property: format!("{prop}.route"),
                                reason: format!("route `{k}` is declared twice"),
                            });
                        }
                    }
                    other => failures.push(CheckFailure {
                        property: format!("{prop}.route"),
                        reason: format!("expected a route key like `GET /hello`, got {other}"),
                    }),
                }
                if !function.is_string() {
                    failures.push(CheckFailure {
                        property: format!("{prop}.function"),
                        reason: format!("expected a function name, got {function}"),
                    });
                }
                routes_out.push(json!({"route": route, "function": function}));
            }
        }
        Some(v) if is_unknown(v) => return (inputs.clone(), failures),
        _ => failures.push(CheckFailure {
            property: "routes".into(),
            reason: "expected a list of {\"route\": \"GET /path\", \"function\": NAME}".into(),
        }),
    }
    (json!({"routes": routes_out}), failures)
}

fn schemas() -> BTreeMap<String, ResourceSchema> {
    let mut m = BTreeMap::new();
    m.insert(
        FUNCTION.to_string(),
        ResourceSchema {
            description: "A function run on this machine behind the AWS Lambda Runtime API".into(),
            inputs: json!({
                "type": "object",
                "properties": {
                    "code": {"type": ["string", "null"], "description": "folder relative to the project"},
                    "build": {"type": ["object", "null"], "properties": {"cargo_package": {"type": "string"}}},
                    "handler": {"type": ["string", "null"]},
                    "runtime": {"type": ["string", "null"], "description": runtime::VALID_RUNTIMES},
                    "environment": {"type": "object", "additionalProperties": {"type": "string"}},
                    "memory": {"type": "integer", "default": 128},
                    "timeout": {"type": "number", "default": 3},
                    "reserved_concurrency": {"type": ["integer", "null"]}
                }
            }),
            outputs: vec!["function_name".into(), "arn".into(), "code_hash".into()],
            replace_on_changes: Vec::new(),
            stable_outputs: vec!["function_name".into(), "arn".into()],
        },
    );
    m.insert(SCHEDULE.to_string(), schedules::schema());
    m.insert(TOPIC.to_string(), topics::topic_schema());
    m.insert(TOPIC_SUBSCRIPTION.to_string(), topics::subscription_schema());
    queues::schemas(&mut m);
    buckets::schemas(&mut m);
    tables::schemas(&mut m);
    m.insert(
        HTTP_API.to_string(),
        ResourceSchema {
            description: "An HTTP API on its own local port, sending API Gateway v2 events to functions"
                .into(),
            inputs: json!({
                "type": "object",
                "required": ["routes"],
                "properties": {"routes": {"type": "array", "items": {
                    "type": "object",
                    "required": ["route", "function"],
                    "properties": {"route": {"type": "string"}, "function": {"type": "string"}}
                }}}
            }),
            outputs: vec!["url".into(), "port".into(), "api_id".into()],
            replace_on_changes: Vec::new(),
            stable_outputs: vec!["url".into(), "port".into(), "api_id".into()],
        },
    );
    m
}

impl Provider for LocalProvider {
    fn name(&self) -> String {
        "local".into()
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").into()
    }

    fn schemas(&self) -> BTreeMap<String, ResourceSchema> {
        schemas()
    }

    async fn configure(&self, req: ConfigureRequest) -> Res<ConfigureResponse> {
        let dir = PathBuf::from(&req.project_dir);
        if !Path::new(&dir).is_dir() {
            return Err(ProviderError::configuration(format!(
                "project folder {} does not exist",
                dir.display()
            )));
        }
        *self.config.lock().unwrap() = Some(Config { project_dir: dir, stack: req.stack });
        Ok(ConfigureResponse {})
    }

    async fn check(&self, req: CheckRequest) -> Res<CheckResponse> {
        let cfg = self.config()?;
        let (inputs, failures) = if queues::handles(&req.type_) {
            queues::check(&req.type_, &req.inputs)
        } else if req.type_ == TOPIC {
            topics::check_topic(&req.name, &req.inputs)
        } else if req.type_ == TOPIC_SUBSCRIPTION {
            topics::check_subscription(&req.inputs)
        } else if buckets::handles(&req.type_) {
            buckets::check(&req.type_, &req.inputs)
        } else if tables::handles(&req.type_) {
            tables::check(&req.type_, &req.inputs)
        } else if req.type_ == SCHEDULE {
            schedules::check(&req.inputs)
        } else if req.type_ == FUNCTION {
            let inputs = req.inputs.clone();
            tokio::task::spawn_blocking({
                let this_cfg = cfg.clone();
                move || LocalProvider::check_function(&this_cfg, &inputs)
            })
            .await
            .map_err(|e| ProviderError::failed(e.to_string()))?
        } else {
            check_api(&req.inputs)
        };
        Ok(CheckResponse { inputs, failures })
    }

    async fn create(&self, req: CreateRequest) -> Res<CreateResponse> {
        if queues::handles(&req.type_) {
            return self.create_queue_resource(req).await;
        }
        if req.type_ == TOPIC {
            let outputs = self.put_topic(&req.name, &req.inputs).await?;
            let id = outputs["arn"].as_str().unwrap_or(&req.name).to_string();
            return Ok(CreateResponse { id, outputs });
        }
        if req.type_ == TOPIC_SUBSCRIPTION {
            let (id, outputs) = self.put_topic_subscription(&req.name, &req.inputs).await?;
            return Ok(CreateResponse { id, outputs });
        }
        if buckets::handles(&req.type_) {
            return self.create_bucket_resource(req).await;
        }
        if tables::handles(&req.type_) {
            return self.create_table_resource(req).await;
        }
        if req.type_ == SCHEDULE {
            let outputs = self.put_schedule(&req.name, &req.inputs).await?;
            Ok(CreateResponse { id: req.name, outputs })
        } else if req.type_ == FUNCTION {
            let outputs = self.put_function(&req.name, &req.inputs).await?;
            Ok(CreateResponse { id: req.name, outputs })
        } else {
            let outputs = self.put_api(&req.name, &req.inputs).await?;
            let id = outputs["api_id"].as_str().unwrap_or(&req.name).to_string();
            Ok(CreateResponse { id, outputs })
        }
    }

    async fn read(&self, req: ReadRequest) -> Res<ReadResponse> {
        let cfg = self.config()?;
        if queues::handles(&req.type_) {
            return self.read_queue_resource(&req).await;
        }
        if buckets::handles(&req.type_) {
            return self.read_bucket_resource(&req).await;
        }
        if tables::handles(&req.type_) {
            return self.read_table_resource(&req).await;
        }
        if req.type_ == SCHEDULE {
            return Ok(ReadResponse { resource: self.read_schedule(&req.name).await? });
        }
        if req.type_ == TOPIC {
            return Ok(ReadResponse { resource: self.read_topic(&req.name).await? });
        }
        if req.type_ == TOPIC_SUBSCRIPTION {
            return Ok(ReadResponse { resource: self.read_topic_subscription(&req.name).await? });
        }
        if req.type_ == FUNCTION {
            let Some(view) = self.control_get(&function_path(&cfg.stack, &req.name)).await? else {
                return Ok(ReadResponse { resource: None });
            };
            let spec: FunctionSpec = serde_json::from_value(view["spec"].clone())
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            // The daemon knows what runs, not where the code came from: keep `code`/`build`
            // and the runtime's spelling from the recorded inputs.
            let mut inputs = req.inputs.as_object().cloned().unwrap_or_default();
            let same_runtime = inputs.get("runtime").and_then(Value::as_str).and_then(runtime::normalize)
                == Some(spec.runtime.as_str());
            if !same_runtime {
                inputs.insert("runtime".into(), json!(spec.runtime));
            }
            inputs.entry("code").or_insert(Value::Null);
            inputs.entry("build").or_insert(Value::Null);
            inputs.insert("handler".into(), json!(spec.handler));
            inputs.insert("environment".into(), json!(spec.environment));
            let memory_same = inputs.get("memory").and_then(Value::as_f64) == Some(spec.memory as f64);
            if !memory_same {
                inputs.insert("memory".into(), json!(spec.memory));
            }
            let timeout_same = inputs.get("timeout").and_then(Value::as_f64) == Some(spec.timeout);
            if !timeout_same {
                inputs.insert("timeout".into(), json!(spec.timeout));
            }
            inputs.insert("reserved_concurrency".into(), json!(spec.reserved_concurrency));
            inputs.insert("code_hash".into(), json!(spec.source_hash.as_ref().unwrap_or(&spec.code_hash)));
            Ok(ReadResponse {
                resource: Some(ReadResource {
                    id: req.name.clone(),
                    inputs: Value::Object(inputs),
                    outputs: function_outputs(&req.name, &spec.code_hash),
                }),
            })
        } else {
            let Some(view) = self.control_get(&api_path(&cfg.stack, &req.name)).await? else {
                return Ok(ReadResponse { resource: None });
            };
            // Recorded but not listening (its port was taken when the daemon restarted; the
            // daemon retries): nothing is served, so it is not there. `refresh` reports it as
            // gone and `up` deploys it again, which fails naming the port while it is taken.
            if view["listening"] == json!(false) {
                return Ok(ReadResponse { resource: None });
            }
            let id = view["api_id"].as_str().unwrap_or_default().to_string();
            Ok(ReadResponse {
                resource: Some(ReadResource {
                    id,
                    inputs: json!({"routes": view["routes"]}),
                    outputs: api_outputs(&view),
                }),
            })
        }
    }

    async fn update(&self, req: UpdateRequest) -> Res<UpdateResponse> {
        let outputs = if queues::handles(&req.type_) {
            self.put_queue_resource(&req.type_, &req.name, &req.news).await?
        } else if req.type_ == TOPIC {
            self.put_topic(&req.name, &req.news).await?
        } else if req.type_ == TOPIC_SUBSCRIPTION {
            self.put_topic_subscription(&req.name, &req.news).await?.1
        } else if buckets::handles(&req.type_) {
            self.put_bucket_resource(&req.type_, &req.name, &req.news).await?
        } else if tables::handles(&req.type_) {
            self.put_table_resource(&req.type_, &req.name, &req.news).await?
        } else if req.type_ == SCHEDULE {
            self.put_schedule(&req.name, &req.news).await?
        } else if req.type_ == FUNCTION {
            self.put_function(&req.name, &req.news).await?
        } else {
            self.put_api(&req.name, &req.news).await?
        };
        Ok(UpdateResponse { outputs })
    }

    async fn delete(&self, req: DeleteRequest) -> Res<DeleteResponse> {
        if req.type_ == TOPIC || req.type_ == TOPIC_SUBSCRIPTION {
            return self.delete_topic_resource(&req).await;
        }
        if queues::handles(&req.type_) {
            return self.delete_queue_resource(&req).await;
        }
        if buckets::handles(&req.type_) {
            return self.delete_bucket_resource(&req).await;
        }
        if tables::handles(&req.type_) {
            return self.delete_table_resource(&req).await;
        }
        let cfg = self.config()?;
        let path = if req.type_ == SCHEDULE {
            schedules::schedule_path(&cfg.stack, &req.name)
        } else if req.type_ == FUNCTION {
            function_path(&cfg.stack, &req.name)
        } else {
            api_path(&cfg.stack, &req.name)
        };
        self.control_delete(&path, &[], &req.name).await
    }
}
