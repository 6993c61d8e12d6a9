//! The AWS benchmark: `cargo bench --bench aws` (`RUNS=1` for a single run of each). Deploys an
//! application of 50 Python functions, an HTTP API with 50 routes (one per function) and 50
//! queues (each subscribed by its function) to moto with the real `skyform` binary, and prints
//! the wall time of `up` (create everything) and `destroy` at `--parallel 1` and at the default
//! parallelism, and the speed-up.
//!
//! The manifest is what the SDK writes for that program on the `aws` target (452 resources): a
//! small program using `skyform-sdk` is built once (into `target/aws-e2e-programs`, shared with
//! the end-to-end tests), `skyform synth` records its manifest, and the timed runs read it with
//! `program = "cat manifest.json"`, so the figures are the engine and the provider, not cargo.
//!
//! Two scenarios: against moto directly, and through a proxy adding 20 ms to every request.
//! moto answers in about a millisecond where AWS takes tens to hundreds, and on a small machine
//! moto (one Python process) is the bottleneck, so the first understates what parallelism buys
//! on AWS; the second is closer to it.

#[path = "../tests/aws_common/mod.rs"]
mod aws_common;

use std::time::{Duration, Instant};

use aws_common::{Moto, Project, Proxy};
use serde_json::Value;

const N: usize = 50;

/// The latency the second scenario adds to every request (AWS answers in 20-100 ms).
const LATENCY_MS: u64 = 20;

const PROGRAM: &str = r#"
use skyform_sdk::{Function, HttpApi, Queue, Runtime};

fn main() {
    skyform_sdk::run(|ctx| {
        let mut api = HttpApi::new("api");
        for i in 0..50 {
            let queue = ctx.add(Queue::new(format!("q{i:02}")))?;
            let f = ctx.add(
                Function::new(format!("f{i:02}"))
                    .code("functions/app")
                    .handler("app.handler")
                    .runtime(Runtime::Python3)
                    .env("QUEUE_URL", queue.url()),
            )?;
            queue.subscribe(&f)?;
            api = api.route(format!("GET /f{i:02}"), &f);
        }
        let api = ctx.add(api)?;
        ctx.export("url", api.url());
        Ok(())
    })
}
"#;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn fmt_runs(xs: &[f64]) -> String {
    xs.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ")
}

/// Runs `skyform -s prod ARGS --json` and returns the wall time and the JSON report.
fn timed(p: &Project, args: &[&str]) -> (Duration, Value) {
    let started = Instant::now();
    let mut all = args.to_vec();
    all.push("--json");
    let run = p.prod(&all);
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "skyform {args:?} failed:\n{}", run.text());
    (elapsed, serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout)))
}

/// Runs `up` and `destroy` `runs` times at `--parallel 1` and at the default, printing medians.
fn scenario(p: &Project, runs: usize, resources: usize, what: &str, proxy: Option<&Proxy>) {
    println!("{what}:");
    let mut medians = Vec::new();
    for (label, parallel) in [("--parallel 1", Some("1")), ("default (--parallel 32)", None)] {
        let (mut up_s, mut destroy_s) = (Vec::new(), Vec::new());
        let mut requests = 0;
        for _ in 0..runs {
            let mut args = vec!["up", "--yes"];
            if let Some(n) = parallel {
                args.extend(["--parallel", n]);
            }
            let seen = proxy.map(|p| p.seen.load(std::sync::atomic::Ordering::SeqCst)).unwrap_or(0);
            let (t, report) = timed(p, &args);
            requests = proxy.map(|p| p.seen.load(std::sync::atomic::Ordering::SeqCst)).unwrap_or(0) - seen;
            assert_eq!(report["done"]["create"].as_u64(), Some(resources as u64), "{report}");
            up_s.push(t.as_secs_f64());
            args[0] = "destroy";
            let (t, report) = timed(p, &args);
            assert_eq!(report["done"]["delete"].as_u64(), Some(resources as u64), "{report}");
            destroy_s.push(t.as_secs_f64());
        }
        let requests =
            if proxy.is_some() { format!("   ({requests} requests per up)") } else { String::new() };
        println!("  up      {label:<24} {:7.2} s   [{}]{requests}", median(up_s.clone()), fmt_runs(&up_s));
        println!("  destroy {label:<24} {:7.2} s   [{}]", median(destroy_s.clone()), fmt_runs(&destroy_s));
        medians.push((median(up_s), median(destroy_s)));
    }
    let ((up1, destroy1), (upn, destroyn)) = (medians[0], medians[1]);
    println!(
        "  speed-up of the default over --parallel 1: up {:.1}x, destroy {:.1}x\n",
        up1 / upn,
        destroy1 / destroyn
    );
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let moto = Moto::start();
    // The project: the example's shape (a cargo program depending on the SDK), with the
    // program above and one code folder shared by every function.
    let p = Project::new("hello-http", &moto);
    p.write("src/main.rs", PROGRAM);
    std::fs::create_dir_all(p.dir.join("functions/app")).unwrap();
    p.write(
        "functions/app/app.py",
        "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n",
    );
    let synth = p.prod(&["synth"]);
    assert_eq!(synth.code, 0, "synth failed:\n{}", synth.text());
    p.write("manifest.json", &synth.stdout);
    let manifest: Value = serde_json::from_str(&synth.stdout).unwrap();
    let resources = manifest["resources"].as_array().unwrap().len();
    let toml = std::fs::read_to_string(p.dir.join("Skyform.toml")).unwrap();
    p.write("Skyform.toml", &format!("{toml}program = \"cat manifest.json\"\n"));

    println!(
        "skyform AWS benchmark against moto: {N} functions, {N} routes, {N} queues = {resources} resources \
         ({runs} run(s) each; median first, then every run)\n"
    );
    scenario(&p, runs, resources, "moto directly", None);
    // AWS answers in tens of milliseconds, not one: the same runs through a proxy that holds
    // every request for LATENCY_MS before passing it on show what parallelism buys there.
    let latency = std::time::Duration::from_millis(LATENCY_MS);
    let proxy = Proxy::start(
        &moto.endpoint,
        move |_, _| {
            std::thread::sleep(latency);
            None
        },
        |_, answer| answer,
    );
    p.aim(&proxy.endpoint);
    scenario(&p, runs, resources, &format!("+{LATENCY_MS} ms per request"), Some(&proxy));
    let left = moto.inventory();
    for kind in ["functions", "roles", "log_groups", "apis", "queues"] {
        assert_eq!(left[kind], serde_json::json!([]), "{kind} left after destroy: {left}");
    }
}
