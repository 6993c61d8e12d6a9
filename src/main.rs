//! The `skyform` command. All the work happens in the library; see src/cli for the commands.

#[global_allocator]
static ALLOC: skyform_local::Allocator = skyform_local::Allocator;

fn main() -> std::process::ExitCode {
    skyform::cli::main()
}
