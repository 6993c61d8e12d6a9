//! Turning plans, events and results into what people read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;

use serde_json::{Value, json};
use skyform_protocol::UNKNOWN;

use crate::apply::ApplyReport;
use crate::cli::style::{self, Stream, paint};
use crate::events::{Event, EventSink};
use crate::plan::{Plan, Step, StepKind};
use crate::value;

/// Set once a command has printed its JSON document on stdout (see [`print_json`]).
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a command's `--json` document on stdout. Every `--json` view goes through here, so
/// that an error after it knows stdout already holds a document (see `cli::report`).
pub fn print_json(doc: &Value) {
    println!("{}", serde_json::to_string_pretty(doc).expect("json"));
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// For views that print JSON lines themselves (`logs --json`).
pub fn note_json_printed() {
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`print_json`] was called.
pub fn json_printed() -> bool {
    JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A plan symbol, padded to `width` and coloured for `stream`.
fn symbol(stream: Stream, sym: &str, width: usize) -> String {
    paint(stream, style::symbol_style(sym), &format!("{sym:<width$}"))
}

/// `warning: MESSAGE` on stderr.
pub fn warn(message: &str) {
    eprintln!("{} {message}", paint(Stream::Err, style::BOLD_YELLOW, "warning:"));
}

/// Renders engine events on the terminal: finished steps as lines on stdout, a live status
/// line on stderr when it is a terminal, logs with `-v`.
pub struct TerminalSink {
    pub verbose: bool,
    /// Machine-readable output requested: print nothing but logs.
    pub quiet: bool,
    pub tty: bool,
    status: Mutex<Status>,
}

#[derive(Default)]
struct Status {
    in_flight: BTreeSet<String>,
    done: usize,
    shown: bool,
}

impl TerminalSink {
    pub fn new(verbose: bool, quiet: bool) -> TerminalSink {
        TerminalSink { verbose, quiet, tty: super::stderr_is_tty(), status: Mutex::new(Status::default()) }
    }

    fn clear_status(&self, st: &mut Status) {
        if st.shown {
            eprint!("\r\x1b[2K");
            st.shown = false;
        }
    }

    fn draw_status(&self, st: &mut Status) {
        if !self.tty || self.quiet || st.in_flight.is_empty() {
            return;
        }
        let names: Vec<&str> = st.in_flight.iter().take(4).map(|s| s.as_str()).collect();
        let more = st.in_flight.len().saturating_sub(4);
        let mut line =
            format!("  … {} done, {} in progress: {}", st.done, st.in_flight.len(), names.join(", "));
        if more > 0 {
            let _ = write!(line, " and {more} more");
        }
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        st.shown = true;
    }
}

impl EventSink for TerminalSink {
    fn event(&self, event: Event) {
        if !matches!(event, Event::Progress { .. }) {
            super::progress::clear_line();
        }
        let mut st = self.status.lock().unwrap();
        match event {
            Event::Progress { id, message } => super::progress::update(id, message, self.tty, self.quiet),
            Event::ProgramStarted { command } => {
                if self.verbose {
                    self.clear_status(&mut st);
                    eprintln!("running the program: {command}");
                }
            }
            Event::ProgramLog { line } => {
                if self.verbose {
                    self.clear_status(&mut st);
                    eprintln!("[program] {line}");
                }
            }
            Event::ProviderStarted { name, version } => {
                if self.verbose {
                    self.clear_status(&mut st);
                    eprintln!("started provider {name} {version}");
                }
            }
            Event::ProviderLog { provider, line } => {
                if self.verbose {
                    self.clear_status(&mut st);
                    eprintln!("[{provider}] {line}");
                }
            }
            Event::StepStarted { name, .. } => {
                st.in_flight.insert(name);
                self.draw_status(&mut st);
            }
            Event::StepFinished { name, type_, kind, error, millis } => {
                st.in_flight.remove(&name);
                st.done += 1;
                self.clear_status(&mut st);
                if !self.quiet {
                    match error {
                        None if kind == StepKind::Same => println!("     {type_}  {name}  state updated"),
                        None => println!(
                            " {}{type_}  {name}  {} ({})",
                            symbol(Stream::Out, kind.symbol(), 3),
                            past(kind),
                            seconds(millis)
                        ),
                        Some(e) => {
                            let failed =
                                paint(Stream::Out, style::BOLD_RED, &format!("**{} failed**", kind.verb()));
                            println!(
                                " {}{type_}  {name}  {failed} {e}",
                                symbol(Stream::Out, kind.symbol(), 3)
                            )
                        }
                    }
                }
                self.draw_status(&mut st);
            }
            Event::StepSkipped { name, type_, kind, because } => {
                self.clear_status(&mut st);
                if !self.quiet {
                    println!(" {}{type_}  {name}  skipped: {because}", symbol(Stream::Out, kind.symbol(), 3));
                }
                self.draw_status(&mut st);
            }
            Event::Warning { message } => {
                self.clear_status(&mut st);
                warn(&message);
                self.draw_status(&mut st);
            }
        }
    }
}

fn past(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Same => "unchanged",
        StepKind::Create => "created",
        StepKind::Update => "updated",
        StepKind::Replace => "replaced",
        StepKind::Delete => "deleted",
    }
}

fn seconds(millis: u64) -> String {
    format!("{:.1}s", millis as f64 / 1000.0)
}

/// A value as people read it: unknowns as `(known after up)`, secrets masked as `[secret]`
/// (shown only when `reveal`: `--show-secrets`).
pub fn show(v: &Value, reveal: bool) -> String {
    if v.as_str() == Some(UNKNOWN) {
        return "(known after up)".to_string();
    }
    let masked = people(v, reveal);
    let text = serde_json::to_string(&masked).unwrap_or_default();
    let text = text.replace(&format!("\"{UNKNOWN}\""), "(known after up)");
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(119).collect::<String>())
    } else {
        text
    }
}

/// The plan as a tree of resources (components first, their resources indented).
/// What people may see of a value: secrets masked, or (`--show-secrets`) in plaintext.
pub fn people(v: &Value, reveal: bool) -> Value {
    if reveal { value::unmark(v) } else { value::mask(v) }
}

pub fn plan_text(plan: &Plan, show_diff: bool, verb: &str, reveal: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}):\n", paint(Stream::Out, style::BOLD, verb), plan.stack);
    let visible: Vec<&Step> =
        plan.steps.iter().filter(|s| s.kind != StepKind::Same || s.metadata_changed).collect();
    if visible.is_empty() {
        let _ = writeln!(out, "  no changes: the stack matches the program\n");
    } else {
        let width = visible
            .iter()
            .map(|s| s.type_.len() + 2 * depth(plan, s.parent.as_deref()))
            .max()
            .unwrap_or(4)
            .max(4);
        let nwidth = visible.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "     {:<width$}  {:<nwidth$}  Plan", "Type", "Name");
        // Components that contain a visible step, in order of appearance.
        let mut printed_components: BTreeSet<String> = BTreeSet::new();
        for s in &visible {
            if let Some(p) = &s.parent {
                for (level, c) in ancestors(plan, p).into_iter().enumerate() {
                    if printed_components.insert(c.name.clone()) {
                        let pad = "  ".repeat(level);
                        let t = format!("{pad}{}", c.type_);
                        let _ = writeln!(out, "     {t:<width$}  {}", c.name);
                    }
                }
            }
            let pad = "  ".repeat(depth(plan, s.parent.as_deref()));
            let t = format!("{pad}{}", s.type_);
            let mut line = format!(
                " {} {t:<width$}  {:<nwidth$}  {}",
                symbol(Stream::Out, s.kind.symbol(), 3),
                s.name,
                label(s)
            );
            if !s.changed.is_empty() && !show_diff {
                let props: Vec<String> = s
                    .changed
                    .iter()
                    .map(|c| if s.replaces.contains(c) { format!("+-{c}") } else { format!("~{c}") })
                    .collect();
                let _ = write!(line, "  [diff: {}]", props.join(", "));
            }
            let _ = writeln!(out, "{}", line.trim_end());
            if show_diff {
                out.push_str(&step_diff(s, reveal));
            }
        }
        out.push('\n');
    }
    if !plan.outputs.is_empty() {
        let _ = writeln!(out, "Outputs:");
        for k in plan.outputs.keys() {
            let text = match plan.output_preview.get(k) {
                Some(v) => show(v, reveal),
                None => "(known after up)".into(),
            };
            let _ = writeln!(out, "    {k}: {text}");
        }
        out.push('\n');
    }
    out.push_str(&counts_text(&plan.counts(), "to ", plan));
    out
}

fn label(s: &Step) -> String {
    let mut l = s.kind.verb().to_string();
    if s.kind == StepKind::Replace && s.delete_before_replace {
        l.push_str(" (delete first)");
    }
    if s.kind == StepKind::Delete && s.old.as_ref().map(|o| o.pending_delete).unwrap_or(false) {
        l.push_str(" (replaced earlier)");
    }
    if s.kind == StepKind::Delete && s.options.retain_on_delete {
        l.push_str(" (retain: forget only)");
    }
    if let Some(o) = &s.old
        && o.name != s.name
        && s.kind != StepKind::Delete
    {
        let _ = write!(l, " (renamed from {})", o.name);
    }
    if s.kind == StepKind::Same && s.metadata_changed {
        l = "update (state only)".into();
    }
    l
}

fn depth(plan: &Plan, parent: Option<&str>) -> usize {
    parent.map(|p| ancestors(plan, p).len()).unwrap_or(0)
}

/// The chain of components from the root down to `name`.
fn ancestors<'a>(plan: &'a Plan, name: &str) -> Vec<&'a crate::manifest::ComponentDecl> {
    let mut chain = Vec::new();
    let mut cur = Some(name.to_string());
    while let Some(n) = cur {
        match plan.components.iter().find(|c| c.name == n) {
            Some(c) if chain.len() < 16 => {
                chain.push(c);
                cur = c.parent.clone();
            }
            _ => break,
        }
    }
    chain.reverse();
    chain
}

fn step_diff(s: &Step, reveal: bool) -> String {
    let mut out = String::new();
    let pad = "         ";
    match s.kind {
        StepKind::Create => {
            if let Some(map) = s.inputs.as_object() {
                for (k, v) in map {
                    let _ = writeln!(
                        out,
                        "{pad}{} {k}: {}",
                        paint(Stream::Out, style::GREEN, "+"),
                        show(v, reveal)
                    );
                }
            }
        }
        StepKind::Update | StepKind::Replace => {
            let old = s.old.as_ref().map(|o| o.inputs.clone()).unwrap_or(Value::Null);
            for c in &s.changed {
                let before = old.get(c).cloned().unwrap_or(Value::Null);
                let after = s.inputs.get(c).cloned().unwrap_or(Value::Null);
                let sym = if s.replaces.contains(c) { "+-" } else { "~" };
                let sym = paint(Stream::Out, style::symbol_style(sym), sym);
                let _ =
                    writeln!(out, "{pad}{sym} {c}: {} => {}", show(&before, reveal), show(&after, reveal));
            }
        }
        StepKind::Delete => {
            if let Some(o) = &s.old {
                let _ = writeln!(out, "{pad}{} id: {}", paint(Stream::Out, style::RED, "-"), o.id);
            }
        }
        StepKind::Same => {}
    }
    out
}

fn counts_text(counts: &BTreeMap<StepKind, usize>, prefix: &str, plan: &Plan) -> String {
    let mut out = String::from("Resources:\n");
    let same = counts.get(&StepKind::Same).copied().unwrap_or(0);
    for (kind, n) in counts {
        if *kind == StepKind::Same {
            continue;
        }
        let _ = writeln!(out, "    {} {n} {prefix}{}", symbol(Stream::Out, kind.symbol(), 2), kind.verb());
    }
    let metadata = plan.steps.iter().filter(|s| s.kind == StepKind::Same && s.metadata_changed).count();
    if metadata > 0 {
        let _ = writeln!(out, "    {metadata} with state-only changes");
    }
    if same > 0 {
        let _ = writeln!(out, "    {same} unchanged");
    }
    if counts.is_empty() {
        let _ = writeln!(out, "    none");
    }
    out
}

/// The summary after applying.
pub fn report_text(plan: &Plan, report: &ApplyReport, millis: u64, reveal: bool) -> String {
    let mut out = String::new();
    if !report.outputs.is_empty() {
        let _ = writeln!(out, "\nOutputs:");
        for (k, v) in &report.outputs {
            let _ = writeln!(out, "    {k}: {}", show(v, reveal));
        }
    }
    let _ = writeln!(out, "\nResources:");
    for (kind, n) in &report.done {
        if *kind == StepKind::Same {
            let _ = writeln!(out, "    {n} with state-only changes");
        } else {
            let _ = writeln!(out, "    {} {n} {}", symbol(Stream::Out, kind.symbol(), 2), past(*kind));
        }
    }
    let unchanged = plan.steps.iter().filter(|s| s.kind == StepKind::Same && !s.metadata_changed).count();
    if unchanged > 0 {
        let _ = writeln!(out, "    {unchanged} unchanged");
    }
    if !report.failed.is_empty() {
        let _ = writeln!(
            out,
            "    {}",
            paint(Stream::Out, style::RED, &format!("{} failed", report.failed.len()))
        );
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "    {} skipped", report.skipped.len());
    }
    if report.not_started > 0 && report.interrupted {
        let _ = writeln!(out, "    {} not started (interrupted)", report.not_started);
    }
    let _ = writeln!(out, "\nDuration: {}", seconds(millis));
    out
}

pub fn plan_json(plan: &Plan, reveal: bool) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "type": s.type_,
                "kind": s.kind,
                "changed": s.changed,
                "replaces": s.replaces,
                "delete_before_replace": s.delete_before_replace,
                "parent": s.parent,
                "inputs": people(&s.inputs, reveal),
            })
        })
        .collect();
    let counts: BTreeMap<&str, usize> = plan.counts().into_iter().map(|(k, v)| (k.verb(), v)).collect();
    json!({"stack": plan.stack, "destroy": plan.destroy, "steps": steps, "counts": counts})
}

pub fn report_json(
    plan: &Plan,
    report: &ApplyReport,
    stats: &crate::engine::CommitStats,
    millis: u64,
    reveal: bool,
) -> Value {
    let outputs: BTreeMap<&String, Value> =
        report.outputs.iter().map(|(k, v)| (k, people(v, reveal))).collect();
    let done: BTreeMap<&str, usize> = report.done.iter().map(|(k, v)| (k.verb(), *v)).collect();
    let failed: Vec<Value> = report.failed.iter().map(|(n, e)| json!({"name": n, "error": e})).collect();
    json!({
        "stack": plan.stack,
        "result": if report.interrupted { "interrupted" } else if report.failed.is_empty() { "succeeded" } else { "failed" },
        "done": done,
        "unchanged": plan.steps.iter().filter(|s| s.kind == StepKind::Same && !s.metadata_changed).count(),
        "failed": failed,
        "skipped": report.skipped,
        "outputs": outputs,
        "journal_bytes": stats.journal_bytes,
        "state_bytes": stats.state_bytes,
        "serial": stats.serial,
        "duration_ms": millis,
    })
}
