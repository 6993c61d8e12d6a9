//! The `core` provider as a stand-alone executable speaking the protocol on stdin/stdout.

fn main() -> std::process::ExitCode {
    skyform_provider_core::main()
}
