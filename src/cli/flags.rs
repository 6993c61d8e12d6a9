//! Flags several commands share, flattened into their `Args` (`#[command(flatten)]`), so that
//! each is declared, documented and parsed once.

/// `--target`: limit a command to some resources.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Targets {
    /// Only these resources: with `preview` and `up`, also what they depend on; with `destroy`,
    /// also whatever depends on them. Repeatable.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

/// `--clear-pending`: go on although an interrupted run left operations unresolved.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClearPending {
    /// Forget operations an interrupted run left unresolved (a create that did finish is then
    /// orphaned; `skyform refresh` resolves them instead).
    #[arg(long)]
    pub clear_pending: bool,
}

/// `--parallel N`: a count of at least 1 (0 steps at once would run nothing).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("it must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// `--yes` and `--parallel`: how a command that changes resources runs.
#[derive(clap::Args, Debug, Clone)]
pub struct Apply {
    /// Go ahead without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// How many steps may run at once (at least 1).
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    pub parallel: usize,
}

/// `--show-secrets`: print secret values in plaintext.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct ShowSecrets {
    /// Show secret values in plaintext (decrypted with the stack's key) instead of `[secret]`.
    #[arg(long)]
    pub show_secrets: bool,
}
