//! `local:Schedule` in the provider: `check` parses the expression (so a bad one fails at
//! preview, with the expected form and an example), the rest calls the daemon's schedule
//! routes. The outputs are `arn` and `name` only: the next firing changes with time, so as an
//! output it would show as drift on every `refresh`; `skyform local status` shows it.

use serde_json::{Value, json};
use skyform_protocol::*;

use super::{LocalProvider, Res, is_unknown};
use crate::http::percent_encode;
use crate::schedule::{ParseError, Schedule};
use crate::schedule_runner::{ScheduleSpec, payload_problem};

pub const SCHEDULE: &str = "local:Schedule";

pub fn schedule_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/schedules/{}", percent_encode(stack), percent_encode(name))
}

pub fn schema() -> ResourceSchema {
    ResourceSchema {
        description: "A schedule (EventBridge Scheduler's rate, cron and at expressions) that invokes a \
                      function of the local cloud"
            .into(),
        inputs: json!({
            "type": "object",
            "required": ["schedule", "function"],
            "properties": {
                "schedule": {"type": "string", "description": "`rate(5 minutes)`, `cron(0 12 * * ? *)` or `at(2030-01-31T12:00:00)`"},
                "function": {"type": "string", "description": "the target function's name"},
                "payload": {"description": "the event; null sends {}"},
                "enabled": {"type": "boolean", "default": true},
                "timezone": {"type": ["string", "null"], "default": "UTC", "description": "IANA time zone of cron and at expressions"}
            }
        }),
        outputs: vec!["arn".into(), "name".into()],
        replace_on_changes: Vec::new(),
        stable_outputs: vec!["arn".into(), "name".into()],
    }
}

/// Validates and fills defaults (`enabled: true`, `timezone: "UTC"`).
pub fn check(inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let mut failures = Vec::new();
    let mut fail =
        |property: &str, reason: String| failures.push(CheckFailure { property: property.into(), reason });
    let obj = inputs.as_object().cloned().unwrap_or_default();
    let get = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    let (expression, function, payload) = (get("schedule"), get("function"), get("payload"));
    let enabled = match get("enabled") {
        Value::Null => json!(true),
        v @ Value::Bool(_) => v,
        v if is_unknown(&v) => v,
        other => {
            fail("enabled", format!("expected true or false, got {other}"));
            other
        }
    };
    let timezone = match get("timezone") {
        Value::Null => json!("UTC"),
        v => v,
    };
    match (&expression, &timezone) {
        (e, _) if is_unknown(e) => {}
        (Value::String(e), Value::String(tz)) if !is_unknown(&timezone) => match Schedule::parse(e, tz) {
            Ok(_) => {}
            Err(ParseError::Expression(err)) => fail("schedule", err.to_string()),
            Err(ParseError::TimeZone(err)) => fail("timezone", err.to_string()),
        },
        (Value::String(e), Value::String(_)) => {
            // The time zone is not known yet: check the expression alone.
            if let Err(ParseError::Expression(err)) = Schedule::parse(e, "UTC") {
                fail("schedule", err.to_string());
            }
        }
        (Value::String(_), other) => fail("timezone", format!("expected an IANA time zone name, got {other}")),
        (Value::Null, _) => fail(
            "schedule",
            "a schedule expression is required: rate(5 minutes), cron(0 12 * * ? *) or at(2030-01-31T12:00:00)"
                .into(),
        ),
        (other, _) => fail("schedule", format!("expected an expression string, got {other}")),
    }
    if !(function.is_string()) {
        fail("function", format!("expected the target function's name, got {function}"));
    }
    if let Some(p) = payload_problem(&payload) {
        fail("payload", p);
    }
    let checked = json!({
        "schedule": expression,
        "function": function,
        "payload": payload,
        "enabled": enabled,
        "timezone": timezone,
    });
    (checked, failures)
}

fn spec(inputs: &Value) -> Res<ScheduleSpec> {
    let s = |k: &str| inputs[k].as_str().map(str::to_string);
    Ok(ScheduleSpec {
        expression: s("schedule")
            .ok_or_else(|| ProviderError::invalid_inputs("`schedule` must be a string"))?,
        timezone: s("timezone").unwrap_or_else(|| "UTC".into()),
        function: s("function")
            .ok_or_else(|| ProviderError::invalid_inputs("`function` must be a string"))?,
        payload: inputs["payload"].clone(),
        enabled: inputs["enabled"].as_bool().unwrap_or(true),
    })
}

fn outputs(view: &Value) -> Value {
    json!({"arn": view["arn"], "name": view["name"]})
}

fn inputs_of(spec: &ScheduleSpec) -> Value {
    json!({
        "schedule": spec.expression,
        "function": spec.function,
        "payload": spec.payload,
        "enabled": spec.enabled,
        "timezone": spec.timezone,
    })
}

impl LocalProvider {
    /// Deploys (creates or updates) a schedule; answers its outputs.
    pub(super) async fn put_schedule(&self, name: &str, inputs: &Value) -> Res<Value> {
        let cfg = self.config()?;
        let body = serde_json::to_vec(&spec(inputs)?).map_err(|e| ProviderError::failed(e.to_string()))?;
        let view =
            self.control_put(&schedule_path(&cfg.stack, name), &body, &format!("schedule `{name}`")).await?;
        Ok(outputs(&view))
    }

    pub(super) async fn read_schedule(&self, name: &str) -> Res<Option<ReadResource>> {
        let cfg = self.config()?;
        let Some(view) = self.control_get(&schedule_path(&cfg.stack, name)).await? else {
            return Ok(None);
        };
        let spec: ScheduleSpec =
            serde_json::from_value(view["spec"].clone()).map_err(|e| ProviderError::failed(e.to_string()))?;
        Ok(Some(ReadResource { id: name.to_string(), inputs: inputs_of(&spec), outputs: outputs(&view) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(inputs: Value) -> Vec<(String, String)> {
        check(&inputs).1.into_iter().map(|f| (f.property, f.reason)).collect()
    }

    #[test]
    fn fills_defaults() {
        let (checked, f) =
            check(&json!({"schedule": "rate(1 hour)", "function": "f", "payload": null, "enabled": null}));
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(checked["enabled"], true);
        assert_eq!(checked["timezone"], "UTC");
    }

    #[test]
    fn bad_inputs_fail_with_the_expected_form() {
        let f = failures(json!({"schedule": "cron(0 12 * * *)", "function": "f"}));
        assert_eq!(
            f,
            [(
                "schedule".to_string(),
                "bad schedule expression \"cron(0 12 * * *)\": cron takes six fields (minutes hours \
                 day-of-month month day-of-week year), e.g. cron(0 12 * * ? *); this has 5"
                    .to_string()
            )]
        );
        let f = failures(json!({"schedule": "rate(1 hour)", "function": "f", "timezone": "Nowhere/City"}));
        assert_eq!(f[0].0, "timezone");
        let f = failures(json!({"schedule": "rate(1 hour)", "function": "f", "payload": "hi"}));
        assert_eq!(f[0].0, "payload");
        let f = failures(json!({"function": "f"}));
        assert_eq!(f[0].0, "schedule");
        let f = failures(json!({"schedule": "rate(1 hour)", "function": 3, "enabled": "yes"}));
        assert_eq!(f.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["enabled", "function"]);
    }

    #[test]
    fn unknown_values_wait_for_apply() {
        let f = failures(json!({"schedule": UNKNOWN, "function": "f", "timezone": UNKNOWN}));
        assert!(f.is_empty(), "{f:?}");
        let f = failures(json!({"schedule": "rate(2 minute)", "function": "f", "timezone": UNKNOWN}));
        assert_eq!(f[0].0, "schedule");
    }
}
