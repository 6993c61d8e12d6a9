//! Component expansions on the `aws` target: exactly what each component declares.

use serde_json::{Value, json};

use super::resource;
use crate::{
    Bucket, Function, HttpApi, KeyType, Notification, ObjectEvent, Program, Queue, QueueDelivery,
    QueueTrigger, ResourceOptions, Runtime, Schedule, Table, Target, Topic, interpolate,
};

/// An empty `prod` program of project `shop` targeting AWS.
fn aws() -> Program {
    Program::new("shop", "prod", Target::Aws, json!({}))
}

fn python(name: &str) -> Function {
    Function::new(name).code(format!("functions/{name}")).handler("app.handler").runtime(Runtime::Python3)
}

fn names(m: &Value) -> Vec<&str> {
    m["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect()
}

fn r(name: &str, output: &str) -> Value {
    json!({"$ref": name, "output": output})
}

const TRUST_LAMBDA: &str = "lambda.amazonaws.com";

fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

#[test]
fn hello_http_on_aws() {
    let ctx = aws();
    let hello = ctx.add(python("hello").env("GREETING", "Hello").memory(256).timeout_secs(10)).unwrap();
    let api =
        ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello).route("GET /hello", &hello)).unwrap();
    ctx.export("url", api.url());
    ctx.export("fn", hello.function_name());
    ctx.export("arn", hello.arn());
    assert_eq!(
        ctx.manifest(),
        json!({
            "manifest": 1,
            "project": "shop",
            "stack": "prod",
            "resources": [
                {
                    "name": "hello-role",
                    "type": "aws:iam:Role",
                    "inputs": {
                        "assume_role_policy": trust(TRUST_LAMBDA),
                        "managed_policy_arns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
                    },
                    "options": {},
                    "parent": "hello"
                },
                {
                    "name": "hello",
                    "type": "aws:lambda:Function",
                    "inputs": {
                        "code": "functions/hello",
                        "role": r("hello-role", "arn"),
                        "runtime": "python3.12",
                        "handler": "app.handler",
                        "environment": {"GREETING": "Hello"},
                        "memory_size": 256,
                        "timeout": 10,
                        "architecture": "x86_64"
                    },
                    "options": {},
                    "parent": "hello"
                },
                {
                    "name": "hello-logs",
                    "type": "aws:logs:LogGroup",
                    "inputs": {
                        "name": {"$concat": ["/aws/lambda/", r("hello", "name")]},
                        "retention_in_days": 14
                    },
                    "options": {},
                    "parent": "hello"
                },
                {
                    "name": "api",
                    "type": "aws:apigatewayv2:Api",
                    "inputs": {"protocol_type": "HTTP"},
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-stage",
                    "type": "aws:apigatewayv2:Stage",
                    "inputs": {"api_id": r("api", "id"), "name": "$default", "auto_deploy": true},
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-hello-permission",
                    "type": "aws:lambda:Permission",
                    "inputs": {
                        "function": r("hello", "name"),
                        "principal": "apigateway.amazonaws.com",
                        "source_arn": {"$concat": [r("api", "execution_arn"), "/*/*"]}
                    },
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-get-hello-name-integration",
                    "type": "aws:apigatewayv2:Integration",
                    "inputs": {
                        "api_id": r("api", "id"),
                        "integration_type": "AWS_PROXY",
                        "integration_uri": r("hello", "arn"),
                        "payload_format_version": "2.0"
                    },
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-get-hello-name-route",
                    "type": "aws:apigatewayv2:Route",
                    "inputs": {
                        "api_id": r("api", "id"),
                        "route_key": "GET /hello/{name}",
                        "target": r("api-get-hello-name-integration", "target")
                    },
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-get-hello-integration",
                    "type": "aws:apigatewayv2:Integration",
                    "inputs": {
                        "api_id": r("api", "id"),
                        "integration_type": "AWS_PROXY",
                        "integration_uri": r("hello", "arn"),
                        "payload_format_version": "2.0"
                    },
                    "options": {},
                    "parent": "api"
                },
                {
                    "name": "api-get-hello-route",
                    "type": "aws:apigatewayv2:Route",
                    "inputs": {
                        "api_id": r("api", "id"),
                        "route_key": "GET /hello",
                        "target": r("api-get-hello-integration", "target")
                    },
                    "options": {},
                    "parent": "api"
                }
            ],
            "components": [
                {"name": "hello", "type": "skyform:Function", "parent": null},
                {"name": "api", "type": "skyform:HttpApi", "parent": null}
            ],
            "outputs": {
                "arn": r("hello", "arn"),
                "fn": r("hello", "name"),
                "url": r("api-stage", "invoke_url")
            }
        })
    );
    assert_eq!(hello.resources(), ["hello-role", "hello", "hello-logs"]);
    // `id()` and `output()` keep naming the main resource.
    assert_eq!(hello.id(), crate::Ref::id("hello"));
    assert_eq!(api.output("api_endpoint"), crate::Ref::new("api", "api_endpoint"));
}

#[test]
fn runtimes_map_to_aws_names() {
    let ctx = aws();
    ctx.add(Function::new("js").code("functions/js").handler("index.handler").runtime(Runtime::Nodejs))
        .unwrap();
    ctx.add(python("py").runtime(Runtime::Custom("python3.11".into()))).unwrap();
    ctx.add(Function::new("native").code("functions/native").handler("bootstrap").runtime(Runtime::Provided))
        .unwrap();
    let m = ctx.manifest();
    assert_eq!(resource(&m, "js")["inputs"]["runtime"], "nodejs22.x");
    assert_eq!(resource(&m, "py")["inputs"]["runtime"], "python3.11");
    assert_eq!(resource(&m, "native")["inputs"]["runtime"], "provided.al2023");
    assert_eq!(resource(&m, "native")["inputs"]["handler"], "bootstrap");
}

#[test]
fn rust_functions_are_built_by_a_command() {
    let ctx = aws();
    let api = ctx.add(Function::rust("api", "rust-api-fn").code("functions/api")).unwrap();
    ctx.add(Function::rust("member", "member-fn")).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        names(&m),
        ["api-role", "api-build", "api", "api-logs", "member-role", "member-build", "member", "member-logs"]
    );
    let create = resource(&m, "api-build")["inputs"]["create"].as_str().unwrap().to_string();
    for part in [
        "cargo-zigbuild zigbuild --release --quiet -p rust-api-fn --manifest-path functions/api/Cargo.toml \
         --target x86_64-unknown-linux-gnu.2.17 --target-dir \"$T\"",
        "T=\"${CARGO_TARGET_DIR:-.skyform/build/target}\"",
        "/bin/pip\" install --quiet --disable-pip-version-check ziglang==",
        "cp \"$B\" .skyform/build/aws/api/bootstrap; chmod 755 .skyform/build/aws/api/bootstrap; echo .skyform/build/aws/api",
    ] {
        assert!(create.contains(part), "{part}\nnot in\n{create}");
    }
    assert_eq!(
        resource(&m, "api-build"),
        &json!({
            "name": "api-build",
            "type": "core:Command",
            "inputs": {
                "create": create,
                // No project folder in this test, so no fingerprint of the sources.
                "triggers": {"package": "rust-api-fn", "code": "functions/api", "sources": null, "architecture": "x86_64"}
            },
            "options": {},
            "parent": "api"
        })
    );
    assert_eq!(
        resource(&m, "api")["inputs"],
        json!({
            "code": r("api-build", "stdout"),
            "role": r("api-role", "arn"),
            "runtime": "provided.al2023",
            "handler": "bootstrap",
            "environment": {},
            "memory_size": 128,
            "timeout": 3,
            "architecture": "x86_64"
        })
    );
    assert!(
        resource(&m, "member-build")["inputs"]["create"]
            .as_str()
            .unwrap()
            .contains("-p member-fn --target x86_64-unknown-linux-gnu.2.17 --target-dir")
    );
    assert_eq!(api.resources(), ["api-role", "api-build", "api", "api-logs"]);
}

#[test]
fn rust_function_sources_are_fingerprinted() {
    let dir = std::env::temp_dir().join(format!("skyform-sdk-aws-fp-{}", std::process::id()));
    let pkg = dir.join("functions/api");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    std::fs::create_dir_all(pkg.join("target/release")).unwrap();
    std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    std::fs::write(pkg.join("src/main.rs"), "fn main() {}\n").unwrap();
    let sources = |dir: &std::path::Path| {
        let ctx = aws().with_project_dir(dir);
        ctx.add(Function::rust("api", "x").code("functions/api")).unwrap();
        resource(&ctx.manifest(), "api-build")["inputs"]["triggers"]["sources"].clone()
    };
    let first = sources(&dir);
    assert!(first.as_str().is_some_and(|s| s.len() == 16), "{first}");
    // Build output does not count; a source change does.
    std::fs::write(pkg.join("target/release/x"), "binary").unwrap();
    assert_eq!(sources(&dir), first);
    std::fs::write(pkg.join("src/main.rs"), "fn main() { println!(); }\n").unwrap();
    assert_ne!(sources(&dir), first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reserved_concurrency_is_refused_on_aws() {
    let err = aws().add(python("f").reserved_concurrency(5)).unwrap_err();
    assert!(
        err.to_string().contains("`.reserved_concurrency(5)` is not supported on the aws target"),
        "{err}"
    );
}

#[test]
fn routes_get_unique_names_and_one_permission_per_function() {
    let ctx = aws();
    let a = ctx.add(python("a")).unwrap();
    let b = ctx.add(python("b")).unwrap();
    ctx.add(
        HttpApi::new("http")
            .route("ANY /{proxy+}", &a)
            .route("$default", &b)
            .route("GET /a/{b}", &a)
            .route("GET /a/b", &b),
    )
    .unwrap();
    let m = ctx.manifest();
    let api_resources: Vec<&str> = names(&m).into_iter().filter(|n| n.starts_with("http")).collect();
    assert_eq!(
        api_resources,
        [
            "http",
            "http-stage",
            "http-a-permission",
            "http-any-proxy-integration",
            "http-any-proxy-route",
            "http-b-permission",
            "http-default-integration",
            "http-default-route",
            "http-get-a-b-integration",
            "http-get-a-b-route",
            "http-get-a-b-2-integration",
            "http-get-a-b-2-route",
        ]
    );
    assert_eq!(resource(&m, "http-default-route")["inputs"]["route_key"], "$default");
    assert_eq!(resource(&m, "http-b-permission")["inputs"]["function"], r("b", "name"));
}

#[test]
fn queues_with_dead_letters_and_subscriptions() {
    let ctx = aws();
    let failed = ctx.add(Queue::new("jobs-failed")).unwrap();
    let jobs = ctx.add(Queue::new("jobs").visibility_timeout_secs(60).dead_letter(&failed, 5)).unwrap();
    let worker = ctx.add(python("worker").env("JOBS_URL", jobs.url())).unwrap();
    let sub = jobs.subscribe_with_batch_size(&worker, 5).unwrap();
    ctx.export("name", jobs.queue_name());
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "jobs-failed")["inputs"],
        json!({
            "fifo_queue": false,
            "visibility_timeout_seconds": 30,
            "message_retention_seconds": 345600,
            "delay_seconds": 0
        })
    );
    assert_eq!(
        resource(&m, "jobs"),
        &json!({
            "name": "jobs",
            "type": "aws:sqs:Queue",
            "inputs": {
                "fifo_queue": false,
                "visibility_timeout_seconds": 60,
                "message_retention_seconds": 345600,
                "delay_seconds": 0,
                "redrive_policy": {"dead_letter_target_arn": r("jobs-failed", "arn"), "max_receive_count": 5}
            },
            "options": {},
            "parent": "jobs"
        })
    );
    assert_eq!(resource(&m, "worker")["inputs"]["environment"], json!({"JOBS_URL": r("jobs", "url")}));
    assert_eq!(
        resource(&m, "jobs-worker-policy"),
        &json!({
            "name": "jobs-worker-policy",
            "type": "aws:iam:RolePolicy",
            "inputs": {
                "role": r("worker-role", "name"),
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                        "Resource": r("jobs", "arn")
                    }]
                }
            },
            "options": {},
            "parent": "jobs"
        })
    );
    assert_eq!(
        resource(&m, "jobs-worker"),
        &json!({
            "name": "jobs-worker",
            "type": "aws:lambda:EventSourceMapping",
            "inputs": {"event_source_arn": r("jobs", "arn"), "function": r("worker", "name"), "batch_size": 5,
                       "function_response_types": ["ReportBatchItemFailures"]},
            "options": {"depends_on": ["jobs-worker-policy"]},
            "parent": "jobs"
        })
    );
    assert_eq!(sub.resources(), ["jobs-worker-policy", "jobs-worker"]);
    assert_eq!(m["outputs"]["name"], r("jobs", "name"));
    assert_eq!(jobs.url(), crate::Ref::new("jobs", "url"));
    assert_eq!(jobs.arn(), crate::Ref::new("jobs", "arn"));
}

#[test]
fn topics_and_subscriptions() {
    let ctx = aws();
    let events = ctx.add(Topic::new("events").fifo(true)).unwrap();
    let f = ctx.add(python("f")).unwrap();
    let sub = events.subscribe(&f).unwrap();
    ctx.export("topic", events.topic_name());
    ctx.export("topic_arn", events.arn());
    let m = ctx.manifest();
    assert_eq!(resource(&m, "events")["type"], "aws:sns:Topic");
    assert_eq!(resource(&m, "events")["inputs"], json!({"fifo_topic": true}));
    assert_eq!(
        resource(&m, "events-f-permission"),
        &json!({
            "name": "events-f-permission",
            "type": "aws:lambda:Permission",
            "inputs": {"function": r("f", "name"), "principal": "sns.amazonaws.com", "source_arn": r("events", "arn")},
            "options": {},
            "parent": "events"
        })
    );
    assert_eq!(
        resource(&m, "events-f"),
        &json!({
            "name": "events-f",
            "type": "aws:sns:Subscription",
            "inputs": {"topic_arn": r("events", "arn"), "protocol": "lambda", "endpoint": r("f", "arn")},
            "options": {"depends_on": ["events-f-permission"]},
            "parent": "events"
        })
    );
    assert_eq!(sub.resources(), ["events-f-permission", "events-f"]);
    assert_eq!(m["outputs"], json!({"topic": r("events", "name"), "topic_arn": r("events", "arn")}));
}

#[test]
fn allowed_calls_become_an_inline_policy_on_aws_and_nothing_on_local() {
    let ctx = aws();
    let jobs = ctx.add(Queue::new("jobs")).unwrap();
    let events = ctx.add(Topic::new("events")).unwrap();
    let f = python("f").allow(&["sqs:SendMessage"], jobs.arn()).allow(&["sns:Publish"], events.arn());
    ctx.add(f).unwrap();
    ctx.add(python("plain")).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "f-access"),
        &json!({
            "name": "f-access",
            "type": "aws:iam:RolePolicy",
            "inputs": {
                "role": r("f-role", "name"),
                "policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": r("jobs", "arn")},
                    {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": r("events", "arn")}
                ]}
            },
            "options": {},
            "parent": "f"
        })
    );
    let names: Vec<&str> =
        m["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"plain-access"), "{names:?}");

    let local = Program::new("shop", "dev", Target::Local, json!({}));
    local.add(python("f").allow(&["sqs:SendMessage"], "arn:aws:sqs:us-east-1:1:q")).unwrap();
    let m = local.manifest();
    let types: Vec<&str> =
        m["resources"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["local:Function"]);
}

#[test]
fn queue_trigger_settings_become_the_mappings() {
    let ctx = aws();
    let jobs = ctx.add(Queue::new("jobs")).unwrap();
    let f = ctx.add(python("f")).unwrap();
    jobs.subscribe_with(&f, QueueTrigger::new().batch_size(4).batching_window_secs(3).maximum_concurrency(7))
        .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "jobs-f")["inputs"],
        json!({"event_source_arn": r("jobs", "arn"), "function": r("f", "name"), "batch_size": 4,
               "maximum_batching_window_in_seconds": 3, "maximum_concurrency": 7,
               "function_response_types": ["ReportBatchItemFailures"]})
    );
}

#[test]
fn queues_subscribed_to_topics_share_one_queue_policy() {
    let ctx = aws();
    let events = ctx.add(Topic::new("events")).unwrap();
    let alerts = ctx.add(Topic::new("alerts")).unwrap();
    let audit = ctx.add(Queue::new("audit")).unwrap();
    let first = events
        .subscribe_queue_with(
            &audit,
            QueueDelivery::new().raw(true).filter_policy(json!({"kind": ["audit"]})),
        )
        .unwrap();
    let second = alerts.subscribe_queue(&audit).unwrap();
    assert_eq!(first.resources(), ["audit-policy", "events-audit"]);
    assert_eq!(second.resources(), ["audit-policy", "alerts-audit"]);
    let m = ctx.manifest();
    let statement = |topic: &str| {
        json!({
            "Sid": format!("sns-{topic}"),
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": r("audit", "arn"),
            "Condition": {"ArnEquals": {"aws:SourceArn": r(topic, "arn")}},
        })
    };
    assert_eq!(
        resource(&m, "audit-policy"),
        &json!({
            "name": "audit-policy",
            "type": "aws:sqs:QueuePolicy",
            "inputs": {
                "queue_url": r("audit", "url"),
                "policy": {"Version": "2012-10-17", "Statement": [statement("events"), statement("alerts")]}
            },
            "options": {},
            "parent": "audit"
        })
    );
    assert_eq!(
        resource(&m, "events-audit"),
        &json!({
            "name": "events-audit",
            "type": "aws:sns:Subscription",
            "inputs": {"topic_arn": r("events", "arn"), "protocol": "sqs", "endpoint": r("audit", "arn"),
                       "raw_message_delivery": true, "filter_policy": {"kind": ["audit"]}},
            "options": {"depends_on": ["audit-policy"]},
            "parent": "events"
        })
    );
    assert_eq!(
        resource(&m, "alerts-audit")["inputs"],
        json!({"topic_arn": r("alerts", "arn"), "protocol": "sqs", "endpoint": r("audit", "arn"),
               "raw_message_delivery": false})
    );
}

#[test]
fn buckets_gather_notifications_into_one_resource() {
    let ctx = aws();
    let uploads = ctx.add(Bucket::new("uploads").versioning(true)).unwrap();
    let thumbs = ctx.add(python("thumbs").env("BUCKET", uploads.bucket_name())).unwrap();
    let audit = ctx.add(python("audit")).unwrap();
    let first = uploads
        .notify(&thumbs, Notification::new(ObjectEvent::Created).prefix("photos/").suffix(".jpg"))
        .unwrap();
    let second = uploads.on_object_removed(&audit).unwrap();
    let m = ctx.manifest();
    assert_eq!(resource(&m, "uploads")["inputs"], json!({"versioning": true, "force_destroy": false}));
    assert_eq!(resource(&m, "thumbs")["inputs"]["environment"], json!({"BUCKET": r("uploads", "name")}));
    assert_eq!(
        resource(&m, "uploads-created-thumbs-permission")["inputs"],
        json!({"function": r("thumbs", "name"), "principal": "s3.amazonaws.com", "source_arn": r("uploads", "arn")})
    );
    assert_eq!(
        resource(&m, "uploads-notifications"),
        &json!({
            "name": "uploads-notifications",
            "type": "aws:s3:BucketNotification",
            "inputs": {
                "bucket": r("uploads", "name"),
                "lambdas": [
                    {"arn": r("thumbs", "arn"), "events": ["s3:ObjectCreated:*"], "filter_prefix": "photos/", "filter_suffix": ".jpg"},
                    {"arn": r("audit", "arn"), "events": ["s3:ObjectRemoved:*"]}
                ]
            },
            "options": {"depends_on": ["uploads-created-thumbs-permission", "uploads-removed-audit-permission"]},
            "parent": "uploads"
        })
    );
    assert_eq!(first.resources(), ["uploads-created-thumbs-permission", "uploads-notifications"]);
    assert_eq!(second.resources(), ["uploads-removed-audit-permission", "uploads-notifications"]);
    assert_eq!(names(&m).iter().filter(|n| **n == "uploads-notifications").count(), 1);
}

#[test]
fn schedules_get_a_role_to_invoke_the_function() {
    let ctx = aws();
    let report = ctx.add(python("report")).unwrap();
    ctx.add(Schedule::cron("nightly", "0 3 * * ? *", &report).payload(json!({"kind": "daily"}))).unwrap();
    ctx.add(Schedule::rate("tick", "5 minutes", &report).enabled(false)).unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "nightly-role")["inputs"],
        json!({"assume_role_policy": trust("scheduler.amazonaws.com")})
    );
    assert_eq!(
        resource(&m, "nightly-policy"),
        &json!({
            "name": "nightly-policy",
            "type": "aws:iam:RolePolicy",
            "inputs": {
                "role": r("nightly-role", "name"),
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": r("report", "arn")}]
                }
            },
            "options": {},
            "parent": "nightly"
        })
    );
    assert_eq!(
        resource(&m, "nightly"),
        &json!({
            "name": "nightly",
            "type": "aws:scheduler:Schedule",
            "inputs": {
                "schedule_expression": "cron(0 3 * * ? *)",
                "target": {"arn": r("report", "arn"), "role_arn": r("nightly-role", "arn"), "input": {"kind": "daily"}},
                "state": "ENABLED"
            },
            "options": {"depends_on": ["nightly-policy"]},
            "parent": "nightly"
        })
    );
    assert_eq!(
        resource(&m, "tick")["inputs"],
        json!({
            "schedule_expression": "rate(5 minutes)",
            "target": {"arn": r("report", "arn"), "role_arn": r("tick-role", "arn"), "input": {}},
            "state": "DISABLED"
        })
    );
    // A time zone is Scheduler's `ScheduleExpressionTimezone`.
    ctx.add(Schedule::cron("morning", "0 9 * * ? *", &report).timezone("Europe/Paris")).unwrap();
    assert_eq!(
        resource(&ctx.manifest(), "morning")["inputs"]["schedule_expression_timezone"],
        "Europe/Paris"
    );
}

#[test]
fn tables_map_key_types() {
    let ctx = aws();
    let orders = ctx
        .add(
            Table::new("orders")
                .hash_key("customer", KeyType::String)
                .range_key("placed_at", KeyType::Number),
        )
        .unwrap();
    ctx.add(Table::new("sessions").hash_key("id", KeyType::Binary)).unwrap();
    ctx.export("table", orders.table_name());
    ctx.export("table_arn", orders.arn());
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "orders"),
        &json!({
            "name": "orders",
            "type": "aws:dynamodb:Table",
            "inputs": {
                "billing_mode": "PAY_PER_REQUEST",
                "hash_key": "customer",
                "hash_key_type": "S",
                "range_key": "placed_at",
                "range_key_type": "N"
            },
            "options": {},
            "parent": "orders"
        })
    );
    assert_eq!(
        resource(&m, "sessions")["inputs"],
        json!({"billing_mode": "PAY_PER_REQUEST", "hash_key": "id", "hash_key_type": "B"})
    );
    assert_eq!(m["outputs"], json!({"table": r("orders", "name"), "table_arn": r("orders", "arn")}));
}

#[test]
fn component_options_are_mapped_to_each_resource() {
    let ctx = aws();
    let app = ctx.component("app", "acme:App");
    let seed = ctx.resource("seed", "core:Data", json!({"value": 1}));
    ctx.add(
        python("hello").options(
            ResourceOptions::new()
                .protect(true)
                .depends_on(&seed)
                .aliases(["greeter"])
                .ignore_changes(["environment", "memory"])
                .replace_on_changes(["retention_in_days"])
                .parent(&app),
        ),
    )
    .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "hello-role")["options"],
        json!({"aliases": ["greeter-role"], "depends_on": ["seed"], "protect": true})
    );
    assert_eq!(
        resource(&m, "hello")["options"],
        json!({"aliases": ["greeter"], "depends_on": ["seed"], "ignore_changes": ["environment", "memory_size"], "protect": true})
    );
    assert_eq!(
        resource(&m, "hello-logs")["options"],
        json!({"aliases": ["greeter-logs"], "depends_on": ["seed"], "protect": true, "replace_on_changes": ["retention_in_days"]})
    );
    assert_eq!(resource(&m, "hello")["parent"], "hello");
    assert_eq!(m["components"][1], json!({"name": "hello", "type": "skyform:Function", "parent": "app"}));

    // Portable property names (the component settings) are translated to the AWS inputs.
    ctx.add(
        Queue::new("jobs").options(ResourceOptions::new().ignore_changes(["visibility_timeout", "fifo"])),
    )
    .unwrap();
    assert_eq!(
        resource(&ctx.manifest(), "jobs")["options"],
        json!({"ignore_changes": ["visibility_timeout_seconds", "fifo_queue"]})
    );
}

#[test]
fn the_same_program_on_both_targets() {
    // One program, two targets: the component tree and the outputs' meaning are the same.
    let program = |ctx: &Program| {
        let jobs = ctx.add(Queue::new("jobs")).unwrap();
        let hello = ctx.add(python("hello").env("JOBS", jobs.url())).unwrap();
        jobs.subscribe(&hello).unwrap();
        let api = ctx.add(HttpApi::new("api").route("GET /hello", &hello)).unwrap();
        ctx.export("url", interpolate!("{}/hello", api.url()));
    };
    let local = super::local();
    program(&local);
    let prod = aws();
    program(&prod);
    assert_eq!(local.manifest()["components"], prod.manifest()["components"]);
    assert_eq!(
        prod.manifest()["outputs"],
        json!({"url": {"$concat": [r("api-stage", "invoke_url"), "/hello"]}})
    );
    // Every resource of the AWS manifest belongs to a component.
    let m = prod.manifest();
    for res in m["resources"].as_array().unwrap() {
        assert!(res["parent"].is_string(), "{res}");
    }
}

#[test]
fn workspace_member_packages_are_found_by_name() {
    let dir = std::env::temp_dir().join(format!("skyform-sdk-aws-ws-{}", std::process::id()));
    let member = dir.join("crates/worker");
    std::fs::create_dir_all(member.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("target/other")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = [\"crates/worker\"]\n").unwrap();
    std::fs::write(dir.join("target/other/Cargo.toml"), "[package]\nname = \"worker-fn\"\n").unwrap();
    std::fs::write(member.join("Cargo.toml"), "[package]\nname = \"worker-fn\"\nversion = \"0.1.0\"\n")
        .unwrap();
    std::fs::write(member.join("src/main.rs"), "fn main() {}\n").unwrap();
    let ctx = aws().with_project_dir(&dir);
    ctx.add(Function::rust("worker", "worker-fn")).unwrap();
    let triggers = resource(&ctx.manifest(), "worker-build")["inputs"]["triggers"].clone();
    assert_eq!(triggers["sources"], json!(crate::aws::fingerprint(&member).unwrap()), "{triggers}");
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(crate::aws::declares_package("[package]\nname = \"a\"\n", "a"));
    assert!(!crate::aws::declares_package("[dependencies]\nname = \"a\"\n", "a"));
    assert!(!crate::aws::declares_package("[package]\nname = \"ab\"\n", "a"));
}

#[test]
fn table_indexes_and_change_triggers_on_aws() {
    let ctx = aws();
    let audit = ctx.add(python("audit")).unwrap();
    let users = ctx
        .add(Table::new("users").hash_key("id", KeyType::String).index(
            "byTeam",
            ("team", KeyType::String),
            Some(("joined", KeyType::Number)),
        ))
        .unwrap();
    let m = ctx.manifest();
    assert_eq!(
        resource(&m, "users")["inputs"],
        json!({
            "billing_mode": "PAY_PER_REQUEST",
            "hash_key": "id",
            "hash_key_type": "S",
            "global_secondary_indexes": [
                {"name": "byTeam", "hash_key": "team", "hash_key_type": "S", "range_key": "joined", "range_key_type": "N"}
            ]
        })
    );
    let sub = users.on_change_with_batch_size(&audit, 50).unwrap();
    assert_eq!(sub.resources(), ["users-audit-policy", "users-audit"]);
    let m = ctx.manifest();
    // The trigger turns the table's stream on.
    assert_eq!(resource(&m, "users")["inputs"]["stream_enabled"], true);
    assert_eq!(resource(&m, "users")["inputs"]["stream_view_type"], "NEW_AND_OLD_IMAGES");
    assert_eq!(
        resource(&m, "users-audit")["inputs"],
        json!({
            "event_source_arn": r("users", "stream_arn"),
            "function": r("audit", "name"),
            "batch_size": 50,
            "starting_position": "LATEST"
        })
    );
    assert_eq!(resource(&m, "users-audit")["options"]["depends_on"], json!(["users-audit-policy"]));
    let policy = &resource(&m, "users-audit-policy")["inputs"];
    assert_eq!(policy["role"], r("audit-role", "name"));
    assert_eq!(policy["policy"]["Statement"][0]["Resource"], r("users", "stream_arn"));
}

/// A component's tags reach each of its taggable AWS resources (not the permission or the
/// integration, which AWS does not tag), and are not recorded as an engine option.
#[test]
fn component_tags_reach_each_taggable_resource() {
    let ctx = aws();
    let tags = ResourceOptions::new().tags([("team", "payments")]).tags([("app", "shop")]);
    let hello = ctx.add(python("hello").options(tags.clone())).unwrap();
    ctx.add(HttpApi::new("api").route("GET /hello", &hello).options(tags)).unwrap();
    ctx.add(Queue::new("plain")).unwrap();
    let m = ctx.manifest();
    let tagged: Vec<&str> = m["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["inputs"]["tags"] == json!({"team": "payments", "app": "shop"}))
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(tagged, ["hello-role", "hello", "hello-logs", "api"], "{m}");
    for r in m["resources"].as_array().unwrap() {
        assert!(r["options"].get("tags").is_none(), "{r}");
    }
    let queue = m["resources"].as_array().unwrap().iter().find(|r| r["name"] == "plain").unwrap();
    assert!(queue["inputs"].get("tags").is_none(), "{queue}");
}
