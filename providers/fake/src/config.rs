//! The fake's script: what it is told in `configure`, or in `SKYFORM_FAKE_<KEY>` variables.
//!
//! Each key is looked up first in the `config` map of `configure` (`[providers.fake]` in
//! Skyform.toml), then in the environment variable `SKYFORM_FAKE_<KEY>` (upper case), so that a
//! benchmark can script the fake without writing a config file. Lists are JSON arrays of names
//! in the config, comma-separated names in the environment.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

/// Every key the fake understands; anything else in `configure` is a typo and is refused.
pub const KEYS: [&str; 9] = [
    "latency_ms",
    "read_latency_ms",
    "store",
    "fail_create",
    "fail_update",
    "fail_delete",
    "crash_on",
    "hang_on",
    "garbage_on",
];

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Sleep before answering create, update and delete.
    pub latency: Duration,
    /// Sleep before answering read.
    pub read_latency: Duration,
    /// The folder holding one `<id>.json` per live resource; `None` keeps resources in memory.
    pub store: Option<PathBuf>,
    pub fail_create: HashSet<String>,
    pub fail_update: HashSet<String>,
    pub fail_delete: HashSet<String>,
    /// Exit with code 3 when asked to create, update or delete one of these.
    pub crash_on: HashSet<String>,
    /// Never answer a create, update or delete of one of these.
    pub hang_on: HashSet<String>,
    /// Print a line that is not JSON instead of answering a create, update or delete.
    pub garbage_on: HashSet<String>,
}

impl Config {
    /// Reads the script from `config`, falling back to `env` (a lookup of `SKYFORM_FAKE_<KEY>`).
    /// A relative `store` is relative to `project_dir`.
    pub fn load(
        config: &Map<String, Value>,
        env: impl Fn(&str) -> Option<String>,
        project_dir: &Path,
    ) -> Result<Config, String> {
        // `path` is the engine's own setting (where to find the provider); tolerate it in case
        // the engine passes the whole `[providers.fake]` table through.
        if let Some(key) = config.keys().find(|k| !KEYS.contains(&k.as_str()) && *k != "path") {
            return Err(format!(
                "unknown setting `{key}` for the fake provider; it knows: {}",
                KEYS.join(", ")
            ));
        }
        let get = |key: &str| -> Option<Value> {
            config
                .get(key)
                .cloned()
                .or_else(|| env(&format!("SKYFORM_FAKE_{}", key.to_uppercase())).map(Value::String))
        };
        let millis = |key: &str| -> Result<Duration, String> {
            match get(key) {
                None | Some(Value::Null) => Ok(Duration::ZERO),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("`{key}` must be a whole number of milliseconds, not {n}")),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(Duration::ZERO),
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("`{key}` must be a whole number of milliseconds, not {s:?}")),
                Some(other) => Err(format!("`{key}` must be a whole number of milliseconds, not {other}")),
            }
        };
        let names = |key: &str| -> Result<HashSet<String>, String> {
            match get(key) {
                None | Some(Value::Null) => Ok(HashSet::new()),
                Some(Value::String(s)) => {
                    Ok(s.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect())
                }
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(String::from)
                            .ok_or_else(|| format!("`{key}` must list resource names, not {v}"))
                    })
                    .collect(),
                Some(other) => Err(format!("`{key}` must be a list of resource names, not {other}")),
            }
        };
        let store = match get("store") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(project_dir.join(s)),
            Some(other) => return Err(format!("`store` must be a folder path, not {other}")),
        };
        Ok(Config {
            latency: millis("latency_ms")?,
            read_latency: millis("read_latency_ms")?,
            store,
            fail_create: names("fail_create")?,
            fail_update: names("fail_update")?,
            fail_delete: names("fail_delete")?,
            crash_on: names("crash_on")?,
            hang_on: names("hang_on")?,
            garbage_on: names("garbage_on")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_wins_over_environment() {
        let config = json!({"latency_ms": 5, "fail_create": ["a", "b"], "store": "st"});
        let env = |k: &str| match k {
            "SKYFORM_FAKE_LATENCY_MS" => Some("99".to_string()),
            "SKYFORM_FAKE_CRASH_ON" => Some("x, y,".to_string()),
            "SKYFORM_FAKE_READ_LATENCY_MS" => Some("7".to_string()),
            _ => None,
        };
        let c = Config::load(config.as_object().unwrap(), env, Path::new("/proj")).unwrap();
        assert_eq!(c.latency, Duration::from_millis(5));
        assert_eq!(c.read_latency, Duration::from_millis(7));
        assert_eq!(c.store, Some(PathBuf::from("/proj/st")));
        assert_eq!(c.fail_create, HashSet::from(["a".to_string(), "b".to_string()]));
        assert_eq!(c.crash_on, HashSet::from(["x".to_string(), "y".to_string()]));
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let none = |_: &str| None;
        let err =
            Config::load(json!({"latncy_ms": 1}).as_object().unwrap(), none, Path::new("/")).unwrap_err();
        assert!(err.contains("`latncy_ms`"), "{err}");
        let err = Config::load(json!({"latency_ms": "soon"}).as_object().unwrap(), none, Path::new("/"))
            .unwrap_err();
        assert!(err.contains("milliseconds"), "{err}");
    }
}
