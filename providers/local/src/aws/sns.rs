//! SNS (query protocol) on the local AWS endpoint.
//!
//! **Owned by the SNS helper** (topics, Publish, fan-out): this file is a stub until it lands.
//! It gets requests already verified (SigV4, credential scope `sns`) with their form parameters
//! decoded (`req.param("Action")`), and the shared [`AwsContext`]: `ctx.queues` to fan out to
//! SQS queues and `ctx.invoke_async` to deliver to functions (see `aws/mod.rs`). Errors render
//! with [`AwsError::query_xml`].

use super::{AwsContext, AwsError, AwsRequest};
use crate::http::Resp;

/// Answers one SNS request.
pub async fn handle(_ctx: &AwsContext, req: &AwsRequest) -> Resp {
    let action = req.param("Action").unwrap_or("");
    AwsError::bad("InvalidAction", format!("SNS action `{action}` is not implemented by the local cloud yet"))
        .query_xml(&req.request_id)
}
