//! Where the credentials come from: the AWS SDKs' default chain, built on this crate's own
//! signed client.
//!
//! Why not the `aws-config` crate: its HTTPS client uses aws-lc-rs (which needs cmake, absent
//! here) and it brings the STS, SSO and SSO-OIDC SDKs with their runtime; the chain itself is
//! a few HTTP calls this crate already knows how to sign.
//!
//! The order is the SDKs' (first match wins):
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. a web identity token file (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, how CI
//!    systems authenticate with OIDC): STS `AssumeRoleWithWebIdentity`, unsigned;
//! 3. the profile (`AWS_PROFILE`, else `default`) of the shared files: static keys,
//!    `role_arn` with `source_profile` or `credential_source` (STS `AssumeRole`, signed with the
//!    source's credentials), `web_identity_token_file`, `credential_process`, and SSO
//!    (`sso_session` or the legacy `sso_start_url`: the token cached by `aws sso login`, traded
//!    for role credentials with the SSO portal's `GetRoleCredentials`);
//! 4. container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_TOKEN_FILE`);
//! 5. instance metadata, IMDSv2 (a session token first), unless
//!    `AWS_EC2_METADATA_DISABLED=true`; `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it.
//!
//! A profile named by the stack (`profile` under `[providers.aws]`) skips 1, 2, 4 and 5, as
//! the SDKs do with an explicit profile, and a profile that is named but not in the files is an
//! error: falling back to other keys would deploy into whatever account those belong to.
//!
//! [`Chain::get`] caches temporary credentials and fetches new ones five minutes before they
//! expire, so a long `up` never signs with expired keys. The source is decided once, without
//! network ([`Chain::resolve`]); only `get` talks to STS, SSO or a metadata endpoint.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use skyform_protocol::ProviderError;

use crate::config::Ini;
use crate::http::{self, Aws};
use crate::sigv4::Credentials;
use crate::xml;

/// How long before expiry cached credentials are replaced.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Where one set of credentials comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Keys that never expire: the environment's or a profile's. `from` says which.
    Static { credentials: Credentials, from: String },
    /// STS `AssumeRoleWithWebIdentity` with the token in `token_file` (read at each refresh).
    WebIdentity { token_file: String, role_arn: String, session_name: String },
    /// STS `AssumeRole`, signed with the credentials of `source`.
    AssumeRole {
        role_arn: String,
        session_name: String,
        external_id: Option<String>,
        duration_secs: Option<u64>,
        source: Box<Source>,
    },
    /// A command that prints the credentials as JSON (`Version: 1`).
    Process { command: String, profile: String },
    /// The SSO portal's `GetRoleCredentials` with the token `aws sso login` cached.
    Sso { cache_file: String, portal: String, account_id: String, role_name: String, profile: String },
    /// An ECS/EKS-style container credentials endpoint.
    Container { url: String, token: Option<String>, token_file: Option<String> },
    /// The instance metadata service (IMDSv2).
    Imds { endpoint: String },
}

impl Source {
    /// A short description for messages ("profile `ci` (AssumeRole arn:…)").
    pub fn describe(&self) -> String {
        match self {
            Source::Static { from, .. } => from.clone(),
            Source::WebIdentity { role_arn, .. } => format!("web identity token for {role_arn}"),
            Source::AssumeRole { role_arn, source, .. } => {
                format!("role {role_arn} assumed with {}", source.describe())
            }
            Source::Process { profile, .. } => format!("credential_process of profile `{profile}`"),
            Source::Sso { profile, .. } => format!("SSO of profile `{profile}`"),
            Source::Container { url, .. } => format!("container credentials at {url}"),
            Source::Imds { endpoint } => format!("instance metadata at {endpoint}"),
        }
    }
}

/// What the sources need to know besides themselves: where STS is and how to retry.
#[derive(Debug, Clone)]
pub struct Context {
    pub region: String,
    /// The one endpoint for every service (moto), or `None` for AWS.
    pub endpoint: Option<String>,
}

/// A source plus its cache. Shared by every request of a client (and by clients that clone
/// the `Arc`).
pub struct Chain {
    pub source: Source,
    context: Context,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<(Credentials, Option<SystemTime>)>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("source", &self.source.describe()).finish_non_exhaustive()
    }
}

fn config_error(message: String) -> http::Error {
    http::Error::Provider(ProviderError::configuration(message))
}

impl Chain {
    pub fn new(source: Source, context: Context) -> Chain {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("a plain reqwest client builds");
        Chain { source, context, http, cache: tokio::sync::Mutex::new(None) }
    }

    /// Fixed keys (tests, and the source of an `AssumeRole`).
    pub fn fixed(credentials: Credentials) -> Chain {
        Chain::new(
            Source::Static { credentials, from: "fixed keys".into() },
            Context { region: "us-east-1".into(), endpoint: None },
        )
    }

    /// Decides the source from the environment and the shared files, without network.
    /// `profile` is the one the stack names, if any.
    pub fn resolve(
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        shared_credentials: &Ini,
        shared_config: &Ini,
    ) -> Result<Source, ProviderError> {
        let files = Files { credentials: shared_credentials, config: shared_config, env };
        if let Some(name) = profile {
            return files.profile(name, &mut Vec::new());
        }
        if let Some(s) = env_keys(env) {
            return Ok(s);
        }
        if let (Some(token_file), Some(role_arn)) = (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
        {
            let session_name = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(default_session_name);
            return Ok(Source::WebIdentity { token_file, role_arn, session_name });
        }
        match env("AWS_PROFILE") {
            // A profile named by the environment must exist too.
            Some(name) => return files.profile(&name, &mut Vec::new()),
            None if files.exists("default") => return files.profile("default", &mut Vec::new()),
            None => {}
        }
        if let Some(s) = container(env) {
            return Ok(s);
        }
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(ProviderError::configuration(
                "no AWS credentials found (environment, web identity, profile `default`, container; \
                 instance metadata is disabled by AWS_EC2_METADATA_DISABLED): set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or add aws_access_key_id and aws_secret_access_key to the \
                 `[default]` section of ~/.aws/credentials (`aws configure` writes it), or name a \
                 profile with `profile` under [providers.aws]",
            ));
        }
        Ok(imds(env))
    }

    /// The credentials to sign with now: cached ones unless they expire within
    /// [`REFRESH_BEFORE`].
    pub async fn get(&self) -> http::Result<Credentials> {
        let mut cache = self.cache.lock().await;
        if let Some((creds, expires)) = cache.as_ref() {
            let fresh = match expires {
                None => true,
                Some(t) => *t > SystemTime::now() + REFRESH_BEFORE,
            };
            if fresh {
                return Ok(creds.clone());
            }
        }
        let (creds, expires) = Box::pin(self.fetch(&self.source)).await?;
        *cache = Some((creds.clone(), expires));
        Ok(creds)
    }

    async fn fetch(&self, source: &Source) -> http::Result<(Credentials, Option<SystemTime>)> {
        match source {
            Source::Static { credentials, .. } => Ok((credentials.clone(), None)),
            Source::WebIdentity { token_file, role_arn, session_name } => {
                let token = std::fs::read_to_string(token_file).map_err(|e| {
                    config_error(format!(
                        "cannot read the web identity token file {token_file} (AWS_WEB_IDENTITY_TOKEN_FILE): {e}"
                    ))
                })?;
                let form = crate::sigv4::canonical_query(&[
                    ("Action".into(), "AssumeRoleWithWebIdentity".into()),
                    ("Version".into(), "2011-06-15".into()),
                    ("RoleArn".into(), role_arn.clone()),
                    ("RoleSessionName".into(), session_name.clone()),
                    ("WebIdentityToken".into(), token.trim().to_string()),
                ]);
                let url = self.sts_url();
                let resp = self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                    .body(form)
                    .send()
                    .await
                    .map_err(|e| http::Error::Transport(format!("cannot reach STS at {url}: {e}")))?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.bytes().await.unwrap_or_default();
                if status >= 300 {
                    let e = http::parse_error(status, &headers, &body);
                    return Err(config_error(format!("AssumeRoleWithWebIdentity for {role_arn}: {e}")));
                }
                sts_credentials(&String::from_utf8_lossy(&body), "AssumeRoleWithWebIdentity")
            }
            Source::AssumeRole { role_arn, session_name, external_id, duration_secs, source } => {
                let (base, _) = Box::pin(self.fetch(source)).await?;
                let aws = Aws::new(crate::config::Settings {
                    region: self.context.region.clone(),
                    credentials: std::sync::Arc::new(Chain::fixed(base)),
                    endpoint: self.context.endpoint.clone(),
                    max_attempts: 3,
                    retry_base_ms: 200,
                    wait_timeout_secs: 60,
                    tags: Default::default(),
                })
                .map_err(|e| config_error(e.to_string()))?;
                let mut params =
                    vec![("RoleArn", role_arn.clone()), ("RoleSessionName", session_name.clone())];
                if let Some(id) = external_id {
                    params.push(("ExternalId", id.clone()));
                }
                if let Some(d) = duration_secs {
                    params.push(("DurationSeconds", d.to_string()));
                }
                let xml = aws.query("sts", "2011-06-15", "AssumeRole", &params).await.map_err(|e| {
                    config_error(format!("AssumeRole {role_arn} with {}: {e}", source.describe()))
                })?;
                sts_credentials(&xml, "AssumeRole")
            }
            Source::Process { command, profile } => {
                let out = tokio::process::Command::new("sh")
                    .args(["-c", command])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .await
                    .map_err(|e| {
                        config_error(format!("cannot run credential_process of profile `{profile}`: {e}"))
                    })?;
                if !out.status.success() {
                    return Err(config_error(format!(
                        "credential_process of profile `{profile}` failed ({})",
                        out.status
                    )));
                }
                let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
                    config_error(format!("credential_process of profile `{profile}` printed no JSON: {e}"))
                })?;
                if v["Version"] != 1 {
                    return Err(config_error(format!(
                        "credential_process of profile `{profile}` must print \"Version\": 1"
                    )));
                }
                json_credentials(&v, ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"])
                    .map_err(|m| config_error(format!("credential_process of profile `{profile}`: {m}")))
            }
            Source::Sso { cache_file, portal, account_id, role_name, profile } => {
                let login = format!("run `aws sso login --profile {profile}`");
                let cached: Value = std::fs::read(cache_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or_else(|| {
                        config_error(format!(
                            "profile `{profile}` uses SSO but no token is cached ({cache_file}): {login}"
                        ))
                    })?;
                let token = cached["accessToken"].as_str().unwrap_or_default();
                let expired =
                    cached["expiresAt"].as_str().and_then(parse_time).is_none_or(|t| t <= SystemTime::now());
                if token.is_empty() || expired {
                    return Err(config_error(format!(
                        "the SSO token of profile `{profile}` has expired: {login}"
                    )));
                }
                let url = format!(
                    "{portal}/federation/credentials?account_id={}&role_name={}",
                    crate::sigv4::uri_encode(account_id),
                    crate::sigv4::uri_encode(role_name)
                );
                let resp = self.http.get(&url).header("x-amz-sso_bearer_token", token).send().await.map_err(
                    |e| http::Error::Transport(format!("cannot reach the SSO portal {portal}: {e}")),
                )?;
                let status = resp.status().as_u16();
                let body: Value =
                    serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
                if status >= 300 {
                    return Err(config_error(format!(
                        "SSO GetRoleCredentials for profile `{profile}` answered {status} {body}: {login}"
                    )));
                }
                let r = &body["roleCredentials"];
                let mut v = serde_json::json!({
                    "AccessKeyId": r["accessKeyId"], "SecretAccessKey": r["secretAccessKey"],
                    "SessionToken": r["sessionToken"],
                });
                if let Some(ms) = r["expiration"].as_u64() {
                    v["Expiration"] = Value::String(format_time(UNIX_EPOCH + Duration::from_millis(ms)));
                }
                json_credentials(&v, ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"])
                    .map_err(|m| config_error(format!("SSO of profile `{profile}`: {m}")))
            }
            Source::Container { url, token, token_file } => {
                let mut req = self.http.get(url);
                let token = match (token_file, token) {
                    (Some(f), _) => Some(std::fs::read_to_string(f).map_err(|e| {
                        config_error(format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {f}: {e}"))
                    })?),
                    (None, t) => t.clone(),
                };
                if let Some(t) = token {
                    req = req.header("authorization", t.trim());
                }
                let resp = req.send().await.map_err(|e| {
                    http::Error::Transport(format!(
                        "cannot reach the container credentials endpoint {url}: {e}"
                    ))
                })?;
                let status = resp.status().as_u16();
                let v: Value =
                    serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
                if status >= 300 {
                    return Err(config_error(format!(
                        "the container credentials endpoint {url} answered {status}"
                    )));
                }
                json_credentials(&v, ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"])
                    .map_err(|m| config_error(format!("container credentials from {url}: {m}")))
            }
            Source::Imds { endpoint } => self.imds(endpoint).await,
        }
    }

    async fn imds(&self, endpoint: &str) -> http::Result<(Credentials, Option<SystemTime>)> {
        let unreachable = |e: String| {
            config_error(format!(
                "no AWS credentials found: none in the environment, no web identity token, no profile \
                 `default` in ~/.aws/credentials or ~/.aws/config, no container credentials, and the \
                 instance metadata service at {endpoint} {e}. Set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or add aws_access_key_id and aws_secret_access_key to the \
                 `[default]` section of ~/.aws/credentials (`aws configure` writes it), or name a \
                 profile with `profile` under [providers.aws]"
            ))
        };
        let token = self
            .http
            .put(format!("{endpoint}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| unreachable(format!("did not answer ({e})")))?;
        if !token.status().is_success() {
            return Err(unreachable(format!("refused a session token ({})", token.status())));
        }
        let token = token.text().await.unwrap_or_default();
        let get = |path: String| {
            let req =
                self.http.get(format!("{endpoint}{path}")).header("x-aws-ec2-metadata-token", token.clone());
            async move {
                let resp = req.send().await.map_err(|e| unreachable(format!("did not answer ({e})")))?;
                if !resp.status().is_success() {
                    return Err(unreachable(format!("answered {} for {path}", resp.status())));
                }
                Ok(resp.text().await.unwrap_or_default())
            }
        };
        let base = "/latest/meta-data/iam/security-credentials/";
        let role = get(base.to_string()).await?;
        let role = role.lines().next().unwrap_or("").trim().to_string();
        if role.is_empty() {
            return Err(unreachable("has no instance role attached".into()));
        }
        let v: Value = serde_json::from_str(&get(format!("{base}{role}")).await?).unwrap_or(Value::Null);
        json_credentials(&v, ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"])
            .map_err(|m| config_error(format!("instance metadata credentials of role {role}: {m}")))
    }

    fn sts_url(&self) -> String {
        match &self.context.endpoint {
            Some(e) => format!("{e}/"),
            None => format!("https://sts.{}.amazonaws.com/", self.context.region),
        }
    }
}

/// The default chain for any AWS client (the S3 state backend too): reads the shared files
/// (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, else under `HOME`), decides the source as
/// [`Chain::resolve`] does, and returns the caching chain. `region` and `endpoint` are where
/// STS (and an emulator's SSO portal) is reached.
pub fn default_chain(
    profile: Option<&str>,
    region: &str,
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<Chain>, ProviderError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = env("HOME").unwrap_or_default();
    let read = |var: &str, default: &str| -> Ini {
        let path = env(var).unwrap_or_else(|| format!("{home}/.aws/{default}"));
        std::fs::read_to_string(path).map(|t| crate::config::parse_ini(&t)).unwrap_or_default()
    };
    let source = Chain::resolve(
        profile,
        &env,
        &read("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        &read("AWS_CONFIG_FILE", "config"),
    )?;
    let context = Context {
        region: region.to_string(),
        endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
    };
    Ok(std::sync::Arc::new(Chain::new(source, context)))
}

fn default_session_name() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("skyform-{now}")
}

fn env_keys(env: &dyn Fn(&str) -> Option<String>) -> Option<Source> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(Source::Static {
            credentials: Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            },
            from: "the environment (AWS_ACCESS_KEY_ID)".into(),
        }),
        _ => None,
    }
}

fn container(env: &dyn Fn(&str) -> Option<String>) -> Option<Source> {
    let url = match (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
    {
        (Some(rel), _) => format!("http://169.254.170.2{rel}"),
        (None, Some(full)) => full,
        _ => return None,
    };
    Some(Source::Container {
        url,
        token: env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        token_file: env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
    })
}

fn imds(env: &dyn Fn(&str) -> Option<String>) -> Source {
    let endpoint =
        env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into());
    Source::Imds { endpoint: endpoint.trim_end_matches('/').to_string() }
}

struct Files<'a> {
    credentials: &'a Ini,
    config: &'a Ini,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Files<'_> {
    fn config_section(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config
            .get(&format!("profile {name}"))
            .or_else(|| if name == "default" { self.config.get("default") } else { None })
    }

    fn exists(&self, name: &str) -> bool {
        self.credentials.contains_key(name) || self.config_section(name).is_some()
    }

    /// A profile's settings: the credentials file's section over the config file's.
    fn settings(&self, name: &str) -> BTreeMap<String, String> {
        let mut s = self.config_section(name).cloned().unwrap_or_default();
        s.extend(self.credentials.get(name).cloned().unwrap_or_default());
        s
    }

    fn static_keys(&self, name: &str, s: &BTreeMap<String, String>) -> Option<Source> {
        Some(Source::Static {
            credentials: Credentials {
                access_key_id: s.get("aws_access_key_id")?.clone(),
                secret_access_key: s.get("aws_secret_access_key")?.clone(),
                session_token: s.get("aws_session_token").cloned(),
            },
            from: format!("profile `{name}`"),
        })
    }

    fn profile(&self, name: &str, visited: &mut Vec<String>) -> Result<Source, ProviderError> {
        if !self.exists(name) {
            let mut known: Vec<String> = self.credentials.keys().cloned().collect();
            known.extend(self.config.keys().filter_map(|k| {
                k.strip_prefix("profile ").map(str::to_string).or_else(|| (k == "default").then(|| k.clone()))
            }));
            known.sort();
            known.dedup();
            return Err(ProviderError::configuration(format!(
                "the AWS profile `{name}` is not in ~/.aws/credentials or ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, \
                 AWS_CONFIG_FILE); the profiles there are: {}. Fix `profile` under [providers.aws] or AWS_PROFILE, \
                 or create it with `aws configure --profile {name}`",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        }
        if visited.iter().any(|v| v == name) {
            return Err(ProviderError::configuration(format!(
                "the AWS profiles {} name each other as source_profile in a loop",
                visited.join(" -> ")
            )));
        }
        visited.push(name.to_string());
        let s = self.settings(name);
        if let Some(role_arn) = s.get("role_arn") {
            let source = if let Some(src) = s.get("source_profile") {
                if src == name {
                    self.static_keys(name, &s).ok_or_else(|| {
                        ProviderError::configuration(format!(
                            "profile `{name}` is its own source_profile but has no aws_access_key_id"
                        ))
                    })?
                } else {
                    self.profile(src, visited)?
                }
            } else if let Some(cs) = s.get("credential_source") {
                match cs.as_str() {
                    "Environment" => env_keys(self.env).ok_or_else(|| {
                        ProviderError::configuration(format!(
                            "profile `{name}` has credential_source = Environment but AWS_ACCESS_KEY_ID is not set"
                        ))
                    })?,
                    "EcsContainer" => container(self.env).ok_or_else(|| {
                        ProviderError::configuration(format!(
                            "profile `{name}` has credential_source = EcsContainer but \
                             AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI is not set"
                        ))
                    })?,
                    "Ec2InstanceMetadata" => imds(self.env),
                    other => {
                        return Err(ProviderError::configuration(format!(
                            "profile `{name}`: credential_source `{other}` is not one of Environment, \
                             EcsContainer, Ec2InstanceMetadata"
                        )));
                    }
                }
            } else if let Some(token_file) = s.get("web_identity_token_file") {
                return Ok(Source::WebIdentity {
                    token_file: token_file.clone(),
                    role_arn: role_arn.clone(),
                    session_name: s.get("role_session_name").cloned().unwrap_or_else(default_session_name),
                });
            } else {
                return Err(ProviderError::configuration(format!(
                    "profile `{name}` has a role_arn but no source_profile, credential_source or \
                     web_identity_token_file to assume it with"
                )));
            };
            return Ok(Source::AssumeRole {
                role_arn: role_arn.clone(),
                session_name: s.get("role_session_name").cloned().unwrap_or_else(default_session_name),
                external_id: s.get("external_id").cloned(),
                duration_secs: s.get("duration_seconds").and_then(|d| d.parse().ok()),
                source: Box::new(source),
            });
        }
        if let Some(command) = s.get("credential_process") {
            return Ok(Source::Process { command: command.clone(), profile: name.to_string() });
        }
        if s.contains_key("sso_session") || s.contains_key("sso_start_url") {
            return self.sso(name, &s);
        }
        self.static_keys(name, &s).ok_or_else(|| {
            ProviderError::configuration(format!(
                "profile `{name}` has no credentials: give it aws_access_key_id and aws_secret_access_key, \
                 role_arn with source_profile, credential_process, or sso_session"
            ))
        })
    }

    fn sso(&self, name: &str, s: &BTreeMap<String, String>) -> Result<Source, ProviderError> {
        use sha1::Digest;
        let missing = |k: &str| {
            ProviderError::configuration(format!(
                "profile `{name}` uses SSO but has no `{k}`; `aws configure sso --profile {name}` writes it"
            ))
        };
        let (cache_key, region) = match s.get("sso_session") {
            Some(session) => {
                let sec = self.config.get(&format!("sso-session {session}")).ok_or_else(|| {
                    ProviderError::configuration(format!(
                        "profile `{name}` names sso_session `{session}` but ~/.aws/config has no \
                         [sso-session {session}] section"
                    ))
                })?;
                let region = sec.get("sso_region").cloned().ok_or_else(|| missing("sso_region"))?;
                (session.clone(), region)
            }
            None => {
                let url = s.get("sso_start_url").cloned().ok_or_else(|| missing("sso_start_url"))?;
                (url, s.get("sso_region").cloned().ok_or_else(|| missing("sso_region"))?)
            }
        };
        let home = (self.env)("HOME").unwrap_or_default();
        let hash = crate::sigv4::hex(&sha1::Sha1::digest(cache_key.as_bytes()));
        let portal = (self.env)("AWS_ENDPOINT_URL_SSO")
            .unwrap_or_else(|| format!("https://portal.sso.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_string();
        Ok(Source::Sso {
            cache_file: format!("{home}/.aws/sso/cache/{hash}.json"),
            portal,
            account_id: s.get("sso_account_id").cloned().ok_or_else(|| missing("sso_account_id"))?,
            role_name: s.get("sso_role_name").cloned().ok_or_else(|| missing("sso_role_name"))?,
            profile: name.to_string(),
        })
    }
}

/// The credentials in an STS answer (`AssumeRole…Result/Credentials`).
fn sts_credentials(xml: &str, action: &str) -> http::Result<(Credentials, Option<SystemTime>)> {
    let field = |k: &str| xml::tag(xml, k);
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok((
            Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: field("SessionToken"),
            },
            field("Expiration").as_deref().and_then(parse_time),
        )),
        _ => Err(config_error(format!("{action} answered no credentials"))),
    }
}

/// Credentials from a JSON object with the four named fields (id, secret, token, expiration).
fn json_credentials(v: &Value, keys: [&str; 4]) -> Result<(Credentials, Option<SystemTime>), String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let id = s(keys[0]).ok_or_else(|| format!("no {} in the answer", keys[0]))?;
    let secret = s(keys[1]).ok_or_else(|| format!("no {} in the answer", keys[1]))?;
    let expires = match s(keys[3]) {
        None => None,
        Some(t) => Some(parse_time(&t).ok_or_else(|| format!("{} `{t}` is not an ISO 8601 time", keys[3]))?),
    };
    Ok((Credentials { access_key_id: id, secret_access_key: secret, session_token: s(keys[2]) }, expires))
}

/// Parses `2026-11-30T16:00:00Z` (fractions and `+00:00`/`UTC` suffixes accepted).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (date, time) = s.split_once('T').or_else(|| s.split_once(' '))?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z').trim_end_matches("UTC").trim_end_matches("+00:00");
    let mut t = time.split(':');
    let (h, mi) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec = t.next().unwrap_or("0").split('.').next()?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + sec;
    (secs >= 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Formats a time as `2026-11-30T16:00:00Z`.
pub fn format_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_ini;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_default_chain_reads_the_shared_files() {
        let dir = std::env::temp_dir().join(format!("skyform-aws-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        std::fs::write(&creds, "[team]\naws_access_key_id=T\naws_secret_access_key=S\n").unwrap();
        let pairs =
            [("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()), ("AWS_CONFIG_FILE", "/nonexistent")];
        let env = env_of(&pairs);
        let chain = default_chain(Some("team"), "eu-west-1", Some("http://127.0.0.1:1/"), &env).unwrap();
        assert!(
            matches!(&chain.source, Source::Static { credentials, .. } if credentials.access_key_id == "T")
        );
        assert!(default_chain(Some("nope"), "eu-west-1", None, &env).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-30T16:05:09Z").unwrap();
        assert_eq!(format_time(t), "2026-11-30T16:05:09Z");
        assert_eq!(
            parse_time("2000-02-29T00:00:00.123+00:00").map(format_time).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn the_chain_follows_the_sdk_order() {
        let none = Ini::new();
        // Environment keys first.
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        assert!(matches!(Chain::resolve(None, &env, &none, &none).unwrap(), Source::Static { .. }));
        // Then web identity.
        let env = env_of(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")]);
        assert!(matches!(Chain::resolve(None, &env, &none, &none).unwrap(), Source::WebIdentity { .. }));
        // Then the default profile, then the container, then IMDS.
        let creds = parse_ini("[default]\naws_access_key_id=F\naws_secret_access_key=S\n");
        let env = env_of(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")]);
        assert!(matches!(Chain::resolve(None, &env, &creds, &none).unwrap(), Source::Static { .. }));
        match Chain::resolve(None, &env, &none, &none).unwrap() {
            Source::Container { url, .. } => assert_eq!(url, "http://169.254.170.2/v2/x"),
            other => panic!("{other:?}"),
        }
        let env = env_of(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/")]);
        match Chain::resolve(None, &env, &none, &none).unwrap() {
            Source::Imds { endpoint } => assert_eq!(endpoint, "http://127.0.0.1:9"),
            other => panic!("{other:?}"),
        }
        let env = env_of(&[("AWS_EC2_METADATA_DISABLED", "true")]);
        let e = Chain::resolve(None, &env, &none, &none).unwrap_err();
        assert!(e.message.contains("AWS_ACCESS_KEY_ID"), "{}", e.message);
    }

    #[test]
    fn profiles_assume_roles_run_processes_and_use_sso() {
        let creds = parse_ini("[base]\naws_access_key_id=B\naws_secret_access_key=S\n");
        let config = parse_ini(
            "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = base\nexternal_id = x\n\
             [profile proc]\ncredential_process = echo hi\n\
             [profile sso]\nsso_session = corp\nsso_account_id = 111\nsso_role_name = Admin\n\
             [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp.awsapps.com/start\n\
             [profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n\
             [profile loop2]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop1\n\
             [profile env]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n",
        );
        let env = env_of(&[("HOME", "/h"), ("AWS_ACCESS_KEY_ID", "E"), ("AWS_SECRET_ACCESS_KEY", "S")]);
        match Chain::resolve(Some("deploy"), &env, &creds, &config).unwrap() {
            Source::AssumeRole { role_arn, external_id, source, .. } => {
                assert_eq!(role_arn, "arn:aws:iam::123456789012:role/deploy");
                assert_eq!(external_id.as_deref(), Some("x"));
                assert!(
                    matches!(*source, Source::Static { ref credentials, .. } if credentials.access_key_id == "B")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Chain::resolve(Some("proc"), &env, &creds, &config).unwrap(),
            Source::Process { .. }
        ));
        match Chain::resolve(Some("sso"), &env, &creds, &config).unwrap() {
            Source::Sso { cache_file, portal, account_id, role_name, .. } => {
                // The cache file is named by the SHA-1 of the session name, as the CLI writes it.
                assert_eq!(cache_file, "/h/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
                assert_eq!(portal, "https://portal.sso.eu-west-1.amazonaws.com");
                assert_eq!((account_id.as_str(), role_name.as_str()), ("111", "Admin"));
            }
            other => panic!("{other:?}"),
        }
        let e = Chain::resolve(Some("loop1"), &env, &creds, &config).unwrap_err();
        assert!(e.message.contains("loop"), "{}", e.message);
        match Chain::resolve(Some("env"), &env, &creds, &config).unwrap() {
            Source::AssumeRole { source, .. } => assert!(matches!(*source, Source::Static { .. })),
            other => panic!("{other:?}"),
        }
        // A named profile that is not there is an error, even with keys in the environment.
        let e = Chain::resolve(Some("prdo"), &env, &creds, &config).unwrap_err();
        assert!(e.message.contains("`prdo` is not in"), "{}", e.message);
        assert!(e.message.contains("base, deploy, env"), "{}", e.message);
        let env2 = env_of(&[("AWS_PROFILE", "nope")]);
        assert!(Chain::resolve(None, &env2, &creds, &config).is_err());
    }
}
