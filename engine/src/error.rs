//! The engine's errors. Each carries what went wrong and, where we know it, what to do next;
//! the CLI prints both and maps the kind to an exit code.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: a project file, a program, a manifest, a flag.
    User,
    /// Reading or writing files.
    Io,
    /// A provider answered a request with an error.
    Provider,
    /// A provider crashed, hung or broke the protocol: what it did is unknown.
    ProviderBroken,
    /// Another command holds the stack's lock.
    Locked,
    /// An earlier run was interrupted; its operations must be resolved first.
    Pending,
    /// A saved plan no longer matches the state.
    StalePlan,
    /// Some steps failed during apply (the state records what happened).
    StepsFailed,
    /// Ctrl-C.
    Interrupted,
    /// The state file is not one this binary can read.
    State,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
    /// The provider's error code, when a provider answered with an error.
    pub provider_code: Option<skyform_protocol::ErrorCode>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), hint: None, provider_code: None }
    }
    pub fn user(message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error { kind: ErrorKind::User, message: message.into(), hint: Some(hint.into()), provider_code: None }
    }
    pub fn io(context: impl Into<String>, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{}: {e}", context.into()))
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
