//! Colour on the terminal: `--color auto|always|never` and `NO_COLOR`.
//!
//! Decided once, at start-up, per stream (stdout and stderr can go to different places: a
//! pipe and a terminal), and kept in process-wide flags so that the renderers ask a cheap
//! question (`paint(Out, GREEN, "+")`) instead of threading a palette through every function.
//! `auto` colours a stream only when it is a terminal, `TERM` is not `dumb` and `NO_COLOR` is
//! unset or empty (<https://no-color.org>); `always` and `never` override both. Machine output
//! (`--json`) is never coloured: the JSON views do not call `paint`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// `--color`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when the output is a terminal, NO_COLOR is not set and TERM is not `dumb`.
    #[default]
    Auto,
    /// Always colour (even into a pipe or a file).
    Always,
    /// Never colour.
    Never,
}

static STDOUT: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(false);

/// A stream to paint for.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Out,
    Err,
}

/// The SGR parameters of a style.
pub type Style = &'static str;
pub const GREEN: Style = "32";
pub const RED: Style = "31";
pub const YELLOW: Style = "33";
pub const MAGENTA: Style = "35";
pub const CYAN: Style = "36";
pub const BOLD: Style = "1";
pub const BOLD_RED: Style = "1;31";
pub const BOLD_YELLOW: Style = "1;33";
pub const DIM: Style = "2";

/// Decides whether each stream is coloured, from the flag and the environment the CLI read.
pub fn init(choice: ColorChoice, no_color: Option<&str>, term: Option<&str>) {
    let (out, err) =
        decide(choice, no_color, term, std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
    STDOUT.store(out, Ordering::Relaxed);
    STDERR.store(err, Ordering::Relaxed);
}

/// The rule, without IO: (colour stdout, colour stderr).
pub fn decide(
    choice: ColorChoice,
    no_color: Option<&str>,
    term: Option<&str>,
    out_tty: bool,
    err_tty: bool,
) -> (bool, bool) {
    match choice {
        ColorChoice::Always => (true, true),
        ColorChoice::Never => (false, false),
        ColorChoice::Auto => {
            let allowed = no_color.is_none_or(str::is_empty) && term != Some("dumb");
            (allowed && out_tty, allowed && err_tty)
        }
    }
}

pub fn enabled(stream: Stream) -> bool {
    match stream {
        Stream::Out => STDOUT.load(Ordering::Relaxed),
        Stream::Err => STDERR.load(Ordering::Relaxed),
    }
}

/// `text` in `style` when `stream` is coloured, else as it is.
pub fn paint(stream: Stream, style: Style, text: &str) -> String {
    if enabled(stream) && !text.is_empty() { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_string() }
}

/// The colour of a plan symbol (`+`, `~`, `-`, `+-`), padded text included.
pub fn symbol_style(symbol: &str) -> Style {
    match symbol.trim() {
        "+" => GREEN,
        "-" => RED,
        "~" => YELLOW,
        "+-" => MAGENTA,
        _ => DIM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        use ColorChoice::*;
        assert_eq!(decide(Auto, None, None, true, false), (true, false));
        assert_eq!(decide(Auto, Some("1"), None, true, true), (false, false));
        // An empty NO_COLOR does not count (no-color.org).
        assert_eq!(decide(Auto, Some(""), None, true, true), (true, true));
        assert_eq!(decide(Auto, None, Some("dumb"), true, true), (false, false));
        assert_eq!(decide(Always, Some("1"), Some("dumb"), false, false), (true, true));
        assert_eq!(decide(Never, None, None, true, true), (false, false));
    }
}
