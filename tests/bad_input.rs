//! Bad input gets a clear error that says what to do next, and loses nothing.

mod common;

use common::TestEnv;
use serde_json::json;

fn assert_fails(env: &TestEnv, args: &[&str], code: i32, needle: &str) -> String {
    let run = env.run(args);
    assert_eq!(run.code, code, "{}", run.text());
    assert!(run.stderr.contains(needle), "expected `{needle}` in:\n{}", run.text());
    assert!(run.stderr.contains("hint:"), "every error says what to do next:\n{}", run.text());
    run.text()
}

#[test]
fn malformed_manifests_name_the_culprit() {
    let env = TestEnv::new("badmanifest");
    env.write("manifest.json", "{\"manifest\": 1, \"resources\": [");
    insta::assert_snapshot!("bad_json", assert_fails(&env, &["preview"], 1, "did not produce valid JSON"));

    env.manifest(json!([
        {"name": "a", "type": "core:Data", "inputs": {}},
        {"name": "a", "type": "core:Data", "inputs": {}},
        {"name": "b", "type": "core:Data", "inputs": {"v": {"$ref": "nope", "output": "value"}}},
        {"name": "c", "type": "notatype", "inputs": {}}
    ]));
    insta::assert_snapshot!("bad_names", assert_fails(&env, &["preview"], 1, "two resources are named `a`"));

    env.manifest(json!([
        {"name": "a", "type": "core:Data", "inputs": {"v": {"$ref": "b", "output": "value"}}},
        {"name": "b", "type": "core:Data", "inputs": {"v": {"$ref": "a", "output": "value"}}}
    ]));
    insta::assert_snapshot!("cycle", assert_fails(&env, &["preview"], 1, "a → b → a"));

    env.manifest(json!([{"name": "a", "type": "acme:Thing", "inputs": {}}]));
    insta::assert_snapshot!("unknown_provider", assert_fails(&env, &["preview"], 1, "no provider `acme`"));

    env.manifest(json!([{"name": "a", "type": "core:Nope", "inputs": {}}]));
    insta::assert_snapshot!("unknown_type", assert_fails(&env, &["preview"], 1, "does not serve"));

    env.manifest(json!([
        {"name": "a", "type": "core:Data", "inputs": {"value": 1}},
        {"name": "b", "type": "core:Data", "inputs": {"value": {"$ref": "a", "output": "valeu"}}}
    ]));
    insta::assert_snapshot!(
        "unknown_output",
        assert_fails(&env, &["preview"], 1, "refers to output `valeu`")
    );

    env.manifest(json!([{"name": "c", "type": "core:Command", "inputs": {"create": ""}}]));
    assert_fails(&env, &["preview"], 1, "invalid inputs");

    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"echo oops >&2; exit 3\"\n");
    insta::assert_snapshot!("program_fails", assert_fails(&env, &["preview"], 1, "oops"));
    assert!(!env.path().join("state/dev.json").exists(), "nothing was written");
}

#[test]
fn components_and_the_manifests_owner_are_checked_as_documented() {
    // MANIFEST.md: component names are unique and their parents declared; the provider part of
    // a type token is lowercase; `project` and `stack` must match, `synth` included.
    let env = TestEnv::new("badcomponents");
    let with = |components: serde_json::Value, ty: &str| {
        let m = json!({"manifest": 1, "project": "demo", "stack": "dev",
            "resources": [{"name": "a", "type": ty, "inputs": {}, "parent": "c"}],
            "components": components});
        env.write("manifest.json", &m.to_string());
    };
    with(json!([{"name": "c", "type": "x:C"}, {"name": "c", "type": "x:C"}]), "core:Data");
    for cmd in ["preview", "synth"] {
        assert_fails(&env, &[cmd], 1, "two components are named `c`");
    }
    with(json!([{"name": "c", "type": "x:C", "parent": "nope"}]), "core:Data");
    assert_fails(&env, &["preview"], 1, "component `c` has parent `nope`");
    with(json!([{"name": "c", "type": "x:C"}]), "Core:Data");
    assert_fails(&env, &["synth"], 1, "has type `Core:Data`, which is not a type token");
    with(json!([{"name": "c", "type": "x:C"}]), "core:Data");
    assert_eq!(env.run(&["synth"]).code, 0);

    let m = json!({"manifest": 1, "project": "other", "stack": "dev", "resources": []});
    env.write("manifest.json", &m.to_string());
    assert_fails(&env, &["synth"], 1, "manifest for project `other`, but this is project `demo`");
    let m = json!({"manifest": 1, "project": "demo", "stack": "prod", "resources": []});
    env.write("manifest.json", &m.to_string());
    assert_fails(&env, &["synth"], 1, "manifest for stack `prod`, but this is stack `dev`");
    assert!(!env.path().join("state/dev.json").exists(), "nothing was written");
}

#[test]
fn stack_init_and_stack_import_refuse_bad_input_with_a_hint() {
    let env = TestEnv::new("badstackcmds");
    // `--provider` is `local` or `aws` (its help says so; the SDK knows no other target).
    let run = env.run(&["stack", "init", "qa", "--provider", "gcp"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("possible values: local, aws"), "{}", run.text());
    assert!(!env.path().join("Skyform.qa.toml").exists(), "nothing was written");
    for args in [
        &["stack", "init", "qa", "--secrets-provider", "vault://x"][..],
        &["stack", "change-secrets-provider", "vault://x"],
    ] {
        let text = assert_fails(&env, args, 1, "`vault://x` (for stack");
        assert!(text.contains("is not a secrets provider skyform knows"), "{text}");
    }
    assert!(!env.path().join("Skyform.qa.toml").exists(), "nothing was written");
    let zero = env.run(&["up", "--yes", "--parallel", "0"]);
    assert_eq!(zero.code, 2, "--parallel 0 is a usage error: {}", zero.text());

    env.manifest(json!([{"name": "a", "type": "core:Data", "inputs": {"value": 1}}]));
    env.run(&["up", "--yes"]).ok();
    let before = env.read("state/dev.json");
    assert_fails(&env, &["stack", "import", "missing.json"], 1, "reading missing.json");
    assert_fails(
        &env,
        &["up", "--yes", "--plan", "missing-plan.json"],
        1,
        "reading the plan missing-plan.json",
    );
    env.write("bad.json", r#"{"format": 2}"#);
    let text = assert_fails(&env, &["stack", "import", "bad.json"], 1, "bad.json is corrupt");
    assert!(text.contains("as `skyform stack export` prints it"), "{text}");
    assert_eq!(env.read("state/dev.json"), before, "a refused import changed the state");

    // A good import is a command that changed the state: the history records it.
    env.write("good.json", &env.run(&["stack", "export"]).ok().stdout);
    env.run(&["stack", "import", "good.json"]).ok();
    let history: serde_json::Value =
        serde_json::from_str(&env.run(&["stack", "history", "--json"]).ok().stdout).unwrap();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["command"].as_str(), last["serial"].as_u64()),
        (Some("stack import"), Some(2)),
        "{history}"
    );

    // A corrupt state file is restored from a backup with `stack import`, as its error says.
    env.write("state/dev.json", "{corrupt");
    let text = assert_fails(&env, &["outputs"], 1, "is corrupt");
    assert!(text.contains("from a backup with `skyform stack import`"), "{text}");
    env.run(&["stack", "import", "good.json"]).ok();
    env.run(&["outputs"]).ok();
}

#[test]
fn project_and_stack_files_are_checked() {
    let env = TestEnv::new("badproject");
    std::fs::remove_file(env.path().join("Skyform.toml")).unwrap();
    assert_fails(&env, &["preview"], 1, "no Skyform.toml");
    env.write("Skyform.toml", "name = \"demo\"\nprogam = \"typo\"\n");
    assert_fails(&env, &["preview"], 1, "unknown field `progam`");
    env.write("Skyform.toml", "name = \"demo\"\nprogram = \"cat manifest.json\"\n");
    assert_fails(&env, &["-s", "nope", "preview"], 1, "stack `nope` does not exist");
}

#[test]
fn a_corrupt_or_newer_state_file_is_refused_untouched() {
    let env = TestEnv::new("badstate");
    env.fake_config("");
    env.manifest(json!([{"name": "a", "type": "fake:Resource", "inputs": {}}]));
    env.write("state/dev.json", "{\"format\": 1, \"lineage\": ");
    insta::assert_snapshot!("corrupt_state", assert_fails(&env, &["up", "--yes"], 1, "is corrupt"));
    assert_eq!(env.read("state/dev.json"), "{\"format\": 1, \"lineage\": ");
    env.write("state/dev.json", "{\"format\": 99, \"lineage\": \"x\"}");
    insta::assert_snapshot!("newer_state", assert_fails(&env, &["preview"], 1, "written by a newer skyform"));
    assert!(env.store_counts().is_empty());
}

#[test]
fn providers_that_crash_hang_or_babble_are_named_and_state_stays_true() {
    let env = TestEnv::new("badprovider");
    env.manifest(json!([
        {"name": "ok", "type": "fake:Resource", "inputs": {}},
        {"name": "boom", "type": "fake:Resource", "inputs": {}, "options": {"depends_on": ["ok"]}}
    ]));
    env.fake_config("crash_on = [\"boom\"]");
    let crash = env.run(&["up", "--yes"]);
    assert_eq!(crash.code, 3, "{}", crash.text());
    assert!(crash.stdout.contains("provider `fake` exited unexpectedly"), "{}", crash.text());
    // `ok` was created and recorded; `boom` is pending: the next command says so.
    assert_eq!(env.state()["resources"].as_array().unwrap().len(), 1);
    insta::assert_snapshot!("pending_reported", assert_fails(&env, &["up", "--yes"], 5, "never finished"));
    env.fake_config("");
    env.run(&["refresh", "--yes"]).ok();
    env.run(&["up", "--yes"]).ok();
    assert_eq!(env.store_counts().values().copied().collect::<Vec<_>>(), vec![1, 1]);

    env.run(&["destroy", "--yes"]).ok();
    env.fake_config("garbage_on = [\"boom\"]");
    let garbage = env.run(&["up", "--yes"]);
    assert_eq!(garbage.code, 3);
    assert!(garbage.stdout.contains("not a protocol message: `this is not json`"), "{}", garbage.text());

    env.run(&["up", "--yes", "--clear-pending"]);
    env.run(&["destroy", "--yes", "--clear-pending"]);
    env.fake_config("hang_on = [\"boom\"]");
    let mut cmd = env.command(&["up", "--yes", "--clear-pending"]);
    cmd.env("SKYFORM_PROVIDER_TIMEOUT", "1s");
    let hang = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&hang.stdout);
    assert_eq!(hang.status.code(), Some(3), "{text}");
    assert!(text.contains("did not answer within 1s"), "{text}");
}

#[test]
fn a_second_writer_is_refused_with_the_holder_named() {
    let env = TestEnv::new("lock");
    env.fake_config("latency_ms = 1500");
    env.manifest(json!([{"name": "slow", "type": "fake:Resource", "inputs": {}}]));
    let mut first = env.command(&["up", "--yes"]).spawn().unwrap();
    // Wait until the first holds the lock (its file names it).
    let lock = env.path().join("state/dev.lock");
    for _ in 0..200 {
        if std::fs::read(&lock).map(|b| !b.is_empty()).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = env.run(&["up", "--yes"]);
    assert_eq!(second.code, 4, "{}", second.text());
    insta::assert_snapshot!("locked", second.text());
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read(&lock).unwrap(), b"", "a finished holder leaves an empty lock file");
    // A lock file naming a holder that died (an OS lock is not held): nothing to cancel.
    env.write(
        "state/dev.lock",
        &format!(
            "{{\"pid\": 999999, \"host\": \"{}\", \"user\": \"x\", \"started\": \"t\", \"command\": \"skyform up\"}}",
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim()
        ),
    );
    env.run(&["up", "--yes"]).ok();
    let cancel = env.run(&["cancel"]).ok().stdout.clone();
    assert!(cancel.contains("is not locked"), "{cancel}");
}

/// Defect 10: four `up`s started at the same instant. One wins; every refused one names it.
#[test]
fn simultaneous_writers_are_refused_naming_the_holder() {
    let env = TestEnv::new("lock4");
    env.fake_config("latency_ms = 800");
    env.manifest(json!([{"name": "slow", "type": "fake:Resource", "inputs": {}}]));
    for round in 0..3 {
        env.manifest(json!([{"name": "slow", "type": "fake:Resource", "inputs": {"round": round}}]));
        let children: Vec<_> = (0..4)
            .map(|_| {
                env.command(&["up", "--yes"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut won = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => won += 1,
                Some(4) => assert!(
                    stderr.contains("locked by another command: `skyform up` started"),
                    "round {round}: a refused command names the holder:\n{stderr}"
                ),
                other => panic!("round {round}: unexpected exit {other:?}:\n{stderr}"),
            }
        }
        assert!(won >= 1, "round {round}: one of them runs");
    }
}

#[test]
fn a_dotted_config_key_without_path_points_at_path() {
    let env = TestEnv::new("configpath");
    env.run(&["config", "set", "--path", "db.host", "h"]).ok();
    for cmd in ["get", "rm"] {
        let text = assert_fails(&env, &["config", cmd, "db.host"], 1, "has no config value `db.host`");
        assert!(text.contains("pass `--path`"), "{text}");
    }
    assert_eq!(env.run(&["config", "get", "--path", "db.host"]).ok().stdout.trim(), "h");
}

#[test]
fn a_damaged_journal_says_how_to_get_past_it() {
    let env = TestEnv::new("damagedjournal");
    env.manifest(json!([{"name": "a", "type": "core:Data", "inputs": {"value": 1}}]));
    env.run(&["up", "--yes"]).ok();
    let state: serde_json::Value = serde_json::from_str(&env.read("state/dev.json")).unwrap();
    let header =
        json!({"entry": "header", "journal": 2, "lineage": state["lineage"], "base_serial": state["serial"]});
    env.write(
        "state/dev.journal",
        &format!("{header}\ngarbage\n{{\"entry\":\"record\",\"mutations\":[]}}\n"),
    );
    let text = assert_fails(&env, &["refresh", "--yes"], 1, "is damaged: line 2");
    assert!(text.contains("out of the way"), "{text}");
    // Doing what the hint says works.
    std::fs::rename(env.path().join("state/dev.journal"), env.path().join("damaged.journal")).unwrap();
    env.run(&["refresh", "--yes"]).ok();
    env.run(&["up", "--yes"]).ok();
}
