//! The engine benchmark: `bash scripts/bench.sh engine` (or `cargo bench --bench engine` after
//! `cargo build --release -p skyform-provider-fake`). Drives the real `skyform` binary against
//! the fake provider in temporary projects and prints figures:
//!
//! 1. `preview` of a 10,000-resource stack with no changes;
//! 2. `up` creating 10,000 resources with an instant provider;
//! 3. `up` of 1,000 independent resources with 50 ms provider latency at `--parallel 64`, against
//!    the ideal time (ceil(1000 / 64) × 50 ms);
//! 4. bytes written by journal and state over run 2, against the final state's size;
//! 5. the peak memory (max RSS) of the `skyform` process in each run.
//!
//! Every figure is the median of `RUNS` runs (default 3), printed with the individual runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn skyform() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skyform"))
}

fn fake_dir() -> PathBuf {
    let dir = skyform().parent().unwrap().to_path_buf();
    let fake = dir.join("skyform-provider-fake");
    if !fake.exists() {
        eprintln!("the fake provider is not built at {}; run `bash scripts/bench.sh engine`", fake.display());
        std::process::exit(1);
    }
    dir
}

struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str, n: usize, latency_ms: u64, chained: bool) -> Project {
        let dir = std::env::temp_dir().join(format!("skyform-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Skyform.toml"), "name = \"bench\"\nprogram = \"cat manifest.json\"\n")
            .unwrap();
        std::fs::write(
            dir.join("Skyform.dev.toml"),
            format!("provider = \"local\"\n[providers.fake]\nlatency_ms = {latency_ms}\n"),
        )
        .unwrap();
        let resources: Vec<Value> = (0..n)
            .map(|i| {
                let mut inputs = json!({"index": i, "tags": {"team": "bench", "tier": i % 7}, "size": 128});
                if chained && i % 10 != 0 {
                    inputs["after"] = json!({"$ref": format!("r{:05}", i - 1), "output": "id"});
                }
                json!({"name": format!("r{i:05}"), "type": "fake:Resource", "inputs": inputs})
            })
            .collect();
        let manifest = json!({"manifest": 1, "project": "bench", "stack": "dev", "resources": resources});
        std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
        Project { dir }
    }

    /// Runs skyform; returns wall time, its stdout, and its max RSS in KiB.
    fn run(&self, args: &[&str]) -> (Duration, String, u64) {
        let path = format!("{}:{}", fake_dir().display(), std::env::var("PATH").unwrap_or_default());
        let started = Instant::now();
        // Reaped below with wait4, which also gives its peak memory.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new(skyform())
            .args(args)
            .current_dir(&self.dir)
            .env("PATH", path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let stdout = {
            use std::io::Read;
            let mut s = String::new();
            child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
            s
        };
        // wait4 gives this child's own rusage (peak RSS), not the sum of all children.
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; status and usage are valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let elapsed = started.elapsed();
        assert_eq!(rc, pid, "wait4 failed");
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("skyform {args:?} failed in {}:\n{stdout}\n{err}", self.dir.display());
        }
        (elapsed, stdout, usage.ru_maxrss as u64)
    }

    fn reset(&self) {
        let _ = std::fs::remove_dir_all(self.dir.join("state"));
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn fmt_runs(xs: &[f64]) -> String {
    xs.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ")
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    println!("skyform engine benchmark ({runs} runs each; median first, then every run)\n");

    // 2. up creating 10,000 resources, instant provider; then 1. preview with no changes.
    let big = Project::new("10k", 10_000, 0, true);
    let (mut create_s, mut create_rss, mut preview_s, mut preview_rss) = (vec![], vec![], vec![], vec![]);
    let (mut journal, mut state_written, mut final_size) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        big.reset();
        let (t, out, rss) = big.run(&["up", "--yes", "--json", "--parallel", "64"]);
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["done"]["create"], 10_000, "{out}");
        create_s.push(t.as_secs_f64());
        create_rss.push(rss as f64 / 1024.0);
        journal.push(report["journal_bytes"].as_u64().unwrap() as f64);
        state_written.push(report["state_bytes"].as_u64().unwrap() as f64);
        final_size.push(std::fs::metadata(big.dir.join("state/dev.json")).unwrap().len() as f64);
        let (t, out, rss) = big.run(&["preview", "--json"]);
        let plan: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(plan["counts"], json!({"same": 10_000}), "no changes expected");
        preview_s.push(t.as_secs_f64());
        preview_rss.push(rss as f64 / 1024.0);
    }
    println!(
        "preview, 10,000 resources, no changes:      {:.3} s   [{}]   (target < 1 s)",
        median(preview_s.clone()),
        fmt_runs(&preview_s)
    );
    println!(
        "up, create 10,000 resources, instant:       {:.3} s   [{}]   (target < 5 s)",
        median(create_s.clone()),
        fmt_runs(&create_s)
    );
    let written: Vec<f64> = journal.iter().zip(&state_written).map(|(j, s)| j + s).collect();
    let ratio: Vec<f64> = written.iter().zip(&final_size).map(|(w, f)| w / f).collect();
    println!(
        "bytes written by that up: journal {:.0} + state {:.0} = {:.0}; final state {:.0}; ratio {:.2}   [{}]   (target <= 3)",
        median(journal.clone()),
        median(state_written.clone()),
        median(written.clone()),
        median(final_size.clone()),
        median(ratio.clone()),
        fmt_runs(&ratio)
    );
    drop(big);

    // 3. 1,000 independent resources, 50 ms latency, --parallel 64.
    let par = Project::new("par", 1_000, 50, false);
    let ideal = (1000f64 / 64.0).ceil() * 0.050;
    let (mut par_s, mut par_rss) = (vec![], vec![]);
    for _ in 0..runs {
        par.reset();
        let (t, out, rss) = par.run(&["up", "--yes", "--json", "--parallel", "64"]);
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["done"]["create"], 1_000);
        par_s.push(t.as_secs_f64());
        par_rss.push(rss as f64 / 1024.0);
    }
    let eff: Vec<f64> = par_s.iter().map(|t| ideal / t).collect();
    println!(
        "up, 1,000 x 50 ms at --parallel 64:         {:.3} s   [{}]; ideal {ideal:.3} s; efficiency {:.2}   [{}]   (target >= 0.8)",
        median(par_s.clone()),
        fmt_runs(&par_s),
        median(eff.clone()),
        fmt_runs(&eff)
    );
    drop(par);

    println!(
        "peak memory (max RSS of skyform): preview 10k {:.1} MiB, up 10k {:.1} MiB, up 1k {:.1} MiB   (target < 200 MB)",
        median(preview_rss),
        median(create_rss),
        median(par_rss)
    );
    let _ = Path::new(".");
}
