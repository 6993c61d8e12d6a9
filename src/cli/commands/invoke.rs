//! `skyform invoke FUNCTION`: call a function of the local cloud and print its result.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, ErrorKind, Result};

/// Invoke a function of the local cloud with an event and print what it returned.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The function's name (its resource name).
    pub function: String,
    /// The event, as JSON.
    #[arg(long, default_value = "{}")]
    pub data: String,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    if serde_json::from_str::<serde_json::Value>(&args.data).is_err() {
        return Err(Error::user(
            format!("--data is not JSON: {}", args.data),
            "pass an event like --data '{\"name\": \"x\"}'",
        ));
    }
    let out = skyform_local::invoke(&project.dir, &stack, &args.function, args.data.as_bytes())
        .await
        .map_err(|e| Error::user(e.message, "check the function's name with `skyform local status`"))?;
    println!("{}", String::from_utf8_lossy(&out.payload));
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
