//! The provider driven in-process through the [`Provider`] trait.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use skyform_protocol::*;

use crate::{COMMAND, CoreProvider, DATA};

/// A fresh, empty folder under the system temp folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("skyform-core-{tag}-{}", crate::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check_req(type_: &str, inputs: Value) -> CheckRequest {
    CheckRequest { type_: type_.into(), name: "r".into(), inputs, olds: None }
}

fn create_req(type_: &str, inputs: Value) -> CreateRequest {
    CreateRequest { type_: type_.into(), name: "r".into(), inputs }
}

fn update_req(type_: &str, id: &str, olds: Value, news: Value, old_outputs: Value) -> UpdateRequest {
    UpdateRequest { type_: type_.into(), name: "r".into(), id: id.into(), olds, news, old_outputs }
}

fn delete_req(type_: &str, id: &str, inputs: Value, outputs: Value) -> DeleteRequest {
    DeleteRequest { type_: type_.into(), name: "r".into(), id: id.into(), inputs, outputs }
}

#[test]
fn schemas_describe_both_types() {
    let p = CoreProvider::default();
    let schemas = p.schemas();
    assert_eq!(schemas.keys().collect::<Vec<_>>(), vec![COMMAND, DATA]);
    assert_eq!(schemas[DATA].replace_on_changes, vec!["triggers"]);
    assert_eq!(schemas[COMMAND].replace_on_changes, vec!["create", "dir", "triggers"]);
    assert_eq!(schemas[COMMAND].inputs["required"], json!(["create"]));
    assert_eq!(p.name(), "core");
}

#[tokio::test]
async fn configure_rejects_settings() {
    let p = CoreProvider::default();
    let req = |config: Value| ConfigureRequest {
        project: "p".into(),
        stack: "dev".into(),
        project_dir: "/tmp".into(),
        config: config.as_object().unwrap().clone(),
        dry_run: false,
    };
    assert!(p.configure(req(json!({}))).await.is_ok());
    let err = p.configure(req(json!({"region": "x"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Configuration);
    assert!(err.message.contains("`region`"), "{}", err.message);
}

#[tokio::test]
async fn data_lifecycle() {
    let p = CoreProvider::default();
    let checked = p.check(check_req(DATA, json!({"value": {"a": 1}, "triggers": [1]}))).await.unwrap();
    assert!(checked.failures.is_empty());

    let created = p.create(create_req(DATA, checked.inputs.clone())).await.unwrap();
    assert_eq!(created.outputs, json!({"value": {"a": 1}}));
    assert_eq!(created.id.len(), 16);
    let other = p.create(create_req(DATA, checked.inputs.clone())).await.unwrap();
    assert_ne!(created.id, other.id);

    // A value change is an update in place; a trigger change is a replacement (decided by the
    // default diff from the schema's replace_on_changes, so `diff` returns None here).
    let diff = DiffRequest {
        type_: DATA.into(),
        name: "r".into(),
        id: created.id.clone(),
        olds: checked.inputs.clone(),
        news: json!({"value": 2, "triggers": [1]}),
        old_outputs: created.outputs.clone(),
    };
    assert_eq!(p.diff(diff).await.unwrap(), None);
    let d = default_diff(
        &checked.inputs,
        &json!({"value": 2, "triggers": [2]}),
        &p.schemas()[DATA].replace_on_changes,
    );
    assert_eq!(
        (d.changed, d.replaces),
        (vec!["triggers".to_string(), "value".to_string()], vec!["triggers".to_string()])
    );

    let updated = p
        .update(update_req(
            DATA,
            &created.id,
            checked.inputs.clone(),
            json!({"value": 2}),
            created.outputs.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(updated.outputs, json!({"value": 2}));

    let read = p
        .read(ReadRequest {
            type_: DATA.into(),
            name: "r".into(),
            id: Some(created.id.clone()),
            inputs: json!({"value": 2}),
            outputs: updated.outputs.clone(),
        })
        .await
        .unwrap();
    let resource = read.resource.unwrap();
    assert_eq!(
        (resource.id, resource.inputs, resource.outputs),
        (created.id.clone(), json!({"value": 2}), json!({"value": 2}))
    );

    let interrupted = p
        .read(ReadRequest {
            type_: DATA.into(),
            name: "r".into(),
            id: None,
            inputs: json!({"value": 2}),
            outputs: Value::Null,
        })
        .await
        .unwrap();
    assert_eq!(interrupted.resource, None);

    p.delete(delete_req(DATA, &created.id, json!({"value": 2}), updated.outputs)).await.unwrap();
}

#[tokio::test]
async fn data_check_rejects_unknown_properties() {
    let p = CoreProvider::default();
    let r = p.check(check_req(DATA, json!({"vaule": 1}))).await.unwrap();
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].property, "vaule");
    let r = p.check(check_req(DATA, json!(3))).await.unwrap();
    assert_eq!(r.failures.len(), 1);
    let r = p.check(check_req(DATA, Value::Null)).await.unwrap();
    assert_eq!((r.inputs, r.failures), (json!({}), vec![]));
}

#[tokio::test]
async fn command_check_requires_create() {
    let p = CoreProvider::default();
    for inputs in [json!({}), json!({"create": ""}), json!({"create": "  "}), json!({"create": 3})] {
        let r = p.check(check_req(COMMAND, inputs.clone())).await.unwrap();
        assert_eq!(
            r.failures.iter().map(|f| f.property.as_str()).collect::<Vec<_>>(),
            vec!["create"],
            "{inputs}"
        );
    }
    let r =
        p.check(check_req(COMMAND, json!({"create": UNKNOWN, "environment": {"A": UNKNOWN}}))).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let r = p
        .check(check_req(COMMAND, json!({"create": "true", "environment": {"A": 1}, "dir": 2})))
        .await
        .unwrap();
    let mut props: Vec<_> = r.failures.iter().map(|f| f.property.as_str()).collect();
    props.sort();
    assert_eq!(props, vec!["dir", "environment"]);
}

#[tokio::test]
async fn command_runs_create_update_delete_in_dir_with_environment() {
    let project = TempDir::new("cmd");
    std::fs::create_dir(project.path().join("sub")).unwrap();
    let p = CoreProvider::with_project_dir(project.path());
    let inputs = json!({
        "create": "echo \"$GREETING from $(basename \"$PWD\")\"; echo warn >&2; echo created > made.txt",
        "update": "echo \"updated after: $SKYFORM_COMMAND_STDOUT\"",
        "delete": "echo \"$SKYFORM_COMMAND_STDOUT\" > ../deleted.txt",
        "dir": "sub",
        "environment": {"GREETING": "hello"}
    });
    assert!(p.check(check_req(COMMAND, inputs.clone())).await.unwrap().failures.is_empty());

    let created = p.create(create_req(COMMAND, inputs.clone())).await.unwrap();
    assert_eq!(created.outputs, json!({"stdout": "hello from sub", "stderr": "warn", "exit_code": 0}));
    assert_eq!(std::fs::read_to_string(project.path().join("sub/made.txt")).unwrap(), "created\n");

    let mut news = inputs.clone();
    news["environment"]["GREETING"] = json!("bonjour");
    let updated = p
        .update(update_req(COMMAND, &created.id, inputs.clone(), news.clone(), created.outputs.clone()))
        .await
        .unwrap();
    assert_eq!(updated.outputs["stdout"], json!("updated after: hello from sub"));

    p.delete(delete_req(COMMAND, &created.id, news, updated.outputs.clone())).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(project.path().join("deleted.txt")).unwrap(),
        "updated after: hello from sub\n"
    );
}

#[tokio::test]
async fn command_update_without_update_reruns_create_and_delete_change_runs_nothing() {
    let project = TempDir::new("rerun");
    let p = CoreProvider::with_project_dir(project.path());
    let olds = json!({"create": "echo run >> log.txt; echo $N", "environment": {"N": "1"}});
    let created = p.create(create_req(COMMAND, olds.clone())).await.unwrap();
    assert_eq!(created.outputs["stdout"], json!("1"));

    let news = json!({"create": "echo run >> log.txt; echo $N", "environment": {"N": "2"}});
    let updated =
        p.update(update_req(COMMAND, &created.id, olds, news.clone(), created.outputs)).await.unwrap();
    assert_eq!(updated.outputs["stdout"], json!("2"));

    let mut with_delete = news.clone();
    with_delete["delete"] = json!("echo gone >> log.txt");
    let same =
        p.update(update_req(COMMAND, &created.id, news, with_delete, updated.outputs.clone())).await.unwrap();
    assert_eq!(same.outputs, updated.outputs);
    assert_eq!(std::fs::read_to_string(project.path().join("log.txt")).unwrap(), "run\nrun\n");

    // No delete command: deleting runs nothing.
    p.delete(delete_req(COMMAND, &created.id, json!({"create": "true"}), same.outputs)).await.unwrap();
}

#[tokio::test]
async fn command_failure_names_command_code_and_stderr_tail() {
    let project = TempDir::new("fail");
    let p = CoreProvider::with_project_dir(project.path());
    let err = p
        .create(create_req(
            COMMAND,
            json!({"create": "for i in $(seq 1 30); do echo line$i >&2; done; exit 7"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Failed);
    assert!(err.message.contains("the create command `for i in"), "{}", err.message);
    assert!(err.message.contains("exited with code 7"), "{}", err.message);
    assert!(err.message.contains("line11\n") && err.message.ends_with("line30"), "{}", err.message);
    assert!(!err.message.contains("line10\n"), "{}", err.message);

    let err = p.create(create_req(COMMAND, json!({"create": "true", "dir": "missing"}))).await.unwrap_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);

    let err = p
        .delete(delete_req(COMMAND, "x", json!({"create": "true", "delete": "exit 2"}), json!({})))
        .await
        .unwrap_err();
    assert!(err.message.contains("the delete command `exit 2` exited with code 2"), "{}", err.message);
}

#[tokio::test]
async fn command_needs_configure() {
    let p = CoreProvider::default();
    let err = p.create(create_req(COMMAND, json!({"create": "true"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Configuration);
}
