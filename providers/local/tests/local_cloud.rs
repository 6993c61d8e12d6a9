//! The local cloud end to end: real daemon, real function processes, real HTTP.

mod common;

use common::*;
use serde_json::json;

#[test]
fn python_function_serves_an_http_route_through_the_shim() {
    let p = Project::new("py-route");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    let f = prov.function(
        "hello",
        "functions/hello",
        "python3.12",
        "app.handler",
        json!({"environment": {"GREETING": "hi"}}),
    );
    assert_eq!(f["function_name"], "hello");
    assert_eq!(f["arn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
    let api = prov.api("api", &[("GET /hello/{name}", "hello")]);
    let port = port_of(&api);
    assert_eq!(api["url"], format!("http://127.0.0.1:{port}"));

    let r = http(
        port,
        "GET",
        "/hello/ann?x=1&x=2&y=%20z",
        &[("Cookie", "a=1; b=2"), ("X-Multi", "1"), ("X-Multi", "2")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let ev = &body["event"];
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "GET /hello/{name}");
    assert_eq!(ev["rawPath"], "/hello/ann");
    assert_eq!(ev["rawQueryString"], "x=1&x=2&y=%20z");
    assert_eq!(ev["pathParameters"], json!({"name": "ann"}));
    assert_eq!(ev["queryStringParameters"], json!({"x": "1,2", "y": " z"}));
    assert_eq!(ev["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(ev["headers"]["x-multi"], "1,2");
    assert_eq!(ev["headers"]["x-forwarded-proto"], "http");
    assert_eq!(ev["headers"]["x-forwarded-port"], port.to_string());
    assert_eq!(r.header("apigw-requestid"), vec![ev["requestContext"]["requestId"].as_str().unwrap()]);
    assert_eq!(ev["requestContext"]["http"]["method"], "GET");
    assert_eq!(ev["requestContext"]["stage"], "$default");
    assert_eq!(ev["requestContext"]["apiId"], api["api_id"]);
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(body["function"], "hello");
    assert_eq!(body["greeting"], "hi");
    assert!(body["remaining"].as_u64().unwrap() > 2000);

    // Warm: a second request reuses the environment.
    let r2 = http(port, "GET", "/hello/bob", &[], b"");
    assert_eq!(r2.json()["event"]["pathParameters"]["name"], "bob");
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    assert_eq!(st.functions[0].environments, 1);
}

const PY_MAPPING: &str = r#"
import base64, json, os, time

def bare(event, context):
    return {"hello": "world", "n": 1}

def string(event, context):
    return "plain text"

def binary(event, context):
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/octet-stream", "x-len": len(raw)},
        "cookies": ["s=1; Path=/", "t=2"],
        "body": base64.b64encode(raw[::-1]).decode(),
        "isBase64Encoded": True,
    }

def echo(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}

def boom(event, context):
    raise ValueError("kaboom")

def slow(event, context):
    if event.get("rawPath", "").endswith("/fast"):
        return {"pid": os.getpid()}
    time.sleep(30)

def crash(event, context):
    if event.get("rawPath", "").endswith("/ok"):
        return {"pid": os.getpid()}
    os._exit(7)
"#;

#[test]
fn http_mapping_follows_api_gateway() {
    let p = Project::new("mapping");
    p.write("functions/m/app.py", PY_MAPPING);
    let mut prov = Provider::start(&p, "dev");
    for (name, handler) in
        [("bare", "app.bare"), ("string", "app.string"), ("binary", "app.binary"), ("echo", "app.echo")]
    {
        prov.function(name, "functions/m", "python3", handler, json!({}));
    }
    let api = prov.api(
        "api",
        &[
            ("GET /bare", "bare"),
            ("GET /string", "string"),
            ("POST /bin", "binary"),
            ("ANY /{proxy+}", "echo"),
            ("GET /items/{id}", "echo"),
        ],
    );
    let port = port_of(&api);

    let r = http(port, "GET", "/bare", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), vec!["application/json"]);
    assert_eq!(r.json(), json!({"hello": "world", "n": 1}));

    let r = http(port, "GET", "/string", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "plain text"));

    let payload: Vec<u8> = vec![0, 159, 146, 150, 255, 1];
    let r = http(port, "POST", "/bin", &[("Content-Type", "application/octet-stream")], &payload);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.body, payload.iter().rev().cloned().collect::<Vec<u8>>());
    assert_eq!(r.header("x-len"), vec!["6"]);
    assert_eq!(r.header("set-cookie"), vec!["s=1; Path=/", "t=2"]);

    // Greedy path, text body stays text, JSON body too.
    let r = http(port, "PUT", "/a/b/c", &[("Content-Type", "application/json")], br#"{"k":1}"#);
    let ev = r.json();
    assert_eq!(ev["routeKey"], "ANY /{proxy+}");
    assert_eq!(ev["pathParameters"], json!({"proxy": "a/b/c"}));
    assert_eq!(ev["body"], r#"{"k":1}"#);
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(ev["requestContext"]["http"]["method"], "PUT");
    assert!(ev.get("queryStringParameters").is_none());

    // A parameterised route beats the greedy one.
    let r = http(port, "GET", "/items/42", &[], b"");
    assert_eq!(r.json()["pathParameters"], json!({"id": "42"}));

    // Binary body to the echo: base64.
    let r = http(port, "POST", "/x", &[("Content-Type", "image/png")], &[1, 2, 3]);
    assert_eq!(r.json()["body"], "AQID");
    assert_eq!(r.json()["isBase64Encoded"], true);
}

#[test]
fn unknown_route_is_404_and_errors_are_502_and_503() {
    let p = Project::new("errors");
    p.write("functions/m/app.py", PY_MAPPING);
    p.write("functions/broken/app.py", "import no_such_module\n\ndef handler(e, c):\n    return 1\n");
    let mut prov = Provider::start(&p, "dev");
    prov.function("boom", "functions/m", "python3", "app.boom", json!({}));
    prov.function("slow", "functions/m", "python3", "app.slow", json!({"timeout": 1}));
    prov.function("crash", "functions/m", "python3", "app.crash", json!({}));
    prov.function("broken", "functions/broken", "python3", "app.handler", json!({}));
    let api = prov.api(
        "api",
        &[
            ("GET /boom", "boom"),
            ("GET /slow/{x}", "slow"),
            ("GET /crash/{x}", "crash"),
            ("GET /broken", "broken"),
        ],
    );
    let port = port_of(&api);

    let r = http(port, "GET", "/nope", &[], b"");
    assert_eq!((r.status, r.json()), (404, json!({"message": "Not Found"})));

    let r = http(port, "GET", "/boom", &[], b"");
    assert_eq!((r.status, r.json()), (502, json!({"message": "Internal Server Error"})));
    assert!(
        eventually(5, || p
            .log_records("dev", "boom")
            .iter()
            .any(|l| l.message.contains("ValueError: kaboom"))),
        "{:?}",
        p.log_records("dev", "boom")
    );
    // The environment survives a handler error.
    let r = http(port, "GET", "/boom", &[], b"");
    assert_eq!(r.status, 502);

    // Timeout: 503, and the environment is replaced.
    let first = http(port, "GET", "/slow/fast", &[], b"").json()["pid"].as_u64().unwrap();
    let r = http(port, "GET", "/slow/sleep", &[], b"");
    assert_eq!((r.status, r.json()), (503, json!({"message": "Service Unavailable"})));
    assert!(eventually(5, || !alive(first as u32)), "timed-out environment still alive");
    let second = http(port, "GET", "/slow/fast", &[], b"").json()["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    assert!(
        eventually(5, || p
            .log_records("dev", "slow")
            .iter()
            .any(|l| l.message.contains("Task timed out after 1.00 seconds"))),
        "{:?}",
        p.log_records("dev", "slow")
    );

    // Crash: the request fails, the next gets a new process.
    let first = http(port, "GET", "/crash/ok", &[], b"").json()["pid"].as_u64().unwrap();
    let r = http(port, "GET", "/crash/die", &[], b"");
    assert_eq!(r.status, 502);
    let second = http(port, "GET", "/crash/ok", &[], b"").json()["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    let out = rt().block_on(skyform_local::invoke(&p.dir, "dev", "crash", br#"{"rawPath":"/die"}"#)).unwrap();
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    let err: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(err["errorType"], "Runtime.ExitError");

    // Import failure: init error, 502, and the gateway stays up.
    let r = http(port, "GET", "/broken", &[], b"");
    assert_eq!(r.status, 502);
    let out = rt().block_on(skyform_local::invoke(&p.dir, "dev", "broken", b"{}")).unwrap();
    let err: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(err["errorType"], "Runtime.ImportModuleError", "{err}");
    assert!(err["errorMessage"].as_str().unwrap().contains("no_such_module"));
    assert_eq!(http(port, "GET", "/boom", &[], b"").status, 502);
}

#[test]
fn logs_have_start_end_report_per_request() {
    let p = Project::new("logs");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    prov.function("hello", "functions/hello", "python3", "app.handler", json!({"memory": 256}));
    let mut ids = Vec::new();
    for i in 0..3 {
        let out = rt()
            .block_on(skyform_local::invoke(
                &p.dir,
                "dev",
                "hello",
                format!(r#"{{"rawPath":"/r{i}"}}"#).as_bytes(),
            ))
            .unwrap();
        assert_eq!(out.function_error, None);
        ids.push(out.request_id);
    }
    let mut logs = Vec::new();
    assert!(eventually(5, || {
        logs = p.log_records("dev", "hello");
        logs.iter().filter(|l| l.message.starts_with("REPORT")).count() == 3
    }));
    for (i, id) in ids.iter().enumerate() {
        let mine: Vec<&str> =
            logs.iter().filter(|l| l.request_id.as_deref() == Some(id)).map(|l| l.message.as_str()).collect();
        assert_eq!(mine.first().unwrap(), &format!("START RequestId: {id} Version: $LATEST"));
        // Printed lines land between START and END, attributed to their request.
        let echo = mine.iter().position(|m| *m == format!("echo /r{i}")).expect("printed line");
        let end = mine.iter().position(|m| *m == format!("END RequestId: {id}")).expect("END");
        assert!(echo < end, "{mine:?}");
        let report = mine.iter().find(|m| m.starts_with("REPORT")).unwrap();
        assert!(report.contains("Memory Size: 256 MB") && report.contains("Max Memory Used: "), "{report}");
        assert!(!report.contains("Max Memory Used: 0 MB"), "{report}");
    }
    let bad = rt().block_on(skyform_local::invoke(&p.dir, "dev", "hello", b"{not json")).unwrap_err();
    assert!(bad.message.contains("not valid JSON"), "{bad}");
    let missing = rt().block_on(skyform_local::invoke(&p.dir, "dev", "ghost", b"{}")).unwrap_err();
    assert!(missing.message.contains("no function `ghost`"), "{missing}");
    // since filters by time.
    let mut later = Vec::new();
    let future = skyform_local::logs::now_ms() + 60_000;
    rt().block_on(skyform_local::logs(&p.dir, "dev", "hello", Some(future), false, &mut |r| {
        later.push(r);
        true
    }))
    .unwrap();
    assert!(later.is_empty());
}

#[test]
fn daemon_restart_keeps_ports_and_registry() {
    let p = Project::new("restart");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    prov.function("hello", "functions/hello", "python3", "app.handler", json!({}));
    let api = prov.api("api", &[("GET /hello/{name}", "hello")]);
    let port = port_of(&api);
    assert_eq!(http(port, "GET", "/hello/a", &[], b"").status, 200);
    let fn_pids = function_pids(&p.dir);
    assert_eq!(fn_pids.len(), 1);

    // The control API wants the token, which only the owner can read.
    use std::os::unix::fs::PermissionsExt;
    let token = std::fs::metadata(p.dir.join(".skyform/local/token")).unwrap();
    assert_eq!(token.permissions().mode() & 0o777, 0o600);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.dir.join(".skyform/local/daemon.json")).unwrap())
            .unwrap();
    let control = info["port"].as_u64().unwrap() as u16;
    assert_eq!(http(control, "GET", "/v1/status", &[], b"").status, 401);
    assert_eq!(http(control, "GET", "/v1/status", &[("Authorization", "Bearer wrong")], b"").status, 401);

    // kill -9: the function process dies with it, the next provider call brings it back.
    let pid = p.daemon_pid().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(5, || !alive(pid)));
    assert!(eventually(5, || fn_pids.iter().all(|p| !alive(*p))), "function outlived its daemon");
    let read = prov
        .call("read", json!({"type": "local:HttpApi", "name": "api", "id": api["api_id"], "inputs": {}, "outputs": api}))
        .unwrap();
    assert_eq!(read["resource"]["outputs"]["port"], port);
    assert_ne!(p.daemon_pid().unwrap(), pid);
    assert_eq!(http(port, "GET", "/hello/b", &[], b"").json()["event"]["pathParameters"]["name"], "b");

    // A clean stop and start too.
    assert!(skyform_local::stop(&p.dir).unwrap());
    assert!(skyform_local::status(&p.dir).unwrap().is_none());
    assert!(try_http(port, "GET", "/hello/c", &[], b"").is_err());
    let st = skyform_local::start_with_exe(&p.dir, Some(std::path::Path::new(EXE))).unwrap();
    assert_eq!(st.apis[0].port, port);
    assert!(st.apis[0].listening);
    assert_eq!(http(port, "GET", "/hello/c", &[], b"").status, 200);

    // Changing the routes keeps the port (and the id).
    let olds = json!({"routes": [{"route": "GET /hello/{name}", "function": "hello"}]});
    let news = json!({"routes": [{"route": "GET /hi/{name}", "function": "hello"}]});
    let up = prov
        .call("update", json!({"type": "local:HttpApi", "name": "api", "id": api["api_id"], "olds": olds, "news": news, "old_outputs": api}))
        .unwrap();
    assert_eq!(up["outputs"], api);
    assert_eq!(http(port, "GET", "/hello/d", &[], b"").status, 404);
    assert_eq!(http(port, "GET", "/hi/d", &[], b"").json()["event"]["routeKey"], "GET /hi/{name}");
}

#[test]
fn destroy_leaves_no_process_and_no_port() {
    let p = Project::new("destroy");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    let f = prov.function("hello", "functions/hello", "python3", "app.handler", json!({}));
    let api = prov.api("api", &[("ANY /{proxy+}", "hello")]);
    let port = port_of(&api);
    // Several environments at once.
    let handles: Vec<_> =
        (0..4).map(|_| std::thread::spawn(move || http(port, "GET", "/x", &[], b"").status)).collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert!(!function_pids(&p.dir).is_empty());
    // An interrupted create is resolved by reading without an id.
    let found = prov
        .call(
            "read",
            json!({"type": "local:HttpApi", "name": "api", "id": null, "inputs": {}, "outputs": null}),
        )
        .unwrap();
    assert_eq!(found["resource"]["id"], api["api_id"]);
    prov.call(
        "delete",
        json!({"type": "local:HttpApi", "name": "api", "id": api["api_id"], "inputs": {}, "outputs": api}),
    )
    .unwrap();
    assert!(try_http(port, "GET", "/x", &[], b"").is_err(), "port still open");
    prov.call(
        "delete",
        json!({"type": "local:Function", "name": "hello", "id": "hello", "inputs": {}, "outputs": f}),
    )
    .unwrap();
    assert!(
        eventually(5, || function_pids(&p.dir).is_empty()),
        "processes left: {:?}",
        function_pids(&p.dir)
    );
    let read = prov
        .call(
            "read",
            json!({"type": "local:Function", "name": "hello", "id": "hello", "inputs": {}, "outputs": f}),
        )
        .unwrap();
    assert_eq!(read["resource"], serde_json::Value::Null);
}

#[test]
fn check_reports_bad_inputs() {
    let p = Project::new("check");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    let base = json!({"code": "functions/hello", "build": null, "handler": "app.handler", "runtime": "python3",
                      "environment": {}, "memory": 128, "timeout": 3, "reserved_concurrency": null});

    let mut missing = base.clone();
    missing["code"] = json!("functions/nope");
    let r = prov.check("local:Function", "f", missing);
    assert_eq!(r["failures"][0]["property"], "code");
    assert!(r["failures"][0]["reason"].as_str().unwrap().contains("functions/nope"));

    let mut bad_rt = base.clone();
    bad_rt["runtime"] = json!("cobol");
    let r = prov.check("local:Function", "f", bad_rt);
    assert_eq!(r["failures"][0]["property"], "runtime");
    assert!(r["failures"][0]["reason"].as_str().unwrap().contains("python3"));

    // Same code, same hash: no diff. Changed code: a diff on code_hash.
    let a = prov.check("local:Function", "f", base.clone())["inputs"].clone();
    let b = prov.check("local:Function", "f", base.clone())["inputs"].clone();
    assert_eq!(a["code_hash"].as_str().unwrap().len(), 64);
    let d = prov.call("diff", json!({"type": "local:Function", "name": "f", "id": "f", "olds": a, "news": b, "old_outputs": {}})).unwrap();
    assert_eq!(d["changed"], json!([]));
    p.write("functions/hello/extra.py", "X = 1\n");
    let c = prov.check("local:Function", "f", base.clone())["inputs"].clone();
    let d = prov.call("diff", json!({"type": "local:Function", "name": "f", "id": "f", "olds": a, "news": c, "old_outputs": {}})).unwrap();
    assert_eq!(d["changed"], json!(["code_hash"]));

    let r = prov.check("local:HttpApi", "api", json!({"routes": [{"route": "GET hello", "function": "f"}]}));
    assert_eq!(r["failures"][0]["property"], "routes[0].route");

    // A route naming an unknown function fails at create.
    let checked =
        prov.check("local:HttpApi", "api", json!({"routes": [{"route": "GET /x", "function": "ghost"}]}));
    let err = prov
        .call("create", json!({"type": "local:HttpApi", "name": "api", "inputs": checked["inputs"]}))
        .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("ghost"), "{err}");
}

const NODE_APP: &str = r#"
exports.handler = async (event, context) => {
  console.log("node got", event.rawPath);
  return { statusCode: 200, headers: { "content-type": "application/json" },
           body: JSON.stringify({ path: event.rawPath, id: context.awsRequestId, fn: context.functionName,
                                  left: context.getRemainingTimeInMillis() }) };
};
exports.callback = (event, context, cb) => { setTimeout(() => cb(null, { via: "callback" }), 5); };
exports.fails = async () => { throw new TypeError("bad node"); };
exports.sync = (event) => ({ sync: true });
"#;

#[test]
fn node_function_async_and_callback_handlers() {
    require("node", "install Node.js 18 or later (Debian: apt-get install nodejs)");
    let p = Project::new("node");
    p.write("functions/n/index.js", NODE_APP);
    let mut prov = Provider::start(&p, "dev");
    prov.function("async", "functions/n", "nodejs20.x", "index.handler", json!({}));
    prov.function("cb", "functions/n", "nodejs", "index.callback", json!({}));
    prov.function("fails", "functions/n", "nodejs", "index.fails", json!({}));
    prov.function("sync", "functions/n", "nodejs", "index.sync", json!({}));
    // ES modules: `"type": "module"` packages and `.mjs` files.
    p.write("functions/esm/package.json", r#"{"type": "module"}"#);
    p.write("functions/esm/index.js", "export const handler = async (e) => ({ esm: e.rawPath });\n");
    prov.function("esm", "functions/esm", "nodejs22.x", "index.handler", json!({}));
    let api = prov.api(
        "api",
        &[
            ("GET /a", "async"),
            ("GET /cb", "cb"),
            ("GET /f", "fails"),
            ("GET /esm", "esm"),
            ("GET /sync", "sync"),
        ],
    );
    let port = port_of(&api);
    let r = http(port, "GET", "/a", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!((b["path"].as_str(), b["fn"].as_str()), (Some("/a"), Some("async")));
    assert!(b["left"].as_u64().unwrap() > 1000);
    assert_eq!(http(port, "GET", "/cb", &[], b"").json(), json!({"via": "callback"}));
    assert_eq!(http(port, "GET", "/esm", &[], b"").json(), json!({"esm": "/esm"}));
    assert_eq!(http(port, "GET", "/sync", &[], b"").json(), json!({"sync": true}));
    assert_eq!(http(port, "GET", "/f", &[], b"").status, 502);
    let out = rt().block_on(skyform_local::invoke(&p.dir, "dev", "fails", b"{}")).unwrap();
    let err: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(
        (err["errorType"].as_str(), err["errorMessage"].as_str()),
        (Some("TypeError"), Some("bad node"))
    );
    assert!(eventually(5, || p
        .log_records("dev", "async")
        .iter()
        .any(|l| l.message.contains("node got /a"))));
}

/// The official Python runtime client, unchanged, against our Runtime API.
#[test]
fn python_function_through_official_awslambdaric() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash").arg(root.join("tests/peers/setup.sh")).output().unwrap();
    assert!(out.status.success(), "tests/peers/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let venv = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let python = format!("{venv}/bin/python");

    let p = Project::new("ric");
    p.write("functions/hello/app.py", PY_ECHO);
    p.write("functions/m/app.py", PY_MAPPING);
    p.write("functions/broken/app.py", "import no_such_module\n");
    let env = json!({"environment": {"SKYFORM_PYTHON": python, "SKYFORM_PYTHON_RIC": "awslambdaric"}});
    let mut prov = Provider::start(&p, "dev");
    prov.function("hello", "functions/hello", "python3.12", "app.handler", env.clone());
    prov.function("boom", "functions/m", "python3", "app.boom", env.clone());
    prov.function("broken", "functions/broken", "python3", "app.handler", env.clone());
    let api =
        prov.api("api", &[("GET /hello/{name}", "hello"), ("GET /boom", "boom"), ("GET /broken", "broken")]);
    let port = port_of(&api);
    for name in ["ann", "bob", "cy"] {
        let r = http(port, "GET", &format!("/hello/{name}"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["event"]["pathParameters"]["name"], name);
        assert_eq!(r.header("x-request-id").len(), 1);
    }
    assert_eq!(http(port, "GET", "/boom", &[], b"").status, 502);
    let out = rt().block_on(skyform_local::invoke(&p.dir, "dev", "boom", b"{}")).unwrap();
    let err: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(err["errorType"], "ValueError");
    assert_eq!(http(port, "GET", "/broken", &[], b"").status, 502);
    let out = rt().block_on(skyform_local::invoke(&p.dir, "dev", "broken", b"{}")).unwrap();
    let err: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(err["errorType"], "Runtime.ImportModuleError", "{err}");
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    assert_eq!(st.functions.iter().find(|f| f.name == "hello").unwrap().environments, 1);
}

#[test]
fn code_update_fails_no_request() {
    let p = Project::new("update");
    p.write("functions/v/app.py", "def handler(e, c):\n    return {'version': 1}\n");
    let mut prov = Provider::start(&p, "dev");
    let (olds, _, old_outputs) = prov.create(
        "local:Function",
        "v",
        json!({"code": "functions/v", "build": null, "handler": "app.handler", "runtime": "python3",
               "environment": {}, "memory": 128, "timeout": 3, "reserved_concurrency": null}),
    );
    let api = prov.api("api", &[("$default", "v")]);
    let port = port_of(&api);
    assert_eq!(http(port, "GET", "/", &[], b"").json()["version"], 1);

    // Workers record when each request was sent and which version answered.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (updated_tx, updated_rx) = std::sync::mpsc::channel::<std::time::Instant>();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = std::time::Instant::now();
                    let r = http(port, "GET", "/any/path", &[], b"");
                    assert_eq!(r.status, 200, "a request failed during the update: {}", r.text());
                    seen.push((sent, r.json()["version"].as_u64().unwrap()));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.write(
        "functions/v/app.py",
        "import time\ntime.sleep(0.2)\ndef handler(e, c):\n    return {'version': 2}\n",
    );
    let news = prov.check("local:Function", "v", olds.clone())["inputs"].clone();
    assert_ne!(news["code_hash"], olds["code_hash"]);
    let up = prov
        .call("update", json!({"type": "local:Function", "name": "v", "id": "v", "olds": olds, "news": news, "old_outputs": old_outputs}))
        .unwrap();
    assert_eq!(up["outputs"]["code_hash"], news["code_hash"]);
    updated_tx.send(std::time::Instant::now()).unwrap();
    let updated = updated_rx.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    // Requests sent before the update may be answered by the old code (they were in flight,
    // or queued for an environment of it); every request sent after it gets the new code.
    assert!(all.iter().any(|(_, v)| *v == 1), "{all:?}");
    let after: Vec<u64> = all.iter().filter(|(sent, _)| *sent > updated).map(|(_, v)| *v).collect();
    assert!(after.iter().all(|v| *v == 2), "old code answered after the update: {after:?}");
    assert_eq!(http(port, "GET", "/", &[], b"").json()["version"], 2);
    // Old environments are retired: only new-code processes remain.
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    assert!(st.functions[0].environments <= 4, "{st:?}");
}

/// A Rust function on the official `lambda_runtime` crate, built by the provider from
/// `build.cargo_package` (fixture: tests/fixtures/rust-hello, its own workspace).
#[test]
fn rust_function_on_lambda_runtime() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../target"))
        .join("fixtures");
    let p = Project::new("rust");
    let fixture = manifest.join("tests/fixtures/rust-hello");
    for rel in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        if let Ok(text) = std::fs::read_to_string(fixture.join(rel)) {
            p.write(&format!("functions/rust-hello/{rel}"), &text);
        }
    }
    let mut prov = Provider::start_with_env(&p, "dev", &[("CARGO_TARGET_DIR", target.to_str().unwrap())]);
    prov.create(
        "local:Function",
        "rusty",
        // `code: null`: the provider finds the package's manifest under the project.
        json!({"code": null, "build": {"cargo_package": "rust-hello"}, "handler": null,
               "runtime": "provided.al2023", "environment": {}, "memory": 128, "timeout": 3, "reserved_concurrency": null}),
    );
    let api = prov.api("api", &[("GET /rust/{x}", "rusty")]);
    let port = port_of(&api);
    let r = http(port, "GET", "/rust/hello", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["lang"], "rust");
    assert_eq!(r.json()["path"], "/rust/hello");
    assert_eq!(http(port, "GET", "/rust/fail", &[], b"").status, 502);
    assert_eq!(http(port, "GET", "/rust/again", &[], b"").status, 200);
    assert!(eventually(5, || p
        .log_records("dev", "rusty")
        .iter()
        .any(|l| l.message.contains("rust got \"/rust/hello\""))));
}

/// Waiting briefly for a busy environment (instead of starting a process at once) must not
/// serialise handlers that really are busy: three slow concurrent requests get three
/// environments.
#[test]
fn slow_concurrent_requests_get_their_own_environments() {
    let p = Project::new("parallel");
    p.write(
        "functions/s/app.py",
        "import os, time\n\ndef handler(e, c):\n    time.sleep(0.5)\n    return {'pid': os.getpid()}\n",
    );
    let mut prov = Provider::start(&p, "dev");
    prov.function("s", "functions/s", "python3", "app.handler", json!({}));
    let api = prov.api("api", &[("$default", "s")]);
    let port = port_of(&api);
    let handles: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http(port, "GET", "/", &[], b"").json()["pid"].as_u64().unwrap()))
        .collect();
    let mut pids: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "requests shared environments: {pids:?}");
}

#[test]
fn reserved_concurrency_queues_and_idle_environments_are_reaped() {
    let p = Project::new("concurrency");
    p.write(
        "functions/s/app.py",
        "import os, time\n\ndef handler(e, c):\n    time.sleep(0.3)\n    return {'pid': os.getpid()}\n",
    );
    let mut prov = Provider::start_with_env(&p, "dev", &[("SKYFORM_LOCAL_IDLE_SECS", "1")]);
    let (checked, _, outputs) = prov.create(
        "local:Function",
        "s",
        json!({"code": "functions/s", "build": null, "handler": "app.handler", "runtime": "python3",
               "environment": {}, "memory": 128, "timeout": 3, "reserved_concurrency": 1}),
    );
    // A refresh reads back exactly the checked inputs: no drift, no diff.
    let read = prov
        .call(
            "read",
            json!({"type": "local:Function", "name": "s", "id": "s", "inputs": checked, "outputs": outputs}),
        )
        .unwrap();
    assert_eq!(read["resource"]["inputs"], checked);
    assert_eq!(read["resource"]["outputs"], outputs);

    let api = prov.api("api", &[("$default", "s")]);
    let port = port_of(&api);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http(port, "GET", "/", &[], b"").json()["pid"].as_u64().unwrap()))
        .collect();
    let pids: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "did not queue: {:?}",
        started.elapsed()
    );
    assert!(pids.iter().all(|p| *p == pids[0]), "more than one environment: {pids:?}");

    let env_count = || skyform_local::status(&p.dir).unwrap().unwrap().functions[0].environments;
    assert_eq!(env_count(), 1);
    assert!(eventually(10, || env_count() == 0), "idle environment not reaped");
    assert!(eventually(5, || !alive(pids[0] as u32)));
    // And a new one starts on demand.
    assert_eq!(http(port, "GET", "/", &[], b"").status, 200);
}

#[test]
fn logs_follow_sees_new_records() {
    let p = Project::new("follow");
    p.write("functions/hello/app.py", PY_ECHO);
    let mut prov = Provider::start(&p, "dev");
    prov.function("hello", "functions/hello", "python3", "app.handler", json!({}));
    let dir = p.dir.clone();
    let follower = std::thread::spawn(move || {
        let mut seen = Vec::new();
        rt().block_on(skyform_local::logs(&dir, "dev", "hello", None, true, &mut |r| {
            // Printed lines travel through a pipe, so they may land just after END/REPORT.
            seen.push(r.message);
            !(seen.iter().any(|m| m.starts_with("REPORT")) && seen.iter().any(|m| m == "echo /followed"))
        }))
        .unwrap();
        seen
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    rt().block_on(skyform_local::invoke(&p.dir, "dev", "hello", br#"{"rawPath":"/followed"}"#)).unwrap();
    let seen = follower.join().unwrap();
    assert!(seen[0].starts_with("START RequestId: "), "{seen:?}");
    assert!(seen.iter().any(|m| m == "echo /followed"), "{seen:?}");
}

/// Two stacks of one project share the daemon (started by whichever provider comes first) and
/// nothing else.
#[test]
fn stacks_are_isolated_and_share_one_daemon() {
    let p = Project::new("stacks");
    p.write("functions/a/app.py", "def handler(e, c):\n    return {'stack': 'a'}\n");
    p.write("functions/b/app.py", "def handler(e, c):\n    return {'stack': 'b'}\n");
    let (pa, pb) = std::thread::scope(|s| {
        let a = s.spawn(|| Provider::start(&p, "a"));
        let b = s.spawn(|| Provider::start(&p, "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (mut pa, mut pb) = (pa, pb);
    let fa = pa.function("hello", "functions/a", "python3", "app.handler", json!({}));
    pb.function("hello", "functions/b", "python3", "app.handler", json!({}));
    let api_a = pa.api("api", &[("$default", "hello")]);
    let api_b = pb.api("api", &[("$default", "hello")]);
    assert_ne!(port_of(&api_a), port_of(&api_b));
    assert_eq!(http(port_of(&api_a), "GET", "/", &[], b"").json(), json!({"stack": "a"}));
    assert_eq!(http(port_of(&api_b), "GET", "/", &[], b"").json(), json!({"stack": "b"}));
    let st = skyform_local::status(&p.dir).unwrap().unwrap();
    assert_eq!((st.functions.len(), st.apis.len()), (2, 2));

    pa.call(
        "delete",
        json!({"type": "local:Function", "name": "hello", "id": "hello", "inputs": {}, "outputs": fa}),
    )
    .unwrap();
    assert_eq!(http(port_of(&api_a), "GET", "/", &[], b"").status, 500);
    assert_eq!(http(port_of(&api_b), "GET", "/", &[], b"").json(), json!({"stack": "b"}));
}
