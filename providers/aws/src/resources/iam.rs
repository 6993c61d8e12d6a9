//! IAM (query protocol, global): `aws:iam:Role` and `aws:iam:RolePolicy`.
//!
//! IAM is eventually consistent: a role that `CreateRole` just returned may not be visible to
//! `GetRole`, and not assumable by Lambda, for a few seconds. `create` waits until `GetRole`
//! sees the role; `aws:lambda:Function` retries the "cannot be assumed" error on its side.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{Error, Result};
use crate::resource::{Created, Ctx, Found, Kind, NAME, Spec};
use crate::util::{Inputs, policy_string, policy_value, set};
use crate::xml;

const VERSION: &str = "2010-05-08";

async fn iam(ctx: &Ctx, action: &str, params: &[(&str, String)]) -> Result<String> {
    ctx.aws.query("iam", VERSION, action, params).await
}

pub struct Role;

/// Every page of an IAM list call (`Marker`/`IsTruncated`), each page's XML.
async fn pages(ctx: &Ctx, action: &str, role: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut params = vec![("RoleName", role.to_string()), ("MaxItems", PAGE.to_string())];
        if let Some(m) = &marker {
            params.push(("Marker", m.clone()));
        }
        let xml = iam(ctx, action, &params).await?;
        let next = (xml::tag(&xml, "IsTruncated").as_deref() == Some("true"))
            .then(|| xml::tag(&xml, "Marker"))
            .flatten();
        out.push(xml);
        match next {
            Some(m) if marker.as_ref() != Some(&m) => marker = Some(m),
            _ => return Ok(out),
        }
    }
}

/// Items per page of IAM list calls (AWS allows up to 1000; smaller pages keep each answer
/// small, and every page is followed).
const PAGE: u32 = 100;

async fn attached_policies(ctx: &Ctx, role: &str) -> Result<Vec<String>> {
    let pages = pages(ctx, "ListAttachedRolePolicies", role).await?;
    Ok(pages.iter().flat_map(|xml| xml::tags(xml, "PolicyArn")).collect())
}

async fn inline_policies(ctx: &Ctx, role: &str) -> Result<Vec<String>> {
    let pages = pages(ctx, "ListRolePolicies", role).await?;
    Ok(pages
        .iter()
        .flat_map(|xml| {
            xml::blocks(xml, "PolicyNames").first().map(|b| xml::tags(b, "member")).unwrap_or_default()
        })
        .collect())
}

fn role_outputs(xml: &str) -> Value {
    json!({
        "arn": xml::tag(xml, "Arn"),
        "name": xml::tag(xml, "RoleName"),
        "unique_id": xml::tag(xml, "RoleId"),
    })
}

fn strings(v: Option<&Vec<Value>>) -> Vec<String> {
    v.map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

async fn delete_role(ctx: &Ctx, name: &str) -> Result<()> {
    for arn in attached_policies(ctx, name).await? {
        iam(ctx, "DetachRolePolicy", &[("RoleName", name.into()), ("PolicyArn", arn)]).await?;
    }
    // A role with inline policies cannot be deleted; the `aws:iam:RolePolicy` resources that
    // own them are normally deleted first, this catches the rest.
    for policy in inline_policies(ctx, name).await? {
        iam(ctx, "DeleteRolePolicy", &[("RoleName", name.into()), ("PolicyName", policy)]).await?;
    }
    iam(ctx, "DeleteRole", &[("RoleName", name.into())]).await?;
    Ok(())
}

impl Kind for Role {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:iam:Role",
            description: "An IAM role, e.g. the execution role of a Lambda function.",
            properties: json!({
                "name": {"type": "string", "description": "The role name (1-64 characters); generated from the logical name when absent."},
                "assume_role_policy": {"type": ["object", "string"], "description": "The trust policy document: who may assume the role."},
                "description": {"type": "string", "description": "A description of the role."},
                "path": {"type": "string", "default": "/", "description": "The IAM path, `/` by default."},
                "max_session_duration": {"type": "integer", "default": 3600, "description": "Maximum session length in seconds (3600-43200)."},
                "managed_policy_arns": {"type": "array", "items": {"type": "string"}, "description": "ARNs of managed policies to attach."},
            }),
            required: &["assume_role_policy"],
            outputs: &["arn", "name", "unique_id"],
            replace_on_changes: &["name", "path"],
            identity: &["name"],
            name: Some(NAME),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &crate::resource::CheckCtx<'_>,
        inputs: &mut serde_json::Map<String, Value>,
        failures: &mut Vec<skyform_protocol::CheckFailure>,
    ) {
        normalise_policy(inputs, "assume_role_policy", failures);
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default().to_string();
        let mut params = vec![
            ("RoleName", name.clone()),
            ("AssumeRolePolicyDocument", policy_string(&inputs["assume_role_policy"])),
            ("Path", inputs.str_of("path").unwrap_or("/").to_string()),
            ("MaxSessionDuration", inputs.i64_of("max_session_duration").unwrap_or(3600).to_string()),
        ];
        if let Some(d) = inputs.str_of("description") {
            params.push(("Description", d.to_string()));
        }
        let xml = iam(ctx, "CreateRole", &params).await?;
        let attach = async {
            for arn in strings(inputs.arr_of("managed_policy_arns")) {
                attach_policy(ctx, &name, &arn).await?;
            }
            // Wait until IAM's read side sees the role, so that what depends on it can use it.
            let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs.min(60));
            loop {
                match iam(ctx, "GetRole", &[("RoleName", name.clone())]).await {
                    Err(e) if e.is_not_found() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_secs(1)).await
                    }
                    other => return other.map(|_| ()),
                }
            }
        };
        if let Err(e) = attach.await {
            // Create is all-or-nothing: take the half-made role away again.
            let _ = delete_role(ctx, &name).await;
            return Err(e);
        }
        Ok(Created { id: name, outputs: role_outputs(&xml) })
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let xml = iam(ctx, "GetRole", &[("RoleName", id.into())]).await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", json!(xml::tag(&xml, "RoleName")));
        set(&mut inputs, "path", json!(xml::tag(&xml, "Path")));
        set(
            &mut inputs,
            "assume_role_policy",
            xml::tag(&xml, "AssumeRolePolicyDocument").map(|p| policy_value(&p)).unwrap_or(Value::Null),
        );
        set(&mut inputs, "description", json!(xml::tag(&xml, "Description").filter(|d| !d.is_empty())));
        set(
            &mut inputs,
            "max_session_duration",
            json!(xml::tag(&xml, "MaxSessionDuration").and_then(|d| d.parse::<i64>().ok())),
        );
        let mut attached = attached_policies(ctx, id).await?;
        let declared = strings(stored.arr_of("managed_policy_arns"));
        let mut sorted_declared = declared.clone();
        sorted_declared.sort();
        attached.sort();
        if attached == sorted_declared {
            attached = declared; // same set: keep the program's order, so it is no diff
        }
        set(
            &mut inputs,
            "managed_policy_arns",
            if attached.is_empty() && !stored.has("managed_policy_arns") {
                Value::Null
            } else {
                json!(attached)
            },
        );
        Ok(Some(Found { inputs, outputs: role_outputs(&xml) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        let name = id.to_string();
        if olds.get("assume_role_policy") != news.get("assume_role_policy") {
            iam(
                ctx,
                "UpdateAssumeRolePolicy",
                &[("RoleName", name.clone()), ("PolicyDocument", policy_string(&news["assume_role_policy"]))],
            )
            .await?;
        }
        if olds.get("description") != news.get("description")
            || olds.get("max_session_duration") != news.get("max_session_duration")
        {
            iam(
                ctx,
                "UpdateRole",
                &[
                    ("RoleName", name.clone()),
                    ("Description", news.str_of("description").unwrap_or("").to_string()),
                    ("MaxSessionDuration", news.i64_of("max_session_duration").unwrap_or(3600).to_string()),
                ],
            )
            .await?;
        }
        let (old_arns, new_arns) =
            (strings(olds.arr_of("managed_policy_arns")), strings(news.arr_of("managed_policy_arns")));
        let attached = attached_policies(ctx, &name).await?;
        for arn in new_arns.iter().filter(|a| !attached.contains(a)) {
            attach_policy(ctx, &name, arn).await?;
        }
        for arn in old_arns.iter().filter(|a| !new_arns.contains(a) && attached.contains(a)) {
            iam(ctx, "DetachRolePolicy", &[("RoleName", name.clone()), ("PolicyArn", arn.clone())]).await?;
        }
        let xml = iam(ctx, "GetRole", &[("RoleName", name)]).await?;
        Ok(role_outputs(&xml))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        delete_role(ctx, id).await
    }
}

/// A policy given as a JSON string becomes the object it encodes, so that it compares equal
/// to what `read` returns.
pub fn normalise_policy(
    inputs: &mut serde_json::Map<String, Value>,
    key: &str,
    failures: &mut Vec<skyform_protocol::CheckFailure>,
) {
    if let Some(Value::String(s)) = inputs.get(key) {
        if s == skyform_protocol::UNKNOWN {
            return;
        }
        match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => {
                inputs.insert(key.to_string(), v);
            }
            _ => failures.push(skyform_protocol::CheckFailure {
                property: key.to_string(),
                reason: format!(
                    "`{key}` must be a JSON policy document (an object, or a string holding one)"
                ),
            }),
        }
    }
}

/// An inline policy of a role.
pub struct RolePolicy;

fn split_id(id: &str) -> Result<(String, String)> {
    id.split_once(':').map(|(r, p)| (r.to_string(), p.to_string())).ok_or_else(|| {
        Error::Provider(skyform_protocol::ProviderError::invalid_inputs(format!(
            "`{id}` is not a role policy id; it looks like `ROLE:POLICY`"
        )))
    })
}

impl Kind for RolePolicy {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:iam:RolePolicy",
            description: "An inline policy embedded in an IAM role. Id: `ROLE:POLICY`.",
            properties: json!({
                "role": {"type": "string", "description": "The name of the role."},
                "name": {"type": "string", "description": "The policy name; generated from the logical name when absent."},
                "policy": {"type": ["object", "string"], "description": "The policy document."},
            }),
            required: &["role", "policy"],
            outputs: &["role", "name"],
            replace_on_changes: &["role", "name"],
            identity: &["role", "name"],
            name: Some(NAME),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &crate::resource::CheckCtx<'_>,
        inputs: &mut serde_json::Map<String, Value>,
        failures: &mut Vec<skyform_protocol::CheckFailure>,
    ) {
        normalise_policy(inputs, "policy", failures);
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let (role, name) =
            (inputs.str_of("role").unwrap_or_default(), inputs.str_of("name").unwrap_or_default());
        put_policy(ctx, role, name, &inputs["policy"]).await?;
        Ok(Created { id: format!("{role}:{name}"), outputs: json!({"role": role, "name": name}) })
    }

    fn find(&self, _ctx: &Ctx, inputs: &Value) -> impl Future<Output = Result<Option<String>>> + Send {
        let id = match (inputs.str_of("role"), inputs.str_of("name")) {
            (Some(r), Some(n)) => Some(format!("{r}:{n}")),
            _ => None,
        };
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (role, name) = split_id(id)?;
        let xml =
            iam(ctx, "GetRolePolicy", &[("RoleName", role.clone()), ("PolicyName", name.clone())]).await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "role", json!(role));
        set(&mut inputs, "name", json!(name));
        set(
            &mut inputs,
            "policy",
            xml::tag(&xml, "PolicyDocument").map(|p| policy_value(&p)).unwrap_or(Value::Null),
        );
        Ok(Some(Found { inputs, outputs: json!({"role": role, "name": name}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let (role, name) = split_id(id)?;
        put_policy(ctx, &role, &name, &news["policy"]).await?;
        Ok(json!({"role": role, "name": name}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (role, name) = split_id(id)?;
        iam(ctx, "DeleteRolePolicy", &[("RoleName", role), ("PolicyName", name)]).await?;
        Ok(())
    }
}

async fn put_policy(ctx: &Ctx, role: &str, name: &str, policy: &Value) -> Result<()> {
    iam(
        ctx,
        "PutRolePolicy",
        &[("RoleName", role.into()), ("PolicyName", name.into()), ("PolicyDocument", policy_string(policy))],
    )
    .await?;
    Ok(())
}

/// `AttachRolePolicy`. An AWS managed policy (`arn:aws:iam::aws:policy/...`) always exists on
/// AWS, but an emulator may not have loaded them (a plain `moto_server` has none): that case
/// gets an error that says what to set instead of a bare `NoSuchEntity`.
async fn attach_policy(ctx: &Ctx, role: &str, arn: &str) -> Result<()> {
    match iam(ctx, "AttachRolePolicy", &[("RoleName", role.to_string()), ("PolicyArn", arn.to_string())])
        .await
    {
        Err(e) if e.is_not_found() && arn.starts_with("arn:aws:iam::aws:policy/") => {
            let at = ctx.aws.settings.endpoint.as_deref().unwrap_or("AWS");
            Err(Error::Provider(skyform_protocol::ProviderError::configuration(format!(
                "the AWS managed policy {arn} does not exist at {at} ({e}): an AWS emulator may not load AWS's \
                 managed policies; start moto with MOTO_IAM_LOAD_MANAGED_POLICIES=true (LocalStack loads them)"
            ))))
        }
        other => other.map(|_| ()),
    }
}
