//! skyform installed as a user installs it, then used with nothing of the clone: `cargo install
//! --path .` into a temporary prefix (reusing this build's target folder, so it only links),
//! a fresh HOME, a PATH without the clone, a project made by `skyform new` and an example
//! copied out of `examples/`, each deployed on the local cloud and served; and a program whose
//! SDK cannot be found gets a hint about its Cargo.toml, not about its code.
//!
//! The programs are built in `target/e2e-programs` (shared with the other end-to-end tests) only
//! so that serde is compiled once: a build cache, not a source.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tempdir::TempDir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The target folder this test binary was built in (`<target>/debug/skyform`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_skyform")).parent().unwrap().parent().unwrap().to_path_buf()
}

/// A copy of a project as a user makes it (see [`common::copy::copy_project`]), with its empty
/// `state/` folder.
fn copy_dir(from: &Path, to: &Path) {
    common::copy::copy_project(from, to);
    if from.join("state").is_dir() {
        std::fs::create_dir_all(to.join("state")).unwrap();
    }
}

struct Installed {
    tmp: TempDir,
    exe: PathBuf,
}

impl Installed {
    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }
    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// The installed `skyform` in `cwd`, with a clean environment: HOME is a fresh folder, PATH
    /// has the prefix's `bin` and the caller's PATH without anything inside the clone.
    fn run(&self, cwd: &Path, args: &[&str]) -> (i32, String, String) {
        let real_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
        let path: Vec<String> = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.starts_with(REPO))
            .map(String::from)
            .collect();
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).current_dir(cwd).env_clear().stdin(Stdio::null());
        cmd.env("PATH", format!("{}:{}", self.exe.parent().unwrap().display(), path.join(":")))
            .env("HOME", self.home())
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            // The user's toolchains, which HOME would otherwise find.
            .env(
                "CARGO_HOME",
                std::env::var_os("CARGO_HOME").unwrap_or_else(|| real_home.join(".cargo").into()),
            )
            .env(
                "RUSTUP_HOME",
                std::env::var_os("RUSTUP_HOME").unwrap_or_else(|| real_home.join(".rustup").into()),
            )
            .env(
                "PYENV_ROOT",
                std::env::var_os("PYENV_ROOT").unwrap_or_else(|| real_home.join(".pyenv").into()),
            )
            .env("CARGO_TARGET_DIR", Path::new(REPO).join("target/e2e-programs"));
        for k in ["RUSTUP_TOOLCHAIN", "PYENV_VERSION"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().expect("run the installed skyform");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[track_caller]
    fn ok(&self, cwd: &Path, args: &[&str]) -> (String, String) {
        let (code, out, err) = self.run(cwd, args);
        assert_eq!(code, 0, "skyform {args:?} failed:\n{out}\n{err}");
        (out, err)
    }
}

/// `cargo install --path .` into a temporary prefix, as the README says.
fn install() -> Installed {
    let tmp = TempDir::new("install");
    let prefix = tmp.path().join("prefix");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--debug", "--locked", "--offline", "--path", REPO, "--root"])
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run cargo install");
    assert!(out.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let exe = prefix.join("bin/skyform");
    assert!(exe.is_file());
    std::fs::create_dir_all(tmp.path().join("home")).unwrap();
    std::fs::create_dir_all(tmp.path().join("work")).unwrap();
    Installed { tmp, exe }
}

fn get(base: &str, path: &str) -> (u16, String) {
    let sock: SocketAddr = base.trim().trim_matches('"').strip_prefix("http://").unwrap().parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
}

/// Stops a project's local cloud when the test ends, however it ends.
struct Stop<'a>(&'a Installed, PathBuf);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&self.1, &["local", "stop"]);
    }
}

#[test]
fn installed_skyform_needs_nothing_of_the_clone() {
    let inst = install();
    let work = inst.work();

    // `skyform new`: the project depends on the SDK the binary carries, unpacked under HOME.
    inst.ok(&work, &["new", "http-api", "shop"]);
    let shop = work.join("shop");
    let cargo_toml = std::fs::read_to_string(shop.join("Cargo.toml")).unwrap();
    let sdk_root = inst.home().join(".local/share/skyform/sdk");
    assert!(!cargo_toml.contains(REPO), "the project names the clone:\n{cargo_toml}");
    assert!(cargo_toml.contains(&format!("path = \"{}/0.1.0-", sdk_root.display())), "{cargo_toml}");
    let sdks: Vec<_> = std::fs::read_dir(&sdk_root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(sdks.len(), 1, "one SDK folder, no leftovers: {sdks:?}");
    let sdk = sdk_root.join(&sdks[0]);
    assert!(sdk.join("src/lib.rs").is_file());
    assert!(!std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap().contains("workspace = true"));

    let _stop_shop = Stop(&inst, shop.clone());
    inst.ok(&shop, &["up", "--yes"]);
    let (url, _) = inst.ok(&shop, &["outputs", "url"]);
    assert_eq!(get(&url, "/hello/ada"), (200, "Hello, ada!".into()));
    // The local cloud's daemon is the installed binary.
    let daemon: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shop.join(".skyform/local/daemon.json")).unwrap())
            .unwrap();
    let daemon_exe = std::fs::read_link(format!("/proc/{}/exe", daemon["pid"])).unwrap();
    assert_eq!(daemon_exe, inst.exe.canonicalize().unwrap());

    // An example copied out of the repository: its `../../sdk` does not exist here; skyform
    // points it at its SDK, says so, and it deploys.
    let copied = work.join("copied");
    copy_dir(&Path::new(REPO).join("examples/hello-http"), &copied);
    let _stop_copied = Stop(&inst, copied.clone());
    let (_, err) = inst.ok(&copied, &["up", "--yes"]);
    assert!(err.contains("Cargo.toml named skyform-sdk at `../../sdk`, which does not exist"), "{err}");
    let cargo_toml = std::fs::read_to_string(copied.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains(&format!("skyform-sdk = {{ path = \"{}\" }}", sdk.display())),
        "{cargo_toml}"
    );
    let (url, _) = inst.ok(&copied, &["outputs", "url"]);
    assert_eq!(get(&url, "/hello/ada"), (200, "Hello, ada!".into()));
    inst.ok(&copied, &["destroy", "--yes"]);
    inst.ok(&shop, &["destroy", "--yes"]);

    // An SDK dependency that cannot be found: the hint is about Cargo.toml, not the code.
    let broken = work.join("broken");
    copy_dir(&Path::new(REPO).join("examples/hello-http"), &broken);
    let text = std::fs::read_to_string(broken.join("Cargo.toml")).unwrap();
    let text = text.replace("{ path = \"../../sdk\" }", "{ git = \"file:///nonexistent/skyform\" }");
    std::fs::write(broken.join("Cargo.toml"), text).unwrap();
    let (code, out, err) = inst.run(&broken, &["preview"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("hint: the program's `skyform-sdk` dependency cannot be found"), "{err}");
    assert!(!err.contains("fix the program"), "{err}");
}
