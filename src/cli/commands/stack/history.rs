//! `skyform stack history`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::error::Result;
use crate::events::NullSink;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print as JSON (oldest first); schema in docs/json/stack-history.schema.json.
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let session = g.session(Arc::new(NullSink))?;
    let entries = session.history()?;
    if args.json {
        crate::cli::render::print_json(&serde_json::to_value(&entries).expect("json"));
    } else if entries.is_empty() {
        println!("stack `{}` has no history yet", session.stack);
    } else {
        let header =
            crate::cli::style::paint(crate::cli::style::Stream::Out, crate::cli::style::BOLD, "History");
        println!("{header} ({}), newest first:", session.stack);
        for e in entries.iter().rev() {
            let changes: Vec<String> = e.changes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!(
                "serial {:<4} {}  {:<12} {:<11} {:>6}ms  {}",
                e.serial,
                e.started,
                e.command,
                e.result,
                e.duration_ms,
                changes.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
