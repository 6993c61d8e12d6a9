//! Verifies AWS Signature Version 4 on requests to the local AWS endpoint, the way AWS does:
//! rebuild the canonical request from what arrived (method, path, query, the headers the
//! client says it signed, the payload's SHA-256), derive the signing key from the secret the
//! local cloud issued, and compare signatures in constant time.
//!
//! Written on `hmac`/`sha2` rather than with the `aws-sigv4` crate: that crate signs (it picks
//! the headers itself), while a verifier must sign exactly the header list the client chose.
//! The rules follow botocore's `SigV4Auth` (the reference clients): the path is URI-encoded a
//! second time for every service but S3, query parameters are decoded, re-encoded with AWS's
//! unreserved set and sorted, header values are trimmed with inner spaces collapsed.
//! Query-string (presigned) signatures are accepted too (`X-Amz-Algorithm` in the query).
//! The signing key (four HMACs of the secret) changes once a day, so it is derived once per
//! (secret, date, region, service) and kept, not per request.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// How far a request's `X-Amz-Date` may be from the daemon's clock (AWS allows 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a request was refused; [`super::AwsError`] gives each the code its service uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query.
    Missing,
    /// The header or query is malformed (missing Credential, SignedHeaders, Signature, date).
    Incomplete(String),
    /// Another access key id than the local cloud's.
    UnknownKey(String),
    /// The signature does not match.
    Mismatch,
    /// The request's time is more than 15 minutes away (or a presigned URL expired).
    Expired(String),
}

/// What a verified request was signed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

/// The parts of an incoming request that the signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as it arrived (still percent-encoded).
    pub raw_path: &'a str,
    /// The query as it arrived (without `?`).
    pub raw_query: &'a str,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
}

/// The service named by the credential scope of an `Authorization` header, if any (used to
/// route query-protocol requests before they are verified).
pub fn scope_service(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split([',', ' ']).find_map(|p| p.trim().strip_prefix("Credential="))?;
    cred.split('/').nth(3).map(str::to_string)
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` is `%XX` (upper-case); `/` is kept
/// when `keep_slash`.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) || (keep_slash && c == b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Percent-decodes bytes; with `plus`, `+` is a space (form encoding).
pub fn percent_decode_bytes(s: &str, plus: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = |c: u8| (c as char).to_digit(16);
                match (h(b[i + 1]), h(b[i + 2])) {
                    (Some(x), Some(y)) => {
                        out.push((x * 16 + y) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `a=1&b=2` into decoded pairs (form encoding: `+` is a space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                String::from_utf8_lossy(&percent_decode_bytes(k, true)).into_owned(),
                String::from_utf8_lossy(&percent_decode_bytes(v, true)).into_owned(),
            )
        })
        .collect()
}

fn canonical_query(raw: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_decode_bytes(k, false);
            if skip_signature && k == b"X-Amz-Signature" {
                return None;
            }
            Some((uri_encode(&k, false), uri_encode(&percent_decode_bytes(v, false), false)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn canonical_header_value(values: Vec<&[u8]>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Most values are printable ASCII with single inner spaces: already canonical.
        let canonical = v.first() != Some(&b' ')
            && v.last() != Some(&b' ')
            && v.iter().all(|&c| (b' '..=b'~').contains(&c))
            && !v.windows(2).any(|w| w == b"  ");
        match std::str::from_utf8(v) {
            Ok(v) if canonical => out.push_str(v),
            _ => out.push_str(&String::from_utf8_lossy(v).split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    }
    out
}

/// Seconds since the epoch of `20260102T030405Z`.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(4..6)?, n(6..8)?, n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Verifies `req` against the issued key pair; answers the scope it was signed for.
pub fn verify(req: &SignedRequest<'_>, access_key_id: &str, secret: &str) -> Result<Scope, AuthError> {
    verify_at(req, access_key_id, secret, now_secs())
}

/// [`verify`] with the clock given (seconds since the epoch).
pub fn verify_at(
    req: &SignedRequest<'_>,
    access_key_id: &str,
    secret: &str,
    now: i64,
) -> Result<Scope, AuthError> {
    let query = parse_query(req.raw_query);
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (credential, signed_headers, signature, amz_date, expires) = if presigned {
        let need = |name: &str| q(name).ok_or_else(|| AuthError::Incomplete(format!("{name} is missing")));
        if q("X-Amz-Algorithm").as_deref() != Some("AWS4-HMAC-SHA256") {
            return Err(AuthError::Incomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256".into()));
        }
        let expires: i64 = need("X-Amz-Expires")?
            .parse()
            .map_err(|_| AuthError::Incomplete("X-Amz-Expires must be a number of seconds".into()))?;
        (
            need("X-Amz-Credential")?,
            need("X-Amz-SignedHeaders")?,
            need("X-Amz-Signature")?,
            need("X-Amz-Date")?,
            Some(expires),
        )
    } else {
        let Some(auth) = req.headers.get(hyper::header::AUTHORIZATION) else {
            return Err(AuthError::Missing);
        };
        let auth = auth.to_str().map_err(|_| AuthError::Incomplete("Authorization is not text".into()))?;
        let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
            return Err(AuthError::Incomplete(
                "Authorization header requires the AWS4-HMAC-SHA256 algorithm".into(),
            ));
        };
        let mut cred = None;
        let mut signed = None;
        let mut sig = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                cred = Some(v.to_string());
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v.to_string());
            } else if let Some(v) = part.strip_prefix("Signature=") {
                sig = Some(v.to_string());
            }
        }
        let missing = |what: &str| {
            AuthError::Incomplete(format!(
                "Authorization header requires '{what}' parameter. Authorization={auth}"
            ))
        };
        let date =
            req.headers.get("x-amz-date").and_then(|v| v.to_str().ok()).map(str::to_string).ok_or_else(
                || {
                    AuthError::Incomplete(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"
                            .into(),
                    )
                },
            )?;
        (
            cred.ok_or_else(|| missing("Credential"))?,
            signed.ok_or_else(|| missing("SignedHeaders"))?,
            sig.ok_or_else(|| missing("Signature"))?,
            date,
            None,
        )
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped to a valid region and service: `{credential}`"
        )));
    };
    if *key != access_key_id {
        return Err(AuthError::UnknownKey(key.to_string()));
    }
    let when = parse_amz_date(&amz_date)
        .ok_or_else(|| AuthError::Incomplete(format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(date) {
        return Err(AuthError::Mismatch);
    }
    match expires {
        Some(exp) if now > when + exp => {
            return Err(AuthError::Expired(format!(
                "Request has expired (signed {amz_date}, valid {exp} s)"
            )));
        }
        Some(_) if when - now > MAX_SKEW_SECS => {
            return Err(AuthError::Expired(format!("Signature not yet current: {amz_date}")));
        }
        None if (now - when).abs() > MAX_SKEW_SECS => {
            return Err(AuthError::Expired(format!(
                "Signature expired: {amz_date} is now earlier or later than 15 minutes from the server's time"
            )));
        }
        _ => {}
    }

    // The canonical request.
    let path = if req.raw_path.is_empty() { "/" } else { req.raw_path };
    let canonical_path =
        if *service == "s3" { path.to_string() } else { uri_encode(normalize_path(path).as_bytes(), true) };
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<&[u8]> = req.headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&canonical_header_value(values));
        canonical_headers.push('\n');
    }
    let payload_hash = match req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        Some(h) => {
            // A hash the client declares must be the body's (hashed once, only then).
            if !h.starts_with("UNSIGNED-PAYLOAD") && !h.starts_with("STREAMING-") && h != sha256_hex(req.body)
            {
                return Err(AuthError::Mismatch);
            }
            h.to_string()
        }
        None if presigned => "UNSIGNED-PAYLOAD".to_string(),
        None => sha256_hex(req.body),
    };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path,
        canonical_query(req.raw_query, presigned),
        canonical_headers,
        signed_headers,
        payload_hash
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_signing = signing_key(secret, date, region, service);
    let expected = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(AuthError::Mismatch);
    }
    Ok(Scope {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
    })
}

/// The signing key of a (secret, date, region, service): four HMACs, the same for every
/// request of a day, so they are derived once and kept (a few entries: one per day, region
/// and service seen; the cache is emptied when it holds more than [`KEY_CACHE`]).
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    type Entry = (String, String, String, String, Vec<u8>);
    static KEYS: std::sync::Mutex<Vec<Entry>> = std::sync::Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((.., k)) =
        keys.iter().find(|(s, d, r, v, _)| s == secret && d == date && r == region && v == service)
    {
        return k.clone();
    }
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    if keys.len() >= KEY_CACHE {
        keys.clear();
    }
    keys.push((
        secret.to_string(),
        date.to_string(),
        region.to_string(),
        service.to_string(),
        k_signing.clone(),
    ));
    k_signing
}

/// At most this many signing keys are kept by [`signing_key`].
const KEY_CACHE: usize = 16;

/// Signs a request as a client does (for benchmarks and tests that speak raw HTTP): answers
/// the `Authorization` header for `headers` (which must include `host` and `x-amz-date`,
/// lower-case names), all of them signed.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> String {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    hs.sort();
    let amz_date = hs.iter().find(|(k, _)| k == "x-amz-date").map(|(_, v)| v.clone()).unwrap_or_default();
    let date = &amz_date[..8.min(amz_date.len())];
    let signed: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{method}\n{}\n\n{canonical_headers}\n{signed}\n{}",
        uri_encode(normalize_path(path).as_bytes(), true),
        sha256_hex(body)
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{date}/{region}/{service}/aws4_request, SignedHeaders={signed}, Signature={}",
        hex(&hmac(&k, sts.as_bytes()))
    )
}

/// `YYYYMMDDTHHMMSSZ` for now.
pub fn amz_date_now() -> String {
    let (y, mo, d, h, mi, s) = crate::pool::civil(now_secs() as u64);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Removes `.` and `..` segments and doubled slashes, as botocore's `normalize_url_path`.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if path.ends_with('/') && s != "/" {
        s.push('/');
    }
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM ListUsers, "Create a canonical request for Signature
    /// Version 4"), with its published signature.
    #[test]
    fn aws_documented_example() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("host", "iam.amazonaws.com".parse().unwrap());
        headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                .parse()
                .unwrap(),
        );
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        // The example is from 2015: the clock check refuses it today.
        let r = verify(&req, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert!(matches!(r, Err(AuthError::Expired(_))), "{r:?}");
        let then = parse_amz_date("20150830T123700Z").unwrap();
        let scope = verify_at(&req, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", then).unwrap();
        assert_eq!((scope.region.as_str(), scope.service.as_str()), ("us-east-1", "iam"));
        assert_eq!(verify_at(&req, "AKIDEXAMPLE", "another-secret", then), Err(AuthError::Mismatch));
        assert!(matches!(verify_at(&req, "AKIDOTHER", "x", then), Err(AuthError::UnknownKey(_))));
    }

    /// What [`authorization`] signs, [`verify`] accepts (and a changed body it refuses).
    #[test]
    fn sign_then_verify() {
        let date = amz_date_now();
        let body = br#"{"QueueUrl":"q"}"#;
        let hs = [
            ("host", "127.0.0.1:9"),
            ("x-amz-date", date.as_str()),
            ("x-amz-target", "AmazonSQS.SendMessage"),
        ];
        let auth = authorization("POST", "/", &hs, body, "K", "S", "us-east-1", "sqs");
        let mut headers = hyper::HeaderMap::new();
        for (k, v) in hs {
            headers.insert(k, v.parse().unwrap());
        }
        headers.insert("authorization", auth.parse().unwrap());
        let req = |body: &'static [u8]| SignedRequest {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body,
        };
        assert_eq!(verify(&req(body), "K", "S").unwrap().service, "sqs");
        assert_eq!(verify(&req(b"{}"), "K", "S"), Err(AuthError::Mismatch));
        // The signing key is cached per secret: another secret with the same scope is refused,
        // and the right one is still accepted after it.
        assert_eq!(verify(&req(body), "K", "T"), Err(AuthError::Mismatch));
        assert_eq!(verify(&req(body), "K", "S").unwrap().service, "sqs");
    }

    /// A declared payload hash must be the body's; one that is not is refused.
    #[test]
    fn a_declared_payload_hash_is_checked() {
        let date = amz_date_now();
        let body = br#"{"QueueUrl":"q"}"#;
        let wrong = sha256_hex(b"other");
        let hs = [
            ("host", "127.0.0.1:9"),
            ("x-amz-content-sha256", wrong.as_str()),
            ("x-amz-date", date.as_str()),
        ];
        let auth = authorization("POST", "/", &hs, body, "K", "S", "us-east-1", "sqs");
        let mut headers = hyper::HeaderMap::new();
        for (k, v) in hs {
            headers.insert(k, v.parse().unwrap());
        }
        headers.insert("authorization", auth.parse().unwrap());
        let req = SignedRequest { method: "POST", raw_path: "/", raw_query: "", headers: &headers, body };
        assert_eq!(verify(&req, "K", "S"), Err(AuthError::Mismatch));
        let right = sha256_hex(body);
        headers.insert("x-amz-content-sha256", right.parse().unwrap());
        let hs = [
            ("host", "127.0.0.1:9"),
            ("x-amz-content-sha256", right.as_str()),
            ("x-amz-date", date.as_str()),
        ];
        headers.insert(
            "authorization",
            authorization("POST", "/", &hs, body, "K", "S", "us-east-1", "sqs").parse().unwrap(),
        );
        let req = SignedRequest { method: "POST", raw_path: "/", raw_query: "", headers: &headers, body };
        assert_eq!(verify(&req, "K", "S").unwrap().service, "sqs");
    }

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=1", false), "a=1&a=x%20y&b=2");
        assert_eq!(canonical_query("X-Amz-Signature=abc&k=%7e", true), "k=~");
    }

    #[test]
    fn header_values_are_trimmed_and_their_spaces_squeezed() {
        let v = |vals: &[&[u8]]| canonical_header_value(vals.to_vec());
        assert_eq!(v(&[b"application/x-amz-json-1.0"]), "application/x-amz-json-1.0");
        assert_eq!(v(&[b"a b", b"c"]), "a b,c");
        assert_eq!(v(&[b"  a   b\t c  "]), "a b c");
        assert_eq!(v(&[b" a", b"b ", b"c\td"]), "a,b,c d");
        assert_eq!(v(&["caf\u{e9}  x".as_bytes()]), "caf\u{e9} x");
        assert_eq!(v(&[b""]), "");
    }
}
