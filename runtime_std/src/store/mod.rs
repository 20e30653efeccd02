//! Durable stores on SQLite (WAL mode, through rusqlite's bundled build): an [`EventLog`], a
//! [`SnapshotStore`], a [`CheckpointStore`] and a [`Keyspace`], any number of each by name in
//! one [`StoreFile`], with transactions across them, an fsync policy per file ([`Sync`]), and
//! recovery that never crashes and always says what was lost ([`Recovery`]).
//!
//! # Layout
//! - this module: [`Sync`], [`StoreOptions`], [`Recovery`].
//! - [`error`]: [`StoreError`], one flat enum (operation + failure), one sentence each.
//! - [`file`]: [`StoreFile`]: opening with recovery, transactions ([`StoreFile::transaction`])
//!   and open-ended batches ([`StoreFile::begin`] / [`StoreFile::commit`]).
//! - [`stores`]: the four stores. [`EventLog`]: `append(&[u8]) -> seq` (1, 2, 3, ... no gaps),
//!   `append_all`, `read_from(seq, limit)`, `last_seq`, `first_seq`, `len`,
//!   `truncate_before(seq)`. [`SnapshotStore`]: `put(at_seq, &[u8])`, `latest() ->
//!   Option<(seq, bytes)>`. [`CheckpointStore`]: `set(key, u64)`, `get(key)`, `all()`.
//!   [`Keyspace`]: `put`, `get`, `delete`, `scan(prefix, limit)`, `len`.
//! - [`dir`]: [`StoreDir`], a graph's store directory: `<dir>/<store>.sqlite` per store and an
//!   index `<dir>/manyfold-stores.sqlite` of the stores it created.
//! - [`wal`]: reading the WAL and wal-index a crashed writer left, before SQLite opens them.
//!
//! # Files
//! A store file is one SQLite database in WAL mode (`NAME.sqlite`, with `NAME.sqlite-wal` and
//! `NAME.sqlite-shm` beside it while open). Tables: `manyfold_store` (format version),
//! `event_log (log, seq, data)`, `event_log_head (log, last_seq)` (so sequence numbers keep
//! counting after `truncate_before`), `snapshot (name, at_seq, data)`, `checkpoint (name, key,
//! value)`, `keyspace (name, key, value)`. Files are readable with the `sqlite3` CLI and
//! Python's `sqlite3`.
//!
//! # Durability
//! [`Sync::Full`] (`PRAGMA synchronous=FULL`): a commit is on disk when it returns; it
//! survives kill -9 and power loss. [`Sync::Normal`]: survives kill -9 (the OS has the
//! write), but a power loss may drop the last commits since the last WAL checkpoint. Each
//! store file states its policy; there is no default hidden in the engine.
//!
//! # Recovery (`StoreFile::open`, `StoreDir::open_store`)
//! Before SQLite opens a file, the store reads the WAL's frame headers and the `-shm`
//! wal-index's committed frame count (read only). After SQLite's own recovery, `PRAGMA
//! wal_checkpoint` says how many frames it kept:
//! - fewer than the wal-index said were committed: a torn WAL; SQLite kept a consistent prefix,
//!   and [`Recovery::lost`] says how many committed frames (and KiB) after which frame were
//!   discarded;
//! - frames or bytes after the last commit (an interrupted commit, e.g. kill -9 during a
//!   write): discarded; nothing committed was lost; said in [`Recovery::notes`].
//! - `PRAGMA quick_check` fails, the file is not a database, or it is empty (truncated to 0):
//!   the file (and its WAL) is moved aside as `NAME.sqlite.corrupt-N`, a fresh store is
//!   started, and [`Recovery::lost`] names the kept file.
//! - a store file the directory index recorded is gone: started empty, said in
//!   [`Recovery::lost`].
//!
//! A missing file is never created silently: [`StoreFile::open`] creates only when asked, and
//! [`StoreDir::open_store`] records what it creates. New files are built under a temporary name
//! and renamed into place, so a crash during creation leaves no half-made store.

pub mod dir;
pub mod error;
pub mod file;
pub mod stores;
pub mod wal;

use std::path::PathBuf;

pub use dir::StoreDir;
pub use error::StoreError;
pub use file::{StoreFile, Tx};
pub use stores::{CheckpointStore, EventLog, Keyspace, SnapshotStore};

/// A store file's fsync policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sync {
    /// `synchronous=FULL`: every commit is fsynced; it survives power loss.
    Full,
    /// `synchronous=NORMAL`: commits survive kill -9; a power loss may drop the last commits.
    Normal,
}

impl Sync {
    /// The policy's word (`full`, `normal`).
    pub fn word(self) -> &'static str {
        match self {
            Sync::Full => "full",
            Sync::Normal => "normal",
        }
    }

    /// Parses `full` or `normal`.
    pub fn from_word(word: &str) -> Option<Sync> {
        match word {
            "full" => Some(Sync::Full),
            "normal" => Some(Sync::Normal),
            _ => None,
        }
    }
}

/// How to open a store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Its fsync policy.
    pub sync: Sync,
}

impl StoreOptions {
    /// Options with fsync policy `sync`.
    pub fn new(sync: Sync) -> StoreOptions {
        StoreOptions { sync }
    }
}

/// What opening a store file found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The file.
    pub path: PathBuf,
    /// Committed data lost, one sentence each (empty: nothing committed was lost).
    pub lost: Vec<String>,
    /// What was discarded that was never committed, and other findings that lost nothing.
    pub notes: Vec<String>,
    /// WAL frames SQLite kept.
    pub wal_frames_kept: u64,
    /// WAL frames discarded (committed or not).
    pub wal_frames_discarded: u64,
    /// WAL bytes discarded.
    pub wal_bytes_discarded: u64,
    /// Where a damaged file was moved.
    pub moved_aside: Option<PathBuf>,
    /// True when the open created a new file.
    pub created: bool,
}

impl Recovery {
    /// True when nothing committed was lost.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
    }
}

#[cfg(test)]
mod tests;
