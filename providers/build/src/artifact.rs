//! Function code as immutable, content-addressed artifacts.
//!
//! A function's code is copied into `.skyform/local/artifacts/<hash>/`, where the hash covers
//! every file's relative path, exec bit and content, in sorted order. Running processes read
//! only from the artifact, so editing the project's files never changes a deployed function
//! behind skyform's back, and an unchanged tree hashes the same (no diff, no update).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Folders that runtimes write on their own and that are not part of the code.
const SKIPPED_DIRS: &[&str] = &["__pycache__"];

/// One file of a code tree: its path relative to the root (with `/`), and whether it is
/// executable.
struct Entry {
    rel: String,
    path: PathBuf,
    exec: bool,
}

fn walk(root: &Path) -> std::io::Result<Vec<Entry>> {
    walk_skipping(root, &[])
}

/// [`walk`], also skipping entries named in `skip` at any depth (a code folder's own
/// `node_modules` when the dependencies are installed from the lock file); `.*` skips every
/// hidden entry.
fn walk_skipping(root: &Path, skip: &[&str]) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for item in std::fs::read_dir(&dir)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            // Follow symlinks: the artifact holds what the link points to.
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => continue, // a dangling link is not code
            };
            if skip.contains(&name.as_str()) || (name.starts_with('.') && skip.contains(&".*")) {
                continue;
            }
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if meta.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    stack.push((path, rel));
                }
            } else if meta.is_file() {
                out.push(Entry { rel, path, exec: meta.permissions().mode() & 0o111 != 0 });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// The content hash of a code tree (hex sha256).
pub fn hash_dir(root: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for e in walk(root)? {
        h.update(b"file\0");
        h.update(e.rel.as_bytes());
        h.update([0, e.exec as u8]);
        let mut f = std::fs::File::open(&e.path)?;
        let len = f.metadata()?.len();
        h.update(len.to_le_bytes());
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn temp_dir(artifacts: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    artifacts.join(format!(".tmp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

/// Moves a filled temp folder to its content-addressed place; returns the hash.
fn seal(artifacts: &Path, tmp: &Path) -> std::io::Result<String> {
    let hash = hash_dir(tmp)?;
    let dest = artifacts.join(&hash);
    if dest.exists() {
        std::fs::remove_dir_all(tmp)?;
    } else if let Err(e) = std::fs::rename(tmp, &dest) {
        // Another provider sealed the same content first.
        let _ = std::fs::remove_dir_all(tmp);
        if !dest.exists() {
            return Err(e);
        }
    }
    Ok(hash)
}

/// Copies `code_dir` into the artifact store; returns the hash (the artifact's folder name).
pub fn store_dir(artifacts: &Path, code_dir: &Path) -> std::io::Result<String> {
    store(artifacts, &[(code_dir, Vec::new())])
}

/// Copies several folders into one artifact, later ones over earlier ones (dependencies
/// first, then the code, so the code wins a name clash); each layer names the top-level
/// entries to leave out of it. Returns the hash, which covers every layer's files.
pub fn store_layers(artifacts: &Path, layers: &[(&Path, &[&str])]) -> std::io::Result<String> {
    // An install's completion marker is not part of what it installed.
    let layers: Vec<(&Path, Vec<&str>)> = layers
        .iter()
        .map(|(layer, skip)| (*layer, skip.iter().copied().chain([".skyform-complete"]).collect()))
        .collect();
    store(artifacts, &layers)
}

/// Copies the layers, each without the entries it names, into a temporary folder and seals it.
fn store(artifacts: &Path, layers: &[(&Path, Vec<&str>)]) -> std::io::Result<String> {
    std::fs::create_dir_all(artifacts)?;
    let tmp = temp_dir(artifacts);
    let result = (|| {
        std::fs::create_dir_all(&tmp)?;
        for (layer, skip) in layers {
            for e in walk_skipping(layer, skip)? {
                let dest = tmp.join(&e.rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if dest.exists() {
                    std::fs::remove_file(&dest)?;
                }
                std::fs::copy(&e.path, &dest)?;
                let mode = if e.exec { 0o555 } else { 0o444 };
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
            }
        }
        seal(artifacts, &tmp)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Stores a single executable as `bootstrap` (the `provided` runtime's entry point).
pub fn store_bootstrap(artifacts: &Path, exe: &Path) -> std::io::Result<String> {
    std::fs::create_dir_all(artifacts)?;
    let tmp = temp_dir(artifacts);
    let result = (|| {
        std::fs::create_dir_all(&tmp)?;
        let dest = tmp.join("bootstrap");
        std::fs::copy(exe, &dest)?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o555))?;
        seal(artifacts, &tmp)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Runs `cargo build --release -p PKG` and returns the path of the package's binary.
/// `manifest` (a `Cargo.toml`) is used when given, else cargo runs in `project_dir`.
///
/// The build goes to the project's one shared target folder, `.skyform/build/target` (or
/// `$CARGO_TARGET_DIR`), which the `aws` target's build uses too. Cargo's own progress
/// ("Compiling serde v1.0") is reported as the progress of `function`.
pub fn cargo_build(
    project_dir: &Path,
    package: &str,
    manifest: Option<&Path>,
    function: &str,
) -> Result<PathBuf, String> {
    use std::io::BufRead;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_dir)
        .args(["build", "--release", "--message-format=json-render-diagnostics", "-p", package])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(m) = manifest {
        cmd.arg("--manifest-path").arg(m);
    }
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.arg("--target-dir").arg(project_dir.join(SHARED_TARGET_DIR));
    }
    let id = format!("build-{function}");
    let what = format!("building function {function} (cargo build --release -p {package})");
    crate::deps::progress(&id, Some(&what));
    let run = (|| {
        let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo to build `{package}`: {e}"))?;
        let stderr = child.stderr.take().expect("piped");
        let (id2, what2) = (id.clone(), what.clone());
        let errs = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let t = line.trim_start();
                if t.starts_with("Compiling ") || t.starts_with("Building ") {
                    crate::deps::progress(&id2, Some(&format!("{what2}: {t}")));
                }
                lines.push(line);
            }
            lines
        });
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
            .map_err(|e| e.to_string())?;
        let errs = errs.join().unwrap_or_default();
        let status = child.wait().map_err(|e| e.to_string())?;
        Ok::<_, String>((status, stdout, errs))
    })();
    crate::deps::progress(&id, None);
    let (status, stdout, errs) = run?;
    if !status.success() {
        // The first error is what to fix; the end says how cargo stopped.
        let first = errs.iter().position(|l| l.starts_with("error"));
        let mut shown: Vec<&str> = match first {
            Some(i) => errs[i..].iter().take(30).map(String::as_str).collect(),
            None => errs.iter().rev().take(30).rev().map(String::as_str).collect(),
        };
        if shown.is_empty() {
            shown.push("(cargo printed nothing)");
        }
        return Err(format!("`cargo build --release -p {package}` failed ({status}):\n{}", shown.join("\n")));
    }
    let mut exes = Vec::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else { continue };
        let name = msg["target"]["name"].as_str().unwrap_or_default().to_string();
        exes.push((name, PathBuf::from(exe)));
    }
    let pick = exes
        .iter()
        .find(|(n, _)| n == "bootstrap")
        .or_else(|| {
            exes.iter().find(|(n, _)| n == package || n.replace('-', "_") == package.replace('-', "_"))
        })
        .or(exes.last());
    pick.map(|(_, p)| p.clone()).ok_or_else(|| {
        format!("`cargo build -p {package}` produced no binary; the package needs a `[[bin]]` target")
    })
}

/// The cargo target folder shared by the `local` and `aws` builds of a project's functions.
pub const SHARED_TARGET_DIR: &str = ".skyform/build/target";

/// What decides a Rust function's binary, hashed without building it (so `preview` compiles
/// nothing): the files of the package's folder (`manifest`'s, else the project's), without
/// `target/` and hidden folders, and the `Cargo.lock` that pins its dependencies.
pub fn hash_cargo_sources(project_dir: &Path, manifest: Option<&Path>) -> std::io::Result<String> {
    let dir = manifest.and_then(Path::parent).unwrap_or(project_dir);
    let mut h = Sha256::new();
    h.update(b"cargo-sources-v1\0");
    for e in walk_skipping(dir, &["target", "state", "node_modules", ".*"])? {
        h.update(e.rel.as_bytes());
        h.update([0]);
        h.update(std::fs::read(&e.path)?);
        h.update([0]);
    }
    // The lock file of the workspace the package builds in (its own, else the project's).
    for lock in [dir.join("Cargo.lock"), project_dir.join("Cargo.lock")] {
        if let Ok(bytes) = std::fs::read(&lock) {
            h.update(b"lock\0");
            h.update(bytes);
            break;
        }
    }
    Ok(hex(&h.finalize()))
}

/// Finds the `Cargo.toml` of package `package` under `root` (a few levels deep, skipping
/// `target`, hidden folders and `node_modules`), so that a function's crate builds whether or
/// not it is a member of the project's workspace.
pub fn find_package_manifest(root: &Path, package: &str) -> Option<PathBuf> {
    fn visit(dir: &Path, package: &str, depth: usize) -> Option<PathBuf> {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && declares_package(&text, package)
        {
            return Some(manifest);
        }
        if depth == 0 {
            return None;
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !(n.starts_with('.') || n == "target" || n == "node_modules")
            })
            .map(|e| e.path())
            .collect();
        subdirs.sort();
        subdirs.into_iter().find_map(|d| visit(&d, package, depth - 1))
    }
    visit(root, package, 4)
}

/// Whether a manifest's `[package]` table has `name = "package"`.
fn declares_package(manifest: &str, package: &str) -> bool {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "name"
        {
            return v.trim().trim_matches(|c| c == '"' || c == '\'') == package;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_paths_contents_and_exec_bits() {
        let dir = std::env::temp_dir().join(format!("skyform-artifact-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.py"), "x").unwrap();
        std::fs::write(dir.join("sub/b.py"), "y").unwrap();
        let h1 = hash_dir(&dir).unwrap();
        std::fs::create_dir_all(dir.join("__pycache__")).unwrap();
        std::fs::write(dir.join("__pycache__/a.pyc"), "junk").unwrap();
        assert_eq!(hash_dir(&dir).unwrap(), h1, "__pycache__ is not code");
        std::fs::set_permissions(dir.join("a.py"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let h2 = hash_dir(&dir).unwrap();
        assert_ne!(h1, h2);
        std::fs::rename(dir.join("sub/b.py"), dir.join("sub/c.py")).unwrap();
        assert_ne!(hash_dir(&dir).unwrap(), h2);
        let artifacts = dir.join("store");
        let stored = store_dir(&artifacts, &dir.join("sub")).unwrap();
        assert_eq!(stored, hash_dir(&dir.join("sub")).unwrap());
        assert!(artifacts.join(&stored).join("c.py").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_package_manifests() {
        assert!(declares_package("[package]\nname = \"hello\"\n", "hello"));
        assert!(!declares_package("[dependencies]\nname = \"hello\"\n", "hello"));
        assert!(!declares_package("[package]\nname = \"other\"\n", "hello"));
    }
}
