//! `skyform invoke` on an `aws` stack, against the local cloud's Lambda `Invoke` API: the
//! example's `dev` stack runs `hello` on the local cloud, and a `prod` stack with provider
//! `aws` whose endpoint is the local cloud's AWS endpoint (SigV4 verified with the local key
//! pair) records that function. `invoke` finds it by the component's name and calls Lambda
//! `Invoke` synchronously and with `--async`.

mod aws_common;

use aws_common::{Moto, Project};
use serde_json::{Value, json};

fn with_local_env(p: &Project, args: &[&str], keys: Option<(&str, &str)>) -> aws_common::Run {
    let mut cmd = p.command(args);
    // The functions run on the user's python, which pyenv finds through these.
    for k in ["PYENV_ROOT", "PYENV_VERSION"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    if let Some((id, secret)) = keys {
        cmd.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let out = cmd.output().expect("run skyform");
    aws_common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct StopLocal<'a>(&'a Project);

impl Drop for StopLocal<'_> {
    fn drop(&mut self) {
        let _ = with_local_env(self.0, &["-s", "dev", "local", "stop"], None);
    }
}

#[test]
fn invoke_on_an_aws_stack_calls_lambda_invoke() {
    let moto = Moto::start();
    let p = Project::new("hello-http", &moto);
    let _stop = StopLocal(&p);
    with_local_env(&p, &["-s", "dev", "up", "--yes"], None).ok();

    let local = p.dir.join(".skyform/local");
    let creds: Value =
        serde_json::from_slice(&std::fs::read(local.join("credentials.json")).unwrap()).unwrap();
    let port: Value = serde_json::from_slice(&std::fs::read(local.join("endpoint.json")).unwrap()).unwrap();
    let endpoint = format!("http://127.0.0.1:{}", port["port"]);
    let keys = (creds["access_key_id"].as_str().unwrap(), creds["secret_access_key"].as_str().unwrap());

    // The `prod` stack on AWS, aimed at the local cloud, with `hello` recorded as deployed.
    p.aim(&endpoint);
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:hello";
    let state = json!({
        "format": 2, "lineage": "0123456789abcdef0123456789abcdef", "serial": 1,
        "project": "hello-http", "stack": "prod",
        "resources": [{"name": "hello", "type": "aws:lambda:Function", "id": "hello",
                       "inputs": {"name": "hello"}, "outputs": {"name": "hello", "arn": arn}}],
        "outputs": {},
    });
    std::fs::create_dir_all(p.dir.join("state")).unwrap();
    std::fs::write(p.dir.join("state/prod.json"), serde_json::to_string_pretty(&state).unwrap()).unwrap();

    let run = with_local_env(
        &p,
        &["-s", "prod", "invoke", "hello", "--data", r#"{"pathParameters": {"name": "team"}}"#],
        Some(keys),
    );
    let answer: Value =
        serde_json::from_str(run.ok().stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.text()));
    assert_eq!(answer, json!({"statusCode": 200, "body": "Hello, team!"}));

    let run = with_local_env(&p, &["-s", "prod", "invoke", "hello", "--async"], Some(keys));
    assert!(run.ok().stdout.starts_with("queued (request id "), "{}", run.text());

    // The wrong keys: the local cloud refuses the signature, and the error names the function.
    let run = with_local_env(&p, &["-s", "prod", "invoke", "hello"], Some(("AKIDWRONG", "nope")));
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains(&format!("invoking hello ({arn})")), "{}", run.text());
    assert!(run.stderr.contains("UnrecognizedClientException"), "{}", run.text());

    // A name the stack does not have lists the ones it has.
    let run = with_local_env(&p, &["-s", "prod", "invoke", "helo"], Some(keys));
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains("no function `helo` is deployed in stack `prod`"), "{}", run.text());
    assert!(run.stderr.contains("its functions are: hello"), "{}", run.text());
}
