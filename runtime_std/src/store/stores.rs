//! The four stores a [`StoreFile`] holds, by name: [`EventLog`], [`SnapshotStore`],
//! [`CheckpointStore`], [`Keyspace`]. Each method is one statement; outside a transaction or
//! batch it commits on its own (one fsync under `Sync::Full`), inside one it joins it.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;
use super::file::StoreFile;

fn write_err(what: &str, store: &str, file: &StoreFile, e: rusqlite::Error) -> StoreError {
    StoreError::WriteFailed(format!("{what} on {store} in {} failed: {e}", file.label()))
}

fn read_err(what: &str, store: &str, file: &StoreFile, e: rusqlite::Error) -> StoreError {
    StoreError::ReadFailed(format!("{what} on {store} in {} failed: {e}", file.label()))
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// An append-only log of byte records numbered 1, 2, 3, ... without gaps. A record is durable
/// when the append (or the transaction holding it) returns.
#[derive(Clone)]
pub struct EventLog {
    pub(crate) file: StoreFile,
    pub(crate) name: String,
}

impl EventLog {
    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it lives in.
    pub fn file(&self) -> &StoreFile {
        &self.file
    }

    fn load_last(&self, conn: &Connection) -> Result<u64, StoreError> {
        if let Some(seq) = self.file.inner.log_seq.lock().get(&self.name) {
            return Ok(*seq);
        }
        let max: Option<i64> = conn
            .query_row("SELECT max(seq) FROM event_log WHERE log = ?1", [&self.name], |r| r.get(0))
            .map_err(|e| read_err("reading the last sequence number", &self.label(), &self.file, e))?;
        let head: Option<i64> = conn
            .query_row("SELECT last_seq FROM event_log_head WHERE log = ?1", [&self.name], |r| r.get(0))
            .optional()
            .map_err(|e| read_err("reading the last sequence number", &self.label(), &self.file, e))?;
        let last = max.unwrap_or(0).max(head.unwrap_or(0)).max(0) as u64;
        self.file.inner.log_seq.lock().insert(self.name.clone(), last);
        Ok(last)
    }

    fn label(&self) -> String {
        format!("event log {}", self.name)
    }

    /// Appends one record; returns its sequence number (the last one plus 1; the first is 1).
    pub fn append(&self, data: &[u8]) -> Result<u64, StoreError> {
        self.file.with_conn(|conn| {
            let seq = self.load_last(conn)? + 1;
            conn.prepare_cached("INSERT INTO event_log (log, seq, data) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![self.name, seq_i64(seq), data]))
                .map_err(|e| write_err("appending", &self.label(), &self.file, e))?;
            self.file.inner.log_seq.lock().insert(self.name.clone(), seq);
            Ok(seq)
        })
    }

    /// Appends several records in one transaction; returns the first and last sequence numbers
    /// (`None` when `records` is empty).
    pub fn append_all(&self, records: &[&[u8]]) -> Result<Option<(u64, u64)>, StoreError> {
        if records.is_empty() {
            return Ok(None);
        }
        self.file.transaction(|_| {
            let mut first = 0;
            let mut last = 0;
            for (i, r) in records.iter().enumerate() {
                last = self.append(r)?;
                if i == 0 {
                    first = last;
                }
            }
            Ok(Some((first, last)))
        })
    }

    /// Up to `limit` records from sequence number `from` on, in order.
    pub fn read_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.file.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT seq, data FROM event_log WHERE log = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")
                .map_err(|e| read_err("reading", &self.label(), &self.file, e))?;
            let rows = stmt
                .query_map(params![self.name, seq_i64(from), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(|e| read_err("reading", &self.label(), &self.file, e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| read_err("reading", &self.label(), &self.file, e))
        })
    }

    /// The last sequence number appended (0 when none ever was).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.file.with_conn(|conn| self.load_last(conn))
    }

    /// The first sequence number still held (`None` when the log holds nothing).
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        self.file.with_conn(|conn| {
            let min: Option<i64> = conn
                .query_row("SELECT min(seq) FROM event_log WHERE log = ?1", [&self.name], |r| r.get(0))
                .map_err(|e| read_err("reading the first sequence number", &self.label(), &self.file, e))?;
            Ok(min.map(|v| v as u64))
        })
    }

    /// Records held now.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.file.with_conn(|conn| {
            let n: i64 = conn
                .query_row("SELECT count(*) FROM event_log WHERE log = ?1", [&self.name], |r| r.get(0))
                .map_err(|e| read_err("counting", &self.label(), &self.file, e))?;
            Ok(n as u64)
        })
    }

    /// True when the log holds no record now.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Forgets records before `seq` (compaction after a snapshot). Sequence numbers keep
    /// counting from where they were. Returns how many records were removed.
    pub fn truncate_before(&self, seq: u64) -> Result<u64, StoreError> {
        self.file.transaction(|_| {
            self.file.with_conn(|conn| {
                let last = self.load_last(conn)?;
                conn.execute(
                    "INSERT INTO event_log_head (log, last_seq) VALUES (?1, ?2) ON CONFLICT(log) DO UPDATE SET last_seq = max(last_seq, ?2)",
                    params![self.name, seq_i64(last)],
                )
                .map_err(|e| write_err("truncating", &self.label(), &self.file, e))?;
                let n = conn
                    .execute("DELETE FROM event_log WHERE log = ?1 AND seq < ?2", params![self.name, seq_i64(seq)])
                    .map_err(|e| write_err("truncating", &self.label(), &self.file, e))?;
                Ok(n as u64)
            })
        })
    }
}

/// The latest snapshot of some state, taken at a sequence number of a log (`put` replaces it).
#[derive(Clone)]
pub struct SnapshotStore {
    pub(crate) file: StoreFile,
    pub(crate) name: String,
}

impl SnapshotStore {
    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps `data` as the snapshot taken after record `at_seq`, replacing the previous one.
    pub fn put(&self, at_seq: u64, data: &[u8]) -> Result<(), StoreError> {
        self.file.with_conn(|conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO snapshot (name, at_seq, data) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![self.name, seq_i64(at_seq), data]))
                .map_err(|e| write_err("writing a snapshot", &format!("snapshot store {}", self.name), &self.file, e))?;
            Ok(())
        })
    }

    /// The latest snapshot and the sequence number it was taken at.
    pub fn latest(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.file.with_conn(|conn| {
            conn.query_row("SELECT at_seq, data FROM snapshot WHERE name = ?1", [&self.name], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map_err(|e| read_err("reading the snapshot", &format!("snapshot store {}", self.name), &self.file, e))
        })
    }
}

/// Named positions (sequence numbers, offsets): `set(key, value)`, `get(key)`.
#[derive(Clone)]
pub struct CheckpointStore {
    pub(crate) file: StoreFile,
    pub(crate) name: String,
}

impl CheckpointStore {
    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets checkpoint `key` to `value`.
    pub fn set(&self, key: &str, value: u64) -> Result<(), StoreError> {
        self.file.with_conn(|conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO checkpoint (name, key, value) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![self.name, key, seq_i64(value)]))
                .map_err(|e| write_err(&format!("setting checkpoint {key:?}"), &format!("checkpoint store {}", self.name), &self.file, e))?;
            Ok(())
        })
    }

    /// Checkpoint `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.file.with_conn(|conn| {
            conn.prepare_cached("SELECT value FROM checkpoint WHERE name = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![self.name, key], |r| r.get::<_, i64>(0)).optional())
                .map(|v| v.map(|v| v as u64))
                .map_err(|e| read_err(&format!("reading checkpoint {key:?}"), &format!("checkpoint store {}", self.name), &self.file, e))
        })
    }

    /// Every checkpoint, sorted by key.
    pub fn all(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.file.with_conn(|conn| {
            let label = format!("checkpoint store {}", self.name);
            let mut stmt = conn
                .prepare_cached("SELECT key, value FROM checkpoint WHERE name = ?1 ORDER BY key")
                .map_err(|e| read_err("listing", &label, &self.file, e))?;
            let rows = stmt
                .query_map([&self.name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(|e| read_err("listing", &label, &self.file, e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| read_err("listing", &label, &self.file, e))
        })
    }
}

/// Entries of a keyspace: (key, value) pairs.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Byte keys to byte values, ordered by key.
#[derive(Clone)]
pub struct Keyspace {
    pub(crate) file: StoreFile,
    pub(crate) name: String,
}

/// The smallest byte string greater than every string starting with `prefix` (`None`: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> String {
        format!("keyspace {}", self.name)
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.file.with_conn(|conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO keyspace (name, key, value) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![self.name, key, value]))
                .map_err(|e| write_err("putting", &self.label(), &self.file, e))?;
            Ok(())
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.file.with_conn(|conn| {
            conn.prepare_cached("SELECT value FROM keyspace WHERE name = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![self.name, key], |r| r.get::<_, Vec<u8>>(0)).optional())
                .map_err(|e| read_err("getting", &self.label(), &self.file, e))
        })
    }

    /// Removes `key`; true when it was there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.file.with_conn(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM keyspace WHERE name = ?1 AND key = ?2")
                .and_then(|mut s| s.execute(params![self.name, key]))
                .map_err(|e| write_err("deleting", &self.label(), &self.file, e))?;
            Ok(n > 0)
        })
    }

    /// Up to `limit` entries whose key starts with `prefix`, by key.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> Result<Entries, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.file.with_conn(|conn| {
            let map = |r: &rusqlite::Row<'_>| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?));
            let result = match prefix_end(prefix) {
                Some(end) => conn
                    .prepare_cached("SELECT key, value FROM keyspace WHERE name = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4")
                    .and_then(|mut s| s.query_map(params![self.name, prefix, end, limit], map)?.collect::<Result<Vec<_>, _>>()),
                None => conn
                    .prepare_cached("SELECT key, value FROM keyspace WHERE name = ?1 AND key >= ?2 ORDER BY key LIMIT ?3")
                    .and_then(|mut s| s.query_map(params![self.name, prefix, limit], map)?.collect::<Result<Vec<_>, _>>()),
            };
            result.map_err(|e| read_err("scanning", &self.label(), &self.file, e))
        })
    }

    /// Entries held now.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.file.with_conn(|conn| {
            let n: i64 = conn
                .query_row("SELECT count(*) FROM keyspace WHERE name = ?1", [&self.name], |r| r.get(0))
                .map_err(|e| read_err("counting", &self.label(), &self.file, e))?;
            Ok(n as u64)
        })
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_after_every_extension() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
