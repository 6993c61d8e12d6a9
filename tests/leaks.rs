//! Secrets never leak: every command, on the fake, local and aws (moto) providers, on a stack
//! with a config secret, a literal secret, a secret that flows through a reference and an
//! interpolation, and secret outputs. Every byte written under `state/`, the saved plan, the
//! stack file, skyform's logs under `.skyform/`, stdout and stderr is searched for each
//! plaintext: none may appear unless `--show-secrets` asked for it — and then it must appear,
//! so that the search is known to be able to fail.
//!
//! Also: the bad inputs of secrets (missing, wrong passphrase, tampered ciphertext, another
//! stack's key), rotation, and the regression tests of issue 7.

mod aws_common;
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Run, TestEnv};
use serde_json::{Value, json};

const PASS: &str = "leak test passphrase";
/// The config secret (`skyform config set --secret api_key`).
const CFG: &str = "sk_cfg_7Qm2xWv9";
/// A literal `$secret` in the program.
const LIT: &str = "lit_9fK3pLqR";
/// A secret that reaches the function through a reference and an interpolation.
const REF: &str = "ref_Zr4Tn8Ua";
const PLAINTEXTS: [&str; 3] = [CFG, LIT, REF];

/// A project whose program (`python3 program.py`) prints `manifest.json` with the config value
/// `api_key` put in plaintext where `@@CFG@@` stands, as a program reading its config would.
struct Stack {
    env: TestEnv,
    vars: Vec<(String, String)>,
    /// Everything printed so far, by the command that printed it.
    printed: std::cell::RefCell<Vec<(String, String)>>,
}

impl Stack {
    fn new(name: &str, stack_toml: &str, manifest: Value, vars: &[(&str, &str)]) -> Stack {
        let env = TestEnv::new(name);
        env.write("Skyform.toml", "name = \"demo\"\nprogram = \"python3 program.py\"\n");
        env.write("Skyform.dev.toml", stack_toml);
        env.write(
            "program.py",
            "import json, os, sys\ncfg = json.loads(os.environ.get('SKYFORM_CONFIG') or '{}')\n\
             print('program: using key', cfg.get('api_key', ''), file=sys.stderr)\n\
             m = json.loads(open('manifest.json').read().replace('@@CFG@@', cfg.get('api_key', '')))\n\
             m.setdefault('project', os.environ['SKYFORM_PROJECT'])\n\
             m.setdefault('stack', os.environ['SKYFORM_STACK'])\n\
             print(json.dumps(m))\n",
        );
        env.write("manifest.json", &serde_json::to_string_pretty(&manifest).unwrap());
        let mut all: Vec<(String, String)> = vec![("SKYFORM_PASSPHRASE".into(), PASS.into())];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Stack { env, vars: all, printed: Default::default() }
    }

    fn path(&self) -> &Path {
        self.env.path()
    }

    /// Runs a command and keeps what it printed for the search.
    fn run(&self, args: &[&str]) -> Run {
        let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let run = self.env.run_with(args, &vars);
        self.printed.borrow_mut().push((args.join(" "), format!("{}{}", run.stdout, run.stderr)));
        run
    }

    /// Runs a command that may print secrets (`--show-secrets`): not kept for the search.
    fn reveal(&self, args: &[&str]) -> Run {
        let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.env.run_with(args, &vars)
    }

    /// `skyform config set --secret KEY` with the value on standard input.
    fn set_secret_from_stdin(&self, key: &str, value: &str) {
        let mut cmd = self.env.command(&["config", "set", "--secret", key]);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{value}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "config set failed: {text}");
        self.printed.borrow_mut().push(("config set --secret".into(), text));
    }

    /// Every command the leak test runs, in a user's order.
    fn run_every_command(&self) {
        self.set_secret_from_stdin("api_key", CFG);
        self.run(&["config", "set", "region", "eu-west-1"]).ok();
        let ls = self.run(&["config", "ls"]);
        assert!(ls.ok().stdout.contains("api_key = [secret]"), "{}", ls.text());
        self.run(&["config", "ls", "--json"]).ok();
        assert_eq!(self.run(&["config", "get", "api_key"]).ok().stdout, "[secret]\n");
        self.run(&["synth"]).ok();
        self.run(&["graph"]).ok();
        self.run(&["preview"]).ok();
        self.run(&["preview", "--diff"]).ok();
        self.run(&["preview", "--json"]).ok();
        let verbose = self.run(&["-v", "preview", "--diff"]);
        // The program printed its config secret on stderr: `-v` shows the line, scrubbed.
        assert!(verbose.ok().stderr.contains("[program] program: using key [secret]"), "{}", verbose.text());
        self.run(&["preview", "--save-plan", "plan.json"]).ok();
        self.run(&["-v", "up", "--plan", "plan.json", "--yes", "--diff"]).ok();
        // A no-change up changes nothing, whatever the secrets.
        let again = self.run(&["up", "--yes", "--diff"]);
        assert!(again.ok().stdout.contains("no changes"), "{}", again.text());
        self.run(&["up", "--yes", "--json"]).ok();
        let preview = self.run(&["preview", "--diff"]);
        assert!(preview.ok().stdout.contains("no changes"), "{}", preview.text());
        self.run(&["outputs"]).ok();
        self.run(&["outputs", "--json"]).ok();
        assert_eq!(self.run(&["outputs", "db_url"]).ok().stdout, "[secret]\n");
        // Refresh: no drift for the secret inputs, and nothing to write.
        let refresh = self.run(&["refresh", "--yes"]);
        assert!(refresh.ok().stdout.contains("no drift"), "{}", refresh.text());
        let refresh = self.run(&["-v", "refresh", "--json", "--preview-only"]);
        let drift: Value = serde_json::from_str(&refresh.ok().stdout).unwrap();
        assert_eq!(drift["drift"], json!([]), "{}", refresh.text());
        // And no phantom update after the refresh.
        let after = self.run(&["up", "--yes"]);
        assert!(after.ok().stdout.contains("no changes"), "{}", after.text());
        self.run(&["stack", "export"]).ok();
        self.run(&["stack", "history"]).ok();
        self.run(&["stack", "history", "--json"]).ok();
        self.run(&["stack", "ls"]).ok();
    }

    /// The files that must hold no plaintext: state/, the plan, the stack file, and skyform's
    /// own files under .skyform/ (not the local cloud's registry, documented as the one file
    /// that holds function environments, mode 0600, nor function code).
    fn written_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.path().join("state"), &mut out);
        walk(&self.path().join(".skyform"), &mut out);
        out.retain(|p| {
            let s = p.display().to_string();
            !s.ends_with("local/registry.json")
                && !s.contains("local/artifacts/")
                && !s.contains("local/shims/")
        });
        out.push(self.path().join("plan.json"));
        out.push(self.path().join("Skyform.dev.toml"));
        out
    }

    /// Searches everything for every plaintext: none may appear.
    fn assert_no_plaintext(&self) {
        let mut leaks = Vec::new();
        let mut searched = 0;
        for (what, text) in self.printed.borrow().iter() {
            searched += text.len();
            for p in PLAINTEXTS {
                if text.contains(p) {
                    leaks.push(format!("`{what}` printed {p}:\n{text}"));
                }
            }
        }
        for file in self.written_files() {
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
            searched += bytes.len();
            let text = String::from_utf8_lossy(&bytes);
            for p in PLAINTEXTS {
                if text.contains(p) {
                    leaks.push(format!("{} holds {p}", file.display()));
                }
            }
        }
        assert!(leaks.is_empty(), "plaintext secrets leaked:\n{}", leaks.join("\n"));
        assert!(searched > 10_000, "the search covered too little: {searched} bytes");
        let state = std::fs::read_to_string(self.path().join("state/dev.json")).unwrap();
        assert!(state.contains("\"$encrypted\": \"v1:"), "{state}");
        let plan = self.path().join("plan.json");
        assert!(std::fs::read_to_string(&plan).unwrap().contains("\"$encrypted\""));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// `--show-secrets` does show them: the search above could have failed.
    fn assert_show_secrets_shows(&self) {
        let synth = self.reveal(&["synth", "--show-secrets"]);
        for p in PLAINTEXTS {
            assert!(synth.ok().stdout.contains(p), "synth --show-secrets lacks {p}:\n{}", synth.text());
        }
        let outputs = self.reveal(&["outputs", "--show-secrets", "--json"]);
        let outputs: Value = serde_json::from_str(&outputs.ok().stdout).unwrap();
        assert_eq!(outputs["db_url"], format!("postgres://app:{REF}@db"));
        assert_eq!(outputs["api_key"], CFG);
        assert_eq!(outputs["plain"], "visible-value", "a value that is not secret is shown as it is");
        let config = self.reveal(&["config", "ls", "--show-secrets"]);
        assert!(config.ok().stdout.contains(&format!("api_key = {CFG}")), "{}", config.text());
        assert_eq!(
            self.reveal(&["config", "get", "api_key", "--show-secrets"]).ok().stdout,
            format!("{CFG}\n")
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The environment every provider's function or resource gets: the config secret, the literal,
/// the secret through a reference and through an interpolation, and one plain value.
fn environment() -> Value {
    json!({
        "API_KEY": "@@CFG@@",
        "LITERAL": {"$secret": LIT},
        "DB_PW": {"$ref": "pw", "output": "value"},
        "DB_URL": {"$concat": ["postgres://app:", {"$ref": "pw", "output": "value"}, "@db"]},
        "PLAIN": "visible-value"
    })
}

fn outputs() -> Value {
    json!({
        "db_url": {"$concat": ["postgres://app:", {"$ref": "pw", "output": "value"}, "@db"]},
        "api_key": "@@CFG@@",
        "plain": "visible-value"
    })
}

fn manifest(resources: Value) -> Value {
    json!({"manifest": 1, "resources": resources, "outputs": outputs()})
}

#[test]
fn no_command_leaks_a_secret_on_the_fake_provider() {
    let store = TestEnv::new("leaks-fake-store");
    let stack = Stack::new(
        "leaks-fake",
        &format!("provider = \"local\"\n\n[providers.fake]\nstore = \"{}\"\n", store.store().display()),
        manifest(json!([
            {"name": "pw", "type": "core:Data", "inputs": {"value": {"$secret": REF}}},
            {"name": "app", "type": "fake:Resource", "inputs": {"env": environment()}},
            {"name": "side", "type": "fake:Resource", "inputs": {"token": "@@CFG@@"}}
        ])),
        &[],
    );
    stack.run_every_command();
    // The provider got every plaintext.
    let cloud: String = std::fs::read_dir(store.store())
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    for p in PLAINTEXTS {
        assert!(cloud.contains(p), "the fake cloud never got {p}: {cloud}");
    }
    // Import: adopting a resource that holds the stack's secrets records and prints them masked.
    let app_id =
        stack.env.state()["resources"].as_array().unwrap().iter().find(|r| r["name"] == "app").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let imported = stack.run(&["import", "fake:Resource", "adopted", &app_id]);
    assert!(imported.ok().stdout.contains("[secret]"), "{}", imported.text());
    stack.run(&["stack", "export"]).ok();
    stack.assert_no_plaintext();
    stack.assert_show_secrets_shows();
}

#[test]
fn no_command_leaks_a_secret_on_the_local_cloud() {
    let stack = Stack::new(
        "leaks-local",
        "provider = \"local\"\n",
        manifest(json!([
            {"name": "pw", "type": "core:Data", "inputs": {"value": {"$secret": REF}}},
            {"name": "fn", "type": "local:Function", "inputs": {
                "code": "functions/env", "handler": "app.handler", "runtime": "python3",
                "environment": environment()
            }}
        ])),
        &[],
    );
    stack.env.write(
        "functions/env/app.py",
        "import os\ndef handler(event, context):\n    return {k: os.environ.get(k) for k in ['API_KEY', 'LITERAL', 'DB_PW', 'DB_URL']}\n",
    );
    stack.run_every_command();
    // The function runs with the plaintext (it answers its own environment; that answer is the
    // function's output, not skyform's, so it is not searched).
    let invoked = stack.reveal(&["invoke", "fn"]);
    let text = invoked.text();
    for p in PLAINTEXTS {
        assert!(text.contains(p), "the function did not get {p}:\n{text}");
    }
    // The one file that holds function environments is the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let registry = stack.path().join(".skyform/local/registry.json");
    assert_eq!(std::fs::metadata(&registry).unwrap().permissions().mode() & 0o777, 0o600);
    stack.assert_no_plaintext();
    stack.assert_show_secrets_shows();
    stack.reveal(&["destroy", "--yes"]).ok();
}

#[test]
fn no_command_leaks_a_secret_on_aws_with_a_kms_key() {
    let moto = aws_common::Moto::start();
    // A KMS key for the stack's data key: the `awskms` secrets provider.
    let key = moto.py("k = client('kms').create_key()['KeyMetadata']['KeyId']\nclient('kms').create_alias(AliasName='alias/skyform', TargetKeyId=k)\nprint(k)");
    assert!(!key.trim().is_empty());
    let stack_toml = format!(
        "provider = \"aws\"\n\n[providers.aws]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nretry_base_ms = 20\nmax_attempts = 3\n",
        moto.endpoint
    );
    let creds = [
        ("AWS_ACCESS_KEY_ID", moto.key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let stack = Stack::new(
        "leaks-aws",
        &stack_toml,
        manifest(json!([
            {"name": "pw", "type": "core:Data", "inputs": {"value": {"$secret": REF}}},
            {"name": "role", "type": "aws:iam:Role", "inputs": {"assume_role_policy": trust}},
            {"name": "fn", "type": "aws:lambda:Function", "inputs": {
                "code": "functions/env", "handler": "app.handler", "runtime": "python3.12",
                "role": {"$ref": "role", "output": "arn"}, "environment": environment()
            }},
            // Its policy statement is a JSON string that refresh must not report as drift.
            {"name": "perm", "type": "aws:lambda:Permission", "inputs": {
                "function": {"$ref": "fn", "output": "name"}, "principal": "apigateway.amazonaws.com"
            }}
        ])),
        &creds,
    );
    stack.env.write("functions/env/app.py", "def handler(event, context):\n    return {}\n");
    // The stack's data key is wrapped by KMS, not by a passphrase.
    let text = stack.env.read("Skyform.dev.toml");
    stack
        .env
        .write("Skyform.dev.toml", &format!("{text}\n[secrets]\nprovider = \"awskms://alias/skyform\"\n"));
    stack.run_every_command();
    assert!(stack.env.read("Skyform.dev.toml").contains("provider = \"awskms://alias/skyform\""));
    // Lambda got the plaintext environment.
    let env = moto.py_json(
        "fns = client('lambda').list_functions()['Functions']\nprint(json.dumps(fns[0]['Environment']['Variables']))",
    );
    assert_eq!(env["LITERAL"], LIT);
    assert_eq!(env["API_KEY"], CFG);
    assert_eq!(env["DB_URL"], format!("postgres://app:{REF}@db"));
    stack.assert_no_plaintext();
    stack.assert_show_secrets_shows();
    // Without the passphrase, the KMS key alone opens the stack's secrets.
    let no_pass: Vec<(&str, &str)> = creds.to_vec();
    let out = stack.env.run_with(&["outputs", "--show-secrets", "--json"], &no_pass);
    assert!(out.ok().stdout.contains(REF), "{}", out.text());
    // `stack init --secrets-provider` makes the data key at once, wrapped by KMS.
    // (A new stack has no [providers.aws] yet: the region is in the URL, the endpoint in the
    // environment.)
    let mut with_endpoint = no_pass.clone();
    with_endpoint.push(("AWS_ENDPOINT_URL", moto.endpoint.as_str()));
    let url = "awskms://alias/skyform?region=us-east-1";
    stack.env.run_with(&["stack", "init", "prod", "--secrets-provider", url], &with_endpoint).ok();
    let prod = stack.env.read("Skyform.prod.toml");
    assert!(prod.contains(&format!("provider = \"{url}\"")) && prod.contains("key = "), "{prod}");
    let bad = stack.env.run_with(
        &["stack", "init", "qa", "--secrets-provider", "awskms://alias/nope?region=us-east-1"],
        &with_endpoint,
    );
    assert_eq!(bad.code, 1, "{}", bad.text());
    assert!(
        bad.stderr.contains("alias/nope") && !stack.path().join("Skyform.qa.toml").exists(),
        "{}",
        bad.text()
    );
    // From KMS to a passphrase: every secret re-encrypted; then no AWS is needed to read them.
    stack.reveal(&["stack", "change-secrets-provider", "passphrase"]).ok();
    assert!(stack.env.read("Skyform.dev.toml").contains("provider = \"passphrase\""));
    let out = stack.env.run_with(&["outputs", "--show-secrets", "--json"], &[("SKYFORM_PASSPHRASE", PASS)]);
    assert!(out.ok().stdout.contains(REF), "{}", out.text());
    assert!(stack.reveal(&["preview"]).ok().stdout.contains("no changes"));
    stack.reveal(&["destroy", "--yes"]).ok();
}

// ----- bad inputs -----

/// A fake-provider stack with a secret, applied.
fn applied() -> (TestEnv, TestEnv) {
    let store = TestEnv::new("secrets-bad-store");
    let env = TestEnv::new("secrets-bad");
    env.write(
        "Skyform.dev.toml",
        &format!("provider = \"local\"\n\n[providers.fake]\nstore = \"{}\"\n", store.store().display()),
    );
    env.manifest_with_outputs(
        json!([{"name": "db", "type": "fake:Resource", "inputs": {"password": {"$secret": LIT}}}]),
        json!({"pw": {"$ref": "db", "output": "password"}}),
    );
    env.run_with(&["up", "--yes"], &[("SKYFORM_PASSPHRASE", PASS)]).ok();
    (env, store)
}

fn files_of(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    walk(&env.path().join("state"), &mut files);
    files.push(env.path().join("Skyform.dev.toml"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn a_missing_or_wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let (env, _store) = applied();
    // A change is pending, so that `up` would write if it could.
    env.manifest_with_outputs(
        json!([{"name": "db", "type": "fake:Resource", "inputs": {"password": {"$secret": "new-one"}}}]),
        json!({"pw": {"$ref": "db", "output": "password"}}),
    );
    let before = files_of(&env);
    let missing = env.run(&["up", "--yes"]);
    assert_eq!(missing.code, 1, "{}", missing.text());
    assert!(missing.stderr.contains("SKYFORM_PASSPHRASE is not set"), "{}", missing.text());
    assert!(missing.stderr.contains("SKYFORM_PASSPHRASE_FILE"), "{}", missing.text());
    let wrong = env.run_with(&["up", "--yes"], &[("SKYFORM_PASSPHRASE", "not it")]);
    assert_eq!(wrong.code, 1, "{}", wrong.text());
    assert!(wrong.stderr.contains("does not open this stack's secrets"), "{}", wrong.text());
    let outputs = env.run_with(&["outputs", "--show-secrets"], &[("SKYFORM_PASSPHRASE", "not it")]);
    assert_eq!(outputs.code, 1, "{}", outputs.text());
    assert_eq!(files_of(&env), before, "a failed command changed a file");
    // The passphrase may come from a file.
    env.write("pass.txt", &format!("{PASS}\n"));
    let pass_file = env.path().join("pass.txt").display().to_string();
    let shown =
        env.run_with(&["outputs", "pw", "--show-secrets"], &[("SKYFORM_PASSPHRASE_FILE", &pass_file)]);
    assert_eq!(shown.ok().stdout, format!("{LIT}\n"));
    // Outputs without --show-secrets need no passphrase at all.
    assert_eq!(env.run(&["outputs", "pw"]).ok().stdout, "[secret]\n");
}

#[test]
fn tampered_ciphertext_and_another_stacks_key_are_refused() {
    let (env, _store) = applied();
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    // Another stack with a secret of its own has another data key.
    env.write("Skyform.other.toml", "provider = \"local\"\n");
    env.run_with(&["-s", "other", "config", "set", "--secret", "k", "v"], &pass).ok();
    let exported = env.run_with(&["stack", "export"], &pass).ok().stdout.clone();
    env.write("dev-state.json", &exported.replace("\"stack\": \"dev\"", "\"stack\": \"other\""));
    let imported = env.run_with(&["-s", "other", "stack", "import", "dev-state.json"], &pass);
    assert_eq!(imported.code, 1, "{}", imported.text());
    assert!(imported.stderr.contains("do not open with stack `other`'s key"), "{}", imported.text());
    assert!(!env.path().join("state/other.json").exists(), "nothing is written");

    // One changed character of a ciphertext: refused, nothing overwritten.
    // (Encryption is deterministic: the same secret has the same ciphertext everywhere, so
    // every copy of it is changed.)
    let state = env.read("state/dev.json");
    let start = state.find("\"v1:").unwrap() + 1;
    let end = start + state[start..].find('"').unwrap();
    let original = &state[start..end];
    let mut changed = original.as_bytes().to_vec();
    changed[8] = if changed[8] == b'A' { b'B' } else { b'A' };
    let tampered = state.replace(original, std::str::from_utf8(&changed).unwrap());
    env.write("state/dev.json", &tampered);
    for args in [&["preview"][..], &["up", "--yes"], &["refresh", "--yes"], &["outputs", "--show-secrets"]] {
        let run = env.run_with(args, &pass);
        assert_eq!(run.code, 1, "{args:?}: {}", run.text());
        assert!(run.stderr.contains("cannot be decrypted with this stack's key"), "{}", run.text());
        assert_eq!(env.read("state/dev.json"), tampered, "{args:?} overwrote the state");
    }
}

#[test]
fn rotating_the_passphrase_re_encrypts_everything() {
    let (env, _store) = applied();
    env.run_with(&["config", "set", "--secret", "token", CFG], &[("SKYFORM_PASSPHRASE", PASS)]).ok();
    let before_state = env.read("state/dev.json");
    let before_toml = env.read("Skyform.dev.toml");
    let rotate = env.run_with(
        &["stack", "change-secrets-provider", "passphrase"],
        &[("SKYFORM_PASSPHRASE", PASS), ("SKYFORM_NEW_PASSPHRASE", "the new one")],
    );
    rotate.ok();
    let after_state = env.read("state/dev.json");
    assert_ne!(before_state, after_state, "the state's ciphertexts change");
    assert_ne!(before_toml, env.read("Skyform.dev.toml"));
    assert!(!after_state.contains(LIT) && !env.read("Skyform.dev.toml").contains(CFG));
    let old = env.run_with(&["outputs", "pw", "--show-secrets"], &[("SKYFORM_PASSPHRASE", PASS)]);
    assert_eq!(old.code, 1, "the old passphrase no longer opens the stack: {}", old.text());
    let new = [("SKYFORM_PASSPHRASE", "the new one")];
    assert_eq!(env.run_with(&["outputs", "pw", "--show-secrets"], &new).ok().stdout, format!("{LIT}\n"));
    assert_eq!(
        env.run_with(&["config", "get", "token", "--show-secrets"], &new).ok().stdout,
        format!("{CFG}\n")
    );
    assert!(env.run_with(&["preview"], &new).ok().stdout.contains("no changes"));
}

// ----- regressions of issue 7 -----

/// core:Data holds a secret; one core:Command gets it through a reference, another through an
/// interpolation. Every run must hand them the plaintext, and a second `up` must change
/// nothing (it used to deliver `[secret:…]` to commands created later and to update the
/// interpolating one on every run).
#[test]
fn a_secret_through_a_reference_reaches_providers_in_plaintext_on_every_run() {
    let env = TestEnv::new("secrets-core");
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    let command = |name: &str, var: Value| {
        json!({"name": name, "type": "core:Command", "inputs": {
            "create": format!("printf '%s\\n' \"$V\" >> {name}.txt; echo \"$V\""),
            "environment": {"V": var}
        }})
    };
    let reference = json!({"$ref": "pw", "output": "value"});
    let concat = json!({"$concat": ["postgres://app:", {"$ref": "pw", "output": "value"}, "@db"]});
    let data = json!({"name": "pw", "type": "core:Data", "inputs": {"value": {"$secret": "hunter2"}}});
    env.manifest(json!([data, command("direct", reference.clone()), command("joined", concat.clone())]));
    env.run_with(&["up", "--yes"], &pass).ok();
    let second = env.run_with(&["up", "--yes"], &pass);
    assert!(second.ok().stdout.contains("no changes"), "{}", second.text());
    // A dependent created later, while the source is unchanged, gets the plaintext too.
    env.manifest(json!([
        data,
        command("direct", reference.clone()),
        command("joined", concat),
        command("later", reference)
    ]));
    env.run_with(&["up", "--yes"], &pass).ok();
    assert_eq!(env.read("direct.txt"), "hunter2\n");
    assert_eq!(env.read("joined.txt"), "postgres://app:hunter2@db\n");
    assert_eq!(env.read("later.txt"), "hunter2\n");
    // The commands echoed the secret: their stdout output is recorded encrypted.
    let state = env.read("state/dev.json");
    assert!(!state.contains("hunter2"), "{state}");
    // Refresh finds no drift (it used to print the plaintext and record it).
    let refresh = env.run_with(&["refresh", "--yes"], &pass);
    assert!(refresh.ok().stdout.contains("no drift"), "{}", refresh.text());
    assert!(!refresh.text().contains("hunter2"));
    assert!(env.run_with(&["preview"], &pass).ok().stdout.contains("no changes"));
}

/// A `$secret` that wraps a reference stays secret once resolved.
#[test]
fn a_secret_wrapping_a_reference_is_masked_once_resolved() {
    let env = TestEnv::new("secrets-wrap");
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    env.manifest_with_outputs(
        json!([
            {"name": "src", "type": "core:Data", "inputs": {"value": "plain-but-wrapped-later"}},
            {"name": "dst", "type": "core:Data", "inputs": {"value": {"$secret": {"$ref": "src", "output": "value"}}}}
        ]),
        json!({"wrapped": {"$ref": "dst", "output": "value"}}),
    );
    let up = env.run_with(&["up", "--yes", "--diff"], &pass);
    up.ok();
    // `src` itself is not secret (its own value is recorded as it is); `dst` and the output are.
    let state: Value = env.state();
    let dst = state["resources"].as_array().unwrap().iter().find(|r| r["name"] == "dst").unwrap();
    assert!(dst["inputs"]["value"]["$encrypted"].is_string(), "{dst}");
    assert!(state["outputs"]["wrapped"]["$encrypted"].is_string(), "{state}");
    assert!(up.stdout.contains("+ value: \"[secret]\""), "{}", up.text());
    assert!(up.stdout.contains("wrapped: \"[secret]\""), "{}", up.text());
}

/// Secrets in `Skyform.<stack>.toml` are ciphertext, and `synth` masks them.
#[test]
fn config_secrets_are_encrypted_in_the_stack_file_and_masked_by_synth() {
    let env = TestEnv::new("secrets-config");
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"sh -c 'echo \\\"$SKYFORM_CONFIG\\\" > seen.json; cat manifest.json'\"\n");
    env.write("Skyform.dev.toml", "# my comment stays\nprovider = \"local\"\n");
    env.manifest(json!([{"name": "d", "type": "core:Data", "inputs": {"value": {"$secret": LIT}}}]));
    // Without a passphrase, a secret cannot be set: the error says which variable to set.
    let missing = env.run(&["config", "set", "--secret", "db.password", CFG, "--path"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("SKYFORM_PASSPHRASE"), "{}", missing.text());
    env.run_with(&["config", "set", "--secret", "db.password", CFG, "--path"], &pass).ok();
    let toml = env.read("Skyform.dev.toml");
    assert!(
        !toml.contains(CFG) && toml.contains("secure = \"v1:") && toml.contains("# my comment stays"),
        "{toml}"
    );
    assert!(toml.contains("[secrets]") && toml.contains("provider = \"passphrase\""), "{toml}");
    let synth = env.run_with(&["synth"], &pass);
    assert!(!synth.ok().stdout.contains(LIT), "{}", synth.text());
    assert!(synth.stdout.contains("\"$secret\": \"[secret]\""), "{}", synth.text());
    // The program reads the plaintext config.
    let seen: Value = serde_json::from_str(&env.read("seen.json")).unwrap();
    assert_eq!(seen["db"]["password"], CFG);
    env.run_with(&["config", "rm", "--path", "db.password"], &pass).ok();
    assert!(!env.read("Skyform.dev.toml").contains("password"));
    let rm_again = env.run_with(&["config", "rm", "nope"], &pass);
    assert_eq!(rm_again.code, 1, "{}", rm_again.text());
}

/// A provider's error that quotes a secret it was given (a command's stderr) is scrubbed.
#[test]
fn a_provider_error_quoting_a_secret_is_scrubbed() {
    let env = TestEnv::new("secrets-error");
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    env.manifest(json!([{"name": "c", "type": "core:Command", "inputs": {
        "create": "echo \"connecting with $V failed\" >&2; exit 3",
        "environment": {"V": {"$secret": LIT}}
    }}]));
    let up = env.run_with(&["up", "--yes"], &pass);
    assert_eq!(up.code, 3, "{}", up.text());
    assert!(!up.text().contains(LIT), "{}", up.text());
    assert!(up.text().contains("connecting with [secret] failed"), "{}", up.text());
}

/// Every example and the scaffolded projects ignore `.skyform/` (the local cloud's registry
/// holds function environments in plaintext).
#[test]
fn examples_and_templates_ignore_the_local_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("templates/common/.gitignore.hbs")];
    for e in std::fs::read_dir(root.join("examples")).unwrap().flatten() {
        files.push(e.path().join(".gitignore"));
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(text.lines().any(|l| l.trim() == ".skyform/"), "{} does not ignore .skyform/", f.display());
    }
}

/// A format-1 state kept only a fingerprint of a secret: the upgrade says so, the next `up`
/// updates the resource once (the provider gets the value), and the state then holds it
/// encrypted.
#[test]
fn a_format_1_fingerprint_is_migrated_by_the_next_up() {
    let env = TestEnv::new("secrets-v1");
    let pass = [("SKYFORM_PASSPHRASE", PASS)];
    env.write(
        "state/dev.json",
        &serde_json::to_string_pretty(&json!({
            "format": 1, "lineage": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "serial": 3, "project": "demo", "stack": "dev",
            "resources": [{"name": "d", "type": "core:Data", "id": "0011223344556677",
                "inputs": {"value": "[secret:0123456789abcdef]"}, "outputs": {"value": "[secret:0123456789abcdef]"}}],
            "outputs": {}
        }))
        .unwrap(),
    );
    env.manifest(json!([{"name": "d", "type": "core:Data", "inputs": {"value": {"$secret": LIT}}}]));
    let preview = env.run_with(&["preview", "--diff"], &pass);
    assert!(preview.ok().stderr.contains("kept only fingerprints of 2 secret values"), "{}", preview.text());
    assert!(preview.stdout.contains("update") && !preview.text().contains(LIT), "{}", preview.text());
    env.run_with(&["up", "--yes"], &pass).ok();
    let state = env.read("state/dev.json");
    assert!(
        state.contains("\"format\": 2") && !state.contains("fingerprint:") && !state.contains(LIT),
        "{state}"
    );
    let again = env.run_with(&["up", "--yes"], &pass);
    assert!(
        again.ok().stdout.contains("no changes") && !again.stderr.contains("fingerprints"),
        "{}",
        again.text()
    );
}
