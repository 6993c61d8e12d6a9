//! The state format's fixtures, documentation and schema stay loadable and in step.

use std::path::Path;

use skyform::state::{STATE_FORMAT, parse_state};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn there_is_a_fixture_for_every_format_version_and_each_loads() {
    for version in 1..=STATE_FORMAT {
        let path = root().join(format!("state/fixtures/v{version}.json"));
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()));
        let snap = parse_state(&bytes, "fixture").unwrap();
        snap.validate().unwrap();
        assert_eq!(snap.resources.len(), 3);
        assert_eq!(snap.pending_operations.len(), 1);
        if version == STATE_FORMAT {
            // The current format's fixture is canonical: loading and writing it changes nothing.
            assert_eq!(String::from_utf8(snap.to_bytes()).unwrap(), String::from_utf8(bytes).unwrap());
        }
    }
}

#[test]
fn the_schema_names_every_field_the_engine_writes() {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("state/state.schema.json")).unwrap()).unwrap();
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join(format!("state/fixtures/v{STATE_FORMAT}.json"))).unwrap(),
    )
    .unwrap();
    let top: Vec<&String> = fixture.as_object().unwrap().keys().collect();
    for k in top {
        assert!(schema["properties"].get(k).is_some(), "state.schema.json lacks top-level `{k}`");
    }
    for r in fixture["resources"].as_array().unwrap() {
        for k in r.as_object().unwrap().keys() {
            assert!(
                schema["$defs"]["resource"]["properties"].get(k).is_some(),
                "schema lacks resource `{k}`"
            );
        }
        if let Some(o) = r.get("options") {
            for k in o.as_object().unwrap().keys() {
                assert!(
                    schema["$defs"]["options"]["properties"].get(k).is_some(),
                    "schema lacks option `{k}`"
                );
            }
        }
    }
    assert_eq!(schema["properties"]["format"]["const"], STATE_FORMAT);
    let doc = std::fs::read_to_string(root().join("state/README.md")).unwrap();
    assert!(doc.contains(&format!("format {STATE_FORMAT}")), "state/README.md documents the current format");
}

#[test]
fn an_unknown_field_or_newer_format_is_refused() {
    let newer = br#"{"format": 2, "lineage": "x", "serial": 1, "project": "p", "stack": "s"}"#;
    let err = parse_state(newer, "f").unwrap_err();
    assert!(err.message.contains("newer skyform"), "{}", err.message);
    let extra = br#"{"format": 1, "lineage": "x", "serial": 1, "project": "p", "stack": "s", "surprise": 1}"#;
    assert!(parse_state(extra, "f").unwrap_err().message.contains("corrupt"));
}
