//! `skyform synth`: run the program and print its manifest.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::render::TerminalSink;
use crate::cli::{Global, flags};
use crate::error::Result;

/// Run the program and print the manifest it produces (validated), without contacting any
/// provider.
///
/// Secrets (`$secret` values, and strings built from config secrets) are printed as
/// `[secret]` unless --show-secrets is given.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
    /// Accepted for symmetry with the other commands: the manifest is JSON either way; with
    /// it, an error is a JSON object too.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, true));
    let session = g.session(sink)?;
    // Checked against this project and stack, as `preview` and `up` check it.
    let manifest = session.manifest(&crate::ops::Program::Project).await?;
    manifest.validate()?;
    // Masked, a secret keeps its marker so the manifest still reads as one. The manifest's
    // fields keep their order (`manifest`, `project`, `stack`, `resources`, ...: MANIFEST.md).
    let mut doc = manifest;
    if !args.secrets.show_secrets {
        for r in &mut doc.resources {
            r.inputs = mask_marks(&r.inputs);
        }
        for v in doc.outputs.values_mut() {
            *v = mask_marks(v);
        }
    }
    println!("{}", serde_json::to_string_pretty(&doc).expect("manifests serialize"));
    Ok(ExitCode::SUCCESS)
}

/// `{"$secret": x}` becomes `{"$secret": "[secret]"}`.
fn mask_marks(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if crate::value::as_mark(v).is_some() {
                return serde_json::json!({ crate::value::SECRET: crate::value::MASK });
            }
            Value::Object(map.iter().map(|(k, c)| (k.clone(), mask_marks(c))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(mask_marks).collect()),
        other => other.clone(),
    }
}
