//! The control API's table routes (`/v1/stacks/{stack}/tables/{name}`), which the provider's
//! `local:Table` calls, and the tables in `GET /v1/status`.
//!
//! `{name}` is the table's DynamoDB name (table names belong to the account and region, as
//! on AWS, so the stack is not part of it). `PUT` takes a [`TableSpec`] and creates the table
//! or changes its indexes (keys cannot change: replace the table); `GET` answers
//! `{table_name, arn, stream_arn, spec, item_count}`; `DELETE` removes the table and its items.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TableDef, TableSpec};
use crate::aws::AwsContext;
use crate::http::{self, Resp};

pub fn view(ctx: &AwsContext, d: &TableDef) -> Value {
    json!({
        "table_name": d.name,
        "arn": d.arn(),
        "stream_arn": d.stream_arn(),
        "spec": d.spec,
        "item_count": ctx.tables.item_count(d),
    })
}

pub async fn table(ctx: &AwsContext, method: &Method, _stack: &str, name: &str, body: &Bytes) -> Resp {
    match *method {
        Method::PUT => {
            let spec: TableSpec = match serde_json::from_slice(body) {
                Ok(c) => c,
                Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("bad table settings: {e}")),
            };
            match ctx.tables.put_table(name, spec, false).await {
                Ok(d) => http::json(StatusCode::OK, &view(ctx, &d)),
                Err(e) => http::message(StatusCode::BAD_REQUEST, &e.message),
            }
        }
        Method::GET => match ctx.tables.def(name) {
            Some(d) => http::json(StatusCode::OK, &view(ctx, &d)),
            None => http::message(StatusCode::NOT_FOUND, &format!("no table `{name}`")),
        },
        Method::DELETE => match ctx.tables.delete_table(name).await {
            Ok(_) => http::json(StatusCode::OK, &json!({"deleted": true})),
            Err(e) if e.code == "ResourceNotFoundException" => {
                http::message(StatusCode::NOT_FOUND, &format!("no table `{name}`"))
            }
            Err(e) => http::message(StatusCode::INTERNAL_SERVER_ERROR, &e.message),
        },
        _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// Every table with its item count, for `GET /v1/status`.
pub fn status(ctx: &AwsContext) -> Vec<Value> {
    ctx.tables
        .names()
        .iter()
        .filter_map(|n| ctx.tables.def(n))
        .map(|d| json!({"name": d.name, "arn": d.arn(), "items": ctx.tables.item_count(&d), "stream": d.stream}))
        .collect()
}
