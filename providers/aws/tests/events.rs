//! Event sources against moto through the protocol: SNS topics and subscriptions, Lambda
//! event source mappings and function URLs, Scheduler schedules.

mod common;

use common::{LAMBDA_TRUST, Provider, import_find_delete, moto};
use serde_json::{Value, json};

fn function(p: &mut Provider, name: &str) -> (String, Value) {
    let role = p.check("aws:iam:Role", name, json!({"assume_role_policy": LAMBDA_TRUST}), None);
    let role_arn = p.create("aws:iam:Role", name, &role).1["arn"].clone();
    let f = p.check(
        "aws:lambda:Function",
        name,
        json!({"role": role_arn, "runtime": "python3.12", "handler": "app.handler", "code": "hello"}),
        None,
    );
    let (id, out) = p.create("aws:lambda:Function", name, &f);
    (id, out)
}

#[test]
fn topic_and_subscription_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:sns:Topic";
    let inputs = p.check(ty, "orders", json!({"display_name": "Orders"}), None);
    let (id, out) = p.create(ty, "orders", &inputs);
    assert_eq!(id, format!("arn:aws:sns:us-east-1:123456789012:{}", inputs["name"].as_str().unwrap()));
    assert_eq!(out["arn"], id);
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);
    let mut news = inputs.clone();
    news["display_name"] = json!("All orders");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    moto().py(&format!("client('sns').set_topic_attributes(TopicArn='{id}', AttributeName='DisplayName', AttributeValue='by hand')"));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["display_name"], "by hand");

    // Subscription of a queue.
    let queue = p.check("aws:sqs:Queue", "order-events", json!({}), None);
    let (queue_url, queue_out) = p.create("aws:sqs:Queue", "order-events", &queue);
    let sty = "aws:sns:Subscription";
    let sub = p.check(
        sty,
        "to-queue",
        json!({"topic_arn": id, "protocol": "sqs", "endpoint": queue_out["arn"]}),
        None,
    );
    let (sub_id, _) = p.create(sty, "to-queue", &sub);
    assert!(sub_id.starts_with(&id), "{sub_id}");
    assert_eq!(p.read(sty, Some(&sub_id), &sub)["inputs"], sub);
    let mut snews = sub.clone();
    snews["raw_message_delivery"] = json!(true);
    snews["filter_policy"] = json!({"kind": ["paid"]});
    assert_eq!(p.diff(sty, &sub_id, &sub, &snews)["replaces"], json!([]));
    p.update(sty, &sub_id, &sub, &snews);
    assert_eq!(p.read(sty, Some(&sub_id), &snews)["inputs"], snews);
    moto().py(&format!(
        "client('sns').set_subscription_attributes(SubscriptionArn='{sub_id}', AttributeName='RawMessageDelivery', AttributeValue='false')"
    ));
    assert_eq!(p.read(sty, Some(&sub_id), &snews)["inputs"]["raw_message_delivery"], false);
    // Another endpoint is another subscription: created first, the old one deleted after.
    let queue2 = p.check("aws:sqs:Queue", "order-events-2", json!({}), None);
    let (queue2_url, queue2_out) = p.create("aws:sqs:Queue", "order-events-2", &queue2);
    let sub2 = p.check(
        sty,
        "to-queue",
        json!({"topic_arn": id, "protocol": "sqs", "endpoint": queue2_out["arn"]}),
        None,
    );
    let d = p.diff(sty, &sub_id, &snews, &sub2);
    assert_eq!(
        (d["replaces"].clone(), d["delete_before_replace"].clone()),
        (json!(["endpoint"]), json!(false))
    );
    let (sub2_id, _) = p.create(sty, "to-queue", &sub2);
    p.delete(sty, &sub_id, &snews);
    assert!(p.read(sty, Some(&sub_id), &snews).is_null());
    import_find_delete(&mut p, sty, &sub2_id, &sub2);

    // Topic replacement (FIFO) and the rest of its lifecycle.
    let fifo = p.check(ty, "orders", json!({"fifo_topic": true}), None);
    assert!(fifo["name"].as_str().unwrap().ends_with(".fifo"));
    let d = p.diff(ty, &id, &news, &fifo);
    assert_eq!(d["delete_before_replace"], false, "{d}");
    let (fifo_id, _) = p.create(ty, "orders", &fifo);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    import_find_delete(&mut p, ty, &fifo_id, &fifo);
    p.delete("aws:sqs:Queue", &queue_url, &queue);
    p.delete("aws:sqs:Queue", &queue2_url, &queue2);
}

#[test]
fn event_source_mapping_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let (fn_name, _) = function(&mut p, "worker");
    let queue = p.check("aws:sqs:Queue", "work", json!({}), None);
    let (_, queue_out) = p.create("aws:sqs:Queue", "work", &queue);
    let ty = "aws:lambda:EventSourceMapping";
    let inputs = p.check(
        ty,
        "work-to-worker",
        json!({"function": fn_name, "event_source_arn": queue_out["arn"]}),
        None,
    );
    let (id, out) = p.create(ty, "work-to-worker", &inputs);
    assert_eq!(out["uuid"], id);
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);
    let mut news = inputs.clone();
    news["batch_size"] = json!(5);
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    moto().py(&format!("client('lambda').update_event_source_mapping(UUID='{id}', BatchSize=7)"));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["batch_size"], 7);
    // Another queue: a new mapping is created before the old one goes.
    let queue2 = p.check("aws:sqs:Queue", "work2", json!({}), None);
    let (_, queue2_out) = p.create("aws:sqs:Queue", "work2", &queue2);
    let moved = p.check(
        ty,
        "work-to-worker",
        json!({"function": fn_name, "event_source_arn": queue2_out["arn"]}),
        None,
    );
    let d = p.diff(ty, &id, &news, &moved);
    assert_eq!(
        (d["replaces"].clone(), d["delete_before_replace"].clone()),
        (json!(["event_source_arn"]), json!(false))
    );
    let (id2, _) = p.create(ty, "work-to-worker", &moved);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    import_find_delete(&mut p, ty, &id2, &moved);
}

/// What the SDK declares for a queue subscription: partial batch responses, a batching window
/// and a concurrency limit, read back without drift; dropping the limit clears `ScalingConfig`.
#[test]
fn event_source_mapping_with_partial_batch_responses_and_concurrency() {
    let mut p = Provider::moto(json!({}));
    let (fn_name, _) = function(&mut p, "batcher");
    let queue = p.check("aws:sqs:Queue", "batched", json!({}), None);
    let (_, queue_out) = p.create("aws:sqs:Queue", "batched", &queue);
    let ty = "aws:lambda:EventSourceMapping";
    let inputs = p.check(
        ty,
        "batched-batcher",
        json!({"function": fn_name, "event_source_arn": queue_out["arn"], "batch_size": 10,
               "maximum_batching_window_in_seconds": 2, "maximum_concurrency": 5,
               "function_response_types": ["ReportBatchItemFailures"]}),
        None,
    );
    let (id, _) = p.create(ty, "batched-batcher", &inputs);
    let got = moto().py(&format!(
        "m = client('lambda').get_event_source_mapping(UUID='{id}'); \
         print(json.dumps([m['FunctionResponseTypes'], m['ScalingConfig'], m['MaximumBatchingWindowInSeconds']]))"
    ));
    let got: Value = serde_json::from_str(got.trim()).unwrap();
    assert_eq!(got, json!([["ReportBatchItemFailures"], {"MaximumConcurrency": 5}, 2]));
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs, "no drift after create");
    let mut news = inputs.clone();
    news.as_object_mut().unwrap().remove("maximum_concurrency");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["changed"], json!(["maximum_concurrency"]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    p.delete(ty, &id, &news);
    p.delete("aws:sqs:Queue", queue_out["url"].as_str().unwrap(), &queue);
}

/// A queue policy letting a topic send to the queue: created, read back, changed, drift seen,
/// deleted (the queue keeps no policy).
#[test]
fn queue_policy_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let queue = p.check("aws:sqs:Queue", "audit", json!({}), None);
    let (url, queue_out) = p.create("aws:sqs:Queue", "audit", &queue);
    let ty = "aws:sqs:QueuePolicy";
    let policy = |topic: &str| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "events", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_out["arn"],
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:sns:us-east-1:123456789012:{topic}")}}}]})
    };
    // A policy given as a string is checked into an object.
    let inputs =
        p.check(ty, "audit-policy", json!({"queue_url": url, "policy": policy("a").to_string()}), None);
    assert_eq!(inputs["policy"], policy("a"));
    let bad = p.check_failures(ty, json!({"queue_url": url, "policy": "{not json"}));
    assert_eq!(bad[0]["property"], "policy", "{bad:?}");
    let (id, out) = p.create(ty, "audit-policy", &inputs);
    assert_eq!((id.as_str(), &out["queue_url"]), (url.as_str(), &json!(url)));
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs, "no drift after create");
    let mut news = inputs.clone();
    news["policy"] = policy("b");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    moto().py(&format!(
        "client('sqs').set_queue_attributes(QueueUrl='{url}', Attributes={{'Policy': {}}})",
        serde_json::to_string(&policy("c").to_string()).unwrap()
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["policy"], policy("c"), "drift is seen");
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null(), "no policy left on the queue");
    p.delete("aws:sqs:Queue", &url, &queue);
}

#[test]
fn function_url_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let (fn_name, _) = function(&mut p, "web");
    let ty = "aws:lambda:FunctionUrl";
    let inputs = p.check(ty, "web-url", json!({"function": fn_name}), None);
    let (id, out) = p.create(ty, "web-url", &inputs);
    assert_eq!(id, fn_name);
    assert!(out["url"].as_str().unwrap().starts_with("https://"), "{out}");
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);
    // A public URL needs its permission, which `read` reports back as declared.
    let perm = p.check(
        "aws:lambda:Permission",
        "public",
        json!({"function": fn_name, "action": "lambda:InvokeFunctionUrl", "principal": "*", "function_url_auth_type": "NONE"}),
        None,
    );
    let (perm_id, _) = p.create("aws:lambda:Permission", "public", &perm);
    // (moto drops the `lambda:FunctionUrlAuthType` condition that AWS records, so only the
    // rest of the statement is compared.)
    let read = p.read("aws:lambda:Permission", Some(&perm_id), &perm)["inputs"].clone();
    assert_eq!((&read["action"], &read["principal"]), (&perm["action"], &perm["principal"]), "{read}");
    p.delete("aws:lambda:Permission", &perm_id, &perm);
    let mut news = inputs.clone();
    news["auth_type"] = json!("AWS_IAM");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    moto().py(&format!(
        "client('lambda').update_function_url_config(FunctionName='{fn_name}', AuthType='NONE')"
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["auth_type"], "NONE");
    // The URL of another function replaces this one; a URL is one per function, so the
    // identity changes and the new one can come first.
    let other = p.check(ty, "web-url", json!({"function": "other"}), None);
    let d = p.diff(ty, &id, &news, &other);
    assert_eq!(
        (d["replaces"].clone(), d["delete_before_replace"].clone()),
        (json!(["function"]), json!(false))
    );
    import_find_delete(&mut p, ty, &id, &news);
}

#[test]
fn schedule_full_lifecycle() {
    let mut p = Provider::moto(json!({}));
    let ty = "aws:scheduler:Schedule";
    let target = json!({"arn": "arn:aws:lambda:us-east-1:123456789012:function:cron", "role_arn": "arn:aws:iam::123456789012:role/scheduler", "input": {"job": "nightly"}});
    let f = p.check_failures(ty, json!({"schedule_expression": "cron(0 12 * * *)", "target": target}));
    assert!(f[0]["reason"].as_str().unwrap().contains("six"), "{f:?}");
    let inputs =
        p.check(ty, "nightly", json!({"schedule_expression": "cron(0 3 * * ? *)", "target": target}), None);
    let (id, out) = p.create(ty, "nightly", &inputs);
    assert_eq!(id, format!("default/{}", inputs["name"].as_str().unwrap()));
    assert!(out["arn"].as_str().unwrap().contains(":schedule/default/"), "{out}");
    assert_eq!(p.read(ty, Some(&id), &inputs)["inputs"], inputs);
    let mut news = inputs.clone();
    news["schedule_expression"] = json!("rate(5 minutes)");
    news["description"] = json!("every five minutes");
    assert_eq!(p.diff(ty, &id, &inputs, &news)["replaces"], json!([]));
    p.update(ty, &id, &inputs, &news);
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"], news);
    let name = news["name"].as_str().unwrap();
    moto().py(&format!(
        "client('scheduler').update_schedule(Name='{name}', ScheduleExpression='rate(1 hour)', FlexibleTimeWindow={{'Mode': 'OFF'}}, \
         Target={{'Arn': 'arn:aws:lambda:us-east-1:123456789012:function:cron', 'RoleArn': 'arn:aws:iam::123456789012:role/scheduler'}})"
    ));
    assert_eq!(p.read(ty, Some(&id), &news)["inputs"]["schedule_expression"], "rate(1 hour)");
    let renamed = p.check(
        ty,
        "nightly",
        json!({"schedule_expression": "rate(5 minutes)", "target": target, "name": format!("{name}-b")}),
        None,
    );
    let d = p.diff(ty, &id, &news, &renamed);
    assert_eq!(d["delete_before_replace"], false, "{d}");
    let (id2, _) = p.create(ty, "nightly", &renamed);
    p.delete(ty, &id, &news);
    assert!(p.read(ty, Some(&id), &news).is_null());
    import_find_delete(&mut p, ty, &id2, &renamed);
}
