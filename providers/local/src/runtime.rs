//! Runtimes: which command starts a function's execution environment.
//!
//! - `python3`: `python3 -I -S bootstrap.py` (isolated: no host site-packages), where `bootstrap.py` is skyform's own Runtime API
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
///
/// `interpreter` is what the provider chose for the runtime's version ([`crate::deps`]).
/// Python runs isolated (`-I -S`: no `PYTHON*` variables, no user or system site-packages),
/// so a function sees its artifact, the standard library and Lambda's runtime packages only.
pub fn command(
    runtime: &str,
    handler: &str,
    environment: &std::collections::BTreeMap<String, String>,
    artifact: &Path,
    shims: &Shims,
    interpreter: Option<&str>,
) -> (PathBuf, Vec<String>) {
    match runtime {
        "python3" => {
            let python = environment
                .get("SKYFORM_PYTHON")
                .map(String::as_str)
                .or(interpreter)
                .map(PathBuf::from)
                .unwrap_or_else(|| "python3".into());
            let python = resolve_launcher(
                &python,
                &["-c", "import sys; print(sys.executable)"],
                environment,
                artifact,
            );
            if environment.get("SKYFORM_PYTHON_RIC").map(String::as_str) == Some("awslambdaric") {
                (python, vec!["-m".into(), "awslambdaric".into(), handler.to_string()])
            } else {
                (python, vec!["-I".into(), "-S".into(), shims.python.to_string_lossy().into_owned()])
            }
        }
        "nodejs" => {
            let node = environment
                .get("SKYFORM_NODE")
                .map(String::as_str)
                .or(interpreter)
                .map(PathBuf::from)
                .unwrap_or_else(|| "node".into());
            let node = resolve_launcher(&node, &["-p", "process.execPath"], environment, artifact);
            (node, vec![shims.node.to_string_lossy().into_owned()])
        }
        _ => (artifact.join("bootstrap"), Vec::new()),
    }
}

/// Version managers' launchers (pyenv's and asdf's shims, nvm-style wrappers) are shell
/// scripts that spend 100–300 ms choosing a version before they exec the real interpreter, at
/// every start: more than the interpreter's own cold start. So when the interpreter found on
/// `PATH` is a `#!` script, ask it once which executable it runs (`query`, in the function's
/// environment and folder, as the environment would start it) and start that directly.
/// Binaries are used as they are; when the question fails, the launcher is kept.
///
/// Answers are cached per daemon by launcher, function environment and the version files in
/// the function's folder (which a launcher may read).
fn resolve_launcher(
    program: &Path,
    query: &[&str],
    environment: &std::collections::BTreeMap<String, String>,
    cwd: &Path,
) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (PathBuf, Vec<(String, String)>, Vec<(String, Vec<u8>)>);
    static CACHE: OnceLock<Mutex<HashMap<Key, PathBuf>>> = OnceLock::new();

    let Some(found) = find_on_path(program, environment) else { return program.to_path_buf() };
    let is_script = std::fs::File::open(&found)
        .and_then(|mut f| {
            let mut b = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut b).map(|_| b)
        })
        .is_ok_and(|b| &b == b"#!");
    if !is_script {
        return program.to_path_buf();
    }
    let versions = [".python-version", ".tool-versions", ".node-version", ".nvmrc"]
        .iter()
        .filter_map(|f| std::fs::read(cwd.join(f)).ok().map(|c| (f.to_string(), c)))
        .collect();
    let key = (found.clone(), environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), versions);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap().get(&key) {
        return p.clone();
    }
    let out = std::process::Command::new(&found)
        .args(query)
        .current_dir(cwd)
        .env_clear()
        .envs(crate::env::inherited_env())
        .envs(environment)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let resolved = match out {
        Ok(o) if o.status.success() => {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            if p.is_absolute() && p.is_file() { p } else { program.to_path_buf() }
        }
        _ => program.to_path_buf(),
    };
    cache.lock().unwrap().insert(key, resolved.clone());
    resolved
}

/// `program` itself when it names a path, else the first match on the `PATH` the function
/// process gets.
fn find_on_path(program: &Path, environment: &std::collections::BTreeMap<String, String>) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = environment.get("PATH").cloned().or_else(|| std::env::var("PATH").ok())?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
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

    #[test]
    fn launcher_scripts_resolve_to_what_they_run() {
        let dir = std::env::temp_dir().join(format!("skyform-launcher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("fakepython");
        std::fs::write(&script, "#!/bin/sh\necho /bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let env = std::collections::BTreeMap::new();
        assert_eq!(resolve_launcher(&script, &["-c", "x"], &env, &dir), PathBuf::from("/bin/sh"));
        // A binary is started as it is; so is a launcher that does not answer with a file.
        assert_eq!(resolve_launcher(Path::new("/bin/sh"), &[], &env, &dir), PathBuf::from("/bin/sh"));
        std::fs::write(&script, "#!/bin/sh\nexit 1\n").unwrap();
        let env2 = std::collections::BTreeMap::from([("X".to_string(), "1".to_string())]);
        assert_eq!(resolve_launcher(&script, &["-c", "x"], &env2, &dir), script);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
