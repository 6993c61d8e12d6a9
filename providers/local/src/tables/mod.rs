//! Tables (`local:Table`): items, global secondary indexes and change streams in one embedded
//! store, `.skyform/local/tables.redb`, served with DynamoDB's API by [`crate::aws::dynamodb`].
//!
//! **Why redb:** an item write touches several keys at once — the item, each index entry, the
//! change-stream record — and must be all-or-nothing and durable when acknowledged.
//! redb gives ACID transactions over copy-on-write B-trees with checksummed commits (a crash
//! leaves the last committed state, nothing to repair), ordered keys for Query's range reads,
//! MVCC reads that never wait for the writer, and it is pure Rust with no C toolchain. An
//! append-only log like the queues' would need our own indexes and compaction.
//!
//! **Group commit:** every change goes through one writer thread. It takes every request
//! queued while the previous group was committing, applies them one after the other in a
//! single write transaction (each sees the ones before it, so conditions are exact), commits
//! once, and only then answers them all. Reads use their own read transactions and see every
//! acknowledged write. An unconditional PutItem on a table without indexes or change records
//! is checked, then written without looking the old item up first (the write hands it back).
//!
//! **Durability:** `kill -9`-safe at once, on disk within a second. An `fsync` per group
//! would cap a client at a few hundred writes a second, so a group's transaction is committed
//! with redb's `Durability::None` after its effects are appended to the write-ahead log
//! ([`wal`], no `fsync`); a checkpoint about a second later (sooner when the log is big, and
//! when the daemon stops: [`Tables::checkpoint`]) commits with an `fsync` and empties the log.
//! An OS crash can lose about the last second. With `SKYFORM_LOCAL_SYNC=always`
//! ([`crate::durability`]) every group is committed with an `fsync` before its answers, and the
//! log is not written. Groups whose effects pass 8 MiB (dropping a big table) are committed
//! with an `fsync` rather than logged.
//!
//! Keys (redb tables `items`, `index`, `stream`), all prefixed with the table's numeric id
//! (a deleted-and-recreated table starts empty):
//!
//! | table | key | value |
//! |---|---|---|
//! | `items` | id, escaped hash key bytes, escaped range key bytes | the item: a tag byte, its size (u32), its DynamoDB JSON, answered as stored ([`RawItem`]) |
//! | `index` | id, index number, escaped index hash, escaped index range, item key | item key |
//! | `stream` | id, sequence number (u64 big-endian) | the change record (JSON) |
//! | `meta` | `table:NAME`, `seq`, `next_id`, `cursor:TRIGGER`, `wal_seq` | definitions, counters, trigger positions, the last log record applied |
//!
//! Key values are encoded so that byte order is DynamoDB's order ([`value::key_bytes`]).
//! Change records are written in the same transaction as the change, so a stream never misses
//! or invents a change; they are written only while the table has a change trigger
//! ([`stream`]), and removed once every trigger has delivered them.

pub mod control;
pub mod expr;
pub mod stream;
pub mod value;
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use expr::{Cond, Update};
use value::{AV, Item};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");
const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index");
const STREAM: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stream");

/// DynamoDB's item size limit.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// A key attribute: its name and type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    /// `S`, `N` or `B`.
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub name: String,
    pub hash_key: KeyAttr,
    #[serde(default)]
    pub range_key: Option<KeyAttr>,
}

/// A table's schema, as the control API and `CreateTable` take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub hash_key: KeyAttr,
    #[serde(default)]
    pub range_key: Option<KeyAttr>,
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
}

/// A table as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    pub id: u32,
    pub spec: TableSpec,
    pub created_ms: u64,
    /// Change records are written (a change trigger exists).
    #[serde(default)]
    pub stream: bool,
}

impl TableDef {
    pub fn arn(&self) -> String {
        crate::aws::AwsContext::arn("dynamodb", &format!("table/{}", self.name))
    }
    /// The stream's ARN, labelled with the table's creation time: it stays the same while the
    /// table exists, whether or not a trigger reads it (an output, so it must not change).
    pub fn stream_arn(&self) -> String {
        let ms = self.created_ms;
        let ts = jiff::Timestamp::from_millisecond(ms as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        format!("{}/stream/{}", self.arn(), ts.strftime("%Y-%m-%dT%H:%M:%S%.3f"))
    }
    /// The key attributes of the table (and of every index).
    pub fn key_names(&self) -> Vec<&str> {
        let mut v = vec![self.spec.hash_key.name.as_str()];
        if let Some(r) = &self.spec.range_key {
            v.push(&r.name);
        }
        v
    }
}

/// An error as DynamoDB answers it.
#[derive(Debug, Clone)]
pub struct DdbError {
    pub code: &'static str,
    pub message: String,
    /// TransactionCanceledException's reasons.
    pub reasons: Option<Vec<Value>>,
    /// The item, for `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub item: Option<Item>,
}

impl DdbError {
    pub fn new(code: &'static str, message: impl Into<String>) -> DdbError {
        DdbError { code, message: message.into(), reasons: None, item: None }
    }
    pub fn validation(message: impl Into<String>) -> DdbError {
        DdbError::new("ValidationException", message)
    }
    pub fn not_found() -> DdbError {
        DdbError::new("ResourceNotFoundException", "Requested resource not found")
    }
    pub fn conditional() -> DdbError {
        DdbError::new("ConditionalCheckFailedException", "The conditional request failed")
    }
    pub fn internal(message: impl Into<String>) -> DdbError {
        DdbError::new("InternalServerError", message)
    }
}

fn storage<E: std::fmt::Display>(e: E) -> DdbError {
    DdbError::internal(format!("table storage error: {e}"))
}

/// One change, as the writer applies it.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put { item: Item, cond: Option<Cond> },
    Delete { key: Item, cond: Option<Cond> },
    Update { key: Item, update: Update, cond: Option<Cond> },
    Check { key: Item, cond: Cond },
}

/// What a write did: the item before and after (`None`: absent).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub old: Option<Item>,
    pub new: Option<Item>,
}

struct Tx<'t> {
    meta: redb::Table<'t, &'static str, &'static [u8]>,
    items: redb::Table<'t, &'static [u8], &'static [u8]>,
    index: redb::Table<'t, &'static [u8], &'static [u8]>,
    stream: redb::Table<'t, &'static [u8], &'static [u8]>,
    /// Every write and delete made, for the write-ahead log ([`wal`]).
    fx: wal::Effects,
}

struct WriterState {
    next_seq: u64,
    next_id: u32,
    /// A storage error: the transaction is abandoned.
    poisoned: Option<String>,
    /// A checkpoint is asked for ([`Tables::checkpoint`]).
    checkpoint: bool,
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn for<'t> FnOnce(&mut Tx<'t>, &mut WriterState, &Shared) -> Reply + Send>;

struct Shared {
    defs: RwLock<BTreeMap<String, Arc<TableDef>>>,
}

/// The tables of a project.
pub struct Tables {
    db: Arc<Database>,
    shared: Arc<Shared>,
    writer: mpsc::Sender<Job>,
    /// Woken after every commit that wrote change records.
    pub changed: Arc<tokio::sync::Notify>,
}

fn seq_key(id: u32, seq: u64) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// DynamoDB's table name rule.
pub fn valid_table_name(name: &str) -> Result<(), String> {
    if name.len() < 3
        || name.len() > 255
        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    {
        return Err(format!(
            "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and be 3 to 255 characters long"
        ));
    }
    Ok(())
}

/// Checks a schema (key types, index names, one type per attribute).
pub fn check_spec_public(spec: &TableSpec) -> Result<(), String> {
    check_spec(spec)
}

fn check_spec(spec: &TableSpec) -> Result<(), String> {
    let key_ok = |k: &KeyAttr| -> Result<(), String> {
        if k.name.is_empty() {
            return Err("a key attribute's name is empty".into());
        }
        if !["S", "N", "B"].contains(&k.type_.as_str()) {
            return Err(format!(
                "Member must satisfy enum value set: [B, N, S] (key `{}` has type `{}`)",
                k.name, k.type_
            ));
        }
        Ok(())
    };
    key_ok(&spec.hash_key)?;
    if let Some(r) = &spec.range_key {
        key_ok(r)?;
        if r.name == spec.hash_key.name {
            return Err(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name".into()
            );
        }
    }
    let mut names = std::collections::HashSet::new();
    if spec.indexes.len() > 20 {
        return Err("at most 20 global secondary indexes".into());
    }
    for i in &spec.indexes {
        if !names.insert(&i.name) {
            return Err(format!("Duplicate index name: {}", i.name));
        }
        if i.name.len() < 3
            || !i.name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            return Err(format!("index name `{}` must be 3 to 255 characters of [a-zA-Z0-9_.-]", i.name));
        }
        key_ok(&i.hash_key)?;
        if let Some(r) = &i.range_key {
            key_ok(r)?;
        }
        // An attribute has one type across the table and its indexes.
        let all = [Some(&spec.hash_key), spec.range_key.as_ref(), Some(&i.hash_key), i.range_key.as_ref()];
        for a in all.iter().flatten() {
            for b in all.iter().flatten() {
                if a.name == b.name && a.type_ != b.type_ {
                    return Err(format!(
                        "attribute `{}` is declared with two types ({} and {})",
                        a.name, a.type_, b.type_
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The bytes of a key attribute value, or the error DynamoDB gives for `item`.
fn key_part(attr: &KeyAttr, item: &Item, what: KeyUse) -> Result<Option<Vec<u8>>, DdbError> {
    let v = match item.get(&attr.name) {
        Some(v) => v,
        None => {
            return match what {
                KeyUse::Index(_) => Ok(None),
                KeyUse::Item => Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attr.name
                ))),
                KeyUse::Key => {
                    Err(DdbError::validation("The provided key element does not match the schema"))
                }
            };
        }
    };
    if v.type_name() != attr.type_ {
        return Err(DdbError::validation(match what {
            KeyUse::Item => format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.type_,
                v.type_name()
            ),
            KeyUse::Key => "The provided key element does not match the schema".into(),
            KeyUse::Index(ix) => format!(
                "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {ix}",
                attr.name,
                attr.type_,
                v.type_name()
            ),
        }));
    }
    let bytes = value::key_bytes(v);
    if bytes.is_empty() && matches!(v, AV::S(_) | AV::B(_)) {
        return Err(DdbError::validation(match what {
            KeyUse::Index(ix) => format!(
                "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {ix}, IndexKey: {}",
                attr.name
            ),
            _ => format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {}",
                attr.name
            ),
        }));
    }
    Ok(Some(bytes))
}

#[derive(Clone, Copy)]
enum KeyUse<'a> {
    /// A whole item (PutItem).
    Item,
    /// A `Key` parameter.
    Key,
    Index(&'a str),
}

/// The store key of an item (or a `Key`).
fn item_key(def: &TableDef, item: &Item, what: KeyUse) -> Result<Vec<u8>, DdbError> {
    let mut k = def.id.to_be_bytes().to_vec();
    let h = key_part(&def.spec.hash_key, item, what)?.unwrap_or_default();
    value::escaped(&h, &mut k);
    if let Some(r) = &def.spec.range_key {
        let r = key_part(r, item, what)?.unwrap_or_default();
        value::escaped(&r, &mut k);
    }
    Ok(k)
}

/// A `Key` parameter: exactly the key attributes.
pub fn check_key(def: &TableDef, key: &Item) -> Result<Vec<u8>, DdbError> {
    if key.len() != def.key_names().len() || key.keys().any(|k| !def.key_names().contains(&k.as_str())) {
        return Err(DdbError::validation("The provided key element does not match the schema"));
    }
    item_key(def, key, KeyUse::Key)
}

/// The key attributes of an item.
pub fn key_of(def: &TableDef, item: &Item) -> Item {
    def.key_names().iter().filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone()))).collect()
}

fn index_prefix(def: &TableDef, ix: usize) -> Vec<u8> {
    let mut k = def.id.to_be_bytes().to_vec();
    k.push(ix as u8);
    k
}

/// The index entry key of an item, `None` when the item lacks the index's key (sparse).
fn index_key(def: &TableDef, ix: usize, item: &Item, pk: &[u8]) -> Result<Option<Vec<u8>>, DdbError> {
    let spec = &def.spec.indexes[ix];
    let mut k = index_prefix(def, ix);
    let Some(h) = key_part(&spec.hash_key, item, KeyUse::Index(&spec.name))? else { return Ok(None) };
    value::escaped(&h, &mut k);
    if let Some(r) = &spec.range_key {
        let Some(r) = key_part(r, item, KeyUse::Index(&spec.name))? else { return Ok(None) };
        value::escaped(&r, &mut k);
    }
    k.extend_from_slice(pk);
    Ok(Some(k))
}

fn validate_item(def: &TableDef, item: &Item) -> Result<Vec<u8>, DdbError> {
    let pk = item_key(def, item, KeyUse::Item)?;
    for ix in 0..def.spec.indexes.len() {
        index_key(def, ix, item, &pk)?;
    }
    if value::item_size(item) > MAX_ITEM_SIZE {
        return Err(DdbError::validation("Item size has exceeded the maximum allowed size"));
    }
    Ok(pk)
}

/// The first byte of a stored item: its size follows, then its DynamoDB JSON. (Items stored
/// before it are bare JSON, starting with `{`.)
const ITEM_TAG: u8 = 1;

/// A stored item as read: its size ([`value::item_size`]) and its DynamoDB JSON, exactly as
/// GetItem and Query answer it, so an answer without projection or filter copies the bytes
/// and decodes nothing.
pub struct RawItem<'a> {
    pub size: usize,
    pub json: &'a [u8],
}

impl RawItem<'_> {
    pub fn decode(&self) -> Result<Item, DdbError> {
        let v: Value = serde_json::from_slice(self.json).map_err(storage)?;
        value::item_from_json(&v).map_err(storage)
    }
}

fn raw_item(bytes: &[u8]) -> Result<RawItem<'_>, DdbError> {
    match bytes {
        [ITEM_TAG, a, b, c, d, json @ ..] => {
            Ok(RawItem { size: u32::from_le_bytes([*a, *b, *c, *d]) as usize, json })
        }
        _ => {
            let mut r = RawItem { size: 0, json: bytes };
            r.size = value::item_size(&r.decode()?);
            Ok(r)
        }
    }
}

fn decode_item(bytes: &[u8]) -> Result<Item, DdbError> {
    raw_item(bytes)?.decode()
}

fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(ITEM_TAG);
    out.extend_from_slice(&(value::item_size(item) as u32).to_le_bytes());
    value::write_item_json(item, &mut out);
    out
}

impl<'t> Tx<'t> {
    /// Writes `key` in redb table `table` (a [`wal`] table number), and notes it for the log.
    fn put(&mut self, table: u8, key: &[u8], value: &[u8]) -> Result<(), DdbError> {
        self.fx.put(table, key, value);
        apply(&mut self.meta, &mut self.items, &mut self.index, &mut self.stream, table, key, Some(value))
    }

    /// Deletes `key` from redb table `table`, and notes it for the log.
    fn del(&mut self, table: u8, key: &[u8]) -> Result<(), DdbError> {
        self.fx.delete(table, key);
        apply(&mut self.meta, &mut self.items, &mut self.index, &mut self.stream, table, key, None)
    }

    /// Deletes every key of `table` that starts with `prefix`.
    fn remove_prefix(&mut self, table: u8, prefix: &[u8]) -> Result<(), DdbError> {
        let t = match table {
            wal::ITEMS => &self.items,
            wal::INDEX => &self.index,
            _ => &self.stream,
        };
        let keys: Vec<Vec<u8>> = t
            .range(prefix..)
            .map_err(storage)?
            .map_while(|e| e.ok().map(|(k, _)| k.value().to_vec()))
            .take_while(|k| k.starts_with(prefix))
            .collect();
        for k in keys {
            self.del(table, &k)?;
        }
        Ok(())
    }

    fn get(&self, pk: &[u8]) -> Result<Option<Item>, DdbError> {
        match self.items.get(pk).map_err(storage)? {
            Some(g) => Ok(Some(decode_item(g.value())?)),
            None => Ok(None),
        }
    }

    /// Computes what `op` does (conditions checked), without writing.
    fn plan(&self, def: &TableDef, op: &WriteOp) -> Result<(Vec<u8>, Change), DdbError> {
        let check = |cond: &Option<Cond>, old: &Option<Item>| -> Result<(), DdbError> {
            if let Some(c) = cond {
                let empty = Item::new();
                let ok = expr::eval(c, old.as_ref().unwrap_or(&empty)).map_err(DdbError::validation)?;
                if !ok {
                    let mut e = DdbError::conditional();
                    e.item = old.clone();
                    return Err(e);
                }
            }
            Ok(())
        };
        match op {
            WriteOp::Put { item, cond } => {
                let pk = validate_item(def, item)?;
                let old = self.get(&pk)?;
                check(cond, &old)?;
                Ok((pk, Change { old, new: Some(item.clone()) }))
            }
            WriteOp::Delete { key, cond } => {
                let pk = check_key(def, key)?;
                let old = self.get(&pk)?;
                check(cond, &old)?;
                Ok((pk, Change { old, new: None }))
            }
            WriteOp::Check { key, cond } => {
                let pk = check_key(def, key)?;
                let old = self.get(&pk)?;
                check(&Some(cond.clone()), &old)?;
                Ok((pk, Change { old: old.clone(), new: old }))
            }
            WriteOp::Update { key, update, cond } => {
                let pk = check_key(def, key)?;
                let old = self.get(&pk)?;
                check(cond, &old)?;
                for p in update.paths() {
                    if let expr::Elem::Attr(a) = &p[0]
                        && def.key_names().contains(&a.as_str())
                    {
                        return Err(DdbError::validation(format!(
                            "One or more parameter values were invalid: Cannot update attribute {a}. This attribute is part of the key"
                        )));
                    }
                }
                let base = match &old {
                    Some(o) => o.clone(),
                    None => key.clone(),
                };
                let new = expr::apply(update, &base).map_err(DdbError::validation)?;
                validate_item(def, &new)?;
                Ok((pk, Change { old, new: Some(new) }))
            }
        }
    }

    /// An unconditional put on a table without indexes or change records: checked first
    /// (nothing is written when it is invalid), then written at once, the old item read back
    /// from the write itself rather than looked up before it. A storage error after the
    /// write poisons the group (nothing of it is committed).
    fn put_plain(&mut self, def: &TableDef, st: &mut WriterState, item: Item) -> Result<Change, DdbError> {
        let pk = validate_item(def, &item)?;
        let bytes = encode_item(&item);
        self.fx.put(wal::ITEMS, &pk, &bytes);
        let old = match self.items.insert(pk.as_slice(), bytes.as_slice()) {
            Ok(Some(g)) => Some(decode_item(g.value())),
            Ok(None) => None,
            Err(e) => Some(Err(storage(e))),
        }
        .transpose()
        .inspect_err(|e| st.poisoned = Some(e.message.clone()))?;
        Ok(Change { old, new: Some(item) })
    }

    /// Writes a planned change: the item, its index entries, its change record.
    fn commit_change(
        &mut self,
        def: &TableDef,
        st: &mut WriterState,
        pk: &[u8],
        ch: &Change,
        check_only: bool,
    ) -> Result<(), DdbError> {
        if check_only {
            return Ok(());
        }
        if ch.old.is_none() && ch.new.is_none() {
            return Ok(());
        }
        for ix in 0..def.spec.indexes.len() {
            if let Some(old) = &ch.old
                && let Ok(Some(k)) = index_key(def, ix, old, pk)
            {
                self.del(wal::INDEX, &k)?;
            }
            if let Some(new) = &ch.new
                && let Some(k) = index_key(def, ix, new, pk)?
            {
                self.put(wal::INDEX, &k, pk)?;
            }
        }
        match &ch.new {
            Some(item) => {
                self.put(wal::ITEMS, pk, &encode_item(item))?;
            }
            None => {
                self.del(wal::ITEMS, pk)?;
            }
        }
        if def.stream {
            let event = match (&ch.old, &ch.new) {
                (None, Some(_)) => "INSERT",
                (Some(_), Some(_)) => "MODIFY",
                _ => "REMOVE",
            };
            let any = ch.new.as_ref().or(ch.old.as_ref()).unwrap();
            st.next_seq += 1;
            let seq = st.next_seq;
            let keys = key_of(def, any);
            let size = value::item_size(&keys)
                + ch.new.as_ref().map(value::item_size).unwrap_or(0)
                + ch.old.as_ref().map(value::item_size).unwrap_or(0);
            let mut rec = json!({
                "event": event,
                "seq": seq,
                "ms": crate::logs::now_ms(),
                "keys": value::item_to_json(&keys),
                "size": size,
            });
            if let Some(n) = &ch.new {
                rec["new"] = value::item_to_json(n);
            }
            if let Some(o) = &ch.old {
                rec["old"] = value::item_to_json(o);
            }
            if let Some(t) = crate::trace::sync_header() {
                rec["trace"] = json!(t);
            }
            self.put(wal::STREAM, &seq_key(def.id, seq), rec.to_string().as_bytes())?;
            self.put(wal::META, b"seq", &seq.to_be_bytes())?;
        }
        Ok(())
    }
}

/// Called for each item a read finds (its store key and the item); `false` stops the read.
pub type Visit<'a> = dyn FnMut(&[u8], Item) -> Result<bool, DdbError> + 'a;

/// [`Visit`] with the item as stored, decoded only if the caller needs it.
pub type RawVisit<'a> = dyn FnMut(&[u8], RawItem<'_>) -> Result<bool, DdbError> + 'a;

/// What a Query or Scan reads.
pub struct ReadRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub reverse: bool,
    /// Reading an index: entries map to item keys.
    pub index: bool,
}

impl Tables {
    /// Opens (or creates) the store, replaying the write-ahead log.
    pub fn open(path: &Path) -> Result<Tables, String> {
        Tables::open_with(path, CHECKPOINT_EVERY, crate::durability::sync_always())
    }

    fn open_with(path: &Path, checkpoint_every: Duration, sync_always: bool) -> Result<Tables, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let db = Database::create(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let db = Arc::new(db);
        let mut defs = BTreeMap::new();
        let (mut next_seq, mut next_id) = (0u64, 1u32);
        // The write-ahead log: groups acknowledged after the last checkpoint.
        let wal_path = path.with_extension("wal");
        let mut log =
            wal::Wal::open(&wal_path).map_err(|e| format!("cannot open {}: {e}", wal_path.display()))?;
        let records = log.records().map_err(|e| format!("cannot read {}: {e}", wal_path.display()))?;
        let wal_seq;
        {
            let w = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut meta = w.open_table(META).map_err(|e| e.to_string())?;
                let mut items = w.open_table(ITEMS).map_err(|e| e.to_string())?;
                let mut index = w.open_table(INDEX).map_err(|e| e.to_string())?;
                let mut stream = w.open_table(STREAM).map_err(|e| e.to_string())?;
                // Replay, in order, the records newer than the state redb recovered.
                let mut seq = wal_seq_of(&meta)?;
                let durable = seq;
                for (s, fx) in records.iter().filter(|(s, _)| *s > durable) {
                    let ops = wal::ops(fx).map_err(|e| format!("{}: {e}", wal_path.display()))?;
                    for op in ops {
                        apply(&mut meta, &mut items, &mut index, &mut stream, op.table, op.key, op.value)
                            .map_err(|e| format!("replaying {}: {}", wal_path.display(), e.message))?;
                    }
                    seq = *s;
                }
                meta.insert("wal_seq", seq.to_be_bytes().as_slice()).map_err(|e| e.to_string())?;
                wal_seq = seq;
                for e in meta.iter().map_err(|e| e.to_string())? {
                    let (k, v) = e.map_err(|e| e.to_string())?;
                    let k = k.value();
                    if let Some(name) = k.strip_prefix("table:") {
                        let def: TableDef = serde_json::from_slice(v.value())
                            .map_err(|e| format!("table `{name}` in {}: {e}", path.display()))?;
                        next_id = next_id.max(def.id + 1);
                        defs.insert(name.to_string(), Arc::new(def));
                    } else if k == "seq" {
                        next_seq = u64::from_be_bytes(v.value().try_into().unwrap_or([0; 8]));
                    } else if k == "next_id" {
                        next_id = next_id.max(u32::from_be_bytes(v.value().try_into().unwrap_or([0; 4])));
                    }
                }
            }
            w.commit().map_err(|e| e.to_string())?;
        }
        // Replayed and durable: the log starts empty.
        log.cut(0).map_err(|e| format!("cannot empty {}: {e}", wal_path.display()))?;
        let durable = Durable {
            wal: if sync_always { None } else { Some(log) },
            wal_seq,
            dirty_since: None,
            every: checkpoint_every,
        };
        let shared = Arc::new(Shared { defs: RwLock::new(defs) });
        let (tx, rx) = mpsc::channel::<Job>();
        let changed = Arc::new(tokio::sync::Notify::new());
        {
            let (db, shared, changed) = (db.clone(), shared.clone(), changed.clone());
            std::thread::Builder::new()
                .name("tables-writer".into())
                .spawn(move || {
                    writer(
                        db,
                        shared,
                        rx,
                        WriterState { next_seq, next_id, poisoned: None, checkpoint: false },
                        changed,
                        durable,
                    )
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(Tables { db, shared, writer: tx, changed })
    }

    pub fn def(&self, name: &str) -> Option<Arc<TableDef>> {
        self.shared.defs.read().unwrap().get(name).cloned()
    }

    /// The table, or DynamoDB's ResourceNotFoundException.
    pub fn table(&self, name: &str) -> Result<Arc<TableDef>, DdbError> {
        self.def(name).ok_or_else(DdbError::not_found)
    }

    pub fn names(&self) -> Vec<String> {
        self.shared.defs.read().unwrap().keys().cloned().collect()
    }

    /// Runs `f` in the writer's next transaction; answers after the commit.
    async fn write<R: Send + 'static>(
        &self,
        f: impl for<'t> FnOnce(&mut Tx<'t>, &mut WriterState, &Shared) -> Result<R, DdbError> + Send + 'static,
    ) -> Result<R, DdbError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The writer thread records the caller's trace on the change records (crate::trace).
        let trace = crate::trace::current_header();
        let job: Job = Box::new(move |t, st, sh| {
            let r = crate::trace::with_sync_header(trace, || f(t, st, sh));
            Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(match committed {
                    Ok(()) => r,
                    Err(e) => Err(DdbError::internal(format!("the write was not saved: {e}"))),
                });
            })
        });
        self.writer.send(job).map_err(|_| DdbError::internal("the table writer stopped"))?;
        rx.await.map_err(|_| DdbError::internal("the table writer stopped"))?
    }

    /// Creates a table, or changes its indexes (the key schema of a table cannot change).
    pub async fn put_table(
        &self,
        name: &str,
        spec: TableSpec,
        create_only: bool,
    ) -> Result<Arc<TableDef>, DdbError> {
        valid_table_name(name).map_err(DdbError::validation)?;
        check_spec(&spec).map_err(DdbError::validation)?;
        let name = name.to_string();
        self.write(move |t, st, sh| {
            let existing = sh.defs.read().unwrap().get(&name).cloned();
            let def = match existing {
                Some(d) if create_only => {
                    let _ = d;
                    return Err(DdbError::new("ResourceInUseException", format!("Table already exists: {name}")));
                }
                Some(d) if d.spec == spec => return Ok(d),
                Some(d) => {
                    if d.spec.hash_key != spec.hash_key || d.spec.range_key != spec.range_key {
                        return Err(DdbError::validation(format!(
                            "table `{name}` has key schema {:?}/{:?}; a table's keys cannot change: replace the table",
                            d.spec.hash_key, d.spec.range_key
                        )));
                    }
                    // New indexes: drop every index entry and rebuild them.
                    let new = TableDef { spec: spec.clone(), ..(*d).clone() };
                    let prefix = d.id.to_be_bytes();
                    let olds: Vec<Vec<u8>> = t
                        .index
                        .range(prefix.as_slice()..)
                        .map_err(storage)?
                        .map_while(|e| e.ok().map(|(k, _)| k.value().to_vec()))
                        .take_while(|k| k.starts_with(&prefix))
                        .collect();
                    for k in olds {
                        t.del(wal::INDEX, &k)?;
                    }
                    let items: Vec<(Vec<u8>, Vec<u8>)> = t
                        .items
                        .range(prefix.as_slice()..)
                        .map_err(storage)?
                        .map_while(|e| e.ok().map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .collect();
                    for (pk, v) in items {
                        let item = decode_item(&v)?;
                        for ix in 0..new.spec.indexes.len() {
                            // Items whose attributes do not fit the new index are left out of it.
                            if let Ok(Some(k)) = index_key(&new, ix, &item, &pk) {
                                t.put(wal::INDEX, &k, &pk)?;
                            }
                        }
                    }
                    new
                }
                None => {
                    let id = st.next_id;
                    st.next_id += 1;
                    t.put(wal::META, b"next_id", &st.next_id.to_be_bytes())?;
                    TableDef { name: name.clone(), id, spec, created_ms: crate::logs::now_ms(), stream: false }
                }
            };
            let bytes = serde_json::to_vec(&def).map_err(storage)?;
            t.put(wal::META, format!("table:{name}").as_bytes(), &bytes)?;
            let def = Arc::new(def);
            sh.defs.write().unwrap().insert(name.clone(), def.clone());
            Ok(def)
        })
        .await
    }

    /// Turns the table's change records on or off.
    pub async fn set_stream(&self, name: &str, on: bool) -> Result<Arc<TableDef>, DdbError> {
        let name = name.to_string();
        self.write(move |t, _st, sh| {
            let d = sh.defs.read().unwrap().get(&name).cloned().ok_or_else(DdbError::not_found)?;
            if d.stream == on {
                return Ok(d);
            }
            let mut new = (*d).clone();
            new.stream = on;
            if !on {
                t.remove_prefix(wal::STREAM, &d.id.to_be_bytes())?;
            }
            let bytes = serde_json::to_vec(&new).map_err(storage)?;
            t.put(wal::META, format!("table:{name}").as_bytes(), &bytes)?;
            let new = Arc::new(new);
            sh.defs.write().unwrap().insert(name.clone(), new.clone());
            Ok(new)
        })
        .await
    }

    /// Deletes a table and everything in it; the old definition, or ResourceNotFound.
    pub async fn delete_table(&self, name: &str) -> Result<Arc<TableDef>, DdbError> {
        let name = name.to_string();
        self.write(move |t, _st, sh| {
            let d = sh.defs.read().unwrap().get(&name).cloned().ok_or_else(DdbError::not_found)?;
            let prefix = d.id.to_be_bytes();
            t.remove_prefix(wal::ITEMS, &prefix)?;
            t.remove_prefix(wal::INDEX, &prefix)?;
            t.remove_prefix(wal::STREAM, &prefix)?;
            t.del(wal::META, format!("table:{name}").as_bytes())?;
            sh.defs.write().unwrap().remove(&name);
            Ok(d)
        })
        .await
    }

    /// One write (PutItem, DeleteItem, UpdateItem).
    pub async fn write_one(&self, table: &str, op: WriteOp) -> Result<Change, DdbError> {
        let table = table.to_string();
        self.write(move |t, st, sh| {
            let def = sh.defs.read().unwrap().get(&table).cloned().ok_or_else(DdbError::not_found)?;
            if matches!(op, WriteOp::Put { cond: None, .. }) && def.spec.indexes.is_empty() && !def.stream {
                let WriteOp::Put { item, .. } = op else { unreachable!() };
                return t.put_plain(&def, st, item);
            }
            let (pk, ch) = t.plan(&def, &op)?;
            t.commit_change(&def, st, &pk, &ch, matches!(op, WriteOp::Check { .. })).inspect_err(|e| {
                st.poisoned = Some(e.message.clone());
            })?;
            Ok(ch)
        })
        .await
    }

    /// Several writes, all or none (TransactWriteItems). `Err` with `reasons` when a
    /// condition failed: one reason per op, in order.
    pub async fn transact(&self, ops: Vec<(String, WriteOp, bool)>) -> Result<Vec<Change>, DdbError> {
        self.write(move |t, st, sh| {
            let mut plans = Vec::new();
            let mut reasons = Vec::new();
            let mut failed = false;
            for (table, op, want_old) in &ops {
                let def = sh.defs.read().unwrap().get(table).cloned().ok_or_else(DdbError::not_found)?;
                match t.plan(&def, op) {
                    Ok(p) => {
                        reasons.push(json!({"Code": "None"}));
                        plans.push(Some((def, p)));
                    }
                    Err(e) if e.code == "ConditionalCheckFailedException" => {
                        failed = true;
                        let mut r = json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                        if *want_old && let Some(i) = &e.item {
                            r["Item"] = value::item_to_json(i);
                        }
                        reasons.push(r);
                        plans.push(None);
                    }
                    Err(e) => return Err(e),
                }
            }
            if failed {
                let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
                let mut e = DdbError::new(
                    "TransactionCanceledException",
                    format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
                );
                e.reasons = Some(reasons);
                return Err(e);
            }
            let mut out = Vec::new();
            for ((_, op, _), p) in ops.iter().zip(plans) {
                let (def, (pk, ch)) = p.unwrap();
                t.commit_change(&def, st, &pk, &ch, matches!(op, WriteOp::Check { .. })).inspect_err(|e| {
                    st.poisoned = Some(e.message.clone());
                })?;
                out.push(ch);
            }
            Ok(out)
        })
        .await
    }

    /// Several independent writes (BatchWriteItem): each is applied, none has a condition.
    pub async fn batch(&self, ops: Vec<(String, WriteOp)>) -> Result<(), DdbError> {
        self.write(move |t, st, sh| {
            let mut plans = Vec::new();
            for (table, op) in &ops {
                let def = sh.defs.read().unwrap().get(table).cloned().ok_or_else(DdbError::not_found)?;
                plans.push((def.clone(), t.plan(&def, op)?));
            }
            for (def, (pk, ch)) in plans {
                t.commit_change(&def, st, &pk, &ch, false).inspect_err(|e| {
                    st.poisoned = Some(e.message.clone());
                })?;
            }
            Ok(())
        })
        .await
    }

    /// Reads an item by its `Key`: its DynamoDB JSON as stored.
    pub fn get_json(&self, def: &TableDef, key: &Item) -> Result<Option<Vec<u8>>, DdbError> {
        let pk = check_key(def, key)?;
        let r = self.db.begin_read().map_err(storage)?;
        let items = r.open_table(ITEMS).map_err(storage)?;
        match items.get(pk.as_slice()).map_err(storage)? {
            Some(g) => Ok(Some(raw_item(g.value())?.json.to_vec())),
            None => Ok(None),
        }
    }

    /// Reads an item by its `Key`.
    pub fn get(&self, def: &TableDef, key: &Item) -> Result<Option<Item>, DdbError> {
        let pk = check_key(def, key)?;
        let r = self.db.begin_read().map_err(storage)?;
        let items = r.open_table(ITEMS).map_err(storage)?;
        match items.get(pk.as_slice()).map_err(storage)? {
            Some(g) => Ok(Some(decode_item(g.value())?)),
            None => Ok(None),
        }
    }

    /// Reads several items in one read transaction: one consistent snapshot (TransactGetItems).
    pub fn get_many(&self, keys: &[(Arc<TableDef>, Item)]) -> Result<Vec<Option<Item>>, DdbError> {
        let pks = keys.iter().map(|(d, k)| check_key(d, k)).collect::<Result<Vec<_>, _>>()?;
        let r = self.db.begin_read().map_err(storage)?;
        let items = r.open_table(ITEMS).map_err(storage)?;
        pks.iter()
            .map(|pk| match items.get(pk.as_slice()).map_err(storage)? {
                Some(g) => Ok(Some(decode_item(g.value())?)),
                None => Ok(None),
            })
            .collect()
    }

    /// Reads items in key order from `range`, calling `f(store_key, item)` until it answers
    /// `false`. Index ranges yield the index entry's key.
    pub fn read(&self, range: &ReadRange, f: &mut Visit<'_>) -> Result<(), DdbError> {
        self.read_raw(range, &mut |k, raw| f(k, raw.decode()?))
    }

    /// [`Tables::read`] with the items as stored.
    pub fn read_raw(&self, range: &ReadRange, f: &mut RawVisit<'_>) -> Result<(), DdbError> {
        let r = self.db.begin_read().map_err(storage)?;
        let items = r.open_table(ITEMS).map_err(storage)?;
        let table = if range.index {
            r.open_table(INDEX).map_err(storage)?
        } else {
            r.open_table(ITEMS).map_err(storage)?
        };
        let iter = table.range(range.start.as_slice()..range.end.as_slice()).map_err(storage)?;
        let mut step = |k: &[u8], v: &[u8]| -> Result<bool, DdbError> {
            if range.index {
                match items.get(v).map_err(storage)? {
                    Some(g) => f(k, raw_item(g.value())?),
                    None => Ok(true),
                }
            } else {
                f(k, raw_item(v)?)
            }
        };
        if range.reverse {
            for e in iter.rev() {
                let (k, v) = e.map_err(storage)?;
                if !step(k.value(), v.value())? {
                    break;
                }
            }
        } else {
            for e in iter {
                let (k, v) = e.map_err(storage)?;
                if !step(k.value(), v.value())? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The store key range of a whole table (or of index `ix`).
    pub fn table_range(def: &TableDef, ix: Option<usize>) -> (Vec<u8>, Vec<u8>) {
        let start = match ix {
            Some(i) => index_prefix(def, i),
            None => def.id.to_be_bytes().to_vec(),
        };
        let mut end = start.clone();
        *end.last_mut().unwrap() += 1;
        if ix.is_none() {
            end = (def.id + 1).to_be_bytes().to_vec();
        }
        (start, end)
    }

    /// The store key range of one partition (`hash` value), in the table or an index.
    pub fn partition_range(def: &TableDef, ix: Option<usize>, hash: &AV) -> (Vec<u8>, Vec<u8>) {
        let mut start = match ix {
            Some(i) => index_prefix(def, i),
            None => def.id.to_be_bytes().to_vec(),
        };
        value::escaped(&value::key_bytes(hash), &mut start);
        let mut end = start.clone();
        // The escaped value ends with 0x00 0x01: 0x00 0x02 is past every key that extends it.
        *end.last_mut().unwrap() = 2;
        (start, end)
    }

    /// The store key of an item (for pagination), in the table or in index `ix`.
    pub fn store_key(def: &TableDef, ix: Option<usize>, item: &Item) -> Result<Vec<u8>, DdbError> {
        let pk = item_key(def, item, KeyUse::Key)?;
        match ix {
            None => Ok(pk),
            Some(i) => index_key(def, i, item, &pk)?
                .ok_or_else(|| DdbError::validation("The provided starting key is invalid")),
        }
    }

    pub fn item_count(&self, def: &TableDef) -> u64 {
        let (s, e) = Tables::table_range(def, None);
        let mut n = 0;
        let _ = self.read_raw(&ReadRange { start: s, end: e, reverse: false, index: false }, &mut |_, _| {
            n += 1;
            Ok(true)
        });
        n
    }

    /// Change records of table `id` after `after`, at most `max`.
    pub fn stream_after(&self, id: u32, after: u64, max: usize) -> Result<Vec<Value>, DdbError> {
        let r = self.db.begin_read().map_err(storage)?;
        let t = r.open_table(STREAM).map_err(storage)?;
        let start = seq_key(id, after.saturating_add(1));
        let end = (id + 1).to_be_bytes().to_vec();
        let mut out = Vec::new();
        for e in t.range(start.as_slice()..end.as_slice()).map_err(storage)? {
            let (_, v) = e.map_err(storage)?;
            out.push(serde_json::from_slice(v.value()).map_err(storage)?);
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Makes every acknowledged write durable now (an `Immediate` commit; the log is emptied).
    /// The daemon calls it when it stops.
    pub async fn checkpoint(&self) -> Result<(), DdbError> {
        self.write(|_, st, _| {
            st.checkpoint = true;
            Ok(())
        })
        .await
    }

    /// The last sequence number given out.
    pub async fn last_seq(&self) -> Result<u64, DdbError> {
        self.write(|_, st, _| Ok(st.next_seq)).await
    }

    /// Saves a trigger's position and drops change records every trigger of the table has.
    pub async fn save_cursor(
        &self,
        trigger: &str,
        id: u32,
        seq: u64,
        trim_below: Option<u64>,
    ) -> Result<(), DdbError> {
        let key = format!("cursor:{trigger}");
        self.write(move |t, _, _| {
            let mut v = id.to_be_bytes().to_vec();
            v.extend_from_slice(&seq.to_be_bytes());
            t.put(wal::META, key.as_bytes(), &v)?;
            if let Some(below) = trim_below {
                let start = seq_key(id, 0);
                let end = seq_key(id, below);
                let keys: Vec<Vec<u8>> = t
                    .stream
                    .range(start.as_slice()..end.as_slice())
                    .map_err(storage)?
                    .map_while(|e| e.ok().map(|(k, _)| k.value().to_vec()))
                    .collect();
                for k in keys {
                    t.del(wal::STREAM, &k)?;
                }
            }
            Ok(())
        })
        .await
    }

    pub fn cursor(&self, trigger: &str) -> Option<u64> {
        let r = self.db.begin_read().ok()?;
        let t = r.open_table(META).ok()?;
        let g = t.get(format!("cursor:{trigger}").as_str()).ok()??;
        Some(u64::from_be_bytes(g.value().get(4..12)?.try_into().ok()?))
    }

    /// The smallest saved position of the triggers of table `id`.
    pub fn min_cursor(&self, id: u32) -> Option<u64> {
        let r = self.db.begin_read().ok()?;
        let t = r.open_table(META).ok()?;
        let mut min: Option<u64> = None;
        for e in t.range("cursor:".."cursor;").ok()? {
            let (_, v) = e.ok()?;
            let v = v.value();
            if v.len() == 12 && v[..4] == id.to_be_bytes() {
                let s = u64::from_be_bytes(v[4..12].try_into().ok()?);
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
        min
    }

    pub async fn drop_cursor(&self, trigger: &str) -> Result<(), DdbError> {
        let key = format!("cursor:{trigger}");
        self.write(move |t, _, _| {
            t.del(wal::META, key.as_bytes())?;
            Ok(())
        })
        .await
    }
}

/// Puts (`Some`) or deletes (`None`) `key` in redb table `table` (a [`wal`] table number).
fn apply<'t>(
    meta: &mut redb::Table<'t, &'static str, &'static [u8]>,
    items: &mut redb::Table<'t, &'static [u8], &'static [u8]>,
    index: &mut redb::Table<'t, &'static [u8], &'static [u8]>,
    stream: &mut redb::Table<'t, &'static [u8], &'static [u8]>,
    table: u8,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), DdbError> {
    let t = match table {
        wal::META => {
            let key = std::str::from_utf8(key).map_err(storage)?;
            match value {
                Some(v) => meta.insert(key, v).map(drop),
                None => meta.remove(key).map(drop),
            }
            .map_err(storage)?;
            return Ok(());
        }
        wal::ITEMS => items,
        wal::INDEX => index,
        _ => stream,
    };
    match value {
        Some(v) => t.insert(key, v).map(drop),
        None => t.remove(key).map(drop),
    }
    .map_err(storage)
}

/// A checkpoint (an `Immediate` commit, then the log is emptied) comes this long after the
/// first commit that is only in the log.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A group whose effects pass this size is committed `Immediate` rather than logged.
const BIG_GROUP: usize = 8 * 1024 * 1024;

/// How the writer makes groups durable (see the module docs and [`wal`]).
struct Durable {
    /// `None` with `SKYFORM_LOCAL_SYNC=always`: every group commit is `Immediate`.
    wal: Option<wal::Wal>,
    /// The last group's log sequence number (`meta` key `wal_seq`).
    wal_seq: u64,
    /// When the oldest commit that is only in the log was made.
    dirty_since: Option<Instant>,
    /// [`CHECKPOINT_EVERY`] (tests wait longer).
    every: Duration,
}

fn wal_seq_of(meta: &redb::Table<'_, &'static str, &'static [u8]>) -> Result<u64, String> {
    Ok(match meta.get("wal_seq").map_err(|e| e.to_string())? {
        Some(v) => u64::from_be_bytes(v.value().try_into().unwrap_or([0; 8])),
        None => 0,
    })
}

/// Commits everything so far `Immediate` and empties the log. On failure the log stays, and
/// the next checkpoint retries.
fn checkpoint(db: &Database, d: &mut Durable) {
    let r = (|| -> Result<(), String> {
        let w = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut meta = w.open_table(META).map_err(|e| e.to_string())?;
            meta.insert("wal_seq", d.wal_seq.to_be_bytes().as_slice()).map_err(|e| e.to_string())?;
        }
        w.commit().map_err(|e| e.to_string())
    })();
    if r.is_ok() {
        d.dirty_since = None;
        if let Some(log) = &mut d.wal {
            // Left over on failure: its records are all at or below `wal_seq`, so never replayed.
            let _ = log.cut(0);
        }
    } else {
        d.dirty_since = Some(Instant::now());
    }
}

/// Commits one group: `Immediate` (sync-always mode, or a big group), or logged and `None`.
fn commit_group(w: redb::WriteTransaction, fx: &wal::Effects, d: &mut Durable) -> Result<(), String> {
    if fx.buf.is_empty() {
        // Nothing written: nothing to make durable.
        let mut w = w;
        w.set_durability(redb::Durability::None).map_err(|e| e.to_string())?;
        return w.commit().map_err(|e| e.to_string());
    }
    let seq = d.wal_seq + 1;
    {
        let mut meta = w.open_table(META).map_err(|e| e.to_string())?;
        meta.insert("wal_seq", seq.to_be_bytes().as_slice()).map_err(|e| e.to_string())?;
    }
    match &mut d.wal {
        Some(log) if fx.buf.len() < BIG_GROUP => {
            let before = log.size();
            log.append(seq, &fx.buf).map_err(|e| format!("cannot write the tables' log: {e}"))?;
            let mut w = w;
            let r = w
                .set_durability(redb::Durability::None)
                .map_err(|e| e.to_string())
                .and_then(|()| w.commit().map_err(|e| e.to_string()));
            if r.is_err() {
                // Not committed: the record must not be replayed.
                let _ = log.cut(before);
                return r;
            }
            d.wal_seq = seq;
            d.dirty_since.get_or_insert_with(Instant::now);
        }
        _ => {
            w.commit().map_err(|e| e.to_string())?;
            d.wal_seq = seq;
            d.dirty_since = None;
            if let Some(log) = &mut d.wal {
                let _ = log.cut(0);
            }
        }
    }
    Ok(())
}

/// The writer thread: group commit (see the module docs).
fn writer(
    db: Arc<Database>,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Job>,
    mut st: WriterState,
    changed: Arc<tokio::sync::Notify>,
    mut d: Durable,
) {
    loop {
        let first = match d.dirty_since {
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
            Some(since) => {
                let wait = (since + d.every).saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(j) => j,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        checkpoint(&db, &mut d);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < 4096 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let seq_before = st.next_seq;
        let next_id_before = st.next_id;
        let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
        let result = (|| -> Result<(), String> {
            let w = db.begin_write().map_err(|e| e.to_string())?;
            let fx = {
                let mut t = Tx {
                    meta: w.open_table(META).map_err(|e| e.to_string())?,
                    items: w.open_table(ITEMS).map_err(|e| e.to_string())?,
                    index: w.open_table(INDEX).map_err(|e| e.to_string())?,
                    stream: w.open_table(STREAM).map_err(|e| e.to_string())?,
                    fx: wal::Effects::default(),
                };
                for j in jobs.drain(..) {
                    replies.push(j(&mut t, &mut st, &shared));
                }
                std::mem::take(&mut t.fx)
            };
            if let Some(e) = st.poisoned.take() {
                w.abort().map_err(|e| e.to_string())?;
                return Err(e);
            }
            commit_group(w, &fx, &mut d)
        })();
        if result.is_err() {
            st.next_seq = seq_before;
            st.next_id = next_id_before;
        }
        if d.dirty_since.is_some()
            && (std::mem::take(&mut st.checkpoint) || d.wal.as_ref().is_some_and(|l| l.size() > wal::MAX_LOG))
        {
            checkpoint(&db, &mut d);
        }
        st.checkpoint = false;
        // Jobs never run (begin_write failed) are dropped: their callers get "writer stopped".
        drop(jobs);
        for r in replies {
            r(result.clone());
        }
        if st.next_seq != seq_before {
            changed.notify_waiters();
        }
    }
    // The last handle is gone: a clean stop.
    if d.dirty_since.is_some() {
        checkpoint(&db, &mut d);
    }
}

/// The stream records' `Records[]` entries, as Lambda gets them from DynamoDB Streams.
pub fn stream_event(def: &TableDef, records: &[Value]) -> Value {
    let recs: Vec<Value> = records
        .iter()
        .map(|r| {
            let seq = r["seq"].as_u64().unwrap_or(0);
            let mut d = json!({
                "ApproximateCreationDateTime": (r["ms"].as_u64().unwrap_or(0) / 1000) as f64,
                "Keys": r["keys"],
                "SequenceNumber": sequence_number(seq),
                "SizeBytes": r["size"],
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if !r["new"].is_null() {
                d["NewImage"] = r["new"].clone();
            }
            if !r["old"].is_null() {
                d["OldImage"] = r["old"].clone();
            }
            json!({
                "eventID": format!("{:032x}", (seq as u128) << 64 | def.id as u128),
                "eventName": r["event"],
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": crate::aws::REGION,
                "dynamodb": d,
                "eventSourceARN": def.stream_arn(),
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// A change's `SequenceNumber`: a decimal string, increasing.
pub fn sequence_number(seq: u64) -> String {
    format!("{:021}", seq)
}

/// Names and values placeholders parsed from a request.
pub type Names = HashMap<String, String>;
pub type Values = HashMap<String, AV>;

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Opens `path` once the writer thread of a dropped `Tables` has let go of it.
    fn reopen(path: &Path) -> Tables {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            match Tables::open(path) {
                Ok(t) => return t,
                Err(e) if e.contains("already open") && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn item(v: Value) -> Item {
        value::item_from_json(&v).unwrap()
    }

    fn spec() -> TableSpec {
        let k = |n: &str| KeyAttr { name: n.into(), type_: "S".into() };
        TableSpec {
            hash_key: k("pk"),
            range_key: None,
            indexes: vec![IndexSpec { name: "byColor".into(), hash_key: k("color"), range_key: None }],
        }
    }

    fn put(rt: &tokio::runtime::Runtime, t: &Tables, pk: &str, color: &str) {
        let it = item(json!({"pk": {"S": pk}, "color": {"S": color}}));
        rt.block_on(t.write_one("tab", WriteOp::Put { item: it, cond: None })).unwrap();
    }

    fn get(t: &Tables, pk: &str) -> Option<Item> {
        t.get(&t.table("tab").unwrap(), &item(json!({"pk": {"S": pk}}))).unwrap()
    }

    fn by_color(t: &Tables, color: &str) -> Vec<String> {
        let def = t.table("tab").unwrap();
        let (start, end) = Tables::partition_range(&def, Some(0), &AV::S(color.into()));
        let mut out = Vec::new();
        t.read(&ReadRange { start, end, reverse: false, index: true }, &mut |_, i| {
            out.push(value::item_to_json(&i)["pk"]["S"].as_str().unwrap().to_string());
            Ok(true)
        })
        .unwrap();
        out
    }

    /// Writes acknowledged before a checkpoint are only in the log: replayed into a store that
    /// never saw them (as after `kill -9` before the checkpoint), they are all there, with
    /// their index entries and change records; a torn last record is ignored.
    #[test]
    fn the_log_alone_restores_acknowledged_writes() {
        let rt = rt();
        let dir = std::env::temp_dir().join(format!("skyform-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = (dir.join("a/tables.redb"), dir.join("b/tables.redb"));
        let t = Tables::open_with(&a, Duration::from_secs(3600), false).unwrap();
        rt.block_on(t.put_table("tab", spec(), true)).unwrap();
        rt.block_on(t.set_stream("tab", true)).unwrap();
        put(&rt, &t, "a", "red");
        put(&rt, &t, "b", "red");
        put(&rt, &t, "c", "blue");
        rt.block_on(t.write_one("tab", WriteOp::Delete { key: item(json!({"pk": {"S": "b"}})), cond: None }))
            .unwrap();
        put(&rt, &t, "d", "green");
        let log = std::fs::read(a.with_extension("wal")).unwrap();
        assert!(!log.is_empty(), "the writes are in the log until the checkpoint");
        drop(t);

        // A torn tail: the last record (the put of `d`) lost its last bytes.
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(b.with_extension("wal"), &log[..log.len() - 3]).unwrap();
        let t = Tables::open(&b).unwrap();
        assert!(get(&t, "a").is_some() && get(&t, "c").is_some());
        assert!(get(&t, "b").is_none(), "the delete was replayed");
        assert!(get(&t, "d").is_none(), "the torn record was not applied");
        assert_eq!(by_color(&t, "red"), ["a"]);
        assert_eq!(by_color(&t, "blue"), ["c"]);
        let def = t.table("tab").unwrap();
        let events: Vec<String> = t
            .stream_after(def.id, 0, 100)
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r["event"].as_str().unwrap(), r["keys"]["pk"]["S"].as_str().unwrap()))
            .collect();
        assert_eq!(events, ["INSERT a", "INSERT b", "INSERT c", "REMOVE b"]);
        assert_eq!(std::fs::metadata(b.with_extension("wal")).unwrap().len(), 0, "replayed, then emptied");

        // Replay is exact once: a newer write survives an old log found again.
        put(&rt, &t, "b", "blue");
        rt.block_on(t.checkpoint()).unwrap();
        assert_eq!(
            std::fs::metadata(b.with_extension("wal")).unwrap().len(),
            0,
            "a checkpoint empties the log"
        );
        drop(t);
        std::fs::write(b.with_extension("wal"), &log).unwrap();
        let t = reopen(&b);
        assert!(get(&t, "b").is_some(), "records already in the store are not replayed");
        assert!(get(&t, "d").is_none());
        assert_eq!(by_color(&t, "blue"), ["b", "c"]);
        drop(t);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `SKYFORM_LOCAL_SYNC=always`: every group is committed with an fsync before its answer,
    /// and nothing goes to the log.
    #[test]
    fn sync_always_commits_durably_and_leaves_the_log_empty() {
        let rt = rt();
        let dir = std::env::temp_dir().join(format!("skyform-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("tables.redb");
        let t = Tables::open_with(&path, Duration::from_secs(3600), true).unwrap();
        rt.block_on(t.put_table("tab", spec(), true)).unwrap();
        put(&rt, &t, "a", "red");
        assert_eq!(std::fs::metadata(path.with_extension("wal")).unwrap().len(), 0);
        drop(t);
        let t = reopen(&path);
        assert!(get(&t, "a").is_some());
        drop(t);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// PutItem without a condition on a plain table (no index, no change records) writes
    /// without looking the item up first: it still answers the old item, a failed validation
    /// still answers DynamoDB's error and writes nothing (the rest of its group is kept), and
    /// what it wrote is in the log.
    #[test]
    fn plain_puts_answer_the_old_item_and_write_nothing_when_invalid() {
        let rt = rt();
        let dir = std::env::temp_dir().join(format!("skyform-plain-put-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("tables.redb");
        let t = Tables::open_with(&path, Duration::from_secs(3600), false).unwrap();
        let plain = TableSpec { indexes: vec![], ..spec() };
        rt.block_on(t.put_table("tab", plain, true)).unwrap();
        let put = |v: Value| rt.block_on(t.write_one("tab", WriteOp::Put { item: item(v), cond: None }));
        let ch = put(json!({"pk": {"S": "a"}, "n": {"N": "1"}})).unwrap();
        assert!(ch.old.is_none());
        let ch = put(json!({"pk": {"S": "a"}, "n": {"N": "2"}})).unwrap();
        assert_eq!(ch.old, Some(item(json!({"pk": {"S": "a"}, "n": {"N": "1"}}))));
        let bad = [
            (json!({"n": {"N": "3"}}), "Missing the key pk"),
            (json!({"pk": {"N": "3"}}), "Type mismatch for key pk"),
            (json!({"pk": {"S": ""}}), "cannot contain an empty string value"),
            (json!({"pk": {"S": "b"}, "big": {"S": "x".repeat(MAX_ITEM_SIZE)}}), "maximum allowed size"),
        ];
        for (v, msg) in bad {
            let e = put(v).unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert!(e.message.contains(msg), "{} lacks {msg}", e.message);
        }
        // Concurrent puts, some invalid, share groups: the valid ones are all kept.
        let many = (0..40).map(|i| {
            let v =
                if i % 4 == 0 { json!({"pk": {"N": "1"}}) } else { json!({"pk": {"S": format!("k{i}")}}) };
            t.write_one("tab", WriteOp::Put { item: item(v), cond: None })
        });
        let answers = rt.block_on(futures::future::join_all(many));
        assert_eq!(answers.iter().filter(|r| r.is_err()).count(), 10);
        let def = t.table("tab").unwrap();
        assert_eq!(t.item_count(&def), 31);
        let log = std::fs::read(path.with_extension("wal")).unwrap();
        drop(t);
        // Replayed from the log alone into a store that never saw the writes (as after
        // `kill -9` before the checkpoint): the same items.
        let b = dir.join("b/tables.redb");
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(b.with_extension("wal"), &log).unwrap();
        let t = Tables::open(&b).unwrap();
        assert_eq!(t.item_count(&t.table("tab").unwrap()), 31);
        assert_eq!(get(&t, "a"), Some(item(json!({"pk": {"S": "a"}, "n": {"N": "2"}}))));
        assert_eq!(get(&t, "b"), None);
        drop(t);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An item is stored with its size before its JSON; items stored bare (before the size
    /// was) still read.
    #[test]
    fn stored_items_carry_their_size_and_bare_ones_still_read() {
        let it = item(json!({"pk": {"S": "a"}, "n": {"N": "12"}, "l": {"L": [{"S": "xy"}]}}));
        let stored = encode_item(&it);
        let raw = raw_item(&stored).unwrap();
        assert_eq!(raw.size, value::item_size(&it));
        assert_eq!(raw.json, value::item_to_json(&it).to_string().as_bytes());
        assert_eq!(raw.decode().unwrap(), it);
        let bare = value::item_to_json(&it).to_string().into_bytes();
        let raw = raw_item(&bare).unwrap();
        assert_eq!((raw.size, raw.decode().unwrap()), (value::item_size(&it), it));
    }
}
