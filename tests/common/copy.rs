//! Copying a project (one of `examples/`) into a test's folder, as a user copies it: build
//! output (`target/`), recorded state (`state/`) and the local cloud's folder (`.skyform/`) stay
//! behind.

use std::path::Path;

pub fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["target", "state", ".skyform"].iter().any(|n| name == *n) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_project(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}
