//! CloudWatch Logs (JSON 1.1 protocol): `aws:logs:LogGroup`.
//!
//! Declaring a function's log group (`/aws/lambda/<function>`) lets skyform own its retention;
//! Lambda would otherwise create it on first invocation with logs kept forever.

use serde_json::{Map, Value, json};
use skyform_protocol::CheckFailure;

use crate::http::{Error, Result};
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NameRule, Spec};
use crate::util::{Inputs, set};

const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

async fn logs(ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    ctx.aws.json("logs", "1.1", &format!("Logs_20140328.{op}"), body).await
}

pub struct LogGroup;

async fn describe(ctx: &Ctx, name: &str) -> Result<Option<Value>> {
    // Every page: in a busy account many groups share the prefix.
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupNamePrefix": name});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let v = logs(ctx, "DescribeLogGroups", body).await?;
        if let Some(g) =
            v["logGroups"].as_array().and_then(|gs| gs.iter().find(|g| g["logGroupName"] == name))
        {
            return Ok(Some(g.clone()));
        }
        match v["nextToken"].as_str() {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

fn outputs(group: &Value) -> Value {
    let arn = group["arn"].as_str().unwrap_or_default();
    json!({"name": group["logGroupName"], "arn": arn.strip_suffix(":*").unwrap_or(arn)})
}

async fn set_retention(ctx: &Ctx, name: &str, days: Option<i64>) -> Result<()> {
    match days {
        Some(d) => {
            logs(ctx, "PutRetentionPolicy", json!({"logGroupName": name, "retentionInDays": d})).await?
        }
        None => logs(ctx, "DeleteRetentionPolicy", json!({"logGroupName": name})).await?,
    };
    Ok(())
}

impl Kind for LogGroup {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:logs:LogGroup",
            description: "A CloudWatch Logs log group. Id: the group name.",
            properties: json!({
                "name": {"type": "string", "description": "The group name (a function's is `/aws/lambda/<function>`); generated when absent."},
                "retention_in_days": {"type": "integer", "description": "Days to keep events (1, 3, 5, 7, 14, 30, 60, 90, …, 3653); absent keeps them forever."},
            }),
            required: &[],
            outputs: &["name", "arn"],
            replace_on_changes: &["name"],
            identity: &["name"],
            name: Some(NameRule { prop: "name", max_len: 512, lowercase: false }),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        if let Some(d) = inputs.get("retention_in_days").and_then(Value::as_i64)
            && !RETENTION_DAYS.contains(&d)
        {
            failures.push(CheckFailure {
                property: "retention_in_days".into(),
                reason: format!(
                    "{d} is not a retention CloudWatch Logs accepts; pick one of {RETENTION_DAYS:?}"
                ),
            });
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default();
        logs(ctx, "CreateLogGroup", json!({"logGroupName": name})).await?;
        if let Some(d) = inputs.i64_of("retention_in_days")
            && let Err(e) = set_retention(ctx, name, Some(d)).await
        {
            let _ = logs(ctx, "DeleteLogGroup", json!({"logGroupName": name})).await;
            return Err(e);
        }
        let group = describe(ctx, name)
            .await?
            .ok_or_else(|| Error::Transport(format!("log group {name} vanished")))?;
        Ok(Created { id: name.to_string(), outputs: outputs(&group) })
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let Some(group) = describe(ctx, id).await? else { return Ok(None) };
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", json!(id));
        set(&mut inputs, "retention_in_days", group["retentionInDays"].clone());
        Ok(Some(Found { inputs, outputs: outputs(&group) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        if olds.get("retention_in_days") != news.get("retention_in_days") {
            set_retention(ctx, id, news.i64_of("retention_in_days")).await?;
        }
        let group = describe(ctx, id).await?.ok_or_else(|| Error::Api {
            status: 404,
            code: "ResourceNotFoundException".into(),
            message: format!("log group {id} does not exist"),
        })?;
        Ok(outputs(&group))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        logs(ctx, "DeleteLogGroup", json!({"logGroupName": id})).await?;
        Ok(())
    }
}
