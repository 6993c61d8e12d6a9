//! One module per AWS service; each implements [`crate::resource::Kind`] for its types.

pub mod apigw;
pub mod dynamodb;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod s3;
pub mod scheduler;
pub mod sns;
pub mod sqs;

/// Every type token the provider serves, in the order of the handshake.
pub const TOKENS: &[&str] = &[
    "aws:iam:Role",
    "aws:iam:RolePolicy",
    "aws:logs:LogGroup",
    "aws:lambda:Function",
    "aws:lambda:Permission",
    "aws:lambda:EventSourceMapping",
    "aws:lambda:FunctionUrl",
    "aws:sqs:Queue",
    "aws:sqs:QueuePolicy",
    "aws:apigatewayv2:Api",
    "aws:apigatewayv2:Integration",
    "aws:apigatewayv2:Route",
    "aws:apigatewayv2:Stage",
    "aws:s3:Bucket",
    "aws:s3:BucketNotification",
    "aws:dynamodb:Table",
    "aws:sns:Topic",
    "aws:sns:Subscription",
    "aws:scheduler:Schedule",
];
