//! The tables' write-ahead log, `tables.wal` beside `tables.redb`: what makes an acknowledged
//! write survive `kill -9` without an `fsync` before every answer.
//!
//! **Why:** redb offers two commit levels, `Immediate` (an `fsync` per commit) and `None` (the
//! commit lives in the process until a later `Immediate` one: `kill -9` loses it). An `fsync`
//! per group commit caps a single client at a few hundred writes per second. So the writer
//! commits groups with `None` and, before answering, appends the group's resolved effects —
//! the concrete key writes and deletes in redb's tables, not the requests — to this log with
//! one `write(2)`, without `fsync`: once `write` returns, the bytes are in the kernel's page
//! cache and outlive the process. At most a second later (a *checkpoint*, and at a clean
//! shutdown) an `Immediate` commit makes everything durable and the log is emptied, so it never
//! holds more than about a second of writes (a checkpoint also comes early when it passes
//! [`MAX_LOG`]). An OS crash or power cut can lose about the last second, as Redis's
//! `appendfsync everysec`.
//!
//! **Records:** `len u32 LE | crc32 u32 LE | seq u64 LE | effects`, where `len` counts `seq`
//! and `effects` and the CRC covers them. A torn or corrupt tail (the process died inside a
//! `write`, or the OS lost part of the file) ends the log: that group was never acknowledged.
//! Every group's transaction also stores its `seq` in redb (`meta` key `wal_seq`), so at open
//! only records newer than the state redb recovered are replayed, in order; effects are
//! absolute (put this value, delete this key), so replaying is exact.
//!
//! **Effects:** `op u8 | key len u32 LE | key | [value len u32 LE | value]`, `op` being the
//! redb table ([`META`] ..) plus [`DELETE`] for a delete (which has no value).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

pub const META: u8 = 0;
pub const ITEMS: u8 = 1;
pub const INDEX: u8 = 2;
pub const STREAM: u8 = 3;
pub const DELETE: u8 = 0x80;

/// A checkpoint comes early once the log holds this much.
pub const MAX_LOG: u64 = 64 * 1024 * 1024;

/// One group's effects, in the order the transaction made them.
#[derive(Default)]
pub struct Effects {
    pub buf: Vec<u8>,
}

impl Effects {
    pub fn put(&mut self, table: u8, key: &[u8], value: &[u8]) {
        self.buf.push(table);
        self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(value);
    }
    pub fn delete(&mut self, table: u8, key: &[u8]) {
        self.buf.push(table | DELETE);
        self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
    }
}

/// One effect read back: the table, the key, and the value (`None`: a delete).
pub struct Op<'a> {
    pub table: u8,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// The effects of a record, or why they do not parse (a record whose CRC matched: a bug).
pub fn ops(mut b: &[u8]) -> Result<Vec<Op<'_>>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("a write-ahead log record is cut short".into());
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    fn len(b: &mut &[u8]) -> Result<usize, String> {
        Ok(u32::from_le_bytes(take(b, 4)?.try_into().unwrap()) as usize)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let op = take(&mut b, 1)?[0];
        let n = len(&mut b)?;
        let key = take(&mut b, n)?;
        let value = if op & DELETE == 0 {
            let n = len(&mut b)?;
            Some(take(&mut b, n)?)
        } else {
            None
        };
        let table = op & !DELETE;
        if table > STREAM {
            return Err(format!("a write-ahead log record names table {table}"));
        }
        out.push(Op { table, key, value });
    }
    Ok(out)
}

/// The log file, open for appending.
pub struct Wal {
    file: File,
    len: u64,
}

impl Wal {
    /// Opens (or creates) the log; [`Wal::records`] reads what it holds.
    pub fn open(path: &Path) -> std::io::Result<Wal> {
        let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Wal { file, len })
    }

    /// The intact records, oldest first: `(seq, effects)`. Reading stops at the first torn or
    /// corrupt record.
    pub fn records(&mut self) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let mut all = Vec::new();
        (&self.file).read_to_end(&mut all)?;
        let mut out = Vec::new();
        let mut b = all.as_slice();
        while b.len() >= 16 {
            let len = u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(b[4..8].try_into().unwrap());
            if len < 8 || b.len() < 8 + len {
                break;
            }
            let body = &b[8..8 + len];
            if crc32fast::hash(body) != crc {
                break;
            }
            out.push((u64::from_le_bytes(body[..8].try_into().unwrap()), body[8..].to_vec()));
            b = &b[8 + len..];
        }
        Ok(out)
    }

    /// Appends one record with a single `write(2)` (no `fsync`: see the module docs). On
    /// failure the file is cut back, so no partial record stays in front of later ones.
    pub fn append(&mut self, seq: u64, effects: &[u8]) -> std::io::Result<()> {
        let mut rec = Vec::with_capacity(16 + effects.len());
        rec.extend_from_slice(&((8 + effects.len()) as u32).to_le_bytes());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(effects);
        let crc = crc32fast::hash(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        match self.file.write_all(&rec) {
            Ok(()) => {
                self.len += rec.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.cut(self.len);
                Err(e)
            }
        }
    }

    /// Cuts the log back to `len` bytes (0: empty it, after a checkpoint).
    pub fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.len
    }
}
