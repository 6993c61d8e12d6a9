//! Where the provider's region, credentials and endpoint come from.
//!
//! Order, most specific first (the same as the AWS CLI, so a user's existing set-up works):
//!
//! - region: `region` in the stack's `[providers.aws]`, then `AWS_REGION`, `AWS_DEFAULT_REGION`,
//!   then `region` in the profile of `~/.aws/config`;
//! - profile: `profile` in `[providers.aws]`, then `AWS_PROFILE`, then `default`;
//! - credentials: the SDKs' default chain, in `credentials.rs` (environment, web identity,
//!   profile, container, instance metadata); a profile the stack names must exist and is the
//!   only source then;
//! - endpoint: `endpoint` in `[providers.aws]`, then `AWS_ENDPOINT_URL` (one endpoint for every
//!   service, as moto and LocalStack serve them); otherwise the public AWS endpoints.
//!
//! The environment is passed in as a function so that tests need not mutate the process's
//! environment.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use skyform_protocol::ProviderError;

use crate::credentials::{Chain, Context};

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub region: String,
    /// Where the signing keys come from; cached and refreshed before they expire.
    pub credentials: std::sync::Arc<Chain>,
    /// One endpoint for all services (`http://127.0.0.1:5000`), or `None` for AWS itself.
    pub endpoint: Option<String>,
    /// How many times a throttled or 5xx request is tried in all.
    pub max_attempts: u32,
    /// The first backoff's ceiling; each retry doubles it (full jitter picks 0..ceiling).
    pub retry_base_ms: u64,
    /// How long the waiters (Lambda state, IAM propagation) poll before giving up.
    pub wait_timeout_secs: u64,
    /// The stack's default tags (`tags` under `[providers.aws]`), for every taggable resource.
    pub tags: Map<String, Value>,
}

/// An INI file: sections of key/value pairs. `[profile x]` headers are kept as written; the
/// lookup functions below know the two files' conventions.
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parses the AWS shared files' INI dialect: `[section]`, `key = value`, `#` and `;`
/// comments, blank lines. Indented lines continue a nested block (`s3 =` followed by
/// `  max_concurrent_requests = 10`); we do not need nested values, so they are skipped.
pub fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) && !raw.trim().is_empty() {
            continue; // a nested sub-key
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            ini.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            let v = v.trim();
            // An inline comment needs whitespace before it, so `a#b` stays a value.
            let v = v.split(" #").next().unwrap_or(v).split(" ;").next().unwrap_or(v).trim();
            ini.entry(s.clone()).or_default().insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }
    ini
}

fn config_section<'a>(ini: &'a Ini, profile: &str) -> Option<&'a BTreeMap<String, String>> {
    // ~/.aws/config writes `[profile x]` but `[default]`.
    ini.get(&format!("profile {profile}"))
        .or_else(|| if profile == "default" { ini.get("default") } else { None })
}

fn config_str(config: &Map<String, Value>, key: &str) -> Result<Option<String>, ProviderError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(other) => Err(ProviderError::configuration(format!(
            "[providers.aws] `{key}` must be a non-empty string, got {other}"
        ))),
    }
}

fn config_u64(config: &Map<String, Value>, key: &str, default: u64) -> Result<u64, ProviderError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            ProviderError::configuration(format!(
                "[providers.aws] `{key}` must be a non-negative integer, got {v}"
            ))
        }),
    }
}

fn config_tags(config: &Map<String, Value>) -> Result<Map<String, Value>, ProviderError> {
    match config.get("tags") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => match m.iter().find(|(_, v)| !v.is_string()) {
            None => Ok(m.clone()),
            Some((k, v)) => Err(ProviderError::configuration(format!(
                "[providers.aws] tags: `{k}` must be a string, got {v}; write tags = {{ {k} = \"...\" }}"
            ))),
        },
        Some(other) => Err(ProviderError::configuration(format!(
            "[providers.aws] `tags` must be a table like tags = {{ team = \"payments\" }}, got {other}"
        ))),
    }
}

/// True for names shaped like AWS regions (`us-east-1`, `eu-central-2`, `us-gov-west-1`).
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u32>().is_ok()
}

impl Settings {
    /// Resolves the configuration from the stack's `[providers.aws]` table and the
    /// environment (`env` looks a variable up).
    pub fn resolve(
        config: &Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        const KNOWN: &[&str] =
            &["region", "profile", "endpoint", "max_attempts", "retry_base_ms", "wait_timeout_secs", "tags"];
        if let Some(k) = config.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ProviderError::configuration(format!(
                "[providers.aws] has an unknown setting `{k}`; the settings are: {}",
                KNOWN.join(", ")
            )));
        }
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let home = env("HOME").unwrap_or_default();
        let read = |var: &str, default: &str| -> Ini {
            let path = env(var).unwrap_or_else(|| format!("{home}/.aws/{default}"));
            std::fs::read_to_string(path).map(|t| parse_ini(&t)).unwrap_or_default()
        };
        let shared_credentials = read("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let shared_config = read("AWS_CONFIG_FILE", "config");

        let explicit_profile = config_str(config, "profile")?;
        let profile =
            explicit_profile.clone().or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".into());
        let profile_config = config_section(&shared_config, &profile);
        let source = Chain::resolve(explicit_profile.as_deref(), &env, &shared_credentials, &shared_config)?;

        let region = config_str(config, "region")?
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| profile_config.and_then(|s| s.get("region").cloned()))
            .ok_or_else(|| {
                ProviderError::configuration(
                    "no AWS region is set: add `region = \"us-east-1\"` under [providers.aws] in the stack's \
                     Skyform.<stack>.toml, or set AWS_REGION",
                )
            })?;
        if !valid_region(&region) {
            return Err(ProviderError::configuration(format!(
                "`{region}` is not an AWS region name (they look like `us-east-1` or `eu-west-2`); \
                 fix `region` under [providers.aws] or AWS_REGION"
            )));
        }

        let endpoint = config_str(config, "endpoint")?.or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ProviderError::configuration(format!(
                "endpoint `{e}` must be an http:// or https:// URL, like http://127.0.0.1:5000"
            )));
        }
        let endpoint = endpoint.map(|e| e.trim_end_matches('/').to_string());
        let credentials = std::sync::Arc::new(Chain::new(
            source,
            Context { region: region.clone(), endpoint: endpoint.clone() },
        ));
        Ok(Settings {
            region,
            credentials,
            endpoint,
            max_attempts: config_u64(config, "max_attempts", 8)?.max(1) as u32,
            retry_base_ms: config_u64(config, "retry_base_ms", 200)?,
            wait_timeout_secs: config_u64(config, "wait_timeout_secs", 300)?,
            tags: config_tags(config)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &Settings) -> (String, Option<String>) {
        match &s.credentials.source {
            crate::credentials::Source::Static { credentials, .. } => {
                (credentials.access_key_id.clone(), credentials.session_token.clone())
            }
            other => panic!("{other:?}"),
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parses_the_shared_files_dialect() {
        let ini = parse_ini(
            "# comment\n[default]\naws_access_key_id = AKID\nAWS_SECRET_ACCESS_KEY=sec ret # trailing\n\
             [profile  dev]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 10\n; other\n",
        );
        assert_eq!(ini["default"]["aws_access_key_id"], "AKID");
        assert_eq!(ini["default"]["aws_secret_access_key"], "sec ret");
        assert_eq!(ini["profile dev"]["region"], "eu-west-1");
        assert_eq!(ini["profile dev"].get("max_concurrent_requests"), None);
    }

    #[test]
    fn config_beats_environment_beats_files() {
        let dir = std::env::temp_dir().join(format!("skyform-aws-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let conf = dir.join("config");
        std::fs::write(&creds, "[default]\naws_access_key_id=FILE\naws_secret_access_key=s\n[ci]\naws_access_key_id=CI\naws_secret_access_key=s\naws_session_token=t\n").unwrap();
        std::fs::write(&conf, "[default]\nregion=eu-west-1\n[profile ci]\nregion=ap-south-1\n").unwrap();
        let files = [
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", conf.to_str().unwrap()),
        ];

        let s = Settings::resolve(&Map::new(), &env_of(&files)).unwrap();
        assert_eq!((s.region.as_str(), key(&s).0.as_str()), ("eu-west-1", "FILE"));

        let mut with_env = files.to_vec();
        with_env.extend([
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_REGION", "us-west-2"),
        ]);
        let s = Settings::resolve(&Map::new(), &env_of(&with_env)).unwrap();
        assert_eq!((s.region.as_str(), key(&s).0.as_str()), ("us-west-2", "ENV"));

        // A profile named by the stack wins over the environment's keys.
        let config = json!({"profile": "ci", "endpoint": "http://127.0.0.1:1/"});
        let s = Settings::resolve(config.as_object().unwrap(), &env_of(&with_env)).unwrap();
        assert_eq!(key(&s), ("CI".to_string(), Some("t".to_string())));
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_credentials_say_how_to_set_them() {
        let e = Settings::resolve(
            &Map::new(),
            &env_of(&[
                ("AWS_REGION", "us-east-1"),
                ("HOME", "/nonexistent"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.code, skyform_protocol::ErrorCode::Configuration);
        assert!(e.message.contains("AWS_ACCESS_KEY_ID"), "{}", e.message);
        assert!(e.message.contains("~/.aws/credentials"), "{}", e.message);
    }

    #[test]
    fn rejects_bad_regions_and_unknown_settings() {
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]);
        let e = Settings::resolve(json!({"region": "moon"}).as_object().unwrap(), &env).unwrap_err();
        assert!(e.message.contains("not an AWS region"), "{}", e.message);
        let e = Settings::resolve(json!({"regoin": "us-east-1"}).as_object().unwrap(), &env).unwrap_err();
        assert!(e.message.contains("unknown setting `regoin`"), "{}", e.message);
        assert!(valid_region("us-gov-west-1") && valid_region("eu-central-2") && !valid_region("us-east"));
    }
}
