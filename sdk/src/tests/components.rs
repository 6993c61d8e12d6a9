//! Component expansions: exactly what each component declares on each target.

use serde_json::json;

use super::{local, resource};
use crate::{
    Bucket, Error, Function, HttpApi, KeyType, Notification, ObjectEvent, Program, Queue, QueueDelivery,
    QueueTrigger, ResourceOptions, Runtime, Schedule, Table, Topic, interpolate,
};

fn python(name: &str) -> Function {
    Function::new(name).code(format!("functions/{name}")).handler("app.handler").runtime(Runtime::Python3)
}

#[test]
fn hello_http_on_local() {
    let ctx = local();
    let hello = ctx.add(python("hello").env("GREETING", "Hello").memory(256).timeout_secs(10)).unwrap();
    let api =
        ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello).route("GET /hello", &hello)).unwrap();
    ctx.export("url", api.url());
    assert_eq!(
        ctx.manifest(),
        json!({
            "manifest": 1,
            "project": "shop",
            "stack": "dev",
            "resources": [
                {
                    "name": "hello",
                    "type": "local:Function",
                    "inputs": {
                        "code": "functions/hello",
                        "build": null,
                        "handler": "app.handler",
                        "runtime": "python3.12",
                        "environment": {"GREETING": "Hello"},
                        "memory": 256,
                        "timeout": 10,
                        "reserved_concurrency": null
                    },
                    "options": {},
                    "parent": "hello"
                },
                {
                    "name": "api",
                    "type": "local:HttpApi",
                    "inputs": {
                        "routes": [
                            {"route": "GET /hello/{name}", "function": {"$ref": "hello", "output": "function_name"}},
                            {"route": "GET /hello", "function": {"$ref": "hello", "output": "function_name"}}
                        ]
                    },
                    "options": {},
                    "parent": "api"
                }
            ],
            "components": [
                {"name": "hello", "type": "skyform:Function", "parent": null},
                {"name": "api", "type": "skyform:HttpApi", "parent": null}
            ],
            "outputs": {"url": {"$ref": "api", "output": "url"}}
        })
    );
    assert_eq!(hello.resources(), ["hello".to_string()]);
    assert_eq!(api.output("port"), crate::Ref::new("api", "port"));
}

#[test]
fn function_defaults_rust_functions_and_custom_runtimes() {
    let ctx = local();
    let api = ctx.add(Function::rust("api", "rust-api-fn").reserved_concurrency(5)).unwrap();
    ctx.add(python("py").runtime(Runtime::Custom("python3.12".into()))).unwrap();
    ctx.add(Function::new("js").code("functions/js").handler("index.handler").runtime(Runtime::Nodejs))
        .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "api")["inputs"],
        json!({
            "code": null,
            "build": {"cargo_package": "rust-api-fn"},
            "handler": "bootstrap",
            "runtime": "provided.al2023",
            "environment": {},
            "memory": 128,
            "timeout": 3,
            "reserved_concurrency": 5
        })
    );
    assert_eq!(resource(&m, "py")["inputs"]["runtime"], "python3.12");
    // A package outside the project's cargo workspace is found through its folder.
    ctx.add(Function::rust("own", "own-fn").code("functions/own")).unwrap();
    let m = ctx.manifest();
    assert_eq!(resource(&m, "own")["inputs"]["code"], "functions/own");
    assert_eq!(resource(&m, "own")["inputs"]["build"], json!({"cargo_package": "own-fn"}));
    assert_eq!(resource(&m, "js")["inputs"]["runtime"], "nodejs22.x");
    assert_eq!(api.function_name(), crate::Ref::new("api", "function_name"));
    assert_eq!(api.arn(), crate::Ref::new("api", "arn"));
}

#[test]
fn incomplete_functions_are_rejected_with_a_hint() {
    let ctx = local();
    let cases = [
        (Function::new("f").handler("a.b").runtime(Runtime::Python3), "no code"),
        (Function::new("f").code("x").runtime(Runtime::Python3), "no handler"),
        (Function::new("f").code("x").handler("a.b"), "no runtime"),
        (
            Function::new("f").code("x").handler("a.b").runtime(Runtime::Custom(String::new())),
            "runtime name is empty",
        ),
    ];
    for (function, expected) in cases {
        let err = ctx.add(function).unwrap_err();
        assert!(matches!(err, Error::InvalidComponent { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    // Nothing was declared by the failed attempts.
    assert_eq!(ctx.manifest()["resources"], json!([]));
    assert_eq!(ctx.manifest()["components"], json!([]));
}

#[test]
fn bad_routes_are_rejected() {
    let ctx = local();
    let f = ctx.add(python("f")).unwrap();
    let err = ctx.add(HttpApi::new("api").route("hello", &f)).unwrap_err();
    assert!(err.to_string().starts_with("`api`: the route `hello` is malformed"), "{err}");
    let err = ctx.add(HttpApi::new("api").route("GET /x", &f).route("GET /x", &f)).unwrap_err();
    assert!(err.to_string().contains("declared twice"), "{err}");
}

#[test]
fn env_values_may_be_references() {
    let ctx = local();
    let jobs = ctx.add(Queue::new("jobs")).unwrap();
    let f = ctx
        .add(
            python("sender")
                .env("QUEUE_URL", jobs.url())
                .env("PREFIX", interpolate!("{}/in", jobs.queue_name())),
        )
        .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "sender")["inputs"]["environment"],
        json!({
            "QUEUE_URL": {"$ref": "jobs", "output": "url"},
            "PREFIX": {"$concat": [{"$ref": "jobs", "output": "queue_name"}, "/in"]}
        })
    );
    assert_eq!(f.name(), "sender");
}

#[test]
fn queues_and_subscriptions_on_local() {
    let ctx = local();
    let dlq = ctx.add(Queue::new("jobs-failed").message_retention_secs(1_209_600)).unwrap();
    let jobs =
        ctx.add(Queue::new("jobs").visibility_timeout_secs(60).delay_secs(5).dead_letter(&dlq, 3)).unwrap();
    let worker = ctx.add(python("worker")).unwrap();
    let sub = jobs.subscribe(&worker).unwrap();
    jobs.subscribe_with_batch_size(&python_handle(&ctx, "other"), 1).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "jobs-failed")["inputs"],
        json!({"fifo": false, "visibility_timeout": 30, "message_retention": 1209600, "delay": 0, "dead_letter": null})
    );
    assert_eq!(
        resource(&m, "jobs"),
        &json!({
            "name": "jobs",
            "type": "local:Queue",
            "inputs": {
                "fifo": false,
                "visibility_timeout": 60,
                "message_retention": 345600,
                "delay": 5,
                "dead_letter": {"queue": {"$ref": "jobs-failed", "output": "arn"}, "max_receive_count": 3}
            },
            "options": {},
            "parent": "jobs"
        })
    );
    assert_eq!(
        resource(&m, "jobs-worker"),
        &json!({
            "name": "jobs-worker",
            "type": "local:QueueSubscription",
            "inputs": {
                "queue": {"$ref": "jobs", "output": "arn"},
                "function": {"$ref": "worker", "output": "function_name"},
                "batch_size": 10
            },
            "options": {},
            "parent": "jobs"
        })
    );
    assert_eq!(resource(&m, "jobs-other")["inputs"]["batch_size"], 1);
    assert_eq!(sub.resources(), ["jobs-worker".to_string()]);
    assert!(jobs.subscribe_with_batch_size(&worker, 11).is_err());
    assert!(ctx.add(Queue::new("q").dead_letter(&dlq, 0)).is_err());
}

#[test]
fn queue_trigger_settings_on_local() {
    let ctx = local();
    let jobs = ctx.add(Queue::new("jobs")).unwrap();
    let worker = ctx.add(python("worker")).unwrap();
    jobs.subscribe_with(
        &worker,
        QueueTrigger::new().batch_size(5).batching_window_secs(2).maximum_concurrency(3),
    )
    .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "jobs-worker")["inputs"],
        json!({"queue": {"$ref": "jobs", "output": "arn"}, "function": {"$ref": "worker", "output": "function_name"},
               "batch_size": 5, "batching_window": 2, "maximum_concurrency": 3})
    );
    // Out of bounds: refused when the program runs, naming the setting, its bounds and the value.
    for (trigger, text) in [
        (
            QueueTrigger::new().batch_size(0),
            "the batch size of the subscription of `worker` must be 1 to 10, not 0",
        ),
        (
            QueueTrigger::new().batching_window_secs(301),
            "the batching window of the subscription of `worker` must be 0 to 300 seconds, not 301",
        ),
        (
            QueueTrigger::new().maximum_concurrency(1),
            "the maximum concurrency of the subscription of `worker` must be 2 to 1000 (Lambda's bounds), not 1",
        ),
    ] {
        let e = jobs.subscribe_with(&worker, trigger).unwrap_err();
        assert!(e.to_string().contains(text), "{e}");
    }
}

#[test]
fn queues_subscribed_to_topics_on_local() {
    let ctx = local();
    let events = ctx.add(Topic::new("events")).unwrap();
    let audit = ctx.add(Queue::new("audit")).unwrap();
    let all = ctx.add(Queue::new("all")).unwrap();
    let sub = events
        .subscribe_queue_with(
            &audit,
            QueueDelivery::new().raw(true).filter_policy(json!({"kind": ["audit"]})),
        )
        .unwrap();
    events.subscribe_queue(&all).unwrap();
    assert_eq!(sub.resources(), ["events-audit".to_string()]);
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "events-audit"),
        &json!({
            "name": "events-audit",
            "type": "local:TopicSubscription",
            "inputs": {
                "topic": {"$ref": "events", "output": "arn"},
                "queue": {"$ref": "audit", "output": "arn"},
                "raw_message_delivery": true,
                "filter_policy": {"kind": ["audit"]}
            },
            "options": {},
            "parent": "events"
        })
    );
    assert_eq!(
        resource(&m, "events-all")["inputs"],
        json!({"topic": {"$ref": "events", "output": "arn"}, "queue": {"$ref": "all", "output": "arn"},
               "raw_message_delivery": false, "filter_policy": null})
    );
    for bad in [json!(["audit"]), json!({}), json!("kind")] {
        let e =
            events.subscribe_queue_with(&audit, QueueDelivery::new().filter_policy(bad.clone())).unwrap_err();
        assert!(
            e.to_string().contains("the filter policy of the subscription of `audit` must be a JSON object"),
            "{e}"
        );
    }
}

fn python_handle(ctx: &Program, name: &str) -> crate::FunctionHandle {
    ctx.add(python(name)).unwrap()
}

#[test]
fn topics_and_buckets_on_local() {
    let ctx = local();
    let events = ctx.add(Topic::new("events").fifo(true)).unwrap();
    let audit = python_handle(&ctx, "audit");
    events.subscribe(&audit).unwrap();
    let uploads = ctx.add(Bucket::new("uploads").versioning(true).force_destroy(true)).unwrap();
    let thumbs = python_handle(&ctx, "thumbs");
    uploads.on_object_created(&thumbs).unwrap();
    uploads.on_object_removed(&thumbs).unwrap();
    uploads.notify(&audit, Notification::new(ObjectEvent::Created).prefix("photos/").suffix(".jpg")).unwrap();
    let m = ctx.manifest();
    assert_eq!(resource(&m, "events")["type"], "local:Topic");
    assert_eq!(resource(&m, "events")["inputs"], json!({"fifo": true}));
    assert_eq!(
        resource(&m, "events-audit"),
        &json!({
            "name": "events-audit",
            "type": "local:TopicSubscription",
            "inputs": {"topic": {"$ref": "events", "output": "arn"}, "function": {"$ref": "audit", "output": "function_name"}},
            "options": {},
            "parent": "events"
        })
    );
    assert_eq!(resource(&m, "uploads")["type"], "local:Bucket");
    assert_eq!(resource(&m, "uploads")["inputs"], json!({"versioning": true, "force_destroy": true}));
    assert_eq!(
        resource(&m, "uploads-created-thumbs"),
        &json!({
            "name": "uploads-created-thumbs",
            "type": "local:BucketNotification",
            "inputs": {
                "bucket": {"$ref": "uploads", "output": "bucket_name"},
                "function": {"$ref": "thumbs", "output": "function_name"},
                "events": ["s3:ObjectCreated:*"],
                "prefix": null,
                "suffix": null
            },
            "options": {},
            "parent": "uploads"
        })
    );
    assert_eq!(resource(&m, "uploads-removed-thumbs")["inputs"]["events"], json!(["s3:ObjectRemoved:*"]));
    assert_eq!(resource(&m, "uploads-created-audit")["inputs"]["prefix"], "photos/");
    assert_eq!(resource(&m, "uploads-created-audit")["inputs"]["suffix"], ".jpg");
}

#[test]
fn schedules_and_tables_on_local() {
    let ctx = local();
    let report = python_handle(&ctx, "report");
    ctx.add(Schedule::cron("nightly", "0 3 * * ? *", &report).payload(json!({"kind": "daily"}))).unwrap();
    ctx.add(Schedule::rate("tick", "5 minutes", &report).enabled(false)).unwrap();
    let orders = ctx
        .add(
            Table::new("orders")
                .hash_key("customer", KeyType::String)
                .range_key("placed_at", KeyType::Number)
                .options(ResourceOptions::new().protect(true)),
        )
        .unwrap();
    ctx.add(Table::new("sessions").hash_key("id", KeyType::Binary)).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "nightly"),
        &json!({
            "name": "nightly",
            "type": "local:Schedule",
            "inputs": {
                "schedule": "cron(0 3 * * ? *)",
                "function": {"$ref": "report", "output": "function_name"},
                "payload": {"kind": "daily"},
                "enabled": true,
                "timezone": null
            },
            "options": {},
            "parent": "nightly"
        })
    );
    assert_eq!(resource(&m, "tick")["inputs"]["schedule"], "rate(5 minutes)");
    assert_eq!(resource(&m, "tick")["inputs"]["payload"], json!(null));
    assert_eq!(resource(&m, "tick")["inputs"]["enabled"], false);
    let paris = ctx.add(Schedule::cron("morning", "0 9 * * ? *", &report).timezone("Europe/Paris"));
    assert!(paris.is_ok());
    assert_eq!(resource(&ctx.manifest(), "morning")["inputs"]["timezone"], "Europe/Paris");
    assert_eq!(
        resource(&m, "orders"),
        &json!({
            "name": "orders",
            "type": "local:Table",
            "inputs": {
                "hash_key": {"name": "customer", "type": "string"},
                "range_key": {"name": "placed_at", "type": "number"}
            },
            "options": {"protect": true},
            "parent": "orders"
        })
    );
    assert_eq!(resource(&m, "sessions")["inputs"]["range_key"], json!(null));
    assert_eq!(orders.table_name(), crate::Ref::new("orders", "table_name"));

    let err = ctx.add(Schedule::new("bad", "every 5 minutes", &report)).unwrap_err();
    assert!(err.to_string().contains("expected `rate(5 minutes)`"), "{err}");
    let err = ctx.add(Table::new("t")).unwrap_err();
    assert!(err.to_string().contains("no hash key"), "{err}");
    let err =
        ctx.add(Table::new("t").hash_key("a", KeyType::String).range_key("a", KeyType::String)).unwrap_err();
    assert!(err.to_string().contains("also the hash key"), "{err}");
}

#[test]
fn component_options_reach_every_child_and_parent_nests_the_component() {
    let ctx = local();
    let app = ctx.component("app", "acme:App");
    let uploads = ctx
        .add(
            Bucket::new("uploads")
                .options(ResourceOptions::new().protect(true).retain_on_delete(true).parent(&app)),
        )
        .unwrap();
    let f = ctx.add(python("f").options(ResourceOptions::new().depends_on(&uploads))).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        m["components"],
        json!([
            {"name": "app", "type": "acme:App", "parent": null},
            {"name": "uploads", "type": "skyform:Bucket", "parent": "app"},
            {"name": "f", "type": "skyform:Function", "parent": null}
        ])
    );
    assert_eq!(resource(&m, "uploads")["options"], json!({"protect": true, "retain_on_delete": true}));
    assert_eq!(resource(&m, "uploads")["parent"], "uploads");
    assert_eq!(resource(&m, "f")["options"], json!({"depends_on": ["uploads"]}));
    assert_eq!(f.name(), "f");
}

#[test]
fn table_indexes_and_change_triggers_on_local() {
    let ctx = local();
    let audit = python_handle(&ctx, "audit");
    let users = ctx
        .add(
            Table::new("users")
                .hash_key("id", KeyType::String)
                .index("byEmail", ("email", KeyType::String), None)
                .index("byTeam", ("team", KeyType::String), Some(("joined", KeyType::Number))),
        )
        .unwrap();
    let sub = users.on_change(&audit).unwrap();
    assert_eq!(sub.resources(), ["users-audit"]);
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "users")["inputs"]["indexes"],
        json!([
            {"name": "byEmail", "hash_key": {"name": "email", "type": "string"}, "range_key": null},
            {"name": "byTeam", "hash_key": {"name": "team", "type": "string"}, "range_key": {"name": "joined", "type": "number"}}
        ])
    );
    assert_eq!(
        resource(&m, "users-audit"),
        &json!({
            "name": "users-audit",
            "type": "local:TableSubscription",
            "inputs": {
                "table": {"$ref": "users", "output": "arn"},
                "function": {"$ref": "audit", "output": "function_name"},
                "batch_size": 100
            },
            "options": {},
            "parent": "users"
        })
    );
    assert_eq!(users.stream_arn(), crate::Ref::new("users", "stream_arn"));
    assert!(users.on_change_with_batch_size(&audit, 0).unwrap_err().to_string().contains("1 to 10000"));

    // Bad indexes are refused with what to fix.
    let t = || Table::new("t").hash_key("id", KeyType::String);
    let err = ctx.add(t().index("x", ("a", KeyType::String), None)).unwrap_err();
    assert!(err.to_string().contains("3 to 255"), "{err}");
    let err = ctx
        .add(t().index("byA", ("a", KeyType::String), None).index("byA", ("b", KeyType::String), None))
        .unwrap_err();
    assert!(err.to_string().contains("declared twice"), "{err}");
    let err = ctx.add(t().index("byId", ("id", KeyType::Number), None)).unwrap_err();
    assert!(err.to_string().contains("two types"), "{err}");
}
