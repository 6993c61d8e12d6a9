//! AWS Signature Version 4, by the `aws-sigv4` crate.
//!
//! This module adapts our requests to the crate and keeps the helpers the request builder
//! needs (payload hashes, the canonical query string, `x-amz-date`). AWS's published test
//! vectors (the `aws-sig-v4-test-suite`) at the bottom check the result. The request builder in
//! `http.rs` always adds `x-amz-content-sha256` before calling [`sign`], so the payload hash is
//! covered by the signature on every request, body-less GETs included (moto in verifying mode
//! and S3 require it).

use sha2::{Digest, Sha256};

/// A key pair, plus the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print the secret, even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// What the signature is scoped to.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`
    pub amz_date: &'a str,
}

/// Lower-case hex of SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex (the one [`skyform_build::artifact::hex`]).
pub use skyform_build::artifact::hex;

/// Percent-encodes everything but RFC 3986's unreserved characters, as SigV4 requires for
/// query keys and values (and for path segments).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string: pairs encoded, then sorted by key and value.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Signs a request with the `aws-sigv4` crate and returns the value of its `Authorization`
/// header.
///
/// `path` is the request path exactly as sent (already percent-encoded). Every service but S3
/// wants it encoded once more in the canonical request; S3 wants it as is (`double_encode`).
/// `headers` are all the headers to sign (names in any case; `host` and `x-amz-date` must be
/// among them, and the caller adds `x-amz-content-sha256` so that it is always signed).
/// `payload_hash` is the hex SHA-256 of the body.
// The arguments are exactly the algorithm's inputs; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &Credentials,
    scope: &Scope<'_>,
    method: &str,
    path: &str,
    double_encode: bool,
    query: &[(String, String)],
    headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode,
    };
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(
            &creds.access_key_id,
            &creds.secret_access_key,
            creds.session_token.clone(),
            None,
            "skyform",
        )
        .into();
    let mut settings = SigningSettings::default();
    // Our requests carry `x-amz-content-sha256` already; it is signed like any header.
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    if double_encode {
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    } else {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(parse_amz_date(scope.amz_date))
        .settings(settings)
        .build()
        .expect("every signing parameter is set")
        .into();
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("localhost");
    let path = if path.is_empty() { "/" } else { path };
    let mut uri = format!("https://{host}{path}");
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&canonical_query(query));
    }
    let request = SignableRequest::new(
        method,
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload_hash.to_string()),
    )
    .expect("a request of ours is signable");
    let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
        .expect("signing with credentials cannot fail")
        .into_parts();
    instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string())
        .expect("aws-sigv4 always returns the authorization header")
}

/// The inverse of [`amz_date`].
fn parse_amz_date(s: &str) -> std::time::SystemTime {
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (n(0, 4), n(4, 6), n(6, 8));
    let (hh, mm, ss) = (n(9, 11), n(11, 13), n(13, 15));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time, without a date crate (days-to-civil from Howard
/// Hinnant's `chrono`-compatible algorithms).
pub fn amz_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The credentials and clock of AWS's SigV4 test suite.
    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }
    const SCOPE: Scope<'static> =
        Scope { region: "us-east-1", service: "service", amz_date: "20150830T123600Z" };
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn base() -> Vec<(String, String)> {
        vec![
            ("Host".into(), "example.amazonaws.com".into()),
            ("X-Amz-Date".into(), "20150830T123600Z".into()),
        ]
    }

    fn sig(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(String, String)],
        hash: &str,
    ) -> String {
        let q: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let auth = sign(&creds(), &SCOPE, method, path, false, &q, headers, hash);
        auth.rsplit("Signature=").next().unwrap().to_string()
    }

    #[test]
    fn get_vanilla() {
        let auth = sign(&creds(), &SCOPE, "GET", "/", true, &[], &base(), EMPTY);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        assert_eq!(
            sig("GET", "/", &[("Param2", "value2"), ("Param1", "value1")], &base(), EMPTY),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn post_vanilla() {
        assert_eq!(
            sig("POST", "/", &[], &base(), EMPTY),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn get_utf8() {
        assert_eq!(
            sig("GET", "/%E1%88%B4", &[], &base(), EMPTY),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        );
    }

    #[test]
    fn double_encoding_encodes_the_escapes_again() {
        let a = sign(&creds(), &SCOPE, "GET", "/a%3Ab", true, &[], &base(), EMPTY);
        let b = sign(&creds(), &SCOPE, "GET", "/a%253Ab", false, &[], &base(), EMPTY);
        assert_eq!(a, b);
    }

    #[test]
    fn formats_amz_dates() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    }
}
