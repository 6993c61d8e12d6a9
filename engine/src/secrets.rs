//! Secrets on disk: how a secret value is encrypted, and where its key comes from.
//!
//! In memory a secret is a *mark* on its value, `{"$secret": plaintext}` (see
//! [`crate::value`]). Whatever the engine records — the state file, the journal, a saved plan,
//! the stack's config — holds it *sealed*: `{"$encrypted": "v1:BASE64"}`, the JSON of the
//! plaintext encrypted with the stack's data key.
//!
//! - **Cipher.** AES-256-SIV (RFC 5297, the `aes-siv` crate): an authenticated cipher that is
//!   deterministic, so an unchanged secret keeps its ciphertext, a state file that did not
//!   change does not churn in git, and two sealed values are equal exactly when their
//!   plaintexts are. The price is that equal secrets of one stack are seen to be equal.
//! - **Data key.** 64 random bytes per stack, created when the stack first needs one (its first
//!   secret). It is stored *wrapped* in `Skyform.<stack>.toml` (`[secrets] key`), by a
//!   [`KeyWrap`]: [`Passphrase`] (argon2id of a passphrase, here) or a cloud KMS key (the
//!   `awskms` wrapper lives with the aws client, in `skyform-aws`, and the CLI injects it).
//!   Another stack's state does not open with this stack's key: each stack has its own.
//! - **Recorded values.** [`Sealed`] is the type of every value the state records. It can only
//!   be built by [`Sealed::seal`] (or read from disk), so no code path can put a plaintext mark
//!   into a state file or a journal; reading one back needs the [`Vault`] ([`Sealed::open`]).
//!
//! **Architecture Invariant:** the library never reads a passphrase from the environment; the
//! CLI resolves the key source and passes it in ([`KeySource`]). A stack without secrets never
//! needs a key, so it never asks for a passphrase.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::value::{self, ENCRYPTED, SECRET};

/// The length of a data key: AES-256-SIV takes two 256-bit keys.
pub const DATA_KEY_LEN: usize = 64;
/// The prefix of every ciphertext this version writes.
const CIPHERTEXT_PREFIX: &str = "v1:";
/// The prefix of a secret recorded by state format 1, where only a fingerprint was kept.
pub const LEGACY_PREFIX: &str = "fingerprint:";
/// Associated data: a ciphertext of one kind cannot be passed off as another.
const VALUE_CONTEXT: &[u8] = b"skyform secret value v1";
const KEY_CONTEXT: &[u8] = b"skyform data key v1";

/// The name of the default secrets provider.
pub const DEFAULT_PROVIDER: &str = "passphrase";

/// Encrypts and decrypts values with one stack's data key.
pub struct Crypter {
    key: Vec<u8>,
}

impl Crypter {
    pub fn new(key: &[u8]) -> Result<Crypter> {
        if key.len() != DATA_KEY_LEN {
            return Err(Error::new(
                ErrorKind::User,
                format!("the stack's data key has {} bytes instead of {DATA_KEY_LEN}", key.len()),
            )
            .with_hint("the `[secrets] key` of the stack file is damaged; restore it from git"));
        }
        Ok(Crypter { key: key.to_vec() })
    }

    /// A new random data key.
    pub fn generate() -> Result<(Crypter, Vec<u8>)> {
        let key = random(DATA_KEY_LEN)?;
        Ok((Crypter::new(&key)?, key))
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(&self.key).expect("the key length was checked")
    }

    /// `v1:BASE64` of the value's JSON.
    pub fn encrypt(&self, v: &Value) -> String {
        let plain = serde_json::to_vec(v).expect("a JSON value serializes");
        let sealed = self.cipher().encrypt([VALUE_CONTEXT], &plain).expect("AES-SIV encrypts any length");
        format!("{CIPHERTEXT_PREFIX}{}", B64.encode(sealed))
    }

    pub fn decrypt(&self, text: &str) -> Result<Value> {
        let bad = |why: &str| {
            Error::new(ErrorKind::State, format!("a secret cannot be decrypted with this stack's key: {why}"))
                .with_hint(
                    "the ciphertext was changed, or it was written by another stack (each stack has its own \
                     key); restore the file from git. Nothing was changed",
                )
        };
        let body = text.strip_prefix(CIPHERTEXT_PREFIX).ok_or_else(|| bad("unknown ciphertext version"))?;
        let bytes = B64.decode(body).map_err(|_| bad("it is not base64"))?;
        let plain =
            self.cipher().decrypt([VALUE_CONTEXT], &bytes).map_err(|_| bad("authentication failed"))?;
        serde_json::from_slice(&plain).map_err(|_| bad("the plaintext is not JSON"))
    }
}

/// Wraps and unwraps a stack's data key: the "secrets provider".
pub trait KeyWrap: Send + Sync {
    /// How `Skyform.<stack>.toml` names this provider (`passphrase`, `awskms://alias/x`).
    fn provider(&self) -> String;
    fn wrap(&self, key: &[u8]) -> Result<Vec<u8>>;
    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>>;
}

/// Finds the [`KeyWrap`] for a provider name; called only when a key is needed. The CLI builds
/// it (it reads `SKYFORM_PASSPHRASE`, or makes a KMS client); an error says what to set.
pub type KeySource = Arc<dyn Fn(&str) -> Result<Arc<dyn KeyWrap>> + Send + Sync>;

/// The `passphrase` secrets provider: the data key is wrapped with a key derived from a
/// passphrase by argon2id (memory-hard: 19 MiB, 2 passes), with a random salt per wrapping.
pub struct Passphrase {
    passphrase: String,
    /// Where the passphrase came from, for messages (`SKYFORM_PASSPHRASE`).
    origin: String,
}

const PASSPHRASE_BLOB_VERSION: u8 = 1;
const SALT_LEN: usize = 16;

impl Passphrase {
    pub fn new(passphrase: impl Into<String>, origin: impl Into<String>) -> Passphrase {
        Passphrase { passphrase: passphrase.into(), origin: origin.into() }
    }

    fn kek(&self, salt: &[u8]) -> Result<Aes256Siv> {
        let params = argon2::Params::new(
            argon2::Params::DEFAULT_M_COST,
            argon2::Params::DEFAULT_T_COST,
            1,
            Some(DATA_KEY_LEN),
        )
        .map_err(|e| Error::new(ErrorKind::User, format!("argon2 parameters: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = vec![0u8; DATA_KEY_LEN];
        argon
            .hash_password_into(self.passphrase.as_bytes(), salt, &mut out)
            .map_err(|e| Error::new(ErrorKind::User, format!("deriving the key from the passphrase: {e}")))?;
        Ok(Aes256Siv::new_from_slice(&out).expect("64 bytes"))
    }
}

impl KeyWrap for Passphrase {
    fn provider(&self) -> String {
        DEFAULT_PROVIDER.to_string()
    }

    fn wrap(&self, key: &[u8]) -> Result<Vec<u8>> {
        let salt = random(SALT_LEN)?;
        let sealed = self
            .kek(&salt)?
            .encrypt([KEY_CONTEXT], key)
            .map_err(|_| Error::new(ErrorKind::User, "cannot wrap the data key"))?;
        let mut out = vec![PASSPHRASE_BLOB_VERSION];
        out.extend_from_slice(&salt);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        if wrapped.len() < 1 + SALT_LEN || wrapped[0] != PASSPHRASE_BLOB_VERSION {
            return Err(Error::new(ErrorKind::User, "the stack's wrapped data key is damaged")
                .with_hint("restore `[secrets] key` in the stack file from git"));
        }
        let (salt, sealed) = wrapped[1..].split_at(SALT_LEN);
        self.kek(salt)?.decrypt([KEY_CONTEXT], sealed).map_err(|_| {
            Error::new(
                ErrorKind::User,
                format!("the passphrase from {} does not open this stack's secrets", self.origin),
            )
            .with_hint(format!(
                "set {} to the passphrase this stack was created with (nothing was changed)",
                self.origin
            ))
        })
    }
}

/// A key source for a program embedding the engine whose stacks use the `passphrase` provider:
/// `origin` names where the passphrase came from, in messages. Any other provider is refused.
pub fn passphrase_source(passphrase: impl Into<String>, origin: impl Into<String>) -> KeySource {
    let wrap: Arc<dyn KeyWrap> = Arc::new(Passphrase::new(passphrase, origin));
    Arc::new(move |provider: &str| {
        if provider == DEFAULT_PROVIDER {
            Ok(wrap.clone())
        } else {
            Err(Error::user(
                format!(
                    "the stack's secrets provider is `{provider}`, but this program gave only a passphrase"
                ),
                "pass a key source that knows that provider to `Session::open`",
            ))
        }
    })
}

/// Random bytes from the operating system.
pub fn random(n: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; n];
    getrandom::fill(&mut out)
        .map_err(|e| Error::new(ErrorKind::Io, format!("the OS gave no random bytes: {e}")))?;
    Ok(out)
}

/// Where a stack's data key is recorded (`[secrets]` of `Skyform.<stack>.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// `passphrase` (the default) or `awskms://KEY-ID-OR-ALIAS[?region=R]`.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// The wrapped data key, base64; absent until the stack's first secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn default_provider() -> String {
    DEFAULT_PROVIDER.to_string()
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig { provider: default_provider(), key: None }
    }
}

/// A stack's secrets: its data key, fetched (or created) on first use.
pub struct Vault {
    config: SecretsConfig,
    source: Option<KeySource>,
    /// Where a new data key is recorded; `None` keeps it in memory (tests).
    stack_file: Option<PathBuf>,
    crypter: Mutex<Option<Arc<Crypter>>>,
}

impl Default for Vault {
    /// A vault with no key source: any secret is an error.
    fn default() -> Vault {
        Vault { config: SecretsConfig::default(), source: None, stack_file: None, crypter: Mutex::new(None) }
    }
}

impl Vault {
    pub fn new(config: SecretsConfig, source: KeySource, stack_file: Option<PathBuf>) -> Vault {
        Vault { config, source: Some(source), stack_file, crypter: Mutex::new(None) }
    }

    /// A vault with a known data key.
    pub fn with_crypter(config: SecretsConfig, crypter: Crypter) -> Vault {
        Vault { config, source: None, stack_file: None, crypter: Mutex::new(Some(Arc::new(crypter))) }
    }

    pub fn config(&self) -> &SecretsConfig {
        &self.config
    }

    /// The data key, unwrapped (or created and recorded, for a stack's first secret).
    pub fn crypter(&self) -> Result<Arc<Crypter>> {
        let mut slot = self.crypter.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let source = self.source.as_ref().ok_or_else(|| {
            Error::new(ErrorKind::User, "this command has no secrets provider to open secrets with")
        })?;
        let wrap = source(&self.config.provider)?;
        // Another command may have made the stack's key since this one read the stack file.
        let recorded = match (&self.config.key, &self.stack_file) {
            (None, Some(path)) => crate::project::read_secrets_config(path)?.and_then(|c| c.key),
            (key, _) => key.clone(),
        };
        let crypter = match &recorded {
            Some(wrapped) => {
                let bytes = B64.decode(wrapped.trim()).map_err(|_| {
                    Error::new(ErrorKind::User, "`[secrets] key` in the stack file is not base64")
                        .with_hint("restore the stack file from git")
                })?;
                Crypter::new(&wrap.unwrap(&bytes)?)?
            }
            None => {
                let (crypter, key) = Crypter::generate()?;
                let wrapped = B64.encode(wrap.wrap(&key)?);
                if let Some(path) = &self.stack_file {
                    crate::project::write_secrets_config(
                        path,
                        &SecretsConfig { provider: wrap.provider(), key: Some(wrapped) },
                    )?;
                }
                crypter
            }
        };
        let crypter = Arc::new(crypter);
        *slot = Some(crypter.clone());
        Ok(crypter)
    }

    /// Every mark in `v` sealed. A value without marks needs no key.
    pub fn seal(&self, v: &Value) -> Result<Value> {
        if !value::has_marks(v) {
            return Ok(v.clone());
        }
        let c = self.crypter()?;
        Ok(seal_with(v, &c))
    }

    /// Every sealed secret in `v` opened into a mark. A value without any needs no key.
    pub fn open(&self, v: &Value) -> Result<Value> {
        if !value::has_marks(v) {
            return Ok(v.clone());
        }
        if !needs_key(v) {
            return open_with(v, None);
        }
        let c = self.crypter()?;
        open_with(v, Some(&c))
    }

    /// A document (a plan) as JSON bytes with every mark sealed.
    pub fn seal_json<T: Serialize>(&self, doc: &T) -> Result<Vec<u8>> {
        let v = serde_json::to_value(doc).expect("documents serialize");
        let mut out = serde_json::to_vec_pretty(&self.seal(&v)?).expect("JSON serializes");
        out.push(b'\n');
        Ok(out)
    }

    /// Reads a document written by [`Vault::seal_json`]; `origin` names it in errors.
    pub fn open_json<T: DeserializeOwned>(&self, bytes: &[u8], origin: &str) -> Result<T> {
        let bad = |e: String| Error::new(ErrorKind::User, format!("{origin} is not valid: {e}"));
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        serde_json::from_value(self.open(&v)?).map_err(|e| bad(e.to_string()))
    }
}

fn needs_key(v: &Value) -> bool {
    match v {
        Value::Object(map) => match value::as_sealed(v) {
            Some(c) => !c.starts_with(LEGACY_PREFIX),
            None => map.values().any(needs_key),
        },
        Value::Array(items) => items.iter().any(needs_key),
        _ => false,
    }
}

fn seal_with(v: &Value, c: &Crypter) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(inner) = value::as_mark(v) {
                let mut m = Map::new();
                m.insert(ENCRYPTED.to_string(), Value::String(c.encrypt(&value::unmark(inner))));
                return Value::Object(m);
            }
            Value::Object(map.iter().map(|(k, x)| (k.clone(), seal_with(x, c))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|x| seal_with(x, c)).collect()),
        other => other.clone(),
    }
}

fn open_with(v: &Value, c: Option<&Crypter>) -> Result<Value> {
    Ok(match v {
        Value::Object(map) => {
            if let Some(text) = value::as_sealed(v) {
                let plain = match text.strip_prefix(LEGACY_PREFIX) {
                    // Format 1 kept a fingerprint only: the value is gone; it stays a secret
                    // that compares unequal to anything, until the next update re-records it.
                    Some(fp) => Value::String(format!("[secret:{fp}]")),
                    None => c.expect("a key was fetched for sealed values").decrypt(text)?,
                };
                let mut m = Map::new();
                m.insert(SECRET.to_string(), plain);
                return Ok(Value::Object(m));
            }
            let mut out = Map::new();
            for (k, x) in map {
                out.insert(k.clone(), open_with(x, c)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|x| open_with(x, c)).collect::<Result<_>>()?),
        other => other.clone(),
    })
}

/// A value as the state records it: every secret in it sealed. It can only be made by
/// [`Sealed::seal`] or read from disk, so a plaintext secret cannot reach a state file or a
/// journal by mistake; reading it back takes the stack's [`Vault`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(Value);

impl Sealed {
    pub fn seal(v: &Value, vault: &Vault) -> Result<Sealed> {
        Ok(Sealed(vault.seal(v)?))
    }

    /// A value known to hold no secret (ids, literal JSON from a test); any mark in it is
    /// masked, never stored.
    pub fn public(v: &Value) -> Sealed {
        if value::has_marks(v) { Sealed(value::mask(v)) } else { Sealed(v.clone()) }
    }

    /// The value with its secrets opened into marks.
    pub fn open(&self, vault: &Vault) -> Result<Value> {
        vault.open(&self.0)
    }

    /// The recorded form (ciphertext for secrets): safe to show, compare and write.
    pub fn sealed(&self) -> &Value {
        &self.0
    }

    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// True when this holds a plaintext mark, which a well-formed record never does.
    pub fn has_plaintext(&self) -> bool {
        fn walk(v: &Value) -> bool {
            match v {
                Value::Object(map) => value::as_mark(v).is_some() || map.values().any(walk),
                Value::Array(items) => items.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.0)
    }

    /// How many secrets format 1 recorded as fingerprints only.
    pub fn legacy_fingerprints(&self) -> usize {
        fn walk(v: &Value) -> usize {
            match v {
                Value::Object(map) => match value::as_sealed(v) {
                    Some(t) if t.starts_with(LEGACY_PREFIX) => 1,
                    _ => map.values().map(walk).sum(),
                },
                Value::Array(items) => items.iter().map(walk).sum(),
                _ => 0,
            }
        }
        walk(&self.0)
    }

    /// Upgrades a format-1 value: `[secret:FINGERPRINT]` strings become sealed legacy secrets.
    pub fn from_v1(v: Value) -> Sealed {
        fn walk(v: Value) -> Value {
            match v {
                Value::String(s) => match s.strip_prefix("[secret:").and_then(|r| r.strip_suffix(']')) {
                    Some(fp) if !fp.is_empty() && fp.chars().all(|c| c.is_ascii_hexdigit()) => {
                        let mut m = Map::new();
                        m.insert(ENCRYPTED.to_string(), Value::String(format!("{LEGACY_PREFIX}{fp}")));
                        Value::Object(m)
                    }
                    _ => Value::String(s),
                },
                Value::Object(map) => Value::Object(map.into_iter().map(|(k, x)| (k, walk(x))).collect()),
                Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
                other => other,
            }
        }
        Sealed(walk(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vault() -> Vault {
        Vault::with_crypter(SecretsConfig::default(), Crypter::generate().unwrap().0)
    }

    #[test]
    fn sealing_is_deterministic_and_opens_back() {
        let v = vault();
        let marked = json!({"a": {"$secret": "hunter2"}, "b": [1, {"$secret": {"x": 1}}], "c": "plain"});
        let sealed = v.seal(&marked).unwrap();
        let text = sealed.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(v.seal(&marked).unwrap(), sealed, "same plaintext, same ciphertext");
        assert_eq!(v.open(&sealed).unwrap(), marked);
    }

    #[test]
    fn another_key_or_a_changed_byte_is_refused() {
        let (a, b) = (vault(), vault());
        let sealed = a.seal(&json!({"$secret": "x"})).unwrap();
        assert!(b.open(&sealed).unwrap_err().message.contains("cannot be decrypted"));
        let mut text = sealed[ENCRYPTED].as_str().unwrap().to_string();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(a.open(&json!({ENCRYPTED: text})).is_err());
    }

    #[test]
    fn a_passphrase_wraps_and_only_the_same_one_unwraps() {
        let key = random(DATA_KEY_LEN).unwrap();
        let wrapped = Passphrase::new("correct horse", "SKYFORM_PASSPHRASE").wrap(&key).unwrap();
        assert_eq!(Passphrase::new("correct horse", "X").unwrap(&wrapped).unwrap(), key);
        let err = Passphrase::new("wrong", "SKYFORM_PASSPHRASE").unwrap(&wrapped).unwrap_err();
        assert!(err.message.contains("does not open"), "{}", err.message);
    }

    #[test]
    fn values_without_secrets_need_no_key() {
        let v = Vault::default();
        assert_eq!(v.seal(&json!({"a": 1})).unwrap(), json!({"a": 1}));
        assert!(v.seal(&json!({"$secret": 1})).is_err());
    }

    #[test]
    fn format_1_fingerprints_become_legacy_secrets() {
        let s = Sealed::from_v1(json!({"pw": "[secret:00ff00ff00ff00ff]", "x": "[secret]"}));
        assert_eq!(s.legacy_fingerprints(), 1);
        let opened = s.open(&Vault::default()).unwrap();
        assert_eq!(opened["pw"], json!({"$secret": "[secret:00ff00ff00ff00ff]"}));
    }
}
