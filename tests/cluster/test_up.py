"""manyfold up: every node its own process, ready lines awaited (bounded), exits reported and
never restarted, everything stopped (SIGTERM, then SIGKILL) at the end. These tests run a
stand-in node (fakenode.py) so that they test the process handling alone; test_edge_nodes.py
runs the real ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusterkit import split_graph, write_plan

from manyfold.cluster import up
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.launch import LaunchCommand, Launcher
from manyfold.cluster.plan import Plan, PlannedNode

FAKE = Path(__file__).resolve().parent / "fakenode.py"


@dataclass(frozen=True)
class FakeLauncher(Launcher):
    def command(self, node: PlannedNode) -> LaunchCommand:
        return LaunchCommand((sys.executable, str(FAKE), *self.flags(node)), "fakenode")


def cluster(tmp_path: Path, base_port: int, **env: str) -> up.Cluster:
    plan_path = write_plan(tmp_path, split_graph(device=False), base_port)
    plan, _m = up.load(plan_path)
    return up.Cluster(plan, tmp_path, launcher=FakeLauncher(plan, tmp_path), env={**os.environ, **env})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_node_is_its_own_process_and_stops_cleanly(tmp_path):
    c = cluster(tmp_path, 42100)
    events: list = []
    c.start(timeout_s=20, progress=events.append)
    try:
        pids = [p.pid for p in c.processes]
        assert len(set(pids)) == 3 and all(alive(pid) for pid in pids)
        assert [type(e).__name__ for e in events] == ["Started"] * 3 + ["Ready"] * 3
        ready = {e.node.name: e.ready for e in events if isinstance(e, up.Ready)}
        with AdminClient(ready["control"].admin) as admin:
            status = admin.status()
        assert status.node == "control" and status.partitions == ("control",) and status.pid == ready["control"].pid
        assert [(k.name, k.transport, k.peer) for k in status.links] == [
            ("ab", "udp", f"udp://{c.plan.node('ingest').listen}"), ("bh", "tcp", f"tcp://{c.plan.node('host').listen}"),
        ]  # control has the lowest id: it dials both links
    finally:
        c.stop(progress=events.append)
    stopped = [e for e in events if isinstance(e, up.Stopped)]
    assert [(e.code, e.killed) for e in stopped] == [(0, False)] * 3
    assert not any(alive(pid) for pid in pids)
    assert all('"stopped": true' in p.stdout[-1] for p in c.processes)


def test_a_node_that_fails_at_start_is_reported_and_the_others_stopped(tmp_path):
    c = cluster(tmp_path, 42120, FAKENODE_FAIL="host")
    with pytest.raises(up.NodeExited) as error:
        c.start(timeout_s=20)
    assert "node host" in str(error.value) and "exited with code 3 before it was ready" in str(error.value)
    assert "cannot bind" in str(error.value)
    assert all(p.process.poll() is not None for p in c.processes)


def test_a_node_that_exits_later_is_reported_not_restarted(tmp_path):
    c = cluster(tmp_path, 42140, FAKENODE_CRASH="ingest")
    c.start(timeout_s=20)
    pids = [p.process.pid for p in c.processes]
    try:
        exited = c.watch(poll_s=0.05)
        assert exited is not None and exited.node.name == "ingest" and exited.code == 9
        assert "node crashed on purpose" in exited.stderr_tail
        # Nothing was started again: the same processes, and the crashed one stays exited.
        assert [p.process.pid for p in c.processes] == pids
        crashed = next(p for p in c.processes if p.node.name == "ingest")
        assert crashed.process.poll() == 9
    finally:
        c.stop()


def test_a_node_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    c = cluster(tmp_path, 42160, FAKENODE_STUBBORN="host")
    c.start(timeout_s=20)
    events: list = []
    started = time.monotonic()
    c.stop(grace_s=1.0, progress=events.append)
    assert 1.0 <= time.monotonic() - started < 5
    assert {e.node.name: e.killed for e in events} == {"control": False, "host": True, "ingest": False}


def test_a_plan_whose_manifest_changed_is_refused(tmp_path):
    plan_path = write_plan(tmp_path, split_graph(device=False), 42180)
    text = plan_path.read_text()
    plan_path.write_text(text.replace(Plan.read(plan_path).manifest_id, "0" * 64))
    with pytest.raises(ClusterError) as error:
        up.load(plan_path)
    assert "but the plan was made for 0000000000000000: run manyfold plan again" in str(error.value)


class Up:
    """``manyfold up`` as a process, its stderr read by a thread (every wait bounded)."""

    def __init__(self, plan_path: Path, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "manyfold", "up", str(plan_path), "--timeout", "20"], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "MANYFOLD_NODE": str(FAKE), "COLUMNS": "200", **env},
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while text not in self.stderr:
            assert self.process.poll() is None, f"manyfold up exited {self.process.returncode}: {self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout_s} s: {self.stderr}"
            time.sleep(0.05)
        return self.stderr

    def finish(self, timeout_s: float = 30) -> str:
        try:
            self.process.wait(timeout=timeout_s)
        finally:
            self.process.kill()
        self._reader.join(timeout=5)
        return self.stderr


def test_manyfold_up_shows_where_nodes_run_and_ctrl_c_stops_them(tmp_path):
    """The command: native nodes run the binary it finds (here the stand-in), progress says
    pid, listen and admin of each; Ctrl-C stops them all and exits 0."""
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 42200)
    command = Up(plan_path)
    try:
        seen = command.wait_for("Ctrl-C stops them all")
        pids = [int(line.split("pid ")[1].split(",")[0]) for line in seen.splitlines() if line.startswith("ready ")]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        assert "ready   control: pid" in seen and "listen 127.0.0.1:4220" in seen and "admin 127.0.0.1:4230" in seen
        command.process.send_signal(signal.SIGINT)
    finally:
        err = command.finish()
    assert command.process.returncode == 0, err
    assert err.count("exit code 0") == 3
    assert not any(alive(pid) for pid in pids)


def test_manyfold_up_reports_a_node_that_exits_and_exits_1(tmp_path):
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 42220)
    command = Up(plan_path, FAKENODE_CRASH="host")
    err = command.finish(60)
    assert command.process.returncode == 1, err
    assert "node host (pid" in err and "exited with code 9; it is not restarted" in err
    assert "node crashed on purpose" in err and "Traceback" not in err


def test_python_nodes_and_missing_binary_are_said(tmp_path, monkeypatch):
    """Without manyfold-node a native node runs in manyfold node, and the launch says so."""
    plan_path = write_plan(tmp_path, split_graph(device=True), 42240)
    plan = Plan.read(plan_path)
    launcher = Launcher(plan, tmp_path, None)
    control = launcher.command(plan.node("control"))
    assert control.program == "manyfold node" and "manyfold-node not found" in control.note
    ingest = launcher.command(plan.node("ingest"))
    assert ingest.argv[-2:] == ("--device", "sensor=sim:lm3s6965evb")
    assert "--link" not in ingest.argv  # control dials
    assert ("--link", f"ab=udp://{plan.node('ingest').listen}") in zip(control.argv, control.argv[1:])
