//! AWS KMS as a key wrapper for skyform's `awskms` secrets provider.
//!
//! A stack's data key (see `engine/src/secrets.rs` in the `skyform-engine` crate) is encrypted by a KMS key
//! with `Encrypt` and decrypted with `Decrypt`, over the same signed, retrying client the
//! provider uses. Only the 64-byte data key ever goes to KMS; secret values are encrypted
//! locally with it. The engine knows nothing of AWS: the CLI builds a [`Kms`] and injects it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::http::Aws;

/// A KMS key, named by an `awskms://` URL: `awskms://alias/NAME`, `awskms://KEY-ID`, or
/// `awskms:///arn:aws:kms:...`, with an optional `?region=REGION`.
pub struct Kms {
    aws: Aws,
    key_id: String,
}

impl Kms {
    /// `config` is the stack's `[providers.aws]` table (region, profile, endpoint); `env`
    /// looks up the environment (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL`).
    pub fn from_url(
        url: &str,
        config: &Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Kms, String> {
        let rest = url.strip_prefix("awskms://").ok_or_else(|| format!("`{url}` is not an awskms:// URL"))?;
        let (key, query) = match rest.split_once('?') {
            Some((k, q)) => (k, Some(q)),
            None => (rest, None),
        };
        let key_id = key.trim_start_matches('/').to_string();
        if key_id.is_empty() {
            return Err(format!("`{url}` names no KMS key: write awskms://alias/NAME or awskms://KEY-ID"));
        }
        let mut config = config.clone();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("region", r)) => {
                    config.insert("region".into(), Value::String(r.to_string()));
                }
                _ => return Err(format!("`{url}`: unknown parameter `{pair}` (only `region` is known)")),
            }
        }
        let settings = Settings::resolve(&config, env).map_err(|e| e.message)?;
        Ok(Kms { aws: Aws::new(settings)?, key_id })
    }

    /// `Encrypt`: the ciphertext blob KMS returns.
    pub async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let body = json!({"KeyId": self.key_id, "Plaintext": B64.encode(plaintext)});
        let answer = self
            .aws
            .json("kms", "1.1", "TrentService.Encrypt", body)
            .await
            .map_err(|e| format!("KMS Encrypt with key `{}`: {e}", self.key_id))?;
        blob(&answer, "CiphertextBlob")
    }

    /// `Decrypt`: the plaintext of a blob made by [`Kms::encrypt`].
    pub async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        let body = json!({"KeyId": self.key_id, "CiphertextBlob": B64.encode(ciphertext)});
        let answer = self
            .aws
            .json("kms", "1.1", "TrentService.Decrypt", body)
            .await
            .map_err(|e| format!("KMS Decrypt with key `{}`: {e}", self.key_id))?;
        blob(&answer, "Plaintext")
    }
}

fn blob(answer: &Value, field: &str) -> Result<Vec<u8>, String> {
    let text =
        answer.get(field).and_then(Value::as_str).ok_or_else(|| format!("KMS answered without {field}"))?;
    B64.decode(text).map_err(|_| format!("KMS answered a {field} that is not base64"))
}
