"""Durable stores: event logs, snapshots, checkpoints and keyspaces in SQLite store files.

The stores are the Rust runtime's (``runtime_std/src/store``, docs/durability.md); this module
gives them typed Python classes. One :class:`StoreFile` (``NAME.sqlite``, SQLite in WAL mode)
holds any number of stores by name; a :class:`StoreDir` is a graph's store directory
(``<dir>/<store>.sqlite`` plus an index of the stores it created). Opening never fails because
of a crash: it recovers, and :class:`Recovery` says what was lost (``lost``) and what
uncommitted work was discarded (``notes``). Errors are :class:`StoreError`, one sentence.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> f, rec = StoreFile.open(d / "a.sqlite", create=True)
>>> log = f.event_log("jobs")
>>> log.append(b"one"), log.append(b"two")
(1, 2)
>>> [r.data for r in log.read_from(1)]
[b'one', b'two']
>>> rec.clean, rec.created
(True, True)
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manyfold._native import StoreDir as _NativeStoreDir
from manyfold._native import StoreFile as _NativeStoreFile
from manyfold.graph.errors import StoreError

READ_LIMIT_DEFAULT = 1000
"""Records (or entries) one read returns when the caller does not say."""


class Sync(str, enum.Enum):
    """A store file's fsync policy. ``FULL``: every commit is on disk when it returns (survives
    power loss). ``NORMAL``: commits survive kill -9, but a power loss may drop the last ones."""

    FULL = "full"
    NORMAL = "normal"


def _sync(value: Sync | str) -> str:
    try:
        return Sync(value).value
    except ValueError:
        raise StoreError(f"sync must be full or normal, got {value!r}", "open_failed") from None


@dataclass(frozen=True)
class Recovery:
    """What opening a store file found and did."""

    path: Path
    lost: tuple[str, ...] = ()
    """Committed data lost, one sentence each (empty: nothing committed was lost)."""
    notes: tuple[str, ...] = ()
    """Uncommitted work discarded and other findings that lost nothing."""
    wal_frames_kept: int = 0
    wal_frames_discarded: int = 0
    wal_bytes_discarded: int = 0
    moved_aside: Path | None = None
    """Where a corrupt or truncated file was moved (``NAME.sqlite.corrupt-N``)."""
    created: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing committed was lost."""
        return not self.lost

    @staticmethod
    def _from_native(t: tuple) -> "Recovery":
        path, lost, notes, kept, frames, nbytes, aside, created = t
        return Recovery(Path(path), tuple(lost), tuple(notes), kept, frames, nbytes, None if aside is None else Path(aside), created)


@dataclass(frozen=True)
class LogRecord:
    """One event-log record."""

    seq: int
    data: bytes


@dataclass(frozen=True)
class Snapshot:
    """A snapshot and the log position it was taken at."""

    at_seq: int
    data: bytes


class StoreFile:
    """One store file. Open it with :meth:`open`; its stores by name with :meth:`event_log`,
    :meth:`snapshots`, :meth:`checkpoints` and :meth:`keyspace`."""

    def __init__(self, native: _NativeStoreFile) -> None:
        self._native = native

    @staticmethod
    def open(path: str | Path, *, sync: Sync | str = Sync.FULL, create: bool = False) -> tuple["StoreFile", Recovery]:
        """Open (with recovery) the store file at ``path``. A missing file is created only with
        ``create=True``; otherwise it is a :class:`StoreError` (kind ``open_missing``)."""
        native, rec = _NativeStoreFile.open(Path(path), _sync(sync), bool(create))
        return StoreFile(native), Recovery._from_native(rec)

    @property
    def path(self) -> Path:
        return Path(self._native.path)

    @property
    def sync(self) -> Sync:
        return Sync(self._native.sync)

    def event_log(self, name: str) -> "EventLog":
        return EventLog(self, name)

    def snapshots(self, name: str) -> "SnapshotStore":
        return SnapshotStore(self, name)

    def checkpoints(self, name: str) -> "CheckpointStore":
        return CheckpointStore(self, name)

    def keyspace(self, name: str) -> "Keyspace":
        return Keyspace(self, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["StoreFile"]:
        """Everything written through this file's stores inside the ``with`` block commits
        together when it ends normally (one fsync under ``Sync.FULL``), or not at all when it
        raises."""
        self._native.begin()
        try:
            yield self
        except BaseException:
            self._native.rollback()
            raise
        self._native.commit()

    def begin(self) -> None:
        """Start a batch that stays open until :meth:`commit` or :meth:`rollback`."""
        self._native.begin()

    def commit(self) -> None:
        self._native.commit()

    def rollback(self) -> None:
        self._native.rollback()

    @property
    def in_batch(self) -> bool:
        return self._native.in_batch()

    def close(self) -> None:
        """Close this handle (its stores stop working)."""
        self._native.close()

    def __enter__(self) -> "StoreFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class EventLog:
    """Records numbered 1, 2, 3, ... without gaps; durable when ``append`` returns."""

    file: StoreFile
    name: str

    def append(self, data: bytes) -> int:
        """Append one record; returns its sequence number."""
        return self.file._native.log_append(self.name, bytes(data))

    def append_all(self, records: list[bytes]) -> tuple[int, int] | None:
        """Append several records in one transaction; returns the first and last sequence
        numbers (None for no records)."""
        return self.file._native.log_append_all(self.name, [bytes(r) for r in records])

    def read_from(self, seq: int, limit: int = READ_LIMIT_DEFAULT) -> list[LogRecord]:
        """Up to ``limit`` records from ``seq`` on."""
        return [LogRecord(s, d) for s, d in self.file._native.log_read(self.name, seq, limit)]

    @property
    def last_seq(self) -> int:
        """The last sequence number appended (0: none ever was)."""
        return self.file._native.log_last_seq(self.name)

    @property
    def first_seq(self) -> int | None:
        """The first sequence number still held (None: empty)."""
        return self.file._native.log_first_seq(self.name)

    def __len__(self) -> int:
        return self.file._native.log_len(self.name)

    def truncate_before(self, seq: int) -> int:
        """Forget records before ``seq``; numbering continues. Returns how many were removed."""
        return self.file._native.log_truncate_before(self.name, seq)


@dataclass(frozen=True)
class SnapshotStore:
    """The latest snapshot of some state (``put`` replaces it)."""

    file: StoreFile
    name: str

    def put(self, at_seq: int, data: bytes) -> None:
        self.file._native.snapshot_put(self.name, at_seq, bytes(data))

    def latest(self) -> Snapshot | None:
        got = self.file._native.snapshot_latest(self.name)
        return None if got is None else Snapshot(*got)


@dataclass(frozen=True)
class CheckpointStore:
    """Named positions."""

    file: StoreFile
    name: str

    def set(self, key: str, value: int) -> None:
        self.file._native.checkpoint_set(self.name, key, value)

    def get(self, key: str) -> int | None:
        return self.file._native.checkpoint_get(self.name, key)

    def all(self) -> dict[str, int]:
        return dict(self.file._native.checkpoint_all(self.name))


@dataclass(frozen=True)
class Keyspace:
    """Byte keys to byte values, ordered by key."""

    file: StoreFile
    name: str

    def put(self, key: bytes, value: bytes) -> None:
        self.file._native.kv_put(self.name, bytes(key), bytes(value))

    def get(self, key: bytes) -> bytes | None:
        return self.file._native.kv_get(self.name, bytes(key))

    def delete(self, key: bytes) -> bool:
        return self.file._native.kv_delete(self.name, bytes(key))

    def scan(self, prefix: bytes = b"", limit: int = READ_LIMIT_DEFAULT) -> list[tuple[bytes, bytes]]:
        return self.file._native.kv_scan(self.name, bytes(prefix), limit)

    def __len__(self) -> int:
        return self.file._native.kv_len(self.name)


class StoreDir:
    """A graph's store directory: ``<dir>/<store>.sqlite`` per store, and an index of the stores
    it created, so a store file that disappears is reported lost (never silently recreated)."""

    def __init__(self, path: str | Path) -> None:
        self._native = _NativeStoreDir(Path(path))

    @property
    def path(self) -> Path:
        return Path(self._native.path)

    def open_store(self, name: str, *, sync: Sync | str = Sync.FULL) -> tuple[StoreFile, Recovery]:
        native, rec = self._native.open_store(name, _sync(sync))
        return StoreFile(native), Recovery._from_native(rec)

    def known(self) -> list[str]:
        return self._native.known()

    @property
    def notes(self) -> list[str]:
        return self._native.notes()


@dataclass(frozen=True)
class ViewState:
    """What a materialized view holds now: its rows (key -> latest record), how it was rebuilt
    when its node started, and what recovering its store lost."""

    name: str
    rows: dict[Any, Any] = field(default_factory=dict)
    keys: int = 0
    updates: int = 0
    """Updates applied since the node started."""
    replayed: int = 0
    """Log records replayed on top of the snapshot when the node started."""
    snapshot_seq: int = 0
    """The log position of the snapshot the rebuild started from (0: none)."""
    last_seq: int = 0
    snapshots: int = 0
    store_failures: int = 0
    lost: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    store: str = ""
    truncated: bool = False
    """True when a query answer held fewer rows than the view (its row limit)."""

    def get(self, key: Any) -> Any:
        return self.rows.get(key)

    def __len__(self) -> int:
        return self.keys

    @staticmethod
    def _from_native(name: str, rows: list, info: tuple) -> "ViewState":
        keys, updates, replayed, snapshot_seq, last_seq, snapshots, failures, lost, notes, store = info
        return ViewState(name, dict(rows), keys, updates, replayed, snapshot_seq, last_seq, snapshots, failures, tuple(lost), tuple(notes), store)

    @staticmethod
    def from_dict(d: dict) -> "ViewState":
        """From a node's ``view`` query answer (rows' values stay JSON: records as objects)."""
        rows = {_hashable(r["key"]): r["value"] for r in d.get("rows", [])}
        return ViewState(
            d["view"], rows, int(d.get("keys", len(rows))), int(d.get("updates", 0)), int(d.get("replayed", 0)),
            int(d.get("snapshot_seq", 0)), int(d.get("last_seq", 0)), int(d.get("snapshots", 0)), int(d.get("store_failures", 0)),
            tuple(d.get("lost", ())), tuple(d.get("notes", ())), str(d.get("store", "")), bool(d.get("truncated", False)),
        )  # fmt: skip


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


__all__ = [
    "READ_LIMIT_DEFAULT", "CheckpointStore", "EventLog", "Keyspace", "LogRecord", "Recovery", "Snapshot", "SnapshotStore",
    "StoreDir", "StoreError", "StoreFile", "Sync", "ViewState",
]  # fmt: skip
