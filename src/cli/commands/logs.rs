//! `skyform logs FUNCTION`: what a function printed, per request id. On a `local` stack from the
//! local cloud's log files; on an `aws` stack from CloudWatch Logs (`/aws/lambda/NAME`), with
//! `--follow` polling `FilterLogEvents` every second.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, Result};

/// Show what a function printed, with Lambda's START/END/REPORT lines (from the local cloud,
/// or from CloudWatch Logs on an `aws` stack).
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
    if let Some(f) = super::invoke::aws_function(g, &args.function)? {
        return aws_logs(f, since_ms, args.follow, json).await;
    }
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

async fn aws_logs(
    f: super::invoke::AwsFunction,
    since_ms: Option<u64>,
    follow: bool,
    json: bool,
) -> Result<ExitCode> {
    let group = skyform_aws::ops::function_log_group(&f.name);
    let mut seen = std::collections::HashSet::new();
    let mut start = since_ms;
    loop {
        let events = match skyform_aws::ops::log_events(&f.aws, &group, start).await {
            Ok(e) => e,
            // No group yet: the function has not run (Lambda creates it at the first call).
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => {
                return Err(Error::user(
                    format!("reading the log group {group} of {}: {e}", f.arn),
                    "check the AWS credentials and [providers.aws] of the stack",
                ));
            }
        };
        for e in events {
            // Following asks again from the newest timestamp seen; lines already shown are
            // skipped by their event id.
            if seen.insert(e.id.clone()) {
                let time = crate::util::rfc3339_ms(e.time_ms);
                if json {
                    // CloudWatch events carry no request id of their own.
                    let line = serde_json::json!({"time": time, "request_id": null, "message": e.message.trim_end()});
                    println!("{line}");
                    crate::cli::render::note_json_printed();
                } else {
                    println!("{time} {}", e.message.trim_end());
                }
                start = Some(start.unwrap_or(0).max(e.time_ms));
            }
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
