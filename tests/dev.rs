//! `skyform dev` end to end, in a pseudo-terminal (as a user runs it, so Ctrl-C is the
//! terminal's own `^C` turned into SIGINT by the line discipline): start, a handler edit
//! served by the next request, a syntax error reported while the old version keeps serving,
//! a traceback naming the user's file, an infrastructure edit (a new route) applied, a failing
//! program reported, and Ctrl-C leaving the stack served; then `--down` tearing it down.
//!
//! The project's program prints `manifest.json` (`cat`), so no Rust program is compiled; the
//! functions are Python and Node, the runtimes whose edits `dev` serves without `up`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// `skyform dev` on the slave side of a pseudo-terminal; what it prints, read from the master.
struct Dev {
    master: std::fs::File,
    child: Child,
    out: Arc<Mutex<String>>,
    /// How far the test has read (`wait_for` searches after it).
    seen: usize,
}

impl Dev {
    fn start(env: &TestEnv, args: &[&str]) -> Dev {
        let (mut master, mut slave) = (0, 0);
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let mut cmd = env.command(args);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // A session of its own with the terminal as its controlling terminal: `^C` then
        // signals its (foreground) process group, as in a shell.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start skyform dev");
        let master = unsafe { std::fs::File::from_raw_fd(master) };
        let out = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last slave descriptor closes (the process exited).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
                sink.lock().unwrap().push_str(&text);
            }
        });
        Dev { master, child, out, seen: 0 }
    }

    /// Everything printed so far, colours removed.
    fn text(&self) -> String {
        let raw = self.out.lock().unwrap().clone();
        regex::Regex::new("\x1b\\[[0-9;]*m").unwrap().replace_all(&raw, "").into_owned()
    }

    /// Waits until `needle` is printed after what was already seen; returns the text up to and
    /// including the line that holds it, and moves past it.
    #[track_caller]
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if let Some(i) = text[self.seen..].find(needle) {
                let at = self.seen + i;
                let end = text[at..].find('\n').map(|j| at + j + 1).unwrap_or(text.len());
                let chunk = text[self.seen..end].to_string();
                self.seen = end;
                return chunk;
            }
            if Instant::now() > deadline {
                panic!("`skyform dev` did not print {needle:?} within {WAIT:?}; it printed:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types Ctrl-C in the terminal and waits for the process to end; returns its exit code.
    fn ctrl_c(&mut self) -> i32 {
        self.master.write_all(b"\x03").unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("`skyform dev` did not stop after Ctrl-C:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").expect("an http:// url");
    let sock: SocketAddr = addr.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, body.to_string())
}

fn py(answer: &str) -> String {
    format!(
        "def handler(event, context):\n    print('hello handled', event['rawPath'])\n    \
         if event.get('rawQueryString') == 'boom':\n        raise ValueError('boom')\n    \
         return {{'statusCode': 200, 'body': '{answer}'}}\n"
    )
}

fn node(answer: &str) -> String {
    format!("exports.handler = async (event) => ({{ statusCode: 200, body: '{answer}' }});\n")
}

fn resources(extra_route: bool) -> Value {
    let mut routes = vec![
        json!({"route": "GET /hello", "function": {"$ref": "hello", "output": "function_name"}}),
        json!({"route": "GET /greet", "function": {"$ref": "greet", "output": "function_name"}}),
    ];
    if extra_route {
        routes.push(json!({"route": "GET /extra", "function": {"$ref": "greet", "output": "function_name"}}));
    }
    json!([
        {"name": "hello", "type": "local:Function", "inputs": {
            "code": "functions/hello", "handler": "app.handler", "runtime": "python3"}},
        {"name": "greet", "type": "local:Function", "inputs": {
            "code": "functions/greet", "handler": "index.handler", "runtime": "nodejs"}},
        {"name": "api", "type": "local:HttpApi", "inputs": {"routes": routes}}
    ])
}

fn project(name: &str) -> TestEnv {
    let env = TestEnv::new(name);
    env.write("functions/hello/app.py", &py("v1"));
    env.write("functions/greet/index.js", &node("n1"));
    env.manifest_with_outputs(resources(false), json!({"url": {"$ref": "api", "output": "url"}}));
    env
}

fn url(env: &TestEnv) -> String {
    let out = env.command(&["outputs", "url"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().trim_matches('"').to_string()
}

#[test]
fn dev_serves_edits_keeps_the_last_good_version_and_leaves_the_stack_up() {
    let env = project("dev");
    let _stop = StopDaemon(&env);
    let mut dev = Dev::start(&env, &["dev"]);
    let start = dev.wait_for("watching 2 functions");
    assert!(start.contains("local:HttpApi") && start.contains("create"), "the plan is shown:\n{start}");
    let url = url(&env);
    assert_eq!(http_get(&url, "/hello"), (200, "v1".into()));
    assert_eq!(http_get(&url, "/greet"), (200, "n1".into()));

    // Every function's logs, interleaved: time, function, request id, what it printed, the
    // duration.
    let logs = dev.wait_for(" END ");
    let line = regex::Regex::new(r"\d\d:\d\d:\d\d\.\d{3} hello +[0-9a-f]{8} hello handled /hello").unwrap();
    assert!(line.is_match(&logs), "a log line of `hello` with its request id:\n{logs}");
    dev.wait_for("greet"); // the Node function's lines too
    let end = regex::Regex::new(r"(hello|greet) +[0-9a-f]{8} END \d+\.\d+ ms").unwrap();
    assert!(end.is_match(&dev.text()), "each request's duration:\n{}", dev.text());

    // A handler edit: served by the next request once `dev` says so, without the program.
    env.write("functions/hello/app.py", &py("v2"));
    let reload = dev.wait_for("reloaded hello: new code served");
    assert!(!reload.contains("running the program"), "a code edit does not run the program:\n{reload}");
    assert_eq!(http_get(&url, "/hello"), (200, "v2".into()));
    env.write("functions/greet/index.js", &node("n2"));
    dev.wait_for("reloaded greet: new code served");
    assert_eq!(http_get(&url, "/greet"), (200, "n2".into()));

    // Syntax errors: reported with the compiler's message, never deployed.
    env.write("functions/hello/app.py", "def handler(event, context)\n    return 1\n");
    let err = dev.wait_for("SyntaxError");
    assert!(
        err.contains("error: hello: the edit does not parse; the running version keeps serving"),
        "{err}"
    );
    assert!(err.contains("functions/hello/app.py\", line 1"), "names the file and line:\n{err}");
    assert_eq!(http_get(&url, "/hello"), (200, "v2".into()));
    env.write("functions/greet/index.js", "exports.handler = async (event) => {\n");
    let err = dev.wait_for("SyntaxError");
    assert!(err.contains("error: greet: the edit does not parse"), "{err}");
    assert!(err.contains("functions/greet/index.js"), "{err}");
    assert_eq!(http_get(&url, "/greet"), (200, "n2".into()));

    // Fixed: served again. A request that raises shows a traceback that names the user's file.
    env.write("functions/hello/app.py", &py("v3"));
    dev.wait_for("reloaded hello");
    assert_eq!(http_get(&url, "/hello"), (200, "v3".into()));
    assert_eq!(http_get(&url, "/hello?boom").0, 502);
    let tb = dev.wait_for("ValueError: boom");
    let tb = format!("{tb}{}", dev.wait_for("File \"functions/hello/app.py\", line 4, in handler"));
    assert!(!tb.contains(".skyform/local/artifacts"), "the local cloud's copy is not shown:\n{tb}");

    // An infrastructure edit (a new route) while `greet` is still broken: the program runs, but
    // its plan would deploy the broken file too, so nothing is applied.
    env.manifest_with_outputs(resources(true), json!({"url": {"$ref": "api", "output": "url"}}));
    let refused = dev.wait_for("greet: the edit does not parse");
    assert!(refused.contains("changed manifest.json: running the program"), "{refused}");
    assert_eq!(http_get(&url, "/extra").0, 404);
    assert_eq!(http_get(&url, "/greet"), (200, "n2".into()));
    // Fixed: the next edit runs the whole change again; the plan is printed and applied.
    env.write("functions/greet/index.js", &node("n3"));
    let applied = dev.wait_for("applied in");
    assert!(applied.contains("local:HttpApi") && applied.contains("update"), "the plan:\n{applied}");
    assert_eq!(http_get(&url, "/extra"), (200, "n3".into()));
    assert_eq!(http_get(&url, "/greet"), (200, "n3".into()));

    // A failing program: reported, nothing changes.
    env.write("manifest.json", "{");
    let err = dev.wait_for("the last good version keeps serving");
    assert!(err.contains("did not produce valid JSON"), "{err}");
    assert_eq!(http_get(&url, "/extra"), (200, "n3".into()));

    // Ctrl-C: stops watching, exits 0, the stack stays deployed and served.
    assert_eq!(dev.ctrl_c(), 0, "{}", dev.text());
    assert!(dev.text().contains("stack `dev` stays deployed and served"), "{}", dev.text());
    assert_eq!(http_get(&url, "/hello"), (200, "v3".into()));
    assert_eq!(env.state()["resources"].as_array().map(Vec::len), Some(3));
}

#[test]
fn dev_down_tears_the_stack_down_on_ctrl_c() {
    let env = project("dev-down");
    let _stop = StopDaemon(&env);
    let mut dev = Dev::start(&env, &["dev", "--down", "--no-logs"]);
    dev.wait_for("watching 2 functions");
    let url = url(&env);
    assert_eq!(http_get(&url, "/hello"), (200, "v1".into()));
    assert_eq!(dev.ctrl_c(), 0, "{}", dev.text());
    let text = dev.text();
    assert!(text.contains("destroying stack `dev` (--down)") && text.contains("3 deleted"), "{text}");
    assert_eq!(env.state()["resources"], json!([]));
    let sock: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    assert!(TcpStream::connect_timeout(&sock, Duration::from_millis(500)).is_err(), "the API is closed");
}
