"""DurableQueue survives kill -9 of the process holding it (real processes, seeded kill points):
no committed append or ack is lost, ids have no gaps, only unacknowledged messages come back and
they are marked delivery_duplicated; the same on an edge node (`manyfold-node --store`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from queuekit import ACKS, DELIVERIES, JOBS, counters, job, queue_graph, watch

from manyfold import manifest
from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.launch import find_native

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
DEADLINE_S = 30.0
# (seed, lines read before the first kill, lines read before the second kill)
KILL_POINTS = [(1, 5, 40), (2, 23, 11), (3, 61, 97), (4, 130, 7), (5, 9, 180), (6, 77, 52), (7, 3, 12), (8, 44, 150), (9, 199, 25), (10, 15, 66)]


class Log:
    """What the worker processes reported durable, across runs."""

    def __init__(self) -> None:
        self.appended: set[int] = set()  # job numbers
        self.ids: dict[int, int] = {}  # id -> job number
        self.acked: set[int] = set()
        self.acking: set[int] = set()  # acks published, perhaps not committed when killed
        self.redelivered: list[tuple[int, int, bool]] = []  # (id, attempt, dup) seen first in a later run

    def read(self, line: str, run: int) -> None:
        kind, *rest = line.split()
        if kind == "A":
            self.appended.add(int(rest[0]))
        elif kind == "D":
            i, attempt, n, dup = map(int, rest)
            assert self.ids.setdefault(i, n) == n, f"id {i} delivered with job {n}, earlier with {self.ids[i]}"
            if attempt > 1 or dup:
                self.redelivered.append((i, attempt, bool(dup)))
        elif kind == "P":
            self.acking.add(int(rest[0]))
        elif kind == "K":
            self.acked.add(int(rest[0]))


def run_until_killed(store: Path, start: int, seed: int, lines: int, log: Log, run: int) -> None:
    child = subprocess.Popen([sys.executable, str(HERE / "queue_worker.py"), str(store), str(start), str(seed)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)  # fmt: skip
    read = 0
    try:
        for line in child.stdout:
            log.read(line, run)
            read += 1
            if read >= lines:
                break
    finally:
        child.kill()
        # What the worker printed before it died, including what the line iterator buffered.
        rest = child.stdout.read()
        child.wait(timeout=10)
    for line in rest.splitlines():
        log.read(line, run)
    assert read >= lines, "the worker stopped early (run it by hand to see why)"


@pytest.mark.parametrize("seed,first,second", KILL_POINTS)
def test_kill_during_appends_and_acks(tmp_path, seed, first, second):
    """Two kill -9s at seeded points, then a restart in this process: every job whose append was
    committed is acked or delivered again; no acked id comes back; every id from 1 to the last
    is accounted for; replays are marked; a job re-sent after the crash is deduplicated."""
    log = Log()
    run_until_killed(tmp_path, 1, seed, first, log, 1)
    run_until_killed(tmp_path, max(log.appended, default=0) + 1, seed + 100, second, log, 2)
    g, queue = queue_graph(tmp_path)
    seen = watch(g, queue)
    g.run_until_idle()
    replayed = {i: n for i, _, n, _ in seen.items}
    assert all(dup for *_, dup in seen.items), "a replay after a restart is marked delivery_duplicated"
    assert not replayed.keys() & log.acked, "an acknowledged message came back"
    for i, n in replayed.items():
        assert log.ids.get(i, n) == n
        log.ids[i] = n
    by_job = {n: i for i, n in log.ids.items()}
    settled = log.acked | log.acking | replayed.keys()
    lost = sorted(n for n in log.appended if n not in by_job or by_job[n] not in settled)
    assert lost == [], f"committed jobs lost: {lost}; log {log.__dict__}; replayed {replayed}"
    assert sorted(log.ids) == list(range(1, max(log.ids) + 1)), "ids have gaps"
    assert len(set(log.ids.values())) == len(log.ids), "a job was enqueued twice (dedup failed)"
    assert all(dup for _, _, dup in log.redelivered), "a redelivery was not marked"
    assert len(log.acked) > 0 and len(replayed) > 0, "the kill points exercise both acked and unacked messages"
    c = counters(g)
    assert c["store_losses"] == 0 and c["replayed"] == len(replayed)


def test_crash_before_ack_replays(tmp_path):
    """Five jobs delivered, three acked, the process killed before acking the rest: a restart
    delivers exactly jobs 4 and 5 again, marked, and numbering continues at 6."""
    child = subprocess.Popen([sys.executable, str(HERE / "queue_worker.py"), str(tmp_path), "1", "0", "pause", "5", "3"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines[-1:] == ["ready"], child.stderr.read()
    finally:
        child.kill()
        child.wait(timeout=10)
    g, queue = queue_graph(tmp_path)
    seen = watch(g, queue)
    g.run_until_idle()
    assert seen.items == [(4, 1, 4, True), (5, 1, 5, True)]
    g.producer("camera").publish(JOBS, job(6))
    assert seen.items[-1] == (6, 1, 6, False)


class NodeProc:
    """manyfold-node with a store directory, and its admin client."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise AssertionError(f"{argv[0]} printed no ready line: {self.process.stderr.read()}")
        self.admin = AdminClient(Address.parse(json.loads(line)["admin"]), timeout_s=10.0)

    def deliveries(self) -> list[dict]:
        return self.admin.ask({"q": "history", "route": str(DELIVERIES)})["envelopes"]

    def wait(self, what: str, ok) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not ok():
            assert time.monotonic() < deadline, f"the node did not get to: {what}"
            time.sleep(0.02)

    def acks_delivered(self) -> int:
        flow = self.admin.ask({"q": "query", "kind": "flow", "principal": "operator"})["answer"]
        return sum(m["delivered"] for m in flow["mailboxes"] if m["name"].startswith("image_jobs"))

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


@pytest.mark.parametrize("program", ["manyfold-node", "manyfold node"])
def test_edge_node_queue_survives_kill(tmp_path, program):
    """A manifest with the queue on a node with --store (the Rust binary and the Python CLI): 30
    jobs appended and 10 acked over the admin plane, the node killed with SIGKILL and started on
    the same store: it delivers jobs 11..30 again, marked delivery_duplicated, and nothing it acked."""
    if program == "manyfold-node":
        native = find_native()
        if native is None:
            pytest.fail("manyfold-node is not built: cargo build --release -p manyfold-runtime --bin manyfold-node")
        head = [str(native)]
    else:
        head = [sys.executable, "-m", "manyfold", "node"]
    path = tmp_path / "station.json"
    manifest.compile(queue_graph(tmp_path / "unused")[0]).write(path)
    store = tmp_path / "store"
    argv = [*head, "--manifest", str(path), "--node", "station", "--node-id", "1", "--partition", "station",
            "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--store", str(store)]  # fmt: skip
    node = NodeProc(argv)
    try:
        assert node.admin.publish(JOBS, [dict(job(n).__dict__) for n in range(1, 31)]) == 30
        node.wait("30 deliveries", lambda: len(node.deliveries()) == 30)
        assert [e["value"]["id"] for e in node.deliveries()] == list(range(1, 31))
        assert node.admin.publish(ACKS, list(range(1, 11))) == 10
        node.wait("10 acks taken from the mailbox", lambda: node.acks_delivered() == 10)
    finally:
        node.kill9()
    assert (store / "image_jobs.sqlite").exists()
    node = NodeProc(argv)
    try:
        node.wait("20 replayed deliveries", lambda: len(node.deliveries()) >= 20)
        again = node.deliveries()
        assert [(e["value"]["id"], e["value"]["body"]["n"]) for e in again] == [(i, i) for i in range(11, 31)]
        assert all("delivery_duplicated" in e["taints"] for e in again)
    finally:
        node.close()
