//! Values in a manifest: literal JSON plus three markers the engine understands.
//!
//! - `{"$ref": "NAME", "output": "PATH"}`: another resource's output (or its id when `output` is
//!   absent); it also makes the resource depend on NAME.
//! - `{"$concat": [part, ...]}`: string interpolation of literals and references.
//! - `{"$secret": value}`: a value that must never be written in plaintext to state or output.
//!   The mark stays on the value through resolution, planning and applying (see "secret marks"
//!   below); only providers receive it unmarked.
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
                            let ok = p.is_string()
                                || p.is_number()
                                || as_reference(p).is_some()
                                || as_mark(p).is_some();
                            if !ok {
                                errors.push(format!(
                                    "{}.$concat[{i}]: parts must be strings, numbers, references or secrets",
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

/// Replaces every reference and interpolation by its value. `lookup(resource, output)` answers
/// references. Returns the names of missing outputs in `missing`.
///
/// Secret marks survive resolution: `{"$secret": x}` resolves to `{"$secret": resolved x}`, a
/// reference to a secret output resolves to a mark, and an interpolation with a secret part is
/// a secret string. Providers get [`unmark`]ed values; nothing else ever sees plaintext.
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
                let mut secret = false;
                for p in parts {
                    let resolved = resolve(p, lookup, missing);
                    let (part, is_secret) = match as_mark(&resolved) {
                        Some(inner) => (inner.clone(), true),
                        None => (resolved, false),
                    };
                    secret |= is_secret || has_marks(&part);
                    match unmark(&part) {
                        Value::String(x) if x == UNKNOWN => return Value::String(UNKNOWN.into()),
                        Value::String(x) => s.push_str(&x),
                        Value::Null => {}
                        other => s.push_str(&other.to_string()),
                    }
                }
                return if secret { mark(Value::String(s)) } else { Value::String(s) };
            }
            if let Some(secret) = as_mark(v) {
                return mark(resolve(secret, lookup, missing));
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

/// Follows a dotted path (`a.b.0`) into a value. A path that enters a secret yields a secret.
pub fn get_path(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v;
    let mut secret = false;
    for seg in path.split('.') {
        if let Some(inner) = as_mark(cur) {
            secret = true;
            cur = inner;
        }
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(if secret { mark(cur.clone()) } else { cur.clone() })
}

/// True when following `path` into `v` runs into an unknown value before it ends.
pub fn path_crosses_unknown(v: &Value, path: &str) -> bool {
    let mut cur = v;
    for seg in path.split('.') {
        if let Some(inner) = as_mark(cur) {
            cur = inner;
        }
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
    let cur = as_mark(cur).unwrap_or(cur);
    cur.as_str() == Some(UNKNOWN)
}

// ----- secret marks -----
//
// In memory a secret is a *mark*, `{"$secret": plaintext}`, wherever it sits in a value: in a
// manifest, a resolved input, a provider's answer, a plan, a snapshot's opened values. A mark
// travels with its value, so no side list has to be kept in step. On disk a mark is *sealed*
// into `{"$encrypted": "CIPHERTEXT"}` (see `crate::secrets`); for people it is *masked* into
// `[secret]`; for providers it is *unmarked* into the plaintext.

/// The key of a secret mark.
pub const SECRET: &str = "$secret";
/// The key of a sealed secret (on disk).
pub const ENCRYPTED: &str = "$encrypted";
/// What people see instead of a secret.
pub const MASK: &str = "[secret]";

/// The plaintext inside a mark, if `v` is one.
pub fn as_mark(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(map) if map.len() == 1 => map.get(SECRET),
        _ => None,
    }
}

/// The ciphertext inside a sealed secret, if `v` is one.
pub fn as_sealed(v: &Value) -> Option<&str> {
    match v {
        Value::Object(map) if map.len() == 1 => map.get(ENCRYPTED)?.as_str(),
        _ => None,
    }
}

/// Marks `v` as secret (once: marks inside it are folded into the one outside).
pub fn mark(v: Value) -> Value {
    if as_mark(&v).is_some() {
        return v;
    }
    let mut map = Map::new();
    map.insert(SECRET.to_string(), unmark(&v));
    Value::Object(map)
}

/// True when `v` holds a mark (or a sealed secret) anywhere.
pub fn has_marks(v: &Value) -> bool {
    match v {
        Value::Object(map) => as_mark(v).is_some() || as_sealed(v).is_some() || map.values().any(has_marks),
        Value::Array(items) => items.iter().any(has_marks),
        _ => false,
    }
}

/// The plaintext value: every mark replaced by what it holds. Only what a provider receives.
pub fn unmark(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(inner) = as_mark(v) {
                return unmark(inner);
            }
            Value::Object(map.iter().map(|(k, c)| (k.clone(), unmark(c))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(unmark).collect()),
        other => other.clone(),
    }
}

/// The value as people may see it: every secret (marked or sealed) replaced by `[secret]`.
pub fn mask(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if as_mark(v).is_some() || as_sealed(v).is_some() {
                return Value::String(MASK.to_string());
            }
            Value::Object(map.iter().map(|(k, c)| (k.clone(), mask(c))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

/// The plaintexts of every mark inside `v` (strings as they are, other values as JSON text):
/// what [`remark`] looks for in a provider's answer.
pub fn secret_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(inner) = as_mark(v) {
                match unmark(inner) {
                    Value::String(s) => out.push(s),
                    Value::Null => {}
                    other => {
                        out.push(other.to_string());
                        secret_texts_plain(&other, out);
                    }
                }
                return;
            }
            map.values().for_each(|c| secret_texts(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| secret_texts(c, out)),
        _ => {}
    }
}

/// The strings inside a secret object or array are secret too.
fn secret_texts_plain(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Object(map) => map.values().for_each(|c| secret_texts_plain(c, out)),
        Value::Array(items) => items.iter().for_each(|c| secret_texts_plain(c, out)),
        _ => {}
    }
}

/// `text` with every occurrence of a secret of `v` replaced by `[secret]`: for messages that
/// quote what a provider was given (a provider's error may echo an input).
pub fn scrub(text: &str, v: &Value) -> String {
    let mut texts = Vec::new();
    secret_texts(v, &mut texts);
    texts.retain(|t| !t.is_empty());
    // Longest first, so that a secret containing another is replaced whole.
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let mut out = text.to_string();
    for t in texts {
        out = out.replace(&t, MASK);
    }
    out
}

/// Marks the secret parts of a provider's answer. `like` is what the provider was given (or
/// what was recorded), with its marks: a property that was secret there is secret here, and
/// any string that contains a secret's plaintext is secret (a provider may echo a secret into
/// an output, an ARN, a URL).
pub fn remark(answer: &Value, like: &Value) -> Value {
    remark_also(answer, like, &Value::Null)
}

/// [`remark`], also marking strings that contain a secret of `also` (a resource's inputs, when
/// remarking what a provider read of its outputs).
pub fn remark_also(answer: &Value, like: &Value, also: &Value) -> Value {
    let mut texts = Vec::new();
    secret_texts(like, &mut texts);
    secret_texts(also, &mut texts);
    texts.retain(|t| !t.is_empty());
    texts.sort();
    texts.dedup();
    remark_with(answer, Some(like), &texts)
}

/// Marks every string that contains one of `texts` (the plaintexts of config secrets).
pub fn mark_containing(v: &Value, texts: &[String]) -> Value {
    remark_with(v, None, texts)
}

fn remark_with(answer: &Value, like: Option<&Value>, texts: &[String]) -> Value {
    if let Some(l) = like
        && as_mark(l).is_some()
    {
        return mark(answer.clone());
    }
    if texts.is_empty() && like.is_none_or(|l| !has_marks(l)) {
        return answer.clone();
    }
    match answer {
        Value::String(s) => {
            if texts.iter().any(|t| s.contains(t.as_str())) {
                mark(answer.clone())
            } else {
                answer.clone()
            }
        }
        Value::Object(map) => {
            if as_mark(answer).is_some() {
                return answer.clone();
            }
            Value::Object(
                map.iter()
                    .map(|(k, c)| (k.clone(), remark_with(c, like.and_then(|l| l.get(k)), texts)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, c)| remark_with(c, like.and_then(|l| l.get(i)), texts))
                .collect(),
        ),
        Value::Null => answer.clone(),
        other => {
            if texts.contains(&other.to_string()) {
                mark(other.clone())
            } else {
                other.clone()
            }
        }
    }
}

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
    fn secrets_stay_marked_until_a_provider_gets_them() {
        let v = json!({"password": {"$secret": "hunter2"}, "note": "pw is hunter2"});
        let out = resolve(&v, &|_| Lookup::Unknown, &mut Vec::new());
        assert_eq!(out["password"], json!({"$secret": "hunter2"}));
        assert_eq!(unmark(&out), json!({"password": "hunter2", "note": "pw is hunter2"}));
        assert_eq!(mask(&out), json!({"password": MASK, "note": "pw is hunter2"}));
        // A provider's answer that echoes the secret is secret where it echoes it.
        let answer = json!({"password": "hunter2", "note": "pw is hunter2", "n": 1});
        assert_eq!(
            remark(&answer, &out),
            json!({"password": {"$secret": "hunter2"}, "note": {"$secret": "pw is hunter2"}, "n": 1})
        );
    }

    #[test]
    fn a_string_built_from_a_secret_is_secret() {
        let v = json!({"url": {"$concat": ["postgres://app:", {"$ref": "pw", "output": "value"}, "@db"]}});
        let secret = json!({"value": {"$secret": "hunter2"}});
        let lookup = |r: &Reference| match get_path(&secret, r.output.as_deref().unwrap()) {
            Some(v) => Lookup::Known(v),
            None => Lookup::Missing,
        };
        let out = resolve(&v, &lookup, &mut Vec::new());
        assert_eq!(out["url"], json!({"$secret": "postgres://app:hunter2@db"}));
        // Into a secret object: the part is secret too.
        let obj = json!({"cfg": {"$secret": {"a": {"b": "x"}}}});
        assert_eq!(get_path(&obj, "cfg.a.b"), Some(json!({"$secret": "x"})));
    }

    #[test]
    fn malformed_markers_are_reported_with_their_path() {
        let mut errors = Vec::new();
        check_markers(&json!({"a": {"$ref": 3}, "b": [{"$concat": "x"}], "$c": 1}), "inputs", &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("inputs.$c"));
    }
}
