//! Signs of life for long waits: the program compiling, a function building, dependencies
//! installing ([`crate::events::Event::Progress`]).
//!
//! Nothing is shown for an activity that ends within a second, so quick commands print what
//! they always printed. Past a second, on a terminal, a live line on stderr says what is
//! running, for how long, and the tool's latest word ("compiling the program: Compiling serde
//! v1.0 (12 s)"); off a terminal (CI logs, pipes), one plain line per activity starting with
//! `… `, so that a log shows what the time went to.
//!
//! A ticker thread draws the line four times a second; the terminal renderer calls
//! [`clear_line`] before it prints, so a live line never runs into a result line.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an activity runs before it is shown.
const QUIET_FOR: Duration = Duration::from_secs(1);

struct Activity {
    message: String,
    started: Instant,
    announced: bool,
}

#[derive(Default)]
struct State {
    activities: BTreeMap<String, Activity>,
    drawn: bool,
    ticker: bool,
    tty: bool,
    quiet: bool,
    frame: usize,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// Starts, updates (`Some`) or ends (`None`) the activity `id`.
pub fn update(id: String, message: Option<String>, tty: bool, quiet: bool) {
    let mut st = state().lock().unwrap();
    st.tty = tty;
    st.quiet = quiet;
    match message {
        Some(m) => {
            let a = st.activities.entry(id).or_insert(Activity {
                message: String::new(),
                started: Instant::now(),
                announced: false,
            });
            a.message = m;
        }
        None => {
            st.activities.remove(&id);
            if st.activities.is_empty() {
                erase(&mut st);
            }
        }
    }
    if !st.ticker && !st.quiet {
        st.ticker = true;
        std::thread::spawn(ticker);
    }
}

/// Erases the live line (the next tick draws it again).
pub fn clear_line() {
    erase(&mut state().lock().unwrap());
}

fn erase(st: &mut State) {
    if st.drawn {
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
        st.drawn = false;
    }
}

fn ticker() {
    const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let mut st = state().lock().unwrap();
        let now = Instant::now();
        let due: Vec<String> = st
            .activities
            .iter()
            .filter(|(_, a)| now - a.started >= QUIET_FOR)
            .map(|(k, _)| k.clone())
            .collect();
        if st.tty {
            // The oldest activity is the one being waited for.
            let Some(a) = due.iter().filter_map(|k| st.activities.get(k)).min_by_key(|a| a.started) else {
                continue;
            };
            let more = due.len() - 1;
            let mut line = format!(
                "{} {} ({} s)",
                SPINNER[st.frame % 4],
                shorten(&a.message, 100),
                (now - a.started).as_secs()
            );
            if more > 0 {
                line.push_str(&format!(" and {more} more"));
            }
            st.frame += 1;
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            st.drawn = true;
        } else {
            for k in due {
                if let Some(a) = st.activities.get_mut(&k)
                    && !a.announced
                {
                    a.announced = true;
                    eprintln!("… {}", a.message);
                }
            }
        }
    }
}

fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_shortened_on_a_char_boundary() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}
