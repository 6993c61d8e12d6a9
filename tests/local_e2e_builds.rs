//! Functions as they ship (issue 11), through the real `skyform` binary on the local cloud:
//! dependencies from `requirements.txt` and `package.json` installed into the artifact and
//! cached, isolation from the host's packages (a host-only import fails with
//! `Runtime.ImportModuleError`, as on Lambda), tracebacks naming the user's files, TypeScript
//! bundled with esbuild, Rust functions built by `up` and not by `preview`, and the `aws`
//! packaging: Lambda-platform wheels in the zip, and a Rust `bootstrap` whose required glibc
//! versions Lambda has (read from the ELF), which then runs under the local cloud.
//!
//! Peers: pip and npm reach their registries (as they do for `tests/peers/setup.sh`); the
//! zig toolchain for the Rust test is installed once by the build command itself, into
//! `target/peers/skyform-cache/` (shared between runs, so CI pays for it once).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `PATH` with the peers venv first: its `python3` has packages (PyYAML, boto3) that a function
/// must not see unless it ships them.
fn path_with_venv(venv: &str) -> String {
    format!("{venv}/bin:{}:/usr/local/bin:/usr/bin:/bin", common::bin_dir().display())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What a `skyform` command printed, as it printed it (stdout then stderr, not normalised: the
/// assertions look for the project's own paths and for the progress lines).
struct Out {
    code: i32,
    text: String,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &Out {
        assert_eq!(self.code, 0, "expected success:\n{}", self.text);
        self
    }
}

fn run(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut cmd = env.command(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run skyform");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Out { code: out.status.code().unwrap_or(-1), text }
}

fn function(name: &str, runtime: &str, handler: &str) -> Value {
    json!({"name": name, "type": "local:Function", "inputs": {
        "code": format!("functions/{name}"), "handler": handler, "runtime": runtime}})
}

#[test]
fn python_functions_ship_their_dependencies_and_nothing_from_the_host() {
    let venv = common::peers_venv();
    let env = TestEnv::new("e2e-builds-py");
    let _stop = StopDaemon(&env);
    let cache = env.path().join("cache");
    let path = path_with_venv(&venv);
    let vars = [("PATH", path.as_str()), ("SKYFORM_CACHE_DIR", cache.to_str().unwrap())];

    env.write("functions/hello/requirements.txt", "idna==3.10\n");
    env.write(
        "functions/hello/app.py",
        "import idna\n\ndef handler(event, context):\n    return {\"encoded\": idna.encode(\"bücher.example\").decode(), \"idna\": idna.__version__}\n",
    );
    // PyYAML is in the host's (the venv's) site-packages, not in the function.
    env.write("functions/hostonly/app.py", "import yaml\n\ndef handler(event, context):\n    return 1\n");
    env.write(
        "functions/boom/app.py",
        "def handler(event, context):\n    return helper(event)\n\n\ndef helper(event):\n    raise ValueError(\"bad event\")\n",
    );
    env.manifest(json!([
        function("hello", "python3.12", "app.handler"),
        function("hostonly", "python3.12", "app.handler"),
        function("boom", "python3.12", "app.handler"),
    ]));

    let up = run(&env, &["up", "--yes"], &vars);
    up.ok();
    // The version the runtime names runs when the machine has it; otherwise one notice says
    // what runs instead (once, although three functions ask for it).
    let has_312 = Command::new("python3.12")
        .arg("--version")
        .env("PATH", &path)
        .output()
        .is_ok_and(|o| o.status.success());
    let notices = up.text.matches("python3.12 is not installed here").count();
    assert_eq!(notices, usize::from(!has_312), "{}", up.text);

    let hello = run(&env, &["invoke", "hello"], &vars);
    assert!(hello.text.contains("xn--bcher-kva.example") && hello.text.contains("3.10"), "{}", hello.text);

    let host = run(&env, &["invoke", "hostonly"], &vars);
    assert_ne!(host.code, 0, "{}", host.text);
    assert!(
        host.text.contains("Runtime.ImportModuleError") && host.text.contains("No module named 'yaml'"),
        "a package that only the host has is not importable, as on Lambda: {}",
        host.text
    );

    let boom = run(&env, &["invoke", "boom"], &vars);
    let file = format!("{}/functions/boom/app.py", env.path().display());
    assert!(
        boom.text.contains(&file) && boom.text.contains("line 6, in helper"),
        "the traceback names the user's file: {}",
        boom.text
    );
    let user_file = format!("{file}\", line 6, in helper");
    let logs = run(&env, &["logs", "boom"], &vars);
    assert!(logs.text.contains(&user_file), "{}", logs.text);
    assert!(!logs.text.contains(".skyform/local/artifacts"), "{}", logs.text);

    // Cache: an unchanged set installs nothing and changes nothing.
    let deps = cache.join("deps");
    assert_eq!(subdirs(&deps).len(), 1, "one install for one requirement set");
    let stamp = std::fs::metadata(subdirs(&deps)[0].join(".skyform-complete")).unwrap().modified().unwrap();
    let again = run(&env, &["up", "--yes"], &vars);
    assert!(again.ok().text.contains("no changes"), "{}", again.text);
    assert!(!again.text.contains("installing dependencies"), "{}", again.text);
    assert_eq!(subdirs(&deps).len(), 1);
    assert_eq!(
        std::fs::metadata(subdirs(&deps)[0].join(".skyform-complete")).unwrap().modified().unwrap(),
        stamp
    );

    // A changed requirement reinstalls, and the artifact (its hash covers the installed
    // packages) is redeployed.
    env.write("functions/hello/requirements.txt", "idna==3.9\n");
    let changed = run(&env, &["up", "--yes"], &vars);
    assert!(changed.ok().text.contains("local:Function  hello  updated"), "{}", changed.text);
    assert_eq!(subdirs(&deps).len(), 2);
    let hello = run(&env, &["invoke", "hello"], &vars);
    assert!(hello.text.contains("\"idna\": \"3.9\""), "{}", hello.text);
}

#[test]
fn the_aws_zip_holds_lambda_wheels_and_nothing_from_the_host() {
    let env = TestEnv::new("e2e-builds-aws-py");
    let code = env.path().join("functions/hello");
    env.write("functions/hello/requirements.txt", "idna==3.10\n");
    env.write("functions/hello/app.py", "import idna\n\ndef handler(event, context):\n    return 1\n");
    let cache = env.path().join("cache");
    let layers =
        skyform_aws::package::layers_in(&cache, &code, "python3.12", "x86_64", "app.handler").unwrap();
    assert_eq!(layers.len(), 2, "dependencies, then the code");
    let refs: Vec<(&Path, &[&str])> = layers.iter().map(|(p, _)| (p.as_path(), &[][..])).collect();
    let zip = skyform_aws::zip::zip_layers(&refs).unwrap();
    let names = zip_names(&zip);
    assert!(names.contains(&"app.py".to_string()), "{names:?}");
    assert!(names.contains(&"idna/__init__.py".to_string()), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("idna-3.10.dist-info/")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("yaml/") || n.starts_with("boto3/")),
        "nothing from the host: {names:?}"
    );
    assert!(!names.iter().any(|n| n.contains(".skyform-complete")), "{names:?}");
    // A requirement without a wheel for Lambda's platform fails, saying why.
    env.write("functions/hello/requirements.txt", "this-package-does-not-exist-skyform==1.0\n");
    let err =
        skyform_aws::package::layers_in(&cache, &code, "python3.12", "x86_64", "app.handler").unwrap_err();
    assert!(err.contains("manylinux2014_x86_64") && err.contains("Python 3.12"), "{err}");
}

#[test]
fn pyproject_dependencies_install_like_requirements() {
    let venv = common::peers_venv();
    let env = TestEnv::new("e2e-builds-pyproject");
    let _stop = StopDaemon(&env);
    let cache = env.path().join("cache");
    let path = path_with_venv(&venv);
    let vars = [("PATH", path.as_str()), ("SKYFORM_CACHE_DIR", cache.to_str().unwrap())];
    let pyproject = "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\n[project]\nname = \"hello\"\nversion = \"0.1.0\"\ndependencies = [\"idna==3.10\"]\n";
    env.write("functions/hello/pyproject.toml", pyproject);
    env.write(
        "functions/hello/app.py",
        "import idna\n\ndef handler(event, context):\n    return {\"idna\": idna.__version__}\n",
    );
    env.manifest(json!([function("hello", "python3.12", "app.handler")]));
    let up = run(&env, &["up", "--yes"], &vars);
    up.ok();
    let hello = run(&env, &["invoke", "hello"], &vars);
    assert!(hello.text.contains("\"idna\": \"3.10\""), "{}", hello.text);
    // Cached by the dependency list: a new version field redeploys the code, installs nothing.
    let deps = cache.join("deps");
    assert_eq!(subdirs(&deps).len(), 1);
    env.write(
        "functions/hello/pyproject.toml",
        &pyproject.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    );
    let again = run(&env, &["up", "--yes"], &vars);
    assert!(!again.ok().text.contains("installing dependencies"), "{}", again.text);
    assert_eq!(subdirs(&deps).len(), 1);

    // For aws: Lambda wheels of the same list, nothing from the host.
    let code = env.path().join("functions/hello");
    let layers =
        skyform_aws::package::layers_in(&cache, &code, "python3.12", "x86_64", "app.handler").unwrap();
    let refs: Vec<(&Path, &[&str])> = layers.iter().map(|(p, _)| (p.as_path(), &[][..])).collect();
    let names = zip_names(&skyform_aws::zip::zip_layers(&refs).unwrap());
    assert!(
        names.contains(&"idna/__init__.py".to_string()) && names.contains(&"app.py".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("yaml/")), "{names:?}");

    // A pyproject skyform cannot read fails `up` saying what to do, and the deployed code stays.
    env.write("functions/hello/pyproject.toml", "[tool.poetry.dependencies]\nidna = \"3.10\"\n");
    let bad = run(&env, &["up", "--yes"], &vars);
    assert_ne!(bad.code, 0, "{}", bad.text);
    assert!(bad.text.contains("no [project] table") && bad.text.contains("requirements.txt"), "{}", bad.text);
    let still = run(&env, &["invoke", "hello"], &vars);
    assert!(still.text.contains("\"idna\": \"3.10\""), "{}", still.text);
    env.write(
        "functions/hello/pyproject.toml",
        "[build-system]\nbuild-backend = \"maturin\"\n[project]\nname = \"hello\"\n",
    );
    let err =
        skyform_aws::package::layers_in(&cache, &code, "python3.12", "x86_64", "app.handler").unwrap_err();
    assert!(err.contains("`maturin`") && err.contains("requirements.txt"), "{err}");
}

#[test]
fn the_aws_zip_of_a_typescript_handler_holds_its_bundle() {
    let env = TestEnv::new("e2e-builds-aws-ts");
    let code = env.path().join("functions/api");
    env.write(
        "functions/api/lib.ts",
        "export function greet(name: string): string {\n  return `hello ${name} from lib`;\n}\n",
    );
    env.write(
        "functions/api/app.ts",
        "import { greet } from './lib';\n\nexport const handler = async (event: { name: string }) => ({ said: greet(event.name) });\n",
    );
    // esbuild is kept between runs with the node test's (CI installs it once).
    let cache = Path::new(REPO).join("target/peers/skyform-cache");
    let layers =
        skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap();
    assert_eq!(layers.len(), 2, "the code, then the bundle: {layers:?}");
    let zip_of = |layers: &[(PathBuf, Vec<String>)]| {
        let refs: Vec<(&Path, &[&str])> = layers.iter().map(|(p, _)| (p.as_path(), &[][..])).collect();
        skyform_aws::zip::zip_layers(&refs).unwrap()
    };
    let zip = zip_of(&layers);
    assert_eq!(zip_names(&zip), ["app.js", "app.ts", "lib.ts"], "the bundle and the sources, nothing else");
    let bundle = std::fs::read_to_string(layers[1].0.join("app.js")).unwrap();
    assert!(!bundle.contains(&env.path().display().to_string()), "no path of this machine: {bundle}");
    assert!(!bundle.contains("sourceMappingURL"), "{bundle}");
    // The bundle is what Lambda's Node.js runs: it answers with the imported module's code.
    let out = Command::new("node")
        .arg("-e")
        .arg("require(process.argv[1]).handler({name: 'ts'}).then(r => console.log(JSON.stringify(r)))")
        .arg(layers[1].0.join("app.js"))
        .output()
        .expect("node runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"said":"hello ts from lib"}"#);
    // Unchanged code: the same zip (so `check` shows no diff); a change rebundles.
    assert_eq!(
        zip_of(
            &skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap()
        ),
        zip
    );
    env.write(
        "functions/api/lib.ts",
        "export function greet(name: string): string {\n  return `bye ${name}`;\n}\n",
    );
    let changed =
        skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap();
    assert!(std::fs::read_to_string(changed[1].0.join("app.js")).unwrap().contains("bye "));
    // A plain `.js` handler is not bundled; a runtime without a version says what to use.
    let err = skyform_aws::package::layers_in(&cache, &code, "nodejs", "x86_64", "app.handler").unwrap_err();
    assert!(err.contains("nodejs22.x"), "{err}");
    env.write("functions/api/app.js", "exports.handler = async () => 1;\n");
    let js = skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap();
    assert_eq!(js.len(), 1, "{js:?}");

    // With a dependency: installed for Lambda and bundled in, as locally.
    let code = env.path().join("functions/withdeps");
    env.write(
        "functions/withdeps/package.json",
        r#"{"name": "withdeps", "version": "1.0.0", "dependencies": {"ms": "2.1.3"}}"#,
    );
    env.write(
        "functions/withdeps/app.ts",
        "import ms from 'ms';\n\nexport const handler = async () => ({ ms: ms('1m') });\n",
    );
    let lock = Command::new("npm")
        .args(["install", "--package-lock-only", "--no-audit", "--no-fund"])
        .current_dir(&code)
        .env("HOME", env.path())
        .output()
        .expect("npm is installed (Node.js with npm is needed for the nodejs runtime's tests)");
    assert!(lock.status.success(), "{}", String::from_utf8_lossy(&lock.stderr));
    let layers =
        skyform_aws::package::layers_in(&cache, &code, "nodejs20.x", "x86_64", "app.handler").unwrap();
    assert_eq!(layers.len(), 3, "dependencies, code, bundle: {layers:?}");
    assert!(layers[0].0.join("node_modules/ms/index.js").is_file(), "{layers:?}");
    let out = Command::new("node")
        .arg("-e")
        .arg("require(process.argv[1]).handler().then(r => console.log(JSON.stringify(r)))")
        .arg(layers[2].0.join("app.js"))
        .output()
        .expect("node runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"ms":60000}"#,
        "the dependency is bundled in"
    );
}

/// The entry names of a zip's central directory.
fn zip_names(zip: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            let n = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            let extra = u16::from_le_bytes([zip[i + 30], zip[i + 31]]) as usize;
            let comment = u16::from_le_bytes([zip[i + 32], zip[i + 33]]) as usize;
            out.push(String::from_utf8_lossy(&zip[i + 46..i + 46 + n]).into_owned());
            i += 46 + n + extra + comment;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn node_functions_with_dependencies_typescript_and_clear_errors() {
    let env = TestEnv::new("e2e-builds-node");
    let _stop = StopDaemon(&env);
    // esbuild and the npm installs are kept between runs (CI pays for them once).
    let cache = Path::new(REPO).join("target/peers/skyform-cache");
    let vars = [("SKYFORM_CACHE_DIR", cache.to_str().unwrap())];

    // A dependency from package.json + package-lock.json (made as a user makes it).
    env.write(
        "functions/js/package.json",
        r#"{"name": "js", "version": "1.0.0", "dependencies": {"ms": "2.1.3"}}"#,
    );
    env.write(
        "functions/js/app.js",
        "const ms = require('ms');\nexports.handler = async (event) => ({ ms: ms(event.t) });\n",
    );
    let lock = Command::new("npm")
        .args(["install", "--package-lock-only", "--no-audit", "--no-fund"])
        .current_dir(env.path().join("functions/js"))
        .env("HOME", env.path())
        .output()
        .expect("npm is installed (Node.js with npm is needed for the nodejs runtime's tests)");
    assert!(
        lock.status.success(),
        "npm could not make the lock file: {}",
        String::from_utf8_lossy(&lock.stderr)
    );
    // A TypeScript handler, bundled with esbuild (installed from npm on first use).
    env.write(
        "functions/ts/package.json",
        r#"{"name": "ts", "version": "1.0.0", "dependencies": {"ms": "2.1.3"}}"#,
    );
    std::fs::copy(
        env.path().join("functions/js/package-lock.json"),
        env.path().join("functions/ts/package-lock.json"),
    )
    .unwrap();
    env.write(
        "functions/ts/app.ts",
        "import ms from 'ms';\n\ninterface Ev { t: string }\n\nexport const handler = async (event: Ev): Promise<{ ts: number }> => {\n  if (event.t === 'boom') {\n    throw new Error('boom from ts');\n  }\n  return { ts: ms(event.t) };\n};\n",
    );
    // A syntax error, and a module only the project folder (above the artifact) has.
    env.write("functions/bad/app.js", "exports.handler = async () => {\n  return 1 +;\n};\n");
    env.write("node_modules/hostonly/index.js", "module.exports = 1;\n");
    env.write(
        "functions/nodehost/app.js",
        "const h = require('hostonly');\nexports.handler = async () => h;\n",
    );
    env.manifest(json!([
        function("js", "nodejs20.x", "app.handler"),
        function("ts", "nodejs20.x", "app.handler"),
        function("bad", "nodejs20.x", "app.handler"),
        function("nodehost", "nodejs20.x", "app.handler"),
    ]));
    run(&env, &["up", "--yes"], &vars).ok();

    let js = run(&env, &["invoke", "js", "--data", r#"{"t": "2s"}"#], &vars);
    assert!(js.text.contains("\"ms\": 2000") || js.text.contains("\"ms\":2000"), "{}", js.text);
    let ts = run(&env, &["invoke", "ts", "--data", r#"{"t": "1m"}"#], &vars);
    assert!(ts.text.contains("60000"), "{}", ts.text);
    let ts_err = run(&env, &["invoke", "ts", "--data", r#"{"t": "boom"}"#], &vars);
    assert!(ts_err.text.contains("boom from ts"), "{}", ts_err.text);

    let bad = run(&env, &["invoke", "bad"], &vars);
    assert_ne!(bad.code, 0);
    let where_ = format!("{}/functions/bad/app.js:2", env.path().display());
    assert!(
        bad.text.contains("Runtime.UserCodeSyntaxError") && bad.text.contains(&where_),
        "a syntax error names the file and line: {}",
        bad.text
    );
    let host = run(&env, &["invoke", "nodehost"], &vars);
    assert!(
        host.text.contains("Runtime.ImportModuleError") && host.text.contains("hostonly"),
        "modules above the function's folder are not visible: {}",
        host.text
    );
    // The artifact holds the installed dependency.
    let artifacts = env.path().join(".skyform/local/artifacts");
    assert!(subdirs(&artifacts).iter().any(|a| a.join("node_modules/ms/index.js").is_file()));
}

/// A Lambda function in Rust with the standard library only (a Runtime API client in a few
/// lines), so that building it costs seconds.
const TINY_MAIN: &str = r#"
use std::io::{Read, Write};
use std::net::TcpStream;

fn call(api: &str, method: &str, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(api).unwrap();
    write!(s, "{method} /2018-06-01/runtime{path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (String::from_utf8_lossy(&out[..end]).into_owned(), out[end + 4..].to_vec())
}

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap();
    loop {
        let (head, body) = call(&api, "GET", "/invocation/next", b"");
        let id = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("lambda-runtime-aws-request-id").then(|| v.trim().to_string())
        }).unwrap();
        let reply = format!("{{\"tiny\":{}}}", body.len());
        call(&api, "POST", &format!("/invocation/{id}/response"), reply.as_bytes());
    }
}
"#;

#[test]
fn rust_functions_build_in_up_and_for_lambda() {
    let env = TestEnv::new("e2e-builds-rust");
    let _stop = StopDaemon(&env);
    env.write(
        "functions/tiny/Cargo.toml",
        "[package]\nname = \"tiny-fn\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"bootstrap\"\npath = \"src/main.rs\"\n\n[workspace]\n",
    );
    env.write("functions/tiny/src/main.rs", TINY_MAIN);
    env.manifest(json!([{"name": "tiny", "type": "local:Function", "inputs": {
        "code": "functions/tiny", "build": {"cargo_package": "tiny-fn"}, "runtime": "provided.al2023"}}]));
    let mut vars: Vec<(&str, String)> = Vec::new();
    for k in ["PATH", "CARGO_HOME", "RUSTUP_HOME"] {
        if let Ok(v) = std::env::var(k) {
            vars.push((k, v));
        }
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // `preview` hashes the sources; it compiles nothing.
    let preview = run(&env, &["preview"], &vars);
    assert!(preview.ok().text.contains("create"), "{}", preview.text);
    let target = env.path().join(".skyform/build/target");
    assert!(!target.exists(), "preview compiled the function");
    // `up` builds it, into the project's shared target folder, and it serves.
    run(&env, &["up", "--yes"], &vars).ok();
    assert!(target.join("release/bootstrap").is_file());
    let out = run(&env, &["invoke", "tiny", "--data", "{\"a\":1}"], &vars);
    assert!(out.ok().text.contains("\"tiny\":7") || out.text.contains("\"tiny\": 7"), "{}", out.text);

    // The aws target's build command, as the SDK writes it, run as `core:Command` runs it.
    let ctx = skyform_sdk::Program::new("p", "prod", skyform_sdk::Target::Aws, json!({}));
    ctx.add(skyform_sdk::Function::rust("tiny", "tiny-fn").code("functions/tiny")).unwrap();
    let manifest = ctx.manifest();
    let command = manifest["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "core:Command")
        .unwrap()["inputs"]["create"]
        .as_str()
        .unwrap()
        .to_string();
    let shared_cache = Path::new(REPO).join("target/peers/skyform-cache");
    let built = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(env.path())
        .env("SKYFORM_CACHE_DIR", &shared_cache)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "the aws build command failed (it installs ziglang and cargo-zigbuild from PyPI on first use):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&built.stdout).trim(), ".skyform/build/aws/tiny");
    let bootstrap = env.path().join(".skyform/build/aws/tiny/bootstrap");
    let elf = std::fs::read(&bootstrap).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "x86_64 (EM_X86_64)");
    let newest =
        required_glibc(&elf).into_iter().max().expect("a glibc-linked binary requires glibc versions");
    assert!(
        newest <= (2, 17),
        "the bootstrap needs GLIBC_{}.{}; Lambda's provided.al2 has 2.26",
        newest.0,
        newest.1
    );

    // That same binary runs under the local cloud.
    let code = env.path().join("awscode");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::copy(&bootstrap, code.join("bootstrap")).unwrap();
    env.manifest(json!([{"name": "tiny", "type": "local:Function", "inputs": {
        "code": "awscode", "runtime": "provided.al2023", "handler": "bootstrap"}}]));
    run(&env, &["up", "--yes"], &vars).ok();
    let out = run(&env, &["invoke", "tiny", "--data", "{}"], &vars);
    assert!(out.ok().text.contains("\"tiny\":2") || out.text.contains("\"tiny\": 2"), "{}", out.text);
}

/// The glibc versions an ELF file requires: the `GLIBC_x.y` names of its version-needed
/// entries (`.gnu.version_r`), read from the section headers.
fn required_glibc(elf: &[u8]) -> Vec<(u32, u32)> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(elf[4], 2, "a 64-bit ELF");
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| {
        let h = shoff + i * shentsize;
        (u32_at(h + 4), u64_at(h + 0x18), u64_at(h + 0x20), u32_at(h + 0x28), u32_at(h + 0x2c))
    };
    const SHT_GNU_VERNEED: usize = 0x6fff_fffe;
    let mut out = Vec::new();
    for i in 0..shnum {
        let (kind, offset, _size, link, info) = section(i);
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let strtab = section(link).1;
        let cstr = |o: usize| {
            let end = elf[o..].iter().position(|b| *b == 0).unwrap();
            String::from_utf8_lossy(&elf[o..o + end]).into_owned()
        };
        let mut need = offset;
        for _ in 0..info {
            let (cnt, aux, next) = (u16_at(need + 2), u32_at(need + 8), u32_at(need + 12));
            let mut a = need + aux;
            for _ in 0..cnt {
                let name = cstr(strtab + u32_at(a + 8));
                if let Some(v) = name.strip_prefix("GLIBC_")
                    && let Some((maj, min)) = v.split_once('.')
                {
                    let min = min.split('.').next().unwrap_or("0");
                    out.push((maj.parse().unwrap_or(0), min.parse().unwrap_or(0)));
                }
                a += u32_at(a + 12);
            }
            need += next;
        }
    }
    out
}

#[test]
fn a_failing_program_shows_its_first_error_and_its_panic() {
    let env = TestEnv::new("e2e-builds-program");
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"sh prog.sh\"\n");
    env.write(
        "prog.sh",
        "echo '   Compiling demo v0.1.0' >&2\n\
         echo 'error[E0425]: cannot find value `x` in this scope' >&2\n\
         echo ' --> src/main.rs:3:5' >&2\n\
         echo >&2\n\
         i=0; while [ $i -lt 60 ]; do echo \"error: follow-up $i\" >&2; i=$((i+1)); done\n\
         echo \"thread 'main' panicked at src/main.rs:9:1:\" >&2\n\
         echo 'the bucket name is empty' >&2\n\
         echo 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace' >&2\n\
         exit 101\n",
    );
    let failed = run(&env, &["preview"], &[]);
    assert_eq!(failed.code, 1, "{}", failed.text);
    let text = failed.text;
    assert!(
        text.contains("error[E0425]: cannot find value `x` in this scope")
            && text.contains(" --> src/main.rs:3:5"),
        "{text}"
    );
    assert!(
        text.contains("panicked at src/main.rs:9:1:") && text.contains("the bucket name is empty"),
        "{text}"
    );
    assert!(!text.contains("follow-up 10\n"), "not the whole output: {text}");
    assert!(text.contains("run the command again with `-v` to see all it printed"), "{text}");
    let verbose = run(&env, &["-v", "preview"], &[]);
    assert!(verbose.text.contains("follow-up 10\n"), "{}", verbose.text);
}

#[test]
fn a_wait_over_a_second_says_what_it_is_for() {
    let env = TestEnv::new("e2e-builds-progress");
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"sleep 1.6; cat manifest.json\"\n");
    env.manifest(json!([]));
    let slow = run(&env, &["preview"], &[]);
    assert!(
        slow.ok().text.contains("… running the program `sleep 1.6; cat manifest.json`"),
        "off a terminal, one plain line: {}",
        slow.text
    );
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"cat manifest.json\"\n");
    let quick = run(&env, &["preview"], &[]);
    assert!(!quick.ok().text.contains("… "), "a quick command prints what it always printed: {}", quick.text);
}
