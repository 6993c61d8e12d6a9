//! The local cloud comes back and holds up, through the real `skyform` binary: `up` after
//! `local stop`, a `kill -9` of the daemon and a wiped `.skyform/local/`; a stopped (`kill
//! -STOP`) daemon; an API port taken at restart; 1,100 idle connections under a soft
//! open-files limit of 1024; half-sent requests; processes a function started itself after a
//! `kill -9` of the daemon; AWS's size limits.
//!
//! The program is `cat manifest.json` (no cargo build) and the function is Python on the
//! standard library, so each test takes seconds.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{StopDaemon, TestEnv};
use serde_json::{Value, json};

const APP: &str = r#"import subprocess

def handler(event, context):
    if event.get("rawPath") == "/spawn":
        # A process the function starts itself, in its process group.
        p = subprocess.Popen(["sleep", "300"])
        return {"statusCode": 200, "body": str(p.pid)}
    body = event.get("body") or ""
    return {"statusCode": 200, "body": "hello %d" % len(body)}
"#;

/// A project with one function behind an HTTP API, deployed.
fn deployed(name: &str) -> TestEnv {
    let env = TestEnv::new(name);
    env.write("functions/hello/app.py", APP);
    env.manifest_with_outputs(
        json!([
            {"name": "hello", "type": "local:Function", "inputs": {
                "code": "functions/hello", "handler": "app.handler", "runtime": "python3"}},
            {"name": "api", "type": "local:HttpApi", "inputs": {"routes": [
                {"route": "ANY /{proxy+}", "function": {"$ref": "hello", "output": "function_name"}}]}}
        ]),
        json!({"url": {"$ref": "api", "output": "url"}}),
    );
    env.run(&["up", "--yes"]).ok();
    env
}

fn url(env: &TestEnv) -> String {
    env.run(&["outputs", "url"]).ok().stdout.trim().trim_matches('"').to_string()
}

fn daemon_pid(env: &TestEnv) -> i32 {
    let v: Value = serde_json::from_str(&env.read(".skyform/local/daemon.json")).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_dead(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started (through skyform).
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid}");
}

/// Sends raw bytes to the API and reads the answer: (status, body).
fn exchange(base: &str, raw: &[u8]) -> (u16, String) {
    let sock: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before it has read everything: ignore a broken pipe.
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    (head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap(), body.to_string())
}

fn get(base: &str, path: &str) -> (u16, String) {
    exchange(base, format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
}

fn post(base: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut raw = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(base, &raw)
}

#[test]
fn up_brings_back_what_the_state_records_after_stop_kill_and_wipe() {
    let env = deployed("recover");
    let _stop = StopDaemon(&env);
    let base = url(&env);
    assert_eq!(get(&base, "/x"), (200, "hello 0".into()));

    // `local stop`: up starts it, it restores its registry, says so, and serves.
    env.run(&["local", "stop"]).ok();
    let up = env.run(&["up", "--yes"]);
    assert!(up.ok().stderr.contains("started the local cloud (it was not running)"), "{}", up.text());
    assert_eq!(get(&base, "/x"), (200, "hello 0".into()));

    // kill -9: the same.
    let pid = daemon_pid(&env);
    signal(pid, libc::SIGKILL);
    assert!(wait_dead(pid));
    env.run(&["up", "--yes"]).ok();
    assert_eq!(get(&base, "/x"), (200, "hello 0".into()));

    // A wiped .skyform/local: up recreates what the state records, and says so.
    env.run(&["local", "stop"]).ok();
    std::fs::remove_dir_all(env.path().join(".skyform/local")).unwrap();
    let up = env.run(&["up", "--yes"]);
    let text = up.ok().text();
    assert!(text.contains("2 local resource(s) that are not running (.skyform/local was deleted)"), "{text}");
    assert!(text.contains("+  2 created"), "{text}");
    assert_eq!(get(&url(&env), "/x"), (200, "hello 0".into()));
    // Converged: the next up changes nothing and says nothing about the local cloud.
    let again = env.run(&["up", "--yes"]);
    assert!(!again.ok().stderr.contains("local cloud"), "{}", again.text());
}

#[test]
fn a_stopped_daemon_gives_an_error_naming_it_and_stop_kills_it() {
    let env = deployed("sigstop");
    let _stop = StopDaemon(&env);
    let pid = daemon_pid(&env);
    signal(pid, libc::SIGSTOP);
    let t = Instant::now();
    let status = env.run(&["local", "status"]);
    assert_eq!(
        status.code,
        1,
        "{}\n(the daemon {pid}: {:?}; daemon.json now: {})",
        status.text(),
        std::fs::read_to_string(format!("/proc/{pid}/stat")),
        env.read(".skyform/local/daemon.json")
    );
    assert!(t.elapsed() < Duration::from_secs(30), "status waited {:?}", t.elapsed());
    assert!(status.stderr.contains("did not answer `GET /v1/status` within 5 s"), "{}", status.text());
    assert!(status.stderr.contains("skyform local stop"), "{}", status.text());
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("did not answer"), "{}", up.text());

    // `local stop` kills the daemon that does not answer; the next up starts a new one.
    env.run(&["local", "stop"]).ok();
    assert!(wait_dead(pid), "the stopped daemon was not killed");
    env.run(&["up", "--yes"]).ok();
    assert_ne!(daemon_pid(&env), pid);
    assert_eq!(get(&url(&env), "/x"), (200, "hello 0".into()));
}

#[test]
fn an_api_port_taken_at_restart_is_drift_and_is_retried() {
    let env = deployed("porttaken");
    let _stop = StopDaemon(&env);
    let base = url(&env);
    env.run(&["local", "stop"]).ok();
    let squatter = std::net::TcpListener::bind(base.strip_prefix("http://").unwrap()).unwrap();

    env.run(&["local", "start"]).ok();
    let status: Value = serde_json::from_str(&env.run(&["local", "status", "--json"]).ok().stdout).unwrap();
    assert_eq!(status["apis"][0]["listening"], json!(false), "{status}");
    let refresh = env.run(&["refresh", "--preview-only"]);
    assert!(refresh.ok().stdout.contains("local:HttpApi  api  deleted"), "{}", refresh.text());
    // up does not report success while the API is down; it names the port.
    let up = env.run(&["up", "--yes"]);
    assert_ne!(up.code, 0, "{}", up.text());
    assert!(up.stderr.contains("not listening: its port is taken"), "{}", up.text());
    let port = base.rsplit(':').next().unwrap();
    assert!(up.text().contains(&format!("cannot listen on its port {port} again")), "{}", up.text());

    // Freed: the daemon binds it again by itself (it retries every second), and up converges.
    drop(squatter);
    let t = Instant::now();
    loop {
        let s: Value = serde_json::from_str(&env.run(&["local", "status", "--json"]).ok().stdout).unwrap();
        if s["apis"][0]["listening"] == json!(true) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the daemon did not bind the freed port: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(&base, "/x"), (200, "hello 0".into()));
    env.run(&["up", "--yes"]).ok();
    assert_eq!(url(&env), base, "the API keeps its port");
    assert!(env.run(&["refresh", "--preview-only"]).ok().stdout.contains("no drift"));
}

#[test]
fn idle_and_half_sent_connections_do_not_lock_out_requests() {
    // The daemon inherits a soft open-files limit of 1024 (the common default) and raises it.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on this test process with a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        assert!(lim.rlim_max >= 4096, "this test needs a hard open-files limit of 4096 or more");
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let env = deployed("idleconns");
    let _stop = StopDaemon(&env);
    env.run(&["local", "stop"]).ok();
    let mut start = env.command(&["local", "start"]);
    start.env("SKYFORM_LOCAL_CONN_TIMEOUT_SECS", "3");
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        start.pre_exec(|| {
            let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
            l.rlim_cur = 1024;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            Ok(())
        });
    }
    assert!(start.output().unwrap().status.success());
    assert!(env.read(".skyform/local/daemon.log").contains("open-files limit raised from 1024"));
    let base = url(&env);
    let sock: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();

    let idle: Vec<TcpStream> = (0..1100).map(|_| TcpStream::connect(sock).expect("connect")).collect();
    // A half-sent request: its head, and 10 of the 100 bytes its body announces.
    let mut half = TcpStream::connect(sock).unwrap();
    half.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").unwrap();
    let t = Instant::now();
    assert_eq!(get(&base, "/x"), (200, "hello 0".into()), "a request beside 1,100 idle connections");
    assert!(env.run(&["local", "status"]).ok().stdout.contains("api"), "the control API answers");
    assert!(t.elapsed() < Duration::from_secs(10));

    // After the connection timeout (3 s here) the idle and the half-sent ones are closed.
    for mut s in idle.into_iter().step_by(100).chain([half]) {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = Vec::new();
        let read = s.read_to_end(&mut buf);
        assert!(read.is_ok(), "the connection was not closed: {read:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn processes_a_function_started_die_after_a_kill_9_of_the_daemon() {
    let env = deployed("pgroups");
    let _stop = StopDaemon(&env);
    let (status, body) = get(&url(&env), "/spawn");
    assert_eq!(status, 200, "{body}");
    let child: i32 = body.trim().parse().unwrap();
    assert!(alive(child));
    let pid = daemon_pid(&env);
    signal(pid, libc::SIGKILL);
    assert!(wait_dead(pid));
    // The function process dies with the daemon; what it started does not (it is not its
    // parent's death signal's to kill)...
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(child), "the function's own child should outlive the daemon until the next one starts");
    // ...until the next daemon starts and ends it.
    env.run(&["local", "start"]).ok();
    assert!(wait_dead(child), "the restarted daemon did not kill the leftover process {child}");
    assert!(env.read(".skyform/local/daemon.log").contains("killed 1 process(es)"));
}

#[test]
fn aws_size_limits_with_aws_answers() {
    let env = deployed("limits");
    let _stop = StopDaemon(&env);
    let base = url(&env);
    // API Gateway: bodies over 10 MB are 413, whatever the function.
    let (status, body) = post(&base, "text/plain", &vec![b'a'; 12 * 1024 * 1024]);
    assert_eq!((status, body.as_str()), (413, r#"{"message":"Request Entity Too Large"}"#));
    // Headers over 10 KB are refused.
    let raw = format!(
        "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(100 * 1024)
    );
    let (status, body) = exchange(&base, raw.as_bytes());
    assert_eq!((status, body.as_str()), (431, r#"{"message":"Request Header Fields Too Large"}"#));
    // Under 10 MB but over Lambda's 6 MB event: 413 too.
    let (status, _) = post(&base, "text/plain", &vec![b'a'; 7 * 1024 * 1024]);
    assert_eq!(status, 413);
    // Within both: served.
    assert_eq!(
        post(&base, "text/plain", &vec![b'a'; 5 * 1024 * 1024]),
        (200, format!("hello {}", 5 * 1024 * 1024))
    );
    // A 9 KB header is fine.
    let raw =
        format!("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(9 * 1024));
    assert_eq!(exchange(&base, raw.as_bytes()).0, 200);

    // An invocation over Lambda's 6 MB payload limit (what `skyform invoke` sends to the
    // control API), refused with the limit named.
    let daemon: Value = serde_json::from_str(&env.read(".skyform/local/daemon.json")).unwrap();
    let token = env.read(".skyform/local/token");
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(7 * 1024 * 1024));
    let mut raw = format!(
        "POST /v1/stacks/dev/functions/hello/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        token.trim(),
        big.len()
    )
    .into_bytes();
    raw.extend_from_slice(big.as_bytes());
    let (status, body) = exchange(&format!("http://127.0.0.1:{}", daemon["port"]), &raw);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("Lambda takes at most 6291456 bytes (6 MB)"), "{body}");

    // Lambda's Invoke on the AWS endpoint, with boto3: the error AWS gives.
    let venv = common::peers_venv();
    let out = env.command(&["local", "env"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut py = std::process::Command::new(format!("{venv}/bin/python"));
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (k, v) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
        py.env(k, v.trim_matches('\''));
    }
    let script = r#"
import boto3, botocore.config
c = boto3.client("lambda", config=botocore.config.Config(retries={"max_attempts": 1}))
try:
    c.invoke(FunctionName="hello", Payload=b'{"x": "' + b"a" * (7 * 1024 * 1024) + b'"}')
    print("accepted")
except c.exceptions.RequestTooLargeException as e:
    print("RequestTooLarge", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
except Exception as e:
    print("other", type(e).__name__, getattr(e, "response", {}).get("Error"))
ok = c.invoke(FunctionName="hello", Payload=b'{"rawPath": "/x"}')
print("small", ok["StatusCode"])
"#;
    let out = py.args(["-c", script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RequestTooLargeException 413"), "{text}");
    assert!(text.contains("small 200"), "{text}");
}
