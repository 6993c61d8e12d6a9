//! `skyform-aws`: the first-party `aws` provider.
//!
//! It maps skyform resources onto AWS over the real HTTP APIs: requests are signed with SigV4
//! (`sigv4.rs`), sent through one retrying client (`http.rs`), and each service has a module
//! under `resources/` that implements [`resource::Kind`] for its types. The provider speaks
//! the skyform protocol through `skyform_protocol::serve`; the `skyform` binary runs it as
//! `skyform provider aws`, and `src/bin/skyform-provider-aws.rs` is the same thing as an
//! executable of its own.
//!
//! **Architecture Invariant:** `check` and `diff` never call AWS (a preview must work without
//! credentials reaching anything), and only `create`, `update` and `delete` change anything.
//!
//! `RESOURCES.md` beside this crate documents every type's inputs; a test keeps it in step
//! with the schemas.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use skyform_protocol::{
    CheckRequest, CheckResponse, ConfigureRequest, ConfigureResponse, CreateRequest, CreateResponse,
    DeleteRequest, DeleteResponse, DiffRequest, DiffResponse, Provider, ProviderError, ReadRequest,
    ReadResource, ReadResponse, ResourceSchema, UpdateRequest, UpdateResponse,
};

pub mod backend;
pub mod config;
pub mod credentials;
pub mod http;
pub mod kms;
pub mod ops;
pub mod package;
pub mod resource;
mod resources;
pub mod sigv4;
pub mod tags;
mod util;
pub mod xml;
pub mod zip;

use resource::{CheckCtx, Ctx, Kind};
use serde_json::Value;

/// Runs the provider on stdin/stdout until stdin closes.
pub fn provider_main() -> std::process::ExitCode {
    match skyform_protocol::serve_blocking(AwsProvider::default()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyform-provider-aws: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Calls `$body` with `$k` bound to the [`Kind`] for a type token. A macro rather than a
/// `dyn Kind`: the trait's methods are `async`, which trait objects do not support.
macro_rules! with_kind {
    ($token:expr, |$k:ident| $body:expr, $otherwise:expr) => {
        match $token {
            "aws:iam:Role" => {
                let $k = &$crate::resources::iam::Role;
                $body
            }
            "aws:iam:RolePolicy" => {
                let $k = &$crate::resources::iam::RolePolicy;
                $body
            }
            "aws:logs:LogGroup" => {
                let $k = &$crate::resources::logs::LogGroup;
                $body
            }
            "aws:lambda:Function" => {
                let $k = &$crate::resources::lambda::Function;
                $body
            }
            "aws:lambda:Permission" => {
                let $k = &$crate::resources::lambda::Permission;
                $body
            }
            "aws:lambda:EventSourceMapping" => {
                let $k = &$crate::resources::lambda::EventSourceMapping;
                $body
            }
            "aws:lambda:FunctionUrl" => {
                let $k = &$crate::resources::lambda::FunctionUrl;
                $body
            }
            "aws:sqs:Queue" => {
                let $k = &$crate::resources::sqs::Queue;
                $body
            }
            "aws:sqs:QueuePolicy" => {
                let $k = &$crate::resources::sqs::QueuePolicy;
                $body
            }
            "aws:apigatewayv2:Api" => {
                let $k = &$crate::resources::apigw::Api;
                $body
            }
            "aws:apigatewayv2:Integration" => {
                let $k = &$crate::resources::apigw::Integration;
                $body
            }
            "aws:apigatewayv2:Route" => {
                let $k = &$crate::resources::apigw::Route;
                $body
            }
            "aws:apigatewayv2:Stage" => {
                let $k = &$crate::resources::apigw::Stage;
                $body
            }
            "aws:s3:Bucket" => {
                let $k = &$crate::resources::s3::Bucket;
                $body
            }
            "aws:s3:BucketNotification" => {
                let $k = &$crate::resources::s3::BucketNotification;
                $body
            }
            "aws:dynamodb:Table" => {
                let $k = &$crate::resources::dynamodb::Table;
                $body
            }
            "aws:sns:Topic" => {
                let $k = &$crate::resources::sns::Topic;
                $body
            }
            "aws:sns:Subscription" => {
                let $k = &$crate::resources::sns::Subscription;
                $body
            }
            "aws:scheduler:Schedule" => {
                let $k = &$crate::resources::scheduler::Schedule;
                $body
            }
            _ => $otherwise,
        }
    };
}

/// Every type's spec, for the handshake and the documentation test.
pub fn specs() -> Vec<resource::Spec> {
    resources::TOKENS
        .iter()
        .map(|t| with_kind!(*t, |k| resource::full_spec(k), unreachable!("{t} is listed but not served")))
        .collect()
}

/// The provider: configured once by `configure`, then shared by all requests.
#[derive(Default)]
pub struct AwsProvider {
    ctx: RwLock<Option<Arc<Ctx>>>,
}

impl AwsProvider {
    fn ctx(&self) -> Result<Arc<Ctx>, ProviderError> {
        self.ctx.read().expect("not poisoned").clone().ok_or_else(|| {
            ProviderError::configuration(
                "the aws provider was used before `configure`; this is an engine bug",
            )
        })
    }

    /// The context for a call that changes something: refused when configured for a preview.
    fn mutating_ctx(&self, verb: &str) -> Result<Arc<Ctx>, ProviderError> {
        let ctx = self.ctx()?;
        if ctx.dry_run {
            return Err(ProviderError::new(
                skyform_protocol::ErrorCode::BadRequest,
                format!(
                    "{verb} during a preview: the aws provider was configured with dry_run and changes nothing"
                ),
            ));
        }
        Ok(ctx)
    }

    fn project_dir(&self) -> PathBuf {
        self.ctx
            .read()
            .expect("not poisoned")
            .as_ref()
            .map(|c| c.project_dir.clone())
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default())
    }
}

fn unknown_type(token: &str) -> ProviderError {
    ProviderError::unsupported(format!("the aws provider has no resource type `{token}`"))
}

/// Turns an error from a resource operation into the protocol's error, naming the operation,
/// the type and the resource: "creating aws:sqs:Queue `jobs`: AccessDenied: …".
fn fail(verb: &str, token: &str, name: &str, e: http::Error) -> ProviderError {
    let what = format!("{verb} {token} `{name}`");
    match e {
        http::Error::Provider(p) => ProviderError::new(p.code, format!("{what}: {}", p.message)),
        e if e.is_auth() => ProviderError::configuration(format!(
            "{what}: {e}; AWS refused the credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the \
             profile named under [providers.aws] (and its region)"
        )),
        e @ http::Error::Api { .. } if e.is_not_found() && verb != "creating" => {
            ProviderError::not_found(format!("{what}: {e}; run `skyform refresh` to forget it"))
        }
        e @ http::Error::Transport(_) => ProviderError::failed(format!(
            "{what}: {e}; check the network, or `endpoint` under [providers.aws] if you set one"
        )),
        e => ProviderError::failed(format!("{what}: {e}")),
    }
}

impl Provider for AwsProvider {
    fn name(&self) -> String {
        "aws".into()
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").into()
    }

    fn schemas(&self) -> BTreeMap<String, ResourceSchema> {
        specs().into_iter().map(|s| (s.token.to_string(), s.schema())).collect()
    }

    async fn configure(&self, req: ConfigureRequest) -> Result<ConfigureResponse, ProviderError> {
        let settings = config::Settings::resolve(&req.config, &|k| std::env::var(k).ok())?;
        let aws = http::Aws::new(settings).map_err(ProviderError::configuration)?;
        // Ask who the credentials are (STS GetCallerIdentity) before anything else, as
        // Terraform's provider does: bad credentials or an unreachable endpoint then fail the
        // command up front with one clear error, instead of failing every step on its own.
        if let Err(e) = aws.account_id().await {
            return Err(match e {
                e if e.is_auth() => ProviderError::configuration(format!(
                    "AWS refused the credentials ({e}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the \
                     profile named under [providers.aws] (and its region)"
                )),
                http::Error::Provider(p) => p,
                e => ProviderError::configuration(format!(
                    "cannot check the AWS credentials: {e}; check the network, or `endpoint` under [providers.aws] if you set one"
                )),
            });
        }
        let ctx = Ctx { aws, project_dir: PathBuf::from(&req.project_dir), dry_run: req.dry_run };
        *self.ctx.write().expect("not poisoned") = Some(Arc::new(ctx));
        Ok(ConfigureResponse {})
    }

    async fn check(&self, req: CheckRequest) -> Result<CheckResponse, ProviderError> {
        let dir = self.project_dir();
        let mut inputs = req.inputs;
        // The stack's default tags, under the resource's own.
        if tags::is_taggable(&req.type_)
            && let (Some(c), Some(map)) =
                (self.ctx.read().expect("not poisoned").clone(), inputs.as_object_mut())
        {
            tags::merge(&c.aws.settings.tags, map);
        }
        let ctx = CheckCtx { logical_name: &req.name, project_dir: &dir, olds: req.olds.as_ref() };
        let (inputs, failures) = with_kind!(
            req.type_.as_str(),
            |k| resource::check(k, &ctx, inputs),
            return Err(unknown_type(&req.type_))
        );
        Ok(CheckResponse { inputs, failures })
    }

    async fn diff(&self, req: DiffRequest) -> Result<Option<DiffResponse>, ProviderError> {
        let spec =
            with_kind!(req.type_.as_str(), |k| resource::full_spec(k), return Err(unknown_type(&req.type_)));
        Ok(Some(resource::diff(&spec, &req.olds, &req.news)))
    }

    async fn create(&self, req: CreateRequest) -> Result<CreateResponse, ProviderError> {
        let ctx = self.mutating_ctx("create")?;
        let token = req.type_.as_str();
        let created =
            with_kind!(token, |k| k.create(&ctx, &req.inputs).await, return Err(unknown_type(token)))
                .map_err(|e| fail("creating", token, &req.name, e))?;
        if let Some(t) = req.inputs.get("tags").and_then(Value::as_object).filter(|t| !t.is_empty()) {
            let tagged =
                tags::apply(&ctx, token, &created.id, &created.outputs, &Default::default(), t).await;
            if let Err(e) = tagged {
                // Create is all-or-nothing: an untagged resource would escape cost allocation.
                let _ = with_kind!(
                    token,
                    |k| k.delete(&ctx, &created.id, &req.inputs).await,
                    return Err(unknown_type(token))
                );
                return Err(fail("tagging", token, &req.name, e));
            }
        }
        Ok(CreateResponse { id: created.id, outputs: created.outputs })
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let ctx = self.ctx()?;
        let token = req.type_.as_str();
        let result: http::Result<Option<(String, resource::Found)>> = with_kind!(
            token,
            |k| async {
                let id = match &req.id {
                    Some(id) => Some(id.clone()),
                    None => k.find(&ctx, &req.inputs).await?,
                };
                let Some(id) = id else { return Ok(None) };
                let Some(mut found) = k.read(&ctx, &id, &req.inputs).await? else { return Ok(None) };
                if tags::is_taggable(token) {
                    let real = tags::read(&ctx, token, &id, &found.outputs).await.map_err(|e| {
                        // Not "gone": the resource was just read.
                        http::Error::Provider(ProviderError::failed(format!("reading the tags: {e}")))
                    })?;
                    let had = req.inputs.get("tags").is_some_and(|t| t.is_object());
                    if let Some(m) = found.inputs.as_object_mut() {
                        if real.is_empty() && !had {
                            m.remove("tags");
                        } else {
                            m.insert("tags".into(), Value::Object(real));
                        }
                    }
                }
                Ok(Some((id, found)))
            }
            .await,
            return Err(unknown_type(token))
        );
        match result {
            Ok(found) => Ok(ReadResponse {
                resource: found.map(|(id, f)| ReadResource { id, inputs: f.inputs, outputs: f.outputs }),
            }),
            Err(e) if e.is_not_found() => Ok(ReadResponse { resource: None }),
            Err(e) => Err(fail("reading", token, &req.name, e)),
        }
    }

    async fn update(&self, req: UpdateRequest) -> Result<UpdateResponse, ProviderError> {
        let ctx = self.mutating_ctx("update")?;
        let token = req.type_.as_str();
        let result = with_kind!(
            token,
            |k| match k.update(&ctx, &req.id, &req.olds, &req.news).await {
                // "Not found" may be about the resource or about something it names (a
                // policy ARN); only the first is the protocol's `not_found`.
                Err(e) if e.is_not_found() => match k.read(&ctx, &req.id, &req.olds).await {
                    Ok(Some(_)) => Err(http::Error::Provider(ProviderError::failed(e.to_string()))),
                    _ => Err(e),
                },
                other => other,
            },
            return Err(unknown_type(token))
        );
        let outputs = result.map_err(|e| fail("updating", token, &req.name, e))?;
        if tags::is_taggable(token) {
            let map = |v: &Value| v.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
            tags::apply(&ctx, token, &req.id, &outputs, &map(&req.olds), &map(&req.news))
                .await
                .map_err(|e| fail("tagging", token, &req.name, e))?;
        }
        Ok(UpdateResponse { outputs })
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, ProviderError> {
        let ctx = self.mutating_ctx("delete")?;
        let token = req.type_.as_str();
        match with_kind!(
            token,
            |k| k.delete(&ctx, &req.id, &req.inputs).await,
            return Err(unknown_type(token))
        ) {
            Ok(()) => Ok(DeleteResponse {}),
            // Already gone is what delete wanted.
            Err(e) if e.is_not_found() => Ok(DeleteResponse {}),
            Err(e) => Err(fail("deleting", token, &req.name, e)),
        }
    }
}

/// The generated part of `RESOURCES.md`: one section per type, from its spec.
pub fn resources_reference() -> String {
    let mut out = String::new();
    for spec in specs() {
        out.push_str(&format!("\n## `{}`\n\n{}\n\n", spec.token, spec.description));
        out.push_str(
            "| input | type | default | forces replacement | description |\n|---|---|---|---|---|\n",
        );
        let props = spec.properties.as_object().cloned().unwrap_or_default();
        let mut names: Vec<&String> = props.keys().collect();
        // Required first, then the rest alphabetically.
        names.sort_by_key(|n| (!spec.required.contains(&n.as_str()), n.to_string()));
        for name in names {
            let p = &props[name];
            let ty = match &p["type"] {
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
                t => t.as_str().unwrap_or("any").to_string(),
            };
            let default = match (p.get("default"), spec.name) {
                (Some(d), _) => format!("`{d}`"),
                (None, Some(rule)) if rule.prop == name => "generated".into(),
                _ if spec.required.contains(&name.as_str()) => "required".into(),
                _ => String::new(),
            };
            let replaces = if spec.replace_on_changes.contains(&name.as_str()) { "yes" } else { "" };
            let desc = p["description"].as_str().unwrap_or_default().replace('|', "\\|");
            out.push_str(&format!("| `{name}` | {ty} | {default} | {replaces} | {desc} |\n"));
        }
        let outputs: Vec<String> = spec.outputs.iter().map(|o| format!("`{o}`")).collect();
        out.push_str(&format!("\nOutputs: {}.\n", outputs.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    const MARKER: &str = "<!-- generated from the schemas below this line: UPDATE_RESOURCES_MD=1 cargo test -p skyform-aws -->\n";

    /// RESOURCES.md documents every type and input exactly as the schemas say; run with
    /// `UPDATE_RESOURCES_MD=1` to rewrite its generated half after changing a schema.
    #[test]
    fn resources_md_matches_the_schemas() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESOURCES.md");
        let text = std::fs::read_to_string(path).expect("RESOURCES.md exists");
        let (head, generated) = text.split_once(MARKER).expect("RESOURCES.md has the generated-part marker");
        let want = super::resources_reference();
        if std::env::var_os("UPDATE_RESOURCES_MD").is_some() {
            std::fs::write(path, format!("{head}{MARKER}{want}")).unwrap();
            return;
        }
        assert!(
            generated == want,
            "RESOURCES.md is out of date: run UPDATE_RESOURCES_MD=1 cargo test -p skyform-aws --lib"
        );
    }

    /// During a preview any input may be unknown; `check` must accept that for every input of
    /// every type (validation of unknown values waits for `up`).
    #[test]
    fn check_accepts_unknown_values_everywhere() {
        use skyform_protocol::UNKNOWN;
        let dir = std::env::temp_dir();
        for spec in super::specs() {
            let props = spec.properties.as_object().unwrap();
            let all: serde_json::Map<String, serde_json::Value> =
                props.keys().map(|k| (k.clone(), serde_json::json!(UNKNOWN))).collect();
            let ctx = super::CheckCtx { logical_name: "x", project_dir: &dir, olds: None };
            let (inputs, failures) = with_kind!(
                spec.token,
                |k| super::resource::check(k, &ctx, all.clone().into()),
                unreachable!()
            );
            assert!(failures.is_empty(), "{}: {failures:?}", spec.token);
            for k in props.keys() {
                if k != "code_sha256" {
                    assert_eq!(inputs[k], UNKNOWN, "{}: `{k}` stays unknown", spec.token);
                }
            }
        }
    }

    #[test]
    fn every_type_token_is_served() {
        let specs = super::specs();
        assert_eq!(specs.len(), super::resources::TOKENS.len());
        for (spec, token) in specs.iter().zip(super::resources::TOKENS) {
            assert_eq!(spec.token, *token);
            for r in spec.replace_on_changes.iter().chain(spec.required).chain(spec.identity) {
                assert!(spec.properties.get(*r).is_some(), "{token}: `{r}` is not an input");
            }
        }
    }
}
