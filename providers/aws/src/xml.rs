//! Just enough XML for AWS's query and REST-XML answers.
//!
//! The answers we read are small, machine-written documents without attributes that matter,
//! CDATA or namespaces on the elements we look for, so finding `<Name>…</Name>` by text is
//! enough and saves a dependency. Nested elements of the same name are not supported; no
//! answer we read has them.

/// The text of the first `<name>` element, unescaped (`Some("")` for `<name/>`).
pub fn tag(xml: &str, name: &str) -> Option<String> {
    tags(xml, name).into_iter().next()
}

/// The texts of every `<name>` element, in order.
pub fn tags(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // `<Name>` or `<Name attr="…">` or `<Name/>`, but not `<NameOther>`.
        let Some(end_of_open) = after.find('>') else { break };
        let head = &after[..end_of_open];
        if !(head.is_empty() || head.starts_with(' ') || head == "/" || head.ends_with('/')) {
            rest = after;
            continue;
        }
        if head.ends_with('/') {
            out.push(String::new());
            rest = &after[end_of_open + 1..];
            continue;
        }
        let body = &after[end_of_open + 1..];
        let Some(stop) = body.find(&close) else { break };
        out.push(unescape(&body[..stop]));
        rest = &body[stop + close.len()..];
    }
    out
}

/// The raw inner XML of each `<name>` element (for lists of structures).
pub fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(stop) = body.find(&close) else { break };
        out.push(&body[..stop]);
        rest = &body[stop + close.len()..];
    }
    out
}

pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let entity = &after[..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&rest[i..i + 2 + semi]),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    out
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_and_unescapes() {
        let xml = r#"<R><RoleName>a&amp;b</RoleName><RoleNameX>no</RoleNameX><Path/><member><K>1</K></member><member><K>2</K></member><E attr="x">&#x41;&#66;</E></R>"#;
        assert_eq!(tag(xml, "RoleName").as_deref(), Some("a&b"));
        assert_eq!(tag(xml, "Path").as_deref(), Some(""));
        assert_eq!(tag(xml, "E").as_deref(), Some("AB"));
        assert_eq!(tags(xml, "K"), vec!["1", "2"]);
        assert_eq!(blocks(xml, "member").len(), 2);
        assert_eq!(tag(xml, "Missing"), None);
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
