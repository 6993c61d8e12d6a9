//! The SDK that matches this binary, on the user's machine.
//!
//! A project's program depends on `skyform-sdk`, which is not on crates.io. The binary carries
//! the SDK's sources (embedded by `build.rs`) and unpacks them once into
//! `$XDG_DATA_HOME/skyform/sdk/<version>-<hash>/` (else `~/.local/share/skyform/sdk/...`):
//! `skyform new` points new projects there, and nothing of the clone skyform was built from is
//! needed after `cargo install`. The folder is named by the sources' hash, so it is never
//! changed once written: a newer skyform unpacks beside it, and projects made by an older one
//! keep building. It is written to a temporary folder and renamed into place, so a crash or a
//! second skyform at the same moment never leaves half an SDK.
//!
//! A project copied out of skyform's `examples/` names the SDK by a relative path
//! (`path = "../../sdk"`) that no longer exists where it was copied: [`repair_project`] points
//! such a broken path at this SDK, and says so.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// `$XDG_DATA_HOME/skyform`, else `$HOME/.local/share/skyform`.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty() && Path::new(d).is_absolute())
    {
        return Ok(PathBuf::from(d).join("skyform"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/skyform")),
        None => Err(Error::user(
            "cannot find a folder for skyform's SDK: neither XDG_DATA_HOME nor HOME is set",
            "set HOME (or XDG_DATA_HOME) and run the command again",
        )),
    }
}

/// The SDK folder of this binary, unpacked if it is not there yet.
pub fn ensure() -> Result<PathBuf> {
    let parent = data_dir()?.join("sdk");
    let dir = parent.join(format!("{}-{SDK_HASH}", env!("CARGO_PKG_VERSION")));
    if dir.join("Cargo.toml").is_file() {
        return Ok(dir);
    }
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} (unpacking skyform's SDK)"), e);
    std::fs::create_dir_all(&parent).map_err(|e| io(&format!("creating {}", parent.display()), e))?;
    let tmp = parent.join(format!(".tmp-{}-{}", std::process::id(), SDK_HASH));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, bytes) in SDK_FILES {
        let path = tmp.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| io(&format!("creating {}", p.display()), e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io(&format!("writing {}", path.display()), e))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another skyform unpacked it first: the same sources, keep theirs.
        Err(_) if dir.join("Cargo.toml").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(io(&format!("renaming {} to {}", tmp.display(), dir.display()), e))
        }
    }
}

/// When the project's `Cargo.toml` names `skyform-sdk` by a path that does not exist (an
/// example copied out of the repository), points it at [`ensure`]'s folder and tells the
/// user. Anything else (a path that exists, another form of dependency) is left alone.
pub fn repair_project(project_dir: &Path) -> Result<()> {
    let manifest = project_dir.join("Cargo.toml");
    let Ok(text) = std::fs::read_to_string(&manifest) else { return Ok(()) };
    let Some((start, end, old)) = broken_sdk_path(&text, project_dir) else { return Ok(()) };
    let sdk = ensure()?;
    let new_path = sdk.display().to_string();
    let mut fixed = String::with_capacity(text.len() + new_path.len());
    fixed.push_str(&text[..start]);
    fixed.push_str(&toml_basic_string(&new_path));
    fixed.push_str(&text[end..]);
    let tmp = manifest.with_extension("toml.skyform-tmp");
    std::fs::write(&tmp, fixed)
        .and_then(|()| std::fs::rename(&tmp, &manifest))
        .map_err(|e| Error::io(format!("updating {}", manifest.display()), e))?;
    eprintln!(
        "note: Cargo.toml named skyform-sdk at `{old}`, which does not exist (a project copied out of \
         skyform's examples?); it now uses the SDK of this skyform, {new_path}"
    );
    Ok(())
}

/// The byte range of the quoted path in `skyform-sdk = { path = "..." }` (or in a
/// `[dependencies.skyform-sdk]` table's `path = "..."` line) when that path does not exist
/// relative to `project_dir`, and the path.
fn broken_sdk_path(text: &str, project_dir: &Path) -> Option<(usize, usize, String)> {
    let mut offset = 0;
    let mut in_sdk_table = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_sdk_table = trimmed.trim_end().trim_end_matches(']').trim_start_matches('[').trim()
                == "dependencies.skyform-sdk";
        }
        let candidate = if let Some(rest) = trimmed.strip_prefix("skyform-sdk") {
            rest.trim_start().starts_with('=').then(|| line.find("path")).flatten()
        } else if in_sdk_table && trimmed.starts_with("path") {
            line.find("path")
        } else {
            None
        };
        if let Some(p) = candidate {
            let after = &line[p + 4..];
            let eq = after.find('=')?;
            if !after[..eq].trim().is_empty() {
                offset += line.len();
                continue;
            }
            let q1 = p + 4 + eq + 1 + line[p + 4 + eq + 1..].find('"')?;
            let q2 = q1 + 1 + line[q1 + 1..].find('"')?;
            let path = &line[q1 + 1..q2];
            if path.contains('\\') {
                return None;
            }
            if !project_dir.join(path).join("Cargo.toml").is_file() {
                return Some((offset + q1, offset + q2 + 1, path.to_string()));
            }
            return None;
        }
        offset += line.len();
    }
    None
}

/// `s` as a TOML basic string.
fn toml_basic_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_broken_path_in_both_forms() {
        let dir = std::env::temp_dir();
        let inline =
            "[package]\nname = \"x\"\n\n[dependencies]\nskyform-sdk = { path = \"../../no-sdk-here\" }\n";
        let (s, e, p) = broken_sdk_path(inline, &dir).unwrap();
        assert_eq!(p, "../../no-sdk-here");
        assert_eq!(&inline[s..e], "\"../../no-sdk-here\"");
        let table = "[dependencies.skyform-sdk]\npath = \"/no/such/sdk\"\n";
        let (s, e, _) = broken_sdk_path(table, &dir).unwrap();
        assert_eq!(&table[s..e], "\"/no/such/sdk\"");
        // A version dependency, another crate's path, a path that exists: left alone.
        assert!(broken_sdk_path("[dependencies]\nskyform-sdk = \"0.1\"\n", &dir).is_none());
        assert!(broken_sdk_path("[dependencies]\nother = { path = \"../nope\" }\n", &dir).is_none());
        let repo_sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");
        assert!(
            broken_sdk_path(&format!("[dependencies]\nskyform-sdk = {{ path = \"{repo_sdk}\" }}\n"), &dir)
                .is_none()
        );
    }

    #[test]
    fn the_embedded_sdk_is_complete_and_standalone() {
        let manifest = SDK_FILES.iter().find(|(p, _)| *p == "Cargo.toml").unwrap();
        let text = std::str::from_utf8(manifest.1).unwrap();
        assert!(text.contains("name = \"skyform-sdk\""));
        assert!(!text.contains("workspace = true"), "{text}");
        assert!(SDK_FILES.iter().any(|(p, _)| *p == "src/lib.rs"));
        assert_eq!(toml_basic_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
