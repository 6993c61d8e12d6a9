//! DynamoDB's expression languages: condition and filter expressions, key conditions, update
//! expressions and projections, with `#name` / `:value` placeholders and document paths
//! (`a.b[2].c`). Parse errors and misuse are answered with DynamoDB's ValidationException
//! texts (`Invalid UpdateExpression: Syntax error; token: "...", near: "..."`), since code
//! that passes here should pass on AWS.
//!
//! Grammar (precedence from lowest): `OR`, `AND`, `NOT`, then a comparison (`= <> < <= > >=`),
//! `BETWEEN x AND y`, `IN (a, b, ...)`, a function (`attribute_exists(p)`,
//! `attribute_not_exists(p)`, `attribute_type(p, :t)`, `begins_with(p, v)`, `contains(p, v)`),
//! or a parenthesised condition. Operands are paths, values and `size(p)`. Update: clauses
//! `SET p = v[, ...]` (v: operand, `operand + operand`, `operand - operand`,
//! `if_not_exists(p, v)`, `list_append(a, b)`), `REMOVE p[, ...]`, `ADD p :v[, ...]`,
//! `DELETE p :v[, ...]`, each clause at most once.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use super::value::{AV, Item};

/// A ValidationException message.
pub type Err = String;

#[derive(Debug, Clone, PartialEq)]
pub enum Elem {
    Attr(String),
    Index(usize),
}

pub type Path = Vec<Elem>;

pub fn path_string(p: &Path) -> String {
    let mut s = String::new();
    for e in p {
        match e {
            Elem::Attr(a) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(a);
            }
            Elem::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[derive(Debug, Clone)]
pub enum Operand {
    Path(Path),
    Value(AV),
    Size(Path),
    IfNotExists(Path, Box<Operand>),
    ListAppend(Box<Operand>, Box<Operand>),
    Plus(Box<Operand>, Box<Operand>),
    Minus(Box<Operand>, Box<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Cond {
    Cmp(Cmp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// The parsed update expression.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub set: Vec<(Path, Operand)>,
    pub remove: Vec<Path>,
    pub add: Vec<(Path, Operand)>,
    pub delete: Vec<(Path, Operand)>,
}

impl Update {
    /// Every path the update writes.
    pub fn paths(&self) -> Vec<&Path> {
        self.set
            .iter()
            .map(|(p, _)| p)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|(p, _)| p))
            .chain(self.delete.iter().map(|(p, _)| p))
            .collect()
    }
}

/// The request's `ExpressionAttributeNames` / `Values`, and which of them were used (DynamoDB
/// refuses unused ones).
pub struct Placeholders<'a> {
    pub names: &'a HashMap<String, String>,
    pub values: &'a HashMap<String, AV>,
    pub used_names: HashSet<String>,
    pub used_values: HashSet<String>,
}

impl<'a> Placeholders<'a> {
    pub fn new(names: &'a HashMap<String, String>, values: &'a HashMap<String, AV>) -> Self {
        Placeholders { names, values, used_names: HashSet::new(), used_values: HashSet::new() }
    }

    /// After every expression is parsed: unused names or values are an error.
    pub fn check_unused(&self) -> Result<(), Err> {
        let mut unused: Vec<&String> = self.names.keys().filter(|k| !self.used_names.contains(*k)).collect();
        if !unused.is_empty() {
            unused.sort();
            return Err(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        let mut unused: Vec<&String> =
            self.values.keys().filter(|k| !self.used_values.contains(*k)).collect();
        if !unused.is_empty() {
            unused.sort();
            return Err(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }
}

fn reserved() -> &'static HashSet<&'static str> {
    static R: OnceLock<HashSet<&'static str>> = OnceLock::new();
    R.get_or_init(|| {
        include_str!("reserved_words.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect()
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Name(String),
    Value(String),
    Num(usize),
    Sym(&'static str),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Name(s) | Tok::Value(s) => s.clone(),
            Tok::Num(n) => n.to_string(),
            Tok::Sym(s) => s.to_string(),
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

fn lex(kind: &str, s: &str) -> Result<Vec<Tok>, Err> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = if i + 1 < b.len() { &s[i..i + 2] } else { "" };
        let sym2 = ["<>", "<=", ">="].into_iter().find(|t| *t == two);
        if let Some(t) = sym2 {
            out.push(Tok::Sym(t));
            i += 2;
            continue;
        }
        if let Some(t) =
            ["=", "<", ">", "(", ")", "[", "]", ",", ".", "+", "-"].into_iter().find(|t| t.as_bytes()[0] == c)
        {
            out.push(Tok::Sym(t));
            i += 1;
            continue;
        }
        if c == b'#' || c == b':' {
            let start = i;
            i += 1;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            if i == start + 1 {
                return Err(format!(
                    "Invalid {kind}: Syntax error; token: \"{}\", near: \"{}\"",
                    c as char,
                    &s[start..(start + 2).min(s.len())]
                ));
            }
            let t = s[start..i].to_string();
            out.push(if c == b'#' { Tok::Name(t) } else { Tok::Value(t) });
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Num(s[start..i].parse().unwrap_or(usize::MAX)));
            continue;
        }
        if word(c) {
            let start = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_string()));
            continue;
        }
        let ch = s[i..].chars().next().unwrap_or('?');
        return Err(format!("Invalid {kind}: Syntax error; token: \"{ch}\", near: \"{}\"", &s[i..]));
    }
    Ok(out)
}

struct Parser<'p, 'a> {
    kind: &'static str,
    toks: Vec<Tok>,
    pos: usize,
    ph: &'p mut Placeholders<'a>,
}

impl<'p, 'a> Parser<'p, 'a> {
    fn new(kind: &'static str, s: &str, ph: &'p mut Placeholders<'a>) -> Result<Self, Err> {
        if s.trim().is_empty() {
            return Err(format!("Invalid {kind}: The expression can not be empty;"));
        }
        Ok(Parser { kind, toks: lex(kind, s)?, pos: 0, ph })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn syntax(&self) -> Err {
        let tok = self.peek().map(Tok::text).unwrap_or_else(|| "<EOF>".into());
        let near: Vec<String> = self.toks[self.pos.saturating_sub(1)..(self.pos + 2).min(self.toks.len())]
            .iter()
            .map(Tok::text)
            .collect();
        format!("Invalid {}: Syntax error; token: \"{tok}\", near: \"{}\"", self.kind, near.join(" "))
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.peek() == Some(&Tok::Sym(leak(s))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), Err> {
        if self.eat_sym(s) { Ok(()) } else { Err(self.syntax()) }
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_kw(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn end(&self) -> Result<(), Err> {
        if self.pos < self.toks.len() { Err(self.syntax()) } else { Ok(()) }
    }

    fn name(&mut self) -> Result<String, Err> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) => {
                if reserved().contains(s.to_ascii_uppercase().as_str()) {
                    return Err(format!(
                        "Invalid {}: Attribute name is a reserved keyword; reserved keyword: {s}",
                        self.kind
                    ));
                }
                self.pos += 1;
                Ok(s)
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                match self.ph.names.get(&n) {
                    Some(v) => {
                        self.ph.used_names.insert(n);
                        Ok(v.clone())
                    }
                    None => Err(format!(
                        "Invalid {}: An expression attribute name used in the document path is not defined; attribute name: {n}",
                        self.kind
                    )),
                }
            }
            _ => Err(self.syntax()),
        }
    }

    fn path(&mut self) -> Result<Path, Err> {
        let mut p = vec![Elem::Attr(self.name()?)];
        loop {
            if self.eat_sym(".") {
                p.push(Elem::Attr(self.name()?));
            } else if self.eat_sym("[") {
                match self.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        self.pos += 1;
                        p.push(Elem::Index(n));
                    }
                    _ => return Err(self.syntax()),
                }
                self.expect_sym("]")?;
            } else {
                return Ok(p);
            }
        }
    }

    fn value(&mut self, v: &str) -> Result<AV, Err> {
        match self.ph.values.get(v) {
            Some(x) => {
                self.ph.used_values.insert(v.to_string());
                Ok(x.clone())
            }
            None => Err(format!(
                "Invalid {}: An expression attribute value used in expression is not defined; attribute value: {v}",
                self.kind
            )),
        }
    }

    fn is_call(&self, f: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(f)) && self.toks.get(self.pos + 1) == Some(&Tok::Sym("("))
    }

    /// An operand of a condition: path, value or `size(path)`.
    fn operand(&mut self) -> Result<Operand, Err> {
        match self.peek().cloned() {
            Some(Tok::Value(v)) => {
                self.pos += 1;
                Ok(Operand::Value(self.value(&v)?))
            }
            Some(Tok::Ident(f)) if self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) => {
                if f == "size" {
                    self.pos += 2;
                    let p = self.path()?;
                    self.expect_sym(")")?;
                    Ok(Operand::Size(p))
                } else if is_function(&f) {
                    Err(format!(
                        "Invalid {}: The function is not allowed to be used this way in an expression; function: {f}",
                        self.kind
                    ))
                } else {
                    Err(format!("Invalid {}: Invalid function name; function: {f}", self.kind))
                }
            }
            Some(Tok::Ident(_)) | Some(Tok::Name(_)) => Ok(Operand::Path(self.path()?)),
            _ => Err(self.syntax()),
        }
    }

    fn condition(&mut self) -> Result<Cond, Err> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, Err> {
        let mut left = self.not()?;
        while self.eat_kw("AND") {
            let right = self.not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, Err> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, Err> {
        if self.eat_sym("(") {
            let c = self.condition()?;
            self.expect_sym(")")?;
            return Ok(c);
        }
        for f in ["attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains"] {
            if self.is_call(f) {
                self.pos += 2;
                let c = match f {
                    "attribute_exists" => Cond::Exists(self.path()?),
                    "attribute_not_exists" => Cond::NotExists(self.path()?),
                    "attribute_type" => {
                        let p = self.path()?;
                        self.expect_sym(",")?;
                        let t = self.operand()?;
                        Cond::Type(p, t)
                    }
                    _ => {
                        let a = self.operand()?;
                        self.expect_sym(",")?;
                        let b = self.operand()?;
                        if f == "begins_with" { Cond::BeginsWith(a, b) } else { Cond::Contains(a, b) }
                    }
                };
                self.expect_sym(")")?;
                return Ok(c);
            }
        }
        let left = self.operand()?;
        if self.eat_kw("BETWEEN") {
            let lo = self.operand()?;
            if !self.eat_kw("AND") {
                return Err(self.syntax());
            }
            let hi = self.operand()?;
            return Ok(Cond::Between(left, lo, hi));
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(")")?;
            return Ok(Cond::In(left, list));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Cmp::Eq,
            Some(Tok::Sym("<>")) => Cmp::Ne,
            Some(Tok::Sym("<")) => Cmp::Lt,
            Some(Tok::Sym("<=")) => Cmp::Le,
            Some(Tok::Sym(">")) => Cmp::Gt,
            Some(Tok::Sym(">=")) => Cmp::Ge,
            _ => return Err(self.syntax()),
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Cond::Cmp(op, left, right))
    }

    /// The right side of `SET p = ...`.
    fn set_value(&mut self) -> Result<Operand, Err> {
        let left = self.set_operand()?;
        if self.eat_sym("+") {
            let right = self.set_operand()?;
            return Ok(Operand::Plus(Box::new(left), Box::new(right)));
        }
        if self.eat_sym("-") {
            let right = self.set_operand()?;
            return Ok(Operand::Minus(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn set_operand(&mut self) -> Result<Operand, Err> {
        if self.is_call("if_not_exists") {
            self.pos += 2;
            let p = self.path()?;
            self.expect_sym(",")?;
            let v = self.set_value()?;
            self.expect_sym(")")?;
            return Ok(Operand::IfNotExists(p, Box::new(v)));
        }
        if self.is_call("list_append") {
            self.pos += 2;
            let a = self.set_value()?;
            self.expect_sym(",")?;
            let b = self.set_value()?;
            self.expect_sym(")")?;
            return Ok(Operand::ListAppend(Box::new(a), Box::new(b)));
        }
        match self.peek().cloned() {
            Some(Tok::Value(v)) => {
                self.pos += 1;
                Ok(Operand::Value(self.value(&v)?))
            }
            Some(Tok::Ident(f)) if self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) => {
                if is_function(&f) {
                    Err(format!(
                        "Invalid {}: The function is not allowed in an update expression; function: {f}",
                        self.kind
                    ))
                } else {
                    Err(format!("Invalid {}: Invalid function name; function: {f}", self.kind))
                }
            }
            Some(Tok::Ident(_)) | Some(Tok::Name(_)) => Ok(Operand::Path(self.path()?)),
            _ => Err(self.syntax()),
        }
    }
}

fn is_function(f: &str) -> bool {
    [
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    ]
    .contains(&f)
}

/// The `&'static str` of a symbol (tokens hold static symbols).
fn leak(s: &str) -> &'static str {
    ["<>", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", ",", ".", "+", "-"]
        .into_iter()
        .find(|t| *t == s)
        .unwrap_or("")
}

/// Parses a condition, filter or key condition expression (`kind` names it in errors:
/// `ConditionExpression`, `FilterExpression`, `KeyConditionExpression`).
pub fn parse_condition(kind: &'static str, s: &str, ph: &mut Placeholders) -> Result<Cond, Err> {
    let mut p = Parser::new(kind, s, ph)?;
    let c = p.condition()?;
    p.end()?;
    Ok(c)
}

/// Parses a `ProjectionExpression`.
pub fn parse_projection(s: &str, ph: &mut Placeholders) -> Result<Vec<Path>, Err> {
    let mut p = Parser::new("ProjectionExpression", s, ph)?;
    let mut out = vec![p.path()?];
    while p.eat_sym(",") {
        out.push(p.path()?);
    }
    p.end()?;
    check_overlap("ProjectionExpression", &out.iter().collect::<Vec<_>>())?;
    Ok(out)
}

/// Parses an `UpdateExpression`.
pub fn parse_update(s: &str, ph: &mut Placeholders) -> Result<Update, Err> {
    let kind = "UpdateExpression";
    let mut p = Parser::new(kind, s, ph)?;
    let mut u = Update::default();
    let mut seen = HashSet::new();
    while p.peek().is_some() {
        let clause = match p.peek() {
            Some(t) if ["SET", "REMOVE", "ADD", "DELETE"].iter().any(|k| t.is_kw(k)) => {
                t.text().to_ascii_uppercase()
            }
            _ => return Err(p.syntax()),
        };
        if !seen.insert(clause.clone()) {
            return Err(format!(
                "Invalid UpdateExpression: The \"{clause}\" section can only be used once in an update expression;"
            ));
        }
        p.pos += 1;
        loop {
            let path = p.path()?;
            match clause.as_str() {
                "SET" => {
                    p.expect_sym("=")?;
                    let v = p.set_value()?;
                    u.set.push((path, v));
                }
                "REMOVE" => u.remove.push(path),
                _ => {
                    let v = match p.peek().cloned() {
                        Some(Tok::Value(v)) => {
                            p.pos += 1;
                            Operand::Value(p.value(&v)?)
                        }
                        _ => return Err(p.syntax()),
                    };
                    if clause == "ADD" { u.add.push((path, v)) } else { u.delete.push((path, v)) }
                }
            }
            if !p.eat_sym(",") {
                break;
            }
        }
    }
    check_overlap(kind, &u.paths())?;
    Ok(u)
}

fn check_overlap(kind: &str, paths: &[&Path]) -> Result<(), Err> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            let n = a.len().min(b.len());
            if a[..n] == b[..n] {
                let show = |p: &Path| {
                    p.iter()
                        .map(|e| match e {
                            Elem::Attr(s) => s.clone(),
                            Elem::Index(i) => format!("[{i}]"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let what = if kind == "UpdateExpression" { "update" } else { "projection" };
                let _ = what;
                return Err(format!(
                    "Invalid {kind}: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{}], path two: [{}]",
                    show(a),
                    show(b)
                ));
            }
        }
    }
    Ok(())
}

// ---- evaluation ----

pub fn get<'i>(item: &'i Item, path: &Path) -> Option<&'i AV> {
    let Elem::Attr(first) = &path[0] else { return None };
    let mut cur = item.get(first)?;
    for e in &path[1..] {
        cur = match (e, cur) {
            (Elem::Attr(a), AV::M(m)) => m.get(a)?,
            (Elem::Index(i), AV::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand_value(item: &Item, o: &Operand) -> Result<Option<AV>, Err> {
    Ok(match o {
        Operand::Path(p) => get(item, p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(p) => match get(item, p) {
            None => None,
            Some(v) => {
                let n = match v {
                    AV::S(s) => s.len(),
                    AV::B(b) => b.len(),
                    AV::SS(s) => s.len(),
                    AV::NS(s) => s.len(),
                    AV::BS(s) => s.len(),
                    AV::M(m) => m.len(),
                    AV::L(l) => l.len(),
                    _ => {
                        return Err(format!(
                            "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: {}",
                            v.type_name()
                        ));
                    }
                };
                Some(AV::N((n as u64).into()))
            }
        },
        Operand::IfNotExists(..) | Operand::ListAppend(..) | Operand::Plus(..) | Operand::Minus(..) => {
            return Err(
                "Invalid ConditionExpression: this function or operator belongs in an UpdateExpression"
                    .into(),
            );
        }
    })
}

/// Evaluates a condition against an item (an absent item is an empty one).
pub fn eval(c: &Cond, item: &Item) -> Result<bool, Err> {
    Ok(match c {
        Cond::And(a, b) => eval(a, item)? && eval(b, item)?,
        Cond::Or(a, b) => eval(a, item)? || eval(b, item)?,
        Cond::Not(a) => !eval(a, item)?,
        Cond::Exists(p) => get(item, p).is_some(),
        Cond::NotExists(p) => get(item, p).is_none(),
        Cond::Type(p, t) => {
            let want = match operand_value(item, t)? {
                Some(AV::S(s)) => s,
                _ => return Err("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: not a string".into()),
            };
            const TYPES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];
            if !TYPES.contains(&want.as_str()) {
                return Err(format!(
                    "Invalid ConditionExpression: Invalid attribute type name found; type: {want}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                ));
            }
            get(item, p).is_some_and(|v| v.type_name() == want)
        }
        Cond::BeginsWith(a, b) => match (operand_value(item, a)?, operand_value(item, b)?) {
            (Some(AV::S(x)), Some(AV::S(y))) => x.starts_with(&y),
            (Some(AV::B(x)), Some(AV::B(y))) => x.starts_with(&y),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand_value(item, a)?, operand_value(item, b)?) {
            (Some(AV::S(x)), Some(AV::S(y))) => x.contains(&y),
            (Some(AV::SS(x)), Some(AV::S(y))) => x.contains(&y),
            (Some(AV::NS(x)), Some(AV::N(y))) => x.contains(&y),
            (Some(AV::BS(x)), Some(AV::B(y))) => x.contains(&y),
            (Some(AV::B(x)), Some(AV::B(y))) => {
                !y.is_empty() && x.windows(y.len()).any(|w| w == y.as_slice())
            }
            (Some(AV::L(x)), Some(y)) => x.contains(&y),
            _ => false,
        },
        Cond::Cmp(op, a, b) => {
            let (x, y) = (operand_value(item, a)?, operand_value(item, b)?);
            let (Some(x), Some(y)) = (x, y) else { return Ok(false) };
            match op {
                Cmp::Eq => x == y,
                Cmp::Ne => x != y,
                _ => match x.compare(&y) {
                    None => false,
                    Some(o) => match op {
                        Cmp::Lt => o == Ordering::Less,
                        Cmp::Le => o != Ordering::Greater,
                        Cmp::Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    },
                },
            }
        }
        Cond::Between(a, lo, hi) => {
            let (x, l, h) = (operand_value(item, a)?, operand_value(item, lo)?, operand_value(item, hi)?);
            let (Some(x), Some(l), Some(h)) = (x, l, h) else { return Ok(false) };
            if l.compare(&h) == Some(Ordering::Greater) {
                return Err(format!(
                    "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {{{}}}, upper bound operand: AttributeValue: {{{}}}",
                    brief(&l),
                    brief(&h)
                ));
            }
            x.compare(&l).is_some_and(|o| o != Ordering::Less)
                && x.compare(&h).is_some_and(|o| o != Ordering::Greater)
        }
        Cond::In(a, list) => {
            let Some(x) = operand_value(item, a)? else { return Ok(false) };
            let mut found = false;
            for o in list {
                if operand_value(item, o)?.is_some_and(|v| v == x) {
                    found = true;
                }
            }
            found
        }
    })
}

fn brief(v: &AV) -> String {
    let j = v.to_json();
    let (t, x) =
        j.as_object().and_then(|m| m.iter().next()).map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
    format!("{t}:{}", x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
}

// ---- updates ----

fn update_value(item: &Item, o: &Operand) -> Result<AV, Err> {
    let missing = |p: &Path| {
        format!(
            "The provided expression refers to an attribute that does not exist in the item; path: {}",
            path_string(p)
        )
    };
    match o {
        Operand::Path(p) => get(item, p).cloned().ok_or_else(|| missing(p)),
        Operand::Value(v) => Ok(v.clone()),
        Operand::Size(_) => Err("Invalid UpdateExpression: size() is not allowed in an update".into()),
        Operand::IfNotExists(p, v) => match get(item, p) {
            Some(x) => Ok(x.clone()),
            None => update_value(item, v),
        },
        Operand::ListAppend(a, b) => match (update_value(item, a)?, update_value(item, b)?) {
            (AV::L(mut x), AV::L(y)) => {
                x.extend(y);
                Ok(AV::L(x))
            }
            (x, y) => Err(format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: {}",
                if matches!(x, AV::L(_)) { y.type_name() } else { x.type_name() }
            )),
        },
        Operand::Plus(a, b) | Operand::Minus(a, b) => {
            let (x, y) = (update_value(item, a)?, update_value(item, b)?);
            let op = if matches!(o, Operand::Plus(..)) { "+" } else { "-" };
            match (x, y) {
                (AV::N(x), AV::N(y)) => {
                    let r = if op == "+" { x + y } else { x - y };
                    let r = super::value::parse_number(&super::value::number_string(&r))?;
                    Ok(AV::N(r))
                }
                (x, y) => Err(format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {op}, operand type: {}",
                    if matches!(x, AV::N(_)) { y.type_name() } else { x.type_name() }
                )),
            }
        }
    }
}

fn invalid_path() -> Err {
    "The document path provided in the update expression is invalid for update".into()
}

/// Sets `path` in `item` (parents must exist; an index past a list's end appends).
fn set_path(item: &mut Item, path: &Path, v: AV) -> Result<(), Err> {
    let Elem::Attr(first) = &path[0] else { return Err(invalid_path()) };
    if path.len() == 1 {
        item.insert(first.clone(), v);
        return Ok(());
    }
    let mut cur = item.get_mut(first).ok_or_else(invalid_path)?;
    for (i, e) in path[1..].iter().enumerate() {
        let last = i == path.len() - 2;
        match (e, cur) {
            (Elem::Attr(a), AV::M(m)) => {
                if last {
                    m.insert(a.clone(), v);
                    return Ok(());
                }
                cur = m.get_mut(a).ok_or_else(invalid_path)?;
            }
            (Elem::Index(n), AV::L(l)) => {
                if last {
                    if *n < l.len() {
                        l[*n] = v;
                    } else {
                        l.push(v);
                    }
                    return Ok(());
                }
                cur = l.get_mut(*n).ok_or_else(invalid_path)?;
            }
            _ => return Err(invalid_path()),
        }
    }
    Ok(())
}

fn remove_path(item: &mut Item, path: &Path) {
    let Elem::Attr(first) = &path[0] else { return };
    if path.len() == 1 {
        item.remove(first);
        return;
    }
    let Some(mut cur) = item.get_mut(first) else { return };
    for (i, e) in path[1..].iter().enumerate() {
        let last = i == path.len() - 2;
        match (e, cur) {
            (Elem::Attr(a), AV::M(m)) => {
                if last {
                    m.remove(a);
                    return;
                }
                match m.get_mut(a) {
                    Some(c) => cur = c,
                    None => return,
                }
            }
            (Elem::Index(n), AV::L(l)) => {
                if last {
                    if *n < l.len() {
                        l.remove(*n);
                    }
                    return;
                }
                match l.get_mut(*n) {
                    Some(c) => cur = c,
                    None => return,
                }
            }
            _ => return,
        }
    }
}

/// Applies an update to (a copy of) the item. Values are computed from the item as it was
/// before the update, as DynamoDB does.
pub fn apply(u: &Update, old: &Item) -> Result<Item, Err> {
    let mut item = old.clone();
    for (p, v) in &u.set {
        let v = update_value(old, v)?;
        set_path(&mut item, p, v)?;
    }
    // Removals from the end of a list first, so that indexes refer to the old list.
    let mut removes: Vec<&Path> = u.remove.iter().collect();
    removes.sort_by(|a, b| match (a.last(), b.last()) {
        (Some(Elem::Index(x)), Some(Elem::Index(y))) => y.cmp(x),
        _ => Ordering::Equal,
    });
    for p in removes {
        remove_path(&mut item, p);
    }
    for (p, v) in &u.add {
        let v = update_value(old, v)?;
        let cur = get(&item, p).cloned();
        let new = match (cur, v) {
            (None, v @ (AV::N(_) | AV::SS(_) | AV::NS(_) | AV::BS(_))) => v,
            (Some(AV::N(x)), AV::N(y)) => {
                AV::N(super::value::parse_number(&super::value::number_string(&(x + y)))?)
            }
            (Some(AV::SS(mut x)), AV::SS(y)) => {
                x.extend(y);
                x.sort();
                x.dedup();
                AV::SS(x)
            }
            (Some(AV::NS(mut x)), AV::NS(y)) => {
                x.extend(y);
                x.sort();
                x.dedup();
                AV::NS(x)
            }
            (Some(AV::BS(mut x)), AV::BS(y)) => {
                x.extend(y);
                x.sort();
                x.dedup();
                AV::BS(x)
            }
            (cur, v) => {
                return Err(format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {}",
                    match cur {
                        Some(c) if c.type_name() != v.type_name() => c.type_name(),
                        _ => v.type_name(),
                    }
                ));
            }
        };
        set_path(&mut item, p, new)?;
    }
    for (p, v) in &u.delete {
        let v = update_value(old, v)?;
        let cur = get(&item, p).cloned();
        let new = match (cur, v) {
            (None, AV::SS(_) | AV::NS(_) | AV::BS(_)) => continue,
            (Some(AV::SS(x)), AV::SS(y)) => AV::SS(x.into_iter().filter(|e| !y.contains(e)).collect()),
            (Some(AV::NS(x)), AV::NS(y)) => AV::NS(x.into_iter().filter(|e| !y.contains(e)).collect()),
            (Some(AV::BS(x)), AV::BS(y)) => AV::BS(x.into_iter().filter(|e| !y.contains(e)).collect()),
            (cur, v) => {
                return Err(format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: {}",
                    match cur {
                        Some(c) if c.type_name() != v.type_name() => c.type_name(),
                        _ => v.type_name(),
                    }
                ));
            }
        };
        let empty = matches!(&new, AV::SS(s) if s.is_empty())
            || matches!(&new, AV::NS(s) if s.is_empty())
            || matches!(&new, AV::BS(s) if s.is_empty());
        if empty {
            remove_path(&mut item, p);
        } else {
            set_path(&mut item, p, new)?;
        }
    }
    Ok(item)
}

/// The item with only `paths` (nested maps kept, list elements compacted in order).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for p in paths {
        let Some(v) = get(item, p) else { continue };
        let Elem::Attr(first) = &p[0] else { continue };
        if p.len() == 1 {
            out.insert(first.clone(), v.clone());
            continue;
        }
        // Build the nested shape along the path.
        let mut nested = v.clone();
        for e in p[1..].iter().rev() {
            nested = match e {
                Elem::Attr(a) => AV::M(BTreeMap::from([(a.clone(), nested)])),
                Elem::Index(_) => AV::L(vec![nested]),
            };
        }
        match out.remove(first) {
            Some(existing) => {
                out.insert(first.clone(), merge(existing, nested));
            }
            None => {
                out.insert(first.clone(), nested);
            }
        }
    }
    out
}

fn merge(a: AV, b: AV) -> AV {
    match (a, b) {
        (AV::M(mut x), AV::M(y)) => {
            for (k, v) in y {
                let v = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, v);
            }
            AV::M(x)
        }
        (AV::L(mut x), AV::L(y)) => {
            x.extend(y);
            AV::L(x)
        }
        (_, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: serde_json::Value) -> Item {
        super::super::value::item_from_json(&v).unwrap()
    }

    fn vals(v: serde_json::Value) -> HashMap<String, AV> {
        v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), AV::from_json(v).unwrap())).collect()
    }

    fn cond(s: &str, names: &[(&str, &str)], values: serde_json::Value, it: &Item) -> Result<bool, Err> {
        let names: HashMap<String, String> =
            names.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let values = vals(values);
        let mut ph = Placeholders::new(&names, &values);
        let c = parse_condition("ConditionExpression", s, &mut ph)?;
        ph.check_unused()?;
        eval(&c, it)
    }

    #[test]
    fn conditions() {
        let it = item(
            json!({"a": {"N": "5"}, "s": {"S": "hello"}, "m": {"M": {"l": {"L": [{"N": "1"}, {"S": "x"}]}}}, "tags": {"SS": ["p", "q"]}}),
        );
        let t = |s: &str, v: serde_json::Value| {
            let names: &[(&str, &str)] = if s.contains("#st") { &[("#st", "status")] } else { &[] };
            cond(s, names, v, &it)
        };
        assert!(t("a = :five", json!({":five": {"N": "5.0"}})).unwrap());
        assert!(t("a > :x AND (s = :h OR a < :x)", json!({":x": {"N": "4"}, ":h": {"S": "hello"}})).unwrap());
        assert!(t("NOT a BETWEEN :x AND :y", json!({":x": {"N": "6"}, ":y": {"N": "9"}})).unwrap());
        assert!(t("a IN (:x, :y)", json!({":x": {"N": "1"}, ":y": {"N": "5"}})).unwrap());
        assert!(
            t("begins_with(s, :p) AND contains(tags, :q)", json!({":p": {"S": "he"}, ":q": {"S": "q"}}))
                .unwrap()
        );
        assert!(
            t("m.l[1] = :x AND size(m.l) = :two", json!({":x": {"S": "x"}, ":two": {"N": "2"}})).unwrap()
        );
        assert!(t("attribute_exists(a) AND attribute_not_exists(#st)", json!({})).unwrap());
        assert!(t("attribute_type(m, :m)", json!({":m": {"S": "M"}})).unwrap());
        assert!(!t("s < :n", json!({":n": {"N": "1"}})).unwrap(), "different types compare false");
        assert!(
            t("a = :x", json!({":x": {"N": "1"}, ":y": {"N": "1"}}))
                .unwrap_err()
                .contains("unused in expressions: keys: {:y}")
        );
        assert!(t("a = :zz", json!({})).unwrap_err().contains("attribute value: :zz"));
        assert!(
            t("status = :x", json!({":x": {"N": "1"}})).unwrap_err().contains("reserved keyword: status")
        );
        assert_eq!(
            t("a = = :x", json!({":x": {"N": "1"}})).unwrap_err(),
            "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"= = :x\""
        );
        assert!(t("a = :x AND", json!({":x": {"N": "1"}})).unwrap_err().contains("token: \"<EOF>\""));
    }

    #[test]
    fn updates() {
        let it = item(
            json!({"n": {"N": "1"}, "l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}, "ss": {"SS": ["a", "b"]}, "m": {"M": {}}}),
        );
        let names = HashMap::new();
        let values = vals(
            json!({":one": {"N": "1"}, ":l": {"L": [{"N": "4"}]}, ":s": {"SS": ["b", "c"]}, ":z": {"N": "10"}}),
        );
        let mut ph = Placeholders::new(&names, &values);
        let u = parse_update(
            "SET n = n + :one, l = list_append(l, :l), m.x = if_not_exists(m.x, :z), c = if_not_exists(c, :z) - :one REMOVE l[0] ADD ss :s DELETE ss2 :s",
            &mut ph,
        );
        // l is both SET and REMOVEd: overlapping paths.
        assert!(u.unwrap_err().contains("overlap"));
        let mut ph = Placeholders::new(&names, &values);
        let u = parse_update("SET n = n + :one, k = list_append(l, :l), m.x = if_not_exists(m.x, :z), c = if_not_exists(c, :z) - :one REMOVE l[0] ADD ss :s", &mut ph).unwrap();
        let out = apply(&u, &it).unwrap();
        assert_eq!(
            super::super::value::item_to_json(&out),
            json!({"n": {"N": "2"}, "k": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]}, "l": {"L": [{"N": "2"}, {"N": "3"}]},
                   "m": {"M": {"x": {"N": "10"}}}, "c": {"N": "9"}, "ss": {"SS": ["a", "b", "c"]}})
        );
        let mut ph = Placeholders::new(&names, &values);
        assert_eq!(
            parse_update("SET n = :one SET x = :z", &mut ph).unwrap_err(),
            "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
        );
        let mut ph = Placeholders::new(&names, &values);
        assert_eq!(
            parse_update("SET n :one", &mut ph).unwrap_err(),
            "Invalid UpdateExpression: Syntax error; token: \":one\", near: \"n :one\""
        );
        let mut ph = Placeholders::new(&names, &values);
        let u = parse_update("SET q.r = :one", &mut ph).unwrap();
        assert!(
            apply(&u, &it)
                .unwrap_err()
                .contains("document path provided in the update expression is invalid")
        );
    }

    #[test]
    fn projections() {
        let it = item(
            json!({"a": {"N": "1"}, "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}}}, "l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}}),
        );
        let names = HashMap::new();
        let values = HashMap::new();
        let mut ph = Placeholders::new(&names, &values);
        let p = parse_projection("m.y, l[2], zz", &mut ph).unwrap();
        assert_eq!(
            super::super::value::item_to_json(&project(&it, &p)),
            json!({"m": {"M": {"y": {"N": "2"}}}, "l": {"L": [{"N": "3"}]}})
        );
    }
}
