//! Topics: the local cloud's SNS. This module is the model — topics and subscriptions kept
//! durably, filter policies, and what a published message becomes for each subscriber (the SNS
//! JSON envelope for a queue, the SNS event for a function). The wire protocol lives in
//! [`crate::aws::sns`]; delivery to queues and functions goes through the endpoint's shared
//! state, so this module does no network IO and is tested on its own.
//!
//! Topics and subscriptions change rarely and are read on every Publish, so they live in memory
//! behind an `RwLock` and are written whole to `.skyform/local/topics.json` (atomically, like
//! the registry) on every change: a restarted or `kill -9`ed daemon comes back with every topic
//! and subscription, including those made with `aws sns create-topic`/`subscribe`.
//!
//! **Architecture Invariant:** a subscription's filter policy is parsed when it is set, so a
//! stored policy always parses and Publish never fails on one.

pub mod control;
pub mod filter;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::RwLock;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

pub use filter::{FilterPolicy, Scope};

pub const TOPICS_VERSION: u32 = 1;

/// The largest message SNS takes: 256 KiB, body and attributes together.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// SNS takes at most 10 message attributes per message.
pub const MAX_ATTRIBUTES: usize = 10;
/// FIFO topics drop a message whose deduplication id was seen in the last 5 minutes.
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;

/// One message attribute as SNS takes it (`DataType` `String`, `Number`, `Binary`,
/// `String.Array`, optionally with a custom `.suffix`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttribute {
    /// The envelope's `{"Type", "Value"}`: binary values are base64.
    fn envelope_value(&self) -> Value {
        let value = match (&self.string_value, &self.binary_value) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b),
            (None, None) => String::new(),
        };
        json!({"Type": self.data_type, "Value": value})
    }

    fn size(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }
}

pub type Attributes = BTreeMap<String, MessageAttribute>;

/// Checks attributes as SNS does at Publish; the error is the text of an `InvalidParameter`.
pub fn validate_attributes(attrs: &Attributes) -> Result<(), String> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "Invalid parameter: MessageAttributes: a message can have at most {MAX_ATTRIBUTES} attributes, got {}",
            attrs.len()
        ));
    }
    for (name, a) in attrs {
        let bad = |why: String| Err(format!("Invalid parameter: MessageAttributes: {why}"));
        if name.is_empty() || name.len() > 256 {
            return bad(format!("attribute name `{name}` must be 1 to 256 characters"));
        }
        if name.starts_with("AWS.") || name.starts_with("Amazon.") {
            return bad(format!("attribute name `{name}` uses a reserved prefix (AWS. or Amazon.)"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
        {
            return bad(format!(
                "attribute name `{name}` may contain only letters, digits, `_`, `-` and single inner `.`"
            ));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        match (base, a.data_type.as_str()) {
            (_, "String.Array") => {
                let v = a.string_value.as_deref().unwrap_or("");
                match serde_json::from_str::<Value>(v) {
                    Ok(Value::Array(items)) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {}
                    _ => {
                        return Err(format!(
                            "Invalid parameter: Message attribute '{name}' with type 'String.Array' \
                             has an invalid value: it must be a JSON array of strings, numbers, \
                             booleans or nulls"
                        ));
                    }
                }
            }
            ("String", _) => {
                if a.string_value.is_none() {
                    return Err(format!(
                        "Invalid parameter: The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'String'."
                    ));
                }
            }
            ("Number", _) => {
                let ok = a.string_value.as_deref().and_then(|s| s.trim().parse::<f64>().ok()).is_some();
                if !ok {
                    return Err(format!(
                        "Invalid parameter: Could not cast message attribute '{name}' value to number."
                    ));
                }
            }
            ("Binary", _) => {
                if a.binary_value.is_none() {
                    return Err(format!(
                        "Invalid parameter: The message attribute '{name}' with type 'Binary' must contain a BinaryValue."
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "Invalid parameter: The message attribute '{name}' has an invalid message attribute type, \
                     the set of supported type prefixes is Binary, Number, and String."
                ));
            }
        }
    }
    Ok(())
}

/// A message as published: what the envelopes and events are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    pub attributes: Attributes,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// FIFO topics number their messages.
    pub sequence_number: Option<String>,
}

impl Message {
    /// Bytes counted against SNS's 256 KiB limit.
    pub fn size(&self) -> usize {
        self.message.len() + self.attributes.iter().map(|(n, a)| a.size(n)).sum::<usize>()
    }

    fn timestamp(&self) -> String {
        iso_millis(self.timestamp_ms)
    }
}

/// `2026-11-30T12:00:00.123Z`, SNS's timestamp format.
pub fn iso_millis(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = crate::pool::civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ms % 1000)
}

/// Where envelopes point for the signing certificate and unsubscribing (the local endpoint).
#[derive(Debug, Clone)]
pub struct Urls {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub endpoint: String,
}

impl Urls {
    fn cert(&self) -> String {
        format!("{}/SimpleNotificationService-local.pem", self.endpoint)
    }

    fn unsubscribe(&self, subscription_arn: &str) -> String {
        format!("{}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}", self.endpoint)
    }
}

/// The envelope's `Signature`: base64 of the SHA-256 of SNS's string to sign. It is not an RSA
/// signature (the local cloud holds no AWS key), so code that verifies signatures must skip
/// that step locally; it does let a test see the fields were not altered.
fn signature(m: &Message) -> String {
    let mut s = String::new();
    let mut field = |k: &str, v: &str| {
        s.push_str(k);
        s.push('\n');
        s.push_str(v);
        s.push('\n');
    };
    field("Message", &m.message);
    field("MessageId", &m.message_id);
    if let Some(subject) = &m.subject {
        field("Subject", subject);
    }
    field("Timestamp", &m.timestamp());
    field("TopicArn", &m.topic_arn);
    field("Type", "Notification");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
}

fn attributes_json(attrs: &Attributes) -> Value {
    Value::Object(attrs.iter().map(|(k, a)| (k.clone(), a.envelope_value())).collect())
}

/// The SNS JSON envelope a subscribed queue receives as its message body (no raw delivery).
/// Fields in SNS's order.
pub fn sqs_envelope(m: &Message, subscription_arn: &str, urls: &Urls) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Envelope<'a> {
        r#type: &'static str,
        message_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sequence_number: Option<&'a str>,
        topic_arn: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<&'a str>,
        message: &'a str,
        timestamp: String,
        signature_version: &'static str,
        signature: String,
        #[serde(rename = "SigningCertURL")]
        signing_cert_url: String,
        #[serde(rename = "UnsubscribeURL")]
        unsubscribe_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_attributes: Option<Value>,
    }
    let e = Envelope {
        r#type: "Notification",
        message_id: &m.message_id,
        sequence_number: m.sequence_number.as_deref(),
        topic_arn: &m.topic_arn,
        subject: m.subject.as_deref(),
        message: &m.message,
        timestamp: m.timestamp(),
        signature_version: "1",
        signature: signature(m),
        signing_cert_url: urls.cert(),
        unsubscribe_url: urls.unsubscribe(subscription_arn),
        message_attributes: (!m.attributes.is_empty()).then(|| attributes_json(&m.attributes)),
    };
    serde_json::to_string(&e).expect("an envelope serializes")
}

/// The event a subscribed function is invoked with: Lambda's SNS event, one record.
pub fn lambda_event(m: &Message, subscription_arn: &str, urls: &Urls) -> Value {
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription_arn,
            "Sns": {
                "Type": "Notification",
                "MessageId": m.message_id,
                "TopicArn": m.topic_arn,
                "Subject": m.subject,
                "Message": m.message,
                "Timestamp": m.timestamp(),
                "SignatureVersion": "1",
                "Signature": signature(m),
                "SigningCertUrl": urls.cert(),
                "UnsubscribeUrl": urls.unsubscribe(subscription_arn),
                "MessageAttributes": attributes_json(&m.attributes),
            }
        }]
    })
}

/// A subscriber kind the local cloud delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Sqs,
    Lambda,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "sqs" => Ok(Protocol::Sqs),
            "lambda" => Ok(Protocol::Lambda),
            "http" | "https" | "email" | "email-json" | "sms" | "application" | "firehose" => Err(format!(
                "Invalid parameter: Protocol: `{s}` subscriptions are not served by the local cloud; use sqs or lambda"
            )),
            other => {
                Err(format!("Invalid parameter: Protocol: unknown protocol `{other}`; use sqs or lambda"))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sqs => "sqs",
            Protocol::Lambda => "lambda",
        }
    }
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub arn: String,
    pub protocol: Protocol,
    /// A queue ARN (`sqs`) or a function ARN (`lambda`).
    pub endpoint: String,
    #[serde(default)]
    pub raw_message_delivery: bool,
    /// The policy's JSON text as given, parsed into `policy` at load.
    #[serde(default)]
    pub filter_policy: Option<String>,
    #[serde(default)]
    pub filter_policy_scope: Option<String>,
    /// `STACK/NAME` of the `local:TopicSubscription` that made it; `None` when made with the
    /// `Subscribe` API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub arn: String,
    #[serde(default)]
    pub fifo: bool,
    #[serde(default)]
    pub content_based_deduplication: bool,
    #[serde(default)]
    pub display_name: String,
    /// By subscription ARN.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, SubscriptionRecord>,
    /// The stack whose `local:Topic` made it; `None` when made with the `CreateTopic` API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TopicsFile {
    version: u32,
    /// By topic name.
    topics: BTreeMap<String, TopicRecord>,
}

/// A subscription ready to deliver: its record and its parsed policy.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub record: SubscriptionRecord,
    pub policy: Option<(FilterPolicy, Scope)>,
}

impl Subscriber {
    fn new(record: SubscriptionRecord) -> Result<Subscriber, String> {
        let policy = parse_policy(record.filter_policy.as_deref(), record.filter_policy_scope.as_deref())?;
        Ok(Subscriber { record, policy })
    }

    /// Does `m` pass this subscription's filter policy (no policy passes everything)?
    pub fn accepts(&self, m: &Message) -> bool {
        match &self.policy {
            None => true,
            Some((p, Scope::MessageAttributes)) => p.matches_attributes(&m.attributes),
            Some((p, Scope::MessageBody)) => p.matches_body(&m.message),
        }
    }
}

fn parse_policy(text: Option<&str>, scope: Option<&str>) -> Result<Option<(FilterPolicy, Scope)>, String> {
    let scope = match scope {
        None | Some("") => Scope::default(),
        Some(s) => Scope::parse(s)?,
    };
    match text {
        None => Ok(None),
        // SNS clears a policy set to "" or "{}".
        Some(t) if t.trim().is_empty() || t.trim() == "{}" => Ok(None),
        Some(t) => Ok(Some((FilterPolicy::parse(t, scope)?, scope))),
    }
}

/// Errors of topic operations, named like SNS's error codes.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicError {
    NotFound(String),
    InvalidParameter(String),
    /// Another stack's resource holds the name.
    Conflict(String),
    /// The store could not be written; nothing changed.
    Internal(String),
}

impl TopicError {
    pub fn code(&self) -> &'static str {
        match self {
            TopicError::NotFound(_) => "NotFound",
            TopicError::InvalidParameter(_) => "InvalidParameter",
            TopicError::Conflict(_) => "InvalidParameter",
            TopicError::Internal(_) => "InternalError",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TopicError::NotFound(m)
            | TopicError::InvalidParameter(m)
            | TopicError::Conflict(m)
            | TopicError::Internal(m) => m,
        }
    }
}

/// Everything about topics the daemon serves.
pub struct Topics {
    path: PathBuf,
    region: String,
    account: String,
    state: RwLock<State>,
    /// Deliveries to subscribed functions, on disk until delivered ([`crate::outbox`]).
    pub outbox: std::sync::Arc<crate::outbox::Outbox>,
    /// `topics_dedup.log`: one line per FIFO message first published with its deduplication
    /// id, fsynced before Publish answers, so the window survives a restart or `kill -9`.
    dedup_path: PathBuf,
}

/// One line of `topics_dedup.log`.
#[derive(Serialize, Deserialize)]
struct DedupRecord {
    topic: String,
    id: String,
    expiry: u64,
    mid: String,
    seq: Option<String>,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, TopicRecord>,
    /// By topic name, in subscription-ARN order, rebuilt on every change.
    subscribers: BTreeMap<String, std::sync::Arc<Vec<Subscriber>>>,
    /// FIFO topics' sequence counters (not persisted: sequence numbers only grow within a run
    /// and restart above the wall clock, so they still grow across restarts).
    sequence: u64,
    /// FIFO deduplication: `(topic, deduplication id)` → (expiry ms, message id, sequence
    /// number) of the message first published with it; also in `topics_dedup.log`.
    dedup: std::collections::HashMap<(String, String), (u64, String, Option<String>)>,
    /// `topics_dedup.log`, open for appending.
    dedup_log: Option<std::fs::File>,
}

impl State {
    fn rebuild(&mut self, name: &str) {
        match self.topics.get(name) {
            Some(t) => {
                // Stored policies were parsed when set; a file edited by hand to hold a bad one
                // loses that subscription's policy check, never the daemon.
                let subs: Vec<Subscriber> =
                    t.subscriptions.values().filter_map(|r| Subscriber::new(r.clone()).ok()).collect();
                self.subscribers.insert(name.to_string(), std::sync::Arc::new(subs));
            }
            None => {
                self.subscribers.remove(name);
            }
        }
    }
}

/// Is `name` a valid topic name (`fifo` topics end in `.fifo`)?
pub fn check_topic_name(name: &str, fifo: bool) -> Result<(), String> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !base.is_empty()
        && name.len() <= 256
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(format!(
            "Invalid parameter: Topic Name: `{name}` must be 1 to 256 letters, digits, `-` or `_` \
             (a FIFO topic's name ends in `.fifo`)"
        ));
    }
    if fifo != name.ends_with(".fifo") {
        return Err(if fifo {
            format!(
                "Invalid parameter: Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long. (got `{name}`)"
            )
        } else {
            format!("Invalid parameter: Topic Name: `{name}` ends in `.fifo`; set FifoTopic=true")
        });
    }
    Ok(())
}

/// Topic attributes that CreateTopic and SetTopicAttributes take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicSettings {
    pub fifo: bool,
    pub content_based_deduplication: bool,
    pub display_name: String,
}

impl Topics {
    /// Loads `topics.json` (missing: no topics).
    pub fn load(path: PathBuf, region: &str, account: &str) -> std::io::Result<Topics> {
        let file: TopicsFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!(
                    "{} is not a valid topics file ({e}); move it away and run `skyform up` again",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                TopicsFile { version: TOPICS_VERSION, topics: BTreeMap::new() }
            }
            Err(e) => return Err(e),
        };
        if file.version > TOPICS_VERSION {
            return Err(std::io::Error::other(format!(
                "{} has format version {}, this skyform reads up to {TOPICS_VERSION}; upgrade skyform",
                path.display(),
                file.version
            )));
        }
        let mut state = State { topics: file.topics, ..State::default() };
        let names: Vec<String> = state.topics.keys().cloned().collect();
        for n in names {
            state.rebuild(&n);
        }
        state.sequence = crate::logs::now_ms() * 1000;
        let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let outbox = crate::outbox::Outbox::open(
            dir.join("sns_deliveries"),
            "SNS delivery",
            "sns",
            &crate::outbox::ASYNC_RETRY_DELAYS,
        )?;
        let dedup_path = dir.join("topics_dedup.log");
        // The window's live entries; a torn last line (a crash mid-write) is skipped.
        let now = crate::logs::now_ms();
        if let Ok(text) = std::fs::read_to_string(&dedup_path) {
            for r in text.lines().filter_map(|l| serde_json::from_str::<DedupRecord>(l).ok()) {
                if r.expiry > now {
                    state.dedup.insert((r.topic, r.id), (r.expiry, r.mid, r.seq));
                }
            }
        }
        let topics = Topics {
            path,
            region: region.into(),
            account: account.into(),
            state: RwLock::new(state),
            outbox: std::sync::Arc::new(outbox),
            dedup_path,
        };
        let mut state = topics.state.write().unwrap();
        topics.rewrite_dedup_log(&mut state)?;
        drop(state);
        Ok(topics)
    }

    /// Starts delivering to subscribed functions (what the outbox holds from before, then new
    /// deliveries).
    pub fn start(&self, functions: std::sync::Arc<dyn crate::aws::FunctionLookup>) {
        self.outbox.spawn(functions);
    }

    /// Rewrites `topics_dedup.log` with the window's live entries only (atomically), and opens
    /// it for appending.
    fn rewrite_dedup_log(&self, state: &mut State) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for ((topic, id), (expiry, mid, seq)) in &state.dedup {
            let r = DedupRecord {
                topic: topic.clone(),
                id: id.clone(),
                expiry: *expiry,
                mid: mid.clone(),
                seq: seq.clone(),
            };
            serde_json::to_writer(&mut bytes, &r).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        crate::registry::write_atomic(&self.dedup_path, &bytes)?;
        state.dedup_log = Some(std::fs::OpenOptions::new().append(true).open(&self.dedup_path)?);
        Ok(())
    }

    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", self.region, self.account)
    }

    /// The topic name in `arn`, if it is one of this cloud's topic ARNs.
    pub fn name_of<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn.strip_prefix("arn:aws:sns:")?;
        let rest = rest.strip_prefix(self.region.as_str())?.strip_prefix(':')?;
        let name = rest.strip_prefix(self.account.as_str())?.strip_prefix(':')?;
        (!name.is_empty() && !name.contains(':')).then_some(name)
    }

    fn not_found(arn: &str) -> TopicError {
        TopicError::NotFound(format!("Topic does not exist: {arn}"))
    }

    fn save(&self, state: &State) -> Result<(), TopicError> {
        let file = TopicsFile { version: TOPICS_VERSION, topics: state.topics.clone() };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| TopicError::Internal(e.to_string()))?;
        bytes.push(b'\n');
        crate::registry::write_atomic(&self.path, &bytes)
            .map_err(|e| TopicError::Internal(format!("cannot save {}: {e}", self.path.display())))
    }

    /// Applies `change` to a copy of the state, saves it, then swaps it in: a failed save
    /// changes nothing.
    fn mutate<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, TopicRecord>) -> Result<(T, Vec<String>), TopicError>,
    ) -> Result<T, TopicError> {
        let mut state = self.state.write().unwrap();
        let mut topics = state.topics.clone();
        let (out, touched) = change(&mut topics)?;
        if touched.is_empty() {
            return Ok(out);
        }
        let old = std::mem::replace(&mut state.topics, topics);
        if let Err(e) = self.save(&state) {
            state.topics = old;
            return Err(e);
        }
        for n in touched {
            state.rebuild(&n);
        }
        Ok(out)
    }

    /// CreateTopic: idempotent when the settings are the same, as on SNS.
    pub fn create_topic(&self, name: &str, settings: &TopicSettings) -> Result<String, TopicError> {
        check_topic_name(name, settings.fifo).map_err(TopicError::InvalidParameter)?;
        if settings.content_based_deduplication && !settings.fifo {
            return Err(TopicError::InvalidParameter(
                "Invalid parameter: Attributes Reason: ContentBasedDeduplication can only be set for FIFO topics"
                    .into(),
            ));
        }
        let arn = self.topic_arn(name);
        self.mutate(|topics| {
            if let Some(t) = topics.get(name) {
                if t.fifo != settings.fifo
                    || t.content_based_deduplication != settings.content_based_deduplication
                {
                    return Err(TopicError::InvalidParameter(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                            .into(),
                    ));
                }
                if t.display_name == settings.display_name || settings.display_name.is_empty() {
                    return Ok((t.arn.clone(), Vec::new()));
                }
            }
            let t = topics.entry(name.to_string()).or_insert_with(|| TopicRecord {
                arn: arn.clone(),
                fifo: settings.fifo,
                content_based_deduplication: settings.content_based_deduplication,
                display_name: String::new(),
                subscriptions: BTreeMap::new(),
                owner: None,
            });
            if !settings.display_name.is_empty() {
                t.display_name = settings.display_name.clone();
            }
            Ok((arn.clone(), vec![name.to_string()]))
        })
    }

    /// DeleteTopic: deleting a missing topic succeeds, as on SNS. Its subscriptions go with it.
    pub fn delete_topic(&self, arn: &str) -> Result<(), TopicError> {
        let Some(name) = self.name_of(arn) else {
            return Err(TopicError::InvalidParameter(format!(
                "Invalid parameter: TopicArn: `{arn}` is not a topic ARN"
            )));
        };
        self.mutate(|topics| {
            Ok(((), if topics.remove(name).is_some() { vec![name.to_string()] } else { Vec::new() }))
        })
    }

    /// SetTopicAttributes for `DisplayName` and `ContentBasedDeduplication`.
    pub fn set_topic_attribute(&self, arn: &str, key: &str, value: &str) -> Result<(), TopicError> {
        let name = self.name_of(arn).ok_or_else(|| Self::not_found(arn))?.to_string();
        self.mutate(|topics| {
            let t = topics.get_mut(&name).ok_or_else(|| Self::not_found(arn))?;
            match key {
                "DisplayName" => t.display_name = value.to_string(),
                "ContentBasedDeduplication" => {
                    if !t.fifo {
                        return Err(TopicError::InvalidParameter(
                            "Invalid parameter: ContentBasedDeduplication can only be set for FIFO topics".into(),
                        ));
                    }
                    t.content_based_deduplication = parse_bool(key, value)?;
                }
                "Policy" | "DeliveryPolicy" | "KmsMasterKeyId" | "TracingConfig" | "SignatureVersion" => {}
                other => {
                    return Err(TopicError::InvalidParameter(format!(
                        "Invalid parameter: AttributeName: `{other}` is not a topic attribute the local cloud takes \
                         (DisplayName, ContentBasedDeduplication, Policy, DeliveryPolicy, KmsMasterKeyId, TracingConfig, SignatureVersion)"
                    )));
                }
            }
            Ok(((), vec![name.clone()]))
        })
    }

    pub fn topic(&self, arn: &str) -> Result<TopicRecord, TopicError> {
        let name = self.name_of(arn).ok_or_else(|| Self::not_found(arn))?;
        self.state.read().unwrap().topics.get(name).cloned().ok_or_else(|| Self::not_found(arn))
    }

    /// Every topic with its name, by name.
    pub fn all(&self) -> Vec<(String, TopicRecord)> {
        self.state.read().unwrap().topics.iter().map(|(n, t)| (n.clone(), t.clone())).collect()
    }

    /// Every topic's ARN, by name.
    pub fn list_topics(&self) -> Vec<String> {
        self.state.read().unwrap().topics.values().map(|t| t.arn.clone()).collect()
    }

    /// Every subscription (with its topic ARN), topics by name.
    pub fn list_subscriptions(&self) -> Vec<(String, SubscriptionRecord)> {
        let s = self.state.read().unwrap();
        s.topics.values().flat_map(|t| t.subscriptions.values().map(|r| (t.arn.clone(), r.clone()))).collect()
    }

    pub fn list_subscriptions_by_topic(&self, arn: &str) -> Result<Vec<SubscriptionRecord>, TopicError> {
        Ok(self.topic(arn)?.subscriptions.into_values().collect())
    }

    /// Subscribe: the same protocol and endpoint on a topic is the same subscription (SNS
    /// answers its ARN again; different attributes are an error there, and here).
    pub fn subscribe(
        &self,
        topic_arn: &str,
        protocol: Protocol,
        endpoint: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, TopicError> {
        let name = self.name_of(topic_arn).ok_or_else(|| Self::not_found(topic_arn))?.to_string();
        let mut rec = SubscriptionRecord {
            arn: format!("{topic_arn}:{}", crate::pool::new_request_id()),
            protocol,
            endpoint: endpoint.to_string(),
            raw_message_delivery: false,
            filter_policy: None,
            filter_policy_scope: None,
            owner: None,
        };
        // The scope first: the policy is parsed for it.
        let mut ordered: Vec<(&String, &String)> = attributes.iter().collect();
        ordered.sort_by_key(|(k, _)| *k != "FilterPolicyScope");
        for (k, v) in ordered {
            apply_subscription_attribute(&mut rec, k, v)?;
        }
        let expected_service = match protocol {
            Protocol::Sqs => "arn:aws:sqs:",
            Protocol::Lambda => "arn:aws:lambda:",
        };
        if !endpoint.starts_with(expected_service) {
            return Err(TopicError::InvalidParameter(format!(
                "Invalid parameter: Endpoint: a `{}` subscription's endpoint is an ARN starting with `{expected_service}`, got `{endpoint}`",
                protocol.as_str()
            )));
        }
        self.mutate(|topics| {
            let t = topics.get_mut(&name).ok_or_else(|| Self::not_found(topic_arn))?;
            if let Some(existing) =
                t.subscriptions.values().find(|s| s.protocol == protocol && s.endpoint == endpoint)
            {
                let same = existing.raw_message_delivery == rec.raw_message_delivery
                    && existing.filter_policy == rec.filter_policy
                    && existing.filter_policy_scope == rec.filter_policy_scope;
                if !same && !attributes.is_empty() {
                    return Err(TopicError::InvalidParameter(
                        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
                            .into(),
                    ));
                }
                return Ok((existing.arn.clone(), Vec::new()));
            }
            let arn = rec.arn.clone();
            t.subscriptions.insert(arn.clone(), rec);
            Ok((arn, vec![name.clone()]))
        })
    }

    fn topic_of_subscription<'a>(&self, sub_arn: &'a str) -> Option<&'a str> {
        let (topic, id) = sub_arn.rsplit_once(':')?;
        (!id.is_empty()).then_some(())?;
        self.name_of(topic)
    }

    /// Unsubscribe: a missing subscription is not an error on SNS either... but an ARN that is
    /// not a subscription ARN is.
    pub fn unsubscribe(&self, sub_arn: &str) -> Result<(), TopicError> {
        let name = self.topic_of_subscription(sub_arn).ok_or_else(|| {
            TopicError::InvalidParameter(format!(
                "Invalid parameter: SubscriptionArn: `{sub_arn}` is not a subscription ARN"
            ))
        })?;
        self.mutate(|topics| {
            let removed = topics.get_mut(name).and_then(|t| t.subscriptions.remove(sub_arn)).is_some();
            Ok(((), if removed { vec![name.to_string()] } else { Vec::new() }))
        })
    }

    pub fn subscription(&self, sub_arn: &str) -> Result<(String, SubscriptionRecord), TopicError> {
        let not_found = || TopicError::NotFound(format!("Subscription does not exist: {sub_arn}"));
        let name = self.topic_of_subscription(sub_arn).ok_or_else(not_found)?;
        let s = self.state.read().unwrap();
        let t = s.topics.get(name).ok_or_else(not_found)?;
        let r = t.subscriptions.get(sub_arn).ok_or_else(not_found)?;
        Ok((t.arn.clone(), r.clone()))
    }

    pub fn set_subscription_attribute(
        &self,
        sub_arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), TopicError> {
        let (_, mut rec) = self.subscription(sub_arn)?;
        apply_subscription_attribute(&mut rec, key, value)?;
        let name = self.topic_of_subscription(sub_arn).expect("checked by subscription()").to_string();
        self.mutate(|topics| {
            let t = topics
                .get_mut(&name)
                .ok_or_else(|| TopicError::NotFound(format!("Subscription does not exist: {sub_arn}")))?;
            t.subscriptions.insert(sub_arn.to_string(), rec);
            Ok(((), vec![name.clone()]))
        })
    }

    /// Deploys the `local:Topic` `name` of `stack`: creates it, or takes over a topic of that
    /// name made with the API. A topic another stack deployed is a conflict: topic names are
    /// per project on the local cloud, as they are per account and region on AWS.
    pub fn put_owned_topic(&self, stack: &str, name: &str, fifo: bool) -> Result<TopicRecord, TopicError> {
        check_topic_name(name, fifo).map_err(TopicError::InvalidParameter)?;
        let arn = self.topic_arn(name);
        self.mutate(|topics| {
            if let Some(t) = topics.get_mut(name) {
                if let Some(other) = t.owner.as_deref().filter(|o| *o != stack) {
                    return Err(TopicError::Conflict(format!(
                        "topic `{name}` is already deployed by stack `{other}` of this project; topic names \
                         are shared by the project's stacks, so give this one another name"
                    )));
                }
                if t.fifo != fifo {
                    return Err(TopicError::InvalidParameter(format!(
                        "topic `{name}` exists with fifo = {}; changing it replaces the topic",
                        t.fifo
                    )));
                }
                if t.owner.is_some() {
                    return Ok((t.clone(), Vec::new()));
                }
                t.owner = Some(stack.to_string());
                return Ok((t.clone(), vec![name.to_string()]));
            }
            let t = TopicRecord {
                arn: arn.clone(),
                fifo,
                content_based_deduplication: false,
                display_name: String::new(),
                subscriptions: BTreeMap::new(),
                owner: Some(stack.to_string()),
            };
            topics.insert(name.to_string(), t.clone());
            Ok((t, vec![name.to_string()]))
        })
    }

    /// The topic `name` if `stack` deployed it.
    pub fn owned_topic(&self, stack: &str, name: &str) -> Option<TopicRecord> {
        let s = self.state.read().unwrap();
        s.topics.get(name).filter(|t| t.owner.as_deref() == Some(stack)).cloned()
    }

    /// Deletes the topic `name` that `stack` deployed (with its subscriptions); `false` when
    /// that stack has no such topic.
    pub fn delete_owned_topic(&self, stack: &str, name: &str) -> Result<bool, TopicError> {
        self.mutate(|topics| {
            if topics.get(name).is_some_and(|t| t.owner.as_deref() == Some(stack)) {
                topics.remove(name);
                Ok((true, vec![name.to_string()]))
            } else {
                Ok((false, Vec::new()))
            }
        })
    }

    /// The subscription a `local:TopicSubscription` (`owner` = `STACK/NAME`) made, with its
    /// topic's ARN.
    pub fn owned_subscription(&self, owner: &str) -> Option<(String, SubscriptionRecord)> {
        let s = self.state.read().unwrap();
        s.topics.values().find_map(|t| {
            t.subscriptions
                .values()
                .find(|r| r.owner.as_deref() == Some(owner))
                .map(|r| (t.arn.clone(), r.clone()))
        })
    }

    /// Deploys a `local:TopicSubscription`: keeps its ARN when only its attributes change.
    pub fn put_owned_subscription(
        &self,
        owner: &str,
        topic_arn: &str,
        protocol: Protocol,
        endpoint: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<SubscriptionRecord, TopicError> {
        let name = self.name_of(topic_arn).ok_or_else(|| Self::not_found(topic_arn))?.to_string();
        let existing = self.owned_subscription(owner);
        let keep = existing
            .as_ref()
            .filter(|(t, r)| t == topic_arn && r.protocol == protocol && r.endpoint == endpoint)
            .map(|(_, r)| r.arn.clone());
        let mut rec = SubscriptionRecord {
            arn: keep.unwrap_or_else(|| format!("{topic_arn}:{}", crate::pool::new_request_id())),
            protocol,
            endpoint: endpoint.to_string(),
            raw_message_delivery: false,
            filter_policy: None,
            filter_policy_scope: None,
            owner: Some(owner.to_string()),
        };
        // The scope first: the policy is parsed for it.
        let mut ordered: Vec<(&String, &String)> = attributes.iter().collect();
        ordered.sort_by_key(|(k, _)| *k != "FilterPolicyScope");
        for (k, v) in ordered {
            apply_subscription_attribute(&mut rec, k, v)?;
        }
        let old = existing.map(|(t, r)| (self.name_of(&t).map(str::to_string), r.arn));
        self.mutate(|topics| {
            let mut touched = vec![name.clone()];
            if let Some((Some(old_topic), old_arn)) = &old {
                if let Some(t) = topics.get_mut(old_topic) {
                    t.subscriptions.remove(old_arn);
                }
                touched.push(old_topic.clone());
            }
            let t = topics.get_mut(&name).ok_or_else(|| Self::not_found(topic_arn))?;
            t.subscriptions.insert(rec.arn.clone(), rec.clone());
            Ok((rec.clone(), touched))
        })
    }

    /// Deletes the subscription a `local:TopicSubscription` made; `false` when there is none.
    pub fn delete_owned_subscription(&self, owner: &str) -> Result<bool, TopicError> {
        let Some((topic_arn, rec)) = self.owned_subscription(owner) else { return Ok(false) };
        let Some(name) = self.name_of(&topic_arn).map(str::to_string) else { return Ok(false) };
        self.mutate(|topics| {
            let removed = topics.get_mut(&name).and_then(|t| t.subscriptions.remove(&rec.arn)).is_some();
            Ok((removed, if removed { vec![name.clone()] } else { Vec::new() }))
        })
    }

    /// Validates a message for `topic_arn` and stamps it (id, time, FIFO sequence number),
    /// returning it with the subscribers whose filter policies accept it.
    pub fn prepare(
        &self,
        topic_arn: &str,
        mut m: Message,
    ) -> Result<(Message, std::sync::Arc<Vec<Subscriber>>), TopicError> {
        let name = self.name_of(topic_arn).ok_or_else(|| Self::not_found(topic_arn))?;
        let (fifo, cbd, subs) = {
            let s = self.state.read().unwrap();
            let t = s.topics.get(name).ok_or_else(|| Self::not_found(topic_arn))?;
            (t.fifo, t.content_based_deduplication, s.subscribers.get(name).cloned().unwrap_or_default())
        };
        if m.message.is_empty() {
            return Err(TopicError::InvalidParameter("Invalid parameter: Empty message".into()));
        }
        if m.size() > MAX_MESSAGE_BYTES {
            return Err(TopicError::InvalidParameter(format!(
                "Invalid parameter: Message too long: {} bytes with its attributes, at most {MAX_MESSAGE_BYTES}",
                m.size()
            )));
        }
        if let Some(subject) = &m.subject
            && (subject.is_empty() || subject.len() > 100 || subject.chars().any(|c| c.is_control()))
        {
            return Err(TopicError::InvalidParameter(
                "Invalid parameter: Subject must be 1 to 100 printable characters, without line breaks"
                    .into(),
            ));
        }
        validate_attributes(&m.attributes).map_err(TopicError::InvalidParameter)?;
        if fifo {
            if m.group_id.is_none() {
                return Err(TopicError::InvalidParameter(
                    "Invalid parameter: The MessageGroupId parameter is required for FIFO topics".into(),
                ));
            }
            if m.deduplication_id.is_none() && !cbd {
                return Err(TopicError::InvalidParameter(
                    "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                ));
            }
            // SNS's 5-minute deduplication window: a duplicate is accepted, answered with the
            // first message's id, and delivered to nobody.
            let dedup_id = m.deduplication_id.clone().unwrap_or_else(|| {
                sha2::Sha256::digest(m.message.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
            });
            let now = crate::logs::now_ms();
            let mut s = self.state.write().unwrap();
            if s.dedup.len() > 10_000 {
                s.dedup.retain(|_, (expiry, _, _)| *expiry > now);
                self.rewrite_dedup_log(&mut s).map_err(|e| {
                    TopicError::Internal(format!("cannot rewrite {}: {e}", self.dedup_path.display()))
                })?;
            }
            let key = (name.to_string(), dedup_id);
            if let Some((expiry, id, seq)) = s.dedup.get(&key)
                && *expiry > now
            {
                m.message_id = id.clone();
                m.sequence_number = seq.clone();
                m.topic_arn = self.topic_arn(name);
                return Ok((m, std::sync::Arc::new(Vec::new())));
            }
            s.sequence += 1;
            m.sequence_number = Some(format!("{:020}", s.sequence));
            let record = DedupRecord {
                topic: key.0.clone(),
                id: key.1.clone(),
                expiry: now + DEDUP_WINDOW_MS,
                mid: m.message_id.clone(),
                seq: m.sequence_number.clone(),
            };
            let mut line = serde_json::to_vec(&record).map_err(|e| TopicError::Internal(e.to_string()))?;
            line.push(b'\n');
            let log = s.dedup_log.as_mut().expect("opened at load");
            log.write_all(&line).and_then(|()| log.sync_data()).map_err(|e| {
                TopicError::Internal(format!("cannot write {}: {e}", self.dedup_path.display()))
            })?;
            s.dedup.insert(key, (record.expiry, record.mid, record.seq));
        } else if m.group_id.is_some() {
            return Err(TopicError::InvalidParameter(
                "Invalid parameter: MessageGroupId: The request includes MessageGroupId parameter that is not valid for this topic type".into(),
            ));
        } else if m.deduplication_id.is_some() {
            return Err(TopicError::InvalidParameter(
                "Invalid parameter: MessageDeduplicationId: The request includes MessageDeduplicationId parameter that is not valid for this topic type".into(),
            ));
        }
        m.topic_arn = self.topic_arn(name);
        Ok((m, subs))
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, TopicError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(TopicError::InvalidParameter(format!(
            "Invalid parameter: Attributes Reason: {key}: Invalid value [{v}]. Must be true or false."
        ))),
    }
}

/// Sets one subscription attribute (Subscribe's `Attributes`, SetSubscriptionAttributes).
fn apply_subscription_attribute(
    rec: &mut SubscriptionRecord,
    key: &str,
    value: &str,
) -> Result<(), TopicError> {
    match key {
        "RawMessageDelivery" => rec.raw_message_delivery = parse_bool(key, value)?,
        "FilterPolicy" => {
            let text = (!value.trim().is_empty()).then(|| value.to_string());
            parse_policy(text.as_deref(), rec.filter_policy_scope.as_deref())
                .map_err(TopicError::InvalidParameter)?;
            rec.filter_policy = text;
        }
        "FilterPolicyScope" => {
            Scope::parse(value).map_err(TopicError::InvalidParameter)?;
            parse_policy(rec.filter_policy.as_deref(), Some(value)).map_err(TopicError::InvalidParameter)?;
            rec.filter_policy_scope = Some(value.to_string());
        }
        "DeliveryPolicy" | "RedrivePolicy" | "SubscriptionRoleArn" | "ReplayPolicy" => {}
        other => {
            return Err(TopicError::InvalidParameter(format!(
                "Invalid parameter: AttributeName: `{other}` is not a subscription attribute \
                 (RawMessageDelivery, FilterPolicy, FilterPolicyScope, DeliveryPolicy, RedrivePolicy)"
            )));
        }
    }
    Ok(())
}

impl SubscriptionRecord {
    /// GetSubscriptionAttributes' map (without the topic-level keys the caller adds).
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("SubscriptionArn".into(), self.arn.clone());
        m.insert("Protocol".into(), self.protocol.as_str().into());
        m.insert("Endpoint".into(), self.endpoint.clone());
        m.insert("RawMessageDelivery".into(), self.raw_message_delivery.to_string());
        m.insert("ConfirmationWasAuthenticated".into(), "true".into());
        m.insert("PendingConfirmation".into(), "false".into());
        if let Some(p) = &self.filter_policy {
            m.insert("FilterPolicy".into(), p.clone());
            m.insert(
                "FilterPolicyScope".into(),
                self.filter_policy_scope.clone().unwrap_or_else(|| "MessageAttributes".into()),
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> (Topics, PathBuf) {
        let dir = std::env::temp_dir().join(format!("skyform-topics-{}", crate::pool::new_request_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("topics.json");
        (Topics::load(path.clone(), "us-east-1", "000000000000").unwrap(), path)
    }

    fn msg(text: &str) -> Message {
        Message {
            message_id: "5f4c4b1e-0000-4000-8000-000000000001".into(),
            topic_arn: String::new(),
            subject: None,
            message: text.into(),
            timestamp_ms: 1_764_504_000_123,
            attributes: Attributes::new(),
            group_id: None,
            deduplication_id: None,
            sequence_number: None,
        }
    }

    #[test]
    fn the_fifo_deduplication_window_survives_a_reload_and_a_torn_line() {
        let (t, path) = topics();
        let settings = TopicSettings { fifo: true, ..TopicSettings::default() };
        let arn = t.create_topic("orders.fifo", &settings).unwrap();
        let fifo_msg = |id: &str, dedup: &str| Message {
            message_id: id.into(),
            group_id: Some("g".into()),
            deduplication_id: Some(dedup.into()),
            ..msg("one order")
        };
        let (first, subs) = t.prepare(&arn, fifo_msg("first", "d1")).unwrap();
        assert!(first.sequence_number.is_some() && subs.is_empty());
        drop(t);
        // A crash mid-append leaves a torn last line: it is skipped, the rest kept.
        let log = path.parent().unwrap().join("topics_dedup.log");
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b"{\"topic\":\"ord").unwrap();

        let t = Topics::load(path.clone(), "us-east-1", "000000000000").unwrap();
        let (again, _) = t.prepare(&arn, fifo_msg("second", "d1")).unwrap();
        assert_eq!((again.message_id.as_str(), &again.sequence_number), ("first", &first.sequence_number));
        let (other, _) = t.prepare(&arn, fifo_msg("third", "d2")).unwrap();
        assert_eq!(other.message_id, "third");
        // The load rewrote the log without the torn line; both ids are in it.
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<DedupRecord>(l).is_ok()), "{text}");
    }

    #[test]
    fn topics_and_subscriptions_survive_a_reload() {
        let (t, path) = topics();
        let arn = t.create_topic("events", &TopicSettings::default()).unwrap();
        assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:events");
        assert_eq!(t.create_topic("events", &TopicSettings::default()).unwrap(), arn);
        let mut attrs = BTreeMap::new();
        attrs.insert("FilterPolicy".to_string(), r#"{"k": ["v"]}"#.to_string());
        attrs.insert("RawMessageDelivery".to_string(), "true".to_string());
        let sub = t.subscribe(&arn, Protocol::Sqs, "arn:aws:sqs:us-east-1:000000000000:q", &attrs).unwrap();
        assert!(sub.starts_with(&format!("{arn}:")));
        // The same endpoint again is the same subscription.
        assert_eq!(
            t.subscribe(&arn, Protocol::Sqs, "arn:aws:sqs:us-east-1:000000000000:q", &attrs).unwrap(),
            sub
        );

        let again = Topics::load(path, "us-east-1", "000000000000").unwrap();
        assert_eq!(again.list_topics(), vec![arn.clone()]);
        let subs = again.list_subscriptions_by_topic(&arn).unwrap();
        assert_eq!(subs.len(), 1);
        assert!(subs[0].raw_message_delivery);
        let (m, subscribers) = again.prepare(&arn, msg("hi")).unwrap();
        assert_eq!(m.topic_arn, arn);
        assert!(!subscribers[0].accepts(&m), "the policy came back from disk");
        again.unsubscribe(&sub).unwrap();
        assert!(again.list_subscriptions().is_empty());
        again.delete_topic(&arn).unwrap();
        assert!(matches!(again.topic(&arn), Err(TopicError::NotFound(_))));
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let (t, _) = topics();
        assert!(matches!(
            t.create_topic("bad name", &TopicSettings::default()),
            Err(TopicError::InvalidParameter(_))
        ));
        assert!(t.create_topic("q.fifo", &TopicSettings::default()).is_err());
        let fifo = TopicSettings { fifo: true, ..Default::default() };
        assert!(t.create_topic("q", &fifo).is_err());
        let arn = t.create_topic("q.fifo", &fifo).unwrap();
        assert!(t.create_topic("q.fifo", &TopicSettings::default()).is_err());
        let mut attrs = BTreeMap::new();
        attrs.insert("FilterPolicy".to_string(), "{bad".to_string());
        let e =
            t.subscribe(&arn, Protocol::Lambda, "arn:aws:lambda:us-east-1:000000000000:function:f", &attrs);
        assert!(matches!(e, Err(TopicError::InvalidParameter(m)) if m.contains("FilterPolicy")));
        assert!(t.subscribe(&arn, Protocol::Lambda, "not-an-arn", &BTreeMap::new()).is_err());
        assert!(t.list_subscriptions().is_empty());
        assert!(matches!(
            t.prepare("arn:aws:sns:us-east-1:000000000000:nope", msg("x")),
            Err(TopicError::NotFound(_))
        ));
        // FIFO topics need a group and a deduplication id.
        let e = t.prepare(&arn, msg("x")).unwrap_err();
        assert!(e.message().contains("MessageGroupId"), "{e:?}");
        let mut m = msg("x");
        m.group_id = Some("g".into());
        m.deduplication_id = Some("d".into());
        let (a, _) = t.prepare(&arn, m.clone()).unwrap();
        let mut m2 = m.clone();
        m2.deduplication_id = Some("d2".into());
        let (b, _) = t.prepare(&arn, m2).unwrap();
        assert!(a.sequence_number < b.sequence_number);
        // The same deduplication id within 5 minutes: the first message's id, no subscriber.
        let mut again = m.clone();
        again.message_id = "another".into();
        let (c, subs) = t.prepare(&arn, again).unwrap();
        assert_eq!((c.message_id, c.sequence_number), (a.message_id.clone(), a.sequence_number.clone()));
        assert!(subs.is_empty());
        // Content-based deduplication hashes the body.
        t.set_topic_attribute(&arn, "ContentBasedDeduplication", "true").unwrap();
        let mut body = msg("same body");
        body.group_id = Some("g".into());
        let (x, _) = t.prepare(&arn, body.clone()).unwrap();
        body.message_id = "other".into();
        let (y, subs) = t.prepare(&arn, body).unwrap();
        assert_eq!(x.message_id, y.message_id);
        assert!(subs.is_empty());
        assert!(t.prepare(&arn, msg("")).unwrap_err().message().contains("Empty message"));
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let std_arn = t.create_topic("std", &TopicSettings::default()).unwrap();
        assert!(t.prepare(&std_arn, msg(&big)).unwrap_err().message().contains("too long"));
        let mut dedup = msg("x");
        dedup.deduplication_id = Some("d".into());
        assert!(t.prepare(&std_arn, dedup).unwrap_err().message().contains("MessageDeduplicationId"));
    }

    #[test]
    fn owned_resources_keep_their_arns_and_their_stack() {
        let (t, path) = topics();
        let topic = t.put_owned_topic("dev", "events", false).unwrap();
        assert_eq!(t.put_owned_topic("dev", "events", false).unwrap(), topic);
        assert!(matches!(t.put_owned_topic("prod", "events", false), Err(TopicError::Conflict(_))));
        assert!(t.put_owned_topic("dev", "events", true).is_err());
        let f = "arn:aws:lambda:us-east-1:000000000000:function:f";
        let g = "arn:aws:lambda:us-east-1:000000000000:function:g";
        let mut attrs = BTreeMap::new();
        let a = t.put_owned_subscription("dev/s", &topic.arn, Protocol::Lambda, f, &attrs).unwrap();
        attrs.insert("FilterPolicy".to_string(), r#"{"k": ["v"]}"#.to_string());
        let b = t.put_owned_subscription("dev/s", &topic.arn, Protocol::Lambda, f, &attrs).unwrap();
        assert_eq!(a.arn, b.arn, "an attribute change keeps the ARN");
        let c = t.put_owned_subscription("dev/s", &topic.arn, Protocol::Lambda, g, &attrs).unwrap();
        assert_ne!(a.arn, c.arn, "another endpoint is another subscription");
        assert_eq!(t.list_subscriptions().len(), 1);
        let again = Topics::load(path, "us-east-1", "000000000000").unwrap();
        assert_eq!(again.owned_subscription("dev/s").unwrap().1, c);
        assert!(again.delete_owned_subscription("dev/s").unwrap());
        assert!(!again.delete_owned_subscription("dev/s").unwrap());
        assert!(!again.delete_owned_topic("prod", "events").unwrap());
        assert!(again.delete_owned_topic("dev", "events").unwrap());
        assert!(again.list_topics().is_empty());
    }

    #[test]
    fn a_corrupt_or_newer_file_is_refused_and_left_alone() {
        let (_, path) = topics();
        std::fs::write(&path, "{not json").unwrap();
        let e = Topics::load(path.clone(), "us-east-1", "000000000000").err().unwrap().to_string();
        assert!(e.contains("is not a valid topics file") && e.contains("move it away"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
        std::fs::write(&path, r#"{"version": 99, "topics": {}}"#).unwrap();
        let e = Topics::load(path, "us-east-1", "000000000000").err().unwrap().to_string();
        assert!(e.contains("upgrade skyform"), "{e}");
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let (t, path) = topics();
        let arn = t.create_topic("kept", &TopicSettings::default()).unwrap();
        // The file's place taken by a folder: the atomic rename fails.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(t.create_topic("lost", &TopicSettings::default()), Err(TopicError::Internal(_))));
        assert!(matches!(t.delete_topic(&arn), Err(TopicError::Internal(_))));
        assert_eq!(t.list_topics(), vec![arn]);
    }

    #[test]
    fn attribute_validation() {
        let one = |t: &str, s: Option<&str>| {
            let mut a = Attributes::new();
            a.insert(
                "k".into(),
                MessageAttribute { data_type: t.into(), string_value: s.map(Into::into), binary_value: None },
            );
            validate_attributes(&a)
        };
        assert!(one("String", Some("x")).is_ok());
        assert!(one("String.custom", Some("x")).is_ok());
        assert!(one("Number", Some("12.5")).is_ok());
        assert!(one("Number", Some("twelve")).unwrap_err().contains("cast"));
        assert!(one("String.Array", Some(r#"["a", 1]"#)).is_ok());
        assert!(one("String.Array", Some("a")).is_err());
        assert!(one("Binary", None).is_err());
        assert!(one("Blob", Some("x")).unwrap_err().contains("supported type prefixes"));
        let mut many = Attributes::new();
        for i in 0..11 {
            many.insert(
                format!("a{i}"),
                MessageAttribute {
                    data_type: "String".into(),
                    string_value: Some("v".into()),
                    binary_value: None,
                },
            );
        }
        assert!(validate_attributes(&many).unwrap_err().contains("at most 10"));
    }

    #[test]
    fn envelope_and_event_have_sns_fields() {
        let mut m = msg("hello");
        m.topic_arn = "arn:aws:sns:us-east-1:000000000000:events".into();
        m.subject = Some("greeting".into());
        m.attributes.insert(
            "color".into(),
            MessageAttribute {
                data_type: "String".into(),
                string_value: Some("red".into()),
                binary_value: None,
            },
        );
        m.attributes.insert(
            "blob".into(),
            MessageAttribute {
                data_type: "Binary".into(),
                string_value: None,
                binary_value: Some(b"\x00\x01".to_vec()),
            },
        );
        let urls = Urls { endpoint: "http://127.0.0.1:4566".into() };
        let sub = "arn:aws:sns:us-east-1:000000000000:events:abc";
        let text = sqs_envelope(&m, sub, &urls);
        assert!(text.starts_with(r#"{"Type":"Notification","MessageId":""#), "{text}");
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["TopicArn"], m.topic_arn);
        assert_eq!(e["Subject"], "greeting");
        assert_eq!(e["Message"], "hello");
        assert_eq!(e["Timestamp"], "2025-11-30T12:00:00.123Z");
        assert_eq!(e["SignatureVersion"], "1");
        assert_eq!(
            e["UnsubscribeURL"],
            format!("http://127.0.0.1:4566/?Action=Unsubscribe&SubscriptionArn={sub}")
        );
        assert_eq!(e["MessageAttributes"]["color"], json!({"Type": "String", "Value": "red"}));
        assert_eq!(e["MessageAttributes"]["blob"], json!({"Type": "Binary", "Value": "AAE="}));
        let sig = base64::engine::general_purpose::STANDARD.decode(e["Signature"].as_str().unwrap()).unwrap();
        assert_eq!(sig.len(), 32);
        // No subject, no attributes: the keys are absent, as on SNS.
        let plain: Value = serde_json::from_str(&sqs_envelope(&msg("x"), sub, &urls)).unwrap();
        assert!(plain.get("Subject").is_none() && plain.get("MessageAttributes").is_none());

        let ev = lambda_event(&m, sub, &urls);
        let r = &ev["Records"][0];
        assert_eq!(r["EventSource"], "aws:sns");
        assert_eq!(r["EventVersion"], "1.0");
        assert_eq!(r["EventSubscriptionArn"], sub);
        assert_eq!(r["Sns"]["Type"], "Notification");
        assert_eq!(r["Sns"]["Message"], "hello");
        assert_eq!(r["Sns"]["MessageAttributes"]["color"]["Value"], "red");
        assert!(r["Sns"]["SigningCertUrl"].as_str().unwrap().ends_with(".pem"));
        assert!(lambda_event(&msg("x"), sub, &urls)["Records"][0]["Sns"]["Subject"].is_null());
    }
}
