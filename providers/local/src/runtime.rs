//! Runtimes: which command starts a function's execution environment.
//!
//! - `python3`: `python3 bootstrap.py`, where `bootstrap.py` is skyform's own Runtime API
//!   client (`shims/bootstrap.py`, compiled into the binary). Setting `SKYFORM_PYTHON_RIC=awslambdaric`
//!   in the function's environment runs `python3 -m awslambdaric HANDLER` instead (the official
//!   client, which must be importable by that interpreter); `SKYFORM_PYTHON=/path/to/python`
//!   picks the interpreter.
//! - `nodejs`: `node bootstrap.js` (`shims/bootstrap.js`); `SKYFORM_NODE` picks the binary.
//! - `provided`: the artifact's `bootstrap` executable (e.g. a Rust binary on `lambda_runtime`).
//!
//! These `SKYFORM_*` variables are read from the function's own `environment`, never from the
//! daemon's, so a deployment means the same thing whoever started the daemon.

use std::path::{Path, PathBuf};

pub const PYTHON_SHIM: &str = include_str!("shims/bootstrap.py");
pub const NODE_SHIM: &str = include_str!("shims/bootstrap.js");

/// What the error message lists when a runtime is unknown.
pub const VALID_RUNTIMES: &str = "python3 (or python3.9 … python3.13), nodejs (or nodejs18.x, nodejs20.x, nodejs22.x), \
     provided (or provided.al2, provided.al2023)";

/// Maps a runtime name or AWS alias to the runtime the local cloud runs.
pub fn normalize(runtime: &str) -> Option<&'static str> {
    let r = runtime.trim();
    if r == "python3" || r == "python" || r.strip_prefix("python3.").is_some_and(|v| v.parse::<u32>().is_ok())
    {
        return Some("python3");
    }
    if r == "nodejs" || r == "node" {
        return Some("nodejs");
    }
    if let Some(v) = r.strip_prefix("nodejs").and_then(|v| v.strip_suffix(".x"))
        && v.parse::<u32>().is_ok()
    {
        return Some("nodejs");
    }
    if r == "provided" || r == "provided.al2" || r == "provided.al2023" {
        return Some("provided");
    }
    None
}

/// Where the shims are written (once per daemon start, named by content so that an upgraded
/// skyform never runs a stale shim).
#[derive(Debug, Clone)]
pub struct Shims {
    pub python: PathBuf,
    pub node: PathBuf,
}

impl Shims {
    pub fn install(dir: &Path) -> std::io::Result<Shims> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, ext: &str, content: &str| -> std::io::Result<PathBuf> {
            let hash = crate::artifact::hex(&<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
            let path = dir.join(format!("{name}-{}.{ext}", &hash[..12]));
            if !path.exists() {
                crate::registry::write_atomic(&path, content.as_bytes())?;
            }
            Ok(path)
        };
        Ok(Shims {
            python: write("bootstrap", "py", PYTHON_SHIM)?,
            node: write("bootstrap", "js", NODE_SHIM)?,
        })
    }
}

/// The program and arguments that start one execution environment.
pub fn command(
    runtime: &str,
    handler: &str,
    environment: &std::collections::BTreeMap<String, String>,
    artifact: &Path,
    shims: &Shims,
) -> (PathBuf, Vec<String>) {
    match runtime {
        "python3" => {
            let python =
                environment.get("SKYFORM_PYTHON").map(PathBuf::from).unwrap_or_else(|| "python3".into());
            if environment.get("SKYFORM_PYTHON_RIC").map(String::as_str) == Some("awslambdaric") {
                (python, vec!["-m".into(), "awslambdaric".into(), handler.to_string()])
            } else {
                (python, vec![shims.python.to_string_lossy().into_owned()])
            }
        }
        "nodejs" => {
            let node = environment.get("SKYFORM_NODE").map(PathBuf::from).unwrap_or_else(|| "node".into());
            (node, vec![shims.node.to_string_lossy().into_owned()])
        }
        _ => (artifact.join("bootstrap"), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalize() {
        assert_eq!(normalize("python3.12"), Some("python3"));
        assert_eq!(normalize("python3"), Some("python3"));
        assert_eq!(normalize("nodejs20.x"), Some("nodejs"));
        assert_eq!(normalize("provided.al2023"), Some("provided"));
        assert_eq!(normalize("java21"), None);
        assert_eq!(normalize("python3.x"), None);
    }
}
