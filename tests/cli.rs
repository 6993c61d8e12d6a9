//! The engine through the CLI, in sealed temporary projects, with the fake provider.

mod common;

use common::TestEnv;
use serde_json::json;

fn three() -> serde_json::Value {
    json!([
        {"name": "a", "type": "core:Data", "inputs": {"value": "hello"}},
        {"name": "b", "type": "fake:Resource", "inputs": {"value": {"$ref": "a", "output": "value"}, "n": 1}},
        {"name": "c", "type": "fake:Resource", "inputs": {"from_b": {"$concat": ["n=", {"$ref": "b", "output": "n"}]}}}
    ])
}

#[test]
fn preview_up_preview_destroy() {
    let env = TestEnv::new("lifecycle");
    env.fake_config("");
    env.manifest_with_outputs(three(), json!({"c": {"$ref": "c", "output": "from_b"}}));

    let preview = env.run(&["preview"]);
    insta::assert_snapshot!("lifecycle_preview", preview.text());
    assert!(!env.path().join("state/dev.json").exists(), "preview writes no state");

    let up = env.run(&["up", "--yes"]);
    insta::assert_snapshot!("lifecycle_up", up.text());
    up.ok();
    insta::assert_snapshot!(
        "lifecycle_state",
        common::normalize_state(&env.read("state/dev.json"), env.path())
    );
    assert_eq!(env.store_counts().len(), 2);

    // Nothing changed: no churn, serial unchanged, the file byte for byte the same.
    let before = env.read("state/dev.json");
    let again = env.run(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes"), "{}", again.text());
    assert_eq!(before, env.read("state/dev.json"));
    assert_eq!(env.run(&["outputs", "c"]).ok().stdout, "n=1\n");

    let destroy = env.run(&["destroy", "--yes"]);
    insta::assert_snapshot!("lifecycle_destroy", destroy.text());
    destroy.ok();
    assert!(env.store_counts().is_empty());
    assert_eq!(env.state()["resources"], json!([]));
    assert_eq!(env.state()["serial"], 2);
}

#[test]
fn update_in_place_and_replace_show_property_diffs() {
    let env = TestEnv::new("update");
    env.fake_config("");
    env.manifest(json!([
        {"name": "x", "type": "fake:Resource", "inputs": {"size": 1, "force_new": "a"}},
        {"name": "y", "type": "fake:Resource", "inputs": {"size": 1, "force_new": "a"}},
        {"name": "dep", "type": "fake:Resource", "inputs": {"on": {"$ref": "y", "output": "id"}}}
    ]));
    env.run(&["up", "--yes"]).ok();
    let y_id =
        env.state()["resources"].as_array().unwrap().iter().find(|r| r["name"] == "y").unwrap()["id"].clone();
    env.manifest(json!([
        {"name": "x", "type": "fake:Resource", "inputs": {"size": 2, "force_new": "a"}},
        {"name": "y", "type": "fake:Resource", "inputs": {"size": 1, "force_new": "b"}},
        {"name": "dep", "type": "fake:Resource", "inputs": {"on": {"$ref": "y", "output": "id"}}}
    ]));
    let preview = env.run(&["preview", "--diff"]);
    insta::assert_snapshot!("update_preview_diff", preview.text());
    // One step at a time, so that the order of the progress lines is stable for the snapshot.
    let up = env.run(&["up", "--yes", "--parallel", "1"]);
    insta::assert_snapshot!("update_up", up.text());
    up.ok();
    let state = env.state();
    let res = state["resources"].as_array().unwrap();
    let y = res.iter().find(|r| r["name"] == "y").unwrap();
    assert_ne!(y["id"], y_id, "y was replaced");
    let dep = res.iter().find(|r| r["name"] == "dep").unwrap();
    assert_eq!(dep["inputs"]["on"], y["id"], "the dependent follows the replacement");
    // The old copy is gone from the cloud; exactly one of each remains.
    assert_eq!(env.store_counts().values().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
}

#[test]
fn a_failed_step_stops_its_dependents_and_records_the_rest() {
    let env = TestEnv::new("failure");
    env.fake_config("fail_create = [\"bad\"]");
    env.manifest(json!([
        {"name": "bad", "type": "fake:Resource", "inputs": {}},
        {"name": "child", "type": "fake:Resource", "inputs": {"p": {"$ref": "bad", "output": "id"}}},
        {"name": "grandchild", "type": "fake:Resource", "inputs": {"p": {"$ref": "child", "output": "id"}}},
        {"name": "free", "type": "fake:Resource", "inputs": {}}
    ]));
    let up = env.run(&["up", "--yes", "--parallel", "1"]);
    assert_eq!(up.code, 3, "{}", up.text());
    insta::assert_snapshot!("failure_up", up.text());
    let names: Vec<String> = env.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["free"]);
    assert_eq!(env.store_counts().keys().cloned().collect::<Vec<_>>(), vec!["free"]);
    // Once the cause is gone the next up finishes the job.
    env.fake_config("");
    env.run(&["up", "--yes"]).ok();
    assert_eq!(env.store_counts().len(), 4);
}

#[test]
fn resource_options_are_honoured_and_persisted() {
    let env = TestEnv::new("options");
    env.fake_config("");
    env.manifest(json!([
        {"name": "kept", "type": "fake:Resource", "inputs": {"v": 1}, "options": {"protect": true}},
        {"name": "ign", "type": "fake:Resource", "inputs": {"v": 1, "tag": "a"}, "options": {"ignore_changes": ["tag"]}},
        {"name": "roc", "type": "fake:Resource", "inputs": {"v": 1}, "options": {"replace_on_changes": ["v"]}},
        {"name": "dbr", "type": "fake:Resource", "inputs": {"force_new": 1}, "options": {"delete_before_replace": true}},
        {"name": "ret", "type": "fake:Resource", "inputs": {}, "options": {"retain_on_delete": true}},
        {"name": "old-name", "type": "fake:Resource", "inputs": {"v": 1}}
    ]));
    env.run(&["up", "--yes"]).ok();
    let state = env.state();
    let kept = state["resources"].as_array().unwrap().iter().find(|r| r["name"] == "kept").unwrap().clone();
    assert_eq!(kept["options"]["protect"], true, "options are recorded in state");
    let old_id =
        state["resources"].as_array().unwrap().iter().find(|r| r["name"] == "old-name").unwrap()["id"]
            .clone();

    env.manifest(json!([
        {"name": "kept", "type": "fake:Resource", "inputs": {"v": 1}, "options": {"protect": true}},
        {"name": "ign", "type": "fake:Resource", "inputs": {"v": 1, "tag": "b"}, "options": {"ignore_changes": ["tag"]}},
        {"name": "roc", "type": "fake:Resource", "inputs": {"v": 2}, "options": {"replace_on_changes": ["v"]}},
        {"name": "dbr", "type": "fake:Resource", "inputs": {"force_new": 2}, "options": {"delete_before_replace": true}},
        {"name": "new-name", "type": "fake:Resource", "inputs": {"v": 1}, "options": {"aliases": ["old-name"]}}
    ]));
    let up = env.run(&["up", "--yes", "--parallel", "1"]);
    insta::assert_snapshot!("options_up", up.text());
    up.ok();
    let state = env.state();
    let res = state["resources"].as_array().unwrap();
    let renamed = res.iter().find(|r| r["name"] == "new-name").unwrap();
    assert_eq!(renamed["id"], old_id, "an alias renames without replacing");
    assert!(res.iter().all(|r| r["name"] != "ret"), "retained resources leave the state");
    assert_eq!(env.store_counts().get("ret"), Some(&1), "…but keep existing");
    assert_eq!(res.iter().find(|r| r["name"] == "ign").unwrap()["inputs"]["tag"], "a");

    // A protected resource cannot be deleted.
    env.manifest(json!([]));
    let refused = env.run(&["up", "--yes"]);
    assert_eq!(refused.code, 1);
    insta::assert_snapshot!("options_protected", refused.text());
    let destroy = env.run(&["destroy", "--yes"]);
    assert_eq!(destroy.code, 1, "{}", destroy.text());
    assert!(destroy.stderr.contains("`kept` is protected"), "{}", destroy.text());
}

#[test]
fn unknown_values_show_as_known_after_up() {
    let env = TestEnv::new("unknowns");
    env.fake_config("");
    env.manifest(json!([
        {"name": "a", "type": "fake:Resource", "inputs": {"v": 1}},
        {"name": "b", "type": "fake:Resource", "inputs": {"a_id": {"$ref": "a", "output": "id"}, "url": {"$concat": ["http://", {"$ref": "a", "output": "id"}]}}}
    ]));
    let preview = env.run(&["preview", "--diff"]);
    assert!(preview.stdout.contains("+ a_id: (known after up)"), "{}", preview.text());
    assert!(preview.stdout.contains("+ url: (known after up)"), "{}", preview.text());
    env.run(&["up", "--yes"]).ok();
    let state = env.state();
    let res = state["resources"].as_array().unwrap();
    let a = res.iter().find(|r| r["name"] == "a").unwrap();
    let b = res.iter().find(|r| r["name"] == "b").unwrap();
    assert_eq!(b["inputs"]["url"], format!("http://{}", a["id"].as_str().unwrap()));
    assert_eq!(b["dependencies"], json!(["a"]));
}

#[test]
fn saved_plans_apply_exactly_and_refuse_a_moved_state() {
    let env = TestEnv::new("plans");
    env.fake_config("");
    env.manifest(json!([{"name": "a", "type": "fake:Resource", "inputs": {"v": 1}}]));
    env.run(&["preview", "--save-plan", "plan.json"]).ok();
    // The program changes after the plan was saved: the plan, not the program, is applied.
    env.manifest(json!([{"name": "zzz", "type": "fake:Resource", "inputs": {"v": 9}}]));
    env.run(&["up", "--yes", "--plan", "plan.json"]).ok();
    assert_eq!(env.store_counts().keys().cloned().collect::<Vec<_>>(), vec!["a"]);
    let stale = env.run(&["up", "--yes", "--plan", "plan.json"]);
    assert_eq!(stale.code, 6, "{}", stale.text());
    insta::assert_snapshot!("plans_stale", stale.text());
}

#[test]
fn refresh_shows_drift_and_records_it() {
    let env = TestEnv::new("refresh");
    env.fake_config("");
    env.manifest(json!([
        {"name": "a", "type": "fake:Resource", "inputs": {"size": 1}},
        {"name": "b", "type": "fake:Resource", "inputs": {"size": 1}}
    ]));
    env.run(&["up", "--yes"]).ok();
    // Behind skyform's back: change a, delete b.
    for e in std::fs::read_dir(env.store()).unwrap().flatten() {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        if v["name"] == "a" {
            v["inputs"]["size"] = json!(5);
            v["outputs"]["size"] = json!(5);
            std::fs::write(e.path(), v.to_string()).unwrap();
        } else if v["name"] == "b" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let refresh = env.run(&["refresh", "--yes"]);
    insta::assert_snapshot!("refresh_drift", refresh.text());
    refresh.ok();
    let state = env.state();
    let res = state["resources"].as_array().unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0]["inputs"]["size"], 5);
    // The next up puts things back as the program says.
    let up = env.run(&["up", "--yes"]);
    up.ok();
    assert!(up.stdout.contains("+  1 created") && up.stdout.contains("~  1 updated"), "{}", up.text());
}

#[test]
fn import_adopts_an_existing_resource() {
    let env = TestEnv::new("import");
    env.fake_config("");
    env.manifest(json!([{"name": "orig", "type": "fake:Resource", "inputs": {"v": 1}}]));
    env.run(&["up", "--yes"]).ok();
    let id = env.state()["resources"][0]["id"].as_str().unwrap().to_string();
    env.run(&["stack", "init", "other"]).ok();
    env.write(
        "Skyform.other.toml",
        &format!("provider = \"local\"\n[providers.fake]\nstore = \"{}\"\n", env.store().display()),
    );
    let imported = env.run(&["-s", "other", "import", "fake:Resource", "adopted", &id]);
    insta::assert_snapshot!("import", imported.text());
    imported.ok();
    let other: serde_json::Value = serde_json::from_str(&env.read("state/other.json")).unwrap();
    assert_eq!(other["resources"][0]["id"], id);
    let missing = env.run(&["-s", "other", "import", "fake:Resource", "x", "no-such-id"]);
    assert_eq!(missing.code, 1, "{}", missing.text());
}

#[test]
fn without_a_terminal_up_and_destroy_need_yes() {
    let env = TestEnv::new("noyes");
    env.fake_config("");
    env.manifest(json!([{"name": "a", "type": "fake:Resource", "inputs": {}}]));
    let up = env.run(&["up"]);
    assert_eq!(up.code, 1);
    assert!(up.stderr.contains("pass `--yes`"), "{}", up.text());
    assert!(env.store_counts().is_empty());
    env.run(&["up", "--yes"]).ok();
    let destroy = env.run(&["destroy"]);
    assert_eq!(destroy.code, 1);
    assert_eq!(env.store_counts().len(), 1);
}

#[test]
fn json_output_is_machine_readable() {
    let env = TestEnv::new("json");
    env.fake_config("");
    env.manifest_with_outputs(
        json!([{"name": "a", "type": "fake:Resource", "inputs": {"v": "x"}}]),
        json!({"v": {"$ref": "a", "output": "v"}}),
    );
    let preview: serde_json::Value =
        serde_json::from_str(&env.run(&["preview", "--json"]).ok().stdout).unwrap();
    assert_eq!(preview["counts"], json!({"create": 1}));
    let up: serde_json::Value =
        serde_json::from_str(&env.run(&["up", "--yes", "--json"]).ok().stdout).unwrap();
    assert_eq!(up["result"], "succeeded");
    assert_eq!(up["done"], json!({"create": 1}));
    assert_eq!(up["outputs"], json!({"v": "x"}));
    assert!(up["journal_bytes"].as_u64().unwrap() > 0);
    let outputs: serde_json::Value =
        serde_json::from_str(&env.run(&["outputs", "--json"]).ok().stdout).unwrap();
    assert_eq!(outputs, json!({"v": "x"}));
}

#[test]
fn secrets_never_reach_state_or_output_in_plaintext() {
    let env = TestEnv::new("secrets");
    env.fake_config("");
    env.manifest_with_outputs(
        json!([{"name": "db", "type": "fake:Resource", "inputs": {"password": {"$secret": "hunter2-very-secret"}}}]),
        json!({"pw": {"$ref": "db", "output": "password"}}),
    );
    let pass = [("SKYFORM_PASSPHRASE", "correct horse battery staple")];
    let preview = env.run_with(&["preview", "--diff"], &pass);
    let up = env.run_with(&["up", "--yes"], &pass);
    up.ok();
    let state = env.read("state/dev.json");
    for text in [&preview.stdout, &preview.stderr, &up.stdout, &up.stderr, &state] {
        assert!(!text.contains("hunter2"), "plaintext secret leaked:\n{text}");
    }
    assert!(state.contains("\"$encrypted\": \"v1:"), "{state}");
    // The provider did get the plaintext.
    let stored: Vec<String> = std::fs::read_dir(env.store())
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(stored.iter().any(|s| s.contains("hunter2-very-secret")));
    // The secret output reads back only when asked for.
    assert_eq!(env.run_with(&["outputs", "pw"], &pass).ok().stdout, "[secret]\n");
    assert_eq!(
        env.run_with(&["outputs", "pw", "--show-secrets"], &pass).ok().stdout,
        "hunter2-very-secret\n"
    );
    // Unchanged secret: no change. Changed secret: an update.
    assert!(env.run_with(&["preview"], &pass).ok().stdout.contains("no changes"));
    env.manifest(
        json!([{"name": "db", "type": "fake:Resource", "inputs": {"password": {"$secret": "another-one"}}}]),
    );
    let changed = env.run_with(&["preview"], &pass);
    assert!(changed.stdout.contains("~   fake:Resource  db    update"), "{}", changed.text());
}

#[test]
fn graph_and_synth_show_the_program() {
    let env = TestEnv::new("graph");
    env.manifest(three());
    insta::assert_snapshot!("graph_dot", env.run(&["graph"]).ok().stdout.clone());
    insta::assert_snapshot!("graph_mermaid", env.run(&["graph", "--format", "mermaid"]).ok().stdout.clone());
    let text = env.run(&["synth"]).ok().stdout.clone();
    let synth: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(synth["resources"].as_array().unwrap().len(), 3);
    // The manifest's fields in MANIFEST.md's order, as the program wrote them.
    let at = |key: &str| text.find(&format!("\n  \"{key}\"")).unwrap_or_else(|| panic!("{key}: {text}"));
    let order = ["manifest", "project", "stack", "resources", "components", "outputs"].map(at);
    assert!(order.is_sorted(), "{text}");
}

#[test]
fn stacks_are_created_listed_exported_and_removed() {
    let env = TestEnv::new("stacks");
    env.fake_config("");
    env.manifest(json!([{"name": "a", "type": "fake:Resource", "inputs": {}}]));
    env.run(&["up", "--yes"]).ok();
    env.run(&["stack", "init", "prod", "--provider", "aws"]).ok();
    assert!(env.read("Skyform.prod.toml").contains("provider = \"aws\""));
    let ls = env.run(&["-s", "dev", "stack", "ls"]);
    insta::assert_snapshot!("stack_ls", ls.ok().stdout.clone());
    let exported = env.run(&["-s", "dev", "stack", "export"]).ok().stdout.clone();
    assert_eq!(exported, common::normalize(&env.read("state/dev.json"), env.path()));
    let exported = env.read("state/dev.json");
    let history = env.run(&["-s", "dev", "stack", "history", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&history.ok().stdout).unwrap();
    assert_eq!(h[0]["command"], "up");
    let rm = env.run(&["stack", "rm", "dev"]);
    assert_eq!(rm.code, 1, "a stack with resources is not removed: {}", rm.text());
    env.run(&["-s", "dev", "destroy", "--yes"]).ok();
    env.run(&["stack", "rm", "dev"]).ok();
    // Import puts an exported state back.
    env.write("Skyform.dev.toml", "provider = \"local\"\n");
    env.write("exported.json", &exported);
    env.run(&["-s", "dev", "stack", "import", "exported.json"]).ok();
    assert_eq!(env.state()["resources"].as_array().unwrap().len(), 1);
}

#[test]
fn target_limits_the_update_to_a_resource_and_its_dependencies() {
    let env = TestEnv::new("target");
    env.fake_config("");
    env.manifest(json!([
        {"name": "base", "type": "fake:Resource", "inputs": {"v": 1}},
        {"name": "app", "type": "fake:Resource", "inputs": {"base": {"$ref": "base", "output": "id"}}},
        {"name": "other", "type": "fake:Resource", "inputs": {"v": 1}}
    ]));
    let up = env.run(&["up", "--yes", "--target", "app"]);
    up.ok();
    let names: Vec<String> = env.store_counts().keys().cloned().collect();
    assert_eq!(names, vec!["app", "base"], "only the target and its dependencies: {}", up.text());
    let missing = env.run(&["up", "--yes", "--target", "nope"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("--target `nope`"), "{}", missing.text());
    env.run(&["up", "--yes"]).ok();
    // destroy --target takes what depends on the target with it.
    let destroy = env.run(&["destroy", "--yes", "--target", "base"]);
    destroy.ok();
    assert_eq!(env.store_counts().keys().cloned().collect::<Vec<_>>(), vec!["other"]);
}

#[test]
fn ctrl_c_finishes_the_steps_in_flight_and_saves() {
    let env = TestEnv::new("ctrlc");
    env.fake_config("latency_ms = 300");
    let resources: Vec<serde_json::Value> =
        (0..10).map(|i| json!({"name": format!("r{i}"), "type": "fake:Resource", "inputs": {}})).collect();
    env.manifest(json!(resources));
    let child = env
        .command(&["up", "--yes", "--parallel", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let state = env.state();
    let recorded = state["resources"].as_array().unwrap().len();
    assert!((1..10).contains(&recorded), "some but not all were created: {recorded}");
    assert!(state.get("pending_operations").is_none(), "the step in flight finished: {state}");
    assert_eq!(env.store_counts().len(), recorded, "state and cloud agree");
    env.fake_config("");
    env.run(&["up", "--yes"]).ok();
    assert_eq!(env.store_counts().len(), 10);
}

#[test]
fn verbose_shows_provider_logs_and_a_third_party_provider_can_be_named_in_skyform_toml() {
    let env = TestEnv::new("verbose");
    let fake = common::bin_dir().join("skyform-provider-fake");
    env.write(
        "Skyform.toml",
        &format!(
            "name = \"demo\"\nprogram = \"cat manifest.json\"\n[providers.fake]\npath = \"{}\"\n",
            fake.display()
        ),
    );
    env.fake_config("fail_create = [\"x\"]");
    env.manifest(json!([{"name": "x", "type": "fake:Resource", "inputs": {}}]));
    let quiet = env.run(&["up", "--yes"]);
    assert_eq!(quiet.code, 3);
    let verbose = env.run(&["-v", "up", "--yes"]);
    assert_eq!(verbose.code, 3);
    assert!(verbose.stderr.contains("started provider fake"), "{}", verbose.text());
    let log = env.read(".skyform/logs/fake.log");
    assert!(!log.is_empty(), "provider stderr is captured to its log file");
}
