//! `skyform logs FUNCTION`: what a function printed, per request id.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, Result};

/// Show what a function of the local cloud printed, with Lambda's START/END/REPORT lines.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The function's name (its resource name).
    pub function: String,
    /// Keep printing new lines as they come (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines newer than this, e.g. `10m`, `1h`, `30s`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Print one JSON object per line (`{"time", "request_id", "message"}`); schema in
    /// docs/json/logs.schema.json.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let since_ms = match &args.since {
        None => None,
        Some(s) => {
            let d = crate::project::parse_duration(s).ok_or_else(|| {
                Error::user(format!("--since `{s}` is not a duration"), "write it like `10m` or `1h`")
            })?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Some(now.saturating_sub(d).as_millis() as u64)
        }
    };
    let json = args.json;
    let mut print = |r: skyform_local::LogRecord| {
        let time = crate::util::rfc3339_ms(r.time_ms);
        if json {
            let line = serde_json::json!({"time": time, "request_id": r.request_id, "message": r.message.trim_end()});
            println!("{line}");
            crate::cli::render::note_json_printed();
        } else {
            println!("{time} {}", r.message.trim_end());
        }
        true
    };
    skyform_local::logs(&project.dir, &stack, &args.function, since_ms, args.follow, &mut print)
        .await
        .map_err(|e| Error::user(e.message, "check the function's name with `skyform local status`"))?;
    Ok(ExitCode::SUCCESS)
}
