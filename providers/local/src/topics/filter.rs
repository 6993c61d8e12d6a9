//! SNS subscription filter policies: parsed once when a subscription is created or changed (so
//! a bad policy is refused up front with SNS's `InvalidParameter`), then evaluated against
//! every published message.
//!
//! The subset served (SNS's semantics, AWS's JSON syntax):
//!
//! - a policy is an object; its keys are ANDed, the conditions in a key's array are ORed;
//!   `"$or": [policy, policy, ...]` ORs whole sub-policies;
//! - a condition is an exact string (`"red"`), an exact number (`5`), `null` (body scope),
//!   `{"prefix": "x"}`, `{"suffix": "x"}`, `{"equals-ignore-case": "x"}`,
//!   `{"anything-but": "x" | 5 | ["a", 1] | {"prefix": "x"} | {"suffix": "x"}}`,
//!   `{"numeric": [">", 0, "<=", 5]}` (`=`, `<`, `<=`, `>`, `>=`, at most one lower and one
//!   upper bound) and `{"exists": true | false}`;
//! - scope `MessageAttributes` (the default): a key names a message attribute. `String`
//!   attributes meet string conditions, `Number` attributes meet numeric ones, each element of a
//!   `String.Array` attribute (a JSON array) is tried in turn; `Binary` attributes are ignored,
//!   as SNS ignores them;
//! - scope `MessageBody`: the message must be a JSON object; keys nest like the body, arrays in
//!   the body are searched element by element. A body that is not JSON matches nothing.
//!
//! Not served (refused with a message saying so): `cidr`, `wildcard`, `anything-but` with
//! `wildcard`. Limits as SNS: at most 150 combinations of values, 256 KiB of policy text.

use std::collections::BTreeMap;

use serde_json::Value;

use super::MessageAttribute;

/// Where a policy looks: SNS's `FilterPolicyScope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s {
            "MessageAttributes" => Ok(Scope::MessageAttributes),
            "MessageBody" => Ok(Scope::MessageBody),
            other => Err(format!(
                "Invalid parameter: Attributes Reason: FilterPolicyScope: Invalid value [{other}]. \
                 Please use either MessageBody or MessageAttributes"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

/// A parsed filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Every key must match (a key's value is conditions or, in body scope, a nested node).
    And(Vec<(String, KeyMatch)>, Vec<Vec<Node>>),
}

#[derive(Debug, Clone, PartialEq)]
enum KeyMatch {
    AnyOf(Vec<Cond>),
    Nested(Node),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Str(String),
    Num(f64),
    Null,
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut { strs: Vec<String>, nums: Vec<f64> },
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric { lower: Option<(f64, bool)>, upper: Option<(f64, bool)> },
    Exists(bool),
}

/// One value a condition is tried against.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Num(f64),
    Null,
    /// Present, but nothing a condition can compare (an object, a bool, ...): meets `exists`.
    Other,
}

const MAX_COMBINATIONS: usize = 150;
const MAX_NUMBER: f64 = 1e9;

fn invalid(reason: impl std::fmt::Display) -> String {
    format!("Invalid parameter: FilterPolicy: {reason}")
}

impl FilterPolicy {
    /// Parses a policy's JSON text, refusing what SNS refuses (and what the local cloud does not
    /// serve) with SNS's `InvalidParameter` wording.
    pub fn parse(text: &str, scope: Scope) -> Result<FilterPolicy, String> {
        if text.len() > 256 * 1024 {
            return Err(invalid("Filter policy is too long"));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("failed to parse JSON: {e}")))?;
        let root = parse_node(&v, scope, 0)?;
        let n = combinations(&root);
        if n > MAX_COMBINATIONS {
            return Err(invalid(format!(
                "Filter policy can not have more than {MAX_COMBINATIONS} combinations (it has {n})"
            )));
        }
        Ok(FilterPolicy { root })
    }

    /// Does a message with these attributes match (scope `MessageAttributes`)?
    pub fn matches_attributes(&self, attributes: &BTreeMap<String, MessageAttribute>) -> bool {
        let lookup = |key: &str| -> Vec<OwnedVal> {
            match attributes.get(key) {
                None => Vec::new(),
                Some(a) => attribute_values(a),
            }
        };
        eval_flat(&self.root, &lookup)
    }

    /// Does this message body match (scope `MessageBody`)?
    pub fn matches_body(&self, message: &str) -> bool {
        match serde_json::from_str::<Value>(message) {
            Ok(v @ Value::Object(_)) => eval_body(&self.root, &v),
            _ => false,
        }
    }
}

fn parse_node(v: &Value, scope: Scope, depth: usize) -> Result<Node, String> {
    let Value::Object(map) = v else {
        return Err(invalid("a filter policy must be a JSON object"));
    };
    if map.is_empty() {
        return Err(invalid("a filter policy (or a nested object in it) must not be empty"));
    }
    if depth > 5 {
        return Err(invalid("Filter policy is too deeply nested"));
    }
    let mut keys = Vec::new();
    let mut ors = Vec::new();
    for (k, val) in map {
        if k == "$or" {
            let Value::Array(alts) = val else {
                return Err(invalid("`$or` must be an array of at least two policies"));
            };
            if alts.len() < 2 {
                return Err(invalid("`$or` must be an array of at least two policies"));
            }
            ors.push(alts.iter().map(|a| parse_node(a, scope, depth + 1)).collect::<Result<_, _>>()?);
            continue;
        }
        let m = match val {
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err(invalid(format!("the conditions of `{k}` must not be empty")));
                }
                KeyMatch::AnyOf(conds.iter().map(|c| parse_cond(k, c)).collect::<Result<_, _>>()?)
            }
            Value::Object(_) if scope == Scope::MessageBody => {
                KeyMatch::Nested(parse_node(val, scope, depth + 1)?)
            }
            other => {
                return Err(invalid(format!(
                    "the value of `{k}` must be an array of conditions{}, got {other}",
                    if scope == Scope::MessageBody { " or a nested object" } else { "" }
                )));
            }
        };
        keys.push((k.clone(), m));
    }
    Ok(Node::And(keys, ors))
}

fn number(k: &str, v: &Value) -> Result<f64, String> {
    let n = v.as_f64().ok_or_else(|| invalid(format!("`{k}`: expected a number, got {v}")))?;
    if n.abs() > MAX_NUMBER {
        return Err(invalid(format!("`{k}`: numbers must be between -1e9 and 1e9, got {n}")));
    }
    Ok(n)
}

fn parse_cond(k: &str, c: &Value) -> Result<Cond, String> {
    Ok(match c {
        Value::String(s) => Cond::Str(s.clone()),
        Value::Number(_) => Cond::Num(number(k, c)?),
        Value::Null => Cond::Null,
        Value::Bool(_) => {
            return Err(invalid(format!(
                "`{k}`: a condition can not be a boolean; match strings or numbers"
            )));
        }
        Value::Array(_) => return Err(invalid(format!("`{k}`: conditions can not nest arrays"))),
        Value::Object(o) => {
            if o.len() != 1 {
                return Err(invalid(format!("`{k}`: a condition object has exactly one operator, got {c}")));
            }
            let (op, arg) = o.iter().next().expect("one entry");
            let string_arg = |what: &str| -> Result<String, String> {
                match arg {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(invalid(format!("`{k}`: `{what}` takes a non-empty string, got {arg}"))),
                }
            };
            match op.as_str() {
                "prefix" => Cond::Prefix(string_arg("prefix")?),
                "suffix" => Cond::Suffix(string_arg("suffix")?),
                "equals-ignore-case" => Cond::EqualsIgnoreCase(string_arg("equals-ignore-case")?),
                "exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(invalid(format!("`{k}`: `exists` takes true or false, got {arg}"))),
                },
                "anything-but" => parse_anything_but(k, arg)?,
                "numeric" => parse_numeric(k, arg)?,
                "cidr" | "wildcard" => {
                    return Err(invalid(format!(
                        "`{k}`: the `{op}` operator is not served by the local cloud; \
                         use prefix, suffix, anything-but, numeric or exists"
                    )));
                }
                other => return Err(invalid(format!("`{k}`: unrecognized operator `{other}`"))),
            }
        }
    })
}

fn parse_anything_but(k: &str, arg: &Value) -> Result<Cond, String> {
    let mut strs = Vec::new();
    let mut nums = Vec::new();
    let mut push = |v: &Value| -> Result<(), String> {
        match v {
            Value::String(s) => strs.push(s.clone()),
            Value::Number(_) => nums.push(number(k, v)?),
            _ => return Err(invalid(format!("`{k}`: `anything-but` takes strings or numbers, got {v}"))),
        }
        Ok(())
    };
    match arg {
        Value::Array(items) if !items.is_empty() => {
            for i in items {
                push(i)?;
            }
        }
        Value::Object(o) if o.len() == 1 => {
            let (op, v) = o.iter().next().expect("one entry");
            let s = match v {
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => return Err(invalid(format!("`{k}`: `anything-but` `{op}` takes a non-empty string"))),
            };
            return match op.as_str() {
                "prefix" => Ok(Cond::AnythingButPrefix(s)),
                "suffix" => Ok(Cond::AnythingButSuffix(s)),
                _ => Err(invalid(format!(
                    "`{k}`: `anything-but` takes a value, a list, {{\"prefix\": ..}} or {{\"suffix\": ..}}; \
                     `{op}` is not served"
                ))),
            };
        }
        Value::String(_) | Value::Number(_) => push(arg)?,
        _ => return Err(invalid(format!("`{k}`: bad `anything-but` argument {arg}"))),
    }
    Ok(Cond::AnythingBut { strs, nums })
}

fn parse_numeric(k: &str, arg: &Value) -> Result<Cond, String> {
    let bad = || {
        invalid(format!(
            "`{k}`: `numeric` takes [\"=\", N] or up to one lower and one upper bound, \
             e.g. [\">\", 0, \"<=\", 5]; got {arg}"
        ))
    };
    let Value::Array(items) = arg else { return Err(bad()) };
    if items.len() != 2 && items.len() != 4 {
        return Err(bad());
    }
    let mut lower = None;
    let mut upper = None;
    for pair in items.chunks(2) {
        let op = pair[0].as_str().ok_or_else(bad)?;
        let n = number(k, &pair[1])?;
        match op {
            "=" if items.len() == 2 => {
                lower = Some((n, true));
                upper = Some((n, true));
            }
            ">" | ">=" if lower.is_none() => lower = Some((n, op == ">=")),
            "<" | "<=" if upper.is_none() => upper = Some((n, op == "<=")),
            _ => return Err(bad()),
        }
    }
    if let (Some((lo, _)), Some((hi, _))) = (lower, upper)
        && lo > hi
    {
        return Err(invalid(format!("`{k}`: the range {arg} is empty (lower bound above upper)")));
    }
    Ok(Cond::Numeric { lower, upper })
}

fn combinations(n: &Node) -> usize {
    let Node::And(keys, ors) = n;
    let mut total: usize = 1;
    for (_, m) in keys {
        let c = match m {
            KeyMatch::AnyOf(conds) => conds.len(),
            KeyMatch::Nested(n) => combinations(n),
        };
        total = total.saturating_mul(c.max(1));
    }
    for alts in ors {
        total = total.saturating_mul(alts.iter().map(combinations).sum::<usize>().max(1));
    }
    total
}

/// An attribute value or body leaf, owned (attribute arrays are parsed per message).
#[derive(Debug, Clone)]
enum OwnedVal {
    Str(String),
    Num(f64),
    Null,
    Other,
}

impl OwnedVal {
    fn borrow(&self) -> Val<'_> {
        match self {
            OwnedVal::Str(s) => Val::Str(s),
            OwnedVal::Num(n) => Val::Num(*n),
            OwnedVal::Null => Val::Null,
            OwnedVal::Other => Val::Other,
        }
    }
}

fn json_leaf(v: &Value) -> OwnedVal {
    match v {
        Value::String(s) => OwnedVal::Str(s.clone()),
        Value::Number(n) => n.as_f64().map(OwnedVal::Num).unwrap_or(OwnedVal::Other),
        Value::Null => OwnedVal::Null,
        _ => OwnedVal::Other,
    }
}

fn attribute_values(a: &MessageAttribute) -> Vec<OwnedVal> {
    let base = a.data_type.split('.').next().unwrap_or("");
    let s = a.string_value.as_deref();
    match (base, a.data_type.as_str()) {
        (_, "String.Array") => match s.map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Array(items))) => items.iter().map(json_leaf).collect(),
            // SNS refuses a String.Array that is not a JSON array at publish.
            _ => vec![OwnedVal::Other],
        },
        ("String", _) => s.map(|s| vec![OwnedVal::Str(s.to_string())]).unwrap_or_default(),
        ("Number", _) => match s.and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => vec![OwnedVal::Num(n)],
            None => vec![OwnedVal::Other],
        },
        // Binary attributes are ignored by filter policies.
        _ => Vec::new(),
    }
}

fn eval_flat(n: &Node, lookup: &dyn Fn(&str) -> Vec<OwnedVal>) -> bool {
    let Node::And(keys, ors) = n;
    for (k, m) in keys {
        let ok = match m {
            KeyMatch::AnyOf(conds) => key_matches(conds, &lookup(k)),
            // Attribute scope never parses nested nodes.
            KeyMatch::Nested(_) => false,
        };
        if !ok {
            return false;
        }
    }
    ors.iter().all(|alts| alts.iter().any(|a| eval_flat(a, lookup)))
}

fn eval_body(n: &Node, obj: &Value) -> bool {
    let Node::And(keys, ors) = n;
    for (k, m) in keys {
        // Arrays in the body are searched element by element.
        let mut found = Vec::new();
        collect(obj, k, &mut found);
        let ok = match m {
            KeyMatch::AnyOf(conds) => {
                let mut leaves = Vec::new();
                for v in &found {
                    flatten(v, &mut leaves);
                }
                key_matches(conds, &leaves)
            }
            KeyMatch::Nested(inner) => found.iter().any(|v| {
                let mut objs = Vec::new();
                objects(v, &mut objs);
                objs.iter().any(|o| eval_body(inner, o))
            }),
        };
        if !ok {
            return false;
        }
    }
    ors.iter().all(|alts| alts.iter().any(|a| eval_body(a, obj)))
}

fn collect<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(key) {
                out.push(x);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, key, out)),
        _ => {}
    }
}

fn flatten(v: &Value, out: &mut Vec<OwnedVal>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(json_leaf(other)),
    }
}

fn objects<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(_) => out.push(v),
        Value::Array(items) => items.iter().for_each(|i| objects(i, out)),
        _ => {}
    }
}

fn key_matches(conds: &[Cond], values: &[OwnedVal]) -> bool {
    conds.iter().any(|c| match c {
        Cond::Exists(want) => values.is_empty() != *want,
        c => values.iter().any(|v| cond_matches(c, v.borrow())),
    })
}

fn num_eq(a: f64, b: f64) -> bool {
    // SNS compares numbers to five decimal places.
    (a - b).abs() < 5e-6
}

fn cond_matches(c: &Cond, v: Val<'_>) -> bool {
    match (c, v) {
        (Cond::Str(want), Val::Str(s)) => want == s,
        (Cond::Num(want), Val::Num(n)) => num_eq(*want, n),
        (Cond::Null, Val::Null) => true,
        (Cond::Prefix(p), Val::Str(s)) => s.starts_with(p.as_str()),
        (Cond::Suffix(p), Val::Str(s)) => s.ends_with(p.as_str()),
        (Cond::EqualsIgnoreCase(p), Val::Str(s)) => p.to_lowercase() == s.to_lowercase(),
        (Cond::AnythingBut { strs, .. }, Val::Str(s)) => !strs.iter().any(|x| x == s),
        (Cond::AnythingBut { nums, .. }, Val::Num(n)) => !nums.iter().any(|x| num_eq(*x, n)),
        (Cond::AnythingButPrefix(p), Val::Str(s)) => !s.starts_with(p.as_str()),
        (Cond::AnythingButSuffix(p), Val::Str(s)) => !s.ends_with(p.as_str()),
        (Cond::Numeric { lower, upper }, Val::Num(n)) => {
            lower.is_none_or(
                |(lo, incl)| if incl { n >= lo || num_eq(n, lo) } else { n > lo && !num_eq(n, lo) },
            ) && upper.is_none_or(
                |(hi, incl)| if incl { n <= hi || num_eq(n, hi) } else { n < hi && !num_eq(n, hi) },
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str, &str)]) -> BTreeMap<String, MessageAttribute> {
        list.iter()
            .map(|(k, t, v)| {
                (
                    k.to_string(),
                    MessageAttribute {
                        data_type: t.to_string(),
                        string_value: Some(v.to_string()),
                        binary_value: None,
                    },
                )
            })
            .collect()
    }

    fn attr_policy(p: &str) -> FilterPolicy {
        FilterPolicy::parse(p, Scope::MessageAttributes).unwrap()
    }

    #[test]
    fn exact_strings_or_within_a_key_and_across_keys() {
        let p = attr_policy(r#"{"color": ["red", "blue"], "size": ["L"]}"#);
        assert!(p.matches_attributes(&attrs(&[("color", "String", "red"), ("size", "String", "L")])));
        assert!(p.matches_attributes(&attrs(&[("color", "String", "blue"), ("size", "String", "L")])));
        assert!(!p.matches_attributes(&attrs(&[("color", "String", "green"), ("size", "String", "L")])));
        assert!(!p.matches_attributes(&attrs(&[("color", "String", "red")])));
        assert!(!p.matches_attributes(&BTreeMap::new()));
    }

    #[test]
    fn prefix_suffix_ignore_case() {
        let p =
            attr_policy(r#"{"k": [{"prefix": "ord-"}, {"suffix": ".jpg"}, {"equals-ignore-case": "YES"}]}"#);
        for ok in ["ord-1", "a.jpg", "yes", "Yes"] {
            assert!(p.matches_attributes(&attrs(&[("k", "String", ok)])), "{ok}");
        }
        for no in ["or-1", "a.png", "no"] {
            assert!(!p.matches_attributes(&attrs(&[("k", "String", no)])), "{no}");
        }
    }

    #[test]
    fn anything_but_needs_the_attribute() {
        let p = attr_policy(r#"{"k": [{"anything-but": ["a", "b"]}]}"#);
        assert!(p.matches_attributes(&attrs(&[("k", "String", "c")])));
        assert!(!p.matches_attributes(&attrs(&[("k", "String", "a")])));
        assert!(!p.matches_attributes(&BTreeMap::new()));
        let p = attr_policy(r#"{"k": [{"anything-but": {"prefix": "tmp"}}]}"#);
        assert!(p.matches_attributes(&attrs(&[("k", "String", "real")])));
        assert!(!p.matches_attributes(&attrs(&[("k", "String", "tmp1")])));
        let p = attr_policy(r#"{"n": [{"anything-but": 5}]}"#);
        assert!(p.matches_attributes(&attrs(&[("n", "Number", "6")])));
        assert!(!p.matches_attributes(&attrs(&[("n", "Number", "5.0")])));
    }

    #[test]
    fn numeric_ranges_and_exact_numbers() {
        let p = attr_policy(r#"{"price": [{"numeric": [">", 0, "<=", 100]}]}"#);
        assert!(p.matches_attributes(&attrs(&[("price", "Number", "100")])));
        assert!(p.matches_attributes(&attrs(&[("price", "Number", "0.5")])));
        assert!(!p.matches_attributes(&attrs(&[("price", "Number", "0")])));
        assert!(!p.matches_attributes(&attrs(&[("price", "Number", "100.1")])));
        // A String attribute does not meet a numeric condition.
        assert!(!p.matches_attributes(&attrs(&[("price", "String", "50")])));
        let p = attr_policy(r#"{"n": [5, {"numeric": ["=", 7.5]}]}"#);
        assert!(p.matches_attributes(&attrs(&[("n", "Number", "5")])));
        assert!(p.matches_attributes(&attrs(&[("n", "Number", "7.50")])));
        assert!(!p.matches_attributes(&attrs(&[("n", "Number", "6")])));
        assert!(!p.matches_attributes(&attrs(&[("n", "String", "5")])));
    }

    #[test]
    fn exists_true_and_false() {
        let p = attr_policy(r#"{"k": [{"exists": true}]}"#);
        assert!(p.matches_attributes(&attrs(&[("k", "String", "x")])));
        assert!(!p.matches_attributes(&BTreeMap::new()));
        let p = attr_policy(r#"{"k": [{"exists": false}]}"#);
        assert!(!p.matches_attributes(&attrs(&[("k", "String", "x")])));
        assert!(p.matches_attributes(&attrs(&[("other", "String", "x")])));
    }

    #[test]
    fn string_arrays_match_any_element_and_binary_is_ignored() {
        let p = attr_policy(r#"{"tags": ["b"]}"#);
        assert!(p.matches_attributes(&attrs(&[("tags", "String.Array", r#"["a", "b", 3]"#)])));
        assert!(!p.matches_attributes(&attrs(&[("tags", "String.Array", r#"["a"]"#)])));
        let p = attr_policy(r#"{"tags": [3]}"#);
        assert!(p.matches_attributes(&attrs(&[("tags", "String.Array", r#"["a", 3]"#)])));
        let p = attr_policy(r#"{"bin": [{"exists": true}]}"#);
        let mut a = BTreeMap::new();
        a.insert(
            "bin".to_string(),
            MessageAttribute { data_type: "Binary".into(), string_value: None, binary_value: Some(vec![1]) },
        );
        assert!(!p.matches_attributes(&a));
    }

    #[test]
    fn or_of_policies() {
        let p = attr_policy(r#"{"a": ["1"], "$or": [{"b": ["x"]}, {"c": [{"exists": true}]}]}"#);
        assert!(p.matches_attributes(&attrs(&[("a", "String", "1"), ("b", "String", "x")])));
        assert!(p.matches_attributes(&attrs(&[("a", "String", "1"), ("c", "String", "z")])));
        assert!(!p.matches_attributes(&attrs(&[("a", "String", "1"), ("b", "String", "y")])));
        assert!(!p.matches_attributes(&attrs(&[("b", "String", "x")])));
    }

    #[test]
    fn body_scope_nests_and_searches_arrays() {
        let p = FilterPolicy::parse(
            r#"{"order": {"status": ["paid"], "total": [{"numeric": [">=", 10]}]}, "tags": ["vip"]}"#,
            Scope::MessageBody,
        )
        .unwrap();
        assert!(p.matches_body(r#"{"order": {"status": "paid", "total": 12}, "tags": ["new", "vip"]}"#));
        assert!(!p.matches_body(r#"{"order": {"status": "paid", "total": 9}, "tags": ["vip"]}"#));
        assert!(!p.matches_body(r#"{"order": {"status": "paid", "total": 12}}"#));
        assert!(!p.matches_body("not json"));
        assert!(!p.matches_body("[1]"));
        let p = FilterPolicy::parse(r#"{"items": {"sku": ["b"]}}"#, Scope::MessageBody).unwrap();
        assert!(p.matches_body(r#"{"items": [{"sku": "a"}, {"sku": "b"}]}"#));
        let p = FilterPolicy::parse(r#"{"gone": [null]}"#, Scope::MessageBody).unwrap();
        assert!(p.matches_body(r#"{"gone": null}"#));
        assert!(!p.matches_body(r#"{"gone": 1}"#));
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let cases = [
            ("not json", "failed to parse JSON"),
            ("[]", "must be a JSON object"),
            ("{}", "must not be empty"),
            (r#"{"k": "red"}"#, "must be an array of conditions"),
            (r#"{"k": {"a": ["b"]}}"#, "must be an array of conditions"),
            (r#"{"k": []}"#, "must not be empty"),
            (r#"{"k": [true]}"#, "boolean"),
            (r#"{"k": [{"prefix": 1}]}"#, "non-empty string"),
            (r#"{"k": [{"numeric": [">", "a"]}]}"#, "expected a number"),
            (r#"{"k": [{"numeric": [">", 5, "<", 1]}]}"#, "is empty"),
            (r#"{"k": [{"numeric": [">", 1, ">", 2]}]}"#, "numeric"),
            (r#"{"k": [{"numeric": ["=", 2e9]}]}"#, "between -1e9 and 1e9"),
            (r#"{"k": [{"cidr": "10.0.0.0/8"}]}"#, "not served by the local cloud"),
            (r#"{"k": [{"bogus": 1}]}"#, "unrecognized operator"),
            (r#"{"k": [{"exists": "yes"}]}"#, "true or false"),
            (r#"{"$or": [{"a": ["1"]}]}"#, "at least two"),
        ];
        for (p, want) in cases {
            let e = FilterPolicy::parse(p, Scope::MessageAttributes).unwrap_err();
            assert!(e.starts_with("Invalid parameter: FilterPolicy: "), "{p}: {e}");
            assert!(e.contains(want), "{p}: {e} (wanted {want})");
        }
        // 6 * 5 * 6 = 180 combinations > 150.
        let many =
            r#"{"a": ["1","2","3","4","5","6"], "b": ["1","2","3","4","5"], "c": ["1","2","3","4","5","6"]}"#;
        assert!(
            FilterPolicy::parse(many, Scope::MessageAttributes).unwrap_err().contains("150 combinations")
        );
        assert!(Scope::parse("Body").unwrap_err().contains("MessageBody or MessageAttributes"));
    }
}
