//! Bucket notifications (`local:BucketNotification`): S3 event records delivered to functions,
//! as S3's Lambda notifications do (an asynchronous invocation with `{"Records": [record]}`).
//!
//! - A notification names a bucket, a function, the events (`s3:ObjectCreated:*`,
//!   `s3:ObjectRemoved:*`, or one of them exactly: `s3:ObjectCreated:Put`, `:Copy`,
//!   `:CompleteMultipartUpload`, `s3:ObjectRemoved:Delete`) and optional key `prefix` and
//!   `suffix` filters.
//! - **At least once, across `kill -9`:** before a write is acknowledged, each event it causes
//!   is written to the [outbox](crate::outbox) (`.skyform/local/bucket_events/`, one fsynced
//!   file per event and function). A deliverer invokes the function and removes the file when
//!   the invocation ends; at start it delivers whatever the last run left. A failed invocation
//!   is retried twice (after 1 s and 2 s) as Lambda retries asynchronous invocations, then
//!   dropped with a line in the daemon's log. An event whose function is not deployed waits for
//!   it up to 5 minutes.
//! - Notifications are kept in `.skyform/local/bucket_notifications.json`. Control routes:
//!   `PUT`/`GET`/`DELETE /v1/stacks/{stack}/bucket-notifications/{name}` with a
//!   [`NotificationSpec`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::{FunctionLookup, REGION};
use crate::outbox::{ASYNC_RETRY_DELAYS, Outbox};

/// A notification, as the control API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationSpec {
    pub bucket: String,
    /// The function's name (or ARN).
    pub function: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
}

/// The event names a notification may ask for.
pub const EVENT_NAMES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
];

impl NotificationSpec {
    /// Refuses unknown event names and bucket names S3 would refuse.
    pub fn validate(&self) -> Result<(), String> {
        super::store::valid_bucket_name(&self.bucket)?;
        if self.events.is_empty() {
            return Err("`events` must name at least one event, e.g. s3:ObjectCreated:*".into());
        }
        for e in &self.events {
            if !EVENT_NAMES.contains(&e.as_str()) {
                return Err(format!("unknown event `{e}`; expected one of {}", EVENT_NAMES.join(", ")));
            }
        }
        if self.function.is_empty() {
            return Err("`function` must name a function".into());
        }
        Ok(())
    }

    /// Whether `event` (e.g. `ObjectCreated:Put`) on `key` in `bucket` is for this notification.
    pub fn matches(&self, bucket: &str, event: &str, key: &str) -> bool {
        if bucket != self.bucket {
            return false;
        }
        let family = event.split(':').next().unwrap_or("");
        let wanted = self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            e == event || e.strip_suffix(":*") == Some(family)
        });
        wanted
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }
}

/// An object event, before it becomes records.
pub struct ObjectEvent<'a> {
    pub bucket: &'a str,
    /// `ObjectCreated:Put`, `ObjectCreated:Copy`, `ObjectCreated:CompleteMultipartUpload`,
    /// `ObjectRemoved:Delete`.
    pub name: &'a str,
    pub key: &'a str,
    /// Size and ETag (created events only).
    pub object: Option<(u64, &'a str)>,
    pub request_id: &'a str,
}

/// S3's key encoding in event records: form encoding, `/` kept.
pub fn event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn event_time(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// One S3 event record (eventVersion 2.1).
pub fn record(ev: &ObjectEvent<'_>, configuration_id: &str, sequencer: &str, time_ms: u64) -> Value {
    let mut object = json!({"key": event_key(ev.key), "sequencer": sequencer});
    if let Some((size, etag)) = ev.object {
        object["size"] = json!(size);
        object["eTag"] = json!(etag);
    }
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": event_time(time_ms),
        "eventName": ev.name,
        "userIdentity": {"principalId": "AWS:LOCAL"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": ev.request_id, "x-amz-id-2": ev.request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": ev.bucket,
                "ownerIdentity": {"principalId": "LOCAL"},
                "arn": format!("arn:aws:s3:::{}", ev.bucket),
            },
            "object": object,
        }
    })
}

pub struct Events {
    outbox: Arc<Outbox>,
    config_path: PathBuf,
    functions: Arc<dyn FunctionLookup>,
    specs: Mutex<BTreeMap<(String, String), NotificationSpec>>,
    seq: AtomicU64,
    /// Serialises changes to the notifications and their file.
    change: tokio::sync::Mutex<()>,
}

impl Events {
    pub fn load(root: &Path, functions: Arc<dyn FunctionLookup>) -> std::io::Result<Events> {
        let outbox = Arc::new(Outbox::open(
            root.join("bucket_events"),
            "bucket event",
            "s3 event",
            &ASYNC_RETRY_DELAYS,
        )?);
        let config_path = root.join("bucket_notifications.json");
        let specs: BTreeMap<String, NotificationSpec> = match std::fs::read(&config_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::other(format!("{} is not valid: {e}", config_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let specs = specs
            .into_iter()
            .filter_map(|(k, v)| k.split_once('/').map(|(s, n)| ((s.to_string(), n.to_string()), v)))
            .collect();
        // Sequencers grow across restarts: start from the clock, in nanoseconds.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Events {
            outbox,
            config_path,
            functions,
            specs: Mutex::new(specs),
            seq: AtomicU64::new(start),
            change: tokio::sync::Mutex::new(()),
        })
    }

    fn save(&self) -> std::io::Result<()> {
        let specs = self.specs.lock().unwrap();
        let m: BTreeMap<String, &NotificationSpec> =
            specs.iter().map(|((s, n), v)| (format!("{s}/{n}"), v)).collect();
        crate::registry::write_atomic(
            &self.config_path,
            &serde_json::to_vec_pretty(&m).map_err(std::io::Error::other)?,
        )
    }

    pub async fn put(&self, stack: &str, name: &str, spec: NotificationSpec) -> std::io::Result<()> {
        let _g = self.change.lock().await;
        let old = self.specs.lock().unwrap().insert((stack.into(), name.into()), spec);
        if let Err(e) = self.save() {
            let mut specs = self.specs.lock().unwrap();
            match old {
                Some(o) => specs.insert((stack.into(), name.into()), o),
                None => specs.remove(&(stack.to_string(), name.to_string())),
            };
            return Err(e);
        }
        Ok(())
    }

    pub fn get(&self, stack: &str, name: &str) -> Option<NotificationSpec> {
        self.specs.lock().unwrap().get(&(stack.to_string(), name.to_string())).cloned()
    }

    pub async fn delete(&self, stack: &str, name: &str) -> std::io::Result<bool> {
        let _g = self.change.lock().await;
        let old = self.specs.lock().unwrap().remove(&(stack.to_string(), name.to_string()));
        if old.is_some() {
            self.save()?;
        }
        Ok(old.is_some())
    }

    pub fn list(&self) -> Vec<((String, String), NotificationSpec)> {
        self.specs.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Writes the records `ev` causes to the outbox (fsynced) and wakes the deliverer. Call it
    /// after the write is durable and before it is acknowledged.
    pub fn emit(&self, ev: &ObjectEvent<'_>) -> std::io::Result<()> {
        let targets: Vec<((String, String), NotificationSpec)> = self
            .specs
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.matches(ev.bucket, ev.name, ev.key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let sequencer = format!("{seq:016X}");
        let now = crate::logs::now_ms();
        let deliveries: Vec<(String, Value)> = targets
            .iter()
            .map(|((_, name), spec)| {
                (spec.function.clone(), json!({"Records": [record(ev, name, &sequencer, now)]}))
            })
            .collect();
        self.outbox.write(&deliveries)
    }

    /// Events waiting in the outbox.
    pub fn pending(&self) -> usize {
        self.outbox.pending()
    }

    /// Delivers the outbox, forever (see [`crate::outbox`]).
    pub fn spawn(&self) {
        self.outbox.spawn(self.functions.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> NotificationSpec {
        NotificationSpec {
            bucket: "b1".into(),
            function: "f".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.map(Into::into),
            suffix: suffix.map(Into::into),
        }
    }

    #[test]
    fn filters_and_event_families() {
        let s = spec(&["s3:ObjectCreated:*"], Some("photos/"), Some(".jpg"));
        assert!(s.matches("b1", "ObjectCreated:Put", "photos/a.jpg"));
        assert!(s.matches("b1", "ObjectCreated:CompleteMultipartUpload", "photos/a.jpg"));
        assert!(!s.matches("b1", "ObjectRemoved:Delete", "photos/a.jpg"));
        assert!(!s.matches("b1", "ObjectCreated:Put", "docs/a.jpg"));
        assert!(!s.matches("b1", "ObjectCreated:Put", "photos/a.png"));
        assert!(!s.matches("b2", "ObjectCreated:Put", "photos/a.jpg"));
        let s = spec(&["s3:ObjectCreated:Copy"], None, None);
        assert!(s.matches("b1", "ObjectCreated:Copy", "x"));
        assert!(!s.matches("b1", "ObjectCreated:Put", "x"));
        assert!(spec(&["s3:Nope"], None, None).validate().is_err());
    }

    #[test]
    fn keys_are_form_encoded_like_s3() {
        assert_eq!(event_key("photos/my file (1).jpg"), "photos/my+file+%281%29.jpg");
        assert_eq!(event_key("ü"), "%C3%BC");
    }
}
