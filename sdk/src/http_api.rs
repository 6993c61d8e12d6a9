//! The `HttpApi` component: HTTP routes served by functions, with API Gateway v2 (HTTP API)
//! semantics and event payloads (version 2.0), on every target.

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, FunctionHandle, Program, Ref, ResourceOptions, Target, aws, local};

/// The methods a route key may start with (`ANY` matches all of them).
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

/// An HTTP API, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Function, HttpApi, Program, Runtime, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let hello = ctx.add(Function::new("hello").code("functions/hello").handler("app.handler").runtime(Runtime::Python3)).unwrap();
/// let api = ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello).route("$default", &hello)).unwrap();
/// ctx.export("url", api.url());
/// ```
#[derive(Debug, Clone)]
pub struct HttpApi {
    pub(crate) name: String,
    pub(crate) routes: Vec<Route>,
    pub(crate) options: ResourceOptions,
}

/// One route: a route key and the function that serves it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub key: String,
    pub function: FunctionHandle,
}

impl HttpApi {
    /// An API with no routes yet.
    pub fn new(name: impl Into<String>) -> HttpApi {
        HttpApi { name: name.into(), routes: Vec::new(), options: ResourceOptions::default() }
    }

    /// Routes requests matching `key` to `function`. A key is `METHOD /path` (`GET /hello`,
    /// `POST /orders/{id}`, `ANY /{proxy+}`) or `$default`, which catches what no other route
    /// matches. Path parameters reach the function in `pathParameters`.
    pub fn route(mut self, key: impl Into<String>, function: &FunctionHandle) -> Self {
        self.routes.push(Route { key: key.into(), function: function.clone() });
        self
    }

    /// Options applied to every resource of the API; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        for (i, route) in self.routes.iter().enumerate() {
            check_route_key(&route.key).map_err(|reason| Error::invalid(&self.name, reason))?;
            if self.routes[..i].iter().any(|r| r.key == route.key) {
                return Err(Error::invalid(
                    &self.name,
                    format!("the route `{}` is declared twice", route.key),
                ));
            }
        }
        Ok(())
    }
}

/// Checks the shape API Gateway accepts, so that a typo fails when the program runs rather than
/// at deploy time.
fn check_route_key(key: &str) -> Result<(), String> {
    if key == "$default" {
        return Ok(());
    }
    let hint = "expected `METHOD /path` (e.g. `GET /hello/{name}`) or `$default`";
    let Some((method, path)) = key.split_once(' ') else {
        return Err(format!("the route `{key}` is malformed: {hint}"));
    };
    if !METHODS.contains(&method) {
        return Err(format!(
            "the route `{key}` has an unknown method `{method}`: use one of {}",
            METHODS.join(", ")
        ));
    }
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(format!("the route `{key}` has a malformed path: {hint}"));
    }
    Ok(())
}

impl Component for HttpApi {
    type Handle = HttpApiHandle;

    fn add_to(self, ctx: &Program) -> Result<HttpApiHandle, Error> {
        self.validate()?;
        let expansion = match ctx.target() {
            Target::Local => local::http_api(ctx, &self),
            Target::Aws => aws::http_api(ctx, &self)?,
        };
        Ok(HttpApiHandle { expansion })
    }
}

/// A declared [`HttpApi`].
#[derive(Debug, Clone)]
pub struct HttpApiHandle {
    pub(crate) expansion: Expansion,
}
component_handle!(HttpApiHandle);

impl HttpApiHandle {
    /// The base URL, without a trailing slash (`http://127.0.0.1:PORT` on the local cloud).
    pub fn url(&self) -> Ref {
        self.expansion.output("url")
    }
}

#[cfg(test)]
mod tests {
    use super::check_route_key;

    #[test]
    fn route_keys() {
        for ok in ["$default", "GET /", "ANY /{proxy+}", "POST /orders/{id}"] {
            assert_eq!(check_route_key(ok), Ok(()), "{ok}");
        }
        for bad in ["/hello", "get /hello", "GET hello", "FETCH /x", "GET /a b", ""] {
            assert!(check_route_key(bad).is_err(), "{bad}");
        }
    }
}
