//! The skyform provider protocol: wire types, framing and a `serve()` helper.
//!
//! A provider is a separate process. The engine writes requests to its stdin and reads
//! responses from its stdout, one JSON object per line (newline-delimited JSON). Logs go to
//! stderr, which the engine captures to a log file. Every request carries an `id`; the
//! response to it carries the same `id`, so several requests can be in flight at once and
//! answered in any order.
//!
//! The first request is always `handshake`: the engine offers the protocol versions it speaks,
//! the provider picks one and describes the resource types it serves. `PROTOCOL.md` beside
//! this crate shows every message with an example; `tests/protocol_doc.rs` fails when these
//! types change and the document does not.
//!
//! This crate is deliberately small (serde, serde_json and tokio) so that a third-party
//! provider can depend on it without pulling in the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod diff;
mod serve;

pub use diff::{default_diff, has_unknown};
pub use serve::{Provider, ProviderError, serve, serve_blocking, serve_io};

/// The protocol versions this crate speaks. The engine offers all of them in the handshake;
/// the provider answers with the one it picked.
pub const PROTOCOL_VERSION: u32 = 1;

/// Stands in for a value that is not known until apply time (an output of a resource that is
/// yet to be created or updated). It is a string so that typed inputs that expect a string
/// still deserialize during preview; `check` should skip validating such values and `diff`
/// should treat them as changed.
pub const UNKNOWN: &str = "04da6b54-skyform-unknown-value";

/// One request from the engine to the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub call: Call,
}

/// The method and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Call {
    Handshake(HandshakeRequest),
    Configure(ConfigureRequest),
    Check(CheckRequest),
    Diff(DiffRequest),
    Create(CreateRequest),
    Read(ReadRequest),
    Update(UpdateRequest),
    Delete(DeleteRequest),
}

impl Call {
    /// The method name as it appears on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Handshake(_) => "handshake",
            Call::Configure(_) => "configure",
            Call::Check(_) => "check",
            Call::Diff(_) => "diff",
            Call::Create(_) => "create",
            Call::Read(_) => "read",
            Call::Update(_) => "update",
            Call::Delete(_) => "delete",
        }
    }
}

/// One response from the provider: exactly one of `result` and `error` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A failed request. `code` is machine-readable, `message` is written for the user and should
/// say what to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The inputs are invalid (also reported by `check` as failures).
    InvalidInputs,
    /// The resource does not exist (for `update` and `delete`; `read` answers `resource: null`).
    NotFound,
    /// The provider does not know the resource type or method.
    Unsupported,
    /// The operation failed; nothing was changed (create and delete are all-or-nothing).
    Failed,
    /// The provider is not configured, or its configuration is wrong (credentials, region).
    Configuration,
    /// The request was malformed.
    BadRequest,
}

// ---------------------------------------------------------------------------------------------
// handshake

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// The protocol versions the engine speaks.
    pub protocol_versions: Vec<u32>,
    pub engine_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// The version picked from the engine's offer.
    pub protocol_version: u32,
    /// The provider's name: the first segment of its type tokens (`core` in `core:Data`).
    pub name: String,
    pub version: String,
    /// The resource types it serves, by type token.
    pub resources: BTreeMap<String, ResourceSchema>,
}

/// What a provider says about one resource type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceSchema {
    pub description: String,
    /// A JSON Schema of the inputs.
    pub inputs: Value,
    /// The names of the outputs it returns.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Top-level input properties whose change forces a replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_on_changes: Vec<String>,
    /// Outputs that an in-place update never changes (a name, an ARN, a URL). During preview a
    /// resource that depends on one of them through a resource being updated sees its
    /// recorded value instead of `(known after up)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_outputs: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// configure

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigureRequest {
    pub project: String,
    pub stack: String,
    /// The project's root folder (absolute).
    pub project_dir: String,
    /// The provider's configuration from `Skyform.<stack>.toml` (`[providers.NAME]`).
    #[serde(default)]
    pub config: Map<String, Value>,
    /// True during `preview`: the provider must not change anything.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConfigureResponse {}

// ---------------------------------------------------------------------------------------------
// check

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    /// The inputs as the program declared them; may contain [`UNKNOWN`] values.
    pub inputs: Value,
    /// The checked inputs recorded in state, when the resource exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub olds: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResponse {
    /// The inputs with defaults filled in (and generated values, such as a physical name, kept
    /// from `olds`).
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<CheckFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFailure {
    pub property: String,
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// diff

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub id: String,
    /// The checked inputs recorded in state.
    pub olds: Value,
    /// The new checked inputs; may contain [`UNKNOWN`] values.
    pub news: Value,
    /// The outputs recorded in state.
    pub old_outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiffResponse {
    /// Top-level input properties that changed. Empty means no change.
    #[serde(default)]
    pub changed: Vec<String>,
    /// The subset of `changed` that forces a replacement.
    #[serde(default)]
    pub replaces: Vec<String>,
    /// The replacement must delete the old resource before creating the new one (e.g. a
    /// physical name that cannot exist twice).
    #[serde(default)]
    pub delete_before_replace: bool,
}

// ---------------------------------------------------------------------------------------------
// create, read, update, delete

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub inputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateResponse {
    pub id: String,
    pub outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    /// The resource's id. `None` asks the provider to find the resource from `inputs` alone:
    /// the engine does that to resolve a `create` that was interrupted before its result was
    /// recorded, and for `import` the id is always given.
    #[serde(default)]
    pub id: Option<String>,
    /// The inputs recorded in state (or, for an interrupted create, the inputs it was called
    /// with); `null` for `import`.
    #[serde(default)]
    pub inputs: Value,
    #[serde(default)]
    pub outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResponse {
    /// `None` when the resource does not exist.
    pub resource: Option<ReadResource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResource {
    pub id: String,
    /// The inputs as they are in the real resource (so that drift shows as a diff against the
    /// program's inputs).
    pub inputs: Value,
    pub outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub id: String,
    pub olds: Value,
    pub news: Value,
    pub old_outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateResponse {
    pub outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteRequest {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeleteResponse {}

/// Splits a type token `pkg:Type` or `pkg:module:Type` into its provider name and the rest.
pub fn provider_of(type_token: &str) -> Option<&str> {
    let (pkg, rest) = type_token.split_once(':')?;
    if pkg.is_empty() || rest.is_empty() {
        return None;
    }
    Some(pkg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_with_method_and_params() {
        let line =
            r#"{"id":7,"method":"create","params":{"type":"core:Data","name":"a","inputs":{"value":1}}}"#;
        let req: Request = serde_json::from_str(line).unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(req.call.method(), "create");
        assert_eq!(serde_json::to_string(&req).unwrap(), line);
    }

    #[test]
    fn response_has_result_or_error() {
        let ok = Response { id: 1, result: Some(json!({})), error: None };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"id":1,"result":{}}"#);
        let err: Response =
            serde_json::from_str(r#"{"id":2,"error":{"code":"not_found","message":"gone"}}"#).unwrap();
        assert_eq!(err.error.unwrap().code, ErrorCode::NotFound);
    }

    #[test]
    fn provider_of_splits_type_tokens() {
        assert_eq!(provider_of("core:Data"), Some("core"));
        assert_eq!(provider_of("aws:lambda:Function"), Some("aws"));
        assert_eq!(provider_of("nocolon"), None);
        assert_eq!(provider_of(":x"), None);
    }
}
