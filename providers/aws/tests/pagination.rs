//! Every list call follows its pages: with more items than one page holds (moto pages as AWS
//! does), the provider still finds what it looks for and removes all it must remove.

mod common;

use common::{LAMBDA_TRUST, Provider, moto};
use serde_json::json;

/// SNS answers 100 subscriptions a page: finding a subscription by its inputs (an interrupted
/// create) must look past the first page.
#[test]
fn a_subscription_is_found_past_the_first_page() {
    let mut p = Provider::moto(json!({}));
    let topic = p.check("aws:sns:Topic", "busy", json!({}), None);
    let (topic_arn, _) = p.create("aws:sns:Topic", "busy", &topic);
    moto().py(&format!(
        r#"
sns = client('sns')
for i in range(130):
    sns.subscribe(TopicArn='{topic_arn}', Protocol='sqs', Endpoint=f'arn:aws:sqs:us-east-1:123456789012:q-{{i:03}}')
pages = sns.list_subscriptions_by_topic(TopicArn='{topic_arn}')
assert 'NextToken' in pages, 'moto answers more than one page'
"#
    ));
    let last = json!({"topic_arn": topic_arn, "protocol": "sqs", "endpoint": "arn:aws:sqs:us-east-1:123456789012:q-129"});
    let inputs = p.check("aws:sns:Subscription", "last", last, None);
    let found = p.read("aws:sns:Subscription", None, &inputs);
    assert!(found["id"].as_str().is_some_and(|id| id.starts_with(&topic_arn)), "{found}");
    assert_eq!(found["inputs"]["endpoint"], "arn:aws:sqs:us-east-1:123456789012:q-129");
    p.delete("aws:sns:Topic", &topic_arn, &topic);
}

/// A role is deleted with every managed policy detached first, over several pages of
/// ListAttachedRolePolicies (moto pages it; its ListRolePolicies answers one page).
#[test]
fn a_role_with_many_managed_policies_is_deleted() {
    let mut p = Provider::moto(json!({}));
    let inputs = p.check("aws:iam:Role", "crowded", json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let (name, _) = p.create("aws:iam:Role", "crowded", &inputs);
    moto().py(&format!(
        r#"
iam = client('iam')
doc = json.dumps({{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}]}})
for i in range(130):
    arn = iam.create_policy(PolicyName=f'{name}-{{i:03}}', PolicyDocument=doc)['Policy']['Arn']
    iam.attach_role_policy(RoleName='{name}', PolicyArn=arn)
assert iam.list_attached_role_policies(RoleName='{name}', MaxItems=100)['IsTruncated']
"#
    ));
    p.delete("aws:iam:Role", &name, &inputs);
    assert!(p.read("aws:iam:Role", Some(&name), &inputs).is_null(), "role {name} is gone");
}
