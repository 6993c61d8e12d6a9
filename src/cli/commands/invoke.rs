//! `skyform invoke FUNCTION`: call a function of the local cloud and print its result.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, ErrorKind, Result};

/// Invoke a function of the local cloud with an event and print what it returned.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The function's name (its resource name).
    pub function: String,
    /// The event: JSON, `@FILE` (read from FILE) or `-` (read from standard input).
    #[arg(long, default_value = "{}", value_name = "JSON|@FILE|-")]
    pub data: String,
    /// Print `{"function", "request_id", "payload", "function_error"}` as JSON; schema in
    /// docs/json/invoke.schema.json.
    #[arg(long)]
    pub json: bool,
}

/// The event `--data` names: inline JSON, `@FILE` or `-` (stdin), checked to be JSON.
pub fn read_data(data: &str) -> Result<String> {
    let (text, origin) = if data == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::io("reading the event from standard input", e))?;
        (s, "standard input".to_string())
    } else if let Some(path) = data.strip_prefix('@') {
        let s = std::fs::read_to_string(path).map_err(|e| {
            Error::user(
                format!("--data @{path}: cannot read {path}: {e}"),
                "name a file holding the event as JSON, e.g. `--data @event.json`",
            )
        })?;
        (s, path.to_string())
    } else {
        return match serde_json::from_str::<serde_json::Value>(data) {
            Ok(_) => Ok(data.to_string()),
            Err(e) => Err(Error::user(
                format!("--data is not JSON ({e}): {data}"),
                "pass an event like --data '{\"name\": \"x\"}', or a file with --data @event.json",
            )),
        };
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(Error::user(
            format!("the event in {origin} is not JSON: {e}"),
            "the event must be one JSON value, e.g. {\"name\": \"x\"}",
        ));
    }
    Ok(text)
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let data = read_data(&args.data)?;
    let out = skyform_local::invoke(&project.dir, &stack, &args.function, data.as_bytes())
        .await
        .map_err(|e| Error::user(e.message, "check the function's name with `skyform local status`"))?;
    if args.json {
        let payload = serde_json::from_slice(&out.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&out.payload).into_owned())
        });
        crate::cli::render::print_json(&serde_json::json!({
            "function": args.function,
            "request_id": out.request_id,
            "payload": payload,
            "function_error": out.function_error,
        }));
    } else {
        println!("{}", String::from_utf8_lossy(&out.payload));
    }
    if out.function_error.is_some() {
        // Lambda's error body: {"errorType": "...", "errorMessage": "..."}.
        let body: serde_json::Value = serde_json::from_slice(&out.payload).unwrap_or_default();
        let kind = body["errorType"].as_str().unwrap_or("Unhandled");
        let message = body["errorMessage"].as_str().unwrap_or("");
        let e = Error::new(
            ErrorKind::User,
            format!("the function failed: {kind}: {message} (request id {})", out.request_id),
        )
        .with_hint(format!("see `skyform logs {}`", args.function));
        return Ok(crate::cli::report(&e));
    }
    Ok(ExitCode::SUCCESS)
}
