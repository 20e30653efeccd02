"""A materialized view survives kill -9 of the process that keeps it: a Python process, a
`manyfold-node --store` and a `manyfold node --store` are killed mid-stream; the view rebuilt
from its snapshot plus the log tail holds every committed update, says how many it replayed,
reports no loss, and answers over the node query plane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from viewkit import SOURCE, VIEW, expected_rows, reading, view_graph

from manyfold import manifest
from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.launch import find_native
from manyfold.graph import StoreError
from manyfold.stores import ViewState

HERE = Path(__file__).resolve().parent
READY_S = 30.0


def test_a_view_needs_a_store_directory():
    """Without a store directory the view is refused in the contract's one sentence."""
    with pytest.raises(StoreError, match=r"^node latest \(materialized_view\) keeps durable state: give the graph a store directory"):
        view_graph(None)


def test_a_view_is_rebuilt_from_snapshot_and_log_tail_in_process(tmp_path):
    """Closing and reopening the graph rebuilds the rows; replayed counts the log after the snapshot."""
    g = view_graph(tmp_path, snapshot_every=50)
    producer = g.producer("probe")
    for i in range(1, 121):
        g.publish(SOURCE, reading(i), producer=producer)
    before = g.view(VIEW)
    assert {k: v.seq for k, v in before.rows.items()} == expected_rows(120)
    assert (before.updates, before.snapshots, before.snapshot_seq) == (120, 2, 100)
    del g, before
    after = view_graph(tmp_path, snapshot_every=50).view(VIEW)
    assert {k: v.seq for k, v in after.rows.items()} == expected_rows(120)
    assert (after.replayed, after.snapshot_seq, after.last_seq, after.lost) == (20, 100, 120, ())


@pytest.mark.parametrize("kill_after", [7, 63, 151])
def test_kill9_of_a_python_writer_loses_no_committed_update(tmp_path, kill_after):
    """A Python process publishing into the view is killed with SIGKILL after `kill_after`
    acknowledged updates (before the first snapshot, just after it, after several); the
    rebuilt view holds every acknowledged update (and at most the one in flight)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(HERE / "view_writer.py"), str(tmp_path), "100000"], stdout=subprocess.PIPE, text=True, env=env)
    acked = 0
    try:
        for line in child.stdout:
            acked = int(line)
            if acked >= kill_after:
                break
    finally:
        child.kill()
        child.wait(timeout=10)
    assert acked >= kill_after, "the writer stopped early"
    # What it acknowledged before it died (it ran on while we read): the rest of the pipe.
    for line in child.stdout:
        acked = int(line)
    view = view_graph(tmp_path).view(VIEW)
    assert view.lost == (), view.lost
    assert acked <= view.last_seq <= acked + 1, "more than the update in flight appeared, or an acknowledged one vanished"
    assert {k: v.seq for k, v in view.rows.items()} == expected_rows(view.last_seq)
    assert view.replayed == view.last_seq - view.snapshot_seq and view.snapshot_seq == (view.last_seq // 50) * 50


class NodeProc:
    """A node process with a store directory; its admin client."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise AssertionError(f"{argv[0]} printed no ready line: {self.process.stderr.read()}")
        self.ready = json.loads(line)
        self.admin = AdminClient(Address.parse(self.ready["admin"]), timeout_s=10.0)

    def view(self) -> ViewState:
        answer = self.admin.ask({"q": "query", "kind": "view", "principal": "operator", "view": VIEW})
        assert "answer" in answer, answer
        return ViewState.from_dict(answer["answer"])

    def kill9(self) -> None:
        self.admin.close()
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        self.admin.close()
        self.process.terminate()
        try:
            self.process.communicate(timeout=20)
        finally:
            self.process.kill()


def node_argv(program: str, manifest_path: Path, store: Path) -> list[str]:
    if program == "manyfold-node":
        native = find_native()
        if native is None:
            pytest.fail("manyfold-node is not built: cargo build --release -p manyfold-runtime --bin manyfold-node")
        head = [str(native)]
    else:
        head = [sys.executable, "-m", "manyfold", "node"]
    return [*head, "--manifest", str(manifest_path), "--node", "station", "--node-id", "1", "--partition", "station",
            "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--store", str(store)]  # fmt: skip


@pytest.mark.parametrize("program", ["manyfold-node", "manyfold node"])
def test_a_node_killed_with_sigkill_answers_its_rebuilt_view_over_the_query_plane(tmp_path, program):
    """Updates published into a node's view, the node killed with SIGKILL, started again on the
    same --store: the `view` query answers every update, with the rebuild counts and no loss."""
    path = tmp_path / "station.json"
    manifest.compile(view_graph(tmp_path / "unused")).write(path)
    store = tmp_path / "store"
    node = NodeProc(node_argv(program, path, store))
    try:
        sent = 0
        for batch in range(4):
            values = [dict(reading(i).__dict__) for i in range(sent + 1, sent + 31)]
            assert node.admin.publish(SOURCE, values) == 30
            sent += 30
        first = node.view()
        assert {k: v["seq"] for k, v in first.rows.items()} == expected_rows(sent)
        assert (first.updates, first.snapshot_seq, first.replayed) == (120, 100, 0)
    finally:
        node.kill9()
    assert (store / "latest.sqlite").exists() and (store / "manyfold-stores.sqlite").exists()
    started = time.monotonic()
    node = NodeProc(node_argv(program, path, store))
    try:
        again = node.view()
        assert {k: v["seq"] for k, v in again.rows.items()} == expected_rows(sent)
        assert (again.updates, again.replayed, again.snapshot_seq, again.last_seq, again.lost) == (0, 20, 100, 120, ())
        assert time.monotonic() - started < READY_S
        refused = node.admin.ask({"q": "query", "kind": "view", "principal": "stranger", "view": VIEW})
        assert "refused" in refused
    finally:
        node.close()


def test_a_duplicate_record_leaves_the_same_row(tmp_path):
    """The same record delivered twice leaves its key's row as one delivery would."""
    g = view_graph(tmp_path)
    producer = g.producer("probe")
    for i in (1, 2, 2, 3, 3, 3):
        g.publish(SOURCE, reading(i), producer=producer)
    view = g.view(VIEW)
    assert {k: v.seq for k, v in view.rows.items()} == expected_rows(3) and view.updates == 6


def test_a_lost_store_file_is_reported_in_the_view(tmp_path):
    """A view whose store file disappeared starts empty and says so in `lost` and in its
    health; a torn WAL (cut inside committed frames) reports the discarded frames."""
    g = view_graph(tmp_path)
    producer = g.producer("probe")
    for i in range(1, 11):
        g.publish(SOURCE, reading(i), producer=producer)
    del g
    (tmp_path / "latest.sqlite").unlink()
    (tmp_path / "latest.sqlite-wal").unlink(missing_ok=True)
    view = view_graph(tmp_path).view(VIEW)
    assert view.rows == {} and len(view.lost) == 1 and "is missing, though this directory created it" in view.lost[0]


def test_a_node_without_a_store_directory_refuses_the_manifest_in_one_sentence(tmp_path):
    """manyfold-node given a manifest with a view but no --store exits 2 with the contract's sentence."""
    path = tmp_path / "station.json"
    manifest.compile(view_graph(tmp_path / "unused")).write(path)
    argv = node_argv("manyfold-node", path, tmp_path / "store")[:-2]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.endswith("node latest (materialized_view) keeps durable state: give the graph a store directory (Graph(store_dir=...), or manyfold-node --store DIR)")
