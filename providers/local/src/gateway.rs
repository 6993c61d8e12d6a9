//! The HTTP gateway: each API listens on its own port and turns requests into API Gateway
//! HTTP API events (payload format 2.0), and function results back into HTTP responses, the
//! way API Gateway does.
//!
//! Route selection follows API Gateway: a method-specific route beats `ANY`; among paths, an
//! exact path beats one with `{param}` segments, which beats a greedy `{proxy+}`; `$default`
//! catches the rest; no match is `404 {"message":"Not Found"}`.
//!
//! Errors: a function error (the handler raised, crashed or failed to initialise) is
//! `502 {"message":"Internal Server Error"}`; a function timeout is
//! `503 {"message":"Service Unavailable"}` — API Gateway reports an integration that did not
//! answer in time as 503 Service Unavailable for HTTP APIs, and keeping timeouts apart from
//! errors lets a client tell "retry later" from "bug".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use base64::Engine;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::http::{self, Resp};
use crate::pool::{InvokeResult, Pool};

/// API Gateway's payload quota: larger bodies get `413 {"message":"Request Entity Too Large"}`.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// API Gateway's quota on the request line and headers together: more is refused with `431`.
pub const MAX_HEADER_BYTES: usize = 10 * 1024;
/// Lambda's quota on a synchronous invocation's payload (6 MB): an event over it is refused
/// as Lambda refuses it (`413` from the gateway, `RequestTooLargeException` on Invoke).
pub const MAX_INVOKE_PAYLOAD: usize = 6 * 1024 * 1024;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
    Greedy(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub key: String,
    /// `None` for `$default`.
    method: Option<String>,
    segs: Vec<Seg>,
    pub function: String,
}

/// Parses a route key: `$default`, or `METHOD /path` where a segment may be `{name}` and the
/// last one may be `{name+}`.
pub fn parse_route(key: &str, function: &str) -> Result<Route, String> {
    if key == "$default" {
        return Ok(Route { key: key.into(), method: None, segs: Vec::new(), function: function.into() });
    }
    let bad = |why: &str| {
        Err(format!(
            "route `{key}` is not valid: {why}; expected `METHOD /path` (e.g. `GET /hello/{{name}}`, `ANY /{{proxy+}}`) or `$default`"
        ))
    };
    let Some((method, path)) = key.split_once(' ') else { return bad("no method") };
    if !METHODS.contains(&method) {
        return bad(&format!("unknown method `{method}` (use one of {})", METHODS.join(", ")));
    }
    if !path.starts_with('/') {
        return bad("the path must start with `/`");
    }
    let mut segs = Vec::new();
    let parts: Vec<&str> = path[1..].split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            if parts.len() == 1 {
                break; // "/"
            }
            return bad("empty path segment");
        }
        if let Some(inner) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(name) = inner.strip_suffix('+') {
                if i != parts.len() - 1 {
                    return bad("a greedy `{name+}` segment must be the last");
                }
                if !valid_param(name) {
                    return bad(&format!("bad parameter name `{name}`"));
                }
                segs.push(Seg::Greedy(name.into()));
            } else {
                if !valid_param(inner) {
                    return bad(&format!("bad parameter name `{inner}`"));
                }
                segs.push(Seg::Param(inner.into()));
            }
        } else if p.contains(['{', '}', ' ']) {
            return bad(&format!("bad segment `{p}`"));
        } else {
            segs.push(Seg::Lit((*p).into()));
        }
    }
    Ok(Route { key: key.into(), method: Some(method.into()), segs, function: function.into() })
}

fn valid_param(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The rank of a match: greater is more specific.
type Rank = (u8, usize, u8);
/// Path parameters, by name.
type Params = Vec<(String, String)>;

impl Route {
    /// Matches `method` and a raw path; returns the rank and the path parameters.
    fn matches(&self, method: &str, path: &str) -> Option<(Rank, Vec<(String, String)>)> {
        let Some(m) = &self.method else { return Some(((0, 0, 0), Vec::new())) };
        let method_rank = if m == method {
            1
        } else if m == "ANY" {
            0
        } else {
            return None;
        };
        let parts: Vec<&str> =
            if path == "/" { Vec::new() } else { path.trim_start_matches('/').split('/').collect() };
        let mut params = Vec::new();
        let mut lits = 0;
        let mut kind = 3u8; // exact
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Lit(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    lits += 1;
                }
                Seg::Param(n) => {
                    let v = parts.get(i).filter(|v| !v.is_empty())?;
                    params.push((n.clone(), http::percent_decode(v)));
                    kind = kind.min(2);
                }
                Seg::Greedy(n) => {
                    if parts.len() <= i || parts[i..].iter().all(|p| p.is_empty()) {
                        return None;
                    }
                    params.push((n.clone(), http::percent_decode(&parts[i..].join("/"))));
                    return Some(((1, lits, method_rank), params));
                }
            }
        }
        if parts.len() != self.segs.len() {
            return None;
        }
        Some(((kind, lits, method_rank), params))
    }
}

/// An API's routes, replaced whole on update.
pub struct Routes {
    pub routes: Vec<Route>,
}

impl Routes {
    fn select(&self, method: &str, path: &str) -> Option<(&Route, Vec<(String, String)>)> {
        let mut best: Option<(Rank, &Route, Params)> = None;
        for r in &self.routes {
            if let Some((rank, params)) = r.matches(method, path)
                && best.as_ref().is_none_or(|(b, _, _)| rank > *b)
            {
                best = Some((rank, r, params));
            }
        }
        best.map(|(_, r, p)| (r, p))
    }
}

/// Finds a function's current pool by name (in the API's stack).
pub trait Functions: Send + Sync + 'static {
    fn pool(&self, stack: &str, name: &str) -> Option<Arc<Pool>>;
}

/// One running API.
pub struct Api {
    pub stack: String,
    pub api_id: String,
    pub port: u16,
    pub routes: RwLock<Arc<Routes>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<&'a str>>,
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<()>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'static str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: HttpContext<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'static str,
    time: String,
    time_epoch: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpContext<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: String,
    user_agent: &'a str,
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
        || ct.contains("graphql")
        || ct.contains("yaml")
}

/// Handles one request to an API.
pub async fn handle(api: &Api, functions: &dyn Functions, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let routes = api.routes.read().unwrap().clone();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let Some((route, params)) = routes.select(&method, &path) else {
        return http::message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(pool) = functions.pool(&api.stack, &route.function) else {
        return http::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let request_id = crate::pool::new_request_id();
    // The request starts a trace, or goes on with the caller's (crate::trace).
    let started = (crate::logs::now_ms(), std::time::Instant::now());
    let header = req.headers().get("x-amzn-trace-id").and_then(|v| v.to_str().ok());
    let trace = crate::trace::Ctx::from_header(header, format!("http {method} {path}"));
    let span = crate::trace::new_span_id();
    let event = match build_event(api, route, params, &request_id, req, peer).await {
        Ok(e) => e,
        Err(resp) => return resp,
    };
    let invoked = crate::trace::scope(trace.child(&span), pool.invoke(event)).await;
    let mut resp = match invoked.result {
        InvokeResult::Ok(body) => map_result(&body),
        InvokeResult::Error { timed_out: true, .. } => {
            http::message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        InvokeResult::Error { .. } => http::message(StatusCode::BAD_GATEWAY, "Internal Server Error"),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("apigw-requestid", v);
    }
    let status = resp.status().as_u16();
    let detail = serde_json::json!({"api": api.api_id, "status": status, "function": route.function});
    let outcome = if status >= 500 { "error" } else { "ok" };
    crate::trace::record_step(&trace, &span, "http", &trace.trigger, started, outcome, detail);
    resp
}

async fn build_event(
    api: &Api,
    route: &Route,
    params: Params,
    request_id: &str,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Bytes, Resp> {
    // API Gateway's quotas, with its answers: code that works here must work there.
    let header_bytes: usize = req.uri().to_string().len()
        + req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum::<usize>();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(http::message(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        ));
    }
    let too_large = || http::message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let (parts, body) = match http::body_bytes_limited(req, MAX_BODY_BYTES).await {
        Ok(Some(x)) => x,
        Ok(None) => return Err(too_large()),
        Err(_) => return Err(http::message(StatusCode::BAD_REQUEST, "Bad Request")),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<&str> = Vec::new();
    for (name, value) in parts.headers.iter() {
        let v = String::from_utf8_lossy(value.as_bytes());
        if name == hyper::header::COOKIE {
            // The local console's session cookie (crate::console) is never a function's.
            let not_console = |c: &&str| !c.starts_with("skyform_console=");
            cookies.extend(
                value
                    .to_str()
                    .unwrap_or("")
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .filter(not_console),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    // What API Gateway's front end adds.
    headers.entry("x-forwarded-for".into()).or_insert_with(|| peer.ip().to_string());
    headers.insert("x-forwarded-port".into(), api.port.to_string());
    headers.insert("x-forwarded-proto".into(), "http".into());
    let host = parts.headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let domain_name = host.to_string();
    let domain_prefix = domain_name.split(['.', ':']).next().unwrap_or("").to_string();
    let raw_query = parts.uri.query().unwrap_or("");
    let query = if raw_query.is_empty() {
        None
    } else {
        let mut q: BTreeMap<String, String> = BTreeMap::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = http::percent_decode(&k.replace('+', " "));
            let v = http::percent_decode(&v.replace('+', " "));
            q.entry(k)
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        Some(q)
    };
    let content_type =
        parts.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (body, b64) = if body.is_empty() {
        (None, false)
    } else if is_text(content_type) {
        match std::str::from_utf8(&body) {
            Ok(s) => (Some(s.to_string()), false),
            Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(&body)), true),
        }
    } else {
        (Some(base64::engine::general_purpose::STANDARD.encode(&body)), true)
    };
    let ms = crate::logs::now_ms();
    let (y, mo, d, h, mi, s) = crate::pool::civil(ms / 1000);
    let protocol = match parts.version {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    let user_agent = parts.headers.get(hyper::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event = Event {
        version: "2.0",
        route_key: &route.key,
        raw_path: parts.uri.path(),
        raw_query_string: raw_query,
        cookies: if cookies.is_empty() { None } else { Some(cookies) },
        headers,
        query_string_parameters: query,
        path_parameters: if params.is_empty() { None } else { Some(params.into_iter().collect()) },
        stage_variables: None,
        request_context: RequestContext {
            account_id: "000000000000",
            api_id: &api.api_id,
            domain_name: &domain_name,
            domain_prefix: &domain_prefix,
            http: HttpContext {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                protocol,
                source_ip: peer.ip().to_string(),
                user_agent,
            },
            request_id,
            route_key: &route.key,
            stage: "$default",
            time: format!("{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} +0000", MONTHS[(mo - 1) as usize]),
            time_epoch: ms,
        },
        body,
        is_base64_encoded: b64,
    };
    let event = serde_json::to_vec(&event)
        .map_err(|_| http::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))?;
    // The event is Lambda's payload: over Lambda's limit, API Gateway answers 413.
    if event.len() > MAX_INVOKE_PAYLOAD {
        return Err(too_large());
    }
    Ok(Bytes::from(event))
}

fn header_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Maps a function's result to the HTTP response, as API Gateway does for payload 2.0.
pub fn map_result(body: &[u8]) -> Resp {
    let internal = || http::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return internal();
    };
    let obj = match &value {
        serde_json::Value::Object(o) if o.contains_key("statusCode") => o,
        serde_json::Value::String(s) => {
            return http::response(StatusCode::OK, "application/json", s.clone());
        }
        _ => return http::response(StatusCode::OK, "application/json", Bytes::copy_from_slice(body)),
    };
    let status = obj
        .get("statusCode")
        .and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|s| s.parse().ok())))
        .and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else { return internal() };
    let b64 = obj.get("isBase64Encoded").and_then(|v| v.as_bool()).unwrap_or(false);
    let out_body: Bytes = match obj.get("body") {
        None | Some(serde_json::Value::Null) => Bytes::new(),
        Some(serde_json::Value::String(s)) if b64 => {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => b.into(),
                Err(_) => return internal(),
            }
        }
        Some(serde_json::Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    let mut resp = Response::new(http_body_util::Full::new(out_body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let mut add = |name: &str, value: &str, append: bool| {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            if append {
                h.append(n, v);
            } else {
                h.insert(n, v);
            }
        }
    };
    if let Some(serde_json::Value::Object(hs)) = obj.get("headers") {
        for (k, v) in hs {
            if let Some(v) = header_string(v) {
                add(k, &v, false);
            }
        }
    }
    if let Some(serde_json::Value::Object(hs)) = obj.get("multiValueHeaders") {
        for (k, vs) in hs {
            if let serde_json::Value::Array(vs) = vs {
                for v in vs.iter().filter_map(header_string) {
                    add(k, &v, true);
                }
            }
        }
    }
    if let Some(serde_json::Value::Array(cs)) = obj.get("cookies") {
        for c in cs.iter().filter_map(|c| c.as_str()) {
            add("set-cookie", c, true);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(keys: &[&str]) -> Routes {
        Routes { routes: keys.iter().map(|k| parse_route(k, k).unwrap()).collect() }
    }

    #[test]
    fn precedence_is_exact_then_param_then_greedy_then_default() {
        let r = routes(&[
            "$default",
            "ANY /{proxy+}",
            "GET /hello/{name}",
            "GET /hello/world",
            "ANY /hello/{name}",
        ]);
        let pick = |m: &str, p: &str| r.select(m, p).map(|(r, p)| (r.key.clone(), p));
        assert_eq!(pick("GET", "/hello/world").unwrap().0, "GET /hello/world");
        let (k, p) = pick("GET", "/hello/ann").unwrap();
        assert_eq!(k, "GET /hello/{name}");
        assert_eq!(p, vec![("name".to_string(), "ann".to_string())]);
        assert_eq!(pick("POST", "/hello/ann").unwrap().0, "ANY /hello/{name}");
        let (k, p) = pick("GET", "/a/b/c").unwrap();
        assert_eq!(k, "ANY /{proxy+}");
        assert_eq!(p, vec![("proxy".to_string(), "a/b/c".to_string())]);
        assert_eq!(pick("GET", "/").unwrap().0, "$default");
        assert!(routes(&["GET /x"]).select("GET", "/y").is_none());
        assert!(routes(&["GET /x"]).select("POST", "/x").is_none());
        assert_eq!(routes(&["GET /"]).select("GET", "/").unwrap().0.key, "GET /");
    }

    #[test]
    fn bad_routes_are_rejected() {
        for bad in ["/x", "FETCH /x", "GET x", "GET /{a+}/b", "GET /a//b", "GET /{}"] {
            assert!(parse_route(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn results_map_like_api_gateway() {
        let r =
            map_result(br#"{"statusCode":201,"headers":{"x-a":"1"},"cookies":["a=1","b=2"],"body":"hi"}"#);
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r = map_result(br#"{"hello":"world"}"#);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(map_result(b"not json").status(), 500);
    }
}
