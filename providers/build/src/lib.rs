//! Function code on its way to running: the part both providers share.
//!
//! The local cloud runs a function from a content-addressed artifact ([`artifact`]) with its
//! dependencies installed next to it ([`deps`]); the aws provider zips the same code with the
//! same dependency files read the same way, installed for the Lambda platform, and bundles
//! TypeScript with the same esbuild and options. Keeping that here (and not in the local cloud's
//! crate) means the aws provider does not link the local cloud, and the two cannot drift apart
//! on what a `requirements.txt` or a `package.json` means.

pub mod artifact;
pub mod deps;

/// What a process started for a function (or an install for it) inherits from skyform: a clean
/// environment like Lambda's, plus what finding interpreters on this machine needs.
pub fn inherited_env() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for key in ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYENV_ROOT", "PYENV_VERSION", "LD_LIBRARY_PATH"] {
        if let Some(val) = std::env::var_os(key) {
            v.push((key.into(), val.to_string_lossy().into_owned()));
        }
    }
    v
}
