//! `skyform stack export`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::error::Result;
use crate::events::NullSink;

pub fn run(g: &Global) -> Result<ExitCode> {
    let snap = g.session(Arc::new(NullSink))?.export()?;
    print!("{}", String::from_utf8_lossy(&snap.to_bytes()));
    Ok(ExitCode::SUCCESS)
}
