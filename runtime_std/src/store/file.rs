//! One store file: a SQLite database in WAL mode holding any number of named stores, opened
//! with recovery (see the module doc of [`crate::store`]).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, ReentrantMutex};
use rusqlite::{Connection, OpenFlags};

use super::error::{check_name, StoreError};
use super::stores::{CheckpointStore, EventLog, Keyspace, SnapshotStore};
use super::wal::{self, WalBefore};
use super::{Recovery, StoreOptions, Sync};

/// The format version written into every store file (`manyfold_store.format`).
pub const FORMAT: i64 = 1;

/// How long a statement waits for another connection's lock before failing.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS manyfold_store (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_log (log TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (log, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_log_head (log TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot (name TEXT PRIMARY KEY, at_seq INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (name TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keyspace (name TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
";

pub(crate) struct Inner {
    pub(crate) conn: ReentrantMutex<Connection>,
    pub(crate) path: PathBuf,
    pub(crate) sync: Sync,
    /// Last sequence number per event log, loaded on first use; cleared on rollback.
    pub(crate) log_seq: Mutex<HashMap<String, u64>>,
}

/// One store file. Cheap to clone (the clones share one connection); the store handles it
/// gives out ([`EventLog`], [`SnapshotStore`], [`CheckpointStore`], [`Keyspace`]) hold a clone.
#[derive(Clone)]
pub struct StoreFile {
    pub(crate) inner: Arc<Inner>,
}

/// A transaction in progress (see [`StoreFile::transaction`]): the stores' usual methods,
/// called while it is open, belong to it.
pub struct Tx<'a> {
    file: &'a StoreFile,
}

impl Tx<'_> {
    /// The file the transaction belongs to.
    pub fn file(&self) -> &StoreFile {
        self.file
    }
}

fn sqlite_words(e: &rusqlite::Error) -> String {
    e.to_string()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn kib(bytes: u64) -> String {
    if bytes < 10 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

impl StoreFile {
    /// Opens the store file at `path`, recovering it first when a writer died (see the module
    /// doc). A missing file is created only when `create` is true; otherwise it is
    /// [`StoreError::OpenMissing`]. Recovery never fails the open: a torn WAL keeps its intact
    /// prefix, a corrupt or truncated file is moved aside as `NAME.corrupt-N` and a fresh store
    /// started; each loss is a sentence in [`Recovery::lost`].
    pub fn open(path: impl AsRef<Path>, options: StoreOptions, create: bool) -> Result<(StoreFile, Recovery), StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut recovery = Recovery { path: path.clone(), ..Recovery::default() };
        let main_bytes = match fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::OpenFailed(format!("store file {} cannot be read: {e}", display(&path)))),
        };
        let mut wal_before = wal::inspect(&path);
        match main_bytes {
            None if wal_before.wal_bytes == 0 => {
                if !create {
                    return Err(StoreError::OpenMissing(format!("store file {} does not exist", display(&path))));
                }
                let _ = fs::remove_file(wal::with_suffix(&path, "-shm"));
                create_fresh(&path)?;
                recovery.created = true;
                wal_before = WalBefore::default();
            }
            None => {
                // A WAL without its database: the database file was deleted or renamed.
                let aside = move_aside(&path)?;
                recovery.lost.push(format!(
                    "store file {} was missing but its WAL ({}) was there: the WAL was kept as {}; started empty",
                    display(&path),
                    kib(wal_before.wal_bytes),
                    display(&aside)
                ));
                recovery.moved_aside = Some(aside);
                create_fresh(&path)?;
                recovery.created = true;
                wal_before = WalBefore::default();
            }
            Some(0) if wal_before.wal_bytes == 0 => {
                let aside = move_aside(&path)?;
                recovery.lost.push(format!(
                    "store file {} was empty (0 bytes: truncated): kept as {}; started empty, everything it held is lost",
                    display(&path),
                    display(&aside)
                ));
                recovery.moved_aside = Some(aside);
                create_fresh(&path)?;
                recovery.created = true;
                wal_before = WalBefore::default();
            }
            Some(_) => {}
        }
        let file = match open_checked(&path, options, &wal_before, &mut recovery) {
            Ok(file) => file,
            Err(why) => {
                let aside = move_aside(&path)?;
                recovery.lost.push(format!(
                    "store file {} is corrupt ({why}): kept as {}; started empty, everything it held is lost",
                    display(&path),
                    display(&aside)
                ));
                recovery.moved_aside = Some(aside);
                recovery.wal_frames_kept = 0;
                create_fresh(&path)?;
                recovery.created = true;
                let mut fresh = Recovery::default();
                open_checked(&path, options, &WalBefore::default(), &mut fresh)
                    .map_err(|why| StoreError::OpenCorrupt(format!("store file {} cannot be started fresh: {why}", display(&path))))?
            }
        };
        Ok((file, recovery))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Its fsync policy.
    pub fn sync(&self) -> Sync {
        self.inner.sync
    }

    /// The event log `name` in this file (created on first write).
    pub fn event_log(&self, name: &str) -> Result<EventLog, StoreError> {
        check_name("event log", name)?;
        Ok(EventLog { file: self.clone(), name: name.to_string() })
    }

    /// The snapshot store `name`.
    pub fn snapshots(&self, name: &str) -> Result<SnapshotStore, StoreError> {
        check_name("snapshot store", name)?;
        Ok(SnapshotStore { file: self.clone(), name: name.to_string() })
    }

    /// The checkpoint store `name`.
    pub fn checkpoints(&self, name: &str) -> Result<CheckpointStore, StoreError> {
        check_name("checkpoint store", name)?;
        Ok(CheckpointStore { file: self.clone(), name: name.to_string() })
    }

    /// The keyspace `name`.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace, StoreError> {
        check_name("keyspace", name)?;
        Ok(Keyspace { file: self.clone(), name: name.to_string() })
    }

    /// Runs `f` as one transaction: everything written through this file's stores while it
    /// runs commits together (one fsync under [`Sync::Full`]) when it returns `Ok`, or not at
    /// all when it returns `Err`. Inside an open batch ([`StoreFile::begin`]) it joins the
    /// batch instead. Other threads using this file wait until it ends.
    pub fn transaction<R>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let conn = self.inner.conn.lock();
        if !conn.is_autocommit() {
            return f(&Tx { file: self });
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| StoreError::WriteFailed(format!("beginning a transaction on {} failed: {}", display(&self.inner.path), sqlite_words(&e))))?;
        match f(&Tx { file: self }) {
            Ok(r) => match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(r),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    self.inner.log_seq.lock().clear();
                    Err(StoreError::CommitFailed(format!("committing to {} failed: {}", display(&self.inner.path), sqlite_words(&e))))
                }
            },
            Err(err) => {
                let _ = conn.execute_batch("ROLLBACK");
                self.inner.log_seq.lock().clear();
                Err(err)
            }
        }
    }

    /// Starts a batch that stays open across calls until [`StoreFile::commit`] (or
    /// [`StoreFile::rollback`]): every write through this file's stores meanwhile belongs to it.
    /// For writers that commit every N appends.
    pub fn begin(&self) -> Result<(), StoreError> {
        let conn = self.inner.conn.lock();
        if !conn.is_autocommit() {
            return Err(StoreError::TransactionMisuse(format!("a batch is already open on {}", display(&self.inner.path))));
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| StoreError::WriteFailed(format!("beginning a batch on {} failed: {}", display(&self.inner.path), sqlite_words(&e))))
    }

    /// True while a batch or transaction is open.
    pub fn in_batch(&self) -> bool {
        !self.inner.conn.lock().is_autocommit()
    }

    /// Commits the open batch (durable when this returns, under [`Sync::Full`]).
    pub fn commit(&self) -> Result<(), StoreError> {
        let conn = self.inner.conn.lock();
        if conn.is_autocommit() {
            return Err(StoreError::TransactionMisuse(format!("no batch is open on {}: nothing to commit", display(&self.inner.path))));
        }
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            self.inner.log_seq.lock().clear();
            StoreError::CommitFailed(format!("committing to {} failed: {}", display(&self.inner.path), sqlite_words(&e)))
        })
    }

    /// Drops the open batch: nothing written since [`StoreFile::begin`] is kept.
    pub fn rollback(&self) -> Result<(), StoreError> {
        let conn = self.inner.conn.lock();
        if conn.is_autocommit() {
            return Err(StoreError::TransactionMisuse(format!("no batch is open on {}: nothing to roll back", display(&self.inner.path))));
        }
        self.inner.log_seq.lock().clear();
        conn.execute_batch("ROLLBACK")
            .map_err(|e| StoreError::WriteFailed(format!("rolling back on {} failed: {}", display(&self.inner.path), sqlite_words(&e))))
    }

    /// Runs `f` on the connection (the lock is reentrant: a transaction on this thread holds it).
    pub(crate) fn with_conn<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        let conn = self.inner.conn.lock();
        f(&conn)
    }

    /// The file's path as text, for messages.
    pub(crate) fn label(&self) -> String {
        display(&self.inner.path)
    }
}

fn open_flags(create: bool) -> OpenFlags {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    flags
}

/// Creates a new store file at `path` atomically: built under a temporary name, closed (so its
/// WAL is checkpointed away), then renamed into place. A crash during creation leaves at most
/// the temporary file, never a half-made store under the real name.
fn create_fresh(path: &Path) -> Result<(), StoreError> {
    let tmp = wal::with_suffix(path, ".new");
    for leftover in [tmp.clone(), wal::with_suffix(&tmp, "-wal"), wal::with_suffix(&tmp, "-shm")] {
        let _ = fs::remove_file(leftover);
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(StoreError::OpenFailed(format!("store file {}: its directory {} does not exist", display(path), display(dir))));
        }
    }
    let failed = |e: rusqlite::Error| StoreError::OpenFailed(format!("creating store file {} failed: {}", display(path), sqlite_words(&e)));
    {
        let conn = Connection::open_with_flags(&tmp, open_flags(true)).map_err(failed)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(failed)?;
        conn.execute_batch(SCHEMA).map_err(failed)?;
        conn.execute("INSERT OR REPLACE INTO manyfold_store (key, value) VALUES ('format', ?1)", [FORMAT]).map_err(failed)?;
        conn.close().map_err(|(_, e)| failed(e))?;
    }
    fs::rename(&tmp, path).map_err(|e| StoreError::IoFailed(format!("moving the new store file into place as {} failed: {e}", display(path))))?;
    sync_dir(path);
    Ok(())
}

/// Fsyncs the directory holding `path` (so a rename survives power loss); best effort.
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Moves `path` (and its `-wal`, removing its `-shm`) aside as `path.corrupt-N`, N the first
/// free number from 1. Returns the new name of the main file (or of the WAL, when the main
/// file is absent).
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let mut n = 1u32;
    let aside = loop {
        let candidate = wal::with_suffix(path, &format!(".corrupt-{n}"));
        let taken = candidate.exists() || wal::with_suffix(&candidate, "-wal").exists();
        if !taken {
            break candidate;
        }
        n += 1;
    };
    let fail = |e: std::io::Error| StoreError::IoFailed(format!("moving the damaged store file {} aside failed: {e}", display(path)));
    let mut named = None;
    if path.exists() {
        fs::rename(path, &aside).map_err(fail)?;
        named = Some(aside.clone());
    }
    let wal_path = wal::with_suffix(path, "-wal");
    if wal_path.exists() {
        let wal_aside = wal::with_suffix(&aside, "-wal");
        fs::rename(&wal_path, &wal_aside).map_err(fail)?;
        named.get_or_insert(wal_aside);
    }
    let _ = fs::remove_file(wal::with_suffix(path, "-shm"));
    sync_dir(path);
    Ok(named.unwrap_or(aside))
}

/// Opens an existing store file, sets its pragmas, compares what SQLite kept of the WAL with
/// what was there before, and runs `quick_check`. `Err` is why the file is unusable (the
/// caller moves it aside).
fn open_checked(path: &Path, options: StoreOptions, before: &WalBefore, recovery: &mut Recovery) -> Result<StoreFile, String> {
    if before.wal_bytes == 0 {
        check_length(path)?;
    }
    let conn = Connection::open_with_flags(path, open_flags(false)).map_err(|e| sqlite_words(&e))?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS)).map_err(|e| sqlite_words(&e))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| sqlite_words(&e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("it cannot use WAL mode (journal mode {mode})"));
    }
    let sync_word = match options.sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync_word).map_err(|e| sqlite_words(&e))?;
    // Frames SQLite kept: its recovery ran when the first statement above read the database.
    let (_, kept, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| sqlite_words(&e))?;
    let kept = kept.max(0) as u64;
    recovery.wal_frames_kept = kept;
    account_wal(path, before, kept, recovery);
    let problems: Vec<String> = {
        let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(|e| sqlite_words(&e))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| sqlite_words(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| sqlite_words(&e))?
    };
    if problems.len() != 1 || problems[0] != "ok" {
        return Err(format!("quick_check: {}", problems.join("; ")));
    }
    let format: Option<i64> = conn
        .query_row("SELECT value FROM manyfold_store WHERE key = 'format'", [], |r| r.get(0))
        .map_err(|e| format!("it is not a Manyfold store ({})", sqlite_words(&e)))?;
    match format {
        Some(FORMAT) => {}
        other => return Err(format!("its format is {other:?}, this version reads {FORMAT}")),
    }
    conn.execute_batch(SCHEMA).map_err(|e| sqlite_words(&e))?;
    let inner = Inner { conn: ReentrantMutex::new(conn), path: path.to_path_buf(), sync: options.sync, log_seq: Mutex::new(HashMap::new()) };
    Ok(StoreFile { inner: Arc::new(inner) })
}

/// With no WAL to replay, the main file must be whole pages, as many as its header says (the
/// header's count is trusted as SQLite trusts it: when its version-valid-for number matches its
/// change counter). A file cut short by a torn write or a bad copy fails here even when
/// `quick_check` would not notice (the cut fell in unused space of the last page).
fn check_length(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let Ok(mut f) = fs::File::open(path) else { return Ok(()) };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut header = [0u8; 100];
    if f.read_exact(&mut header).is_err() {
        return Err(format!("it is {size} bytes, shorter than a database header: truncated"));
    }
    if &header[0..16] != b"SQLite format 3\0" {
        return Err("it does not start with the SQLite header".into());
    }
    let page = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        p => p as u64,
    };
    if page < 512 || !page.is_power_of_two() {
        return Err(format!("its header gives an invalid page size {page}"));
    }
    if size % page != 0 {
        return Err(format!("it is {size} bytes, not a whole number of its {page}-byte pages: truncated"));
    }
    let pages = u32::from_be_bytes([header[28], header[29], header[30], header[31]]) as u64;
    let valid = header[92..96] == header[24..28];
    if valid && pages > 0 && size < pages * page {
        return Err(format!("it holds {} pages but its header says {pages}: truncated", size / page));
    }
    Ok(())
}

/// Says what SQLite discarded of the WAL that was there before the open.
fn account_wal(path: &Path, before: &WalBefore, kept: u64, recovery: &mut Recovery) {
    let frame = before.frame_bytes();
    // Committed frames the writers had made: the wal-index says so when it survived; else the
    // last frame whose header marks a commit.
    let committed = before.shm_committed_frames.unwrap_or(before.last_commit_frame);
    if committed > kept {
        let lost = committed - kept;
        let bytes = lost * frame.max(FRAME_MIN);
        recovery.wal_frames_discarded += lost;
        recovery.wal_bytes_discarded += bytes;
        recovery.lost.push(format!(
            "torn WAL tail in {}: {lost} committed frame(s) ({}) after frame {kept} discarded; the store holds what was committed up to frame {kept}",
            display(path),
            kib(bytes)
        ));
    }
    let beyond = before.frames.saturating_sub(committed.max(kept));
    let partial = before.partial_bytes;
    if beyond > 0 || partial > 0 {
        let bytes = beyond * frame + partial;
        recovery.wal_frames_discarded += beyond;
        recovery.wal_bytes_discarded += bytes;
        recovery.notes.push(format!(
            "WAL of {}: {beyond} frame(s) and {partial} byte(s) of an unfinished commit ({}) discarded; nothing committed was lost there",
            display(path),
            kib(bytes)
        ));
    }
}

/// The smallest frame (a 512-byte page and its header), for sizes when the WAL header is gone.
const FRAME_MIN: u64 = 512 + wal::FRAME_HEADER_BYTES;
