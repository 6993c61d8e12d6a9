//! Resource ids without a uuid dependency.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh, unique id: 16 hex digits.
///
/// The hasher comes from [`std::hash::RandomState`], whose keys are random per process, and it
/// hashes the clock, the process id and a counter; so two ids differ within a process (the
/// counter), across processes (the keys and the pid) and across time (the clock). The ids are not
/// secrets; they only need to be unique.
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_hex() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| super::new_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())));
    }
}
