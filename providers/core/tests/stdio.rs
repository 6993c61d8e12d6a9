//! The `core` provider as a real process: requests on stdin, answers on stdout.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};
use skyform_protocol::{CreateResponse, HandshakeResponse, PROTOCOL_VERSION, ReadResponse, Response};

struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Provider {
    fn spawn() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skyform-provider-core"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn skyform-provider-core");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Provider { child, stdin, stdout }
    }

    fn send(&mut self, id: u64, method: &str, params: Value) {
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Response {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the provider closed stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a response: {line:?}: {e}"))
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Response {
        self.send(id, method, params);
        let r = self.recv();
        assert_eq!(r.id, id);
        r
    }
}

#[test]
fn speaks_the_protocol_over_stdio() {
    let project =
        std::env::temp_dir().join(format!("skyform-core-stdio-{}", skyform_provider_core::new_id()));
    std::fs::create_dir_all(&project).unwrap();
    let mut p = Provider::spawn();

    let r =
        p.call(1, "handshake", json!({"protocol_versions": [PROTOCOL_VERSION], "engine_version": "test"}));
    let hs: HandshakeResponse = serde_json::from_value(r.result.unwrap()).unwrap();
    assert_eq!((hs.protocol_version, hs.name.as_str()), (PROTOCOL_VERSION, "core"));
    assert!(hs.resources.contains_key("core:Data") && hs.resources.contains_key("core:Command"));

    let r = p.call(
        2,
        "configure",
        json!({"project": "p", "stack": "dev", "project_dir": project.to_str().unwrap(), "config": {}, "dry_run": false}),
    );
    assert_eq!(r.result, Some(json!({})));

    // Several requests in flight: a slow command does not hold up a check sent after it.
    p.send(
        3,
        "create",
        json!({"type": "core:Command", "name": "slow", "inputs": {"create": "sleep 0.5; echo done"}}),
    );
    p.send(4, "check", json!({"type": "core:Command", "name": "bad", "inputs": {"create": ""}}));
    let first = p.recv();
    assert_eq!(first.id, 4, "the check should be answered before the slow create");
    assert_eq!(first.result.unwrap()["failures"][0]["property"], json!("create"));
    let second = p.recv();
    assert_eq!(second.id, 3);
    let created: CreateResponse = serde_json::from_value(second.result.unwrap()).unwrap();
    assert_eq!(created.outputs["stdout"], json!("done"));

    let r = p.call(5, "create", json!({"type": "core:Command", "name": "x", "inputs": {"create": "exit 4"}}));
    let err = r.error.unwrap();
    assert_eq!(serde_json::to_value(err.code).unwrap(), json!("failed"));
    assert!(err.message.contains("exited with code 4"), "{}", err.message);

    let r = p.call(6, "create", json!({"type": "core:Data", "name": "d", "inputs": {"value": "v"}}));
    let data: CreateResponse = serde_json::from_value(r.result.unwrap()).unwrap();
    let r = p.call(
        7,
        "read",
        json!({"type": "core:Data", "name": "d", "id": data.id, "inputs": {"value": "v"}, "outputs": data.outputs}),
    );
    let read: ReadResponse = serde_json::from_value(r.result.unwrap()).unwrap();
    assert_eq!(read.resource.unwrap().outputs, json!({"value": "v"}));

    let r = p.call(8, "create", json!({"type": "core:Nope", "name": "n", "inputs": {}}));
    assert_eq!(serde_json::to_value(r.error.unwrap().code).unwrap(), json!("unsupported"));

    // Closing stdin ends the provider cleanly.
    drop(p.stdin);
    let status = p.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&project);
}
