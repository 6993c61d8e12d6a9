//! Values that are not known while the program runs: references to other resources' outputs,
//! strings built from them, and secrets.
//!
//! A program runs *before* anything is deployed, so it cannot know the URL of an API it has just
//! declared. Instead it writes down *where* the value will come from, and the engine fills it in
//! at apply time, once the resource that produces it has been created. This module builds those
//! placeholders; they serialise to the encodings of manifest format v1 (see `MANIFEST.md`):
//!
//! | Rust                                   | manifest JSON                                   |
//! |----------------------------------------|-------------------------------------------------|
//! | `api.output("url")`                    | `{"$ref": "api", "output": "url"}`              |
//! | `bucket.id()`                          | `{"$ref": "bucket"}`                            |
//! | `interpolate!("{}/x", api.url())`      | `{"$concat": [{"$ref": ..}, "/x"]}`             |
//! | `secret("hunter2")`                    | `{"$secret": "hunter2"}`                        |
//!
//! A reference is also a dependency: a resource whose inputs mention `api` is created after
//! `api`, without any `depends_on`.
//!
//! All three types implement both `Serialize` (so they work inside `serde_json::json!`) and
//! `Into<serde_json::Value>` (so they can be passed wherever the SDK takes a value).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Number, Value};

/// A reference to an output of another resource, resolved by the engine at apply time.
///
/// Get one from a handle: [`Resource::output`](crate::Resource::output),
/// [`Resource::id`](crate::Resource::id), or a component's typed accessors such as
/// [`HttpApiHandle::url`](crate::HttpApiHandle::url).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    resource: String,
    output: Option<String>,
}

impl Ref {
    /// A reference to output `output` of the resource named `resource`. The output may be a
    /// dotted path (`"endpoint.host"`) into a structured output.
    pub fn new(resource: impl Into<String>, output: impl Into<String>) -> Ref {
        Ref { resource: resource.into(), output: Some(output.into()) }
    }

    /// A reference to the provider id of the resource named `resource`.
    pub fn id(resource: impl Into<String>) -> Ref {
        Ref { resource: resource.into(), output: None }
    }

    /// The name of the resource referred to.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The output referred to, or `None` for the resource's id.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(if self.output.is_some() { 2 } else { 1 }))?;
        map.serialize_entry("$ref", &self.resource)?;
        if let Some(output) = &self.output {
            map.serialize_entry("output", output)?;
        }
        map.end()
    }
}

impl From<Ref> for Value {
    fn from(r: Ref) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("$ref".to_string(), Value::String(r.resource));
        if let Some(output) = r.output {
            map.insert("output".to_string(), Value::String(output));
        }
        Value::Object(map)
    }
}

impl From<&Ref> for Value {
    fn from(r: &Ref) -> Value {
        r.clone().into()
    }
}

/// One piece of an interpolated string: literal text, a number, or a reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A number, rendered the way JSON renders it.
    Number(Number),
    /// An output of another resource.
    Ref(Ref),
    /// Another interpolation, spliced in (it is flattened, so `$concat` never nests).
    Concat(Concat),
}

impl From<&str> for Part {
    fn from(s: &str) -> Part {
        Part::Text(s.to_string())
    }
}
impl From<String> for Part {
    fn from(s: String) -> Part {
        Part::Text(s)
    }
}
impl From<&String> for Part {
    fn from(s: &String) -> Part {
        Part::Text(s.clone())
    }
}
impl From<Ref> for Part {
    fn from(r: Ref) -> Part {
        Part::Ref(r)
    }
}
impl From<&Ref> for Part {
    fn from(r: &Ref) -> Part {
        Part::Ref(r.clone())
    }
}
impl From<Concat> for Part {
    fn from(c: Concat) -> Part {
        Part::Concat(c)
    }
}
macro_rules! integer_parts {
    ($($t:ty),*) => {$(
        impl From<$t> for Part {
            fn from(n: $t) -> Part {
                Part::Number(Number::from(n))
            }
        }
    )*};
}
integer_parts!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
impl From<f64> for Part {
    /// NaN and infinities have no JSON number, so they become their text.
    fn from(n: f64) -> Part {
        match Number::from_f64(n) {
            Some(number) => Part::Number(number),
            None => Part::Text(n.to_string()),
        }
    }
}

/// A string assembled at apply time from literal text and resource outputs.
///
/// Built by [`interpolate!`](crate::interpolate) or [`concat()`]. Serialises to
/// `{"$concat": [parts...]}`; adjacent text is merged, nested interpolations are flattened, and
/// an interpolation without any reference is folded into a plain JSON string when converted to a
/// `Value`, since there is nothing left to resolve.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Concat {
    parts: Vec<Part>,
}

impl Concat {
    /// Appends one part, keeping the invariant that `parts` holds no `Part::Concat` and no two
    /// adjacent `Part::Text`.
    pub fn push(&mut self, part: impl Into<Part>) {
        match part.into() {
            Part::Concat(inner) => inner.parts.into_iter().for_each(|p| self.push(p)),
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => match self.parts.last_mut() {
                Some(Part::Text(last)) => last.push_str(&text),
                _ => self.parts.push(Part::Text(text)),
            },
            other => self.parts.push(other),
        }
    }

    /// The parts, after merging.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    fn part_value(part: &Part) -> Value {
        match part {
            Part::Text(t) => Value::String(t.clone()),
            Part::Number(n) => Value::Number(n.clone()),
            Part::Ref(r) => r.into(),
            // Unreachable by the invariant of `push`, but rendering it is better than panicking.
            Part::Concat(c) => c.clone().into(),
        }
    }

    /// The string, if no part is a reference.
    fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Number(n) => out.push_str(&n.to_string()),
                Part::Ref(_) | Part::Concat(_) => return None,
            }
        }
        Some(out)
    }
}

impl Serialize for Concat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Value::from(self.clone()).serialize(serializer)
    }
}

impl From<Concat> for Value {
    fn from(c: Concat) -> Value {
        if let Some(literal) = c.as_literal() {
            return Value::String(literal);
        }
        let parts = c.parts.iter().map(Concat::part_value).collect();
        let mut map = serde_json::Map::new();
        map.insert("$concat".to_string(), Value::Array(parts));
        Value::Object(map)
    }
}

/// Joins parts into one string at apply time: `concat(["https://".into(), api.url().into()])`.
///
/// [`interpolate!`](crate::interpolate) is usually nicer to read; `concat` is for parts computed
/// at run time, such as a list of hosts joined with commas.
pub fn concat<I, P>(parts: I) -> Concat
where
    I: IntoIterator<Item = P>,
    P: Into<Part>,
{
    let mut c = Concat::default();
    parts.into_iter().for_each(|p| c.push(p));
    c
}

/// A value the engine must never write in plaintext to state, logs or output.
///
/// Serialises to `{"$secret": value}`. The value may itself contain references or an
/// interpolation (`secret(interpolate!("postgres://app:{}@db", password))`); the engine resolves
/// them and keeps the result secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret(Value);

/// Marks a value as secret. See [`Secret`].
pub fn secret(value: impl Into<Value>) -> Secret {
    Secret(value.into())
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("$secret", &self.0)?;
        map.end()
    }
}

impl From<Secret> for Value {
    fn from(s: Secret) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("$secret".to_string(), s.0);
        Value::Object(map)
    }
}

/// How a format string splits: the text between `{}` placeholders. `{{` and `}}` are literal
/// braces. Returns `None` when the string has a brace that is neither (such as `{name}`), which
/// `interpolate!` rejects at compile time through [`count_placeholders`].
fn split_format(fmt: &str) -> Option<Vec<String>> {
    let mut pieces = vec![String::new()];
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                pieces.last_mut()?.push(c);
            }
            ('{', Some('}')) => {
                chars.next();
                pieces.push(String::new());
            }
            ('{', _) | ('}', _) => return None,
            _ => pieces.last_mut()?.push(c),
        }
    }
    Some(pieces)
}

/// The number of `{}` placeholders in a format string, or `usize::MAX` if it has a stray brace.
/// A `const fn` so that `interpolate!` can check its arguments at compile time.
#[doc(hidden)]
pub const fn count_placeholders(fmt: &str) -> usize {
    let bytes = fmt.as_bytes();
    let mut i = 0;
    let mut count = 0;
    while i < bytes.len() {
        let next = if i + 1 < bytes.len() { bytes[i + 1] } else { 0 };
        match (bytes[i], next) {
            (b'{', b'{') | (b'}', b'}') => i += 2,
            (b'{', b'}') => {
                count += 1;
                i += 2;
            }
            (b'{', _) | (b'}', _) => return usize::MAX,
            _ => i += 1,
        }
    }
    count
}

/// The run-time half of `interpolate!`. The macro has already checked that `args` has one
/// element per placeholder; if this is called directly with a mismatch, missing arguments render
/// as nothing and extra ones are appended, rather than panicking.
#[doc(hidden)]
pub fn interpolate_parts(fmt: &str, args: Vec<Part>) -> Concat {
    let pieces = split_format(fmt).unwrap_or_else(|| vec![fmt.to_string()]);
    let mut out = Concat::default();
    let mut args = args.into_iter();
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0
            && let Some(arg) = args.next()
        {
            out.push(arg);
        }
        out.push(piece);
    }
    args.for_each(|a| out.push(a));
    out
}

/// Builds a string from literal text and resource outputs, resolved at apply time.
///
/// ```
/// use skyform_sdk::{Ref, interpolate};
/// let host = Ref::new("api", "host");
/// let url = interpolate!("https://{}/hello", host);
/// assert_eq!(
///     serde_json::Value::from(url),
///     serde_json::json!({"$concat": ["https://", {"$ref": "api", "output": "host"}, "/hello"]})
/// );
/// ```
///
/// Placeholders are `{}` only (no names or format specs); write `{{` and `}}` for literal
/// braces. Arguments may be `&str`, `String`, numbers, [`Ref`]s or other interpolations. A
/// mismatch between placeholders and arguments is a compile error:
///
/// ```compile_fail
/// let _ = skyform_sdk::interpolate!("{}/{}", "only one");
/// ```
#[macro_export]
macro_rules! interpolate {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        const _: () = ::core::assert!(
            $crate::reference::count_placeholders($fmt) == {
                let args: &[&str] = &[$(::core::stringify!($arg)),*];
                args.len()
            },
            "interpolate!: give exactly one argument per `{{}}` placeholder (double a brace to write it literally)"
        );
        $crate::reference::interpolate_parts($fmt, ::std::vec![$($crate::Part::from($arg)),*])
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_serialise_with_and_without_output() {
        assert_eq!(Value::from(Ref::new("api", "url")), json!({"$ref": "api", "output": "url"}));
        assert_eq!(Value::from(Ref::id("db")), json!({"$ref": "db"}));
        assert_eq!(json!({"x": Ref::new("a", "b.c")}), json!({"x": {"$ref": "a", "output": "b.c"}}));
    }

    #[test]
    fn interpolation_merges_text_and_keeps_refs_and_numbers() {
        let c = crate::interpolate!("https://{}:{}/{}x", Ref::new("api", "host"), 8080, "a");
        assert_eq!(
            Value::from(c),
            json!({"$concat": ["https://", {"$ref": "api", "output": "host"}, ":", 8080, "/ax"]})
        );
    }

    #[test]
    fn interpolation_without_refs_is_a_plain_string() {
        assert_eq!(Value::from(crate::interpolate!("{{}}{}-{}", "a", 1)), json!("{}a-1"));
        assert_eq!(Value::from(crate::interpolate!("plain")), json!("plain"));
    }

    #[test]
    fn nested_interpolations_are_flattened() {
        let inner = crate::interpolate!("{}/v1", Ref::new("api", "url"));
        let outer = crate::interpolate!("GET {}/x", inner);
        assert_eq!(json!(outer), json!({"$concat": ["GET ", {"$ref": "api", "output": "url"}, "/v1/x"]}));
    }

    #[test]
    fn concat_function_accepts_computed_parts() {
        let hosts = [Ref::new("a", "host"), Ref::new("b", "host")];
        let mut parts: Vec<Part> = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            if i > 0 {
                parts.push(",".into());
            }
            parts.push(h.into());
        }
        assert_eq!(
            Value::from(concat(parts)),
            json!({"$concat": [{"$ref": "a", "output": "host"}, ",", {"$ref": "b", "output": "host"}]})
        );
        assert_eq!(Value::from(concat(["a", "b"])), json!("ab"));
    }

    #[test]
    fn secrets_wrap_any_value() {
        assert_eq!(Value::from(secret("pw")), json!({"$secret": "pw"}));
        assert_eq!(json!(secret(json!({"k": 1}))), json!({"$secret": {"k": 1}}));
        assert_eq!(
            Value::from(secret(crate::interpolate!("u:{}", Ref::new("db", "password")))),
            json!({"$secret": {"$concat": ["u:", {"$ref": "db", "output": "password"}]}})
        );
    }

    #[test]
    fn format_strings_are_split_and_counted_alike() {
        assert_eq!(count_placeholders("a{}b{}"), 2);
        assert_eq!(count_placeholders("{{}}"), 0);
        assert_eq!(count_placeholders("{name}"), usize::MAX);
        assert_eq!(count_placeholders("}"), usize::MAX);
        assert_eq!(split_format("a{}b{{c}}"), Some(vec!["a".to_string(), "b{c}".to_string()]));
        // Called directly with the wrong number of arguments: no panic.
        assert_eq!(Value::from(interpolate_parts("{}{}", vec!["a".into()])), json!("a"));
        assert_eq!(Value::from(interpolate_parts("x", vec!["a".into()])), json!("xa"));
    }
}
