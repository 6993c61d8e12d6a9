//! The `awskms` secrets provider: the aws provider's KMS client behind the engine's
//! [`KeyWrap`] trait. It lives in the CLI because the engine has no provider-specific
//! dependency; the CLI injects it through the key source.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::secrets::KeyWrap;

pub struct KmsWrap {
    url: String,
    kms: skyform_aws::kms::Kms,
}

impl KmsWrap {
    pub fn new(url: &str, aws_config: &Map<String, Value>) -> Result<KmsWrap> {
        let env = |k: &str| std::env::var(k).ok();
        let kms = skyform_aws::kms::Kms::from_url(url, aws_config, &env).map_err(|e| {
            Error::user(
                format!("the secrets provider `{url}` cannot be used: {e}"),
                "check [providers.aws] in the stack file and the AWS credentials in the environment",
            )
        })?;
        Ok(KmsWrap { url: url.to_string(), kms })
    }

    /// The key wrapper is called from synchronous engine code inside the CLI's multi-threaded
    /// runtime: run the request to completion on it without blocking its other tasks.
    fn block<T>(&self, fut: impl std::future::Future<Output = std::result::Result<T, String>>) -> Result<T> {
        let result = match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(fut)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a runtime for KMS: {e}")))?
                .block_on(fut),
        };
        result.map_err(|e| {
            Error::new(ErrorKind::User, e).with_hint(format!(
                "the stack's secrets are wrapped by {}; check that key and the AWS credentials",
                self.url
            ))
        })
    }
}

impl KeyWrap for KmsWrap {
    fn provider(&self) -> String {
        self.url.clone()
    }
    fn wrap(&self, key: &[u8]) -> Result<Vec<u8>> {
        self.block(self.kms.encrypt(key))
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>> {
        self.block(self.kms.decrypt(wrapped))
    }
}
