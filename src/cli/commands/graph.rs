//! `skyform graph`: the resource graph as DOT or Mermaid.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::cli::render::TerminalSink;
use crate::error::Result;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
}

/// Print the resource graph (edges point from a dependency to its dependent).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, true));
    let session = g.session(sink)?;
    let manifest = session.run_program().await?;
    let graph = manifest.validate()?;
    let mut out = String::new();
    match args.format {
        Format::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{\n  rankdir=LR;", session.stack);
            for r in &manifest.resources {
                let _ = writeln!(out, "  \"{}\" [label=\"{}\\n{}\"];", r.name, r.name, r.type_);
            }
            for (i, deps) in graph.deps.iter().enumerate() {
                for d in deps {
                    let _ = writeln!(out, "  \"{d}\" -> \"{}\";", manifest.resources[i].name);
                }
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("graph LR\n");
            let id = |name: &str| {
                format!("n{}", manifest.resources.iter().position(|r| r.name == name).unwrap_or(0))
            };
            for r in &manifest.resources {
                let _ = writeln!(out, "  {}[\"{}<br/>{}\"]", id(&r.name), r.name, r.type_);
            }
            for (i, deps) in graph.deps.iter().enumerate() {
                for d in deps {
                    let _ = writeln!(out, "  {} --> {}", id(d), id(&manifest.resources[i].name));
                }
            }
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
