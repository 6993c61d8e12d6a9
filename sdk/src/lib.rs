//! Write skyform infrastructure programs in Rust.
//!
//! A skyform program is an ordinary Rust binary that *describes* the resources of a stack
//! (functions, HTTP APIs, queues, buckets...) and prints that description, the **manifest**, as
//! JSON on stdout. `skyform preview` and `skyform up` compile and run it, then diff the manifest
//! against the stack's state and deploy the difference. The program never talks to a cloud
//! itself, which is why this crate depends on nothing but serde and serde_json and a program
//! compiles in seconds.
//!
//! ```no_run
//! use skyform_sdk::{Function, HttpApi, Runtime};
//!
//! fn main() {
//!     skyform_sdk::run(|ctx| {
//!         let hello = ctx.add(
//!             Function::new("hello")
//!                 .code("functions/hello")
//!                 .handler("app.handler")
//!                 .runtime(Runtime::Python3),
//!         )?;
//!         let api = ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello))?;
//!         ctx.export("url", api.url());
//!         Ok(())
//!     })
//! }
//! ```
//!
//! The pieces, one module per noun:
//!
//! - [`Program`] (the `ctx` above): the stack being deployed, its config, and the record of
//!   everything declared. [`run`] builds one from the environment `skyform` sets.
//! - Components ([`Function`], [`HttpApi`], [`Queue`], [`Topic`], [`Bucket`], [`Schedule`],
//!   [`Table`]): what a serverless app is made of, independent of the cloud. Each expands into
//!   the resources of the stack's [`Target`] (`local.rs`, `aws.rs`); `COMPONENTS.md` lists them.
//! - [`Program::resource`] declares a resource of any provider type: the escape hatch.
//!   [`core`] has typed resources of the `core` provider.
//! - [`Ref`], [`interpolate!`], [`concat()`] and [`secret`]: values known only at apply time.
//! - [`ResourceOptions`]: lifecycle options (`protect`, `depends_on`, `aliases`...).
//!
//! Print diagnostics with `eprintln!`: stdout carries the manifest.
//!
//! The manifest format is versioned and documented in `MANIFEST.md` beside this crate, with a
//! JSON Schema in `manifest.schema.json`.

pub mod bucket;
pub mod component;
pub mod core;
mod error;
pub mod function;
pub mod http_api;
mod manifest;
pub mod options;
pub mod program;
pub mod queue;
pub mod reference;
pub mod resource;
pub mod schedule;
pub mod table;
pub mod topic;

mod aws;
mod local;

pub use bucket::{Bucket, BucketHandle, Notification, ObjectEvent};
pub use component::{Component, ComponentRef};
pub use error::Error;
pub use function::{Architecture, Function, FunctionHandle, Runtime};
pub use http_api::{HttpApi, HttpApiHandle};
pub use manifest::MANIFEST_VERSION;
pub use options::{Dependency, Named, ResourceOptions};
pub use program::{Program, Target};
pub use queue::{Queue, QueueHandle, QueueTrigger, Subscription};
pub use reference::{Concat, Part, Ref, Secret, concat, secret};
pub use resource::{Resource, ResourceType};
pub use schedule::{Schedule, ScheduleHandle};
pub use table::{KeyType, Table, TableHandle};
pub use topic::{QueueDelivery, Topic, TopicHandle};

/// The error type of a program's closure: any error converts into it with `?` (including the
/// SDK's own [`Error`], `std::io::Error`, and plain `String`s and `&str`s).
pub type ProgramError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs a program: reads its context from the environment (see [`Program::from_env`]), calls
/// `program`, and prints the manifest as JSON on stdout.
///
/// On any error (a missing environment variable, an invalid component, an error returned by the
/// closure) it prints `error: ...` to stderr and exits with status 1, printing nothing on stdout,
/// so the engine never reads half a manifest.
pub fn run<F>(program: F)
where
    F: FnOnce(&Program) -> Result<(), ProgramError>,
{
    match build(Program::from_env(), program) {
        Ok(json) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{json}").and_then(|()| stdout.flush()).is_err() {
                // The reader went away (e.g. `skyform` was interrupted); nothing left to tell it.
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The testable half of [`run`]: the manifest JSON, or the error to report.
fn build<F>(ctx: Result<Program, Error>, program: F) -> Result<String, ProgramError>
where
    F: FnOnce(&Program) -> Result<(), ProgramError>,
{
    let ctx = ctx?;
    program(&ctx)?;
    Ok(ctx.to_json())
}

#[cfg(test)]
mod tests;

/// Compiles the Rust examples of the documents beside the crate as doctests.
#[cfg(doctest)]
#[doc = include_str!("../MANIFEST.md")]
pub struct ManifestDoc;

#[cfg(doctest)]
#[doc = include_str!("../COMPONENTS.md")]
pub struct ComponentsDoc;
