//! A stand-in for the `skyform` binary in this crate's tests: `provider` serves the local
//! provider on stdio, `local daemon --project-dir DIR` runs the daemon.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: skyform_local::Allocator = skyform_local::Allocator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["provider"] | ["provider", "local"] => skyform_local::provider_main(),
        ["local", "daemon", "--project-dir", dir] => skyform_local::daemon_main(dir.into()),
        _ => {
            eprintln!("usage: skyform-local-dev provider | local daemon --project-dir DIR");
            ExitCode::from(2)
        }
    }
}
