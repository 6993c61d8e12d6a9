//! DynamoDB's JSON 1.0 protocol (`X-Amz-Target: DynamoDB_20120810.<Operation>`,
//! `application/x-amz-json-1.0`) over the tables of [`crate::tables`], as boto3, the AWS CLI
//! and the AWS SDKs speak it.
//!
//! Operations: CreateTable, DeleteTable, DescribeTable, ListTables, PutItem, GetItem,
//! DeleteItem, UpdateItem, Query, Scan, BatchGetItem, BatchWriteItem, TransactWriteItems,
//! TransactGetItems. Requests use expressions (`KeyConditionExpression`, `FilterExpression`,
//! `ConditionExpression`, `UpdateExpression`, `ProjectionExpression`); the legacy parameters
//! (`Expected`, `AttributesToGet`, `KeyConditions`, `AttributeUpdates`, ...) are refused with
//! a ValidationException that says which expression to use. Errors carry DynamoDB's
//! `__type` (`com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException`) and message.

use std::collections::{HashMap, HashSet};

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::{AwsContext, AwsRequest, set_header};
use crate::http::{self, Resp};
use crate::tables::expr::{self, Cmp, Cond, Operand, Path, Placeholders};
use crate::tables::value::{self, AV, Item};
use crate::tables::{DdbError, KeyAttr, ReadRange, TableDef, TableSpec, Tables, WriteOp};

pub const NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810";
const MAX_PAGE: usize = 1024 * 1024;

/// Renders an error as DynamoDB does.
pub fn error(e: &DdbError, rid: &str) -> Resp {
    let status = if e.code == "InternalServerError" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut body = json!({"__type": format!("{NAMESPACE}#{}", e.code), "message": e.message});
    if let Some(r) = &e.reasons {
        body["CancellationReasons"] = json!(r);
        body["Message"] = json!(e.message);
    }
    if e.code == "ConditionalCheckFailedException"
        && let Some(i) = &e.item
    {
        body["Item"] = value::item_to_json(i);
    }
    let mut r = http::response(status, "application/x-amz-json-1.0", body.to_string());
    set_header(&mut r, "x-amzn-requestid", rid);
    r
}

/// Answers one DynamoDB request.
pub async fn handle(ctx: &AwsContext, req: &AwsRequest) -> Resp {
    let rid = &req.request_id;
    let Some(op) = req.header("x-amz-target").and_then(|t| t.strip_prefix("DynamoDB_20120810.")) else {
        return error(
            &DdbError::new("UnknownOperationException", "X-Amz-Target must be DynamoDB_20120810.<Operation>"),
            rid,
        );
    };
    let input: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(&DdbError::new("SerializationException", "the body is not a JSON object"), rid),
    };
    match dispatch(&ctx.tables, op, &input).await {
        Ok(v) => {
            let mut r = http::response(StatusCode::OK, "application/x-amz-json-1.0", v);
            set_header(&mut r, "x-amzn-requestid", rid);
            r
        }
        Err(e) => error(&e, rid),
    }
}

type R<T> = Result<T, DdbError>;

fn bad(m: impl Into<String>) -> DdbError {
    DdbError::validation(m)
}

/// The answer's body. GetItem, Query and Scan write theirs directly: their items are copied
/// as stored, not rebuilt as `Value`s.
async fn dispatch(t: &Tables, op: &str, v: &Value) -> R<String> {
    match op {
        "GetItem" | "Query" | "Scan" => {
            refuse_legacy(v)?;
            match op {
                "GetItem" => get_item(t, v),
                "Query" => query(t, v),
                _ => scan(t, v),
            }
        }
        _ => dispatch_json(t, op, v).await.map(|v| v.to_string()),
    }
}

fn refuse_legacy(v: &Value) -> R<()> {
    for legacy in
        ["Expected", "AttributesToGet", "KeyConditions", "QueryFilter", "ScanFilter", "AttributeUpdates"]
    {
        if !v[legacy].is_null() {
            return Err(bad(format!(
                "the local cloud supports expressions only: use {} instead of the legacy parameter {legacy}",
                match legacy {
                    "Expected" => "ConditionExpression",
                    "AttributesToGet" => "ProjectionExpression",
                    "KeyConditions" => "KeyConditionExpression",
                    "AttributeUpdates" => "UpdateExpression",
                    _ => "FilterExpression",
                }
            )));
        }
    }
    Ok(())
}

async fn dispatch_json(t: &Tables, op: &str, v: &Value) -> R<Value> {
    refuse_legacy(v)?;
    match op {
        "CreateTable" => create_table(t, v).await,
        "DeleteTable" => {
            let d = t.delete_table(table_name(v)?).await?;
            let mut desc = describe(t, &d, false);
            desc["TableStatus"] = json!("DELETING");
            Ok(json!({"TableDescription": desc}))
        }
        "DescribeTable" => Ok(json!({"Table": describe(t, &*t.table(table_name(v)?)?, true)})),
        "ListTables" => list_tables(t, v),
        "PutItem" => put_item(t, v).await,
        "DeleteItem" => delete_item(t, v).await,
        "UpdateItem" => update_item(t, v).await,
        "BatchGetItem" => batch_get(t, v),
        "BatchWriteItem" => batch_write(t, v).await,
        "TransactWriteItems" => transact_write(t, v).await,
        "TransactGetItems" => transact_get(t, v),
        "DescribeTimeToLive" => {
            t.table(table_name(v)?)?;
            Ok(json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}))
        }
        "DescribeContinuousBackups" => {
            t.table(table_name(v)?)?;
            Ok(
                json!({"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "DISABLED", "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}}),
            )
        }
        other => Err(DdbError::new(
            "UnknownOperationException",
            format!("the local cloud does not serve DynamoDB operation `{other}`"),
        )),
    }
}

fn table_name(v: &Value) -> R<&str> {
    match &v["TableName"] {
        Value::String(s) => {
            // An ARN names the table too.
            let s = crate::tables::stream::table_name(s);
            crate::tables::valid_table_name(s).map_err(bad)?;
            Ok(s)
        }
        _ => Err(bad(
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
        )),
    }
}

fn consumed(v: &Value, table: &str) -> Option<Value> {
    match v["ReturnConsumedCapacity"].as_str() {
        Some("TOTAL") | Some("INDEXES") => Some(json!({"TableName": table, "CapacityUnits": 1.0})),
        _ => None,
    }
}

// ---- tables ----

fn key_type_of(attrs: &Value, name: &str) -> R<String> {
    attrs
        .as_array()
        .and_then(|a| a.iter().find(|d| d["AttributeName"] == name))
        .and_then(|d| d["AttributeType"].as_str())
        .map(str::to_string)
        .ok_or_else(|| bad(format!("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: {attrs}")))
}

fn key_schema(schema: &Value, attrs: &Value) -> R<(KeyAttr, Option<KeyAttr>)> {
    let list = schema.as_array().ok_or_else(|| bad("KeySchema is required"))?;
    let mut hash = None;
    let mut range = None;
    for k in list {
        let name = k["AttributeName"].as_str().ok_or_else(|| bad("KeySchema entries need AttributeName"))?;
        let attr = KeyAttr { name: name.into(), type_: key_type_of(attrs, name)? };
        match k["KeyType"].as_str() {
            Some("HASH") => hash = Some(attr),
            Some("RANGE") => range = Some(attr),
            _ => return Err(bad("KeyType must be HASH or RANGE")),
        }
    }
    Ok((
        hash.ok_or_else(|| {
            bad("No Hash Key specified in schema.  All Dynamo DB tables must have exactly one hash key")
        })?,
        range,
    ))
}

async fn create_table(t: &Tables, v: &Value) -> R<Value> {
    let name = table_name(v)?;
    let attrs = &v["AttributeDefinitions"];
    let (hash_key, range_key) = key_schema(&v["KeySchema"], attrs)?;
    let mut indexes = Vec::new();
    for g in v["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let (h, r) = key_schema(&g["KeySchema"], attrs)?;
        let p = g["Projection"]["ProjectionType"].as_str().unwrap_or("ALL");
        if p != "ALL" {
            return Err(bad(format!(
                "the local cloud serves indexes with ProjectionType ALL only (got {p})"
            )));
        }
        indexes.push(crate::tables::IndexSpec {
            name: g["IndexName"].as_str().unwrap_or_default().into(),
            hash_key: h,
            range_key: r,
        });
    }
    if v["LocalSecondaryIndexes"].is_array() {
        return Err(bad(
            "the local cloud does not serve local secondary indexes; use a global secondary index",
        ));
    }
    let def = t.put_table(name, TableSpec { hash_key, range_key, indexes }, true).await?;
    Ok(json!({"TableDescription": describe(t, &def, false)}))
}

fn key_schema_json(h: &KeyAttr, r: &Option<KeyAttr>) -> Value {
    let mut v = vec![json!({"AttributeName": h.name, "KeyType": "HASH"})];
    if let Some(r) = r {
        v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    json!(v)
}

fn describe(t: &Tables, d: &TableDef, count: bool) -> Value {
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut add = |k: &KeyAttr| {
        if !attrs.iter().any(|(n, _)| *n == k.name) {
            attrs.push((k.name.clone(), k.type_.clone()));
        }
    };
    add(&d.spec.hash_key);
    if let Some(r) = &d.spec.range_key {
        add(r);
    }
    for i in &d.spec.indexes {
        add(&i.hash_key);
        if let Some(r) = &i.range_key {
            add(r);
        }
    }
    let throughput = json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0});
    let items = if count { t.item_count(d) } else { 0 };
    let mut out = json!({
        "TableName": d.name,
        "TableArn": d.arn(),
        "TableId": crate::trigger::uuid_of("table", &format!("{}/{}", d.name, d.id)),
        "TableStatus": "ACTIVE",
        "CreationDateTime": d.created_ms as f64 / 1000.0,
        "KeySchema": key_schema_json(&d.spec.hash_key, &d.spec.range_key),
        "AttributeDefinitions": attrs.iter().map(|(n, t)| json!({"AttributeName": n, "AttributeType": t})).collect::<Vec<_>>(),
        "ItemCount": items,
        "TableSizeBytes": 0,
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": d.created_ms as f64 / 1000.0},
        "ProvisionedThroughput": throughput,
        "DeletionProtectionEnabled": false,
    });
    if !d.spec.indexes.is_empty() {
        out["GlobalSecondaryIndexes"] = d
            .spec
            .indexes
            .iter()
            .map(|i| {
                json!({
                    "IndexName": i.name,
                    "KeySchema": key_schema_json(&i.hash_key, &i.range_key),
                    "Projection": {"ProjectionType": "ALL"},
                    "IndexStatus": "ACTIVE",
                    "IndexArn": format!("{}/index/{}", d.arn(), i.name),
                    "ItemCount": 0,
                    "IndexSizeBytes": 0,
                    "ProvisionedThroughput": throughput,
                })
            })
            .collect();
    }
    if d.stream {
        out["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"});
        out["LatestStreamArn"] = json!(d.stream_arn());
        out["LatestStreamLabel"] = json!(d.stream_arn().rsplit('/').next().unwrap_or_default());
    }
    out
}

fn list_tables(t: &Tables, v: &Value) -> R<Value> {
    let limit = v["Limit"].as_u64().unwrap_or(100) as usize;
    if !(1..=100).contains(&limit) {
        return Err(bad(
            "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100",
        ));
    }
    let after = v["ExclusiveStartTableName"].as_str().unwrap_or("");
    let names: Vec<String> = t.names().into_iter().filter(|n| n.as_str() > after).collect();
    let page: Vec<&String> = names.iter().take(limit).collect();
    let mut out = json!({"TableNames": page});
    if names.len() > limit {
        out["LastEvaluatedTableName"] = json!(page.last());
    }
    Ok(out)
}

// ---- requests ----

/// The placeholders of a request (or of one transaction entry).
struct Ph {
    names: HashMap<String, String>,
    values: HashMap<String, AV>,
}

fn placeholders(v: &Value) -> R<Ph> {
    let mut names = HashMap::new();
    if let Some(m) = v["ExpressionAttributeNames"].as_object() {
        for (k, n) in m {
            names.insert(
                k.clone(),
                n.as_str().ok_or_else(|| bad("ExpressionAttributeNames values must be strings"))?.to_string(),
            );
        }
    }
    let mut values = HashMap::new();
    if let Some(m) = v["ExpressionAttributeValues"].as_object() {
        for (k, x) in m {
            let av = AV::from_json(x).map_err(|e| {
                bad(format!("ExpressionAttributeValues contains invalid value: {e} for key {k}"))
            })?;
            values.insert(k.clone(), av);
        }
    }
    if v["ExpressionAttributeValues"].as_object().is_some_and(|m| m.is_empty()) {
        return Err(bad("ExpressionAttributeValues must not be empty"));
    }
    if v["ExpressionAttributeNames"].as_object().is_some_and(|m| m.is_empty()) {
        return Err(bad("ExpressionAttributeNames must not be empty"));
    }
    Ok(Ph { names, values })
}

fn item_param(v: &Value, name: &str) -> R<Item> {
    match &v[name] {
        Value::Null => Err(bad(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))),
        x => value::item_from_json(x).map_err(bad),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn opt_str<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v[name].as_str()
}

/// Parsed expressions of one write.
fn parse_cond(v: &Value, ph: &mut Placeholders) -> R<Option<Cond>> {
    opt_str(v, "ConditionExpression")
        .map(|s| expr::parse_condition("ConditionExpression", s, ph).map_err(bad))
        .transpose()
}

fn parse_proj(v: &Value, ph: &mut Placeholders) -> R<Option<Vec<Path>>> {
    opt_str(v, "ProjectionExpression").map(|s| expr::parse_projection(s, ph).map_err(bad)).transpose()
}

fn return_values(v: &Value, allowed: &[&str], op: &str) -> R<String> {
    let rv = v["ReturnValues"].as_str().unwrap_or("NONE").to_string();
    const ALL: [&str; 5] = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];
    if !ALL.contains(&rv.as_str()) {
        return Err(bad(format!(
            "1 validation error detected: Value '{rv}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
        )));
    }
    if !allowed.contains(&rv.as_str()) {
        return Err(bad(format!("ReturnValues can only be ALL_OLD or NONE for {op}")));
    }
    Ok(rv)
}

fn with_old_on_fail(v: &Value, e: DdbError) -> DdbError {
    let mut e = e;
    if v["ReturnValuesOnConditionCheckFailure"].as_str() != Some("ALL_OLD") {
        e.item = None;
    }
    e
}

async fn put_item(t: &Tables, v: &Value) -> R<Value> {
    let name = table_name(v)?;
    t.table(name)?;
    let item = item_param(v, "Item")?;
    let rv = return_values(v, &["NONE", "ALL_OLD"], "PutItem")?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let cond = parse_cond(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let ch = t.write_one(name, WriteOp::Put { item, cond }).await.map_err(|e| with_old_on_fail(v, e))?;
    let mut out = json!({});
    if rv == "ALL_OLD"
        && let Some(o) = &ch.old
    {
        out["Attributes"] = value::item_to_json(o);
    }
    if let Some(c) = consumed(v, name) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

fn get_item(t: &Tables, v: &Value) -> R<String> {
    let name = table_name(v)?;
    let def = t.table(name)?;
    let key = item_param(v, "Key")?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let proj = parse_proj(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let mut out = json!({});
    if let Some(c) = consumed(v, name) {
        out["ConsumedCapacity"] = c;
    }
    let item = match &proj {
        // Without a projection, the item's JSON as stored.
        None => t.get_json(&def, &key)?,
        Some(paths) => t
            .get(&def, &key)?
            .map(|item| value::item_to_json(&expr::project(&item, paths)).to_string().into_bytes()),
    };
    Ok(match item {
        Some(json) => with_member(&out, "Item", &json),
        None => out.to_string(),
    })
}

/// `out` (an object) with member `name` set to the JSON `json`, written first.
fn with_member(out: &Value, name: &str, json: &[u8]) -> String {
    let rest = out.to_string();
    let mut s = String::with_capacity(json.len() + rest.len() + name.len() + 8);
    s.push_str("{\"");
    s.push_str(name);
    s.push_str("\":");
    // Stored items are JSON written by serde_json: UTF-8.
    s.push_str(std::str::from_utf8(json).unwrap_or("null"));
    if rest != "{}" {
        s.push(',');
        s.push_str(&rest[1..]);
    } else {
        s.push('}');
    }
    s
}

async fn delete_item(t: &Tables, v: &Value) -> R<Value> {
    let name = table_name(v)?;
    t.table(name)?;
    let key = item_param(v, "Key")?;
    let rv = return_values(v, &["NONE", "ALL_OLD"], "DeleteItem")?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let cond = parse_cond(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let ch = t.write_one(name, WriteOp::Delete { key, cond }).await.map_err(|e| with_old_on_fail(v, e))?;
    let mut out = json!({});
    if rv == "ALL_OLD"
        && let Some(o) = &ch.old
    {
        out["Attributes"] = value::item_to_json(o);
    }
    if let Some(c) = consumed(v, name) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

async fn update_item(t: &Tables, v: &Value) -> R<Value> {
    let name = table_name(v)?;
    t.table(name)?;
    let key = item_param(v, "Key")?;
    let rv = return_values(v, &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"], "UpdateItem")?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let update = match opt_str(v, "UpdateExpression") {
        Some(s) => expr::parse_update(s, &mut p).map_err(bad)?,
        None => expr::Update::default(),
    };
    let cond = parse_cond(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let paths: Vec<Path> = update.paths().into_iter().cloned().collect();
    let ch =
        t.write_one(name, WriteOp::Update { key, update, cond }).await.map_err(|e| with_old_on_fail(v, e))?;
    let mut out = json!({});
    let attrs = match rv.as_str() {
        "ALL_OLD" => ch.old.clone(),
        "ALL_NEW" => ch.new.clone(),
        "UPDATED_OLD" => ch.old.as_ref().map(|o| expr::project(o, &paths)),
        "UPDATED_NEW" => ch.new.as_ref().map(|n| expr::project(n, &paths)),
        _ => None,
    };
    if let Some(a) = attrs
        && !a.is_empty()
    {
        out["Attributes"] = value::item_to_json(&a);
    }
    if let Some(c) = consumed(v, name) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

// ---- query and scan ----

/// A key condition, taken apart: the hash value and the range condition.
struct KeyCond {
    hash: AV,
    range: Option<Cond>,
}

fn key_condition(c: Cond, hash: &KeyAttr, range: &Option<KeyAttr>) -> R<KeyCond> {
    let mut parts = Vec::new();
    fn flat(c: Cond, out: &mut Vec<Cond>) -> R<()> {
        match c {
            Cond::And(a, b) => {
                flat(*a, out)?;
                flat(*b, out)
            }
            Cond::Or(..) => Err(bad("Invalid operator used in KeyConditionExpression: OR")),
            Cond::Not(..) => Err(bad("Invalid operator used in KeyConditionExpression: NOT")),
            Cond::In(..) => Err(bad("Invalid operator used in KeyConditionExpression: IN")),
            Cond::Cmp(Cmp::Ne, ..) => Err(bad("Unsupported operator in KeyConditionExpression: <>")),
            Cond::Exists(_) | Cond::NotExists(_) | Cond::Type(..) | Cond::Contains(..) => Err(bad(
                "Invalid KeyConditionExpression: Invalid function name; the key condition supports = < <= > >= BETWEEN begins_with",
            )),
            other => {
                out.push(other);
                Ok(())
            }
        }
    }
    flat(c, &mut parts)?;
    if parts.len() > 2 {
        return Err(bad("Conditions can be of length 1 or 2 only"));
    }
    let attr_of = |c: &Cond| -> Option<String> {
        let p = match c {
            Cond::Cmp(_, Operand::Path(p), _) | Cond::Cmp(_, _, Operand::Path(p)) => p,
            Cond::Between(Operand::Path(p), ..) | Cond::BeginsWith(Operand::Path(p), _) => p,
            _ => return None,
        };
        match p.as_slice() {
            [expr::Elem::Attr(a)] => Some(a.clone()),
            _ => None,
        }
    };
    let mut hash_v = None;
    let mut range_c = None;
    for c in parts {
        let a = attr_of(&c).ok_or_else(|| bad("Query key condition not supported"))?;
        if a == hash.name {
            match c {
                Cond::Cmp(Cmp::Eq, Operand::Path(_), Operand::Value(v))
                | Cond::Cmp(Cmp::Eq, Operand::Value(v), Operand::Path(_)) => {
                    if v.type_name() != hash.type_ {
                        return Err(bad(
                            "One or more parameter values were invalid: Condition parameter type does not match schema type",
                        ));
                    }
                    hash_v = Some(v)
                }
                _ => return Err(bad("Query key condition not supported")),
            }
        } else if range.as_ref().is_some_and(|r| r.name == a) {
            if range_c.is_some() {
                return Err(bad("KeyConditionExpressions must only contain one condition per key"));
            }
            range_c = Some(c);
        } else {
            return Err(bad(format!("Query condition missed key schema element: {}", hash.name)));
        }
    }
    let hash_v =
        hash_v.ok_or_else(|| bad(format!("Query condition missed key schema element: {}", hash.name)))?;
    Ok(KeyCond { hash: hash_v, range: range_c })
}

fn index_of(def: &TableDef, v: &Value) -> R<Option<usize>> {
    match v["IndexName"].as_str() {
        None => Ok(None),
        Some(n) => {
            let i = def
                .spec
                .indexes
                .iter()
                .position(|i| i.name == n)
                .ok_or_else(|| bad(format!("The table does not have the specified index: {n}")))?;
            if v["ConsistentRead"].as_bool() == Some(true) {
                return Err(bad("Consistent reads are not supported on global secondary indexes"));
            }
            Ok(Some(i))
        }
    }
}

/// The key attributes that make up a page's `LastEvaluatedKey`.
fn lek(def: &TableDef, ix: Option<usize>, item: &Item) -> Value {
    let mut k = crate::tables::key_of(def, item);
    if let Some(i) = ix {
        let s = &def.spec.indexes[i];
        for a in [Some(&s.hash_key), s.range_key.as_ref()].into_iter().flatten() {
            if let Some(v) = item.get(&a.name) {
                k.insert(a.name.clone(), v.clone());
            }
        }
    }
    value::item_to_json(&k)
}

struct Page {
    /// The items' JSON, separated by commas.
    items: Vec<u8>,
    count: usize,
    scanned: usize,
    last: Option<Value>,
}

/// Whether a read keeps an item (a key condition on the range key, a Scan's segment).
type Keep<'a> = dyn Fn(&Item) -> R<bool> + 'a;

struct ReadOpts<'a> {
    def: &'a TableDef,
    ix: Option<usize>,
    limit: Option<usize>,
    filter: Option<Cond>,
    proj: Option<Vec<Path>>,
    count_only: bool,
    /// Which items the key condition or segment keeps (`None`: all).
    keep: Option<&'a Keep<'a>>,
}

fn read_page(t: &Tables, range: ReadRange, o: &ReadOpts) -> R<Page> {
    let mut page = Page { items: Vec::new(), count: 0, scanned: 0, last: None };
    let mut bytes = 0usize;
    // Items are decoded only when something looks inside them.
    let decode = o.keep.is_some() || o.filter.is_some() || o.proj.is_some();
    t.read_raw(&range, &mut |_, raw| {
        let item = if decode { Some(raw.decode()?) } else { None };
        if let (Some(keep), Some(item)) = (o.keep, &item)
            && !keep(item)?
        {
            return Ok(true);
        }
        page.scanned += 1;
        bytes += raw.size;
        let pass = match (&o.filter, &item) {
            (Some(f), Some(item)) => expr::eval(f, item).map_err(bad)?,
            _ => true,
        };
        if pass {
            page.count += 1;
            if !o.count_only {
                if !page.items.is_empty() {
                    page.items.push(b',');
                }
                match (&o.proj, &item) {
                    (Some(p), Some(item)) => {
                        let shown = value::item_to_json(&expr::project(item, p));
                        serde_json::to_writer(&mut page.items, &shown).map_err(|e| bad(e.to_string()))?;
                    }
                    _ => page.items.extend_from_slice(raw.json),
                }
            }
        }
        if o.limit.is_some_and(|l| page.scanned >= l) || bytes >= MAX_PAGE {
            let last = match item {
                Some(i) => i,
                None => raw.decode()?,
            };
            page.last = Some(lek(o.def, o.ix, &last));
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(page)
}

fn limit_of(v: &Value) -> R<Option<usize>> {
    match &v["Limit"] {
        Value::Null => Ok(None),
        x => match x.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n as usize)),
            _ => Err(bad(format!(
                "1 validation error detected: Value '{x}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))),
        },
    }
}

fn select_count(v: &Value, has_proj: bool) -> R<bool> {
    match v["Select"].as_str() {
        None | Some("ALL_ATTRIBUTES") | Some("ALL_PROJECTED_ATTRIBUTES") => {
            if has_proj && v["Select"].as_str() == Some("ALL_ATTRIBUTES") {
                return Err(bad("Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES"));
            }
            Ok(false)
        }
        Some("COUNT") => {
            if has_proj {
                return Err(bad(
                    "Cannot specify the ProjectionExpression when choosing to get only the COUNT",
                ));
            }
            Ok(true)
        }
        Some("SPECIFIC_ATTRIBUTES") => Ok(false),
        Some(s) => Err(bad(format!(
            "1 validation error detected: Value '{s}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

fn page_json(p: Page, count_only: bool, v: &Value, table: &str) -> String {
    let mut out = json!({"Count": p.count, "ScannedCount": p.scanned});
    if let Some(l) = p.last {
        out["LastEvaluatedKey"] = l;
    }
    if let Some(c) = consumed(v, table) {
        out["ConsumedCapacity"] = c;
    }
    if count_only {
        return out.to_string();
    }
    let mut items = Vec::with_capacity(p.items.len() + 2);
    items.push(b'[');
    items.extend_from_slice(&p.items);
    items.push(b']');
    with_member(&out, "Items", &items)
}

fn start_after(def: &TableDef, ix: Option<usize>, v: &Value) -> R<Option<Vec<u8>>> {
    match &v["ExclusiveStartKey"] {
        Value::Null => Ok(None),
        x => {
            let k = value::item_from_json(x).map_err(bad)?;
            Ok(Some(Tables::store_key(def, ix, &k).map_err(|_| bad("The provided starting key is invalid: The provided key element does not match the schema"))?))
        }
    }
}

fn query(t: &Tables, v: &Value) -> R<String> {
    let name = table_name(v)?;
    let def = t.table(name)?;
    let ix = index_of(&def, v)?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let kc = opt_str(v, "KeyConditionExpression").ok_or_else(|| {
        bad("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
    })?;
    let kc = expr::parse_condition("KeyConditionExpression", kc, &mut p).map_err(bad)?;
    let filter = opt_str(v, "FilterExpression")
        .map(|s| expr::parse_condition("FilterExpression", s, &mut p))
        .transpose()
        .map_err(bad)?;
    let proj = parse_proj(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let (hk, rk) = match ix {
        Some(i) => (def.spec.indexes[i].hash_key.clone(), def.spec.indexes[i].range_key.clone()),
        None => (def.spec.hash_key.clone(), def.spec.range_key.clone()),
    };
    let kc = key_condition(kc, &hk, &rk)?;
    if let Some(f) = &filter {
        let mut keys = vec![hk.name.clone()];
        keys.extend(rk.iter().map(|r| r.name.clone()));
        if let Some(k) = mentions_key(f, &keys) {
            return Err(bad(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {k}"
            )));
        }
    }
    let count_only = select_count(v, proj.is_some())?;
    let forward = v["ScanIndexForward"].as_bool().unwrap_or(true);
    let (mut start, mut end) = Tables::partition_range(&def, ix, &kc.hash);
    if let Some(after) = start_after(&def, ix, v)? {
        if forward {
            start = after;
            start.push(0);
        } else {
            end = after;
        }
    }
    let range_cond = kc.range;
    let keep = |item: &Item| -> R<bool> {
        match &range_cond {
            Some(c) => expr::eval(c, item).map_err(bad),
            None => Ok(true),
        }
    };
    let keep: Option<&Keep<'_>> = if range_cond.is_some() { Some(&keep) } else { None };
    let o = ReadOpts { def: &def, ix, limit: limit_of(v)?, filter, proj, count_only, keep };
    let page = read_page(t, ReadRange { start, end, reverse: !forward, index: ix.is_some() }, &o)?;
    Ok(page_json(page, count_only, v, name))
}

fn mentions_key(c: &Cond, keys: &[String]) -> Option<String> {
    let op = |o: &Operand| -> Option<String> {
        match o {
            Operand::Path(p) | Operand::Size(p) => match &p[0] {
                expr::Elem::Attr(a) if keys.contains(a) => Some(a.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    let path = |p: &Path| op(&Operand::Path(p.clone()));
    match c {
        Cond::And(a, b) | Cond::Or(a, b) => mentions_key(a, keys).or_else(|| mentions_key(b, keys)),
        Cond::Not(a) => mentions_key(a, keys),
        Cond::Cmp(_, a, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => op(a).or_else(|| op(b)),
        Cond::Between(a, b, c) => op(a).or_else(|| op(b)).or_else(|| op(c)),
        Cond::In(a, l) => op(a).or_else(|| l.iter().find_map(op)),
        Cond::Exists(p) | Cond::NotExists(p) | Cond::Type(p, _) => path(p),
    }
}

/// Which of `total` segments an item's partition falls in (FNV-1a of the hash key's bytes).
fn segment_of(def: &TableDef, item: &Item, total: u64) -> u64 {
    let bytes = item.get(&def.spec.hash_key.name).map(value::key_bytes).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h % total
}

fn scan(t: &Tables, v: &Value) -> R<String> {
    let name = table_name(v)?;
    let def = t.table(name)?;
    let ix = index_of(&def, v)?;
    let ph = placeholders(v)?;
    let mut p = Placeholders::new(&ph.names, &ph.values);
    let filter = opt_str(v, "FilterExpression")
        .map(|s| expr::parse_condition("FilterExpression", s, &mut p))
        .transpose()
        .map_err(bad)?;
    let proj = parse_proj(v, &mut p)?;
    p.check_unused().map_err(bad)?;
    let count_only = select_count(v, proj.is_some())?;
    let segment = match (&v["Segment"], &v["TotalSegments"]) {
        (Value::Null, Value::Null) => None,
        (Value::Null, _) => {
            return Err(bad(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        }
        (_, Value::Null) => {
            return Err(bad(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
        (s, n) => {
            let (s, n) = (s.as_u64().unwrap_or(u64::MAX), n.as_u64().unwrap_or(0));
            if !(1..=1_000_000).contains(&n) {
                return Err(bad(
                    "1 validation error detected: Value at 'totalSegments' failed to satisfy constraint: Member must have value between 1 and 1000000",
                ));
            }
            if s >= n {
                return Err(bad(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {n}"
                )));
            }
            Some((s, n))
        }
    };
    let (mut start, end) = Tables::table_range(&def, ix);
    if let Some(after) = start_after(&def, ix, v)? {
        start = after;
        start.push(0);
    }
    let d2 = def.clone();
    let keep = move |item: &Item| -> R<bool> {
        Ok(match segment {
            Some((s, n)) => segment_of(&d2, item, n) == s,
            None => true,
        })
    };
    let keep: Option<&Keep<'_>> = if segment.is_some() { Some(&keep) } else { None };
    let o = ReadOpts { def: &def, ix, limit: limit_of(v)?, filter, proj, count_only, keep };
    let page = read_page(t, ReadRange { start, end, reverse: false, index: ix.is_some() }, &o)?;
    Ok(page_json(page, count_only, v, name))
}

// ---- batches and transactions ----

fn request_items(v: &Value) -> R<&Map<String, Value>> {
    match v["RequestItems"].as_object() {
        Some(m) if !m.is_empty() => Ok(m),
        _ => Err(bad(
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )),
    }
}

fn batch_get(t: &Tables, v: &Value) -> R<Value> {
    let req = request_items(v)?;
    let total: usize = req.values().map(|r| r["Keys"].as_array().map_or(0, Vec::len)).sum();
    if total > 100 {
        return Err(bad("Too many items requested for the BatchGetItem call"));
    }
    let mut responses = Map::new();
    for (table, r) in req {
        let def = t.table(crate::tables::stream::table_name(table))?;
        let ph = placeholders(r)?;
        let mut p = Placeholders::new(&ph.names, &ph.values);
        let proj = parse_proj(r, &mut p)?;
        p.check_unused().map_err(bad)?;
        let keys = r["Keys"].as_array().filter(|k| !k.is_empty()).ok_or_else(|| bad("1 validation error detected: Value at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1"))?;
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for k in keys {
            let key = value::item_from_json(k).map_err(bad)?;
            let sk = crate::tables::check_key(&def, &key)?;
            if !seen.insert(sk) {
                return Err(bad("Provided list of item keys contains duplicates"));
            }
            if let Some(item) = t.get(&def, &key)? {
                let item = match &proj {
                    Some(p) => expr::project(&item, p),
                    None => item,
                };
                items.push(value::item_to_json(&item));
            }
        }
        responses.insert(table.clone(), json!(items));
    }
    Ok(json!({"Responses": responses, "UnprocessedKeys": {}}))
}

async fn batch_write(t: &Tables, v: &Value) -> R<Value> {
    let req = request_items(v)?;
    let total: usize = req.values().map(|r| r.as_array().map_or(0, Vec::len)).sum();
    if total > 25 {
        return Err(bad(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
        ));
    }
    let mut ops = Vec::new();
    for (table, r) in req {
        let name = crate::tables::stream::table_name(table).to_string();
        let def = t.table(&name)?;
        let list = r.as_array().filter(|l| !l.is_empty()).ok_or_else(|| bad("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length greater than or equal to 1]"))?;
        let mut seen = HashSet::new();
        for w in list {
            let op = if let Some(put) = w.get("PutRequest") {
                let item = item_param(put, "Item")?;
                let key = crate::tables::key_of(&def, &item);
                (key, WriteOp::Put { item, cond: None })
            } else if let Some(del) = w.get("DeleteRequest") {
                let key = item_param(del, "Key")?;
                (key.clone(), WriteOp::Delete { key, cond: None })
            } else {
                return Err(bad("each request needs a PutRequest or a DeleteRequest"));
            };
            let sk = value::item_to_json(&op.0).to_string();
            if !seen.insert(sk) {
                return Err(bad("Provided list of item keys contains duplicates"));
            }
            ops.push((name.clone(), op.1));
        }
    }
    t.batch(ops).await?;
    Ok(json!({"UnprocessedItems": {}}))
}

async fn transact_write(t: &Tables, v: &Value) -> R<Value> {
    let list = v["TransactItems"].as_array().filter(|l| !l.is_empty()).ok_or_else(|| bad("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null"))?;
    if list.len() > 100 {
        return Err(bad(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
        ));
    }
    let mut ops = Vec::new();
    let mut seen = HashSet::new();
    for entry in list {
        let (kind, e) = ["ConditionCheck", "Put", "Delete", "Update"]
            .iter()
            .find_map(|k| entry.get(*k).map(|e| (*k, e)))
            .ok_or_else(|| {
                bad("each TransactItems entry needs one of ConditionCheck, Put, Delete, Update")
            })?;
        let name = table_name(e)?.to_string();
        let def = t.table(&name)?;
        let ph = placeholders(e)?;
        let mut p = Placeholders::new(&ph.names, &ph.values);
        let op = match kind {
            "Put" => {
                let item = item_param(e, "Item")?;
                WriteOp::Put { cond: parse_cond(e, &mut p)?, item }
            }
            "Delete" => WriteOp::Delete { key: item_param(e, "Key")?, cond: parse_cond(e, &mut p)? },
            "Update" => {
                let s =
                    opt_str(e, "UpdateExpression").ok_or_else(|| bad("Update needs an UpdateExpression"))?;
                let update = expr::parse_update(s, &mut p).map_err(bad)?;
                WriteOp::Update { key: item_param(e, "Key")?, update, cond: parse_cond(e, &mut p)? }
            }
            _ => {
                let c = parse_cond(e, &mut p)?
                    .ok_or_else(|| bad("ConditionCheck needs a ConditionExpression"))?;
                WriteOp::Check { key: item_param(e, "Key")?, cond: c }
            }
        };
        p.check_unused().map_err(bad)?;
        let key = match &op {
            WriteOp::Put { item, .. } => crate::tables::key_of(&def, item),
            WriteOp::Delete { key, .. } | WriteOp::Update { key, .. } | WriteOp::Check { key, .. } => {
                key.clone()
            }
        };
        if !seen.insert(format!("{name}\u{0}{}", value::item_to_json(&key))) {
            return Err(bad("Transaction request cannot include multiple operations on one item"));
        }
        let want_old = e["ReturnValuesOnConditionCheckFailure"].as_str() == Some("ALL_OLD");
        ops.push((name, op, want_old));
    }
    t.transact(ops).await?;
    Ok(json!({}))
}

fn transact_get(t: &Tables, v: &Value) -> R<Value> {
    let list = v["TransactItems"].as_array().filter(|l| !l.is_empty()).ok_or_else(|| bad("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null"))?;
    if list.len() > 100 {
        return Err(bad(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
        ));
    }
    // Every item is read in one read transaction: one consistent snapshot.
    let mut gets = Vec::new();
    let mut projections = Vec::new();
    for entry in list {
        let e = entry.get("Get").ok_or_else(|| bad("each TransactItems entry needs Get"))?;
        let def = t.table(table_name(e)?)?;
        let ph = placeholders(e)?;
        let mut p = Placeholders::new(&ph.names, &ph.values);
        projections.push(parse_proj(e, &mut p)?);
        p.check_unused().map_err(bad)?;
        gets.push((def, item_param(e, "Key")?));
    }
    let mut out = Vec::new();
    for (item, proj) in t.get_many(&gets)?.into_iter().zip(projections) {
        match item {
            Some(item) => {
                let item = match &proj {
                    Some(p) => expr::project(&item, p),
                    None => item,
                };
                out.push(json!({"Item": value::item_to_json(&item)}));
            }
            None => out.push(json!({})),
        }
    }
    Ok(json!({"Responses": out}))
}
