//! What goes into a function's zip besides its folder: its dependencies, installed for Lambda.
//!
//! - Python: `requirements.txt` next to the handler (else the `[project] dependencies` of a
//!   `pyproject.toml`, read by [`skyform_build::deps::python_requirements`]) is installed with
//!   `pip install --platform manylinux2014_x86_64|manylinux2014_aarch64 --only-binary=:all:
//!   --implementation cp --python-version X.Y --target …`, so the zip holds wheels for Lambda's
//!   OS, the function's architecture and its runtime's Python version, whatever the machine
//!   running skyform is (and nothing from that machine's own site-packages).
//! - Node.js: `package.json` with `package-lock.json` is installed with `npm ci --omit=dev`.
//! - TypeScript: a handler module with a `.ts` file and no `.js` file (`app.ts` for
//!   `app.handler`) is bundled into `app.js` by the local cloud's own esbuild step
//!   ([`skyform_build::deps::bundle_typescript_with`], the same esbuild, options and
//!   dependencies), for the Node.js major version the runtime names, without a source map (its
//!   paths would point into the building machine). The bundle is cached like an install, keyed by
//!   the folder's content, the runtime and the dependencies.
//!
//! Installs are cached in `<cache>/aws-deps/<hash>/`, the hash covering the requirement or lock
//! files, the runtime and the architecture, so an unchanged set costs nothing on the next `check`
//! (the zip, and so `code_sha256`, covers the installed files). The cache is
//! `$SKYFORM_CACHE_DIR`, else `$XDG_CACHE_HOME/skyform`, else `~/.cache/skyform`. An install goes
//! to a temporary folder that is renamed into place when complete.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// The layers to zip for a function: `[deps, code]`, or `[code]` when it declares none.
/// Layers are `(folder, top-level names to leave out)`.
/// `handler` is the function's handler (`app.handler`), which names the module to bundle when
/// it is TypeScript.
pub fn layers(
    code: &Path,
    runtime: &str,
    architecture: &str,
    handler: &str,
) -> Result<Vec<(PathBuf, Vec<String>)>, String> {
    layers_in(&skyform_build::deps::cache_dir(), code, runtime, architecture, handler)
}

/// [`layers`] with the cache folder given.
pub fn layers_in(
    cache: &Path,
    code: &Path,
    runtime: &str,
    architecture: &str,
    handler: &str,
) -> Result<Vec<(PathBuf, Vec<String>)>, String> {
    if !code.is_dir() {
        return Ok(vec![(code.to_path_buf(), vec![])]);
    }
    if let Some(version) = runtime.strip_prefix("python")
        && let Some(reqs) = skyform_build::deps::python_requirements(code)?
        && !reqs.pip_args.is_empty()
    {
        let deps = python_deps(cache, code, &reqs, version, architecture)?;
        return Ok(vec![(deps, vec![]), (code.to_path_buf(), vec![])]);
    }
    if runtime.starts_with("nodejs") {
        let mut out = Vec::new();
        let mut deps = None;
        if let Ok(manifest) = std::fs::read(code.join("package.json")) {
            let parsed: serde_json::Value = serde_json::from_slice(&manifest)
                .map_err(|e| format!("package.json is not valid JSON: {e}"))?;
            if parsed["dependencies"].as_object().is_some_and(|m| !m.is_empty()) {
                let lock = std::fs::read(code.join("package-lock.json")).map_err(|_| {
                    "the function has a package.json but no package-lock.json; run `npm install` in its folder".to_string()
                })?;
                deps = Some(node_deps(cache, &manifest, &lock)?);
            }
        }
        let skip = if deps.is_some() { vec!["node_modules".to_string()] } else { vec![] };
        if let Some(d) = &deps {
            out.push((d.clone(), vec![]));
        }
        out.push((code.to_path_buf(), skip));
        let module = handler.rsplit_once('.').map(|(m, _)| m).unwrap_or(handler);
        if !module.is_empty()
            && code.join(format!("{module}.ts")).is_file()
            && !code.join(format!("{module}.js")).is_file()
        {
            out.push((typescript_bundle(cache, code, runtime, module, deps.as_deref())?, vec![]));
        }
        return Ok(out);
    }
    Ok(vec![(code.to_path_buf(), vec![])])
}

/// `<module>.ts` bundled into `<module>.js` (see the module docs), in a cached folder.
fn typescript_bundle(
    cache: &Path,
    code: &Path,
    runtime: &str,
    module: &str,
    deps: Option<&Path>,
) -> Result<PathBuf, String> {
    let Some(major) = skyform_build::deps::wanted_version(runtime) else {
        return Err(format!(
            "runtime `{runtime}` names no Node.js version; use e.g. `nodejs22.x`, so that the TypeScript handler is bundled for it"
        ));
    };
    let content = skyform_build::artifact::hash_dir(code)
        .map_err(|e| format!("cannot read the code folder {}: {e}", code.display()))?;
    let deps_key = deps.map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let k = key(&[
        b"ts-lambda-v1",
        skyform_build::deps::ESBUILD_VERSION.as_bytes(),
        major.as_bytes(),
        module.as_bytes(),
        content.as_bytes(),
        deps_key.as_bytes(),
    ]);
    cached(cache, &k, |tmp| {
        let how =
            skyform_build::deps::Bundle { cache, node_major: &major, node_modules: deps, source_map: false };
        let function = code.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        skyform_build::deps::bundle_typescript_with(code, module, &how, tmp, &function)
    })
}

fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn python_deps(
    cache: &Path,
    code: &Path,
    reqs: &skyform_build::deps::PythonRequirements,
    version: &str,
    architecture: &str,
) -> Result<PathBuf, String> {
    if !version.contains('.') {
        return Err(format!(
            "runtime `python{version}` names no Python version; use e.g. `python3.12`, so that wheels are picked for it"
        ));
    }
    let platform = match architecture {
        "arm64" => "manylinux2014_aarch64",
        _ => "manylinux2014_x86_64",
    };
    let k = key(&[b"python-lambda-v1", version.as_bytes(), platform.as_bytes(), &reqs.key]);
    cached(cache, &k, |tmp| {
        let mut cmd = skyform_build::deps::pip_install("python3");
        cmd.args(["--platform", platform, "--implementation", "cp", "--python-version", version])
            .args(["--only-binary=:all:", "--target"])
            .arg(tmp)
            .args(&reqs.pip_args)
            .current_dir(code);
        run(
            cmd,
            &format!("installing dependencies for Lambda (pip install --platform {platform} --python-version {version})"),
        )
        .map_err(|e| format!("{e}\nhint: every requirement needs a wheel for {platform} and Python {version} (pip's --only-binary=:all:); PyPI must be reachable"))
    })
}

fn node_deps(cache: &Path, manifest: &[u8], lock: &[u8]) -> Result<PathBuf, String> {
    let k = key(&[b"node-lambda-v1", manifest, lock]);
    cached(cache, &k, |tmp| {
        std::fs::write(tmp.join("package.json"), manifest).map_err(|e| e.to_string())?;
        std::fs::write(tmp.join("package-lock.json"), lock).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"]).current_dir(tmp);
        let r = run(cmd, "installing dependencies for Lambda (npm ci --omit=dev)");
        let _ = std::fs::remove_file(tmp.join("package.json"));
        let _ = std::fs::remove_file(tmp.join("package-lock.json"));
        r.map_err(|e| format!("{e}\nhint: npm needs its registry to be reachable"))
    })
}

fn cached(
    cache: &Path,
    key: &str,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let root = cache.join("aws-deps");
    let dest = root.join(key);
    if dest.join(".skyform-complete").is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = root.join(format!(".tmp-{key}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let filled = fill(&tmp)
        .and_then(|()| std::fs::write(tmp.join(".skyform-complete"), b"").map_err(|e| e.to_string()));
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dest.exists() && !dest.join(".skyform-complete").is_file() {
        let _ = std::fs::remove_dir_all(&dest);
    }
    if std::fs::rename(&tmp, &dest).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if dest.join(".skyform-complete").is_file() {
        Ok(dest)
    } else {
        Err(format!("cannot move the install into {}", dest.display()))
    }
}

/// Runs `cmd`, reporting it as progress (a `@progress` stderr line, PROTOCOL.md), and returns
/// the end of its output when it fails.
fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let id = format!("deps-{}", std::process::id());
    eprintln!("@progress {id} {what}");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let result = (|| {
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
        let stderr = child.stderr.take().expect("piped");
        let errs = std::thread::spawn(move || {
            BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>()
        });
        let mut lines: Vec<String> = Vec::new();
        for line in BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
            if !line.trim().is_empty() {
                eprintln!("@progress {id} {what}: {}", line.trim());
            }
            lines.push(line);
        }
        lines.extend(errs.join().unwrap_or_default());
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            let tail: Vec<&str> = lines.iter().rev().take(25).rev().map(String::as_str).collect();
            Err(format!("{what} failed ({status}):\n{}", tail.join("\n")))
        }
    })();
    eprintln!("@progress {id}");
    result
}
