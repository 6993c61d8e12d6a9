//! skyform-engine: the engine of skyform, as a library.
//!
//! program → manifest → graph → plan → apply → journal → state. See ARCHITECTURE.md for the
//! bird's-eye view. The `skyform` binary (src/main.rs, src/cli) is a thin layer that resolves
//! configuration, calls into this library and renders events.
//!
//! **Architecture Invariant:** this crate never prints and never reads the process environment
//! (enforced by the lints below and `clippy.toml`'s `disallowed-methods`); it reaches providers
//! only through the protocol, and depends on no CLI or terminal crate.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

pub mod apply;
pub mod engine;
pub mod error;
pub mod events;
pub mod host;
pub mod manifest;
pub mod ops;
pub mod plan;
pub mod project;
pub mod providers;
pub mod secrets;
pub mod state;
pub mod util;
pub mod value;

pub use error::{Error, ErrorKind, Result};
