//! The `aws` provider as a standalone executable (the `skyform` binary runs the same code as
//! `skyform provider aws`); the integration tests spawn it.
fn main() -> std::process::ExitCode {
    skyform_aws::provider_main()
}
