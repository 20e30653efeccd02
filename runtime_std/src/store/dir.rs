//! A graph's store directory: one store file per store name (`<dir>/<name>.sqlite`) and a small
//! index (`<dir>/manyfold-stores.sqlite`) of every store file this directory ever created, so
//! a store file that disappears is reported as lost instead of silently recreated empty.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::error::{check_name, StoreError};
use super::file::{self, StoreFile};
use super::{Recovery, StoreOptions};

/// The index's file name inside a store directory.
pub const INDEX_FILE: &str = "manyfold-stores.sqlite";
/// The extension of store files.
pub const STORE_SUFFIX: &str = ".sqlite";

/// A store directory (cheap to clone: clones share the index connection). The directory and
/// its index are created on the first [`StoreDir::open_store`] (or at once by
/// [`StoreDir::open`]), so a graph given a directory but no durable operator leaves nothing.
#[derive(Clone)]
pub struct StoreDir {
    path: PathBuf,
    index: Arc<Mutex<Option<Connection>>>,
    /// Findings of opening the directory itself (an unreadable index that was rebuilt).
    notes: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for StoreDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreDir({})", self.path.display())
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn open_index(path: &Path) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_millis(file::BUSY_TIMEOUT_MS)).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| e.to_string())?;
    let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if ok != "ok" {
        return Err(format!("quick_check: {ok}"));
    }
    conn.execute_batch("CREATE TABLE IF NOT EXISTS stores (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) WITHOUT ROWID")
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

impl StoreDir {
    /// Store directory `path`, opened when first used. Refused only when `path` exists and is
    /// not a directory.
    pub fn lazy(path: impl Into<PathBuf>) -> Result<StoreDir, StoreError> {
        let path = path.into();
        if path.exists() && !path.is_dir() {
            return Err(StoreError::OpenFailed(format!("the store directory {} is a file, not a directory", path.display())));
        }
        Ok(StoreDir { path, index: Arc::new(Mutex::new(None)), notes: Arc::new(Mutex::new(Vec::new())) })
    }

    /// Opens store directory `path` now, creating it (and its index) when absent. An index
    /// that cannot be read is moved aside (`manyfold-stores.sqlite.corrupt-N`) and rebuilt
    /// from the store files present, which is said in [`StoreDir::notes`].
    pub fn open(path: impl Into<PathBuf>) -> Result<StoreDir, StoreError> {
        let dir = StoreDir::lazy(path)?;
        drop(dir.index()?);
        Ok(dir)
    }

    /// The index connection, opening the directory first if needed.
    fn index(&self) -> Result<parking_lot::MappedMutexGuard<'_, Connection>, StoreError> {
        let mut guard = self.index.lock();
        if guard.is_none() {
            *guard = Some(self.open_now()?);
        }
        Ok(parking_lot::MutexGuard::map(guard, |c| c.as_mut().expect("opened above")))
    }

    fn open_now(&self) -> Result<Connection, StoreError> {
        let path = &self.path;
        fs::create_dir_all(path)
            .map_err(|e| StoreError::IoFailed(format!("creating the store directory {} failed: {e}", path.display())))?;
        let index_path = path.join(INDEX_FILE);
        let existed = index_path.exists();
        let mut rebuilt = false;
        let conn = match open_index(&index_path) {
            Ok(conn) => conn,
            Err(why) => {
                let mut n = 1;
                let aside = loop {
                    let candidate = path.join(format!("{INDEX_FILE}.corrupt-{n}"));
                    if !candidate.exists() {
                        break candidate;
                    }
                    n += 1;
                };
                fs::rename(&index_path, &aside).map_err(|e| {
                    StoreError::IoFailed(format!("moving the unreadable store index {} aside failed: {e}", index_path.display()))
                })?;
                let _ = fs::remove_file(path.join(format!("{INDEX_FILE}-journal")));
                self.notes.lock().push(format!(
                    "the store index {} was unreadable ({why}): kept as {}; rebuilt from the store files present, so a store file that went missing before now cannot be noticed",
                    index_path.display(),
                    aside.display()
                ));
                rebuilt = true;
                open_index(&index_path)
                    .map_err(|why| StoreError::OpenFailed(format!("creating the store index {} failed: {why}", index_path.display())))?
            }
        };
        if !existed || rebuilt {
            // Store files made before the index (or before it was rebuilt) are registered now.
            for name in self.files_present()? {
                conn.execute("INSERT OR IGNORE INTO stores (name, created_ms) VALUES (?1, ?2)", params![name, now_ms()])
                    .map_err(|e| StoreError::WriteFailed(format!("recording store {name} in the index of {} failed: {e}", path.display())))?;
            }
        }
        Ok(conn)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file of store `name`: `<dir>/<name>.sqlite`.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}{STORE_SUFFIX}"))
    }

    /// What opening the directory found (an index rebuilt); empty normally.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().clone()
    }

    /// Store names the index knows, sorted.
    pub fn known(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.index()?;
        let fail = |e: rusqlite::Error| StoreError::ReadFailed(format!("reading the store index of {} failed: {e}", self.path.display()));
        let mut stmt = conn.prepare("SELECT name FROM stores ORDER BY name").map_err(fail)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)
    }

    fn files_present(&self) -> Result<Vec<String>, StoreError> {
        let entries = fs::read_dir(&self.path)
            .map_err(|e| StoreError::IoFailed(format!("listing the store directory {} failed: {e}", self.path.display())))?;
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().to_string();
            if file_name == INDEX_FILE {
                continue;
            }
            if let Some(name) = file_name.strip_suffix(STORE_SUFFIX) {
                if check_name("store", name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn registered(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.index()?;
        conn.query_row("SELECT created_ms FROM stores WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::ReadFailed(format!("reading the store index of {} failed: {e}", self.path.display())))
    }

    fn register(&self, name: &str) -> Result<(), StoreError> {
        let conn = self.index()?;
        conn.execute("INSERT OR IGNORE INTO stores (name, created_ms) VALUES (?1, ?2)", params![name, now_ms()])
            .map(|_| ())
            .map_err(|e| StoreError::WriteFailed(format!("recording store {name} in the index of {} failed: {e}", self.path.display())))
    }

    /// Opens store `name` (`<dir>/<name>.sqlite`) with recovery. A first open creates the file
    /// and records it in the index; a later open of a file the index knows but that is gone
    /// starts it empty and says so in [`Recovery::lost`].
    pub fn open_store(&self, name: &str, options: StoreOptions) -> Result<(StoreFile, Recovery), StoreError> {
        check_name("store", name)?;
        let path = self.file_path(name);
        let registered = self.registered(name)?;
        let present = path.exists() || super::wal::with_suffix(&path, "-wal").exists();
        let (file, mut recovery) = StoreFile::open(&path, options, true)?;
        if let (Some(created_ms), false) = (registered, present) {
            recovery.lost.insert(
                0,
                format!(
                    "store file {} is missing, though this directory created it (at {} ms since 1970): started empty; everything it held is lost",
                    path.display(),
                    created_ms
                ),
            );
        }
        if registered.is_none() {
            self.register(name)?;
        }
        recovery.notes.extend(self.notes());
        Ok((file, recovery))
    }
}
