//! `core:Command`: local shell commands run on create, update and delete.
//!
//! Commands run with `sh -c` in `dir` (relative to the project folder), with the provider's own
//! environment plus `environment`. On update and delete, the previous run's output is passed in
//! `SKYFORM_COMMAND_STDOUT` and `SKYFORM_COMMAND_STDERR`, so that a delete command can undo what
//! its create printed (a container id, a temporary path).
//!
//! What forces a replacement is chosen so that the commands that ran describe the resource:
//! a new `create` command or `dir` means a different thing was created, so the old one is deleted
//! (its `delete` command runs) and the new one created; `triggers` exists only to force that.
//! A change of `environment` or `update` reruns `update` (or `create` when there is no `update`)
//! in place; a change of only `delete` runs nothing and just records the new command. A command
//! resource has no identity apart from what its commands touch, so replacements are
//! delete-before-replace: running the new `create` before the old `delete` would have the delete
//! undo the create's work.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Map, Value, json};
use skyform_protocol::{
    CheckFailure, CreateResponse, DeleteResponse, DiffResponse, ProviderError, ResourceSchema, UNKNOWN,
    UpdateResponse, default_diff,
};

use crate::{Result, failure};

/// Input properties whose change forces a replacement.
const REPLACE_ON_CHANGES: [&str; 3] = ["create", "dir", "triggers"];

/// How many lines of stderr a failure message quotes.
const STDERR_TAIL: usize = 20;

pub fn schema() -> ResourceSchema {
    ResourceSchema {
        description: "Runs local shell commands (`sh -c`), like pulumi-command's local.Command. \
                      `create` runs on create; `update` (or `create` when absent) runs on an \
                      in-place update; `delete` runs on delete. Commands run in `dir`, relative to \
                      the project folder, with `environment` added to the environment; update and \
                      delete get the previous output in SKYFORM_COMMAND_STDOUT and \
                      SKYFORM_COMMAND_STDERR. A change of `create`, `dir` or `triggers` replaces \
                      the resource, deleting the old one first; a change of `environment` or \
                      `update` updates it in place; a change of only `delete` runs nothing. A \
                      non-zero exit fails the step. Outputs: `stdout` and `stderr` (trailing \
                      whitespace trimmed) and `exit_code`."
            .to_string(),
        inputs: json!({
            "type": "object",
            "properties": {
                "create": { "type": "string", "minLength": 1, "description": "The command run on create." },
                "update": { "type": "string", "description": "The command run on an in-place update; `create` runs again when absent." },
                "delete": { "type": "string", "description": "The command run on delete; nothing runs when absent." },
                "dir": { "type": "string", "description": "The working directory, relative to the project folder (default: the project folder)." },
                "environment": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "Environment variables added to the provider's environment."
                },
                "triggers": { "description": "Any JSON value; a change replaces the resource." }
            },
            "required": ["create"],
            "additionalProperties": false
        }),
        outputs: vec!["stdout".to_string(), "stderr".to_string(), "exit_code".to_string()],
        replace_on_changes: REPLACE_ON_CHANGES.iter().map(|s| s.to_string()).collect(),
        stable_outputs: Vec::new(),
    }
}

pub fn check(inputs: &Map<String, Value>) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    match inputs.get("create") {
        Some(Value::String(s)) if s == UNKNOWN || !s.trim().is_empty() => {}
        Some(Value::String(_)) => failures.push(failure("create", "`create` must be a non-empty command")),
        None | Some(Value::Null) => {
            failures.push(failure("create", "`create` is required: the command to run on create"))
        }
        Some(other) => failures.push(failure("create", format!("`create` must be a string, not {other}"))),
    }
    for key in ["update", "delete", "dir"] {
        match inputs.get(key) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(other) => failures.push(failure(key, format!("`{key}` must be a string, not {other}"))),
        }
    }
    match inputs.get("environment") {
        None | Some(Value::Null) => {}
        Some(Value::Object(vars)) => {
            for (name, value) in vars {
                if !value.is_string() {
                    failures.push(failure(
                        "environment",
                        format!("environment variable `{name}` must be a string, not {value}"),
                    ));
                }
            }
        }
        Some(Value::String(s)) if s == UNKNOWN => {}
        Some(other) => failures
            .push(failure("environment", format!("`environment` must be an object of strings, not {other}"))),
    }
    failures
}

pub fn diff(olds: &Value, news: &Value) -> DiffResponse {
    let replace_on: Vec<String> = REPLACE_ON_CHANGES.iter().map(|s| s.to_string()).collect();
    let mut d = default_diff(olds, news, &replace_on);
    d.delete_before_replace = !d.replaces.is_empty();
    d
}

pub async fn create(project_dir: &Path, inputs: &Value) -> Result<CreateResponse> {
    let cmd = str_input(inputs, "create")
        .ok_or_else(|| ProviderError::invalid_inputs("`create` is required: the command to run on create"))?;
    let outputs = run(project_dir, inputs, "create", cmd, &Value::Null).await?;
    Ok(CreateResponse { id: crate::new_id(), outputs })
}

pub async fn update(
    project_dir: &Path,
    olds: &Value,
    news: &Value,
    old_outputs: &Value,
) -> Result<UpdateResponse> {
    let changed = default_diff(olds, news, &[]).changed;
    if !changed.is_empty() && changed.iter().all(|k| k == "delete") {
        // Only the delete command changed: there is nothing to run now, the new command is
        // recorded for when the resource is deleted.
        return Ok(UpdateResponse { outputs: old_outputs.clone() });
    }
    let (which, cmd) = match str_input(news, "update") {
        Some(cmd) => ("update", cmd),
        None => ("create", str_input(news, "create").unwrap_or_default()),
    };
    let outputs = run(project_dir, news, which, cmd, old_outputs).await?;
    Ok(UpdateResponse { outputs })
}

pub async fn delete(project_dir: &Path, inputs: &Value, outputs: &Value) -> Result<DeleteResponse> {
    if let Some(cmd) = str_input(inputs, "delete") {
        run(project_dir, inputs, "delete", cmd, outputs).await?;
    }
    Ok(DeleteResponse {})
}

fn str_input<'a>(inputs: &'a Value, key: &str) -> Option<&'a str> {
    inputs.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// Runs one command and returns the outputs, or a `Failed` error that quotes the end of stderr.
async fn run(project_dir: &Path, inputs: &Value, which: &str, cmd: &str, previous: &Value) -> Result<Value> {
    let dir: PathBuf = match str_input(inputs, "dir") {
        Some(d) => project_dir.join(d),
        None => project_dir.to_path_buf(),
    };
    if !dir.is_dir() {
        return Err(ProviderError::failed(format!(
            "cannot run the {which} command `{}`: its directory {} does not exist; fix `dir` (it is \
             relative to the project folder)",
            shorten(cmd),
            dir.display()
        )));
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If the engine gives up on this request (the provider is stopped), so does the command.
        .kill_on_drop(true);
    if let Some(vars) = inputs.get("environment").and_then(Value::as_object) {
        for (name, value) in vars {
            match value {
                Value::String(s) => command.env(name, s),
                other => command.env(name, other.to_string()),
            };
        }
    }
    for (var, key) in [("SKYFORM_COMMAND_STDOUT", "stdout"), ("SKYFORM_COMMAND_STDERR", "stderr")] {
        if let Some(s) = previous.get(key).and_then(Value::as_str) {
            command.env(var, s);
        }
    }
    let output = command.output().await.map_err(|e| {
        ProviderError::failed(format!("cannot start `sh` to run the {which} command `{}`: {e}", shorten(cmd)))
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim_end().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_string();
    match output.status.code() {
        Some(0) => Ok(json!({ "stdout": stdout, "stderr": stderr, "exit_code": 0 })),
        code => {
            let how = match code {
                Some(n) => format!("exited with code {n}"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!("was killed by signal {}", output.status.signal().unwrap_or(0))
                }
            };
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = &lines[lines.len().saturating_sub(STDERR_TAIL)..];
            let tail = if tail.is_empty() {
                " (it printed nothing on stderr)".to_string()
            } else {
                format!("; the end of its stderr:\n{}", tail.join("\n"))
            };
            Err(ProviderError::failed(format!(
                "the {which} command `{}` {how} (in {}){tail}",
                shorten(cmd),
                dir.display()
            )))
        }
    }
}

/// A command as quoted in a message: its first line, at most 200 characters.
fn shorten(cmd: &str) -> String {
    let first = cmd.trim().lines().next().unwrap_or("");
    let mut s: String = first.chars().take(200).collect();
    if s.len() < cmd.trim().len() {
        s.push_str(" …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_short_commands_and_cuts_long_ones() {
        assert_eq!(shorten("echo hi"), "echo hi");
        assert_eq!(shorten("echo a\necho b"), "echo a …");
        assert_eq!(shorten(&"x".repeat(300)).chars().count(), 202);
    }

    #[test]
    fn diff_replaces_delete_first_on_create_change() {
        let d = diff(&json!({"create": "a", "delete": "x"}), &json!({"create": "b", "delete": "y"}));
        assert_eq!(d.changed, vec!["create", "delete"]);
        assert_eq!(d.replaces, vec!["create"]);
        assert!(d.delete_before_replace);
        let d = diff(
            &json!({"create": "a", "environment": {"A": "1"}}),
            &json!({"create": "a", "environment": {"A": "2"}}),
        );
        assert_eq!(d.changed, vec!["environment"]);
        assert!(d.replaces.is_empty());
        assert!(!d.delete_before_replace);
    }
}
