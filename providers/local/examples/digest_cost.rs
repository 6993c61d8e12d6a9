//! What the digests of an S3 upload cost the daemon per MiB on this machine: MD5 (S3's ETag of
//! an object, which S3 and the SDKs compare with Content-MD5) and SHA-256 (the SigV4 payload
//! hash the daemon verifies), with the crates the daemon uses. Prints the median of 5 rounds.
//! Then what the daemon's MD5 lanes (`buckets::md5_lanes`: several uploads hashed at once in
//! the lanes of AVX2 or AVX-512 registers) do for 1, 2, 4 and 8 uploads of 1 MiB hashed at the
//! same time.
//!
//! `cargo run --release -p skyform-local --example digest_cost`

use std::time::Instant;

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha256;
use skyform_local::buckets::md5_lanes::Md5Stream;

fn median_ms_per_mib(f: impl Fn(&[u8])) -> f64 {
    let data = vec![0x5au8; 1 << 20];
    let mut v: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..64 {
                f(&data);
            }
            t.elapsed().as_secs_f64() * 1000.0 / 64.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[2]
}

fn main() {
    let md5 = median_ms_per_mib(|d| {
        std::hint::black_box(Md5::digest(d));
    });
    let sha = median_ms_per_mib(|d| {
        std::hint::black_box(Sha256::digest(d));
    });
    println!("MD5 (md-5): {md5:.2} ms per MiB ({:.0} MiB/s)", 1000.0 / md5);
    println!("SHA-256 (sha2): {sha:.2} ms per MiB ({:.0} MiB/s)", 1000.0 / sha);
    println!("both, one after the other: {:.2} ms per MiB", md5 + sha);

    // The lanes: `streams` uploads of 1 MiB at once, each fed in 64 KiB chunks as a body
    // arrives; CPU time of the whole process per MiB hashed (the lanes thread included).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let chunk = Bytes::from(vec![0x5au8; 64 << 10]);
    let want: [u8; 16] = Md5::digest(vec![0x5au8; 1 << 20]).into();
    for streams in [1usize, 2, 4, 8] {
        let mut v: Vec<(f64, f64)> = (0..5)
            .map(|_| {
                let (t, cpu) = (Instant::now(), cpu_secs());
                let rounds = 64 / streams.min(8) * 2;
                rt.block_on(async {
                    for _ in 0..rounds {
                        let tasks: Vec<_> = (0..streams)
                            .map(|_| {
                                let chunk = chunk.clone();
                                tokio::spawn(async move {
                                    let mut s = Md5Stream::new();
                                    for _ in 0..16 {
                                        s.update(&chunk).await;
                                    }
                                    s.finish().await
                                })
                            })
                            .collect();
                        for task in tasks {
                            assert_eq!(task.await.unwrap(), want, "the lanes' MD5");
                        }
                    }
                });
                let mib = (rounds * streams) as f64;
                (t.elapsed().as_secs_f64() * 1000.0 / mib, (cpu_secs() - cpu) * 1000.0 / mib)
            })
            .collect();
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let (wall, cpu) = v[2];
        println!(
            "MD5 lanes, {streams} upload(s) at once: {wall:.2} ms per MiB elapsed, {cpu:.2} ms CPU per MiB ({:.0} MiB/s)",
            1000.0 / wall
        );
    }
}

/// The process's user + system CPU seconds so far (Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 =
        fields.get(11..13).map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum()).unwrap_or(0.0);
    ticks / 100.0
}
