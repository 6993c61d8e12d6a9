//! What the engine tells the outside world while it works.
//!
//! **Architecture Invariant:** the library never prints. It reports typed events to an
//! [`EventSink`]; the CLI renders them as text, a live progress display or JSON.

use std::sync::Arc;

use crate::plan::StepKind;

#[derive(Debug, Clone)]
pub enum Event {
    /// The program is being run to produce the manifest.
    ProgramStarted {
        command: String,
    },
    /// A line the program wrote on stderr.
    ProgramLog {
        line: String,
    },
    ProviderStarted {
        name: String,
        version: String,
    },
    /// A line a provider wrote on stderr (also kept in `.skyform/logs/NAME.log`).
    ProviderLog {
        provider: String,
        line: String,
    },
    StepStarted {
        name: String,
        type_: String,
        kind: StepKind,
    },
    StepFinished {
        name: String,
        type_: String,
        kind: StepKind,
        error: Option<String>,
        millis: u64,
    },
    /// A step that did not run because something it depends on failed.
    StepSkipped {
        name: String,
        type_: String,
        kind: StepKind,
        because: String,
    },
    Warning {
        message: String,
    },
    /// Something that may take a while: the program compiling and running, a provider building
    /// a function or installing its dependencies. `message` is the latest word on it (a tool's
    /// own progress, e.g. cargo's "Compiling serde"); `None` ends it. Ids are unique among the
    /// running activities (`program`, `PROVIDER/ID`).
    Progress {
        id: String,
        message: Option<String>,
    },
}

pub trait EventSink: Send + Sync {
    fn event(&self, event: Event);
}

/// Discards everything.
pub struct NullSink;

impl EventSink for NullSink {
    fn event(&self, _event: Event) {}
}

pub type Sink = Arc<dyn EventSink>;
