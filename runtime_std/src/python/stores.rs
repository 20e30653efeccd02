//! The durable stores for Python: `StoreFile` (one SQLite store file: event logs, snapshots,
//! checkpoints and keyspaces by name, batches) and `StoreDir` (a graph's store directory).
//! `manyfold.stores` wraps them in typed classes; errors are `manyfold.stores.StoreError`.

use std::path::PathBuf;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::errors::graph_error;
use crate::graph::view::ViewInfo;
use crate::store::{Recovery, StoreDir, StoreError, StoreFile, StoreOptions, Sync};

fn err(py: Python<'_>, e: StoreError) -> PyErr {
    graph_error(py, e.kind(), e.message())
}

fn sync_of(py: Python<'_>, word: &str) -> PyResult<Sync> {
    Sync::from_word(word).ok_or_else(|| graph_error(py, "operator_config", &format!("sync must be \"full\" or \"normal\", got {word:?}")))
}

/// (path, lost, notes, wal_frames_kept, wal_frames_discarded, wal_bytes_discarded,
/// moved_aside, created)
fn recovery_tuple<'py>(py: Python<'py>, r: &Recovery) -> PyResult<Bound<'py, PyTuple>> {
    (
        r.path.display().to_string(),
        r.lost.clone(),
        r.notes.clone(),
        r.wal_frames_kept,
        r.wal_frames_discarded,
        r.wal_bytes_discarded,
        r.moved_aside.as_ref().map(|p| p.display().to_string()),
        r.created,
    )
        .into_pyobject(py)
}

/// (keys, updates, replayed, snapshot_seq, last_seq, snapshots, store_failures, lost, notes,
/// store_path)
pub(super) fn view_info<'py>(py: Python<'py>, i: &ViewInfo) -> PyResult<Bound<'py, PyTuple>> {
    (i.keys, i.updates, i.replayed, i.snapshot_seq, i.last_seq, i.snapshots, i.store_failures, i.lost.clone(), i.notes.clone(), i.store_path.clone())
        .into_pyobject(py)
}

/// One store file (see `crate::store`).
#[pyclass(name = "StoreFile", module = "manyfold._native")]
pub struct PyStoreFile {
    file: Mutex<Option<StoreFile>>,
}

impl PyStoreFile {
    fn get(&self, py: Python<'_>) -> PyResult<StoreFile> {
        self.file.lock().clone().ok_or_else(|| graph_error(py, "open_failed", "this store file was closed"))
    }
}

#[pymethods]
impl PyStoreFile {
    /// Opens the store file at `path` with recovery; returns (file, recovery tuple).
    #[staticmethod]
    #[pyo3(signature = (path, sync, create))]
    fn open<'py>(py: Python<'py>, path: PathBuf, sync: &str, create: bool) -> PyResult<(PyStoreFile, Bound<'py, PyTuple>)> {
        let sync = sync_of(py, sync)?;
        let (file, recovery) = py.detach(|| StoreFile::open(&path, StoreOptions::new(sync), create)).map_err(|e| err(py, e))?;
        Ok((PyStoreFile { file: Mutex::new(Some(file)) }, recovery_tuple(py, &recovery)?))
    }

    /// The file's path.
    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.get(py)?.path().display().to_string())
    }

    /// Its fsync policy (`full` or `normal`).
    #[getter]
    fn sync(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.get(py)?.sync().word())
    }

    /// Closes this handle (the file closes when no handle holds it).
    fn close(&self) {
        self.file.lock().take();
    }

    fn begin(&self, py: Python<'_>) -> PyResult<()> {
        self.get(py)?.begin().map_err(|e| err(py, e))
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.get(py)?;
        py.detach(|| f.commit()).map_err(|e| err(py, e))
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.get(py)?.rollback().map_err(|e| err(py, e))
    }

    fn in_batch(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.get(py)?.in_batch())
    }

    fn log_append(&self, py: Python<'_>, log: &str, data: Vec<u8>) -> PyResult<u64> {
        let log = self.get(py)?.event_log(log).map_err(|e| err(py, e))?;
        py.detach(|| log.append(&data)).map_err(|e| err(py, e))
    }

    fn log_append_all(&self, py: Python<'_>, log: &str, records: Vec<Vec<u8>>) -> PyResult<Option<(u64, u64)>> {
        let log = self.get(py)?.event_log(log).map_err(|e| err(py, e))?;
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        py.detach(|| log.append_all(&refs)).map_err(|e| err(py, e))
    }

    fn log_read<'py>(&self, py: Python<'py>, log: &str, start: u64, limit: usize) -> PyResult<Vec<(u64, Bound<'py, PyBytes>)>> {
        let log = self.get(py)?.event_log(log).map_err(|e| err(py, e))?;
        let rows = log.read_from(start, limit).map_err(|e| err(py, e))?;
        Ok(rows.into_iter().map(|(seq, data)| (seq, PyBytes::new(py, &data))).collect())
    }

    fn log_last_seq(&self, py: Python<'_>, log: &str) -> PyResult<u64> {
        self.get(py)?.event_log(log).and_then(|l| l.last_seq()).map_err(|e| err(py, e))
    }

    fn log_first_seq(&self, py: Python<'_>, log: &str) -> PyResult<Option<u64>> {
        self.get(py)?.event_log(log).and_then(|l| l.first_seq()).map_err(|e| err(py, e))
    }

    fn log_len(&self, py: Python<'_>, log: &str) -> PyResult<u64> {
        self.get(py)?.event_log(log).and_then(|l| l.len()).map_err(|e| err(py, e))
    }

    fn log_truncate_before(&self, py: Python<'_>, log: &str, seq: u64) -> PyResult<u64> {
        self.get(py)?.event_log(log).and_then(|l| l.truncate_before(seq)).map_err(|e| err(py, e))
    }

    fn snapshot_put(&self, py: Python<'_>, name: &str, at_seq: u64, data: Vec<u8>) -> PyResult<()> {
        let s = self.get(py)?.snapshots(name).map_err(|e| err(py, e))?;
        py.detach(|| s.put(at_seq, &data)).map_err(|e| err(py, e))
    }

    fn snapshot_latest<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<(u64, Bound<'py, PyBytes>)>> {
        let latest = self.get(py)?.snapshots(name).and_then(|s| s.latest()).map_err(|e| err(py, e))?;
        Ok(latest.map(|(seq, data)| (seq, PyBytes::new(py, &data))))
    }

    fn checkpoint_set(&self, py: Python<'_>, name: &str, key: &str, value: u64) -> PyResult<()> {
        let c = self.get(py)?.checkpoints(name).map_err(|e| err(py, e))?;
        py.detach(|| c.set(key, value)).map_err(|e| err(py, e))
    }

    fn checkpoint_get(&self, py: Python<'_>, name: &str, key: &str) -> PyResult<Option<u64>> {
        self.get(py)?.checkpoints(name).and_then(|c| c.get(key)).map_err(|e| err(py, e))
    }

    fn checkpoint_all(&self, py: Python<'_>, name: &str) -> PyResult<Vec<(String, u64)>> {
        self.get(py)?.checkpoints(name).and_then(|c| c.all()).map_err(|e| err(py, e))
    }

    fn kv_put(&self, py: Python<'_>, name: &str, key: Vec<u8>, value: Vec<u8>) -> PyResult<()> {
        let k = self.get(py)?.keyspace(name).map_err(|e| err(py, e))?;
        py.detach(|| k.put(&key, &value)).map_err(|e| err(py, e))
    }

    fn kv_get<'py>(&self, py: Python<'py>, name: &str, key: Vec<u8>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self.get(py)?.keyspace(name).and_then(|k| k.get(&key)).map_err(|e| err(py, e))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    fn kv_delete(&self, py: Python<'_>, name: &str, key: Vec<u8>) -> PyResult<bool> {
        let k = self.get(py)?.keyspace(name).map_err(|e| err(py, e))?;
        py.detach(|| k.delete(&key)).map_err(|e| err(py, e))
    }

    #[allow(clippy::type_complexity)]
    fn kv_scan<'py>(&self, py: Python<'py>, name: &str, prefix: Vec<u8>, limit: usize) -> PyResult<Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
        let rows = self.get(py)?.keyspace(name).and_then(|k| k.scan(&prefix, limit)).map_err(|e| err(py, e))?;
        Ok(rows.into_iter().map(|(k, v)| (PyBytes::new(py, &k), PyBytes::new(py, &v))).collect())
    }

    fn kv_len(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        self.get(py)?.keyspace(name).and_then(|k| k.len()).map_err(|e| err(py, e))
    }
}

/// A graph's store directory.
#[pyclass(name = "StoreDir", module = "manyfold._native")]
pub struct PyStoreDir {
    dir: StoreDir,
}

#[pymethods]
impl PyStoreDir {
    /// Opens store directory `path` (created when absent).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<PyStoreDir> {
        let dir = py.detach(|| StoreDir::open(&path)).map_err(|e| err(py, e))?;
        Ok(PyStoreDir { dir })
    }

    #[getter]
    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Opens store `name` (`<dir>/<name>.sqlite`) with recovery; returns (file, recovery tuple).
    fn open_store<'py>(&self, py: Python<'py>, name: &str, sync: &str) -> PyResult<(PyStoreFile, Bound<'py, PyTuple>)> {
        let sync = sync_of(py, sync)?;
        let dir = self.dir.clone();
        let (file, recovery) = py.detach(|| dir.open_store(name, StoreOptions::new(sync))).map_err(|e| err(py, e))?;
        Ok((PyStoreFile { file: Mutex::new(Some(file)) }, recovery_tuple(py, &recovery)?))
    }

    /// Store names the index knows, sorted.
    fn known(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.dir.known().map_err(|e| err(py, e))
    }

    /// What opening the directory found (an index rebuilt).
    fn notes(&self) -> Vec<String> {
        self.dir.notes()
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStoreFile>()?;
    m.add_class::<PyStoreDir>()?;
    Ok(())
}
