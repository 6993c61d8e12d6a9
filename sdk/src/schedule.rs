//! The `Schedule` component: invokes a function on a rate or a cron expression, with
//! EventBridge Scheduler's expression syntax on every target.

use serde_json::Value;

use crate::component::{Component, Expansion, component_handle};
use crate::{Error, FunctionHandle, Program, ResourceOptions, Target, aws, local};

/// A schedule, described with a builder and declared with [`Program::add`]:
///
/// ```
/// use skyform_sdk::{Function, Program, Runtime, Schedule, Target};
/// let ctx = Program::new("p", "dev", Target::Local, serde_json::json!({}));
/// let report = ctx.add(Function::new("report").code("functions/report").handler("app.handler").runtime(Runtime::Python3)).unwrap();
/// ctx.add(Schedule::cron("nightly", "0 3 * * ? *", &report).payload(serde_json::json!({"kind": "daily"}))).unwrap();
/// ctx.add(Schedule::rate("tick", "5 minutes", &report)).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    pub(crate) name: String,
    pub(crate) expression: String,
    pub(crate) function: FunctionHandle,
    pub(crate) payload: Value,
    pub(crate) enabled: bool,
    pub(crate) timezone: Option<String>,
    pub(crate) options: ResourceOptions,
}

impl Schedule {
    /// A schedule from a full expression: `rate(5 minutes)`, `cron(0 3 * * ? *)` or
    /// `at(2030-01-01T00:00:00)`.
    pub fn new(
        name: impl Into<String>,
        expression: impl Into<String>,
        function: &FunctionHandle,
    ) -> Schedule {
        Schedule {
            name: name.into(),
            expression: expression.into(),
            function: function.clone(),
            payload: Value::Null,
            enabled: true,
            timezone: None,
            options: ResourceOptions::default(),
        }
    }

    /// Every `rate`: `"1 minute"`, `"5 minutes"`, `"1 hour"`, `"7 days"`.
    pub fn rate(name: impl Into<String>, rate: &str, function: &FunctionHandle) -> Schedule {
        Schedule::new(name, wrap("rate", rate), function)
    }

    /// On a six-field cron expression (minutes hours day-of-month month day-of-week year), in UTC
    /// unless [`Schedule::timezone`] says otherwise: `"0 3 * * ? *"` is every day at 03:00.
    /// Day-of-week counts 1 = SUN to 7 = SAT.
    pub fn cron(name: impl Into<String>, cron: &str, function: &FunctionHandle) -> Schedule {
        Schedule::new(name, wrap("cron", cron), function)
    }

    /// The event the function receives (default: a scheduled-event payload chosen by the target).
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// The IANA time zone in which cron and at expressions are read (default `UTC`), e.g.
    /// `"Europe/Paris"`: `cron(0 9 * * ? *)` then runs at 09:00 Paris time, summer and winter.
    pub fn timezone(mut self, timezone: impl Into<String>) -> Self {
        self.timezone = Some(timezone.into());
        self
    }

    /// Pauses the schedule without deleting it.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Options applied to every resource of the schedule; `parent` nests the component.
    pub fn options(mut self, options: ResourceOptions) -> Self {
        self.options = options;
        self
    }

    /// Only the outer shape is checked here; the provider parses the expression itself and
    /// reports a bad field precisely.
    fn validate(&self) -> Result<(), Error> {
        let e = self.expression.trim();
        let ok =
            ["rate(", "cron(", "at("].iter().any(|p| e.starts_with(p)) && e.ends_with(')') && e.len() > 5;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                &self.name,
                format!(
                    "the schedule expression `{}` is malformed: expected `rate(5 minutes)`, \
                     `cron(0 3 * * ? *)` or `at(2030-01-01T00:00:00)`",
                    self.expression
                ),
            ))
        }
    }
}

/// `rate("5 minutes")` → `rate(5 minutes)`, leaving an already wrapped expression alone.
fn wrap(kind: &str, body: &str) -> String {
    let body = body.trim();
    if body.starts_with(&format!("{kind}(")) { body.to_string() } else { format!("{kind}({body})") }
}

impl Component for Schedule {
    type Handle = ScheduleHandle;

    fn add_to(self, ctx: &Program) -> Result<ScheduleHandle, Error> {
        self.validate()?;
        let expansion = match ctx.target() {
            Target::Local => local::schedule(ctx, &self),
            Target::Aws => aws::schedule(ctx, &self)?,
        };
        Ok(ScheduleHandle { expansion })
    }
}

/// A declared [`Schedule`].
#[derive(Debug, Clone)]
pub struct ScheduleHandle {
    pub(crate) expansion: Expansion,
}
component_handle!(ScheduleHandle);

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_once() {
        assert_eq!(wrap("rate", "5 minutes"), "rate(5 minutes)");
        assert_eq!(wrap("rate", " rate(1 hour) "), "rate(1 hour)");
        assert_eq!(wrap("cron", "0 3 * * ? *"), "cron(0 3 * * ? *)");
    }
}
