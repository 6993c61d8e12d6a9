//! The default `diff`: compare inputs property by property.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{DiffResponse, UNKNOWN};

/// Compares the top-level properties of two input objects. A property is changed when its
/// value differs or when the new value contains an unknown; it forces a replacement when it
/// is named in `replace_on_changes`. Most providers need nothing more.
pub fn default_diff(olds: &Value, news: &Value, replace_on_changes: &[String]) -> DiffResponse {
    let empty = serde_json::Map::new();
    let olds = olds.as_object().unwrap_or(&empty);
    let news = news.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = olds.keys().chain(news.keys()).collect();
    let mut changed = Vec::new();
    for key in keys {
        let old = olds.get(key).unwrap_or(&Value::Null);
        let new = news.get(key).unwrap_or(&Value::Null);
        if old != new || has_unknown(new) {
            changed.push(key.clone());
        }
    }
    let replaces = changed.iter().filter(|k| replace_on_changes.iter().any(|r| r == *k)).cloned().collect();
    DiffResponse { changed, replaces, delete_before_replace: false }
}

/// True when the value is, or contains, the [`UNKNOWN`] sentinel.
pub fn has_unknown(value: &Value) -> bool {
    match value {
        Value::String(s) => s == UNKNOWN,
        Value::Array(items) => items.iter().any(has_unknown),
        Value::Object(map) => map.values().any(has_unknown),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_changed_and_replacing_properties() {
        let d = default_diff(
            &json!({"a": 1, "b": "x", "gone": true}),
            &json!({"a": 2, "b": "x", "new": 1}),
            &["a".to_string()],
        );
        assert_eq!(d.changed, vec!["a", "gone", "new"]);
        assert_eq!(d.replaces, vec!["a"]);
    }

    #[test]
    fn unknown_values_count_as_changed() {
        let d = default_diff(&json!({"a": UNKNOWN}), &json!({"a": [UNKNOWN]}), &[]);
        assert_eq!(d.changed, vec!["a"]);
        assert!(default_diff(&json!({"a": 1}), &json!({"a": 1}), &[]).changed.is_empty());
    }
}
