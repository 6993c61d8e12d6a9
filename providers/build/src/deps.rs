//! What a function needs besides its own files: an interpreter of the version its runtime
//! names, its declared dependencies, and what Lambda's runtime itself provides.
//!
//! Lambda runs `python3.12` code with Python 3.12, a `requirements.txt` installed into the
//! package, and boto3 from the runtime; nothing else. The local cloud does the same so that what
//! runs here is what ships:
//!
//! - **Interpreters.** `python3.12` runs under `python3.12` when the machine has it (on `PATH`,
//!   or as a pyenv version), `nodejs22.x` under a `node` of major version 22. Otherwise the
//!   closest thing runs (`python3`, `node`) and the provider says so once per run ([`notice`]).
//! - **Dependencies.** `requirements.txt` next to the handler (else the PEP 621
//!   `[project] dependencies` of a `pyproject.toml`, see [`python_requirements`]) is installed
//!   with that interpreter's `pip install --target`; `package.json` with its lock file with
//!   `npm ci --omit=dev`. Each install lands in `<cache>/deps/<hash>/`, where the hash covers the
//!   files that decide the result (the requirements or the manifest and lock file) and the
//!   interpreter's version, so an unchanged set costs nothing on the next `up`. The artifact is
//!   then the dependencies overlaid with the code, and its content hash covers both.
//! - **Runtime packages.** Lambda's Python runtime ships boto3; functions whose code imports
//!   boto3 or botocore get a folder with it (installed once per Python version into
//!   `<cache>/runtime/`), put on `sys.path` after the function's own files, as on Lambda.
//!
//! The cache is `$SKYFORM_CACHE_DIR`, else `$XDG_CACHE_HOME/skyform`, else `~/.cache/skyform`.
//! Every install goes to a temporary folder first and is renamed into place, so an interrupted
//! install is never taken for a finished one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The boto3 that Lambda-like Python runtimes get locally. Pinned, so that every machine runs
/// the same one; bumping it installs a new runtime folder next to the old.
pub const BOTO3_REQUIREMENT: &str = "boto3==1.40.4";

/// The folder where installs are cached (see the module docs).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SKYFORM_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("skyform");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".cache/skyform");
    }
    std::env::temp_dir().join("skyform-cache")
}

/// `PROGRAM -m pip install`, quiet and non-interactive: the start of every install skyform runs
/// (here, and for the Lambda platform by the aws provider).
pub fn pip_install(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]);
    cmd
}

/// Reports a long-running step to the engine (a stderr line the engine turns into a progress
/// event; see PROTOCOL.md, "stderr"). `message` `None` ends it.
pub fn progress(id: &str, message: Option<&str>) {
    match message {
        Some(m) => eprintln!("@progress {id} {m}"),
        None => eprintln!("@progress {id}"),
    }
}

/// Tells the user something once per provider process (a stderr line the engine shows as a
/// warning).
pub fn notice(message: &str) {
    static SEEN: OnceLock<Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    if SEEN.get_or_init(Default::default).lock().unwrap().insert(message.to_string()) {
        eprintln!("@notice {message}");
    }
}

/// An interpreter chosen for a runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreter {
    /// What to start (a name on `PATH` or a path).
    pub program: String,
    /// Its version as the runtime names it (`3.12`, `22`).
    pub version: String,
}

/// The version a runtime name asks for: `python3.12` → `3.12`, `nodejs22.x` → `22`; `None`
/// for an unversioned name (`python3`, `nodejs`).
pub fn wanted_version(runtime: &str) -> Option<String> {
    let r = runtime.trim();
    if let Some(v) = r.strip_prefix("python").filter(|v| v.contains('.')) {
        return Some(v.to_string());
    }
    r.strip_prefix("nodejs").and_then(|v| v.strip_suffix(".x")).map(str::to_string)
}

/// Runs `program args` (the function's environment on top of the inherited one) and returns its
/// trimmed stdout when it succeeds. Cached per provider process.
fn ask(program: &str, args: &[&str], env: &BTreeMap<String, String>) -> Option<String> {
    type Key = (String, Vec<String>, Vec<(String, String)>);
    static CACHE: OnceLock<Mutex<BTreeMap<Key, Option<String>>>> = OnceLock::new();
    let key = (
        program.to_string(),
        args.iter().map(|a| a.to_string()).collect(),
        env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    );
    if let Some(v) = CACHE.get_or_init(Default::default).lock().unwrap().get(&key) {
        return v.clone();
    }
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .envs(crate::inherited_env())
        .envs(env)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    CACHE.get().unwrap().lock().unwrap().insert(key, out.clone());
    out
}

const PY_VERSION: &[&str] = &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"];

/// The Python for `runtime` (`python3.12`): `SKYFORM_PYTHON` from the function's environment
/// when set; else `python3.12` when it runs; else a pyenv-installed 3.12; else `python3`, with a
/// notice naming the version that runs instead.
pub fn python_for(runtime: &str, env: &BTreeMap<String, String>) -> Result<Interpreter, String> {
    if let Some(p) = env.get("SKYFORM_PYTHON") {
        let version = ask(p, PY_VERSION, env).ok_or_else(|| {
            format!("SKYFORM_PYTHON `{p}` does not run; point it at a Python 3 interpreter")
        })?;
        return Ok(Interpreter { program: p.clone(), version });
    }
    let wanted = wanted_version(runtime);
    if let Some(w) = &wanted {
        let name = format!("python{w}");
        if let Some(version) = ask(&name, PY_VERSION, env).filter(|v| v == w) {
            return Ok(Interpreter { program: name, version });
        }
        if let Some(p) = pyenv_python(w) {
            return Ok(Interpreter { program: p.to_string_lossy().into_owned(), version: w.clone() });
        }
    }
    let version = ask("python3", PY_VERSION, env).ok_or_else(|| {
        "no Python found: the local cloud runs Python functions with `python3` from PATH; install Python 3"
            .to_string()
    })?;
    if wanted.is_some_and(|w| w != version) {
        notice(&format!(
            "{runtime} is not installed here; the local cloud runs it with python3 (Python {version}) instead"
        ));
    }
    Ok(Interpreter { program: "python3".into(), version })
}

/// `$PYENV_ROOT/versions/<wanted>.*/bin/python<wanted>`, the newest, when pyenv has one.
fn pyenv_python(wanted: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == wanted || n.strip_prefix(wanted).is_some_and(|r| r.starts_with('.'))
        })
        .map(|e| e.path().join("bin").join(format!("python{wanted}")))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The Node.js for `runtime` (`nodejs22.x`): `SKYFORM_NODE` when set, else `node`; a notice
/// when its major version is not the one asked for.
pub fn node_for(runtime: &str, env: &BTreeMap<String, String>) -> Result<Interpreter, String> {
    let program = env.get("SKYFORM_NODE").cloned().unwrap_or_else(|| "node".into());
    let version = ask(&program, &["-p", "process.versions.node.split('.')[0]"], env).ok_or_else(|| {
        format!("`{program}` does not run: the local cloud runs Node.js functions with it; install Node.js")
    })?;
    if wanted_version(runtime).is_some_and(|w| w != version) && !env.contains_key("SKYFORM_NODE") {
        notice(&format!(
            "{runtime} is not installed here; the local cloud runs it with node (Node.js {version}) instead"
        ));
    }
    Ok(Interpreter { program, version })
}

fn sha_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    crate::artifact::hex(&h.finalize())
}

/// Runs `cmd`, showing its output lines as the progress of `id` (`what` first), and returns
/// the end of its output when it fails.
pub fn run_with_progress(mut cmd: Command, id: &str, what: &str) -> Result<(), String> {
    progress(id, Some(what));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let result = (|| {
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let err_thread = std::thread::spawn(move || {
            BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<String>>()
        });
        let mut out_lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let l = line.trim();
            if !l.is_empty() {
                progress(id, Some(&format!("{what}: {}", truncate(l, 100))));
            }
            out_lines.push(line);
        }
        let err_lines = err_thread.join().unwrap_or_default();
        let status = child.wait().map_err(|e| format!("waiting for {what}: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let all: Vec<&String> = out_lines.iter().chain(err_lines.iter()).collect();
        let tail: Vec<&str> = all.iter().rev().take(25).rev().map(|s| s.as_str()).collect();
        Err(format!("{what} failed ({status}):\n{}", tail.join("\n")))
    })();
    progress(id, None);
    result
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Fills `<cache>/<kind>/<key>/` with `fill(tmp)` unless it is there; returns its path.
///
/// Functions are deployed in parallel, and several may need the same install: one does it
/// while the others of this process wait for it (a lock per key); another process racing for
/// the same key installs into its own temporary folder, and the first rename wins.
fn cached(kind: &str, key: &str, fill: impl FnOnce(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    cached_in(&cache_dir().join(kind), key, fill)
}

fn cached_in(
    root: &Path,
    key: &str,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    static LOCKS: OnceLock<Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let lock = LOCKS.get_or_init(Default::default).lock().unwrap().entry(root.join(key)).or_default().clone();
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    let root = root.to_path_buf();
    let dest = root.join(key);
    if dest.join(".skyform-complete").is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("cannot create the cache folder {}: {e}", root.display()))?;
    let tmp = root.join(format!(".tmp-{key}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let filled = fill(&tmp).and_then(|()| {
        std::fs::write(tmp.join(".skyform-complete"), b"")
            .map_err(|e| format!("cannot write in {}: {e}", tmp.display()))
    });
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dest.exists() {
        // Another provider finished the same install first, or a stale unfinished one is there.
        if dest.join(".skyform-complete").is_file() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok(dest);
        }
        let _ = std::fs::remove_dir_all(&dest);
    }
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.join(".skyform-complete").is_file() {
            return Err(format!("cannot move the install into {}: {e}", dest.display()));
        }
    }
    Ok(dest)
}

/// A Python function's declared dependencies, as pip is given them.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonRequirements {
    /// The file they come from (`requirements.txt` or `pyproject.toml`), for messages.
    pub file: &'static str,
    /// What decides the install (the requirements file's text, or the dependency list): the
    /// cache key covers it, so editing a pyproject's description installs nothing.
    pub key: Vec<u8>,
    /// pip's arguments naming them: `-r <file>`, or the requirement strings themselves.
    pub pip_args: Vec<String>,
}

/// The build backends whose projects are their folder as it ships (pure Python: the function
/// runs the sources, nothing is compiled), so installing `[project] dependencies` is all a
/// build needs.
pub const PYPROJECT_BACKENDS: &[&str] = &[
    "setuptools.build_meta",
    "setuptools.build_meta:__legacy__",
    "hatchling.build",
    "flit_core.buildapi",
    "pdm.backend",
    "poetry.core.masonry.api",
    "uv_build",
];

/// The dependencies `code_dir` declares: `requirements.txt` when there is one, else the
/// `[project] dependencies` (PEP 621) of `pyproject.toml`; `None` when neither is there. A
/// pyproject without a `[project]` table, with dynamic dependencies, or with a build backend not
/// in [`PYPROJECT_BACKENDS`] is an error that says what to do instead.
pub fn python_requirements(code_dir: &Path) -> Result<Option<PythonRequirements>, String> {
    let req = code_dir.join("requirements.txt");
    if let Ok(text) = std::fs::read(&req) {
        let pip_args = vec!["-r".to_string(), req.to_string_lossy().into_owned()];
        return Ok(Some(PythonRequirements { file: "requirements.txt", key: text, pip_args }));
    }
    let Ok(text) = std::fs::read_to_string(code_dir.join("pyproject.toml")) else { return Ok(None) };
    let deps = pyproject_dependencies(&text)?;
    let key = format!("pyproject\0{}", deps.join("\n")).into_bytes();
    Ok(Some(PythonRequirements { file: "pyproject.toml", key, pip_args: deps }))
}

/// The `[project] dependencies` of a pyproject.toml's text (see [`python_requirements`]).
pub fn pyproject_dependencies(text: &str) -> Result<Vec<String>, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("pyproject.toml is not valid TOML: {e}\nhint: fix the file, or list the dependencies in requirements.txt instead"))?;
    let backend = doc.get("build-system").and_then(|b| b.get("build-backend")).and_then(|b| b.as_str());
    if let Some(b) = backend
        && !PYPROJECT_BACKENDS.contains(&b)
    {
        return Err(format!(
            "pyproject.toml uses the build backend `{b}`, which skyform does not run: a function's folder ships as it is, and only its [project] dependencies are installed (supported backends: {}).\nhint: build the package yourself and list it (a wheel or an index name) in requirements.txt next to the handler, which takes precedence over pyproject.toml",
            PYPROJECT_BACKENDS.join(", ")
        ));
    }
    let Some(project) = doc.get("project").and_then(|p| p.as_table()) else {
        let poetry = doc.get("tool").and_then(|t| t.get("poetry")).is_some();
        let extra = if poetry {
            " (Poetry's [tool.poetry.dependencies] are not read: Poetry 2 reads [project] too, or run `poetry export -f requirements.txt -o requirements.txt`)"
        } else {
            ""
        };
        return Err(format!(
            "pyproject.toml has no [project] table, so it declares no dependencies skyform can read{extra}.\nhint: add a PEP 621 [project] table with `dependencies = [\"...\"]`, or list them in requirements.txt next to the handler"
        ));
    };
    let dynamic = project
        .get("dynamic")
        .and_then(|d| d.as_array())
        .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("dependencies")));
    if dynamic {
        return Err("pyproject.toml marks its dependencies as dynamic (computed by the build backend), which skyform does not run.\nhint: list them in [project] `dependencies`, or in requirements.txt next to the handler".into());
    }
    match project.get("dependencies") {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(|s| s.trim().to_string()).ok_or_else(|| {
                    format!("pyproject.toml: [project] dependencies must be strings such as \"requests>=2\", not `{v}`")
                })
            })
            .collect(),
        Some(other) => Err(format!(
            "pyproject.toml: [project] dependencies must be a list of strings such as [\"requests>=2\"], not `{other}`"
        )),
    }
}

/// Installs the dependencies `code_dir` declares ([`python_requirements`]) with `python`'s pip;
/// returns the folder holding the installed packages. `function` names the function in progress
/// lines.
pub fn python_deps(code_dir: &Path, python: &Interpreter, function: &str) -> Result<Option<PathBuf>, String> {
    let reqs = python_requirements(code_dir).map_err(|e| format!("function `{function}`: {e}"))?;
    let Some(reqs) = reqs else { return Ok(None) };
    if reqs.pip_args.is_empty() {
        return Ok(None);
    }
    let key = sha_hex(&[b"python-local-v1", python.version.as_bytes(), &reqs.key]);
    let file = reqs.file;
    let path = cached("deps", &key, |tmp| {
        let mut cmd = pip_install(&python.program);
        cmd.arg("--target")
            .arg(tmp)
            .args(&reqs.pip_args)
            .current_dir(code_dir)
            .env("PIP_NO_WARN_SCRIPT_LOCATION", "1");
        let how = if file == "requirements.txt" {
            "pip install -r requirements.txt".to_string()
        } else {
            format!("pip install, from {file}")
        };
        run_with_progress(
            cmd,
            &format!("deps-{function}"),
            &format!("installing dependencies for {function} ({how})"),
        )
        .map_err(|e| {
            format!("{e}\nhint: check {file} of `{function}`; pip needs PyPI (or your index) to be reachable")
        })
    })?;
    Ok(Some(path))
}

/// Whether any Python file of the code imports boto3 or botocore (Lambda's runtime provides
/// them; see the module docs).
pub fn imports_boto3(code_dir: &Path) -> bool {
    fn visit(dir: &Path, depth: usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if depth > 0 && !name.starts_with('.') && name != "__pycache__" && visit(&p, depth - 1) {
                    return true;
                }
            } else if name.ends_with(".py")
                && let Ok(text) = std::fs::read_to_string(&p)
                && text.lines().any(|l| {
                    let l = l.trim_start();
                    (l.starts_with("import ") || l.starts_with("from "))
                        && (l.contains("boto3") || l.contains("botocore"))
                })
            {
                return true;
            }
        }
        false
    }
    visit(code_dir, 3)
}

/// The folder with what Lambda's Python runtime provides (boto3), for `python`'s version.
pub fn python_runtime_packages(python: &Interpreter) -> Result<PathBuf, String> {
    let key = format!("python{}-{}", python.version, BOTO3_REQUIREMENT.replace("==", "-"));
    cached("runtime", &key, |tmp| {
        let mut cmd = pip_install(&python.program);
        cmd.arg("--target").arg(tmp).arg(BOTO3_REQUIREMENT);
        run_with_progress(
            cmd,
            "runtime-python",
            &format!("installing Lambda's runtime packages for Python {} ({BOTO3_REQUIREMENT}, once)", python.version),
        )
        .map_err(|e| format!("{e}\nhint: Lambda's Python runtime includes boto3, so the local cloud installs it once from PyPI; make PyPI reachable, or set SKYFORM_CACHE_DIR to a cache that has it"))
    })
}

/// Installs a Node.js function's dependencies (`package.json` with `package-lock.json`:
/// `npm ci --omit=dev`); returns the folder holding `node_modules`.
pub fn node_deps(code_dir: &Path, function: &str) -> Result<Option<PathBuf>, String> {
    let Ok(manifest) = std::fs::read(code_dir.join("package.json")) else { return Ok(None) };
    let parsed: serde_json::Value = serde_json::from_slice(&manifest)
        .map_err(|e| format!("package.json of `{function}` is not valid JSON: {e}"))?;
    // A package.json without dependencies (`"type": "module"`, scripts) needs no lock file.
    let has_deps = parsed["dependencies"].as_object().is_some_and(|m| !m.is_empty());
    if !has_deps {
        return Ok(None);
    }
    let lock = std::fs::read(code_dir.join("package-lock.json")).map_err(|_| {
        format!(
            "function `{function}` has dependencies in package.json but no package-lock.json; run `npm install` in its folder to create the lock file, so that local and AWS get the same packages"
        )
    })?;
    let key = sha_hex(&[b"node-v1", &manifest, &lock]);
    let path = cached("deps", &key, |tmp| {
        std::fs::copy(code_dir.join("package.json"), tmp.join("package.json")).map_err(|e| e.to_string())?;
        std::fs::copy(code_dir.join("package-lock.json"), tmp.join("package-lock.json"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"]).current_dir(tmp);
        let r = run_with_progress(
            cmd,
            &format!("deps-{function}"),
            &format!("installing dependencies for {function} (npm ci --omit=dev)"),
        );
        let _ = std::fs::remove_file(tmp.join("package.json"));
        let _ = std::fs::remove_file(tmp.join("package-lock.json"));
        r.map_err(|e| {
            format!("{e}\nhint: npm needs its registry to be reachable; check package.json of `{function}`")
        })
    })?;
    Ok(Some(path))
}

/// esbuild, installed from npm on first use into `<cache>/tools/esbuild-<version>/`.
pub const ESBUILD_VERSION: &str = "0.25.10";

fn esbuild(cache: &Path) -> Result<PathBuf, String> {
    let dir = cached_in(&cache.join("tools"), &format!("esbuild-{ESBUILD_VERSION}"), |tmp| {
        std::fs::write(tmp.join("package.json"), br#"{"name":"skyform-esbuild","private":true}"#)
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["install", "--no-audit", "--no-fund", "--no-save"])
            .arg(format!("esbuild@{ESBUILD_VERSION}"))
            .current_dir(tmp);
        run_with_progress(cmd, "tools-esbuild", &format!("installing esbuild {ESBUILD_VERSION} from npm (once)"))
            .map_err(|e| format!("{e}\nhint: TypeScript handlers are bundled with esbuild, which skyform installs from npm once; make the npm registry reachable (or install Node.js with npm)"))
    })?;
    Ok(dir.join("node_modules/.bin/esbuild"))
}

/// How a TypeScript handler is bundled: for whom, and whether the bundle carries a source map.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    /// The folder esbuild is installed into on first use (`<cache>/tools/`).
    pub cache: &'a Path,
    /// The major version of the Node.js that runs the bundle (`22`).
    pub node_major: &'a str,
    /// The installed dependencies (a folder with `node_modules`), bundled in.
    pub node_modules: Option<&'a Path>,
    /// An inline source map, so that errors name the `.ts` file and line. The local cloud wants
    /// one; a Lambda zip does not (its paths would be relative to the machine that built it, and
    /// Lambda's Node.js reads source maps only with `--enable-source-maps`).
    pub source_map: bool,
}

/// Bundles a TypeScript handler (`<module>.ts`) into `<out>/<module>.js` (CommonJS, for the
/// node version that runs it, with a source map so that errors name the `.ts` file and line).
pub fn bundle_typescript(
    code_dir: &Path,
    module: &str,
    node: &Interpreter,
    node_modules: Option<&Path>,
    out: &Path,
    function: &str,
) -> Result<(), String> {
    let how = Bundle { cache: &cache_dir(), node_major: &node.version, node_modules, source_map: true };
    bundle_typescript_with(code_dir, module, &how, out, function)
}

/// [`bundle_typescript`] as `how` says; the `aws` provider bundles a handler for its zip with it.
pub fn bundle_typescript_with(
    code_dir: &Path,
    module: &str,
    how: &Bundle<'_>,
    out: &Path,
    function: &str,
) -> Result<(), String> {
    let esbuild = esbuild(how.cache)?;
    let mut cmd = Command::new(esbuild);
    cmd.arg(code_dir.join(format!("{module}.ts")))
        .args(["--bundle", "--platform=node", "--format=cjs", "--log-level=warning"])
        .arg(format!("--target=node{}", how.node_major))
        .arg(format!("--outfile={}", out.join(format!("{module}.js")).display()))
        .current_dir(code_dir);
    if how.source_map {
        cmd.arg("--sourcemap=inline");
    }
    if let Some(nm) = how.node_modules {
        cmd.env("NODE_PATH", nm.join("node_modules"));
    }
    run_with_progress(
        cmd,
        &format!("bundle-{function}"),
        &format!("bundling {module}.ts of {function} (esbuild)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_runtime_names() {
        assert_eq!(wanted_version("python3.12").as_deref(), Some("3.12"));
        assert_eq!(wanted_version("python3"), None);
        assert_eq!(wanted_version("nodejs22.x").as_deref(), Some("22"));
        assert_eq!(wanted_version("nodejs"), None);
    }

    /// Regression: three functions needing the same install at once (one provider process)
    /// shared one temporary folder and failed with "No such file or directory".
    #[test]
    fn concurrent_installs_of_one_key_install_once() {
        let root = std::env::temp_dir().join(format!("skyform-cached-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fills = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (root, fills) = (root.clone(), fills.clone());
                std::thread::spawn(move || {
                    cached_in(&root, "k", |tmp| {
                        fills.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        std::fs::write(tmp.join("pkg.py"), "x").map_err(|e| e.to_string())
                    })
                })
            })
            .collect();
        for t in threads {
            let dir = t.join().unwrap().unwrap();
            assert!(dir.join("pkg.py").is_file());
        }
        assert_eq!(fills.load(std::sync::atomic::Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn pyproject_dependencies_are_read_and_bad_ones_say_what_to_do() {
        let ok = "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\n[project]\nname = \"f\"\nversion = \"1\"\ndependencies = [\"idna==3.10\", \" requests>=2 ; python_version >= '3.8' \"]\n";
        assert_eq!(
            pyproject_dependencies(ok).unwrap(),
            ["idna==3.10", "requests>=2 ; python_version >= '3.8'"]
        );
        assert_eq!(pyproject_dependencies("[project]\nname = \"f\"\n").unwrap(), Vec::<String>::new());
        let poetry = "[tool.poetry.dependencies]\npython = \"^3.12\"\nidna = \"3.10\"\n";
        let e = pyproject_dependencies(poetry).unwrap_err();
        assert!(
            e.contains("no [project] table") && e.contains("poetry export") && e.contains("requirements.txt"),
            "{e}"
        );
        let maturin =
            "[build-system]\nbuild-backend = \"maturin\"\n[project]\nname = \"f\"\ndependencies = []\n";
        let e = pyproject_dependencies(maturin).unwrap_err();
        assert!(
            e.contains("`maturin`") && e.contains("hatchling.build") && e.contains("requirements.txt"),
            "{e}"
        );
        let dynamic = "[project]\nname = \"f\"\ndynamic = [\"dependencies\"]\n";
        assert!(pyproject_dependencies(dynamic).unwrap_err().contains("dynamic"));
        assert!(pyproject_dependencies("[project\n").unwrap_err().contains("not valid TOML"));
        assert!(
            pyproject_dependencies("[project]\ndependencies = \"idna\"\n")
                .unwrap_err()
                .contains("list of strings")
        );
    }

    #[test]
    fn requirements_txt_takes_precedence_and_the_key_ignores_other_pyproject_fields() {
        let dir = std::env::temp_dir().join(format!("skyform-pyproject-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(python_requirements(&dir).unwrap(), None);
        std::fs::write(
            dir.join("pyproject.toml"),
            "[project]\nname = \"a\"\ndependencies = [\"idna==3.10\"]\n",
        )
        .unwrap();
        let a = python_requirements(&dir).unwrap().unwrap();
        assert_eq!((a.file, a.pip_args.clone()), ("pyproject.toml", vec!["idna==3.10".to_string()]));
        std::fs::write(
            dir.join("pyproject.toml"),
            "[project]\nname = \"b\"\ndescription = \"x\"\ndependencies = [\"idna==3.10\"]\n",
        )
        .unwrap();
        assert_eq!(python_requirements(&dir).unwrap().unwrap().key, a.key);
        std::fs::write(dir.join("requirements.txt"), "idna==3.9\n").unwrap();
        assert_eq!(python_requirements(&dir).unwrap().unwrap().file, "requirements.txt");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn boto3_imports_are_found() {
        let dir = std::env::temp_dir().join(format!("skyform-deps-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("app.py"), "import json\n").unwrap();
        assert!(!imports_boto3(&dir));
        std::fs::write(dir.join("pkg/x.py"), "from botocore.config import Config\n").unwrap();
        assert!(imports_boto3(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
