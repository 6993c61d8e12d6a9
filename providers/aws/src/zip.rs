//! Deterministic zip packaging of a Lambda function's code folder.
//!
//! Lambda reports `CodeSha256` (base64 SHA-256 of the zip it was given), and `check` computes
//! the same figure locally so that an unchanged folder gives no diff. That only works when the
//! same files always give the same bytes, so the archive is normalised: entries sorted by path
//! (with `/` separators), every timestamp 1980-01-01 00:00, modes 0644 or 0755 (the executable
//! bit is kept: a custom runtime's `bootstrap` must stay executable), no directory entries, no
//! extra fields. Compression is raw deflate at a fixed level from `flate2`'s pure-Rust backend;
//! an entry that does not shrink is stored. (A different `miniz_oxide` could compress
//! differently and so change the hash once, which updates the code once: harmless.)
//!
//! The container format is written here (about a hundred lines) rather than with the `zip`
//! crate, whose default features pull in several compressors and crypto we do not need.

use std::io::Write;
use std::path::{Path, PathBuf};

struct Entry {
    name: String,
    crc: u32,
    method: u16,
    compressed: Vec<u8>,
    size: u32,
    mode: u32,
    offset: u32,
}

/// The files under `dir`, as (path relative to `dir` with `/` separators, full path), sorted.
fn walk(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, path)) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            // Symlinked files are followed (their content is packaged); symlinked folders are
            // not, so a link cycle cannot make the walk endless.
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() && entry.file_type()?.is_symlink() {
                continue;
            }
            if meta.is_dir() {
                stack.push((rel, entry.path()));
            } else if meta.is_file() {
                out.push((rel, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

/// Zips a folder (or a single file, stored under its file name) deterministically.
pub fn zip_path(path: &Path) -> std::io::Result<Vec<u8>> {
    let files = if path.is_file() {
        let name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
        vec![(name, path.to_path_buf())]
    } else {
        walk(path)?
    };
    zip_files(files)
}

/// Zips several folders as one tree, later ones over earlier ones (installed dependencies
/// first, then the code); each names the top-level entries to leave out of it.
pub fn zip_layers(layers: &[(&Path, &[&str])]) -> std::io::Result<Vec<u8>> {
    let mut merged = std::collections::BTreeMap::new();
    for (dir, skip) in layers {
        for (rel, full) in walk(dir)? {
            let top = rel.split('/').next().unwrap_or_default();
            if skip.contains(&top) || top == ".skyform-complete" {
                continue;
            }
            merged.insert(rel, full);
        }
    }
    zip_files(merged.into_iter().collect())
}

fn zip_files(files: Vec<(String, PathBuf)>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut entries = Vec::new();
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
    const UTF8: u16 = 1 << 11;
    for (name, full) in files {
        let data = std::fs::read(&full)?;
        let size =
            u32::try_from(data.len()).map_err(|_| std::io::Error::other(format!("{name} is over 4 GiB")))?;
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&data)?;
        let deflated = enc.finish()?;
        let (method, compressed) = if deflated.len() < data.len() { (8u16, deflated) } else { (0u16, data) };
        let mode = if is_executable(&full) { 0o100755 } else { 0o100644 };
        let offset = u32::try_from(out.len()).map_err(|_| std::io::Error::other("the zip is over 4 GiB"))?;
        let e = Entry { name, crc: crc.sum(), method, compressed, size, mode, offset };
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&UTF8.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.compressed);
        entries.push(e);
    }
    if entries.len() > u16::MAX as usize {
        return Err(std::io::Error::other("more than 65535 files"));
    }
    let cd_start = out.len() as u32;
    for e in &entries {
        out.extend_from_slice(&0x02014b50u32.to_le_bytes());
        out.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by Unix, zip 2.0
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&UTF8.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 8]); // extra len, comment len, disk number, internal attributes
        out.extend_from_slice(&(e.mode << 16).to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
    }
    let cd_size = out.len() as u32 - cd_start;
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_give_the_same_bytes() {
        let base = std::env::temp_dir().join(format!("skyform-zip-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for (dir, order) in [(&a, ["x.py", "lib/y.py"]), (&b, ["lib/y.py", "x.py"])] {
            std::fs::create_dir_all(dir.join("lib")).unwrap();
            for f in order {
                std::fs::write(dir.join(f), format!("print('{f}')\n").repeat(20)).unwrap();
            }
        }
        let za = zip_path(&a).unwrap();
        assert_eq!(za, zip_path(&b).unwrap());
        // The central directory lists `lib/y.py` before `x.py`.
        let text = String::from_utf8_lossy(&za);
        assert!(text.rfind("lib/y.py").unwrap() < text.rfind("x.py").unwrap());
        std::fs::write(a.join("x.py"), "changed").unwrap();
        assert_ne!(za, zip_path(&a).unwrap());
        std::fs::remove_dir_all(base).unwrap();
    }
}
