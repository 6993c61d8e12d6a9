//! One regression test per defect found by the independent acceptance tests (issue 8), each
//! through the real binary, in a sealed temporary project.

mod common;

use std::time::{Duration, Instant};

use common::TestEnv;
use serde_json::{Value, json};

fn resource<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| {
        panic!("`{name}` is not recorded: {state:#}");
    })
}

/// Waits until the journal shows `needle` (a step has begun), at most `limit`.
fn wait_for_journal(env: &TestEnv, needle: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(text) = std::fs::read_to_string(env.path().join("state/dev.journal"))
            && text.contains(needle)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the journal never showed `{needle}`");
}

fn command_pair(update: &str) -> Value {
    json!([
        {"name": "a", "type": "core:Command", "inputs": {"create": "echo v1", "update": update}},
        {"name": "b", "type": "core:Data", "inputs": {"value": {"$ref": "a", "output": "stdout"}}}
    ])
}

/// Defect 1: a kill during an in-place update. `refresh` used to record the update's new inputs
/// with `outputs: null`, after which `up` failed forever (or, without dependents, never ran the
/// update). Now refresh keeps the recorded inputs, so the update is planned again.
#[test]
fn kill_during_update_then_refresh_converges() {
    let env = TestEnv::new("killupdate");
    env.manifest(command_pair("echo v1"));
    env.run(&["up", "--yes"]).ok();
    env.manifest(command_pair("sleep 2; echo v2"));
    let mut child = env
        .command(&["up", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(&env, r#""op":"update""#, Duration::from_secs(30));
    child.kill().unwrap(); // SIGKILL, mid-update
    child.wait().unwrap();

    let refresh = env.run(&["refresh", "--yes"]);
    refresh.ok();
    let state = env.state();
    let a = resource(&state, "a");
    assert_eq!(a["inputs"]["update"], "echo v1", "the interrupted update is to be planned again: {a:#}");
    assert!(a["outputs"]["stdout"].is_string(), "outputs are kept: {a:#}");
    assert!(state.get("pending_operations").is_none(), "{state:#}");

    let preview = env.run(&["preview"]);
    preview.ok();
    assert!(preview.stdout.contains("2 to update"), "{}", preview.text());
    env.run(&["up", "--yes"]).ok();
    let state = env.state();
    assert_eq!(resource(&state, "a")["inputs"]["update"], "sleep 2; echo v2");
    assert_eq!(resource(&state, "a")["outputs"]["stdout"], "v2");
    assert_eq!(resource(&state, "b")["outputs"]["value"], "v2");
    assert!(env.run(&["preview"]).ok().stdout.contains("no changes"));
}

fn write_raw(env: &TestEnv, manifest: Value) {
    env.write("manifest.json", &serde_json::to_string_pretty(&manifest).unwrap());
}

/// Defect 2: a manifest without `resources` was taken as empty, and `up --yes` deleted the
/// whole stack. `stack`, `project` and a resource's `inputs` are required too.
#[test]
fn required_manifest_fields_are_required() {
    let env = TestEnv::new("required");
    env.fake_config("");
    env.manifest(json!([{"name": "keep", "type": "fake:Resource", "inputs": {}}]));
    env.run(&["up", "--yes"]).ok();
    let before = env.read("state/dev.json");

    write_raw(&env, json!({"manifest": 1, "project": "demo", "stack": "dev"}));
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("missing field `resources`"), "{}", up.text());
    assert!(up.stderr.contains("hint:"), "{}", up.text());

    write_raw(&env, json!({"manifest": 1, "project": "demo", "resources": []}));
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("missing field `stack`"), "{}", up.text());

    write_raw(&env, json!({"manifest": 1, "stack": "dev", "resources": []}));
    assert!(env.run(&["preview"]).stderr.contains("missing field `project`"));

    write_raw(
        &env,
        json!({"manifest": 1, "project": "demo", "stack": "dev", "resources": [{"name": "keep", "type": "fake:Resource"}]}),
    );
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("resource `keep` (resources[0]): missing field `inputs`"), "{}", up.text());

    write_raw(&env, json!({"manifest": 1, "project": "other", "stack": "dev", "resources": []}));
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("for project `other`, but this is project `demo`"), "{}", up.text());

    assert_eq!(before, env.read("state/dev.json"), "nothing was changed");
    assert_eq!(env.store_counts().len(), 1, "nothing was deleted");
}

/// Defect 8: a type error names the resource and the field, not only a line and a column.
#[test]
fn type_errors_name_the_resource_and_field() {
    let env = TestEnv::new("typeerr");
    env.manifest(json!([
        {"name": "fine", "type": "core:Data", "inputs": {}},
        {"name": "web", "type": "core:Data", "inputs": {}, "options": {"protect": "yes"}}
    ]));
    let run = env.run(&["preview"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains("resource `web` (resources[1]), field `options.protect`: invalid type: string \"yes\", expected a boolean"),
        "{}",
        run.text()
    );
    env.manifest(json!([{"name": 7, "type": "core:Data", "inputs": {}}]));
    let run = env.run(&["preview"]);
    assert!(run.stderr.contains("resources[0], field `name`: invalid type: integer `7`"), "{}", run.text());
}

fn nested(depth: usize) -> Value {
    let mut v = json!("bottom");
    for _ in 0..depth {
        v = json!({"d": v});
    }
    v
}

/// Defect 3: a value nested 123 levels passed validation, but its finished create could not be
/// read back from the journal, so it was taken as interrupted and created again, forever. Now
/// values nest at most 64 levels (refused with a clear error), and the deepest value accepted
/// round-trips through the journal and the state.
#[test]
fn deeply_nested_values_are_refused_or_round_trip() {
    let env = TestEnv::new("deep");
    env.fake_config("");
    env.manifest(json!([{"name": "deep", "type": "fake:Resource", "inputs": {"v": nested(123)}}]));
    let run = env.run(&["up", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains("resource `deep`: inputs.v.d.d"), "{}", run.text());
    assert!(run.stderr.contains("nested more than 64 levels"), "{}", run.text());
    assert!(env.store_counts().is_empty());

    // The deepest accepted: inputs (1) + v (1) + 62 = 64 levels.
    env.manifest(json!([{"name": "deep", "type": "fake:Resource", "inputs": {"v": nested(62)}}]));
    env.run(&["up", "--yes"]).ok();
    let state = env.state();
    assert!(state.get("pending_operations").is_none(), "{state:#}");
    assert_eq!(resource(&state, "deep")["inputs"]["v"], nested(62));
    assert!(env.run(&["preview"]).ok().stdout.contains("no changes"));
    env.run(&["refresh", "--yes"]).ok();
    assert!(env.run(&["up", "--yes"]).ok().stdout.contains("no changes"));
    assert_eq!(env.store_counts().values().sum::<usize>(), 1, "created once");
}

/// Defect 5: integers beyond 2^53 reached providers as floats. They are refused, naming the
/// resource and the field.
#[test]
fn integers_beyond_2_pow_53_are_refused() {
    let env = TestEnv::new("bigint");
    env.write(
        "manifest.json",
        r#"{"manifest": 1, "project": "demo", "stack": "dev", "resources": [
            {"name": "n", "type": "core:Data", "inputs": {"value": {"big": 123456789012345678901234567890}}}
        ]}"#,
    );
    let run = env.run(&["preview"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains("resource `n`: inputs.value.big: the number"), "{}", run.text());
    assert!(run.stderr.contains("write it as a string"), "{}", run.text());

    env.manifest(json!([{"name": "n", "type": "core:Data", "inputs": {"value": 9_007_199_254_740_993u64}}]));
    let run = env.run(&["preview"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains("resource `n`: inputs.value: the number"), "{}", run.text());

    env.manifest(json!([{"name": "n", "type": "core:Data", "inputs": {"value": [9_007_199_254_740_992u64, -9_007_199_254_740_992i64, 1.5]}}]));
    env.run(&["up", "--yes"]).ok();
    assert_eq!(
        resource(&env.state(), "n")["inputs"]["value"],
        json!([9_007_199_254_740_992u64, -9_007_199_254_740_992i64, 1.5])
    );
}

/// Defect 4: a state file recording another project was accepted, and `up` ran that project's
/// deletes. It is refused, naming both projects, and nothing is touched.
#[test]
fn a_state_file_of_another_project_is_refused() {
    let env = TestEnv::new("otherproject");
    env.fake_config("");
    env.manifest(json!([{"name": "mine", "type": "fake:Resource", "inputs": {}}]));
    env.run(&["up", "--yes"]).ok();
    let mut state = env.state();
    state["project"] = json!("shop");
    let text = serde_json::to_string_pretty(&state).unwrap();
    env.write("state/dev.json", &text);
    for args in [
        &["up", "--yes"][..],
        &["preview"],
        &["destroy", "--yes"],
        &["refresh", "--yes"],
        &["stack", "export"],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.text());
        assert!(
            run.stderr.contains("records the state of project `shop`, but this is project `demo`"),
            "{args:?}: {}",
            run.text()
        );
        assert!(run.stderr.contains("set `name = \"shop\"` back"), "{}", run.text());
    }
    assert_eq!(env.read("state/dev.json"), text, "untouched");
    assert_eq!(env.store_counts().len(), 1, "nothing was deleted");
}

/// Defect 6: a stale or empty journal made a no-change `preview` rewrite the state.
#[test]
fn preview_never_writes_the_state() {
    let env = TestEnv::new("previewro");
    env.fake_config("");
    env.manifest(json!([{"name": "a", "type": "fake:Resource", "inputs": {}}]));
    env.run(&["up", "--yes"]).ok();
    let before = env.read("state/dev.json");
    let lineage = env.state()["lineage"].as_str().unwrap().to_string();
    let stale =
        format!("{{\"entry\":\"header\",\"journal\":1,\"lineage\":\"{lineage}\",\"base_serial\":0}}\n");
    let current =
        format!("{{\"entry\":\"header\",\"journal\":1,\"lineage\":\"{lineage}\",\"base_serial\":1}}\n");
    for journal in ["", stale.as_str(), current.as_str()] {
        env.write("state/dev.journal", journal);
        assert!(env.run(&["preview"]).ok().stdout.contains("no changes"));
        assert_eq!(env.read("state/dev.json"), before, "preview wrote the state (journal {journal:?})");
        assert!(env.path().join("state/dev.journal").exists(), "preview leaves the journal alone");
        // A journal that changes nothing is dropped by the next writer without a new serial.
        assert!(env.run(&["up", "--yes"]).ok().stdout.contains("no changes"));
        assert_eq!(env.read("state/dev.json"), before, "up wrote an unchanged state (journal {journal:?})");
        assert!(!env.path().join("state/dev.journal").exists());
    }
}

/// Defect 7: `preview --json` and `up --json` counted the same replacement differently (the
/// old copy's delete was counted as a delete of its own).
#[test]
fn preview_and_up_count_a_replacement_alike() {
    let env = TestEnv::new("counts");
    env.fake_config("");
    let m = |v: &str| {
        json!([
            {"name": "r", "type": "fake:Resource", "inputs": {"force_new": v}},
            {"name": "d", "type": "fake:Resource", "inputs": {"force_new": v}, "options": {"delete_before_replace": true}},
            {"name": "u", "type": "fake:Resource", "inputs": {"size": v}},
            {"name": "same", "type": "fake:Resource", "inputs": {}}
        ])
    };
    env.manifest(m("a"));
    env.run(&["up", "--yes"]).ok();
    env.manifest(json!([
        {"name": "r", "type": "fake:Resource", "inputs": {"force_new": "b"}},
        {"name": "d", "type": "fake:Resource", "inputs": {"force_new": "b"}, "options": {"delete_before_replace": true}},
        {"name": "u", "type": "fake:Resource", "inputs": {"size": "b"}}
    ]));
    let preview: Value = serde_json::from_str(&env.run(&["preview", "--json"]).ok().stdout).unwrap();
    let up: Value = serde_json::from_str(&env.run(&["up", "--yes", "--json"]).ok().stdout).unwrap();
    assert_eq!(preview["counts"], json!({"replace": 2, "update": 1, "delete": 1}), "{preview:#}");
    assert_eq!(up["done"], preview["counts"], "{up:#}");
    assert_eq!(env.store_counts().len(), 3);
}

/// Defect 9: an empty manifest deleted the whole stack like any other plan. `preview` warns
/// loudly; `up` refuses without `--allow-delete-all`, even with `--yes`.
#[test]
fn an_empty_program_does_not_delete_the_stack_silently() {
    let env = TestEnv::new("deleteall");
    env.fake_config("");
    env.manifest(json!([
        {"name": "a", "type": "fake:Resource", "inputs": {}},
        {"name": "b", "type": "fake:Resource", "inputs": {}}
    ]));
    env.run(&["up", "--yes"]).ok();
    env.manifest(json!([]));
    let preview = env.run(&["preview"]);
    preview.ok();
    assert!(
        preview.stderr.contains(
            "warning: the program declares no resources: this update DELETES ALL 2 resources of stack `dev`"
        ),
        "{}",
        preview.text()
    );
    let up = env.run(&["up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(up.stderr.contains("refusing to apply"), "{}", up.text());
    assert!(up.stderr.contains("--allow-delete-all"), "{}", up.text());
    assert_eq!(env.store_counts().len(), 2, "nothing was deleted");
    let up = env.run(&["up", "--yes", "--allow-delete-all"]);
    up.ok();
    assert!(up.stderr.contains("DELETES ALL 2"), "{}", up.text());
    assert!(env.store_counts().is_empty());
    // An empty program against an empty stack is no news.
    assert!(!env.run(&["up", "--yes"]).ok().stderr.contains("warning"));
}

/// `stack rm` used to skip the lock: it could remove a stack under a running `up`.
#[test]
fn stack_rm_waits_for_no_one_and_refuses_a_locked_stack() {
    let env = TestEnv::new("stackrm");
    env.fake_config("latency_ms = 1500");
    env.manifest(json!([{"name": "slow", "type": "fake:Resource", "inputs": {}}]));
    let mut up = env.command(&["up", "--yes"]).spawn().unwrap();
    wait_for_journal(&env, r#""op":"create""#, Duration::from_secs(30));
    let rm = env.run(&["stack", "rm", "dev", "--force"]);
    assert_eq!(rm.code, 4, "{}", rm.text());
    assert!(rm.stderr.contains("locked by another command: `skyform up`"), "{}", rm.text());
    assert!(up.wait().unwrap().success());
    assert!(env.path().join("Skyform.dev.toml").exists());
    env.run(&["stack", "rm", "dev", "--force"]).ok();
    assert!(!env.path().join("Skyform.dev.toml").exists());
    assert!(!env.path().join("state/dev.json").exists());
}
