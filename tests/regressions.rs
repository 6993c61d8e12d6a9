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
