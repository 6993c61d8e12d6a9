//! Tests of whole manifests: what programs produce, component expansions for each target, and
//! conformance to `manifest.schema.json`. Module-level unit tests sit beside their modules.

mod aws;
mod components;
mod docs;
mod programs;
mod schema;

use serde_json::{Value, json};

use crate::{Program, Target};

/// An empty local `dev` program of project `shop`.
pub(crate) fn local() -> Program {
    Program::new("shop", "dev", Target::Local, json!({}))
}

/// The resource named `name` in a manifest, or `Value::Null`.
pub(crate) fn resource<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or(&Value::Null)
}
