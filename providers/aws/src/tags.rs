//! Tags, for cost allocation: the `tags` input of every taggable type, merged over the stack's
//! default tags (`tags` under `[providers.aws]`), applied after create and on update with each
//! service's tagging API, and read back so that `refresh` shows tag drift.
//!
//! Why one module rather than each type's own code: the eight services tag in eight ways, but
//! what skyform does with tags is the same for all of them (merge, apply the difference, read),
//! so `lib.rs` calls this around each type's create, update and read.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::http::{Request, Result};
use crate::resource::Ctx;
use crate::sigv4::uri_encode;
use crate::xml;

/// The types that take a `tags` input.
pub const TAGGABLE: &[&str] = &[
    "aws:iam:Role",
    "aws:lambda:Function",
    "aws:logs:LogGroup",
    "aws:sqs:Queue",
    "aws:sns:Topic",
    "aws:apigatewayv2:Api",
    "aws:s3:Bucket",
    "aws:dynamodb:Table",
];

pub fn is_taggable(token: &str) -> bool {
    TAGGABLE.contains(&token)
}

/// The schema of the `tags` input.
pub fn property() -> Value {
    json!({"type": "object", "description": "Tags (string keys and values), merged over the stack's default `tags` under [providers.aws]; drift in them shows in `refresh`."})
}

/// The stack's default tags under the resource's own (which win).
pub fn merge(defaults: &Map<String, Value>, inputs: &mut Map<String, Value>) {
    if defaults.is_empty() {
        return;
    }
    let mut tags = defaults.clone();
    if let Some(Value::Object(own)) = inputs.get("tags") {
        tags.extend(own.clone());
    } else if inputs.get("tags").is_some_and(|v| !v.is_null()) {
        return; // not an object (or unknown): `check` reports or keeps it
    }
    inputs.insert("tags".into(), Value::Object(tags));
}

/// A problem with a `tags` value: keys and values must be strings.
pub fn problem(tags: &Value) -> Option<String> {
    let obj = tags.as_object()?;
    obj.iter()
        .find(|(_, v)| !v.is_string())
        .map(|(k, v)| format!("tag `{k}` must be a string, got {v}; write tags = {{ {k} = \"...\" }}"))
}

fn pairs(tags: &Map<String, Value>) -> Vec<(String, String)> {
    tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
}

/// What the resource is called by its service's tagging API.
fn target(ctx: &Ctx, token: &str, id: &str, outputs: &Value) -> String {
    let out = |k: &str| outputs.get(k).and_then(Value::as_str).unwrap_or(id).to_string();
    match token {
        "aws:lambda:Function" | "aws:logs:LogGroup" | "aws:dynamodb:Table" => out("arn"),
        "aws:apigatewayv2:Api" => format!("arn:aws:apigateway:{}::/apis/{id}", ctx.aws.region()),
        _ => id.to_string(),
    }
}

/// Applies `new` over `old`: tags that changed are set, tags that went are removed.
pub async fn apply(
    ctx: &Ctx,
    token: &str,
    id: &str,
    outputs: &Value,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<()> {
    let set: Map<String, Value> =
        new.iter().filter(|(k, v)| old.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let gone: Vec<String> = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
    if set.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let t = target(ctx, token, id, outputs);
    let aws = &ctx.aws;
    match token {
        "aws:iam:Role" => {
            if !set.is_empty() {
                let mut p = vec![("RoleName".to_string(), t.clone())];
                for (i, (k, v)) in pairs(&set).into_iter().enumerate() {
                    p.push((format!("Tags.member.{}.Key", i + 1), k));
                    p.push((format!("Tags.member.{}.Value", i + 1), v));
                }
                query(ctx, "iam", "2010-05-08", "TagRole", p).await?;
            }
            if !gone.is_empty() {
                let mut p = vec![("RoleName".to_string(), t.clone())];
                p.extend(
                    gone.iter().enumerate().map(|(i, k)| (format!("TagKeys.member.{}", i + 1), k.clone())),
                );
                query(ctx, "iam", "2010-05-08", "UntagRole", p).await?;
            }
        }
        "aws:sns:Topic" => {
            if !set.is_empty() {
                let mut p = vec![("ResourceArn".to_string(), t.clone())];
                for (i, (k, v)) in pairs(&set).into_iter().enumerate() {
                    p.push((format!("Tags.member.{}.Key", i + 1), k));
                    p.push((format!("Tags.member.{}.Value", i + 1), v));
                }
                query(ctx, "sns", "2010-03-31", "TagResource", p).await?;
            }
            if !gone.is_empty() {
                let mut p = vec![("ResourceArn".to_string(), t.clone())];
                p.extend(
                    gone.iter().enumerate().map(|(i, k)| (format!("TagKeys.member.{}", i + 1), k.clone())),
                );
                query(ctx, "sns", "2010-03-31", "UntagResource", p).await?;
            }
        }
        "aws:lambda:Function" => {
            let path = format!("/2017-03-31/tags/{}", uri_encode(&t));
            if !set.is_empty() {
                aws.rest("lambda", Method::POST, &path, Some(json!({"Tags": set}))).await?;
            }
            if !gone.is_empty() {
                let q: Vec<(&str, &str)> = gone.iter().map(|k| ("tagKeys", k.as_str())).collect();
                aws.rest_query("lambda", Method::DELETE, &path, &q, None).await?;
            }
        }
        "aws:apigatewayv2:Api" => {
            let path = format!("/v2/tags/{}", uri_encode(&t));
            if !set.is_empty() {
                aws.rest("apigateway", Method::POST, &path, Some(json!({"tags": set}))).await?;
            }
            if !gone.is_empty() {
                let q: Vec<(&str, &str)> = gone.iter().map(|k| ("tagKeys", k.as_str())).collect();
                aws.rest_query("apigateway", Method::DELETE, &path, &q, None).await?;
            }
        }
        "aws:logs:LogGroup" => {
            if !set.is_empty() {
                logs(ctx, "TagResource", json!({"resourceArn": t, "tags": set})).await?;
            }
            if !gone.is_empty() {
                logs(ctx, "UntagResource", json!({"resourceArn": t, "tagKeys": gone})).await?;
            }
        }
        "aws:sqs:Queue" => {
            if !set.is_empty() {
                aws.json("sqs", "1.0", "AmazonSQS.TagQueue", json!({"QueueUrl": t, "Tags": set})).await?;
            }
            if !gone.is_empty() {
                aws.json("sqs", "1.0", "AmazonSQS.UntagQueue", json!({"QueueUrl": t, "TagKeys": gone}))
                    .await?;
            }
        }
        "aws:dynamodb:Table" => {
            let list: Vec<Value> =
                pairs(&set).into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
            if !set.is_empty() {
                ddb(ctx, "TagResource", json!({"ResourceArn": t, "Tags": list})).await?;
            }
            if !gone.is_empty() {
                ddb(ctx, "UntagResource", json!({"ResourceArn": t, "TagKeys": gone})).await?;
            }
        }
        "aws:s3:Bucket" => {
            // S3 replaces the whole tag set.
            let path = format!("/{}", uri_encode(&t));
            if new.is_empty() {
                let mut req = Request::new("s3", Method::DELETE, path);
                req.query = vec![("tagging".into(), String::new())];
                aws.send(req).await?;
            } else {
                let tags: String = pairs(new)
                    .iter()
                    .map(|(k, v)| {
                        format!("<Tag><Key>{}</Key><Value>{}</Value></Tag>", xml::escape(k), xml::escape(v))
                    })
                    .collect();
                let body = format!(
                    r#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>{tags}</TagSet></Tagging>"#
                );
                let mut req = Request::new("s3", Method::PUT, path);
                req.query = vec![("tagging".into(), String::new())];
                // S3 wants an integrity checksum on PutBucketTagging.
                use base64::Engine;
                use sha2::Digest;
                let sum =
                    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()));
                req.headers.push(("content-type".into(), "application/xml".into()));
                req.headers.push(("x-amz-sdk-checksum-algorithm".into(), "SHA256".into()));
                req.headers.push(("x-amz-checksum-sha256".into(), sum));
                req.body = body.into_bytes();
                aws.send(req).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The tags the resource has now.
pub async fn read(ctx: &Ctx, token: &str, id: &str, outputs: &Value) -> Result<Map<String, Value>> {
    let t = target(ctx, token, id, outputs);
    let aws = &ctx.aws;
    let from_pairs = |xml: &str, block: &str| -> Map<String, Value> {
        xml::blocks(xml, block)
            .into_iter()
            .filter_map(|b| {
                Some((xml::tag(b, "Key")?, Value::String(xml::tag(b, "Value").unwrap_or_default())))
            })
            .collect()
    };
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    Ok(match token {
        "aws:iam:Role" => {
            let mut all = Map::new();
            let mut marker: Option<String> = None;
            loop {
                let mut p = vec![("RoleName".to_string(), t.clone())];
                if let Some(m) = &marker {
                    p.push(("Marker".into(), m.clone()));
                }
                let x = query(ctx, "iam", "2010-05-08", "ListRoleTags", p).await?;
                all.extend(from_pairs(&x, "member"));
                match (xml::tag(&x, "IsTruncated").as_deref(), xml::tag(&x, "Marker")) {
                    (Some("true"), Some(m)) if marker.as_ref() != Some(&m) => marker = Some(m),
                    _ => break all,
                }
            }
        }
        "aws:sns:Topic" => {
            let x = query(ctx, "sns", "2010-03-31", "ListTagsForResource", vec![("ResourceArn".into(), t)])
                .await?;
            from_pairs(&x, "member")
        }
        "aws:lambda:Function" => obj(&aws
            .rest("lambda", Method::GET, &format!("/2017-03-31/tags/{}", uri_encode(&t)), None)
            .await?["Tags"]),
        "aws:apigatewayv2:Api" => obj(&aws
            .rest("apigateway", Method::GET, &format!("/v2/tags/{}", uri_encode(&t)), None)
            .await?["tags"]),
        "aws:logs:LogGroup" => {
            obj(&logs(ctx, "ListTagsForResource", json!({"resourceArn": t})).await?["tags"])
        }
        "aws:sqs:Queue" => {
            obj(&aws.json("sqs", "1.0", "AmazonSQS.ListQueueTags", json!({"QueueUrl": t})).await?["Tags"])
        }
        "aws:dynamodb:Table" => {
            let mut all = Map::new();
            let mut token_: Option<String> = None;
            loop {
                let mut body = json!({"ResourceArn": t});
                if let Some(n) = &token_ {
                    body["NextToken"] = json!(n);
                }
                let v = ddb(ctx, "ListTagsOfResource", body).await?;
                for tag in v["Tags"].as_array().into_iter().flatten() {
                    if let Some(k) = tag["Key"].as_str() {
                        all.insert(k.to_string(), tag["Value"].clone());
                    }
                }
                match v["NextToken"].as_str() {
                    Some(n) if token_.as_deref() != Some(n) => token_ = Some(n.to_string()),
                    _ => break all,
                }
            }
        }
        "aws:s3:Bucket" => {
            let mut req = Request::new("s3", Method::GET, format!("/{}", uri_encode(&t)));
            req.query = vec![("tagging".into(), String::new())];
            match aws.send(req).await {
                Ok(r) => from_pairs(&r.text(), "Tag"),
                Err(e) if e.code() == Some("NoSuchTagSet") => Map::new(),
                Err(e) => return Err(e),
            }
        }
        _ => Map::new(),
    })
}

async fn query(
    ctx: &Ctx,
    service: &'static str,
    version: &str,
    action: &str,
    p: Vec<(String, String)>,
) -> Result<String> {
    let params: Vec<(&str, String)> = p.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    ctx.aws.query(service, version, action, &params).await
}

async fn logs(ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    ctx.aws.json("logs", "1.1", &format!("Logs_20140328.{op}"), body).await
}

async fn ddb(ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    ctx.aws.json("dynamodb", "1.0", &format!("DynamoDB_20120810.{op}"), body).await
}
