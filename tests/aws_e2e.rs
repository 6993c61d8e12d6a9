//! The same program on AWS: `examples/hello-http`, unchanged, deployed by the real `skyform`
//! binary to a `prod` stack with provider `aws`, against moto (an AWS-compatible server, with
//! SigV4 verification on), and checked with boto3 at every step: what exists, what changed,
//! and that nothing is left after `destroy`. Also: bad credentials, an AWS error in the middle of
//! an `up` (a proxy refuses one kind of call), `examples/rust-api` (a Rust function built by a
//! `core:Command`), `examples/jobs` (queues, a topic with a function and a queue subscribed, a
//! schedule), and a program using every component.
//!
//! How the program runs: the example is copied into a temporary folder with its `skyform-sdk`
//! dependency made absolute, and `skyform` builds it with `cargo run` into the shared
//! `target/aws-e2e-programs` (see `aws_common`), so only the first run on a machine compiles it.
//!
//! Each test starts its own moto server (about a second), so inventories are exact. A machine
//! without python3/PyPI fails these tests with a message from `tests/peers/setup.sh`.

mod aws_common;

use aws_common::{Canned, Moto, Project, Proxy};
use serde_json::{Value, json};

/// The names of the plan's steps of each kind, from `--json` output.
fn steps_by_kind(plan: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in plan["steps"].as_array().unwrap() {
        out.entry(s["kind"].as_str().unwrap().to_string())
            .or_default()
            .push(s["name"].as_str().unwrap().to_string());
    }
    out
}

fn json_of(run: &aws_common::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.text()))
}

/// Everything hello-http is on AWS, by logical name.
const HELLO_RESOURCES: [&str; 10] = [
    "api",
    "api-get-hello-integration",
    "api-get-hello-name-integration",
    "api-get-hello-name-route",
    "api-get-hello-route",
    "api-hello-permission",
    "api-stage",
    "hello",
    "hello-logs",
    "hello-role",
];

#[test]
fn hello_http_lifecycle_on_aws() {
    let moto = Moto::start();
    let before = moto.inventory();
    let p = Project::new("hello-http", &moto);

    // preview: the component tree, nothing created.
    let preview = p.prod(&["preview"]);
    preview.ok();
    // The header names the provider, region, account and endpoint (moto's port varies).
    let stdout = preview.stdout.replace(&moto.endpoint, "ENDPOINT");
    assert_eq!(
        stdout,
        "Previewing update (prod) on aws: region us-east-1, account 123456789012, endpoint ENDPOINT:

     Type                            Name                            Plan
     skyform:Function                hello
 +     aws:iam:Role                  hello-role                      create
 +     aws:lambda:Function           hello                           create
 +     aws:logs:LogGroup             hello-logs                      create
     skyform:HttpApi                 api
 +     aws:apigatewayv2:Api          api                             create
 +     aws:apigatewayv2:Stage        api-stage                       create
 +     aws:lambda:Permission         api-hello-permission            create
 +     aws:apigatewayv2:Integration  api-get-hello-name-integration  create
 +     aws:apigatewayv2:Route        api-get-hello-name-route        create
 +     aws:apigatewayv2:Integration  api-get-hello-integration       create
 +     aws:apigatewayv2:Route        api-get-hello-route             create

Outputs:
    url: (known after up)

Resources:
    +  10 to create
",
        "{}",
        preview.text()
    );
    assert_eq!(moto.inventory(), before, "preview creates nothing");
    assert!(p.state_bytes().is_none(), "preview writes no state");

    // up: everything exists, and the stack output is the API's URL.
    p.prod(&["up", "--yes"]).ok();
    let recorded = p.recorded();
    assert_eq!(recorded.keys().map(String::as_str).collect::<Vec<_>>(), HELLO_RESOURCES);
    let inv = moto.inventory();
    let function = recorded["hello"].1.clone();
    assert!(function.starts_with("hello-"), "generated physical name: {function}");
    assert_eq!(inv["functions"], json!([function]));
    assert_eq!(inv["log_groups"], json!([format!("/aws/lambda/{function}")]));
    assert_eq!(inv["roles"].as_array().unwrap().len(), 1, "{inv}");
    assert_eq!(inv["apis"].as_array().unwrap().len(), 1, "{inv}");
    assert_eq!(inv["routes"], json!(["GET /hello", "GET /hello/{name}"]));
    assert_eq!(inv["integrations"], 2);
    assert_eq!(inv["stages"], json!(["$default"]));
    let api_id = recorded["api"].1.clone();
    let checked = moto.py_json(&format!(
        r#"
lam = client('lambda'); apigw = client('apigatewayv2'); logs = client('logs'); iam = client('iam')
f = lam.get_function(FunctionName='{function}')['Configuration']
api = apigw.get_api(ApiId='{api_id}')
integ = apigw.get_integrations(ApiId='{api_id}')['Items']
policy = json.loads(lam.get_policy(FunctionName='{function}')['Policy'])
role = f['Role'].rsplit('/', 1)[-1]
print(json.dumps({{
  'runtime': f['Runtime'], 'handler': f['Handler'], 'memory': f['MemorySize'], 'timeout': f['Timeout'],
  'endpoint': api['ApiEndpoint'],
  'integrations': sorted({{(i['IntegrationType'], i['PayloadFormatVersion'], i['IntegrationUri'] == f['FunctionArn']) for i in integ}}),
  'principals': [s['Principal'] for s in policy['Statement']],
  'managed': [a['PolicyArn'] for a in iam.list_attached_role_policies(RoleName=role)['AttachedPolicies']],
  'retention': logs.describe_log_groups()['logGroups'][0].get('retentionInDays'),
}}, default=list))
"#
    ));
    assert_eq!(checked["runtime"], "python3.12");
    assert_eq!(checked["handler"], "app.handler");
    assert_eq!((checked["memory"].as_u64(), checked["timeout"].as_u64()), (Some(128), Some(3)));
    assert_eq!(checked["integrations"], json!([["AWS_PROXY", "2.0", true]]));
    assert_eq!(checked["principals"].to_string().matches("apigateway.amazonaws.com").count(), 1, "{checked}");
    assert_eq!(
        checked["managed"],
        json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
    );
    assert_eq!(checked["retention"], 14);
    let url = p.prod(&["outputs", "url"]);
    url.ok();
    assert_eq!(url.stdout.trim(), checked["endpoint"].as_str().unwrap());

    // Day-2 on an aws stack: `outputs` names each function's physical name and ARN, `logs`
    // reads CloudWatch Logs by the component's name (`--since` and `--follow` included).
    let outputs = json_of(&p.prod(&["outputs", "--json"]));
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
    assert_eq!(outputs["functions"]["hello"], json!({"name": function, "arn": arn}), "{outputs}");
    let listing = p.prod(&["outputs"]);
    assert!(
        listing.ok().stdout.contains(&format!("functions:\n  hello: {function} {arn}\n")),
        "{}",
        listing.text()
    );
    assert!(p.prod(&["logs", "hello"]).ok().stdout.is_empty(), "no events yet");
    moto.py(&format!(
        r#"
import time
logs = client('logs'); g = '/aws/lambda/{function}'; now = int(time.time() * 1000)
logs.create_log_stream(logGroupName=g, logStreamName='2026/11/30/[$LATEST]abc')
logs.put_log_events(logGroupName=g, logStreamName='2026/11/30/[$LATEST]abc', logEvents=[
    {{'timestamp': now - 7200000, 'message': 'START RequestId: old-request'}},
    {{'timestamp': now - 2000, 'message': 'START RequestId: r-1 Version: $LATEST'}},
    {{'timestamp': now - 1000, 'message': 'hello from the function\n'}},
])
"#
    ));
    let all = p.prod(&["logs", "hello"]);
    let lines: Vec<&str> = all.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", all.text());
    assert!(lines[0].ends_with("Z START RequestId: old-request"), "{}", all.text());
    assert!(lines[2].ends_with("Z hello from the function"), "{}", all.text());
    let recent = p.prod(&["logs", "hello", "--since", "1h"]);
    assert_eq!(
        recent.ok().stdout.lines().count(),
        2,
        "--since 1h leaves the old line out: {}",
        recent.text()
    );
    let bad = p.prod(&["logs", "nope"]);
    assert_eq!(bad.code, 1, "{}", bad.text());
    assert!(
        bad.stderr.contains("no function `nope` is deployed in stack `prod`")
            && bad.stderr.contains("its functions are: hello"),
        "{}",
        bad.text()
    );
    // --follow prints what arrives later, once.
    let mut follow = p.command(&["-s", "prod", "logs", "hello", "--follow", "--since", "1h"]);
    let mut child = follow.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // The follower is owned by a thread that stops it when the test is done with it, or after
    // a minute: a hung follow must not hang the test.
    let (done, stopped) = std::sync::mpsc::channel::<()>();
    let stopper = std::thread::spawn(move || {
        let _ = stopped.recv_timeout(std::time::Duration::from_secs(60));
        let _ = child.kill();
        let _ = child.wait();
    });
    let mut out = std::io::BufReader::new(stdout);
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    }
    assert!(line.contains("hello from the function"), "{line}");
    moto.py(&format!(
        r#"
import time
client('logs').put_log_events(logGroupName='/aws/lambda/{function}', logStreamName='2026/11/30/[$LATEST]abc', logEvents=[{{'timestamp': int(time.time() * 1000), 'message': 'a later line'}}])
"#
    ));
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(line.ends_with("Z a later line\n"), "{line}");
    done.send(()).unwrap();
    stopper.join().unwrap();

    // A second up changes nothing and does not rewrite the state.
    let state = p.state_bytes();
    let again = p.prod(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes: the stack matches the program"), "{}", again.text());
    assert_eq!(p.state_bytes(), state);

    // New code: only the function is updated, in place, with the new code.
    p.write(
        "functions/hello/app.py",
        "def handler(event, context):\n    return {'statusCode': 200, 'body': 'Hi!'}\n",
    );
    // The plan updates the function. (It also lists what refers to the function's outputs as
    // "update"/"replace", because the engine sees every output of a resource being updated as
    // unknown; re-checked at apply time with the real outputs, those steps do nothing.)
    let plan = json_of(&p.prod(&["preview", "--json"]));
    let kinds = steps_by_kind(&plan);
    assert!(kinds["update"].contains(&"hello".to_string()), "{plan}");
    assert!(!kinds.contains_key("create") && !kinds.contains_key("delete"), "{plan}");
    let report = json_of(&p.prod(&["up", "--yes", "--json"]));
    assert_eq!(report["done"], json!({"update": 1}), "only the function is updated: {report}");
    let sha =
        p.state()["resources"].as_array().unwrap().iter().find(|r| r["name"] == "hello").unwrap()["outputs"]
            ["code_sha256"]
            .clone();
    let real = moto.py(&format!(
        "print(client('lambda').get_function(FunctionName='{function}')['Configuration']['CodeSha256'])"
    ));
    assert_eq!(sha, json!(real));
    assert_eq!(recorded, p.recorded(), "the same resources, the same ids");

    // Drift: a change behind skyform's back shows in refresh, and up puts it back.
    moto.py(&format!(
        "lam = client('lambda'); lam.update_function_configuration(FunctionName='{function}', Timeout=30)\n\
         lam.tag_resource(Resource='{arn}', Tags={{'owner': 'someone'}})"
    ));
    let refresh = p.prod(&["refresh", "--yes"]);
    refresh.ok();
    assert!(refresh.stdout.contains("hello  changed outside skyform"), "{}", refresh.text());
    assert!(refresh.stdout.contains("~ timeout: 3 => 30"), "{}", refresh.text());
    assert!(refresh.stdout.contains("tags"), "tag drift shows: {}", refresh.text());
    let report = json_of(&p.prod(&["up", "--yes", "--json"]));
    assert_eq!(report["done"], json!({"update": 1}), "{report}");
    let timeout = moto.py(&format!(
        "print(client('lambda').get_function(FunctionName='{function}')['Configuration']['Timeout'])"
    ));
    assert_eq!(timeout, "3");
    let tags = moto.py(&format!("print(client('lambda').list_tags(Resource='{arn}')['Tags'])"));
    assert_eq!(tags, "{}", "up took the tag added behind skyform's back away");

    // destroy: nothing is left.
    let destroy = p.prod(&["destroy", "--yes"]);
    destroy.ok();
    assert!(destroy.stdout.contains("10 deleted"), "{}", destroy.text());
    assert_eq!(moto.inventory(), before);
    assert_eq!(p.state()["resources"], json!([]));
}

#[test]
fn bad_credentials_fail_with_a_clear_error_and_change_nothing() {
    let moto = Moto::start();
    let before = moto.inventory();
    let mut p = Project::new("hello-http", &moto);
    p.secret = "not-the-secret".to_string();
    let up = p.prod(&["up", "--yes"]);
    // The provider asks STS who the credentials are in `configure`: the command fails before
    // any step, with one error.
    assert_eq!(up.code, 1, "{}", up.text());
    let preview = p.prod(&["preview"]);
    assert_eq!(preview.code, 1, "preview checks the credentials too:\n{}", preview.text());
    assert!(up.stderr.contains("AWS refused the credentials"), "{}", up.text());
    assert!(up.stderr.contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"), "{}", up.text());
    let recorded_nothing = p
        .state_bytes()
        .is_none_or(|b| serde_json::from_slice::<Value>(&b).unwrap()["resources"] == json!([]));
    assert!(recorded_nothing, "nothing is recorded:\n{}", up.text());
    assert_eq!(moto.inventory(), before);

    // No credentials at all: the provider says where they come from.
    let mut cmd = p.command(&["-s", "prod", "up", "--yes"]);
    cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(recorded_nothing);
}

#[test]
fn an_aws_error_in_the_middle_of_up_exits_3_and_the_state_is_true() {
    let moto = Moto::start();
    let before = moto.inventory();
    let p = Project::new("hello-http", &moto);
    // API Gateway refuses every route creation (`POST /v2/apis/ID/routes`); everything else
    // reaches moto.
    let refuse: Canned = (
        400,
        vec![("Content-Type", "application/json"), ("x-amzn-ErrorType", "BadRequestException")],
        r#"{"message": "injected: route refused"}"#.to_string(),
    );
    let proxy = Proxy::start(
        &moto.endpoint,
        move |_, head| {
            let line = head.lines().next().unwrap_or_default();
            (line.starts_with("POST /v2/apis/") && line.contains("/routes ")).then(|| refuse.clone())
        },
        |_, answer| answer,
    );
    p.aim(&proxy.endpoint);
    let up = p.prod(&["up", "--yes"]);
    assert_eq!(up.code, 3, "{}", up.text());
    assert!(up.stderr.contains("injected: route refused"), "{}", up.text());
    assert!(up.stderr.contains("2 steps failed"), "{}", up.text());

    // The state records exactly what exists: all but the two routes.
    let recorded = p.recorded();
    let expected: Vec<&str> = HELLO_RESOURCES.iter().copied().filter(|n| !n.ends_with("-route")).collect();
    assert_eq!(recorded.keys().map(String::as_str).collect::<Vec<_>>(), expected);
    let inv = moto.inventory();
    assert_eq!(inv["functions"], json!([recorded["hello"].1]));
    assert_eq!(inv["log_groups"], json!([format!("/aws/lambda/{}", recorded["hello"].1)]));
    assert_eq!(inv["integrations"], 2);
    assert_eq!(inv["routes"], json!([]));
    assert_eq!(inv["stages"], json!(["$default"]));
    let api = &recorded["api"].1;
    for (name, (_, id)) in recorded.iter().filter(|(n, _)| n.ends_with("-integration")) {
        let integration = id.rsplit('/').next().unwrap();
        moto.py(&format!(
            "client('apigatewayv2').get_integration(ApiId='{api}', IntegrationId='{integration}')"
        ));
        assert!(id.starts_with(&format!("{api}/")), "{name}: {id}");
    }

    // Once AWS accepts again, the next up creates just what is missing.
    p.aim(&moto.endpoint);
    let plan = json_of(&p.prod(&["preview", "--json"]));
    assert_eq!(steps_by_kind(&plan)["create"], ["api-get-hello-name-route", "api-get-hello-route"], "{plan}");
    p.prod(&["up", "--yes"]).ok();
    assert_eq!(moto.inventory()["routes"], json!(["GET /hello", "GET /hello/{name}"]));
    p.prod(&["destroy", "--yes"]).ok();
    assert_eq!(moto.inventory(), before);
}

/// `examples/rust-api`: a `lambda_http` function built from its cargo package. The `aws`
/// provider only zips folders, so the SDK adds a `core:Command` that builds `bootstrap` (see
/// COMPONENTS.md); the first run compiles the function in release mode into the shared target
/// folder (a minute or two), later runs find it built.
#[test]
fn rust_api_builds_and_deploys_on_aws() {
    let moto = Moto::start();
    let before = moto.inventory();
    let p = Project::new("rust-api", &moto);
    let preview = p.prod(&["preview"]);
    preview.ok();
    assert!(preview.stdout.contains(" +     core:Command                  api-build"), "{}", preview.text());

    p.prod(&["up", "--yes"]).ok();
    let recorded = p.recorded();
    let function = recorded["api"].1.clone();
    let bootstrap = p.dir.join(".skyform/build/aws/api/bootstrap");
    assert!(bootstrap.is_file(), "the build leaves {}", bootstrap.display());
    let f = moto.py_json(&format!(
        "c = client('lambda').get_function(FunctionName='{function}')['Configuration']\n\
         print(json.dumps([c['Runtime'], c['Handler'], c['CodeSize'], c['Environment']['Variables']]))"
    ));
    assert_eq!(f[0], "provided.al2023");
    assert_eq!(f[1], "bootstrap");
    assert!(f[2].as_u64().unwrap() > 100_000, "a real binary was zipped: {f}");
    assert_eq!(f[3], json!({"RUST_LOG": "info"}));
    assert_eq!(moto.inventory()["routes"], json!(["ANY /{proxy+}"]));

    // Nothing changed: no rebuild, no update.
    let again = p.prod(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes"), "{}", again.text());

    // A change in the package's folder reruns the build (the command is replaced). Here it is
    // a file cargo ignores, so the binary, hence the zip, is the same and the function is not
    // updated: the zip is deterministic. (A change of `src/` would also update the function;
    // it is left out because recompiling lambda_http in release mode takes a minute here.)
    p.write("functions/api/NOTES.txt", "not code\n");
    let report = json_of(&p.prod(&["up", "--yes", "--json"]));
    assert_eq!(report["done"], json!({"replace": 1}), "{report}");
    let again = json_of(&p.prod(&["preview", "--json"]));
    assert_eq!(again["counts"], json!({"same": recorded.len()}), "{again}");

    p.prod(&["destroy", "--yes"]).ok();
    assert_eq!(moto.inventory(), before);
}

/// Every component and trigger at once (queue with a dead-letter queue and a subscription,
/// topic subscription, bucket notifications, schedule, table), to show the expansions deploy as
/// declared, converge, and go away.
const EVERYTHING: &str = r#"
use skyform_sdk::{Bucket, Function, HttpApi, KeyType, Notification, ObjectEvent, Queue, Runtime, Schedule, Table, Topic};

fn main() {
    skyform_sdk::run(|ctx| {
        let failed = ctx.add(Queue::new("failed"))?;
        let jobs = ctx.add(Queue::new("jobs").visibility_timeout_secs(60).dead_letter(&failed, 3))?;
        let events = ctx.add(Topic::new("events"))?;
        let uploads = ctx.add(Bucket::new("uploads").force_destroy(true))?;
        let users = ctx.add(Table::new("users").hash_key("id", KeyType::String).range_key("at", KeyType::Number))?;
        let worker = ctx.add(
            Function::new("worker")
                .code("functions/hello")
                .handler("app.handler")
                .runtime(Runtime::Python3)
                .env("JOBS_URL", jobs.url())
                .env("USERS", users.table_name())
                .env("EVENTS", events.arn())
                .env("BUCKET", uploads.bucket_name())
                .timeout_secs(30),
        )?;
        jobs.subscribe_with_batch_size(&worker, 5)?;
        events.subscribe(&worker)?;
        uploads.on_object_created(&worker)?;
        uploads.notify(&worker, Notification::new(ObjectEvent::Removed).prefix("tmp/"))?;
        ctx.add(Schedule::rate("tick", "5 minutes", &worker).payload(serde_json::json!({"kind": "tick"})))?;
        let api = ctx.add(HttpApi::new("api").route("ANY /{proxy+}", &worker))?;
        ctx.export("url", api.url());
        ctx.export("queue", jobs.queue_name());
        ctx.export("table", users.table_name());
        ctx.export("bucket", uploads.bucket_name());
        Ok(())
    })
}
"#;

#[test]
fn every_component_deploys_converges_and_is_destroyed() {
    let moto = Moto::start();
    let before = moto.inventory();
    let p = Project::new("hello-http", &moto);
    p.write("src/main.rs", EVERYTHING);
    let toml = std::fs::read_to_string(p.dir.join("Cargo.toml")).unwrap();
    // A package of its own name: the programs share one target folder, and another test's
    // `hello-http` binary must not take the place of this program's between its build and run.
    let toml = toml.replace("name = \"hello-http\"", "name = \"every-component\"");
    p.write("Cargo.toml", &toml.replace("[dependencies]", "[dependencies]\nserde_json = \"1\""));

    let up = p.prod(&["up", "--yes"]);
    up.ok();
    let recorded = p.recorded();
    assert_eq!(recorded.len(), 23, "{recorded:?}");
    let outputs = json_of(&p.prod(&["outputs", "--json"]));
    let (queue, table, bucket) = (&outputs["queue"], &outputs["table"], &outputs["bucket"]);
    let real = moto.py_json(&format!(
        r#"
lam = client('lambda'); sqs = client('sqs'); s3 = client('s3'); ddb = client('dynamodb'); sns = client('sns'); sch = client('scheduler')
url = sqs.get_queue_url(QueueName={queue})['QueueUrl']
attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
conf = s3.get_bucket_notification_configuration(Bucket={bucket})
keys = ddb.describe_table(TableName={table})['Table']['KeySchema']
subs = sns.list_subscriptions()['Subscriptions']
esm = lam.list_event_source_mappings()['EventSourceMappings']
sched = [sch.get_schedule(Name=s['Name']) for s in sch.list_schedules()['Schedules']]
print(json.dumps({{
  'visibility': attrs['VisibilityTimeout'], 'redrive': json.loads(attrs['RedrivePolicy'])['maxReceiveCount'],
  'notifications': sorted(e for c in conf.get('LambdaFunctionConfigurations', []) for e in c['Events']),
  'keys': [k['AttributeName'] for k in keys],
  'subscriptions': [s['Protocol'] for s in subs],
  'mappings': [m['BatchSize'] for m in esm],
  'schedules': [[s['ScheduleExpression'], json.loads(s['Target']['Input'])] for s in sched],
}}))
"#
    ));
    assert_eq!(
        real,
        json!({
            "visibility": "60",
            "redrive": 3,
            "notifications": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            "keys": ["id", "at"],
            "subscriptions": ["lambda"],
            "mappings": [5],
            "schedules": [["rate(5 minutes)", {"kind": "tick"}]],
        })
    );

    let again = p.prod(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes"), "{}", again.text());

    p.prod(&["destroy", "--yes"]).ok();
    assert_eq!(moto.inventory(), before);
    let left = moto.py_json(
        "print(json.dumps([len(client('dynamodb').list_tables()['TableNames']), \
         len(client('sns').list_subscriptions()['Subscriptions']), \
         len(client('scheduler').list_schedules()['Schedules'])]))",
    );
    assert_eq!(left, json!([0, 0, 0]));
}

/// `examples/jobs`, unchanged, on AWS (moto): preview shows every resource and creates nothing;
/// `up` creates the queues (a dead-letter queue), the topic with its `lambda` and `sqs`
/// subscriptions and the queue policy letting the topic send, the mapping that reports batch
/// item failures with its concurrency limit, the schedule, and each function's `allow`ed calls
/// as an inline policy; a second `up` changes nothing; `destroy` leaves nothing.
/// Python for the checks of the examples on moto (after `names`, the functions by name, and
/// `iam`): `statements(role('f'))` lists the IAM actions function `f`'s role may call.
const PY_ROLE_ACTIONS: &str = r#"def statements(role_name):
    out = []
    for p in iam.list_role_policies(RoleName=role_name)['PolicyNames']:
        out += [s['Action'] for s in iam.get_role_policy(RoleName=role_name, PolicyName=p)['PolicyDocument']['Statement']]
    return sorted(a for acts in out for a in (acts if isinstance(acts, list) else [acts]))
role = lambda f: names[f]['Role'].rsplit('/', 1)[-1]"#;

#[test]
fn jobs_example_on_aws() {
    let moto = Moto::start();
    let before = moto.inventory();
    let p = Project::new("jobs", &moto);

    let preview = p.prod(&["preview", "--json"]);
    preview.ok();
    let plan = json_of(&preview);
    let creates = steps_by_kind(&plan).remove("create").unwrap_or_default();
    for name in [
        "jobs",
        "jobs-failed",
        "audit",
        "done",
        "audit-policy",
        "done-audit",
        "done-notify",
        "done-notify-permission",
        "jobs-worker",
        "jobs-worker-policy",
        "submit-access",
        "worker-access",
        "sweep-access",
        "cleanup",
        "cleanup-role",
        "cleanup-policy",
        "api",
        "api-submit-permission",
    ] {
        assert!(creates.iter().any(|c| c == name), "preview does not create `{name}`: {creates:?}");
    }
    assert_eq!(moto.inventory(), before, "preview creates nothing");

    p.prod(&["up", "--yes"]).ok();
    let recorded = p.recorded();
    assert_eq!(recorded["audit-policy"].0, "aws:sqs:QueuePolicy");
    let outputs = json_of(&p.prod(&["outputs", "--json"]));
    let (audit_url, topic_arn) = (&outputs["audit_queue_url"], &outputs["done_topic_arn"]);
    let real = moto.py_json(&format!(
        r#"
lam = client('lambda'); sqs = client('sqs'); sns = client('sns'); sch = client('scheduler'); iam = client('iam')
audit = sqs.get_queue_attributes(QueueUrl={audit_url}, AttributeNames=['All'])['Attributes']
subs = sns.list_subscriptions_by_topic(TopicArn={topic_arn})['Subscriptions']
esm = lam.list_event_source_mappings()['EventSourceMappings']
names = {{f['FunctionName'].rsplit('-', 1)[0]: f for f in lam.list_functions()['Functions']}}
{PY_ROLE_ACTIONS}
policy = json.loads(audit['Policy'])['Statement'][0]
print(json.dumps({{
  'subscriptions': sorted([s['Protocol'], s['Endpoint'] == audit['QueueArn']] for s in subs),
  'queue_policy': [policy['Principal'], policy['Action'], policy['Condition']['ArnEquals']['aws:SourceArn'] == {topic_arn}],
  'mapping': [[m['BatchSize'], m['FunctionResponseTypes'], m['ScalingConfig']] for m in esm],
  'env': sorted(names['submit']['Environment']['Variables']),
  'submit': statements(role('submit')), 'worker': statements(role('worker')), 'sweep': statements(role('sweep')),
  'schedules': [sch.get_schedule(Name=s['Name'])['ScheduleExpression'] for s in sch.list_schedules()['Schedules']],
}}))
"#
    ));
    assert_eq!(
        real,
        json!({
            "subscriptions": [["lambda", false], ["sqs", true]],
            "queue_policy": [{"Service": "sns.amazonaws.com"}, "sqs:SendMessage", true],
            "mapping": [[10, ["ReportBatchItemFailures"], {"MaximumConcurrency": 2}]],
            "env": ["JOBS_QUEUE_URL"],
            "submit": ["sqs:SendMessage"],
            "worker": ["sns:Publish", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                       "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            "sweep": ["sqs:GetQueueAttributes"],
            "schedules": ["rate(1 hour)"],
        })
    );

    let again = p.prod(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes"), "{}", again.text());

    p.prod(&["destroy", "--yes"]).ok();
    assert_eq!(moto.inventory(), before);
    let left = moto.py_json(
        "print(json.dumps([len(client('sns').list_subscriptions()['Subscriptions']), \
         len(client('scheduler').list_schedules()['Schedules'])]))",
    );
    assert_eq!(left, json!([0, 0]));
}

/// `examples/upload-pipeline`, unchanged, on `aws` (moto): preview creates nothing, `up` makes a
/// bucket with its Lambda notification, a table with its stream and the mappings of both
/// triggers, the topic's queue subscription and the schedule; a second `up` changes nothing, and
/// `destroy` leaves moto as it was.
#[test]
fn upload_pipeline_example_on_aws() {
    let moto = Moto::start();
    let before = moto.inventory();
    let tables_before = moto.py_json("print(json.dumps(client('dynamodb').list_tables()['TableNames']))");
    let p = Project::new("upload-pipeline", &moto);

    let preview = p.prod(&["preview", "--json"]);
    preview.ok();
    let plan = json_of(&preview);
    let creates = steps_by_kind(&plan).remove("create").unwrap_or_default();
    for name in [
        "uploads",
        "jobs",
        "jobs-failed",
        "files",
        "processed",
        "feed",
        "presign",
        "enqueue",
        "worker",
        "announce",
        "sweep",
        "jobs-worker",
        "cleanup",
        "api",
    ] {
        assert!(creates.iter().any(|c| c == name), "preview does not create `{name}`: {creates:?}");
    }
    assert_eq!(moto.inventory(), before, "preview creates nothing");

    p.prod(&["up", "--yes"]).ok();
    let outputs = json_of(&p.prod(&["outputs", "--json"]));
    let (bucket, table) = (&outputs["bucket"], &outputs["table"]);
    let real = moto.py_json(&format!(
        r#"
lam = client('lambda'); s3 = client('s3'); ddb = client('dynamodb'); sns = client('sns'); sch = client('scheduler'); iam = client('iam')
names = {{f['FunctionName'].rsplit('-', 1)[0]: f for f in lam.list_functions()['Functions']}}
arn_of = {{f['FunctionArn']: n for n, f in names.items()}}
notes = s3.get_bucket_notification_configuration(Bucket={bucket})['LambdaFunctionConfigurations']
desc = ddb.describe_table(TableName={table})['Table']
esm = lam.list_event_source_mappings()['EventSourceMappings']
{PY_ROLE_ACTIONS}
print(json.dumps({{
  'notifications': [[arn_of.get(n['LambdaFunctionArn']), n['Events'], n['Filter']['Key']['FilterRules']] for n in notes],
  'stream': desc['StreamSpecification'],
  'mappings': sorted([arn_of.get(m['FunctionArn']), m['EventSourceArn'].split(':')[2]] for m in esm),
  'topics': len(sns.list_topics()['Topics']),
  'subscriptions': sorted(s['Protocol'] for s in sns.list_subscriptions()['Subscriptions']),
  'presign': statements(role('presign')), 'sweep': statements(role('sweep')),
  'schedules': [sch.get_schedule(Name=s['Name'])['ScheduleExpression'] for s in sch.list_schedules()['Schedules']],
}}))
"#
    ));
    assert_eq!(
        real,
        json!({
            "notifications": [["enqueue", ["s3:ObjectCreated:*"], [{"Name": "prefix", "Value": "incoming/"}]]],
            "stream": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "mappings": [["announce", "dynamodb"], ["worker", "sqs"]],
            "topics": 1,
            "subscriptions": ["sqs"],
            "presign": ["s3:PutObject"],
            "sweep": ["s3:DeleteObject", "s3:ListBucket"],
            "schedules": ["rate(1 day)"],
        })
    );

    let again = p.prod(&["up", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("no changes"), "{}", again.text());

    p.prod(&["destroy", "--yes"]).ok();
    assert_eq!(moto.inventory(), before);
    let tables = moto.py_json("print(json.dumps(client('dynamodb').list_tables()['TableNames']))");
    assert_eq!(tables, tables_before);
}
