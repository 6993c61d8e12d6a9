//! One module per AWS service; each implements [`crate::resource::Kind`] for its types.

pub mod apigw;
pub mod iam;
pub mod lambda;
pub mod logs;
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
    "aws:apigatewayv2:Api",
    "aws:apigatewayv2:Integration",
    "aws:apigatewayv2:Route",
    "aws:apigatewayv2:Stage",
];
