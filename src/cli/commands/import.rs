//! `skyform import TYPE NAME ID`: adopt an existing resource into the stack.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::Global;
use crate::cli::render::TerminalSink;
use crate::engine;
use crate::error::Result;
use crate::state::{OpKind, PendingOp};

/// Read an existing resource by its provider id and record it in the stack's state under NAME.
/// Declare it in the program with the printed inputs so that the next `up` keeps it.
///
/// Strings that contain a secret the stack knows (a config secret, a secret its state records) are
/// recorded encrypted and printed masked; declare the rest of its secrets with `$secret`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The resource type, e.g. `aws:sqs:Queue`.
    #[arg(value_name = "TYPE")]
    pub type_: String,
    /// The name to record it under (the program's resource name).
    pub name: String,
    /// The provider's id of the resource.
    pub id: String,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, false));
    let session = g.session(sink)?;
    let lock = session.lock("skyform import")?;
    let snap = session.recover(&lock)?;
    engine::ensure_no_pending(&snap)?;
    let started = Instant::now();
    // Start the type's provider (via a stand-in pending op, never written).
    let mut probe = snap.clone();
    probe.pending_operations.push(PendingOp {
        op: OpKind::Create,
        name: args.name.clone(),
        type_: args.type_.clone(),
        id: None,
        inputs: Default::default(),
    });
    let providers = session.start_providers(None, &probe, false).await?;
    // What the stack knows to be secret (its config secrets and the secrets its state records)
    // is marked wherever the imported resource holds it.
    let mut texts = session.config_secret_texts()?;
    for r in &snap.resources {
        crate::value::secret_texts(&r.inputs.open(&session.vault)?, &mut texts);
        crate::value::secret_texts(&r.outputs.open(&session.vault)?, &mut texts);
    }
    texts.retain(|t| !t.is_empty());
    let result =
        engine::import(&snap, &providers, &args.type_, &args.name, &args.id, &session.vault, &texts).await;
    providers.shutdown().await;
    let (next, resource) = result?;
    let written = session.write(&snap, next, "import", started)?;
    println!(
        "imported {} `{}` (id {}) into stack `{}` (serial {})",
        args.type_, args.name, resource.id, session.stack, written.serial
    );
    println!("declare it in the program with these inputs so that `skyform up` keeps it:");
    // Secrets it holds (strings containing a config secret) are shown masked.
    println!("{}", serde_json::to_string_pretty(&crate::value::mask(resource.inputs.sealed())).unwrap());
    Ok(ExitCode::SUCCESS)
}
