//! Values in a manifest: literal JSON plus three markers the engine understands.
//!
//! - `{"$ref": "NAME", "output": "PATH"}`: another resource's output (or its id when `output` is
//!   absent); it also makes the resource depend on NAME.
//! - `{"$concat": [part, ...]}`: string interpolation of literals and references.
//! - `{"$secret": value}`: a value that must never be written in plaintext to state or output.
//!
//! The engine resolves markers just before a value reaches a provider. During planning a
//! reference to a resource that is yet to be created or updated resolves to
//! [`skyform_protocol::UNKNOWN`], shown as `(known after up)`.

use serde_json::{Map, Value};
use skyform_protocol::UNKNOWN;

/// A reference found in a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub resource: String,
    /// A dotted path into the outputs; `None` means the resource's id.
    pub output: Option<String>,
}

/// How a reference looks on the wire, if `v` is one.
pub fn as_reference(v: &Value) -> Option<Reference> {
    let map = v.as_object()?;
    let target = map.get("$ref")?.as_str()?;
    let output = match map.get("output") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    if map.keys().any(|k| k != "$ref" && k != "output") {
        return None;
    }
    Some(Reference { resource: target.to_string(), output })
}

/// Every reference inside `v`, in document order.
pub fn references(v: &Value, out: &mut Vec<Reference>) {
    if let Some(r) = as_reference(v) {
        out.push(r);
        return;
    }
    match v {
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        Value::Object(map) => map.values().for_each(|i| references(i, out)),
        _ => {}
    }
}

/// Problems with markers, found before anything runs. `path` names the value in messages.
pub fn check_markers(v: &Value, path: &str, errors: &mut Vec<String>) {
    let mut segs = Vec::new();
    walk_markers(v, path, &mut segs, errors);
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path is kept as borrowed segments and only rendered for an error: validating 10,000
/// resources must not format a string per property.
fn render(root: &str, segs: &[Seg<'_>]) -> String {
    let mut out = root.to_string();
    for s in segs {
        match s {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn walk_markers<'a>(v: &'a Value, root: &str, segs: &mut Vec<Seg<'a>>, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if map.contains_key("$ref") {
                if as_reference(v).is_none() {
                    errors.push(format!(
                        "{}: a reference must be {{\"$ref\": \"NAME\", \"output\": \"PROPERTY\"}}",
                        render(root, segs)
                    ));
                }
                return;
            }
            if let Some(parts) = map.get("$concat") {
                match parts.as_array() {
                    Some(parts) if map.len() == 1 => {
                        for (i, p) in parts.iter().enumerate() {
                            let ok = p.is_string() || p.is_number() || as_reference(p).is_some();
                            if !ok {
                                errors.push(format!(
                                    "{}.$concat[{i}]: parts must be strings, numbers or references",
                                    render(root, segs)
                                ));
                            }
                        }
                    }
                    _ => errors.push(format!(
                        "{}: `$concat` takes one array of parts and nothing else",
                        render(root, segs)
                    )),
                }
                return;
            }
            if map.contains_key("$secret") {
                if map.len() != 1 {
                    errors
                        .push(format!("{}: `$secret` takes one value and nothing else", render(root, segs)));
                }
                return;
            }
            for (k, child) in map {
                segs.push(Seg::Key(k));
                if k.starts_with('$') {
                    errors.push(format!("{}: keys starting with `$` are reserved", render(root, segs)));
                }
                walk_markers(child, root, segs, errors);
                segs.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                segs.push(Seg::Index(i));
                walk_markers(child, root, segs, errors);
                segs.pop();
            }
        }
        _ => {}
    }
}

/// What a reference resolves to.
pub enum Lookup {
    Known(Value),
    Unknown,
    /// The resource exists but has no such output.
    Missing,
}

/// Replaces every marker by its value. `lookup(resource, output)` answers references.
/// Returns the names of missing outputs in `missing`.
pub fn resolve(v: &Value, lookup: &dyn Fn(&Reference) -> Lookup, missing: &mut Vec<Reference>) -> Value {
    if let Some(r) = as_reference(v) {
        return match lookup(&r) {
            Lookup::Known(v) => v,
            Lookup::Unknown => Value::String(UNKNOWN.to_string()),
            Lookup::Missing => {
                missing.push(r);
                Value::Null
            }
        };
    }
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("$concat") {
                let mut s = String::new();
                for p in parts {
                    match resolve(p, lookup, missing) {
                        Value::String(x) if x == UNKNOWN => return Value::String(UNKNOWN.into()),
                        Value::String(x) => s.push_str(&x),
                        Value::Null => {}
                        other => s.push_str(&other.to_string()),
                    }
                }
                return Value::String(s);
            }
            if let Some(secret) = map.get("$secret")
                && map.len() == 1
            {
                return resolve(secret, lookup, missing);
            }
            let mut out = Map::new();
            for (k, child) in map {
                out.insert(k.clone(), resolve(child, lookup, missing));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| resolve(i, lookup, missing)).collect()),
        other => other.clone(),
    }
}

/// Follows a dotted path (`a.b.0`) into a value.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// True when following `path` into `v` runs into an unknown value before it ends.
pub fn path_crosses_unknown(v: &Value, path: &str) -> bool {
    let mut cur = v;
    for seg in path.split('.') {
        if cur.as_str() == Some(UNKNOWN) {
            return true;
        }
        cur = match cur {
            Value::Object(m) => match m.get(seg) {
                Some(x) => x,
                None => return false,
            },
            Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get(i)) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    cur.as_str() == Some(UNKNOWN)
}

/// The plaintext values of every `$secret` inside `v` (strings only; other secret values are
/// rendered as JSON text), so that output and state can mask them.
pub fn secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let (Some(s), 1) = (map.get("$secret"), map.len()) {
                match s {
                    Value::String(s) => out.push(s.clone()),
                    other => out.push(other.to_string()),
                }
                return;
            }
            map.values().for_each(|c| secrets(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| secrets(c, out)),
        _ => {}
    }
}

/// Replaces every string equal to (or containing) a secret by `[secret]`, for people to read.
pub fn mask(v: &Value, secrets: &[String]) -> Value {
    mask_with(v, secrets, &|_| MASK.to_string())
}

/// Replaces every string containing a secret by `[secret:FINGERPRINT]`, a salted hash of the
/// whole string: what the state file records, so that a changed secret still shows as a
/// change while its plaintext is never written.
pub fn mask_fingerprint(v: &Value, secrets: &[String], salt: &str) -> Value {
    mask_with(v, secrets, &|s| {
        let mut h = crate::util::Fnv::new();
        h.write(salt.as_bytes());
        h.write(&[0]);
        h.write(s.as_bytes());
        format!("[secret:{:016x}]", h.finish())
    })
}

fn mask_with(v: &Value, secrets: &[String], replace: &dyn Fn(&str) -> String) -> Value {
    if secrets.is_empty() {
        return v.clone();
    }
    match v {
        Value::String(s) => {
            if secrets.iter().any(|x| !x.is_empty() && s.contains(x.as_str())) {
                Value::String(replace(s))
            } else {
                v.clone()
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| mask_with(i, secrets, replace)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, c)| (k.clone(), mask_with(c, secrets, replace))).collect())
        }
        other => {
            let text = other.to_string();
            if secrets.contains(&text) { Value::String(replace(&text)) } else { other.clone() }
        }
    }
}

pub const MASK: &str = "[secret]";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_references_and_resolves_them() {
        let v = json!({"a": {"$ref": "x", "output": "url"}, "b": {"$concat": ["u=", {"$ref": "y"}, "/", 3]}});
        let mut refs = Vec::new();
        references(&v, &mut refs);
        assert_eq!(refs.len(), 2);
        let url = json!("http://h");
        let id = json!("id-1");
        let lookup = |r: &Reference| match (r.resource.as_str(), r.output.as_deref()) {
            ("x", Some("url")) => Lookup::Known(url.clone()),
            ("y", None) => Lookup::Known(id.clone()),
            _ => Lookup::Missing,
        };
        let mut missing = Vec::new();
        let out = resolve(&v, &lookup, &mut missing);
        assert_eq!(out, json!({"a": "http://h", "b": "u=id-1/3"}));
        assert!(missing.is_empty());
    }

    #[test]
    fn unknown_parts_make_the_whole_concat_unknown() {
        let v = json!({"$concat": ["a", {"$ref": "x", "output": "o"}]});
        let out = resolve(&v, &|_| Lookup::Unknown, &mut Vec::new());
        assert_eq!(out, json!(UNKNOWN));
    }

    #[test]
    fn secrets_are_unwrapped_for_providers_and_masked_for_people() {
        let v = json!({"password": {"$secret": "hunter2"}, "note": "pw is hunter2"});
        let out = resolve(&v, &|_| Lookup::Unknown, &mut Vec::new());
        assert_eq!(out["password"], "hunter2");
        let mut s = Vec::new();
        secrets(&v, &mut s);
        assert_eq!(mask(&out, &s), json!({"password": MASK, "note": MASK}));
    }

    #[test]
    fn malformed_markers_are_reported_with_their_path() {
        let mut errors = Vec::new();
        check_markers(&json!({"a": {"$ref": 3}, "b": [{"$concat": "x"}], "$c": 1}), "inputs", &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("inputs.$c"));
    }
}
