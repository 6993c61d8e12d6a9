//! The `skyform` command. All the work happens in the library; see src/cli for the commands.

fn main() -> std::process::ExitCode {
    skyform::cli::main()
}
