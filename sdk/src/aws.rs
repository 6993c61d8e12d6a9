//! How each component expands on the `aws` target: the resources of the `aws` provider
//! (`providers/aws/RESOURCES.md` lists their inputs and outputs).
//!
//! Where the local cloud has one resource per component, AWS needs several: a function is an
//! execution role, the Lambda function and its log group; an HTTP API is an API, a stage, and per
//! route an integration and a route, plus one invoke permission per function it calls. Every
//! resource of a component is named after it (`hello-role`, `hello`, `hello-logs`) and has the
//! component as `parent`, so `skyform preview` shows the same tree on both targets.
//!
//! **Invariant:** a component handle's accessors name the same outputs on every target. AWS
//! resources call some of them differently (a Lambda function's `function_name` is its `name`
//! output, an API's `url` is its stage's `invoke_url`), so each expansion lists those in
//! [`Expansion::renamed`]; the rest (`arn`, a queue's `url`) match the main resource's outputs.
//!
//! Physical names are left to the provider, which generates `<logical>-<7 random characters>`
//! and keeps it in state: two stacks of one project can then share an AWS account, and a
//! replacement can be created before the old resource is deleted. Whatever needs a physical name
//! (the log group `/aws/lambda/<function>`) refers to the output.
//!
//! The component's `options` apply to each of its resources, except two kinds, as for `local`:
//! `aliases` name former *component* names, so `old` becomes `old-role` for the resource
//! `new-role`; and `ignore_changes`/`replace_on_changes` name input properties, so each resource
//! gets only those among its own inputs, portable names translated (`memory` is `memory_size`). Triggers (subscriptions, notifications) are children of
//! the component they listen to, without its options, as on `local`.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::bucket::{Bucket, BucketHandle, Notification};
use crate::component::Expansion;
use crate::function::Function;
use crate::http_api::HttpApi;
use crate::queue::{Queue, QueueHandle, QueueTrigger};
use crate::schedule::Schedule;
use crate::table::{KeyType, Table, TableHandle};
use crate::topic::{QueueDelivery, Topic, TopicHandle};
use crate::{Error, FunctionHandle, Part, Program, Ref, Resource, ResourceOptions, Runtime, concat};

/// The managed policy that lets a function write its logs; every execution role gets it.
pub(crate) const LAMBDA_BASIC_EXECUTION: &str =
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// The `aws` types that take a `tags` input (`providers/aws/src/tags.rs` lists the same).
pub(crate) const TAGGABLE: &[&str] = &[
    "aws:iam:Role",
    "aws:lambda:Function",
    "aws:logs:LogGroup",
    "aws:sqs:Queue",
    "aws:sns:Topic",
    "aws:apigatewayv2:Api",
    "aws:s3:Bucket",
    "aws:dynamodb:Table",
];

/// How long a function's log group keeps events. Lambda's own default is forever, which quietly
/// costs money; two weeks is what most teams pick for serverless logs.
pub(crate) const LOG_RETENTION_DAYS: u32 = 14;

/// The tools that build Rust functions for Lambda (pinned; a new pin installs a new venv).
const ZIGBUILD_PIP: &str = "ziglang==0.17.1 cargo-zigbuild==0.24.1";
const ZIGBUILD_TOOLS: &str = "v1-zig0.17.1-zb0.24.1";

/// Where the command that builds a Rust function for AWS puts the `bootstrap` it zips.
pub(crate) const BUILD_DIR: &str = ".skyform/build/aws";

/// The AWS runtime that stands for each portable runtime name.
pub(crate) fn runtime_name(runtime: &Runtime) -> &str {
    runtime.as_str()
}

/// A trust policy letting `service` assume a role.
fn assume_role_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })
}

/// A policy allowing `actions` on `resource`.
fn allow(actions: &[&str], resource: impl Into<Value>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource.into()}],
    })
}

/// The AWS input properties a component option's property stands for: a portable name (the
/// component setting, as the `local` inputs spell it) maps to its AWS spelling, so that
/// `ignore_changes(["memory"])` means the same on both targets; any other name is kept as
/// written (an AWS name such as `memory_size` works too).
fn aws_properties(prop: &str) -> Vec<String> {
    let mapped: &[&str] = match prop {
        "memory" => &["memory_size"],
        "code" | "build" => &["code", "code_sha256"],
        "fifo" => &["fifo_queue", "fifo_topic"],
        "visibility_timeout" => &["visibility_timeout_seconds"],
        "message_retention" => &["message_retention_seconds"],
        "delay" => &["delay_seconds"],
        "dead_letter" => &["redrive_policy"],
        "schedule" => &["schedule_expression"],
        "enabled" => &["state"],
        "payload" => &["target"],
        "hash_key" => &["hash_key", "hash_key_type"],
        "range_key" => &["range_key", "range_key_type"],
        other => return vec![other.to_string()],
    };
    mapped.iter().map(|p| p.to_string()).collect()
}

/// Declares the resources of one component, with `parent` set to it and its options mapped to
/// each resource as the module documentation says.
struct Children {
    program: Program,
    component: String,
    options: ResourceOptions,
    resources: Vec<String>,
}

fn begin(ctx: &Program, name: &str, type_: &str, options: &ResourceOptions) -> Children {
    ctx.register_component(name.to_string(), type_.to_string(), options.parent.clone());
    Children {
        program: ctx.clone(),
        component: name.to_string(),
        options: options.clone(),
        resources: Vec::new(),
    }
}

impl Children {
    /// Adds the resource named `<component><suffix>` (`suffix` is `""` for the main resource).
    fn add(&mut self, suffix: &str, type_: &str, inputs: Value) -> Resource {
        self.add_with(suffix, type_, inputs, &[])
    }

    /// [`Children::add`] with extra `depends_on` entries (ordering the engine cannot see from
    /// references, such as IAM permissions that must exist before a service uses them).
    fn add_with(&mut self, suffix: &str, type_: &str, mut inputs: Value, depends_on: &[&str]) -> Resource {
        let name = format!("{}{suffix}", self.component);
        // The component's tags reach each of its taggable resources (their own tags win).
        if !self.options.tags.is_empty()
            && TAGGABLE.contains(&type_)
            && let Some(map) = inputs.as_object_mut()
        {
            let mut tags: Map<String, Value> =
                self.options.tags.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            if let Some(Value::Object(own)) = map.get("tags") {
                tags.extend(own.clone());
            }
            map.insert("tags".into(), Value::Object(tags));
        }
        // A property list keeps the names this resource has, the portable names translated.
        let own = |props: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for p in props.iter().flat_map(|p| aws_properties(p)) {
                if inputs.get(p.as_str()).is_some() && !out.contains(&p) {
                    out.push(p);
                }
            }
            out
        };
        let mut options = self.options.clone();
        options.parent = Some(self.component.clone());
        options.aliases = self.options.aliases.iter().map(|a| format!("{a}{suffix}")).collect();
        options.ignore_changes = own(&self.options.ignore_changes);
        options.replace_on_changes = own(&self.options.replace_on_changes);
        for d in depends_on {
            if !options.depends_on.iter().any(|x| x == d) {
                options.depends_on.push(d.to_string());
            }
        }
        let resource = self.program.register(name, type_.to_string(), inputs, options);
        self.resources.push(resource.name().to_string());
        resource
    }

    /// Finishes the expansion: `main` carries the handle's outputs, `renamed` maps the
    /// accessors whose AWS output has another name (or lives on another resource).
    fn finish(self, main: &Resource, renamed: Vec<(&'static str, Ref)>) -> Expansion {
        Expansion {
            component: self.component,
            main: main.name().to_string(),
            resources: self.resources,
            renamed,
        }
    }
}

/// Declares a trigger resource, a child of the component `source` it listens to.
fn trigger(
    ctx: &Program,
    source: &str,
    name: String,
    type_: &str,
    inputs: Value,
    depends_on: &[&Resource],
) -> Resource {
    let mut options = ResourceOptions::new().parent(source);
    options.depends_on = depends_on.iter().map(|r| r.name().to_string()).collect();
    ctx.register(name, type_.to_string(), inputs, options)
}

/// The logical name of a function's execution role (see [`function`]).
fn role_of(f: &FunctionHandle) -> String {
    format!("{}-role", f.name())
}

/// A function: `NAME-role` (its execution role), `NAME` (the `aws:lambda:Function`) and
/// `NAME-logs` (its log group, `/aws/lambda/<physical name>`, kept 14 days), plus `NAME-access`
/// (an inline policy on the role) when it was given permissions with [`Function::allow`]. A Rust function
/// also gets `NAME-build`, a `core:Command` that builds its `bootstrap` (see [`cargo_build`]).
pub(crate) fn function(ctx: &Program, f: &Function) -> Result<Expansion, Error> {
    if let Some(n) = f.reserved_concurrency {
        return Err(Error::invalid(
            &f.name,
            format!(
                "`.reserved_concurrency({n})` is not supported on the aws target yet (the aws \
                 provider does not manage Lambda concurrency); remove it for this stack"
            ),
        ));
    }
    let mut children = begin(ctx, &f.name, "skyform:Function", &f.options);
    let role = children.add(
        "-role",
        "aws:iam:Role",
        json!({
            "assume_role_policy": assume_role_policy("lambda.amazonaws.com"),
            "managed_policy_arns": [LAMBDA_BASIC_EXECUTION],
        }),
    );
    let code: Value = match &f.cargo_package {
        Some(package) => {
            let (create, triggers) = cargo_build(ctx, &f.name, package, f.code.as_deref(), f.architecture);
            let build =
                children.add("-build", "core:Command", json!({ "create": create, "triggers": triggers }));
            build.output("stdout").into()
        }
        None => f.code.clone().into(),
    };
    let environment: Map<String, Value> = f.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let runtime = f.runtime.as_ref().map(runtime_name).unwrap_or_default();
    let main = children.add(
        "",
        "aws:lambda:Function",
        json!({
            "code": code,
            "role": role.output("arn"),
            "runtime": runtime,
            "handler": f.handler,
            "environment": environment,
            "memory_size": f.memory,
            "timeout": f.timeout,
            "architecture": f.architecture.as_str(),
        }),
    );
    if !f.permissions.is_empty() {
        let statements: Vec<Value> = f
            .permissions
            .iter()
            .map(|(actions, resource)| json!({"Effect": "Allow", "Action": actions, "Resource": resource}))
            .collect();
        children.add(
            "-access",
            "aws:iam:RolePolicy",
            json!({
                "role": role.output("name"),
                "policy": {"Version": "2012-10-17", "Statement": statements},
            }),
        );
    }
    children.add(
        "-logs",
        "aws:logs:LogGroup",
        json!({
            "name": concat([Part::from("/aws/lambda/"), main.output("name").into()]),
            "retention_in_days": LOG_RETENTION_DAYS,
        }),
    );
    Ok(children.finish(&main, vec![("function_name", main.output("name"))]))
}

/// The shell command that builds cargo package `package` for Lambda, and the fingerprint of its
/// sources that reruns it when they change.
///
/// The `aws` provider zips folders; it does not build. So the build is a `core:Command` run
/// in the project folder: `cargo build --release -p PACKAGE` (with `--manifest-path CODE/Cargo.toml`
/// when the package has a folder of its own), then the binary is copied to
/// `.skyform/build/aws/NAME/bootstrap`, and the command prints that folder, which becomes the
/// function's `code`. A command runs again only when its inputs change, hence `triggers`: a hash
/// of the package folder's files (without `target/` and hidden folders), computed here, when the
/// program runs. Without `code` (a member of the project's workspace), the folder is found by
/// the package's name, as the local cloud does. Path dependencies outside the folder are not
/// hashed (documented in COMPONENTS.md).
///
/// The binary is built for Lambda, not for the machine running `skyform`: for the function's
/// architecture, against glibc 2.17 (which every Lambda OS has: `provided.al2023` has 2.34,
/// `provided.al2` 2.26), with `cargo zigbuild`. `cargo-zigbuild` and `zig` come from PyPI
/// (`ziglang`), installed once into a venv under the user's cache folder
/// (`$SKYFORM_CACHE_DIR`, else `$XDG_CACHE_HOME/skyform`, else `~/.cache/skyform`). The target
/// folder is the one the local cloud's build uses too. `arm64` needs the Rust target
/// `aarch64-unknown-linux-gnu` installed; the command says so when it is not.
fn cargo_build(
    ctx: &Program,
    name: &str,
    package: &str,
    code: Option<&str>,
    arch: crate::Architecture,
) -> (String, Value) {
    let out = format!("{BUILD_DIR}/{name}");
    let manifest = code
        .map(|c| format!(" --manifest-path {}", shell_quote(&format!("{c}/Cargo.toml"))))
        .unwrap_or_default();
    let target = "${CARGO_TARGET_DIR:-.skyform/build/target}";
    let triple = match arch {
        crate::Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        crate::Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    };
    let create = format!(
        "set -e; T=\"{target}\"; \
         Z=\"${{SKYFORM_CACHE_DIR:-${{XDG_CACHE_HOME:-$HOME/.cache}}/skyform}}/tools/zigbuild-{ZIGBUILD_TOOLS}\"; \
         mkdir -p \"$(dirname \"$Z\")\"; \
         ( flock 9; if [ ! -f \"$Z/.complete\" ]; then \
             echo \"installing cargo-zigbuild and zig from PyPI into $Z (once)\" >&2; rm -rf \"$Z\"; \
             python3 -m venv \"$Z\" >&2 && \"$Z/bin/pip\" install --quiet --disable-pip-version-check {ZIGBUILD_PIP} >&2 \
             || {{ echo \"cannot install cargo-zigbuild and ziglang with pip (needed to build Rust functions for Lambda); is PyPI reachable?\" >&2; exit 1; }}; \
             touch \"$Z/.complete\"; fi ) 9>\"$Z.lock\"; \
         if ! [ -d \"$(rustc --print sysroot)/lib/rustlib/{triple}\" ]; then \
             echo \"building {name} for Lambda needs the Rust target {triple}: run \\`rustup target add {triple}\\`\" >&2; exit 1; fi; \
         PATH=\"$Z/bin:$PATH\" ZIG_GLOBAL_CACHE_DIR=\"${{ZIG_GLOBAL_CACHE_DIR:-$Z/zig-cache}}\" cargo-zigbuild zigbuild --release --quiet -p {pkg}{manifest} --target {triple}.2.17 --target-dir \"$T\" >&2; \
         B=\"$T/{triple}/release/bootstrap\"; [ -f \"$B\" ] || B=\"$T/{triple}/release/{pkg}\"; \
         mkdir -p {out}; cp \"$B\" {out}/bootstrap; chmod 755 {out}/bootstrap; echo {out}",
        pkg = shell_quote(package),
        out = shell_quote(&out),
    );
    // The package folder: `code`, or the workspace member found by its name.
    let folder = match (code, ctx.project_dir()) {
        (Some(code), Some(dir)) => Some(dir.join(code)),
        (None, Some(dir)) => find_package(dir, package, 4),
        (_, None) => None,
    };
    let fingerprint = folder.and_then(|f| fingerprint(&f)).map(Value::String).unwrap_or(Value::Null);
    (
        create,
        json!({ "package": package, "code": code, "sources": fingerprint, "architecture": arch.as_str() }),
    )
}

/// The folder under `dir` (at most `depth` levels down, skipping `target/` and hidden folders)
/// whose `Cargo.toml` declares the package `package`.
fn find_package(dir: &Path, package: &str, depth: usize) -> Option<std::path::PathBuf> {
    if let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml"))
        && declares_package(&text, package)
    {
        return Some(dir.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    let mut subdirs: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && name != "target" && name != "node_modules"
        })
        .collect();
    subdirs.sort();
    subdirs.into_iter().find_map(|d| find_package(&d, package, depth - 1))
}

/// Whether a `Cargo.toml` declares `[package] name = "PACKAGE"` (a line-level look, enough for
/// the manifests cargo itself writes).
pub(crate) fn declares_package(cargo_toml: &str, package: &str) -> bool {
    let mut in_package = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            return value.trim().trim_matches('"') == package;
        }
    }
    false
}

/// Quotes a word for `sh` when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A hash (FNV-1a, 64 bits, hex) of the paths and contents of the files under `dir`, in sorted
/// order, skipping `target/` and hidden entries. Stable across runs and machines, which is all a
/// rebuild trigger needs; `None` when `dir` cannot be read.
pub(crate) fn fingerprint(dir: &Path) -> Option<String> {
    fn walk(dir: &Path, rel: &str, files: &mut Vec<(String, std::path::PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &rel, files)?;
            } else {
                files.push((rel, entry.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files).ok()?;
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (rel, path) in files {
        eat(rel.as_bytes());
        eat(&[0]);
        eat(&std::fs::read(path).ok()?);
        eat(&[0]);
    }
    Some(format!("{hash:016x}"))
}

/// A route key as a name fragment: `GET /hello/{name}` → `get-hello-name`, `$default` →
/// `default`.
pub(crate) fn route_slug(key: &str) -> String {
    let mut slug = String::new();
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() { "root".to_string() } else { slug }
}

/// An HTTP API: `NAME` (the `aws:apigatewayv2:Api`), `NAME-stage` (`$default`, auto-deployed),
/// per route `NAME-<route>-integration` (AWS_PROXY, payload 2.0) and `NAME-<route>-route`, and
/// per function routed to `NAME-<function>-permission` (API Gateway may invoke it from any route
/// of this API). One permission per function rather than per route: a function serving many
/// routes would otherwise carry as many statements in its resource policy, which is capped at
/// 20 KB. `url()` is the stage's `invoke_url`, so using it waits for the stage.
pub(crate) fn http_api(ctx: &Program, api: &HttpApi) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &api.name, "skyform:HttpApi", &api.options);
    let main = children.add("", "aws:apigatewayv2:Api", json!({ "protocol_type": "HTTP" }));
    let stage = children.add(
        "-stage",
        "aws:apigatewayv2:Stage",
        json!({ "api_id": main.output("id"), "name": "$default", "auto_deploy": true }),
    );
    let mut slugs: Vec<String> = Vec::new();
    let mut permitted: Vec<String> = Vec::new();
    for route in &api.routes {
        let base = route_slug(&route.key);
        let mut slug = base.clone();
        let mut n = 2;
        while slugs.contains(&slug) {
            slug = format!("{base}-{n}");
            n += 1;
        }
        slugs.push(slug.clone());
        let function = route.function.name().to_string();
        if !permitted.contains(&function) {
            children.add(
                &format!("-{function}-permission"),
                "aws:lambda:Permission",
                json!({
                    "function": route.function.function_name(),
                    "principal": "apigateway.amazonaws.com",
                    "source_arn": concat([Part::from(main.output("execution_arn")), "/*/*".into()]),
                }),
            );
            permitted.push(function);
        }
        let integration = children.add(
            &format!("-{slug}-integration"),
            "aws:apigatewayv2:Integration",
            json!({
                "api_id": main.output("id"),
                "integration_type": "AWS_PROXY",
                "integration_uri": route.function.arn(),
                "payload_format_version": "2.0",
            }),
        );
        children.add(
            &format!("-{slug}-route"),
            "aws:apigatewayv2:Route",
            json!({
                "api_id": main.output("id"),
                "route_key": route.key,
                "target": integration.output("target"),
            }),
        );
    }
    Ok(children.finish(&main, vec![("url", stage.output("invoke_url"))]))
}

/// A queue: one `aws:sqs:Queue` named like the component, with a redrive policy when it has a
/// dead-letter queue.
pub(crate) fn queue(ctx: &Program, q: &Queue) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &q.name, "skyform:Queue", &q.options);
    let mut inputs = json!({
        "fifo_queue": q.fifo,
        "visibility_timeout_seconds": q.visibility_timeout,
        "message_retention_seconds": q.message_retention,
        "delay_seconds": q.delay,
    });
    if let Some((dlq, max)) = &q.dead_letter {
        inputs["redrive_policy"] = json!({ "dead_letter_target_arn": dlq.arn(), "max_receive_count": max });
    }
    let main = children.add("", "aws:sqs:Queue", inputs);
    Ok(children.finish(&main, vec![("queue_name", main.output("name"))]))
}

/// A queue subscription: `QUEUE-FUNCTION-policy`, an inline policy on the function's role that
/// lets Lambda poll the queue, and `QUEUE-FUNCTION`, the event source mapping, created after the
/// policy (Lambda checks the role's permissions when the mapping is created). The mapping
/// reports batch item failures, so a function returning `batchItemFailures` has only those
/// messages retried, as on the local cloud, which always reads them.
pub(crate) fn queue_subscription(
    ctx: &Program,
    q: &QueueHandle,
    f: &FunctionHandle,
    t: &QueueTrigger,
) -> Result<Vec<String>, Error> {
    let base = format!("{}-{}", q.name(), f.name());
    let policy = trigger(
        ctx,
        q.name(),
        format!("{base}-policy"),
        "aws:iam:RolePolicy",
        json!({
            "role": Ref::new(role_of(f), "name"),
            "policy": allow(
                &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                q.arn(),
            ),
        }),
        &[],
    );
    let mapping =
        trigger(ctx, q.name(), base, "aws:lambda:EventSourceMapping", mapping_inputs(q, f, t), &[&policy]);
    Ok(vec![policy.name().to_string(), mapping.name().to_string()])
}

/// The event source mapping's inputs for a queue trigger.
fn mapping_inputs(q: &QueueHandle, f: &FunctionHandle, t: &QueueTrigger) -> Value {
    let mut inputs = json!({
        "event_source_arn": q.arn(),
        "function": f.function_name(),
        "batch_size": t.batch_size,
        "function_response_types": ["ReportBatchItemFailures"],
    });
    if t.batching_window > 0 {
        inputs["maximum_batching_window_in_seconds"] = json!(t.batching_window);
    }
    if let Some(n) = t.maximum_concurrency {
        inputs["maximum_concurrency"] = json!(n);
    }
    inputs
}

/// A topic: one `aws:sns:Topic` named like the component.
pub(crate) fn topic(ctx: &Program, t: &Topic) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &t.name, "skyform:Topic", &t.options);
    let main = children.add("", "aws:sns:Topic", json!({ "fifo_topic": t.fifo }));
    Ok(children.finish(&main, vec![("topic_name", main.output("name"))]))
}

/// A topic subscription: `TOPIC-FUNCTION-permission` (SNS may invoke the function for this
/// topic) and `TOPIC-FUNCTION`, the `aws:sns:Subscription` (protocol `lambda`), created after it.
pub(crate) fn topic_subscription(
    ctx: &Program,
    t: &TopicHandle,
    f: &FunctionHandle,
) -> Result<Vec<String>, Error> {
    let base = format!("{}-{}", t.name(), f.name());
    let permission = trigger(
        ctx,
        t.name(),
        format!("{base}-permission"),
        "aws:lambda:Permission",
        json!({ "function": f.function_name(), "principal": "sns.amazonaws.com", "source_arn": t.arn() }),
        &[],
    );
    let subscription = trigger(
        ctx,
        t.name(),
        base,
        "aws:sns:Subscription",
        json!({ "topic_arn": t.arn(), "protocol": "lambda", "endpoint": f.arn() }),
        &[&permission],
    );
    Ok(vec![permission.name().to_string(), subscription.name().to_string()])
}

/// A queue subscribed to a topic: `QUEUE-policy`, the queue's access policy with one statement
/// per topic sending to it (SNS may `sqs:SendMessage` when the source is that topic), and
/// `TOPIC-QUEUE`, the `aws:sns:Subscription` (protocol `sqs`), created after the policy.
///
/// SQS keeps a queue's policy as one document, so, as for bucket notifications, the first topic
/// subscribing a queue declares `QUEUE-policy` (a child of the queue) and later ones add their
/// statement to it and to its `depends_on`.
pub(crate) fn topic_queue_subscription(
    ctx: &Program,
    t: &TopicHandle,
    q: &QueueHandle,
    d: &QueueDelivery,
) -> Result<Vec<String>, Error> {
    let statement = json!({
        "Sid": format!("sns-{}", t.name()),
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": q.arn(),
        "Condition": {"ArnEquals": {"aws:SourceArn": t.arn()}},
    });
    let name = format!("{}-policy", q.name());
    let existing = ctx.update_inputs(&name, |inputs| {
        if let Some(statements) = inputs["policy"]["Statement"].as_array_mut() {
            statements.push(statement.clone());
        }
    });
    let policy = match existing {
        Some(resource) => resource,
        None => trigger(
            ctx,
            q.name(),
            name,
            "aws:sqs:QueuePolicy",
            json!({
                "queue_url": q.url(),
                "policy": {"Version": "2012-10-17", "Statement": [statement]},
            }),
            &[],
        ),
    };
    let mut inputs = json!({
        "topic_arn": t.arn(),
        "protocol": "sqs",
        "endpoint": q.arn(),
        "raw_message_delivery": d.raw,
    });
    if let Some(policy) = &d.filter_policy {
        inputs["filter_policy"] = policy.clone();
    }
    let subscription = trigger(
        ctx,
        t.name(),
        format!("{}-{}", t.name(), q.name()),
        "aws:sns:Subscription",
        inputs,
        &[&policy],
    );
    Ok(vec![policy.name().to_string(), subscription.name().to_string()])
}

/// A bucket: one `aws:s3:Bucket` named like the component.
pub(crate) fn bucket(ctx: &Program, b: &Bucket) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &b.name, "skyform:Bucket", &b.options);
    let main = children.add(
        "",
        "aws:s3:Bucket",
        json!({ "versioning": b.versioning, "force_destroy": b.force_destroy }),
    );
    Ok(children.finish(&main, vec![("bucket_name", main.output("name"))]))
}

/// A bucket notification: `BUCKET-EVENT-FUNCTION-permission` (S3 may invoke the function for
/// this bucket) and one entry in `BUCKET-notifications`.
///
/// S3 keeps all of a bucket's notifications as one document, which `aws:s3:BucketNotification`
/// writes whole; two resources each writing their own would overwrite each other. So the first
/// notification of a bucket declares that resource and later ones add their entry (and their
/// permission, to its `depends_on`: S3 checks it may invoke the function when the document is
/// written).
pub(crate) fn bucket_notification(
    ctx: &Program,
    b: &BucketHandle,
    f: &FunctionHandle,
    n: &Notification,
) -> Result<Vec<String>, Error> {
    let permission = trigger(
        ctx,
        b.name(),
        format!("{}-{}-{}-permission", b.name(), n.event.word(), f.name()),
        "aws:lambda:Permission",
        json!({ "function": f.function_name(), "principal": "s3.amazonaws.com", "source_arn": b.arn() }),
        &[],
    );
    let mut entry = json!({ "arn": f.arn(), "events": [n.event.as_str()] });
    if let Some(prefix) = &n.prefix {
        entry["filter_prefix"] = json!(prefix);
    }
    if let Some(suffix) = &n.suffix {
        entry["filter_suffix"] = json!(suffix);
    }
    let name = format!("{}-notifications", b.name());
    let existing = ctx.update_inputs(&name, |inputs| {
        if let Some(lambdas) = inputs["lambdas"].as_array_mut() {
            lambdas.push(entry.clone());
        }
    });
    let notifications = match existing {
        Some(resource) => {
            let options = resource.current_options().depends_on(&permission);
            resource.options(options)
        }
        None => trigger(
            ctx,
            b.name(),
            name,
            "aws:s3:BucketNotification",
            json!({ "bucket": b.bucket_name(), "lambdas": [entry] }),
            &[&permission],
        ),
    };
    Ok(vec![permission.name().to_string(), notifications.name().to_string()])
}

/// A schedule: `NAME-role` (a role EventBridge Scheduler assumes), `NAME-policy` (it may invoke
/// the function) and `NAME`, the `aws:scheduler:Schedule`, created after the policy.
pub(crate) fn schedule(ctx: &Program, s: &Schedule) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &s.name, "skyform:Schedule", &s.options);
    let role = children.add(
        "-role",
        "aws:iam:Role",
        json!({ "assume_role_policy": assume_role_policy("scheduler.amazonaws.com") }),
    );
    let policy = children.add(
        "-policy",
        "aws:iam:RolePolicy",
        json!({ "role": role.output("name"), "policy": allow(&["lambda:InvokeFunction"], s.function.arn()) }),
    );
    // Always an input, `{}` when there is no payload: without one Scheduler sends its own
    // "default notification", and the local cloud sends `{}`; this way the function gets the
    // same event on both targets.
    let input = if s.payload.is_null() { json!({}) } else { s.payload.clone() };
    let target = json!({ "arn": s.function.arn(), "role_arn": role.output("arn"), "input": input });
    let mut inputs = json!({
        "schedule_expression": s.expression.trim(),
        "target": target,
        "state": if s.enabled { "ENABLED" } else { "DISABLED" },
    });
    if let Some(tz) = &s.timezone {
        inputs["schedule_expression_timezone"] = json!(tz);
    }
    let main = children.add_with("", "aws:scheduler:Schedule", inputs, &[policy.name()]);
    Ok(children.finish(&main, Vec::new()))
}

/// DynamoDB's letter for a key type.
fn key_type(k: KeyType) -> &'static str {
    match k {
        KeyType::String => "S",
        KeyType::Number => "N",
        KeyType::Binary => "B",
    }
}

/// A table: one `aws:dynamodb:Table` named like the component, billed per request.
pub(crate) fn table(ctx: &Program, t: &Table) -> Result<Expansion, Error> {
    let mut children = begin(ctx, &t.name, "skyform:Table", &t.options);
    let mut inputs = json!({ "billing_mode": "PAY_PER_REQUEST" });
    if let Some((name, type_)) = &t.hash_key {
        inputs["hash_key"] = json!(name);
        inputs["hash_key_type"] = json!(key_type(*type_));
    }
    if let Some((name, type_)) = &t.range_key {
        inputs["range_key"] = json!(name);
        inputs["range_key_type"] = json!(key_type(*type_));
    }
    if !t.indexes.is_empty() {
        inputs["global_secondary_indexes"] = t
            .indexes
            .iter()
            .map(|i| {
                let mut g = json!({ "name": i.name, "hash_key": i.hash_key.0, "hash_key_type": key_type(i.hash_key.1) });
                if let Some((n, k)) = &i.range_key {
                    g["range_key"] = json!(n);
                    g["range_key_type"] = json!(key_type(*k));
                }
                g
            })
            .collect();
    }
    let main = children.add("", "aws:dynamodb:Table", inputs);
    Ok(children.finish(&main, vec![("table_name", main.output("name"))]))
}

/// A table's change trigger: the table's stream is turned on (`NEW_AND_OLD_IMAGES`),
/// `TABLE-FUNCTION-policy` lets the function's role read it, and `TABLE-FUNCTION` is the event
/// source mapping (from the stream's end, as Lambda's `LATEST`), created after the policy.
pub(crate) fn table_subscription(
    ctx: &Program,
    t: &TableHandle,
    f: &FunctionHandle,
    batch_size: u32,
) -> Result<Vec<String>, Error> {
    ctx.update_inputs(&t.expansion.main, |inputs| {
        inputs["stream_enabled"] = json!(true);
        inputs["stream_view_type"] = json!("NEW_AND_OLD_IMAGES");
    });
    let base = format!("{}-{}", t.name(), f.name());
    let policy = trigger(
        ctx,
        t.name(),
        format!("{base}-policy"),
        "aws:iam:RolePolicy",
        json!({
            "role": Ref::new(role_of(f), "name"),
            "policy": allow(
                &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
                t.stream_arn(),
            ),
        }),
        &[],
    );
    let mapping = trigger(
        ctx,
        t.name(),
        base,
        "aws:lambda:EventSourceMapping",
        json!({
            "event_source_arn": t.stream_arn(),
            "function": f.function_name(),
            "batch_size": batch_size,
            "starting_position": "LATEST",
        }),
        &[&policy],
    );
    Ok(vec![policy.name().to_string(), mapping.name().to_string()])
}
