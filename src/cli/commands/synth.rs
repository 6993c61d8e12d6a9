//! `skyform synth`: run the program and print its manifest.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::cli::render::TerminalSink;
use crate::error::Result;

/// Run the program and print the manifest it produces (validated), without contacting any
/// provider.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(g: &Global, _args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, true));
    let session = g.session(sink)?;
    let manifest = session.run_program().await?;
    manifest.validate()?;
    println!("{}", serde_json::to_string_pretty(&manifest).expect("manifests serialize"));
    Ok(ExitCode::SUCCESS)
}
