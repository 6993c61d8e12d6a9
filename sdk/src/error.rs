//! The errors a program can meet while it describes its resources.
//!
//! They are typed so that a test can match on them, and their `Display` says what to do next,
//! because [`run`](crate::run) prints exactly that text to stderr for the `skyform` CLI to show.

use std::fmt;

/// Something the SDK refused while building the manifest.
///
/// `run` prints it to stderr and exits with status 1; the engine then reports that the program
/// failed, quoting this message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable that `skyform` passes to programs is missing or malformed.
    Environment {
        /// The variable, e.g. `SKYFORM_STACK`.
        variable: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `require_config` asked for a key the stack's `[config]` table does not set.
    MissingConfig {
        /// The key asked for.
        key: String,
        /// The stack being deployed.
        stack: String,
    },
    /// A config value exists but does not have the type the program asked for.
    InvalidConfig {
        /// The key asked for.
        key: String,
        /// Why it could not be read as the requested type.
        reason: String,
    },
    /// A component was described in a way no target can deploy (a function without a handler,
    /// a malformed route, a table without a hash key...).
    InvalidComponent {
        /// The component's name.
        component: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The stack's target provider has no expansion for this component in this SDK version.
    UnsupportedTarget {
        /// The target, e.g. `aws`.
        target: String,
        /// The component's name.
        component: String,
        /// The component's type token, e.g. `skyform:Function`.
        component_type: String,
    },
}

impl Error {
    pub(crate) fn invalid(component: &str, reason: impl Into<String>) -> Error {
        Error::InvalidComponent { component: component.to_string(), reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Environment { variable, reason } => write!(
                f,
                "{variable} {reason}; this program is meant to be run by `skyform` (`skyform preview`), \
                 or by hand with SKYFORM_PROJECT and SKYFORM_STACK set"
            ),
            Error::MissingConfig { key, stack } => write!(
                f,
                "the config key `{key}` is required but stack `{stack}` does not set it; add \
                 `{key} = ...` to the `[config]` table of Skyform.{stack}.toml"
            ),
            Error::InvalidConfig { key, reason } => write!(f, "the config key `{key}` is invalid: {reason}"),
            Error::InvalidComponent { component, reason } => write!(f, "`{component}`: {reason}"),
            Error::UnsupportedTarget { target, component, component_type } => write!(
                f,
                "the {target} target is not supported by this SDK version yet: `{component}` \
                 ({component_type}) cannot be expanded for it; deploy this stack with the \
                 `local` provider, or upgrade skyform-sdk"
            ),
        }
    }
}

impl std::error::Error for Error {}
