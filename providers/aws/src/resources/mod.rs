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

use serde_json::{Map, Value};
use skyform_protocol::CheckFailure;

/// The `.fifo` suffix rule SQS queues and SNS topics share: a FIFO one (`flag` = `fifo_queue` or
/// `fifo_topic` set) gets the suffix added to its name; a name ending in `.fifo` on a standard one
/// is refused. Nothing is checked while the flag or the name is unknown (a preview).
pub(crate) fn fifo_name(inputs: &mut Map<String, Value>, flag: &str, failures: &mut Vec<CheckFailure>) {
    let set = inputs.get(flag).and_then(Value::as_bool);
    if let Some(Value::String(name)) = inputs.get_mut("name")
        && name != skyform_protocol::UNKNOWN
    {
        if set == Some(true) && !name.ends_with(".fifo") {
            name.push_str(".fifo");
        } else if set == Some(false) && name.ends_with(".fifo") {
            failures.push(CheckFailure {
                property: "name".into(),
                reason: format!("a name ending in `.fifo` needs `{flag} = true`"),
            });
        }
    }
}

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn check(inputs: serde_json::Value, flag: &str) -> (serde_json::Value, Vec<String>) {
        let mut map = inputs.as_object().unwrap().clone();
        let mut failures = Vec::new();
        super::fifo_name(&mut map, flag, &mut failures);
        (json!(map), failures.into_iter().map(|f| format!("{}: {}", f.property, f.reason)).collect())
    }

    #[test]
    fn fifo_names_get_their_suffix_and_standard_ones_refuse_it() {
        let (out, failed) = check(json!({"name": "jobs", "fifo_queue": true}), "fifo_queue");
        assert_eq!((out["name"].as_str(), failed.len()), (Some("jobs.fifo"), 0));
        let (out, _) = check(json!({"name": "jobs.fifo", "fifo_topic": true}), "fifo_topic");
        assert_eq!(out["name"], "jobs.fifo", "the suffix is not doubled");
        let (_, failed) = check(json!({"name": "jobs.fifo", "fifo_topic": false}), "fifo_topic");
        assert_eq!(failed, ["name: a name ending in `.fifo` needs `fifo_topic = true`"]);
        // Unknown in a preview: nothing is decided yet.
        let (out, failed) = check(json!({"name": "jobs.fifo"}), "fifo_queue");
        assert_eq!((out["name"].as_str(), failed.len()), (Some("jobs.fifo"), 0));
        let unknown = skyform_protocol::UNKNOWN;
        let (out, _) = check(json!({"name": unknown, "fifo_queue": true}), "fifo_queue");
        assert_eq!(out["name"], unknown);
    }
}
