//! skyform: infrastructure as code for serverless applications.
//!
//! The library is the engine: program → manifest → graph → plan → apply → journal → state.
//! See ARCHITECTURE.md for the bird's-eye view. The `skyform` binary (src/main.rs, src/cli)
//! is a thin layer that resolves configuration, calls into this library and renders events.

pub mod apply;
pub mod cli;
pub mod engine;
pub mod error;
pub mod events;
pub mod host;
pub mod manifest;
pub mod plan;
pub mod project;
pub mod providers;
pub mod secrets;
pub mod state;
pub mod util;
pub mod value;

pub use error::{Error, ErrorKind, Result};
