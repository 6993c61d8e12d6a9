//! What recording traces costs the gateway's hot path: the tracing work of one HTTP request
//! that invokes a function, done back to back without the request itself — the context from
//! the request's header, the span id, the invocation's start (its event copied, a live event
//! published), the Runtime API's trace-header lookup, the invocation's end and the HTTP step
//! recorded in the hub — on 1 and 2 threads (the hub is one mutex). Prints the median of 5
//! rounds, in ns per request, to compare with a request's latency (BENCHMARKS.md).
//!
//! `cargo run --release -p skyform-local --example trace_cost [-- REQUESTS_PER_ROUND]`

use std::time::Instant;

use skyform_local::trace;

fn one_request(i: u64, payload: &[u8]) {
    let started = (i, Instant::now());
    let ctx = trace::Ctx::from_header(None, "http POST /jobs");
    let span = trace::new_span_id();
    let request_id = format!("{i:08x}-0000-4000-8000-{:012x}", i);
    let inv = trace::begin_invocation("dev", "submit", &request_id, payload);
    std::hint::black_box(trace::runtime_header(&request_id));
    inv.finish("ok", false);
    trace::record_step(&ctx, &span, "http", &ctx.trigger, started, "200", serde_json::json!({"status": 200}));
}

fn round(threads: u64, n: u64, payload: &[u8]) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..threads {
            s.spawn(move || {
                for i in 0..n / threads {
                    one_request(k * n + i, payload);
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    // An API Gateway v2 event of about 1 KiB, as the gateway builds for a small POST.
    let payload = format!(
        r#"{{"version":"2.0","routeKey":"POST /jobs","rawPath":"/jobs","headers":{{"content-type":"application/json","host":"127.0.0.1:4000","user-agent":"curl/8.5.0"}},"requestContext":{{"http":{{"method":"POST","path":"/jobs"}}}},"body":"{}"}}"#,
        "x".repeat(800)
    );
    round(1, n / 10, payload.as_bytes()); // warm-up: fills the hub to its bounds
    for threads in [1, 2] {
        let mut v: Vec<f64> = (0..5).map(|_| round(threads, n, payload.as_bytes())).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "tracing per request, {threads} thread(s): median {:.0} ns (rounds {})",
            v[2],
            v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ")
        );
    }
}
