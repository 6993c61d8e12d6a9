//! The cost of the `s3://` state backend against the folder backend: `cargo bench --bench
//! backend` (`RUNS=N`, default 3; medians). The application of the AWS benchmark (50 functions,
//! 50 routes, 50 queues = 452 AWS resources, `benches/aws.rs`) is deployed to moto and destroyed
//! again, its state kept once in the project folder and once in a bucket of the same moto
//! server; runs alternate between the two. For the S3 backend the CLI counts the requests it
//! sends to the bucket and the bytes it uploads (`SKYFORM_BACKEND_STATS`); for the folder the
//! `--json` report gives the bytes of journal and state written. Two scenarios: moto directly,
//! and everything (provider and backend) through a proxy adding 20 ms per request.

#[path = "../tests/aws_common/mod.rs"]
mod aws_common;

use std::time::Instant;

use aws_common::{Moto, Project, Proxy};
use serde_json::Value;

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

/// Points the stack at a backend (`None`: the folder) by its `backend` line.
fn set_backend(p: &Project, backend: Option<&str>) {
    let path = p.dir.join("Skyform.prod.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String =
        text.lines().filter(|l| !l.starts_with("backend =")).map(|l| format!("{l}\n")).collect();
    let line = backend.map(|b| format!("backend = \"{b}\"\n")).unwrap_or_default();
    std::fs::write(&path, format!("{line}{kept}")).unwrap();
}

struct Figures {
    seconds: f64,
    requests: u64,
    bytes: u64,
}

/// `skyform -s prod ARGS --json`, timed, with the backend's requests and uploaded bytes.
fn run(p: &Project, args: &[&str], stats: &std::path::Path) -> Figures {
    let _ = std::fs::remove_file(stats);
    let started = Instant::now();
    let mut all = vec!["-s", "prod"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = p.command(&all).env("SKYFORM_BACKEND_STATS", stats).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "skyform {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let (mut requests, mut bytes) = (0, 0);
    for line in std::fs::read_to_string(stats).unwrap_or_default().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        requests += v["requests"].as_u64().unwrap();
        bytes += v["bytes_up"].as_u64().unwrap();
    }
    if requests == 0 {
        // The folder: what the run wrote to disk.
        let n = |k: &str| report.pointer(k).and_then(Value::as_u64).unwrap_or(0);
        bytes = n("/journal_bytes") + n("/state_bytes");
    }
    Figures { seconds, requests, bytes }
}

fn scenario(p: &Project, runs: usize, what: &str, s3: &str, stats: &std::path::Path) {
    println!("{what}:");
    let mut rows: Vec<(&str, Vec<Figures>, Vec<Figures>)> =
        vec![("folder", vec![], vec![]), ("s3", vec![], vec![])];
    for _ in 0..runs {
        for row in rows.iter_mut() {
            set_backend(p, (row.0 == "s3").then_some(s3));
            row.1.push(run(p, &["up", "--yes"], stats));
            row.2.push(run(p, &["destroy", "--yes"], stats));
        }
    }
    let mut up_medians = Vec::new();
    for (name, ups, destroys) in &rows {
        let up = median(ups.iter().map(|f| f.seconds).collect());
        let destroy = median(destroys.iter().map(|f| f.seconds).collect());
        let (f, d) = (&ups[0], &destroys[0]);
        println!(
            "  {name:<7} up {up:6.2} s  destroy {destroy:6.2} s   up: {} requests, {} bytes {}; destroy: {} requests, {} bytes   [up runs: {}]",
            f.requests,
            f.bytes,
            if *name == "s3" { "uploaded" } else { "written" },
            d.requests,
            d.bytes,
            ups.iter().map(|f| format!("{:.2}", f.seconds)).collect::<Vec<_>>().join(", ")
        );
        up_medians.push((up, destroy));
    }
    println!(
        "  s3 / folder: up {:.2}x, destroy {:.2}x\n",
        up_medians[1].0 / up_medians[0].0,
        up_medians[1].1 / up_medians[0].1
    );
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let moto = Moto::start();
    moto.py("client('s3').create_bucket(Bucket='team-state')");
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
    let resources =
        serde_json::from_str::<Value>(&synth.stdout).unwrap()["resources"].as_array().unwrap().len();
    let toml = std::fs::read_to_string(p.dir.join("Skyform.toml")).unwrap();
    p.write("Skyform.toml", &format!("{toml}program = \"cat manifest.json\"\n"));
    let stats = p.dir.join("backend-stats.jsonl");
    println!("skyform state backends, {resources} AWS resources on moto, {runs} run(s) each, medians\n");
    scenario(
        &p,
        runs,
        "moto directly",
        &format!("s3://team-state/bench?endpoint={}&region=us-east-1", moto.endpoint),
        &stats,
    );
    let latency = std::time::Duration::from_millis(20);
    let proxy = Proxy::start(
        &moto.endpoint,
        move |_, _| {
            std::thread::sleep(latency);
            None
        },
        |_, answer| answer,
    );
    p.aim(&proxy.endpoint);
    scenario(
        &p,
        runs,
        "+20 ms per request (provider and backend)",
        &format!("s3://team-state/bench?endpoint={}&region=us-east-1", proxy.endpoint),
        &stats,
    );
}
