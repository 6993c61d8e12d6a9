//! The `api` function of the rust-api example: answers every request with a JSON description of
//! what it received. `lambda_http` turns the API Gateway v2 event into an `http::Request` and the
//! response back into the event payload API Gateway expects.

use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::json;

async fn handler(request: Request) -> Result<Response<Body>, Error> {
    let name = request
        .query_string_parameters_ref()
        .and_then(|params| params.first("name"))
        .unwrap_or("world")
        .to_string();
    let body = json!({
        "message": format!("Hello, {name}!"),
        "method": request.method().as_str(),
        "path": request.uri().path(),
    });
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
