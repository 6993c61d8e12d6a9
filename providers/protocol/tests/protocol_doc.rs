//! Keeps PROTOCOL.md true to the wire types.
//!
//! Every ```json block in PROTOCOL.md is preceded by a marker `<!-- wire: KIND -->`, where KIND is
//! `METHOD-request`, `METHOD-response` or `error-response`. This test
//!
//! 1. parses each block as the type its marker names (a request as [`Request`] with that method,
//!    a response as [`Response`] whose `result` parses as the method's typed response);
//! 2. checks that every method has a request and a response example, and that there is an error
//!    example;
//! 3. compares, type by type, the field names the examples show with the field names of a
//!    fully-populated sample of each wire type serialized to JSON: a field added to, renamed in or
//!    removed from a wire type without updating the document fails here, saying so;
//! 4. pins a hash of that canonical list of fields (plus the methods and error codes), so that
//!    any change to the wire format is a deliberate, reviewed edit of this file as well.
//!
//! Serde ignores unknown fields, so parsing alone would accept a misspelled field in the document;
//! comparing field names catches that too.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use skyform_protocol::*;

const DOC: &str = include_str!("../PROTOCOL.md");

/// FNV-1a of [`canonical_rendering`]. When the wire types change: update PROTOCOL.md first (this
/// test tells you what it is missing), add a changelog entry, bump [`PROTOCOL_VERSION`] if the
/// change is not backward compatible, then set this to the value the failure prints.
const WIRE_HASH: u64 = 0x2f0ffce14146fc6f;

// ---------------------------------------------------------------------------------------------
// Samples: one fully-populated value of every wire type (every Option is Some, every Vec is
// non-empty), so that serializing it shows every field the type can put on the wire.

/// Adding a `Call` variant breaks this match: give it an index, a sample in [`sample_calls`], a
/// result sample in [`sample_result`], and a section in PROTOCOL.md.
fn call_index(call: &Call) -> usize {
    match call {
        Call::Handshake(_) => 0,
        Call::Configure(_) => 1,
        Call::Check(_) => 2,
        Call::Diff(_) => 3,
        Call::Create(_) => 4,
        Call::Read(_) => 5,
        Call::Update(_) => 6,
        Call::Delete(_) => 7,
    }
}
const CALLS: usize = 8;

/// Adding an `ErrorCode` variant breaks this match: list it in [`all_error_codes`] and in the
/// error table of PROTOCOL.md.
fn error_code_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::InvalidInputs => 0,
        ErrorCode::NotFound => 1,
        ErrorCode::Unsupported => 2,
        ErrorCode::Failed => 3,
        ErrorCode::Configuration => 4,
        ErrorCode::BadRequest => 5,
    }
}

fn all_error_codes() -> Vec<ErrorCode> {
    use ErrorCode::*;
    vec![InvalidInputs, NotFound, Unsupported, Failed, Configuration, BadRequest]
}

fn obj() -> Value {
    json!({"k": 1})
}

fn sample_calls() -> Vec<Call> {
    let s = |x: &str| x.to_string();
    vec![
        Call::Handshake(HandshakeRequest { protocol_versions: vec![1], engine_version: s("0") }),
        Call::Configure(ConfigureRequest {
            project: s("p"),
            stack: s("s"),
            project_dir: s("/"),
            config: Map::from_iter([(s("k"), json!(1))]),
            dry_run: true,
        }),
        Call::Check(CheckRequest { type_: s("t:T"), name: s("n"), inputs: obj(), olds: Some(obj()) }),
        Call::Diff(DiffRequest {
            type_: s("t:T"),
            name: s("n"),
            id: s("i"),
            olds: obj(),
            news: obj(),
            old_outputs: obj(),
        }),
        Call::Create(CreateRequest { type_: s("t:T"), name: s("n"), inputs: obj() }),
        Call::Read(ReadRequest {
            type_: s("t:T"),
            name: s("n"),
            id: Some(s("i")),
            inputs: obj(),
            outputs: obj(),
        }),
        Call::Update(UpdateRequest {
            type_: s("t:T"),
            name: s("n"),
            id: s("i"),
            olds: obj(),
            news: obj(),
            old_outputs: obj(),
        }),
        Call::Delete(DeleteRequest {
            type_: s("t:T"),
            name: s("n"),
            id: s("i"),
            inputs: obj(),
            outputs: obj(),
        }),
    ]
}

fn sample_schema() -> ResourceSchema {
    ResourceSchema {
        description: "d".into(),
        inputs: obj(),
        outputs: vec!["o".into()],
        replace_on_changes: vec!["k".into()],
        stable_outputs: vec!["o".into()],
    }
}

/// The result of a method, fully populated.
fn sample_result(method: &str) -> Value {
    let v = match method {
        "handshake" => serde_json::to_value(HandshakeResponse {
            protocol_version: 1,
            name: "t".into(),
            version: "0".into(),
            resources: BTreeMap::from([("t:T".to_string(), sample_schema())]),
        }),
        "configure" => serde_json::to_value(ConfigureResponse {}),
        "check" => serde_json::to_value(CheckResponse {
            inputs: obj(),
            failures: vec![CheckFailure { property: "k".into(), reason: "r".into() }],
        }),
        "diff" => serde_json::to_value(DiffResponse {
            changed: vec!["k".into()],
            replaces: vec!["k".into()],
            delete_before_replace: true,
        }),
        "create" => serde_json::to_value(CreateResponse { id: "i".into(), outputs: obj() }),
        "read" => serde_json::to_value(ReadResponse {
            resource: Some(ReadResource { id: "i".into(), inputs: obj(), outputs: obj() }),
        }),
        "update" => serde_json::to_value(UpdateResponse { outputs: obj() }),
        "delete" => serde_json::to_value(DeleteResponse {}),
        other => panic!("no result sample for method `{other}`"),
    };
    v.unwrap()
}

fn sample_response() -> Value {
    serde_json::to_value(Response {
        id: 1,
        result: Some(obj()),
        error: Some(ErrorBody { code: ErrorCode::Failed, message: "m".into() }),
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Field names by type. Both the samples and the document's examples go through the same
// `collect_*` functions, which know where each wire type sits inside a message; payloads that
// are free JSON (`inputs`, `outputs`, `config`, schemas' `inputs`) are not descended into.

type Fields = BTreeMap<String, BTreeSet<String>>;

fn params_type(method: &str) -> String {
    let mut name = method[..1].to_uppercase() + &method[1..];
    name.push_str("Request");
    name
}

fn result_type(method: &str) -> String {
    let mut name = method[..1].to_uppercase() + &method[1..];
    name.push_str("Response");
    name
}

fn add_keys(fields: &mut Fields, type_name: &str, value: &Value) {
    let entry = fields.entry(type_name.to_string()).or_default();
    if let Some(map) = value.as_object() {
        entry.extend(map.keys().cloned());
    }
}

fn collect_request(fields: &mut Fields, request: &Value) {
    add_keys(fields, "Request", request);
    let method = request["method"].as_str().unwrap();
    add_keys(fields, &params_type(method), &request["params"]);
}

fn collect_response(fields: &mut Fields, method: Option<&str>, response: &Value) {
    add_keys(fields, "Response", response);
    if let Some(error) = response.get("error") {
        add_keys(fields, "ErrorBody", error);
    }
    let (Some(method), Some(result)) = (method, response.get("result")) else { return };
    add_keys(fields, &result_type(method), result);
    match method {
        "handshake" => {
            for schema in result["resources"].as_object().into_iter().flat_map(|m| m.values()) {
                add_keys(fields, "ResourceSchema", schema);
            }
        }
        "check" => {
            for failure in result["failures"].as_array().into_iter().flatten() {
                add_keys(fields, "CheckFailure", failure);
            }
        }
        "read" if result["resource"].is_object() => add_keys(fields, "ReadResource", &result["resource"]),
        _ => {}
    }
}

fn sample_fields() -> Fields {
    let mut fields = Fields::new();
    for call in sample_calls() {
        let method = call.method();
        let request = serde_json::to_value(Request { id: 1, call }).unwrap();
        collect_request(&mut fields, &request);
        collect_response(&mut fields, Some(method), &json!({"id": 1, "result": sample_result(method)}));
    }
    collect_response(&mut fields, None, &sample_response());
    fields
}

/// The wire format as text: every type's fields, the methods and the error codes.
fn canonical_rendering() -> String {
    let mut out = String::new();
    for (type_name, keys) in sample_fields() {
        out.push_str(&format!("{type_name}: {}\n", keys.into_iter().collect::<Vec<_>>().join(", ")));
    }
    let methods: Vec<&str> = sample_calls().iter().map(Call::method).collect();
    out.push_str(&format!("methods: {}\n", methods.join(", ")));
    let codes: Vec<String> = all_error_codes().into_iter().map(code_name).collect();
    out.push_str(&format!("error codes: {}\n", codes.join(", ")));
    out.push_str(&format!("protocol version: {PROTOCOL_VERSION}\nunknown: {UNKNOWN}\n"));
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code).unwrap().as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// The document's examples.

struct Example {
    kind: String,
    /// 1-based line of the opening fence, for messages.
    line: usize,
    value: Value,
}

/// Every ```json block with the marker before it. A block without a marker is an error: an
/// unchecked example is exactly what this test exists to prevent.
fn examples() -> Vec<Example> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```json" {
            let start = i;
            let marker = lines[..start].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or("");
            let kind = marker
                .trim()
                .strip_prefix("<!-- wire:")
                .and_then(|m| m.strip_suffix("-->"))
                .map(|k| k.trim().to_string())
                .unwrap_or_else(|| {
                    panic!(
                        "PROTOCOL.md line {}: a ```json block needs a `<!-- wire: KIND -->` line before it",
                        start + 1
                    )
                });
            i += 1;
            let mut body = String::new();
            while i < lines.len() && lines[i].trim() != "```" {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            let value = serde_json::from_str(&body).unwrap_or_else(|e| {
                panic!("PROTOCOL.md line {}: the {kind} example is not JSON: {e}", start + 1)
            });
            out.push(Example { kind, line: start + 1, value });
        }
        i += 1;
    }
    out
}

fn parse<T: DeserializeOwned>(ex: &Example, value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!(
            "PROTOCOL.md line {}: the {} example does not parse as {}: {e}",
            ex.line,
            ex.kind,
            std::any::type_name::<T>()
        )
    })
}

/// Parses one example as the types its kind names, and returns the method it documents.
fn check_example(ex: &Example) -> Option<String> {
    let (method, side) = ex
        .kind
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("PROTOCOL.md line {}: unknown wire kind `{}`", ex.line, ex.kind));
    match side {
        "request" => {
            let request: Request = parse(ex, &ex.value);
            assert_eq!(
                request.call.method(),
                method,
                "PROTOCOL.md line {}: a {} example has method `{}`",
                ex.line,
                ex.kind,
                request.call.method()
            );
            Some(method.to_string())
        }
        "response" if method == "error" => {
            let response: Response = parse(ex, &ex.value);
            assert!(
                response.error.is_some() && response.result.is_none(),
                "PROTOCOL.md line {}: an error response has `error` and no `result`",
                ex.line
            );
            None
        }
        "response" => {
            let response: Response = parse(ex, &ex.value);
            let result = response.result.as_ref().filter(|_| response.error.is_none()).unwrap_or_else(|| {
                panic!("PROTOCOL.md line {}: a {} has `result` and no `error`", ex.line, ex.kind)
            });
            match method {
                "handshake" => drop(parse::<HandshakeResponse>(ex, result)),
                "configure" => drop(parse::<ConfigureResponse>(ex, result)),
                "check" => drop(parse::<CheckResponse>(ex, result)),
                "diff" => drop(parse::<DiffResponse>(ex, result)),
                "create" => drop(parse::<CreateResponse>(ex, result)),
                "read" => drop(parse::<ReadResponse>(ex, result)),
                "update" => drop(parse::<UpdateResponse>(ex, result)),
                "delete" => drop(parse::<DeleteResponse>(ex, result)),
                other => panic!("PROTOCOL.md line {}: unknown method `{other}` in `{}`", ex.line, ex.kind),
            }
            Some(method.to_string())
        }
        _ => panic!("PROTOCOL.md line {}: unknown wire kind `{}`", ex.line, ex.kind),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_example_parses_as_its_wire_type() {
    let examples = examples();
    assert!(!examples.is_empty(), "PROTOCOL.md has no examples");
    for ex in &examples {
        check_example(ex);
    }
}

#[test]
fn every_method_has_a_request_and_a_response_example() {
    let kinds: BTreeSet<String> = examples().into_iter().map(|e| e.kind).collect();
    let calls = sample_calls();
    let indices: BTreeSet<usize> = calls.iter().map(call_index).collect();
    assert_eq!(indices.len(), CALLS, "sample_calls() must hold one sample of every Call variant");
    let mut missing = Vec::new();
    for call in &calls {
        for side in ["request", "response"] {
            let kind = format!("{}-{side}", call.method());
            if !kinds.contains(&kind) {
                missing.push(kind);
            }
        }
    }
    if !kinds.contains("error-response") {
        missing.push("error-response".to_string());
    }
    assert!(missing.is_empty(), "PROTOCOL.md has no example of: {}; update PROTOCOL.md", missing.join(", "));
}

#[test]
fn examples_show_exactly_the_fields_of_the_wire_types() {
    let mut documented = Fields::new();
    for ex in examples() {
        let method = check_example(&ex);
        if ex.kind.ends_with("-request") {
            collect_request(&mut documented, &ex.value);
        } else {
            collect_response(&mut documented, method.as_deref(), &ex.value);
        }
    }
    let expected = sample_fields();
    let mut problems = Vec::new();
    for (type_name, keys) in &expected {
        let shown = documented.get(type_name);
        if shown.is_none() {
            problems.push(format!("{type_name}: no example shows it"));
            continue;
        }
        let shown = shown.unwrap();
        let missing: Vec<&String> = keys.difference(shown).collect();
        let extra: Vec<&String> = shown.difference(keys).collect();
        if !missing.is_empty() {
            problems.push(format!("{type_name}: no example shows the field(s) {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{type_name}: the examples show field(s) {extra:?} that the type does not have"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "PROTOCOL.md does not match the wire types; update PROTOCOL.md:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_error_code_is_documented() {
    let codes = all_error_codes();
    let indices: BTreeSet<usize> = codes.iter().map(|c| error_code_index(*c)).collect();
    assert_eq!(indices.len(), codes.len(), "all_error_codes() must list every ErrorCode once");
    for code in codes {
        let name = code_name(code);
        assert!(
            DOC.contains(&format!("| `{name}` |")),
            "the error code `{name}` has no row in PROTOCOL.md's error table; update PROTOCOL.md"
        );
    }
}

#[test]
fn document_states_the_version_and_the_unknown_sentinel() {
    assert!(
        DOC.starts_with(&format!("# The skyform provider protocol, version {PROTOCOL_VERSION}\n")),
        "PROTOCOL.md's title must name protocol version {PROTOCOL_VERSION}; update PROTOCOL.md"
    );
    assert!(
        DOC.contains(&format!("\"{UNKNOWN}\"")),
        "PROTOCOL.md must show the UNKNOWN sentinel; update PROTOCOL.md"
    );
    assert!(
        DOC.contains(&format!("- **{PROTOCOL_VERSION}**:")),
        "PROTOCOL.md's changelog has no entry for version {PROTOCOL_VERSION}; update PROTOCOL.md"
    );
    let handshake = examples().into_iter().find(|e| e.kind == "handshake-response").unwrap();
    assert_eq!(handshake.value["result"]["protocol_version"], json!(PROTOCOL_VERSION));
}

#[test]
fn wire_format_hash_is_pinned() {
    let rendering = canonical_rendering();
    let hash = fnv1a(rendering.as_bytes());
    assert_eq!(
        hash,
        WIRE_HASH,
        "the wire format changed:\n{rendering}\nupdate PROTOCOL.md (every message and field that changed, and its \
         changelog; bump PROTOCOL_VERSION if the change is not backward compatible), then set WIRE_HASH in \
         {} to {hash:#018x}",
        file!()
    );
}
