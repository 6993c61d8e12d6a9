//! `skyform invoke FUNCTION`: call a function and print its result. On a `local` stack the
//! local cloud runs it; on an `aws` stack it is Lambda `Invoke` on the function the state
//! records under that name, signed with the stack's `[providers.aws]` settings.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, ErrorKind, Result};

/// Invoke a function with an event and print what it returned (on the local cloud, or with
/// Lambda Invoke on an `aws` stack).
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
    /// Queue the event and return at once (Lambda's `Event` invocation; `aws` stacks); the
    /// outcome is in `skyform logs FUNCTION`.
    #[arg(long = "async")]
    pub asynchronous: bool,
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

/// A function of an `aws` stack: the client for its stack, its physical name and ARN.
pub struct AwsFunction {
    pub aws: skyform_aws::http::Aws,
    pub name: String,
    pub arn: String,
}

/// The `aws:lambda:Function` that the state of an `aws` stack records under `function`;
/// `None` when the stack's provider is not `aws`.
pub fn aws_function(g: &Global, function: &str) -> Result<Option<AwsFunction>> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let file = project.load_stack(&stack)?;
    if file.provider != "aws" {
        return Ok(None);
    }
    let session = g.session(std::sync::Arc::new(crate::events::NullSink))?;
    let snap = session.export()?;
    let functions: Vec<&crate::state::ResourceState> =
        snap.resources.iter().filter(|r| r.type_ == "aws:lambda:Function" && !r.pending_delete).collect();
    let found = functions
        .iter()
        .find(|r| r.name == function)
        .and_then(|r| skyform_aws::ops::function_identity(r.outputs.sealed()));
    let Some((name, arn)) = found else {
        let names: Vec<&str> = functions.iter().map(|r| r.name.as_str()).collect();
        return Err(Error::user(
            format!("no function `{function}` is deployed in stack `{stack}`"),
            if names.is_empty() {
                "it has no functions yet; run `skyform up`".to_string()
            } else {
                format!("its functions are: {}", names.join(", "))
            },
        ));
    };
    let env = |k: &str| std::env::var(k).ok();
    let settings =
        skyform_aws::config::Settings::resolve(&file.provider_config("aws"), &env).map_err(|e| {
            Error::user(
                e.message,
                format!("fix [providers.aws] in {}", project.stack_file_path(&stack).display()),
            )
        })?;
    let aws = skyform_aws::http::Aws::new(settings).map_err(|e| Error::new(ErrorKind::Io, e))?;
    Ok(Some(AwsFunction { aws, name, arn }))
}

/// For the preview's header: "aws: region R, account A, endpoint E" when the stack's
/// provider is `aws` (`None` otherwise, or when its settings do not resolve: the provider then
/// reports that itself).
pub async fn aws_target(g: &Global) -> Option<String> {
    let project = g.project().ok()?;
    let stack = g.stack_name(&project).ok()?;
    let file = project.load_stack(&stack).ok()?;
    if file.provider != "aws" {
        return None;
    }
    let env = |k: &str| std::env::var(k).ok();
    let settings = skyform_aws::config::Settings::resolve(&file.provider_config("aws"), &env).ok()?;
    let aws = skyform_aws::http::Aws::new(settings).ok()?;
    Some(skyform_aws::ops::describe_target(&aws).await)
}

async fn invoke_aws(f: AwsFunction, args: &Args, data: &str) -> Result<ExitCode> {
    let out = skyform_aws::ops::invoke(&f.aws, &f.name, data.as_bytes(), args.asynchronous)
        .await
        .map_err(|e| {
            Error::user(
                format!("invoking {} ({}): {e}", args.function, f.arn),
                "check the AWS credentials and [providers.aws] of the stack; `skyform refresh` if it was deleted",
            )
        })?;
    if args.asynchronous {
        if args.json {
            crate::cli::render::print_json(&serde_json::json!({
                "function": args.function,
                "request_id": out.request_id,
                "payload": null,
                "function_error": null,
            }));
        } else {
            println!("queued (request id {}); see `skyform logs {}`", out.request_id, args.function);
        }
        return Ok(ExitCode::SUCCESS);
    }
    Ok(print_result(args, &out.payload, &out.request_id, out.function_error.as_deref()))
}

/// Prints what the function returned (`--json`: the documented document) and turns a
/// function error into the command's exit code.
fn print_result(args: &Args, payload: &[u8], request_id: &str, function_error: Option<&str>) -> ExitCode {
    if args.json {
        let value = serde_json::from_slice(payload)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into_owned()));
        crate::cli::render::print_json(&serde_json::json!({
            "function": args.function,
            "request_id": request_id,
            "payload": value,
            "function_error": function_error,
        }));
    } else {
        println!("{}", String::from_utf8_lossy(payload));
    }
    if function_error.is_some() {
        return function_failed(payload, request_id, &args.function);
    }
    ExitCode::SUCCESS
}

/// Lambda's error body (`{"errorType": "...", "errorMessage": "..."}`) as the command's error.
fn function_failed(payload: &[u8], request_id: &str, function: &str) -> ExitCode {
    let body: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let kind = body["errorType"].as_str().unwrap_or("Unhandled");
    let message = body["errorMessage"].as_str().unwrap_or("");
    let e = Error::new(
        ErrorKind::User,
        format!("the function failed: {kind}: {message} (request id {request_id})"),
    )
    .with_hint(format!("see `skyform logs {function}`"));
    crate::cli::report(&e)
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let data = read_data(&args.data)?;
    if let Some(f) = aws_function(g, &args.function)? {
        return invoke_aws(f, &args, &data).await;
    }
    if args.asynchronous {
        return Err(Error::user(
            "--async is for functions of `aws` stacks",
            format!("on the local cloud, run `skyform invoke {}` without it", args.function),
        ));
    }
    let out = skyform_local::invoke(&project.dir, &stack, &args.function, data.as_bytes())
        .await
        .map_err(|e| Error::user(e.message, "check the function's name with `skyform local status`"))?;
    Ok(print_result(&args, &out.payload, &out.request_id, out.function_error.as_deref()))
}
