//! `skyform completion SHELL`: a completion script for bash, zsh, fish or PowerShell, generated
//! by `clap_complete` from the same argument definitions that parse the command line, so it
//! never lags behind a new command or flag.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script.
///
/// bash: `skyform completion bash > ~/.local/share/bash-completion/completions/skyform`;
/// zsh: `skyform completion zsh > "${fpath[1]}/_skyform"`;
/// fish: `skyform completion fish > ~/.config/fish/completions/skyform.fish`;
/// PowerShell: `skyform completion powershell | Out-String | Invoke-Expression` (in $PROFILE).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell: bash, zsh, fish or powershell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

pub fn run(args: Args) -> crate::error::Result<ExitCode> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut cmd = crate::cli::Cli::command();
    // Rendered in memory first: clap_complete panics on a failed write (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "skyform", &mut script);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(crate::error::Error::io("writing the completion script", e)),
    }
}
