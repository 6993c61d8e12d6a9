//! Small helpers shared by the resource modules: base64, URL encoding, reading inputs.

use serde_json::{Map, Value};

pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    out
}

/// Decodes `%XX` escapes (IAM returns policy documents URL-encoded).
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document given as an object or a JSON string, as a compact JSON string.
pub fn policy_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A policy document as AWS returns it (a string, maybe URL-encoded), as a JSON value so that
/// formatting differences do not show as drift.
pub fn policy_value(s: &str) -> Value {
    let decoded = url_decode_if_encoded(s);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

/// A JSON document held in a string (a policy statement AWS answers), in one canonical form:
/// compact, keys sorted. AWS formats the same document differently from call to call (spaces,
/// key order), and comparing the raw strings would show drift where nothing changed.
pub fn canonical_json_string(v: &Value) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(&url_decode_if_encoded(s)) {
            Ok(doc) => Value::String(doc.to_string()),
            Err(_) => v.clone(),
        },
        Value::Null => Value::Null,
        other => Value::String(other.to_string()),
    }
}

fn url_decode_if_encoded(s: &str) -> String {
    if s.trim_start().starts_with('%') || s.contains("%22") { url_decode(s) } else { s.to_string() }
}

/// Accessors on an input object that treat a missing key and `null` alike.
pub trait Inputs {
    fn str_of(&self, key: &str) -> Option<&str>;
    fn i64_of(&self, key: &str) -> Option<i64>;
    fn bool_of(&self, key: &str) -> Option<bool>;
    fn obj_of(&self, key: &str) -> Option<&Map<String, Value>>;
    fn arr_of(&self, key: &str) -> Option<&Vec<Value>>;
    fn has(&self, key: &str) -> bool;
}

impl Inputs for Value {
    fn str_of(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
    fn i64_of(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }
    fn bool_of(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }
    fn obj_of(&self, key: &str) -> Option<&Map<String, Value>> {
        self.get(key).and_then(Value::as_object)
    }
    fn arr_of(&self, key: &str) -> Option<&Vec<Value>> {
        self.get(key).and_then(Value::as_array)
    }
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_null())
    }
}

/// Sets `key` in an object value (no-op on a non-object), dropping nulls so that "absent"
/// has one spelling.
pub fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(m) = target.as_object_mut() {
        if value.is_null() {
            m.remove(key);
        } else {
            m.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_compare_by_their_document() {
        let a = canonical_json_string(&Value::String("{\"Effect\": \"Allow\", \"Action\": \"x\"}".into()));
        let b = canonical_json_string(&serde_json::json!({"Action": "x", "Effect": "Allow"}));
        assert_eq!(a, b);
        assert_eq!(a, Value::String("{\"Action\":\"x\",\"Effect\":\"Allow\"}".into()));
        assert_eq!(
            canonical_json_string(&Value::String("not json".into())),
            Value::String("not json".into())
        );
    }

    #[test]
    fn base64_and_url_decoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(url_decode("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(policy_value("%7B%22a%22%3A1%7D"), serde_json::json!({"a": 1}));
    }
}
