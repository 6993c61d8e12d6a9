//! EventBridge Scheduler (REST-JSON): `aws:scheduler:Schedule`. Id: `GROUP/NAME`.

use reqwest::Method;
use serde_json::{Map, Value, json};
use skyform_protocol::{CheckFailure, ProviderError, UNKNOWN};

use crate::http::{Error, Result};
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NAME, Spec, retry_iam_propagation};
use crate::sigv4::uri_encode;
use crate::util::{Inputs, set};

fn path(name: &str) -> String {
    format!("/schedules/{}", uri_encode(name))
}

fn split(id: &str) -> Result<(String, String)> {
    id.split_once('/').map(|(g, n)| (g.to_string(), n.to_string())).ok_or_else(|| {
        Error::Provider(ProviderError::invalid_inputs(format!("`{id}` is not a `GROUP/NAME` schedule id")))
    })
}

/// Why a schedule expression is not one Scheduler accepts, if it is not.
pub fn expression_problem(e: &str) -> Option<String> {
    let inner = |prefix: &str| e.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(r) = inner("rate(") {
        let mut parts = r.split_whitespace();
        let (n, unit) = (parts.next().and_then(|n| n.parse::<u32>().ok()), parts.next());
        let ok = match (n, unit, parts.next()) {
            (Some(1), Some("minute" | "hour" | "day"), None) => true,
            (Some(n), Some("minutes" | "hours" | "days"), None) => n > 1,
            _ => false,
        };
        return (!ok).then(|| {
            format!("`{e}` is not a rate: write `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)`")
        });
    }
    if let Some(r) = inner("cron(") {
        let fields: Vec<&str> = r.split_whitespace().collect();
        if fields.len() != 6 {
            return Some(format!(
                "`{e}` has {} fields; a cron expression has six: minutes hours day-of-month month day-of-week year, \
                 e.g. `cron(0 12 * * ? *)`",
                fields.len()
            ));
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Some(format!("`{e}`: exactly one of day-of-month and day-of-week must be `?`"));
        }
        return None;
    }
    if let Some(r) = inner("at(") {
        let ok = r.len() == 19 && r.as_bytes()[10] == b'T';
        return (!ok).then(|| format!("`{e}` is not a one-time schedule: write `at(2030-01-31T12:00:00)`"));
    }
    Some(format!("`{e}` is not a schedule expression: use `rate(…)`, `cron(…)` or `at(…)`"))
}

fn body(inputs: &Value) -> Value {
    let target = inputs.obj_of("target").cloned().unwrap_or_default();
    let mut t = json!({"Arn": target.get("arn"), "RoleArn": target.get("role_arn")});
    if let Some(i) = target.get("input") {
        set(&mut t, "Input", json!(i.as_str().map(String::from).unwrap_or_else(|| i.to_string())));
    }
    let window = match inputs.i64_of("flexible_time_window_minutes") {
        Some(m) => json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": m}),
        None => json!({"Mode": "OFF"}),
    };
    let mut b = json!({
        "GroupName": inputs["group_name"],
        "ScheduleExpression": inputs["schedule_expression"],
        "State": inputs["state"],
        "Target": t,
        "FlexibleTimeWindow": window,
    });
    set(&mut b, "ScheduleExpressionTimezone", inputs["schedule_expression_timezone"].clone());
    set(&mut b, "Description", inputs["description"].clone());
    b
}

pub struct Schedule;

impl Kind for Schedule {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:scheduler:Schedule",
            description: "An EventBridge Scheduler schedule that invokes a target (a function) on a rate, cron or \
                          one-time expression. Id: `GROUP/NAME`.",
            properties: json!({
                "name": {"type": "string", "description": "The schedule name; generated when absent."},
                "group_name": {"type": "string", "default": "default", "description": "The schedule group."},
                "schedule_expression": {"type": "string", "description": "`rate(5 minutes)`, `cron(0 12 * * ? *)` or `at(2030-01-31T12:00:00)`."},
                "schedule_expression_timezone": {"type": "string", "default": "UTC", "description": "The time zone of cron and at expressions."},
                "target": {"type": "object", "description": "`{arn, role_arn, input}`: what to invoke, the role Scheduler assumes to invoke it, and the event (a string or an object)."},
                "state": {"type": "string", "default": "ENABLED", "description": "`ENABLED` or `DISABLED`."},
                "description": {"type": "string", "description": "A description."},
                "flexible_time_window_minutes": {"type": "integer", "description": "Allow delivery up to this many minutes late (absent: on time)."},
            }),
            required: &["schedule_expression", "target"],
            outputs: &["arn", "name"],
            replace_on_changes: &["name", "group_name"],
            identity: &["name", "group_name"],
            name: Some(NAME),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        if let Some(e) = inputs.get("schedule_expression").and_then(Value::as_str)
            && e != UNKNOWN
            && let Some(problem) = expression_problem(e)
        {
            failures.push(CheckFailure { property: "schedule_expression".into(), reason: problem });
        }
        let unknown_keys =
            crate::resource::unknown_nested_keys(inputs, "target", &["arn", "role_arn", "input"], failures);
        if let Some(t) = inputs.get("target").and_then(Value::as_object) {
            let ok =
                t.get("arn").is_some_and(Value::is_string) && t.get("role_arn").is_some_and(Value::is_string);
            if !ok && !unknown_keys {
                failures.push(CheckFailure {
                    property: "target".into(),
                    reason: "`target` is `{arn = \"…\", role_arn = \"…\", input = …}` (input optional)"
                        .into(),
                });
            }
        }
        if let Some(s) = inputs.get("state").and_then(Value::as_str)
            && !["ENABLED", "DISABLED", UNKNOWN].contains(&s)
        {
            failures.push(CheckFailure {
                property: "state".into(),
                reason: format!("`{s}` is not ENABLED or DISABLED"),
            });
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let (name, group) =
            (inputs.str_of("name").unwrap_or_default(), inputs.str_of("group_name").unwrap_or("default"));
        let what = format!("creating schedule {name}");
        let sched_path = path(name);
        let v = retry_iam_propagation(ctx, &what, || {
            ctx.aws.rest("scheduler", Method::POST, &sched_path, Some(body(inputs)))
        })
        .await?;
        Ok(Created { id: format!("{group}/{name}"), outputs: json!({"arn": v["ScheduleArn"], "name": name}) })
    }

    fn find(
        &self,
        _ctx: &Ctx,
        inputs: &Value,
    ) -> impl std::future::Future<Output = Result<Option<String>>> + Send {
        let id = inputs
            .str_of("name")
            .map(|n| format!("{}/{n}", inputs.str_of("group_name").unwrap_or("default")));
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let (group, name) = split(id)?;
        let s = ctx
            .aws
            .rest_query("scheduler", Method::GET, &path(&name), &[("groupName", &group)], None)
            .await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", json!(name));
        set(&mut inputs, "group_name", json!(group));
        set(&mut inputs, "schedule_expression", s["ScheduleExpression"].clone());
        set(&mut inputs, "schedule_expression_timezone", s["ScheduleExpressionTimezone"].clone());
        set(&mut inputs, "state", s["State"].clone());
        set(&mut inputs, "description", json!(s["Description"].as_str().filter(|d| !d.is_empty())));
        let window = &s["FlexibleTimeWindow"];
        let minutes =
            if window["Mode"] == "FLEXIBLE" { window["MaximumWindowInMinutes"].clone() } else { Value::Null };
        set(&mut inputs, "flexible_time_window_minutes", minutes);
        let t = &s["Target"];
        let mut target = json!({"arn": t["Arn"], "role_arn": t["RoleArn"]});
        if let Some(input) = t["Input"].as_str() {
            // Keep the program's spelling: an object if it gave one.
            let as_object = stored["target"]["input"].is_object();
            let v =
                if as_object { serde_json::from_str(input).unwrap_or(json!(input)) } else { json!(input) };
            set(&mut target, "input", v);
        }
        set(&mut inputs, "target", target);
        Ok(Some(Found { inputs, outputs: json!({"arn": s["Arn"], "name": name}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        let (_, name) = split(id)?;
        let what = format!("updating schedule {name}");
        let sched_path = path(&name);
        let v = retry_iam_propagation(ctx, &what, || {
            ctx.aws.rest("scheduler", Method::PUT, &sched_path, Some(body(news)))
        })
        .await?;
        Ok(json!({"arn": v["ScheduleArn"], "name": name}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        let (group, name) = split(id)?;
        ctx.aws.rest_query("scheduler", Method::DELETE, &path(&name), &[("groupName", &group)], None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::expression_problem;

    #[test]
    fn schedule_expressions() {
        for ok in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "cron(0 12 * * ? *)",
            "cron(0/5 * ? * MON-FRI *)",
            "at(2030-01-31T12:00:00)",
        ] {
            assert_eq!(expression_problem(ok), None, "{ok}");
        }
        for bad in [
            "rate(1 minutes)",
            "rate(0 minutes)",
            "cron(0 12 * * *)",
            "cron(0 12 * * * *)",
            "every day",
            "at(tomorrow)",
        ] {
            assert!(expression_problem(bad).is_some(), "{bad}");
        }
    }
}
