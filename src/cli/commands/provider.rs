//! `skyform provider NAME`: runs a built-in provider on stdin/stdout. The engine starts these
//! itself; people do not need to.

use std::process::ExitCode;

pub fn run(name: &str) -> ExitCode {
    match name {
        "core" => skyform_provider_core::main(),
        "local" => skyform_local::provider_main(),
        "aws" => skyform_aws::provider_main(),
        other => {
            eprintln!("error: `{other}` is not a built-in provider (built in: core, local, aws)");
            ExitCode::from(2)
        }
    }
}
