//! Writing the record of a program run as manifest format v1, the contract with the engine.
//!
//! The format is documented in `sdk/MANIFEST.md` and described by `sdk/manifest.schema.json`;
//! a test checks the manifests this module writes against that schema. The wire structs below
//! are kept apart from the in-memory records (`program::Records`) so that the format changes only
//! on purpose, here, with a new version number. They also fix the order of the fields in the
//! printed JSON (format version first, then identity, resources, components, outputs), which
//! makes a manifest easy to read; the order carries no meaning.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::program::Records;

/// The manifest format version this SDK writes (the `manifest` field).
pub const MANIFEST_VERSION: u64 = 1;

#[derive(Serialize)]
pub(crate) struct ManifestV1<'a> {
    manifest: u64,
    project: &'a str,
    stack: &'a str,
    resources: Vec<ResourceV1<'a>>,
    components: Vec<ComponentV1<'a>>,
    outputs: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct ResourceV1<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_: &'a str,
    inputs: &'a Value,
    /// Only the options that differ from their defaults.
    options: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
}

#[derive(Serialize)]
struct ComponentV1<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_: &'a str,
    /// Always present, `null` at the top level, as in the draft this format came from.
    parent: Option<&'a str>,
}

/// Builds the manifest. Resources and components keep their declaration order (the engine
/// orders by dependencies, but a stable order keeps `preview` output stable); duplicate names are
/// written as declared, for the engine to report with its own, better-placed error.
pub(crate) fn build<'a>(project: &'a str, stack: &'a str, records: &'a Records) -> ManifestV1<'a> {
    ManifestV1 {
        manifest: MANIFEST_VERSION,
        project,
        stack,
        resources: records
            .resources
            .iter()
            .map(|r| ResourceV1 {
                name: &r.name,
                type_: &r.type_,
                inputs: &r.inputs,
                options: r.options.to_manifest(),
                parent: r.options.parent.as_deref(),
            })
            .collect(),
        components: records
            .components
            .iter()
            .map(|c| ComponentV1 { name: &c.name, type_: &c.type_, parent: c.parent.as_deref() })
            .collect(),
        outputs: &records.outputs,
    }
}
