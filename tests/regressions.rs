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
