//! skyform: infrastructure as code for serverless applications.
//!
//! The engine is the `skyform-engine` crate (`engine/`); this crate is the command-line front end
//! (`cli`). The engine's modules are re-exported so that `skyform::engine::Session` and the like
//! keep working for the CLI and the tests.

pub use skyform_engine::{
    Error, ErrorKind, Result, apply, engine, error, events, host, manifest, ops, plan, project, providers,
    secrets, state, util, value,
};

pub mod cli;
