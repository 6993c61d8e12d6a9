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
    let newer = format!(
        r#"{{"format": {}, "lineage": "x", "serial": 1, "project": "p", "stack": "s"}}"#,
        STATE_FORMAT + 1
    );
    let err = parse_state(newer.as_bytes(), "f").unwrap_err();
    assert!(err.message.contains("newer skyform"), "{}", err.message);
    for version in 1..=STATE_FORMAT {
        let extra = format!(
            r#"{{"format": {version}, "lineage": "x", "serial": 1, "project": "p", "stack": "s", "surprise": 1}}"#
        );
        assert!(parse_state(extra.as_bytes(), "f").unwrap_err().message.contains("corrupt"));
    }
}

#[test]
fn format_1_is_upgraded_and_its_fingerprints_become_legacy_secrets() {
    let bytes = std::fs::read(root().join("state/fixtures/v1.json")).unwrap();
    let snap = parse_state(&bytes, "fixture").unwrap();
    assert_eq!(snap.format, STATE_FORMAT);
    // The fingerprint cannot be turned back into the value: it is kept as a legacy secret, which
    // the engine reports, and which the next update replaces by the value, encrypted.
    assert_eq!(snap.legacy_fingerprints(), 1);
    let api = snap.resources.iter().find(|r| r.name == "api").unwrap();
    let opened = api.inputs.open(&skyform::secrets::Vault::default()).unwrap();
    assert_eq!(opened["token"], serde_json::json!({"$secret": "[secret:0123456789abcdef]"}));
    // Written back, it is format 2, and it holds no plaintext mark.
    let text = String::from_utf8(snap.to_bytes()).unwrap();
    assert!(
        text.contains("\"format\": 2") && text.contains("\"$encrypted\": \"fingerprint:0123456789abcdef\""),
        "{text}"
    );
}

#[test]
fn the_format_2_fixture_opens_with_its_key() {
    // The fixture's data key is the bytes 0..64; its one secret is `tok_fixture`.
    let key: Vec<u8> = (0u8..64).collect();
    let vault = skyform::secrets::Vault::with_crypter(
        Default::default(),
        skyform::secrets::Crypter::new(&key).unwrap(),
    );
    let bytes = std::fs::read(root().join("state/fixtures/v2.json")).unwrap();
    let snap = parse_state(&bytes, "fixture").unwrap();
    let api = snap.resources.iter().find(|r| r.name == "api").unwrap();
    assert_eq!(api.inputs.open(&vault).unwrap()["token"], serde_json::json!({"$secret": "tok_fixture"}));
    // A plaintext mark in a state file is refused, not trusted.
    let text = String::from_utf8(bytes).unwrap().replace(
        "{\n          \"$encrypted\": \"v1:2Bl0adRW+WECmY5bcCL6DmIWOuoVF4SrzJL5XRw=\"\n        }",
        "{\"$secret\": \"tok_fixture\"}",
    );
    let err = parse_state(text.as_bytes(), "edited").unwrap_err();
    assert!(err.message.contains("plaintext"), "{}", err.message);
}
