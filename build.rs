//! Embeds the SDK's sources (`sdk/`) in the `skyform` binary, so that an installed skyform
//! can give projects an SDK that matches it with nothing of the clone left
//! (`src/cli/sdk_home.rs` unpacks them once into a versioned folder).
//!
//! Writes `$OUT_DIR/sdk_files.rs`: `SDK_FILES` (relative path, bytes) and `SDK_HASH` (FNV-1a
//! over paths and contents: the folder's name changes when the sources do). The SDK's
//! `Cargo.toml` inherits `serde` and `serde_json` from this workspace; the embedded copy gets
//! them written out, so that it builds on its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let sdk = root.join("sdk");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=sdk");
    println!("cargo:rerun-if-changed=Cargo.toml");

    let mut files = Vec::new();
    walk(&sdk, &sdk, &mut files);
    files.sort();

    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).expect("sdk/Cargo.toml");
    let standalone = manifest
        .replace("serde = { workspace = true }", "serde = { version = \"1\", features = [\"derive\"] }")
        .replace("serde_json = { workspace = true }", "serde_json = \"1\"");
    assert!(
        !standalone.contains("workspace = true"),
        "sdk/Cargo.toml inherits a dependency that build.rs does not write out for the embedded SDK"
    );
    let standalone_path = out.join("sdk-Cargo.toml");
    std::fs::write(&standalone_path, &standalone).unwrap();

    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut fnv = |bytes: &[u8]| {
        for b in bytes {
            hash ^= *b as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let mut code = String::from("/// The SDK's files: path relative to the SDK folder, contents.\n");
    code.push_str("pub static SDK_FILES: &[(&str, &[u8])] = &[\n");
    for rel in &files {
        let source = if rel == "Cargo.toml" { standalone_path.clone() } else { sdk.join(rel) };
        fnv(rel.as_bytes());
        fnv(&std::fs::read(&source).unwrap());
        writeln!(code, "    ({rel:?}, include_bytes!({:?})),", source.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    writeln!(
        code,
        "/// A hash of [`SDK_FILES`].\npub const SDK_HASH: &str = \"{:012x}\";",
        hash & 0xffff_ffff_ffff
    )
    .unwrap();
    std::fs::write(out.join("sdk_files.rs"), code).unwrap();
}

/// Every file under `dir`, relative to `base`, leaving out build output.
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
}
