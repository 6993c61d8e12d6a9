//! S3 (REST-XML): `aws:s3:Bucket` and `aws:s3:BucketNotification`.
//!
//! Requests use path-style addressing (`/<bucket>` on the regional endpoint), which works for
//! every bucket name this provider creates and for endpoints like moto that serve one host.

use reqwest::Method;
use serde_json::{Map, Value, json};
use skyform_protocol::{CheckFailure, ProviderError};

use crate::http::{Error, Request, Response, Result};
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NameRule, Spec};
use crate::sigv4::uri_encode;
use crate::util::{Inputs, base64, set};
use crate::xml;
use sha2::{Digest, Sha256};

const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

async fn s3(
    ctx: &Ctx,
    method: Method,
    path: String,
    sub: &[(&str, &str)],
    body: Option<String>,
) -> Result<Response> {
    let mut req = Request::new("s3", method, path);
    req.query = sub.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(b) = body {
        req.headers.push(("content-type".into(), "application/xml".into()));
        // Several bucket-configuration calls require an integrity checksum (historically
        // Content-MD5); S3 accepts a SHA-256 one instead, which we already compute.
        req.headers.push(("x-amz-checksum-sha256".into(), base64(&Sha256::digest(b.as_bytes()))));
        req.headers.push(("x-amz-sdk-checksum-algorithm".into(), "SHA256".into()));
        req.body = b.into_bytes();
    }
    ctx.aws.send(req).await
}

fn bucket_path(bucket: &str) -> String {
    format!("/{}", uri_encode(bucket))
}

pub struct Bucket;

fn bucket_outputs(ctx: &Ctx, name: &str) -> Value {
    json!({
        "name": name,
        "arn": format!("arn:aws:s3:::{name}"),
        "bucket_domain_name": format!("{name}.s3.amazonaws.com"),
        "region": ctx.aws.region(),
    })
}

async fn set_versioning(ctx: &Ctx, name: &str, on: bool) -> Result<()> {
    let status = if on { "Enabled" } else { "Suspended" };
    let body = format!(
        r#"<VersioningConfiguration xmlns="{NS}"><Status>{status}</Status></VersioningConfiguration>"#
    );
    s3(ctx, Method::PUT, bucket_path(name), &[("versioning", "")], Some(body)).await?;
    Ok(())
}

/// Deletes every object version and delete marker, for `force_destroy`.
async fn empty_bucket(ctx: &Ctx, name: &str) -> Result<()> {
    loop {
        let listing = s3(ctx, Method::GET, bucket_path(name), &[("versions", "")], None).await?.text();
        let mut entries: Vec<(String, Option<String>)> = Vec::new();
        for tag in ["Version", "DeleteMarker"] {
            for b in xml::blocks(&listing, tag) {
                if let Some(key) = xml::tag(b, "Key") {
                    entries.push((key, xml::tag(b, "VersionId").filter(|v| v != "null")));
                }
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        for (key, version) in entries {
            let path = format!(
                "{}/{}",
                bucket_path(name),
                key.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
            );
            let q: Vec<(&str, &str)> = version.as_deref().map(|v| vec![("versionId", v)]).unwrap_or_default();
            s3(ctx, Method::DELETE, path, &q, None).await?;
        }
    }
}

impl Kind for Bucket {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:s3:Bucket",
            description: "An S3 bucket. Id: the bucket name.",
            properties: json!({
                "name": {"type": "string", "description": "The bucket name (3-63 lowercase letters, digits, hyphens; globally unique); generated when absent."},
                "versioning": {"type": "boolean", "default": false, "description": "Keep every version of every object."},
                "force_destroy": {"type": "boolean", "default": false, "description": "On delete, delete the objects first (otherwise a non-empty bucket refuses)."},
            }),
            required: &[],
            outputs: &["name", "arn", "bucket_domain_name", "region"],
            replace_on_changes: &["name"],
            identity: &["name"],
            name: Some(NameRule { prop: "name", max_len: 63, lowercase: true }),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        if let Some(name) = inputs.get("name").and_then(Value::as_str)
            && name != skyform_protocol::UNKNOWN
        {
            let ok = (3..=63).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                && name.as_bytes()[0].is_ascii_alphanumeric()
                && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
            if !ok {
                failures.push(CheckFailure {
                    property: "name".into(),
                    reason: format!(
                        "`{name}` is not a valid bucket name: 3-63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"
                    ),
                });
            }
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default();
        let body = (ctx.aws.region() != "us-east-1").then(|| {
            format!(
                r#"<CreateBucketConfiguration xmlns="{NS}"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>"#,
                ctx.aws.region()
            )
        });
        s3(ctx, Method::PUT, bucket_path(name), &[], body).await?;
        if inputs.bool_of("versioning") == Some(true)
            && let Err(e) = set_versioning(ctx, name, true).await
        {
            let _ = s3(ctx, Method::DELETE, bucket_path(name), &[], None).await;
            return Err(e);
        }
        Ok(Created { id: name.to_string(), outputs: bucket_outputs(ctx, name) })
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        s3(ctx, Method::HEAD, bucket_path(id), &[], None).await?;
        let v = s3(ctx, Method::GET, bucket_path(id), &[("versioning", "")], None).await?.text();
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({"force_destroy": false}) };
        set(&mut inputs, "name", json!(id));
        set(&mut inputs, "versioning", json!(xml::tag(&v, "Status").as_deref() == Some("Enabled")));
        Ok(Some(Found { inputs, outputs: bucket_outputs(ctx, id) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        if olds.get("versioning") != news.get("versioning") {
            set_versioning(ctx, id, news.bool_of("versioning") == Some(true)).await?;
        }
        // `force_destroy` only changes what our delete does.
        Ok(bucket_outputs(ctx, id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, inputs: &Value) -> Result<()> {
        if inputs.bool_of("force_destroy") == Some(true) {
            empty_bucket(ctx, id).await?;
        }
        match s3(ctx, Method::DELETE, bucket_path(id), &[], None).await {
            Err(Error::Api { code, message, .. }) if code == "BucketNotEmpty" => {
                Err(Error::Provider(ProviderError::failed(format!(
                    "BucketNotEmpty: {message}; empty it, or set `force_destroy = true` and run `up` before deleting"
                ))))
            }
            other => other.map(|_| ()),
        }
    }
}

// ---------------------------------------------------------------------------------------------

pub struct BucketNotification;

/// (input list, XML element, XML target element).
const TARGETS: &[(&str, &str, &str)] = &[
    ("queues", "QueueConfiguration", "Queue"),
    ("lambdas", "CloudFunctionConfiguration", "CloudFunction"),
    ("topics", "TopicConfiguration", "Topic"),
];

fn notification_xml(inputs: &Value) -> String {
    let mut x = format!(r#"<NotificationConfiguration xmlns="{NS}">"#);
    for (list, element, target) in TARGETS {
        for (i, entry) in inputs.arr_of(list).into_iter().flatten().enumerate() {
            x.push_str(&format!("<{element}><Id>skyform-{list}-{i}</Id>"));
            for event in entry.arr_of("events").into_iter().flatten().filter_map(Value::as_str) {
                x.push_str(&format!("<Event>{}</Event>", xml::escape(event)));
            }
            let rules: Vec<(&str, &str)> = [("prefix", "filter_prefix"), ("suffix", "filter_suffix")]
                .iter()
                .filter_map(|(n, k)| entry.str_of(k).map(|v| (*n, v)))
                .collect();
            if !rules.is_empty() {
                x.push_str("<Filter><S3Key>");
                for (n, v) in rules {
                    x.push_str(&format!(
                        "<FilterRule><Name>{n}</Name><Value>{}</Value></FilterRule>",
                        xml::escape(v)
                    ));
                }
                x.push_str("</S3Key></Filter>");
            }
            x.push_str(&format!(
                "<{target}>{}</{target}></{element}>",
                xml::escape(entry.str_of("arn").unwrap_or_default())
            ));
        }
    }
    x.push_str("</NotificationConfiguration>");
    x
}

fn parse_notifications(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for (list, element, target) in TARGETS {
        let entries: Vec<Value> = xml::blocks(text, element)
            .into_iter()
            .map(|b| {
                let mut e = json!({"arn": xml::tag(b, target), "events": xml::tags(b, "Event")});
                for rule in xml::blocks(b, "FilterRule") {
                    let (n, v) = (
                        xml::tag(rule, "Name").unwrap_or_default().to_ascii_lowercase(),
                        xml::tag(rule, "Value"),
                    );
                    set(&mut e, &format!("filter_{n}"), json!(v));
                }
                e
            })
            .collect();
        if !entries.is_empty() {
            out.insert(list.to_string(), Value::Array(entries));
        }
    }
    out
}

async fn put_notifications(ctx: &Ctx, bucket: &str, inputs: &Value) -> Result<()> {
    s3(ctx, Method::PUT, bucket_path(bucket), &[("notification", "")], Some(notification_xml(inputs)))
        .await?;
    Ok(())
}

impl Kind for BucketNotification {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:s3:BucketNotification",
            description: "All the event notifications of one bucket (S3 keeps them as one document). Each entry is \
                          `{arn, events, filter_prefix, filter_suffix}`. Id: the bucket name.",
            properties: json!({
                "bucket": {"type": "string", "description": "The bucket name."},
                "queues": {"type": "array", "description": "SQS queues to notify: `[{arn, events = [\"s3:ObjectCreated:*\"], filter_prefix, filter_suffix}]`."},
                "lambdas": {"type": "array", "description": "Functions to invoke (each needs an `aws:lambda:Permission` for `s3.amazonaws.com`)."},
                "topics": {"type": "array", "description": "SNS topics to notify."},
            }),
            required: &["bucket"],
            outputs: &["bucket"],
            replace_on_changes: &["bucket"],
            identity: &["bucket"],
            name: None,
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        for (list, _, _) in TARGETS {
            if inputs.get(*list).and_then(Value::as_array).is_some_and(Vec::is_empty) {
                inputs.remove(*list);
                continue;
            }
            for (i, e) in inputs.get(*list).and_then(Value::as_array).into_iter().flatten().enumerate() {
                let ok = e.is_object()
                    && e.get("arn").is_some_and(Value::is_string)
                    && e.get("events")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
                    && e.as_object()
                        .unwrap()
                        .keys()
                        .all(|k| ["arn", "events", "filter_prefix", "filter_suffix"].contains(&k.as_str()));
                if !ok {
                    failures.push(CheckFailure {
                        property: list.to_string(),
                        reason: format!(
                            "`{list}[{i}]` must be `{{arn = \"…\", events = [\"s3:ObjectCreated:*\"], filter_prefix?, filter_suffix?}}`"
                        ),
                    });
                }
            }
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let bucket = inputs.str_of("bucket").unwrap_or_default();
        put_notifications(ctx, bucket, inputs).await?;
        Ok(Created { id: bucket.to_string(), outputs: json!({"bucket": bucket}) })
    }

    fn find(
        &self,
        _ctx: &Ctx,
        inputs: &Value,
    ) -> impl std::future::Future<Output = Result<Option<String>>> + Send {
        let id = inputs.str_of("bucket").map(String::from);
        async move { Ok(id) }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let text = s3(ctx, Method::GET, bucket_path(id), &[("notification", "")], None).await?.text();
        let found = parse_notifications(&text);
        if found.is_empty() {
            return Ok(None); // no notifications is the absence of this resource
        }
        let mut inputs = json!({"bucket": id});
        for (k, v) in found {
            set(&mut inputs, &k, v);
        }
        let _ = stored;
        Ok(Some(Found { inputs, outputs: json!({"bucket": id}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        put_notifications(ctx, id, news).await?;
        Ok(json!({"bucket": id}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        put_notifications(ctx, id, &json!({})).await
    }
}
