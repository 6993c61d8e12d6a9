//! `skyform import TYPE NAME ID`: adopt an existing resource into the stack.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::cli::render::TerminalSink;
use crate::error::Result;

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
    /// Print `{"type", "name", "id", "stack", "serial", "inputs"}` as JSON; schema in
    /// docs/json/import.schema.json.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink)?;
    let (resource, serial) = session.import_resource(&args.type_, &args.name, &args.id).await?;
    if args.json {
        crate::cli::render::print_json(&serde_json::json!({
            "type": args.type_,
            "name": args.name,
            "id": resource.id,
            "stack": session.stack,
            "serial": serial,
            "inputs": crate::value::mask(resource.inputs.sealed()),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "imported {} `{}` (id {}) into stack `{}` (serial {serial})",
        args.type_, args.name, resource.id, session.stack
    );
    println!("declare it in the program with these inputs so that `skyform up` keeps it:");
    // Secrets it holds (strings containing a secret the stack knows) are shown masked.
    println!("{}", serde_json::to_string_pretty(&crate::value::mask(resource.inputs.sealed())).unwrap());
    Ok(ExitCode::SUCCESS)
}
