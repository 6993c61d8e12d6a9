//! What the digests of an S3 upload cost the daemon per MiB on this machine: MD5 (S3's ETag of
//! an object, which S3 and the SDKs compare with Content-MD5) and SHA-256 (the SigV4 payload
//! hash the daemon verifies), with the crates the daemon uses. Prints the median of 5 rounds.
//! A PutObject of 1 MiB cannot answer sooner than the two together after its last byte.
//!
//! `cargo run --release -p skyform-local --example digest_cost`

use std::time::Instant;

use md5::{Digest, Md5};
use sha2::Sha256;

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
}
