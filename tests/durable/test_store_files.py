"""manyfold.stores from Python: the Rust stores through the extension, with typed results and
one-sentence errors, on real files."""

from __future__ import annotations

import pytest

from manyfold.stores import LogRecord, Recovery, Snapshot, StoreDir, StoreError, StoreFile, Sync


def test_a_store_file_keeps_logs_snapshots_checkpoints_and_keys_across_reopen(tmp_path):
    """Everything written is read back after the file is closed and opened again."""
    f, rec = StoreFile.open(tmp_path / "a.sqlite", sync=Sync.NORMAL, create=True)
    assert rec == Recovery(tmp_path / "a.sqlite", created=True) and rec.clean
    log = f.event_log("jobs")
    assert log.append_all([b"a", b"b", b"c"]) == (1, 3)
    assert log.truncate_before(2) == 1
    f.snapshots("view").put(3, b"state")
    f.checkpoints("acks").set("acked", 2)
    f.keyspace("k").put(b"x1", b"one")
    f.close()
    f, rec = StoreFile.open(tmp_path / "a.sqlite")
    assert rec.clean and not rec.created and f.sync is Sync.FULL
    log = f.event_log("jobs")
    assert log.read_from(1) == [LogRecord(2, b"b"), LogRecord(3, b"c")]
    assert (log.first_seq, log.last_seq, len(log)) == (2, 3, 2)
    assert f.snapshots("view").latest() == Snapshot(3, b"state")
    assert f.checkpoints("acks").all() == {"acked": 2}
    assert f.keyspace("k").scan(b"x") == [(b"x1", b"one")]


def test_a_failed_transaction_keeps_nothing(tmp_path):
    """An exception inside `with file.transaction()` rolls back every store written in it."""
    f, _ = StoreFile.open(tmp_path / "t.sqlite", create=True)
    log, acks = f.event_log("l"), f.checkpoints("c")
    with pytest.raises(RuntimeError):
        with f.transaction():
            log.append(b"x")
            acks.set("acked", 1)
            raise RuntimeError("stop")
    assert (log.last_seq, acks.get("acked")) == (0, None)
    with f.transaction():
        assert log.append(b"y") == 1


def test_errors_are_one_sentence_store_errors(tmp_path):
    """A missing file without create, a bad sync word and a bad name are StoreError or
    ValueError sentences, never tracebacks from the engine."""
    with pytest.raises(StoreError, match=r"^store file .*nope.sqlite does not exist$") as missing:
        StoreFile.open(tmp_path / "nope.sqlite")
    assert missing.value.kind == "open_missing" and not (tmp_path / "nope.sqlite").exists()
    with pytest.raises(StoreError, match="sync must be full or normal"):
        StoreFile.open(tmp_path / "x.sqlite", sync="sometimes", create=True)
    f, _ = StoreFile.open(tmp_path / "x.sqlite", create=True)
    with pytest.raises(ValueError, match="is not usable"):
        f.event_log("../etc").append(b"x")


def test_corrupt_and_missing_files_are_reported_never_raised(tmp_path):
    """Garbage in place of a store is moved aside and reported; a store file its directory
    created and that vanished is reported missing."""
    (tmp_path / "g.sqlite").write_bytes(b"\x42" * 8192)
    f, rec = StoreFile.open(tmp_path / "g.sqlite")
    assert rec.moved_aside == tmp_path / "g.sqlite.corrupt-1" and rec.moved_aside.read_bytes() == b"\x42" * 8192
    assert len(rec.lost) == 1 and "kept as" in rec.lost[0]
    assert f.event_log("l").append(b"x") == 1

    d = StoreDir(tmp_path / "stores")
    f, rec = d.open_store("jobs")
    f.event_log("l").append(b"x")
    f.close()
    (tmp_path / "stores" / "jobs.sqlite").unlink()
    (tmp_path / "stores" / "jobs.sqlite-wal").unlink(missing_ok=True)
    f, rec = StoreDir(tmp_path / "stores").open_store("jobs")
    assert not rec.clean and "is missing, though this directory created it" in rec.lost[0]
    assert d.known() == ["jobs"]
