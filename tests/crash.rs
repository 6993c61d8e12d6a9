//! Kill `up` (and `destroy`) with SIGKILL at random instants, over and over, and check after each
//! kill that the state loads, and that `refresh` then the same command converge with every
//! resource existing exactly once — nothing created is forgotten, nothing is created twice —
//! and exactly as the program declares it: the rounds alternate between update waves (every
//! resource's `version` changes in place) and replacement waves (`force_new` changes too), and
//! after recovery every resource, in the state and in the cloud, has the last version.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestEnv;
use serde_json::json;

const N: usize = 200;

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 200 resources: ten chains of twenty (each depends on the previous one), so kills land in
/// the middle of dependency chains as well as of parallel work.
/// `version` changes in place; a new `generation` (`force_new`) replaces.
fn manifest(version: u64, generation: u64) -> serde_json::Value {
    let mut resources = Vec::new();
    for i in 0..N {
        let mut inputs = json!({"version": version, "force_new": generation});
        if i % 20 != 0 {
            inputs["parent"] = json!({"$ref": format!("r{:03}", i - 1), "output": "id"});
        }
        resources.push(json!({"name": format!("r{i:03}"), "type": "fake:Resource", "inputs": inputs}));
    }
    json!(resources)
}

fn check_converged(env: &TestEnv, expect_present: bool, version: u64, context: &str) {
    let counts = env.store_counts();
    if expect_present {
        assert_eq!(counts.len(), N, "{context}: every resource exists");
        let dupes: BTreeMap<&String, &usize> = counts.iter().filter(|(_, c)| **c != 1).collect();
        assert!(dupes.is_empty(), "{context}: resources created more than once: {dupes:?}");
        let state = env.state();
        let recorded: Vec<&serde_json::Value> = state["resources"].as_array().unwrap().iter().collect();
        assert_eq!(recorded.len(), N, "{context}: the state records each resource once");
        assert!(state.get("pending_operations").is_none(), "{context}: nothing pending");
        // Each recorded id is a real resource.
        for r in recorded {
            let id = r["id"].as_str().unwrap();
            let real: serde_json::Value = serde_json::from_slice(
                &std::fs::read(env.store().join(format!("{id}.json")))
                    .unwrap_or_else(|e| panic!("{context}: recorded {id} does not exist: {e}")),
            )
            .unwrap();
            // The update or replacement that was interrupted did happen in the end, and the
            // state records what is really there.
            assert_eq!(r["inputs"]["version"], json!(version), "{context}: {id} is at the last version");
            assert_eq!(real["inputs"], r["inputs"], "{context}: {id} is recorded as it really is");
        }
    } else {
        assert!(counts.is_empty(), "{context}: nothing is left: {counts:?}");
        assert_eq!(env.state()["resources"], json!([]), "{context}: the state is empty");
    }
}

#[test]
fn killed_at_random_instants_the_stack_always_recovers() {
    let seed = std::env::var("SKYFORM_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("crash test seed: {seed} (replay with SKYFORM_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let env = TestEnv::new("crash");
    env.fake_config("latency_ms = 10");
    let kills: usize = std::env::var("SKYFORM_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);

    // How long a whole `up` takes here, so that kills land inside runs on fast and slow
    // machines alike.
    env.manifest(manifest(1, 0));
    let started = Instant::now();
    env.run(&["up", "--yes", "--parallel", "16"]).ok();
    let full_ms = (started.elapsed().as_millis() as u64).max(100);
    println!("a whole up takes {full_ms} ms here");

    let mut version = 1;
    let mut generation = 0;
    let mut killed_mid_run = 0;
    let mut killed_in: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..kills {
        // A fixed cycle, so that every kind of wave is killed: in place, replacing every
        // resource, destroying everything, creating everything.
        let wave = match round % 4 {
            0 => "update wave",
            1 => "replacement wave",
            2 => "destroy",
            _ => "create wave",
        };
        let destroying = wave == "destroy";
        let args: Vec<&str> = if destroying {
            vec!["destroy", "--yes", "--parallel", "16"]
        } else {
            version += 1;
            if wave == "replacement wave" {
                generation += 1;
            }
            env.manifest(manifest(version, generation));
            vec!["up", "--yes", "--parallel", "16"]
        };
        let mut child = env
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Destroying does less work than creating or replacing: aim earlier.
        let span = if destroying { full_ms / 2 } else { full_ms };
        let delay = Duration::from_millis(20 + rng.below(span * 9 / 10));
        let started = Instant::now();
        let mut finished = false;
        while started.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !finished {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
            *killed_in.entry(wave).or_insert(0) += 1;
        }
        let _ = child.wait();
        // No `cancel`: the killed holder's OS lock died with it.
        let context = format!("round {round} (seed {seed}, {wave}, {} killed after {delay:?})", args[0]);

        // The state loads (state file + journal) whatever the instant.
        let export = env.run(&["stack", "export"]);
        assert_eq!(export.code, 0, "{context}: the state must load:\n{}", export.text());
        serde_json::from_str::<serde_json::Value>(&export.stdout).unwrap();
        // Nothing was created twice, even before recovery.
        for (name, count) in env.store_counts() {
            assert!(count <= 2, "{context}: {name} exists {count} times");
        }

        let refresh = env.run(&["refresh", "--yes"]);
        assert_eq!(refresh.code, 0, "{context}: refresh resolves the interrupted run:\n{}", refresh.text());
        let rerun = env.run(&args);
        assert_eq!(rerun.code, 0, "{context}: the next run converges:\n{}", rerun.text());
        let present = !destroying;
        check_converged(&env, present, version, &context);
        // And it is stable: nothing more to do.
        if present {
            let again = env.run(&["preview"]);
            assert!(again.stdout.contains("no changes"), "{context}: converged:\n{}", again.text());
        }
    }
    println!("{kills} rounds, {killed_mid_run} killed mid-run: {killed_in:?}");
    assert!(
        killed_mid_run * 3 >= kills,
        "a third of the rounds at least must be killed mid-run ({killed_mid_run}/{kills})"
    );
}
