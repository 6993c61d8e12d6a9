//! DynamoDB (JSON 1.0 protocol): `aws:dynamodb:Table`.
//!
//! Tables are created and changed asynchronously (`CREATING`, `UPDATING`); [`wait_active`]
//! polls `DescribeTable` until `ACTIVE` so that the next step can use the table. A change of
//! key schema replaces the table, and since its name stays the same the replacement deletes
//! first (`identity` = name).
//!
//! Global secondary indexes (`global_secondary_indexes`, every attribute projected) are
//! added and removed in place with `UpdateTable`, one at a time as DynamoDB requires, waiting
//! for each to be `ACTIVE`; an index whose keys change is removed and added again. The stream
//! (`stream_enabled`, `stream_view_type`) is turned on and off in place; its ARN is the
//! `stream_arn` output (what a change trigger's event source mapping reads).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use skyform_protocol::CheckFailure;

use crate::http::{Error, Result};
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NameRule, Spec};
use crate::util::{Inputs, set};

async fn ddb(ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    ctx.aws.json("dynamodb", "1.0", &format!("DynamoDB_20120810.{op}"), body).await
}

async fn describe(ctx: &Ctx, name: &str) -> Result<Value> {
    Ok(ddb(ctx, "DescribeTable", json!({"TableName": name})).await?["Table"].clone())
}

async fn wait_active(ctx: &Ctx, name: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs);
    loop {
        let t = describe(ctx, name).await?;
        let status = t["TableStatus"].as_str().unwrap_or("ACTIVE");
        if status == "ACTIVE" {
            return Ok(t);
        }
        if Instant::now() > deadline {
            return Err(Error::Transport(format!("table {name} stayed {status}; raise `wait_timeout_secs`")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn outputs(t: &Value) -> Value {
    json!({"name": t["TableName"], "arn": t["TableArn"], "stream_arn": t["LatestStreamArn"]})
}

fn throughput(inputs: &Value) -> Value {
    json!({"ReadCapacityUnits": inputs.i64_of("read_capacity").unwrap_or(1), "WriteCapacityUnits": inputs.i64_of("write_capacity").unwrap_or(1)})
}

async fn set_ttl(ctx: &Ctx, name: &str, attribute: &str, enabled: bool) -> Result<()> {
    let spec = json!({"Enabled": enabled, "AttributeName": attribute});
    ddb(ctx, "UpdateTimeToLive", json!({"TableName": name, "TimeToLiveSpecification": spec})).await?;
    Ok(())
}

pub struct Table;

fn add_attr(attrs: &mut Vec<Value>, name: &Value, type_: &Value) {
    if !attrs.iter().any(|a| a["AttributeName"] == *name) {
        attrs.push(json!({"AttributeName": name, "AttributeType": type_}));
    }
}

/// An index as `CreateTable` / `UpdateTable` take it (every attribute projected).
fn gsi_body(g: &Value, table: &Value) -> Value {
    let mut keys = vec![json!({"AttributeName": g["hash_key"], "KeyType": "HASH"})];
    if g.has("range_key") {
        keys.push(json!({"AttributeName": g["range_key"], "KeyType": "RANGE"}));
    }
    let mut body =
        json!({"IndexName": g["name"], "KeySchema": keys, "Projection": {"ProjectionType": "ALL"}});
    if table.str_of("billing_mode") == Some("PROVISIONED") {
        body["ProvisionedThroughput"] = throughput(table);
    }
    body
}

/// Waits until the table and all its indexes are `ACTIVE`.
async fn wait_indexes(ctx: &Ctx, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs);
    loop {
        let t = wait_active(ctx, name).await?;
        let busy = t["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["IndexStatus"].as_str().is_some_and(|s| s != "ACTIVE"));
        if !busy {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Transport(format!(
                "the indexes of table {name} stayed busy; raise `wait_timeout_secs`"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Removes the indexes that are gone or changed, then adds the new ones, one `UpdateTable` each.
async fn update_indexes(ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<()> {
    let list = |v: &Value| v["global_secondary_indexes"].as_array().cloned().unwrap_or_default();
    let (old, new) = (list(olds), list(news));
    for g in old.iter().filter(|g| !new.contains(g)) {
        wait_indexes(ctx, id).await?;
        let upd = json!([{"Delete": {"IndexName": g["name"]}}]);
        ddb(ctx, "UpdateTable", json!({"TableName": id, "GlobalSecondaryIndexUpdates": upd})).await?;
    }
    for g in new.iter().filter(|g| !old.contains(g)) {
        wait_indexes(ctx, id).await?;
        // Every key attribute of the table and its indexes (moto replaces the definitions
        // with what is sent; DynamoDB accepts the full list).
        let mut attrs = Vec::new();
        add_attr(&mut attrs, &news["hash_key"], &news["hash_key_type"]);
        if news.has("range_key") {
            add_attr(&mut attrs, &news["range_key"], &news["range_key_type"]);
        }
        for x in &new {
            add_attr(&mut attrs, &x["hash_key"], &x["hash_key_type"]);
            if x.has("range_key") {
                add_attr(&mut attrs, &x["range_key"], &x["range_key_type"]);
            }
        }
        let upd = json!([{"Create": gsi_body(g, news)}]);
        ddb(
            ctx,
            "UpdateTable",
            json!({"TableName": id, "AttributeDefinitions": attrs, "GlobalSecondaryIndexUpdates": upd}),
        )
        .await?;
    }
    wait_indexes(ctx, id).await
}

impl Kind for Table {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:dynamodb:Table",
            description: "A DynamoDB table with a partition key and an optional sort key. Id: the table name.",
            properties: json!({
                "name": {"type": "string", "description": "The table name; generated when absent."},
                "hash_key": {"type": "string", "description": "The partition key attribute."},
                "hash_key_type": {"type": "string", "default": "S", "description": "`S`, `N` or `B`."},
                "range_key": {"type": "string", "description": "The sort key attribute, if any."},
                "range_key_type": {"type": "string", "description": "`S` (default when `range_key` is set), `N` or `B`."},
                "billing_mode": {"type": "string", "default": "PAY_PER_REQUEST", "description": "`PAY_PER_REQUEST` or `PROVISIONED`."},
                "read_capacity": {"type": "integer", "description": "Read capacity units (`PROVISIONED` only)."},
                "write_capacity": {"type": "integer", "description": "Write capacity units (`PROVISIONED` only)."},
                "ttl_attribute": {"type": "string", "description": "The attribute holding each item's expiry (epoch seconds), if any."},
                "global_secondary_indexes": {"type": "array", "description": "Indexes: `[{name, hash_key, hash_key_type, range_key?, range_key_type?}]`, all attributes projected."},
                "stream_enabled": {"type": "boolean", "description": "Whether the table has a change stream."},
                "stream_view_type": {"type": "string", "description": "What stream records hold: `NEW_AND_OLD_IMAGES` (default when enabled), `NEW_IMAGE`, `OLD_IMAGE` or `KEYS_ONLY`."},
            }),
            required: &["hash_key"],
            outputs: &["name", "arn", "stream_arn"],
            replace_on_changes: &["name", "hash_key", "hash_key_type", "range_key", "range_key_type"],
            identity: &["name"],
            name: Some(NameRule { prop: "name", max_len: 255, lowercase: false }),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        if inputs.contains_key("range_key") {
            inputs.entry("range_key_type").or_insert(json!("S"));
        } else if inputs.contains_key("range_key_type") {
            failures.push(CheckFailure {
                property: "range_key_type".into(),
                reason: "`range_key_type` needs a `range_key`".into(),
            });
        }
        for k in ["hash_key_type", "range_key_type"] {
            if let Some(t) = inputs.get(k).and_then(Value::as_str)
                && !["S", "N", "B", skyform_protocol::UNKNOWN].contains(&t)
            {
                failures.push(CheckFailure {
                    property: k.into(),
                    reason: format!("`{t}` is not a key type; use S, N or B"),
                });
            }
        }
        if let Some(Value::Array(list)) = inputs.get_mut("global_secondary_indexes") {
            let mut names = std::collections::HashSet::new();
            for (i, g) in list.iter_mut().enumerate() {
                let prop = format!("global_secondary_indexes[{i}]");
                let Some(m) = g.as_object_mut() else {
                    failures.push(CheckFailure {
                        property: prop,
                        reason: "expected {name, hash_key, ...}".into(),
                    });
                    continue;
                };
                let name = m.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                if name.len() < 3 || !names.insert(name.clone()) {
                    failures.push(CheckFailure {
                        property: format!("{prop}.name"),
                        reason: format!("index name `{name}` must be at least 3 characters and unique"),
                    });
                }
                if !m.get("hash_key").is_some_and(Value::is_string) {
                    failures.push(CheckFailure {
                        property: format!("{prop}.hash_key"),
                        reason: "`hash_key` is required".into(),
                    });
                }
                m.entry("hash_key_type").or_insert(json!("S"));
                if m.contains_key("range_key") {
                    m.entry("range_key_type").or_insert(json!("S"));
                }
                for k in ["hash_key_type", "range_key_type"] {
                    if let Some(t) = m.get(k).and_then(Value::as_str)
                        && !["S", "N", "B", skyform_protocol::UNKNOWN].contains(&t)
                    {
                        failures.push(CheckFailure {
                            property: format!("{prop}.{k}"),
                            reason: format!("`{t}` is not a key type; use S, N or B"),
                        });
                    }
                }
            }
        }
        match inputs.get("stream_enabled").and_then(Value::as_bool) {
            Some(true) => {
                inputs.entry("stream_view_type").or_insert(json!("NEW_AND_OLD_IMAGES"));
            }
            // An unknown `stream_enabled` (known after up) may turn out true: decide at apply.
            _ if inputs.get("stream_enabled") == Some(&json!(skyform_protocol::UNKNOWN)) => {}
            _ => {
                if inputs.contains_key("stream_view_type") {
                    failures.push(CheckFailure {
                        property: "stream_view_type".into(),
                        reason: "`stream_view_type` needs `stream_enabled = true`".into(),
                    });
                }
            }
        }
        if let Some(v) = inputs.get("stream_view_type").and_then(Value::as_str)
            && !["NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY", skyform_protocol::UNKNOWN]
                .contains(&v)
        {
            failures.push(CheckFailure {
                property: "stream_view_type".into(),
                reason: format!("`{v}` is not a stream view type; use NEW_AND_OLD_IMAGES, NEW_IMAGE, OLD_IMAGE or KEYS_ONLY"),
            });
        }
        match inputs.get("billing_mode").and_then(Value::as_str).filter(|m| *m != skyform_protocol::UNKNOWN) {
            Some("PROVISIONED") => {
                for k in ["read_capacity", "write_capacity"] {
                    if !inputs.contains_key(k) {
                        failures.push(CheckFailure {
                            property: k.into(),
                            reason: format!("`{k}` is required with PROVISIONED billing"),
                        });
                    }
                }
            }
            Some("PAY_PER_REQUEST") => {
                for k in ["read_capacity", "write_capacity"] {
                    if inputs.contains_key(k) {
                        failures.push(CheckFailure {
                            property: k.into(),
                            reason: format!("`{k}` needs `billing_mode = \"PROVISIONED\"`"),
                        });
                    }
                }
            }
            Some(other) => failures.push(CheckFailure {
                property: "billing_mode".into(),
                reason: format!("`{other}` is not a billing mode; use PAY_PER_REQUEST or PROVISIONED"),
            }),
            None => {}
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default();
        let mut attrs =
            vec![json!({"AttributeName": inputs["hash_key"], "AttributeType": inputs["hash_key_type"]})];
        let mut keys = vec![json!({"AttributeName": inputs["hash_key"], "KeyType": "HASH"})];
        if inputs.has("range_key") {
            attrs.push(
                json!({"AttributeName": inputs["range_key"], "AttributeType": inputs["range_key_type"]}),
            );
            keys.push(json!({"AttributeName": inputs["range_key"], "KeyType": "RANGE"}));
        }
        let gsis: Vec<Value> = inputs["global_secondary_indexes"].as_array().cloned().unwrap_or_default();
        for g in &gsis {
            add_attr(&mut attrs, &g["hash_key"], &g["hash_key_type"]);
            if g.has("range_key") {
                add_attr(&mut attrs, &g["range_key"], &g["range_key_type"]);
            }
        }
        let mut body = json!({"TableName": name, "AttributeDefinitions": attrs, "KeySchema": keys, "BillingMode": inputs["billing_mode"]});
        if inputs.str_of("billing_mode") == Some("PROVISIONED") {
            body["ProvisionedThroughput"] = throughput(inputs);
        }
        if !gsis.is_empty() {
            body["GlobalSecondaryIndexes"] = gsis.iter().map(|g| gsi_body(g, inputs)).collect();
        }
        if inputs.bool_of("stream_enabled") == Some(true) {
            body["StreamSpecification"] =
                json!({"StreamEnabled": true, "StreamViewType": inputs["stream_view_type"]});
        }
        ddb(ctx, "CreateTable", body).await?;
        let finish = async {
            let t = wait_active(ctx, name).await?;
            if let Some(attr) = inputs.str_of("ttl_attribute") {
                set_ttl(ctx, name, attr, true).await?;
            }
            Ok::<_, Error>(t)
        };
        match finish.await {
            Ok(t) => Ok(Created { id: name.to_string(), outputs: outputs(&t) }),
            Err(e) => {
                let _ = ddb(ctx, "DeleteTable", json!({"TableName": name})).await;
                Err(e)
            }
        }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let t = describe(ctx, id).await?;
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", t["TableName"].clone());
        let type_of = |attr: &Value| {
            t["AttributeDefinitions"]
                .as_array()
                .and_then(|a| a.iter().find(|d| d["AttributeName"] == *attr))
                .map(|d| d["AttributeType"].clone())
                .unwrap_or(Value::Null)
        };
        let key = |kind: &str| {
            t["KeySchema"]
                .as_array()
                .and_then(|a| a.iter().find(|k| k["KeyType"] == kind))
                .map(|k| k["AttributeName"].clone())
        };
        let hash = key("HASH").unwrap_or(Value::Null);
        set(&mut inputs, "hash_key_type", type_of(&hash));
        set(&mut inputs, "hash_key", hash);
        let range = key("RANGE").unwrap_or(Value::Null);
        set(&mut inputs, "range_key_type", if range.is_null() { Value::Null } else { type_of(&range) });
        set(&mut inputs, "range_key", range);
        let mode = t["BillingModeSummary"]["BillingMode"].as_str().unwrap_or("PROVISIONED");
        set(&mut inputs, "billing_mode", json!(mode));
        let provisioned = mode == "PROVISIONED";
        let pt = &t["ProvisionedThroughput"];
        set(
            &mut inputs,
            "read_capacity",
            if provisioned { pt["ReadCapacityUnits"].clone() } else { Value::Null },
        );
        set(
            &mut inputs,
            "write_capacity",
            if provisioned { pt["WriteCapacityUnits"].clone() } else { Value::Null },
        );
        let gsis: Vec<Value> = t["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let mut out = json!({"name": g["IndexName"]});
                for k in g["KeySchema"].as_array().into_iter().flatten() {
                    let (key, ty) = if k["KeyType"] == "HASH" {
                        ("hash_key", "hash_key_type")
                    } else {
                        ("range_key", "range_key_type")
                    };
                    out[key] = k["AttributeName"].clone();
                    out[ty] = type_of(&k["AttributeName"]);
                }
                out
            })
            .collect();
        set(&mut inputs, "global_secondary_indexes", if gsis.is_empty() { Value::Null } else { json!(gsis) });
        let stream = &t["StreamSpecification"];
        let on = stream["StreamEnabled"].as_bool() == Some(true);
        set(&mut inputs, "stream_enabled", if on { json!(true) } else { Value::Null });
        set(&mut inputs, "stream_view_type", if on { stream["StreamViewType"].clone() } else { Value::Null });
        let ttl = ddb(ctx, "DescribeTimeToLive", json!({"TableName": id})).await?;
        let d = &ttl["TimeToLiveDescription"];
        let enabled = matches!(d["TimeToLiveStatus"].as_str(), Some("ENABLED" | "ENABLING"));
        set(&mut inputs, "ttl_attribute", if enabled { d["AttributeName"].clone() } else { Value::Null });
        Ok(Some(Found { inputs, outputs: outputs(&t) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        let billing_changed =
            ["billing_mode", "read_capacity", "write_capacity"].iter().any(|k| olds.get(*k) != news.get(*k));
        if billing_changed {
            wait_active(ctx, id).await?;
            let mut body = json!({"TableName": id, "BillingMode": news["billing_mode"]});
            if news.str_of("billing_mode") == Some("PROVISIONED") {
                body["ProvisionedThroughput"] = throughput(news);
            }
            ddb(ctx, "UpdateTable", body).await?;
        }
        update_indexes(ctx, id, olds, news).await?;
        let stream = |v: &Value| (v.bool_of("stream_enabled") == Some(true), v["stream_view_type"].clone());
        if stream(olds) != stream(news) {
            if stream(olds).0 {
                wait_active(ctx, id).await?;
                ddb(
                    ctx,
                    "UpdateTable",
                    json!({"TableName": id, "StreamSpecification": {"StreamEnabled": false}}),
                )
                .await?;
            }
            if stream(news).0 {
                wait_active(ctx, id).await?;
                let spec = json!({"StreamEnabled": true, "StreamViewType": news["stream_view_type"]});
                ddb(ctx, "UpdateTable", json!({"TableName": id, "StreamSpecification": spec})).await?;
            }
        }
        if olds.get("ttl_attribute") != news.get("ttl_attribute") {
            if let Some(old) = olds.str_of("ttl_attribute") {
                set_ttl(ctx, id, old, false).await?;
            }
            if let Some(new) = news.str_of("ttl_attribute") {
                set_ttl(ctx, id, new, true).await?;
            }
        }
        Ok(outputs(&wait_active(ctx, id).await?))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        ddb(ctx, "DeleteTable", json!({"TableName": id})).await?;
        // Wait until it is really gone, so a delete-before-replace can reuse the name.
        let deadline = Instant::now() + Duration::from_secs(ctx.aws.settings.wait_timeout_secs);
        while Instant::now() < deadline {
            match describe(ctx, id).await {
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Err(Error::Transport(format!(
            "table {id} was still being deleted after {} s",
            ctx.aws.settings.wait_timeout_secs
        )))
    }
}
