//! The manifest: what a program declares (format v1, documented in `sdk/MANIFEST.md`).
//!
//! Parsing checks the shape; [`Manifest::validate`] checks what can be checked without any
//! provider: unique names, references to declared resources, dependency cycles, well-formed
//! markers. Unknown providers, types and outputs are checked by the planner after the
//! provider handshakes, still before anything is applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::value;

pub const MANIFEST_VERSION: u64 = 1;

/// How deeply arrays and objects may nest inside one value (a resource's inputs, a stack
/// output). The journal and the state file wrap a value in a few more levels, and every one of
/// them must stay readable by a JSON parser with a recursion limit (serde_json's is 128).
pub const MAX_VALUE_DEPTH: usize = 64;

/// The largest integer magnitude a value may hold: 2^53, what every JSON implementation
/// carries exactly (RFC 7493). Larger integers are refused rather than silently rounded;
/// write them as strings.
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest: u64,
    /// Required: a manifest names the project and stack it was made for, so that one printed
    /// for another stack is refused instead of planned.
    pub project: String,
    pub stack: String,
    /// Required: a manifest without `resources` is a broken program, not an empty stack
    /// (taking it as empty would delete everything).
    pub resources: Vec<ResourceDecl>,
    #[serde(default)]
    pub components: Vec<ComponentDecl>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub inputs: Value,
    #[serde(default)]
    pub options: ResourceOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Resource options. They are recorded in state with the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_on_changes: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_before_replace: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_on_delete: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ResourceOptions {
    pub fn is_default(&self) -> bool {
        *self == ResourceOptions::default()
    }
}

/// Parses a manifest, saying where the JSON is malformed.
pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
    // The version first, without building the document; then the body.
    #[derive(Deserialize)]
    struct Version {
        manifest: Option<Value>,
    }
    let version: Version = serde_json::from_str(text).map_err(|e| {
        Error::user(
            format!("{origin} did not produce valid JSON: {e}"),
            "a program must print exactly one JSON manifest on stdout (logs belong on stderr); try `skyform synth`",
        )
    })?;
    match version.manifest {
        Some(Value::Number(n)) if n.as_u64() == Some(MANIFEST_VERSION) => {}
        Some(Value::Number(n)) => {
            return Err(Error::user(
                format!(
                    "{origin} produced manifest format {n}; this skyform reads format {MANIFEST_VERSION}"
                ),
                "upgrade skyform, or build the program against a matching skyform-sdk",
            ));
        }
        _ => {
            return Err(Error::user(
                format!("{origin} produced JSON without `\"manifest\": {MANIFEST_VERSION}`"),
                "a manifest starts with {\"manifest\": 1, \"resources\": [...]}; see sdk/MANIFEST.md",
            ));
        }
    }
    // The fast path first; only a manifest that fails is parsed again, tracking the path of
    // what failed (a 10,000-resource manifest is parsed on every preview).
    serde_json::from_str(text).or_else(|_| {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            Error::user(
                format!("the manifest from {origin} is not valid: {}: {inner}", culprit(text, &path)),
                "see sdk/MANIFEST.md for the format",
            )
        })
    })
}

/// Names what a deserialization error is about: the resource (by name, when it has one) and
/// the field, from a path like `resources[3].options.protect`.
fn culprit(text: &str, path: &str) -> String {
    let Some(rest) = path.strip_prefix("resources[") else {
        return match path {
            "." | "" => "the manifest object".to_string(),
            p => format!("field `{p}`"),
        };
    };
    let (index, field) = rest.split_once(']').unwrap_or((rest, ""));
    let field = field.trim_start_matches('.');
    let name = index.parse::<usize>().ok().and_then(|i| {
        let v: Value = serde_json::from_str(text).ok()?;
        v.get("resources")?.get(i)?.get("name")?.as_str().map(str::to_string)
    });
    let who = match name {
        Some(n) => format!("resource `{n}` (resources[{index}])"),
        None => format!("resources[{index}]"),
    };
    if field.is_empty() { who } else { format!("{who}, field `{field}`") }
}

/// The validated dependency graph of a manifest. Edges go from a dependency to its dependent.
pub struct Graph {
    pub graph: DiGraph<usize, ()>,
    pub nodes: Vec<NodeIndex>,
    pub index: HashMap<String, usize>,
    /// For each resource, the names it depends on (references and `depends_on`), sorted.
    pub deps: Vec<Vec<String>>,
}

impl Manifest {
    /// Checks names, references, markers and cycles, and returns the dependency graph.
    pub fn validate(&self) -> Result<Graph> {
        let mut errors = Vec::new();
        let mut index = HashMap::new();
        for (i, r) in self.resources.iter().enumerate() {
            if !valid_resource_name(&r.name) {
                errors.push(format!(
                    "resource name `{}` is not valid: use letters, digits and `-_./:`, at most 200 characters",
                    r.name
                ));
            }
            if !valid_type_token(&r.type_) {
                errors.push(format!(
                    "resource `{}` has type `{}`, which is not a type token like `provider:Type`",
                    r.name, r.type_
                ));
            }
            if index.insert(r.name.clone(), i).is_some() {
                errors.push(format!("two resources are named `{}`; names must be unique in a stack", r.name));
            }
        }
        let components: BTreeSet<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        check_components(&self.components, &components, &mut errors);
        let mut deps = Vec::with_capacity(self.resources.len());
        for r in &self.resources {
            value::check_markers(&r.inputs, &format!("resource `{}` inputs", r.name), &mut errors);
            check_value(&r.inputs, &format!("resource `{}`: inputs", r.name), &mut errors);
            if !r.inputs.is_object() {
                errors.push(format!("resource `{}`: inputs must be a JSON object", r.name));
            }
            let mut refs = Vec::new();
            value::references(&r.inputs, &mut refs);
            let mut mine = BTreeSet::new();
            for reference in refs {
                if !index.contains_key(&reference.resource) {
                    errors.push(format!(
                        "resource `{}` refers to `{}`, which is not declared{}",
                        r.name,
                        reference.resource,
                        suggestion(&reference.resource, index.keys())
                    ));
                } else if reference.resource == r.name {
                    errors.push(format!("resource `{}` refers to its own outputs", r.name));
                } else {
                    mine.insert(reference.resource);
                }
            }
            for d in &r.options.depends_on {
                if !index.contains_key(d) {
                    errors.push(format!(
                        "resource `{}` depends_on `{d}`, which is not declared{}",
                        r.name,
                        suggestion(d, index.keys())
                    ));
                } else if d == &r.name {
                    errors.push(format!("resource `{}` depends on itself", r.name));
                } else {
                    mine.insert(d.clone());
                }
            }
            if let Some(p) = &r.parent
                && !components.contains(p.as_str())
            {
                errors.push(format!(
                    "resource `{}` has parent `{p}`, which is not a declared component",
                    r.name
                ));
            }
            deps.push(mine.into_iter().collect::<Vec<_>>());
        }
        for (name, v) in &self.outputs {
            value::check_markers(v, &format!("output `{name}`"), &mut errors);
            check_value(v, &format!("stack output `{name}`"), &mut errors);
            let mut refs = Vec::new();
            value::references(v, &mut refs);
            for reference in refs {
                if !index.contains_key(&reference.resource) {
                    errors.push(format!(
                        "stack output `{name}` refers to `{}`, which is not declared{}",
                        reference.resource,
                        suggestion(&reference.resource, index.keys())
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }

        let mut graph = DiGraph::with_capacity(self.resources.len(), self.resources.len());
        let nodes: Vec<NodeIndex> = (0..self.resources.len()).map(|i| graph.add_node(i)).collect();
        for (i, ds) in deps.iter().enumerate() {
            for d in ds {
                graph.add_edge(nodes[index[d]], nodes[i], ());
            }
        }
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<&str> = cycle.iter().map(|&n| self.resources[graph[n]].name.as_str()).collect();
            return Err(Error::user(
                format!(
                    "the resources depend on each other in a cycle: {} → {}",
                    names.join(" → "),
                    names[0]
                ),
                "break the cycle: a resource cannot (even indirectly) depend on itself",
            ));
        }
        Ok(Graph { graph, nodes, index, deps })
    }
}

/// What every value must be to cross the protocol, the journal and the state file unchanged:
/// nested at most [`MAX_VALUE_DEPTH`] levels, integers within ±2^53.
fn check_value(v: &Value, what: &str, errors: &mut Vec<String>) {
    fn walk(v: &Value, depth: usize, path: &mut String, what: &str, errors: &mut Vec<String>) -> bool {
        let here = |path: &str| if path.is_empty() { what.to_string() } else { format!("{what}{path}") };
        match v {
            Value::Number(n) => {
                let too_big = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => u > MAX_SAFE_INTEGER,
                    (None, Some(i), _) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                    // A float that is an integer this large was an integer literal beyond u64
                    // or i64 (or one written with an exponent): it cannot be carried exactly.
                    (None, None, Some(f)) => f.fract() == 0.0 && f.abs() > MAX_SAFE_INTEGER as f64,
                    _ => false,
                };
                if too_big {
                    errors.push(format!(
                        "{}: the number {n} is beyond ±2^53 ({MAX_SAFE_INTEGER}) and would not be carried exactly; write it as a string",
                        here(path)
                    ));
                }
                true
            }
            Value::Array(_) | Value::Object(_) if depth >= MAX_VALUE_DEPTH => {
                errors.push(format!(
                    "{}: nested more than {MAX_VALUE_DEPTH} levels deep (arrays and objects); flatten the value or pass it as a JSON string",
                    here(path)
                ));
                false
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    let _ = std::fmt::Write::write_fmt(path, format_args!("[{i}]"));
                    let go_on = walk(item, depth + 1, path, what, errors);
                    path.truncate(len);
                    if !go_on {
                        return false;
                    }
                }
                true
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    let go_on = walk(item, depth + 1, path, what, errors);
                    path.truncate(len);
                    if !go_on {
                        return false;
                    }
                }
                true
            }
            _ => true,
        }
    }
    walk(v, 0, &mut String::new(), what, errors);
}

fn invalid(errors: Vec<String>) -> Error {
    let n = errors.len();
    let mut msg = format!("the manifest is not valid ({n} problem{}):", if n == 1 { "" } else { "s" });
    for e in errors.iter().take(20) {
        msg.push_str("\n  - ");
        msg.push_str(e);
    }
    if n > 20 {
        msg.push_str(&format!("\n  … and {} more", n - 20));
    }
    Error::user(msg, "fix the program and run the command again")
}

/// A cycle as a list of nodes in dependency order, if there is one.
fn find_cycle(graph: &DiGraph<usize, ()>) -> Option<Vec<NodeIndex>> {
    for scc in petgraph::algo::tarjan_scc(graph) {
        if scc.len() > 1 {
            // Walk the cycle inside the component, starting from its smallest index.
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *members.iter().next()?;
            let mut path = vec![start];
            let mut seen = BTreeSet::from([start]);
            let mut cur = start;
            loop {
                let next = graph.neighbors(cur).filter(|n| members.contains(n)).min()?;
                if next == start || seen.contains(&next) {
                    if next != start {
                        let pos = path.iter().position(|&p| p == next)?;
                        path.drain(..pos);
                    }
                    return Some(path);
                }
                seen.insert(next);
                path.push(next);
                cur = next;
            }
        }
        if let [n] = scc[..]
            && graph.contains_edge(n, n)
        {
            return Some(vec![n]);
        }
    }
    None
}

/// Components: valid, unique names, type tokens, and parents that are declared components.
fn check_components(decls: &[ComponentDecl], names: &BTreeSet<&str>, errors: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    for c in decls {
        if !valid_resource_name(&c.name) {
            errors.push(format!(
                "component name `{}` is not valid: use letters, digits and `-_./:`, at most 200 characters",
                c.name
            ));
        }
        if !seen.insert(c.name.as_str()) {
            errors.push(format!("two components are named `{}`; names must be unique in a stack", c.name));
        }
        if !valid_type_token(&c.type_) {
            errors.push(format!(
                "component `{}` has type `{}`, which is not a type token like `provider:Type`",
                c.name, c.type_
            ));
        }
        if let Some(p) = &c.parent
            && !names.contains(p.as_str())
        {
            errors
                .push(format!("component `{}` has parent `{p}`, which is not a declared component", c.name));
        }
    }
}

/// `provider:Type` or `provider:module:Type` (MANIFEST.md): the provider in lowercase letters,
/// digits and `-`, starting with a letter; the other parts letters, digits and `_.-`.
pub fn valid_type_token(token: &str) -> bool {
    let mut parts = token.split(':');
    let provider = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    provider.starts_with(|c: char| c.is_ascii_lowercase())
        && provider.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && (1..=2).contains(&rest.len())
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
}

pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
}

/// ", did you mean `x`?" when a declared name is close.
fn suggestion<'a>(wanted: &str, names: impl Iterator<Item = &'a String>) -> String {
    let best = names.map(|n| (edit_distance(wanted, n), n)).filter(|(d, _)| *d <= 2).min();
    match best {
        Some((_, n)) => format!("; did you mean `{n}`?"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(resources: serde_json::Value) -> Manifest {
        parse(
            &serde_json::json!({"manifest": 1, "project": "p", "stack": "s", "resources": resources})
                .to_string(),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn reports_a_cycle_by_name() {
        let m = manifest(serde_json::json!([
            {"name": "a", "type": "core:Data", "inputs": {"v": {"$ref": "c", "output": "value"}}},
            {"name": "b", "type": "core:Data", "inputs": {"v": {"$ref": "a", "output": "value"}}},
            {"name": "c", "type": "core:Data", "inputs": {}, "options": {"depends_on": ["b"]}},
        ]));
        let err = m.validate().err().unwrap();
        assert!(err.message.contains("a → b → c → a"), "{}", err.message);
    }

    #[test]
    fn reports_duplicates_and_dangling_references() {
        let m = manifest(serde_json::json!([
            {"name": "a", "type": "core:Data", "inputs": {}},
            {"name": "a", "type": "core:Data", "inputs": {}},
            {"name": "b", "type": "core:Data", "inputs": {"v": {"$ref": "aa", "output": "value"}}},
        ]));
        let err = m.validate().err().unwrap();
        assert!(err.message.contains("two resources are named `a`"), "{}", err.message);
        assert!(err.message.contains("did you mean `a`?"), "{}", err.message);
    }

    #[test]
    fn type_tokens_follow_the_manifest_format() {
        for ok in ["core:Data", "aws:sqs:Queue", "my-prov2:x.y_z-w"] {
            assert!(valid_type_token(ok), "{ok}");
        }
        for bad in ["Core:Data", "core", "core:", ":Data", "1x:Data", "a:b:c:d", "core:Da ta", "co_re:Data"] {
            assert!(!valid_type_token(bad), "{bad}");
        }
        let m = manifest(serde_json::json!([{"name": "a", "type": "Core:Data", "inputs": {}}]));
        let err = m.validate().err().unwrap();
        assert!(err.message.contains("resource `a` has type `Core:Data`"), "{}", err.message);
    }

    #[test]
    fn reports_duplicate_components_and_undeclared_parents() {
        let m = parse(
            &serde_json::json!({"manifest": 1, "project": "p", "stack": "s",
            "resources": [{"name": "a", "type": "core:Data", "inputs": {}, "parent": "c"}],
            "components": [
                {"name": "c", "type": "skyform:Function"},
                {"name": "c", "type": "skyform:Function"},
                {"name": "d", "type": "Skyform", "parent": "nope"},
            ]})
            .to_string(),
            "test",
        )
        .unwrap();
        let err = m.validate().err().unwrap();
        assert!(err.message.contains("two components are named `c`"), "{}", err.message);
        assert!(err.message.contains("component `d` has type `Skyform`"), "{}", err.message);
        assert!(err.message.contains("component `d` has parent `nope`"), "{}", err.message);
    }

    #[test]
    fn rejects_other_formats_and_bad_json() {
        assert!(parse("{", "prog").unwrap_err().message.contains("did not produce valid JSON"));
        assert!(parse(r#"{"manifest": 9}"#, "prog").unwrap_err().message.contains("format 9"));
    }
}
