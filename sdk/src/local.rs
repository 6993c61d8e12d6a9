//! How each component expands on the `local` target: the local cloud's resource types.
//!
//! The local cloud implements each component as a single resource of type `local:<Component>`
//! named like the component, whose inputs are the component's settings in snake_case. Triggers
//! (queue and topic subscriptions, bucket notifications) are separate resources named
//! `<source>-<function>` (`<bucket>-<event>-<function>` for buckets), children of the source's
//! component. `sdk/COMPONENTS.md` documents every type, its inputs and its outputs; keep it in
//! step with this file.
//!
//! Triggers refer to functions by their `function_name` output and to queues and topics by
//! their `arn`, as the corresponding AWS resources do, so that the two expansions stay alike.

use serde_json::{Map, Value, json};

use crate::bucket::{Bucket, BucketHandle, Notification};
use crate::component::{Expansion, begin};
use crate::function::Function;
use crate::http_api::HttpApi;
use crate::queue::{Queue, QueueHandle, QueueTrigger};
use crate::schedule::Schedule;
use crate::table::{KeyType, Table, TableHandle};
use crate::topic::{QueueDelivery, Topic, TopicHandle};
use crate::{FunctionHandle, Program, ResourceOptions};

pub(crate) fn function(ctx: &Program, f: &Function) -> Expansion {
    let mut children = begin(ctx, &f.name, "skyform:Function", &f.options);
    let build = match &f.cargo_package {
        Some(package) => json!({ "cargo_package": package }),
        None => Value::Null,
    };
    let environment: Map<String, Value> = f.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let main = children.add(
        &f.name,
        "local:Function",
        json!({
            "code": f.code,
            "build": build,
            "handler": f.handler,
            "runtime": f.runtime.as_ref().map(|r| r.as_str()),
            "environment": environment,
            "memory": f.memory,
            "timeout": f.timeout,
            "reserved_concurrency": f.reserved_concurrency,
        }),
    );
    children.finish(&main)
}

pub(crate) fn http_api(ctx: &Program, api: &HttpApi) -> Expansion {
    let mut children = begin(ctx, &api.name, "skyform:HttpApi", &api.options);
    let routes: Vec<Value> = api
        .routes
        .iter()
        .map(|r| json!({ "route": r.key, "function": r.function.function_name() }))
        .collect();
    let main = children.add(&api.name, "local:HttpApi", json!({ "routes": routes }));
    children.finish(&main)
}

pub(crate) fn queue(ctx: &Program, q: &Queue) -> Expansion {
    let mut children = begin(ctx, &q.name, "skyform:Queue", &q.options);
    let dead_letter = match &q.dead_letter {
        Some((dlq, max)) => json!({ "queue": dlq.arn(), "max_receive_count": max }),
        None => Value::Null,
    };
    let main = children.add(
        &q.name,
        "local:Queue",
        json!({
            "fifo": q.fifo,
            "visibility_timeout": q.visibility_timeout,
            "message_retention": q.message_retention,
            "delay": q.delay,
            "dead_letter": dead_letter,
        }),
    );
    children.finish(&main)
}

/// Declares a trigger resource as a child of its source component.
fn trigger(ctx: &Program, source: &str, name: String, type_: &str, inputs: Value) -> Vec<String> {
    let resource = ctx.register(name, type_.to_string(), inputs, ResourceOptions::new().parent(source));
    vec![resource.name().to_string()]
}

pub(crate) fn queue_subscription(
    ctx: &Program,
    q: &QueueHandle,
    f: &FunctionHandle,
    t: &QueueTrigger,
) -> Vec<String> {
    let mut inputs = json!({
        "queue": q.arn(),
        "function": f.function_name(),
        "batch_size": t.batch_size,
    });
    if t.batching_window > 0 {
        inputs["batching_window"] = json!(t.batching_window);
    }
    if let Some(n) = t.maximum_concurrency {
        inputs["maximum_concurrency"] = json!(n);
    }
    trigger(ctx, q.name(), format!("{}-{}", q.name(), f.name()), "local:QueueSubscription", inputs)
}

pub(crate) fn topic(ctx: &Program, t: &Topic) -> Expansion {
    let mut children = begin(ctx, &t.name, "skyform:Topic", &t.options);
    let main = children.add(&t.name, "local:Topic", json!({ "fifo": t.fifo }));
    children.finish(&main)
}

pub(crate) fn topic_subscription(ctx: &Program, t: &TopicHandle, f: &FunctionHandle) -> Vec<String> {
    trigger(
        ctx,
        t.name(),
        format!("{}-{}", t.name(), f.name()),
        "local:TopicSubscription",
        json!({ "topic": t.arn(), "function": f.function_name() }),
    )
}

/// A queue subscribed to a topic: `<topic>-<queue>`, a `local:TopicSubscription` with `queue`.
pub(crate) fn topic_queue_subscription(
    ctx: &Program,
    t: &TopicHandle,
    q: &QueueHandle,
    d: &QueueDelivery,
) -> Vec<String> {
    trigger(
        ctx,
        t.name(),
        format!("{}-{}", t.name(), q.name()),
        "local:TopicSubscription",
        json!({
            "topic": t.arn(),
            "queue": q.arn(),
            "raw_message_delivery": d.raw,
            "filter_policy": d.filter_policy,
        }),
    )
}

pub(crate) fn bucket(ctx: &Program, b: &Bucket) -> Expansion {
    let mut children = begin(ctx, &b.name, "skyform:Bucket", &b.options);
    let main = children.add(
        &b.name,
        "local:Bucket",
        json!({ "versioning": b.versioning, "force_destroy": b.force_destroy }),
    );
    children.finish(&main)
}

pub(crate) fn bucket_notification(
    ctx: &Program,
    b: &BucketHandle,
    f: &FunctionHandle,
    n: &Notification,
) -> Vec<String> {
    trigger(
        ctx,
        b.name(),
        format!("{}-{}-{}", b.name(), n.event.word(), f.name()),
        "local:BucketNotification",
        json!({
            "bucket": b.bucket_name(),
            "function": f.function_name(),
            "events": [n.event.as_str()],
            "prefix": n.prefix,
            "suffix": n.suffix,
        }),
    )
}

pub(crate) fn schedule(ctx: &Program, s: &Schedule) -> Expansion {
    let mut children = begin(ctx, &s.name, "skyform:Schedule", &s.options);
    let main = children.add(
        &s.name,
        "local:Schedule",
        json!({
            "schedule": s.expression.trim(),
            "function": s.function.function_name(),
            "payload": s.payload,
            "enabled": s.enabled,
            "timezone": s.timezone,
        }),
    );
    children.finish(&main)
}

pub(crate) fn table(ctx: &Program, t: &Table) -> Expansion {
    let mut children = begin(ctx, &t.name, "skyform:Table", &t.options);
    let key = |k: &Option<(String, KeyType)>| match k {
        Some((name, type_)) => json!({ "name": name, "type": type_.as_str() }),
        None => Value::Null,
    };
    let mut inputs = json!({ "hash_key": key(&t.hash_key), "range_key": key(&t.range_key) });
    if !t.indexes.is_empty() {
        inputs["indexes"] = t
            .indexes
            .iter()
            .map(|i| json!({ "name": i.name, "hash_key": key(&Some(i.hash_key.clone())), "range_key": key(&i.range_key) }))
            .collect();
    }
    let main = children.add(&t.name, "local:Table", inputs);
    children.finish(&main)
}

/// A table's change trigger: `TABLE-FUNCTION`, a `local:TableSubscription`.
pub(crate) fn table_subscription(
    ctx: &Program,
    t: &TableHandle,
    f: &FunctionHandle,
    batch_size: u32,
) -> Vec<String> {
    trigger(
        ctx,
        t.name(),
        format!("{}-{}", t.name(), f.name()),
        "local:TableSubscription",
        json!({ "table": t.arn(), "function": f.function_name(), "batch_size": batch_size }),
    )
}
