//! The first-party `core` provider: resources that need no cloud.
//!
//! - `core:Data` keeps a value in state, like Terraform's `terraform_data`. Its `triggers`
//!   input forces a replacement, which makes it the usual way to tie the lifetime of other
//!   resources to an arbitrary value.
//! - `core:Command` runs local shell commands on create, update and delete, like
//!   pulumi-command's `local.Command`.
//!
//! The provider speaks the same protocol as any third-party provider: the `skyform` binary starts
//! it as a child process (`skyform provider core`), and it is also built as the stand-alone
//! executable `skyform-provider-core`. Everything here goes through the [`Provider`] trait, so the
//! unit tests drive it in-process and `tests/stdio.rs` drives the real process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;

use serde_json::{Map, Value, json};
use skyform_protocol::{
    CheckFailure, CheckRequest, CheckResponse, ConfigureRequest, ConfigureResponse, CreateRequest,
    CreateResponse, DeleteRequest, DeleteResponse, DiffRequest, DiffResponse, Provider, ProviderError,
    ReadRequest, ReadResponse, ResourceSchema, UpdateRequest, UpdateResponse,
};

mod command;
mod data;
mod id;

pub use id::new_id;

/// The type token of the data resource.
pub const DATA: &str = "core:Data";
/// The type token of the command resource.
pub const COMMAND: &str = "core:Command";

type Result<T> = std::result::Result<T, ProviderError>;

/// Runs the `core` provider on stdin/stdout until stdin closes. The `skyform` binary calls this
/// for `skyform provider core`.
pub fn main() -> std::process::ExitCode {
    match skyform_protocol::serve_blocking(CoreProvider::default()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyform-provider-core: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The `core` provider. Its only configuration is the project folder received in `configure`,
/// against which `core:Command` resolves its `dir`.
#[derive(Debug, Default)]
pub struct CoreProvider {
    project_dir: RwLock<Option<PathBuf>>,
}

impl CoreProvider {
    /// A provider already configured with a project folder (what `configure` would set).
    pub fn with_project_dir(dir: impl Into<PathBuf>) -> Self {
        CoreProvider { project_dir: RwLock::new(Some(dir.into())) }
    }

    fn project_dir(&self) -> Result<PathBuf> {
        self.project_dir.read().expect("project_dir lock").clone().ok_or_else(|| {
            ProviderError::configuration(
                "the core provider was not configured: the engine must send `configure` (with \
                 `project_dir`) before running commands",
            )
        })
    }
}

impl Provider for CoreProvider {
    fn name(&self) -> String {
        "core".to_string()
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    fn schemas(&self) -> BTreeMap<String, ResourceSchema> {
        BTreeMap::from([(DATA.to_string(), data::schema()), (COMMAND.to_string(), command::schema())])
    }

    async fn configure(&self, req: ConfigureRequest) -> Result<ConfigureResponse> {
        // `path` is the engine's own setting (where to find the provider); tolerate it in case
        // the engine passes the whole `[providers.core]` table through.
        if let Some(key) = req.config.keys().find(|k| *k != "path") {
            return Err(ProviderError::configuration(format!(
                "the core provider takes no configuration, but `[providers.core]` sets `{key}`; \
                 remove it from Skyform.toml"
            )));
        }
        *self.project_dir.write().expect("project_dir lock") = Some(PathBuf::from(req.project_dir));
        Ok(ConfigureResponse {})
    }

    async fn check(&self, req: CheckRequest) -> Result<CheckResponse> {
        let schema = match req.type_.as_str() {
            DATA => data::schema(),
            _ => command::schema(),
        };
        // A resource declared without inputs arrives as `null`: treat it as an empty object.
        let inputs = if req.inputs.is_null() { empty_object() } else { req.inputs };
        let Some(object) = inputs.as_object() else {
            return Ok(CheckResponse {
                failures: vec![failure(
                    "",
                    format!("the inputs of a {} must be an object, not {inputs}", req.type_),
                )],
                inputs,
            });
        };
        let mut failures = unknown_properties(object, &schema.inputs);
        if req.type_ == COMMAND {
            failures.extend(command::check(object));
        }
        Ok(CheckResponse { inputs, failures })
    }

    async fn diff(&self, req: DiffRequest) -> Result<Option<DiffResponse>> {
        match req.type_.as_str() {
            COMMAND => Ok(Some(command::diff(&req.olds, &req.news))),
            _ => Ok(None),
        }
    }

    async fn create(&self, req: CreateRequest) -> Result<CreateResponse> {
        match req.type_.as_str() {
            DATA => Ok(data::create(&req.inputs)),
            _ => command::create(&self.project_dir()?, &req.inputs).await,
        }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse> {
        // Neither type can be looked up anywhere but in state: a data value lives only there, and
        // a command's effects cannot be read back. So a resource exists wherever state says so,
        // and an interrupted create (no id) is reported as never having happened.
        Ok(ReadResponse { resource: data::read_recorded(&req) })
    }

    async fn update(&self, req: UpdateRequest) -> Result<UpdateResponse> {
        match req.type_.as_str() {
            DATA => Ok(data::update(&req.news)),
            _ => command::update(&self.project_dir()?, &req.olds, &req.news, &req.old_outputs).await,
        }
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        match req.type_.as_str() {
            DATA => Ok(DeleteResponse {}),
            _ => command::delete(&self.project_dir()?, &req.inputs, &req.outputs).await,
        }
    }
}

fn failure(property: &str, reason: impl Into<String>) -> CheckFailure {
    CheckFailure { property: property.to_string(), reason: reason.into() }
}

/// Properties the schema does not declare: almost always a typo, and silently ignoring one would
/// make a resource behave differently from what its author wrote.
fn unknown_properties(inputs: &Map<String, Value>, schema: &Value) -> Vec<CheckFailure> {
    let known = schema.get("properties").and_then(Value::as_object);
    inputs
        .keys()
        .filter(|k| !known.is_some_and(|p| p.contains_key(*k)))
        .map(|k| {
            let names: Vec<&str> = known.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
            failure(k, format!("unknown property `{k}`; the known properties are {}", names.join(", ")))
        })
        .collect()
}

/// An empty object, the inputs of a resource read without recorded inputs (an import).
fn empty_object() -> Value {
    json!({})
}

#[cfg(test)]
mod tests;
