//! `skyform-provider-fake`: a scripted fake provider for skyform's engine tests and benchmarks.
//!
//! It serves one resource type, `fake:Resource`, whose inputs are any object and whose outputs
//! are a copy of the inputs plus `id`; a change of `force_new` forces a replacement. What makes
//! it useful is the script (see [`config`]): latency, injected failures, crashes, hangs and
//! garbage on stdout, per resource name; and the store (see [`store`]), a folder with one file per
//! live resource that tests read and edit to check what exists and to cause drift.
//!
//! It is found on PATH like any third-party provider, and is built on the same `serve()` helper,
//! so it also exercises the provider side of the protocol. It must stay fast: the engine
//! benchmarks preview and create ten thousand resources through it, so check and diff do no IO
//! and nothing scans the store on the common paths.

use std::collections::BTreeMap;
use std::future::pending;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use skyform_protocol::{
    CheckFailure, CheckRequest, CheckResponse, ConfigureRequest, ConfigureResponse, CreateRequest,
    CreateResponse, DeleteRequest, DeleteResponse, Provider, ProviderError, ReadRequest, ReadResource,
    ReadResponse, ResourceSchema, UpdateRequest, UpdateResponse,
};

mod config;
mod store;

use config::Config;
use store::{Record, Store};

/// The only type token.
const RESOURCE: &str = "fake:Resource";
/// The exit code of a scripted crash (`crash_on`).
const CRASH_EXIT_CODE: i32 = 3;
/// What `garbage_on` prints instead of an answer.
const GARBAGE: &str = "this is not json";

type Result<T> = std::result::Result<T, ProviderError>;

fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    // Before `configure`, the environment alone scripts the fake.
    let setup = match Config::load(&Default::default(), env, &cwd).and_then(Setup::new) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skyform-provider-fake: {e}");
            return ExitCode::from(2);
        }
    };
    let fake = Fake { setup: RwLock::new(Arc::new(setup)) };
    match skyform_protocol::serve_blocking(fake) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyform-provider-fake: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Fake {
    /// Replaced as a whole by `configure`; every request takes a snapshot, so a request never
    /// sees half of a configuration.
    setup: RwLock<Arc<Setup>>,
}

struct Setup {
    config: Config,
    store: Arc<Store>,
}

impl Setup {
    fn new(config: Config) -> std::result::Result<Setup, String> {
        let store = match &config.store {
            Some(dir) => Store::in_dir(dir.clone())
                .map_err(|e| format!("cannot create the fake store {}: {e}", dir.display()))?,
            None => Store::in_memory(),
        };
        Ok(Setup { config, store: Arc::new(store) })
    }

    /// Plays the script for a mutating operation on `name`: crash, hang, garbage, latency, then
    /// an injected failure.
    async fn script(&self, op: Op, name: &str) -> Result<()> {
        let c = &self.config;
        if c.crash_on.contains(name) {
            eprintln!("fake: crashing on {} {name} (crash_on)", op.ing());
            std::process::exit(CRASH_EXIT_CODE);
        }
        if c.hang_on.contains(name) {
            eprintln!("fake: hanging on {} {name} (hang_on)", op.ing());
            pending::<()>().await;
        }
        if c.garbage_on.contains(name) {
            eprintln!("fake: printing garbage instead of answering {} {name} (garbage_on)", op.ing());
            // The same locked, line-buffered stdout that serve()'s writer goes through, so the
            // garbage is a line of its own and never splits an answer.
            {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{GARBAGE}");
                let _ = out.flush();
            }
            pending::<()>().await;
        }
        sleep(c.latency).await;
        let fail = match op {
            Op::Create => &c.fail_create,
            Op::Update => &c.fail_update,
            Op::Delete => &c.fail_delete,
        };
        if fail.contains(name) {
            return Err(ProviderError::failed(format!("fake: injected failure {} {name}", op.ing())));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    fn ing(self) -> &'static str {
        match self {
            Op::Create => "creating",
            Op::Update => "updating",
            Op::Delete => "deleting",
        }
    }
}

impl Fake {
    fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap().clone()
    }
}

impl Provider for Fake {
    fn name(&self) -> String {
        "fake".to_string()
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    fn schemas(&self) -> BTreeMap<String, ResourceSchema> {
        BTreeMap::from([(
            RESOURCE.to_string(),
            ResourceSchema {
                description: "A fake resource: any object of inputs, echoed as outputs with `id`. A \
                              change of `force_new` replaces it; `\"bad\": true` fails check."
                    .to_string(),
                inputs: json!({ "type": "object" }),
                // Outputs echo the inputs, so they are open-ended: an empty list means "any".
                outputs: Vec::new(),
                replace_on_changes: vec!["force_new".to_string()],
                stable_outputs: Vec::new(),
            },
        )])
    }

    async fn configure(&self, req: ConfigureRequest) -> Result<ConfigureResponse> {
        let env = |key: &str| std::env::var(key).ok();
        let config = Config::load(&req.config, env, &PathBuf::from(&req.project_dir)).map_err(|e| {
            ProviderError::configuration(format!(
                "{e}; fix `[providers.fake]` in the stack's Skyform.<stack>.toml"
            ))
        })?;
        let old = self.setup();
        // Keep what is live when the store does not change (a second `configure` in memory mode
        // must not forget every resource).
        let setup = if old.store.dir() == config.store.as_deref() {
            Setup { config, store: old.store.clone() }
        } else {
            Setup::new(config).map_err(ProviderError::configuration)?
        };
        eprintln!(
            "fake: configured for {}/{} (store: {})",
            req.project,
            req.stack,
            setup.config.store.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "memory".into())
        );
        *self.setup.write().unwrap() = Arc::new(setup);
        Ok(ConfigureResponse {})
    }

    async fn check(&self, req: CheckRequest) -> Result<CheckResponse> {
        let mut failures = Vec::new();
        match req.inputs.as_object() {
            None => failures.push(CheckFailure {
                property: String::new(),
                reason: format!("the inputs of a fake:Resource must be an object, not {}", req.inputs),
            }),
            Some(inputs) if inputs.get("bad") == Some(&Value::Bool(true)) => failures.push(CheckFailure {
                property: "bad".to_string(),
                reason: "fake: `bad` is true (check fails on purpose)".to_string(),
            }),
            Some(_) => {}
        }
        Ok(CheckResponse { inputs: req.inputs, failures })
    }

    async fn create(&self, req: CreateRequest) -> Result<CreateResponse> {
        let setup = self.setup();
        setup.script(Op::Create, &req.name).await?;
        let id = new_id(&req.name);
        let outputs = outputs(&req.inputs, &id);
        let record = Record {
            type_: req.type_,
            name: req.name,
            id: id.clone(),
            inputs: req.inputs,
            outputs: outputs.clone(),
            created_seq: next_seq(),
        };
        setup
            .store
            .put(&record)
            .map_err(|e| ProviderError::failed(format!("fake: cannot store {id}: {e}")))?;
        Ok(CreateResponse { id, outputs })
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse> {
        let setup = self.setup();
        sleep(setup.config.read_latency).await;
        let found = match &req.id {
            Some(id) => setup.store.get(id),
            None => setup.store.newest_named(&req.name),
        }
        .map_err(ProviderError::failed)?;
        let resource = match (found, &req.id) {
            (Some(r), _) => Some(ReadResource { id: r.id, inputs: r.inputs, outputs: r.outputs }),
            // In memory the fake forgets everything when it exits; a resource recorded in state
            // is taken to exist as recorded, so that runs after the first still work.
            (None, Some(id)) if setup.store.dir().is_none() && !req.inputs.is_null() => {
                Some(ReadResource { id: id.clone(), inputs: req.inputs, outputs: req.outputs })
            }
            (None, _) => None,
        };
        Ok(ReadResponse { resource })
    }

    async fn update(&self, req: UpdateRequest) -> Result<UpdateResponse> {
        let setup = self.setup();
        setup.script(Op::Update, &req.name).await?;
        let created_seq = match setup.store.get(&req.id).map_err(ProviderError::failed)? {
            Some(old) => old.created_seq,
            None if setup.store.dir().is_none() => next_seq(),
            None => return Err(not_in_store(&setup, &req.id)),
        };
        let outputs = outputs(&req.news, &req.id);
        let record = Record {
            type_: req.type_,
            name: req.name,
            id: req.id.clone(),
            inputs: req.news,
            outputs: outputs.clone(),
            created_seq,
        };
        setup
            .store
            .put(&record)
            .map_err(|e| ProviderError::failed(format!("fake: cannot store {}: {e}", req.id)))?;
        Ok(UpdateResponse { outputs })
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let setup = self.setup();
        setup.script(Op::Delete, &req.name).await?;
        let removed = setup
            .store
            .remove(&req.id)
            .map_err(|e| ProviderError::failed(format!("fake: cannot delete {}: {e}", req.id)))?;
        if !removed && setup.store.dir().is_some() {
            return Err(not_in_store(&setup, &req.id));
        }
        Ok(DeleteResponse {})
    }
}

fn not_in_store(setup: &Setup, id: &str) -> ProviderError {
    let dir = setup.store.dir().map(|d| d.display().to_string()).unwrap_or_default();
    ProviderError::not_found(format!("fake: there is no resource {id} in the store {dir}"))
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The outputs: a copy of the inputs plus `id`.
fn outputs(inputs: &Value, id: &str) -> Value {
    let mut out = match inputs {
        Value::Object(m) => m.clone(),
        other => serde_json::Map::from_iter([("value".to_string(), other.clone())]),
    };
    out.insert("id".to_string(), Value::String(id.to_string()));
    Value::Object(out)
}

/// `<name>-<8 hex digits>`, the name reduced to `[A-Za-z0-9-]` so that it is a safe file name.
fn new_id(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if clean.is_empty() {
        clean.push('r');
    }
    // RandomState's keys are random per process; the clock and a counter make each id differ.
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(next_seq());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{clean}-{:08x}", h.finish() as u32)
}

/// Nanoseconds since the Unix epoch, strictly increasing within the process.
fn next_seq() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_a_clean_name() {
        let id = new_id("my bucket/1");
        assert!(id.starts_with("my-bucket-1-"), "{id}");
        assert_eq!(id.len(), "my-bucket-1-".len() + 8);
        assert_ne!(new_id("a"), new_id("a"));
        assert!(new_id("").starts_with("r-"));
    }

    #[test]
    fn outputs_copy_inputs_and_add_id() {
        assert_eq!(outputs(&json!({"a": 1}), "x"), json!({"a": 1, "id": "x"}));
    }

    #[test]
    fn seq_strictly_increases() {
        let a = next_seq();
        assert!(next_seq() > a);
    }
}
