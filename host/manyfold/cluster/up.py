"""Start every node of a plan as its own OS process, and stop them all.

:class:`Cluster` starts each node with its command line (:mod:`manyfold.cluster.launch`),
waits (bounded) for each node's ready line, and reports what happens as typed
:class:`Progress` events. It never restarts a node: a node that exits is reported with its exit
code and the tail of its stderr (:class:`NodeExited`), and the caller decides (``manyfold up``
stops the others and exits non-zero). :meth:`Cluster.stop` sends SIGTERM to every node, and
SIGKILL to those still running after the grace period (5 s).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.launch import LaunchCommand, Launcher, find_native
from manyfold.cluster.plan import Plan, PlannedNode
from manyfold.graph.errors import ManifestError
from manyfold.manifest.model import Manifest

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
TAIL_LINES = 20


@dataclass(frozen=True)
class ReadyLine:
    """What a node prints once when it is ready."""

    node: str
    pid: int
    listen: Address
    admin: Address

    @staticmethod
    def parse(line: str) -> "ReadyLine | None":
        """The ready line in ``line``, or None when it is another line."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict) or data.get("ready") is not True:
            return None
        try:
            return ReadyLine(str(data["node"]), int(data["pid"]), Address.parse(str(data["listen"])), Address.parse(str(data["admin"])))
        except (KeyError, TypeError, ValueError, ClusterError):
            return None


# --- progress ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    node: PlannedNode
    pid: int
    command: LaunchCommand


@dataclass(frozen=True)
class Ready:
    node: PlannedNode
    ready: ReadyLine
    after_s: float


@dataclass(frozen=True)
class Exited:
    """A node ended on its own (not stopped by us)."""

    node: PlannedNode
    pid: int
    code: int
    stderr_tail: str


@dataclass(frozen=True)
class Stopped:
    node: PlannedNode
    pid: int
    code: int | None
    killed: bool
    """True when SIGTERM was not enough within the grace period."""


Progress = Started | Ready | Exited | Stopped


class NodeExited(ClusterError):
    """A node exited before it was stopped; ``exited`` holds its code and stderr tail."""

    def __init__(self, exited: Exited, when: str) -> None:
        tail = f"; its stderr ends: {exited.stderr_tail}" if exited.stderr_tail else "; it wrote nothing on stderr"
        super().__init__(f"node {exited.node.name} (pid {exited.pid}) exited with code {exited.code} {when}{tail}")
        self.exited = exited


# --- one node process ----------------------------------------------------------------------------


@dataclass
class NodeProcess:
    """A running node: its process, its ready line once seen, the tails of its output."""

    node: PlannedNode
    command: LaunchCommand
    process: subprocess.Popen
    started_at: float
    ready: ReadyLine | None = None
    stdout: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    stderr: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    ready_event: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    reported_stop: bool = False

    def __post_init__(self) -> None:
        self._threads = [
            threading.Thread(target=self._read_stdout, name=f"{self.node.name}-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"{self.node.name}-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout.append(line)
            if self.ready is None:
                ready = ReadyLine.parse(line)
                if ready is not None:
                    self.ready = ready
                    self.ready_event.set()
        self.ready_event.set()  # the process closed stdout: whoever waits wakes up

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines of stderr, joined with `` | `` (waits briefly for the reader)."""
        self._threads[1].join(timeout=1.0)
        return " | ".join(list(self.stderr)[-lines:])

    def exited(self) -> Exited | None:
        code = self.process.poll()
        if code is None:
            return None
        return Exited(self.node, self.pid, code, self.stderr_tail())


# --- the cluster ---------------------------------------------------------------------------------


def load(plan_path: Path) -> tuple[Plan, Manifest]:
    """The plan and its manifest, checked against each other."""
    plan = Plan.read(plan_path)
    manifest_path = Path(plan_path).parent / plan.manifest
    try:
        m = Manifest.read(manifest_path)
    except ManifestError as error:
        raise ClusterError(f"the plan's manifest: {error}") from None
    if m.id != plan.manifest_id:
        raise ClusterError(
            f"{manifest_path} is manifest {m.id[:16]}, but the plan was made for {plan.manifest_id[:16]}: "
            "run manyfold plan again (or fix manifest_id if you mean it)"
        )
    partitions = {p.name for p in m.partitions}
    for n in plan.nodes:
        unknown = [p for p in n.hosted if p not in partitions]
        if unknown:
            raise ClusterError(f"node {n.name} hosts {', '.join(unknown)}, which the manifest does not have")
    return plan, m


class Cluster:
    """The nodes of one plan, each its own OS process."""

    def __init__(
        self, plan: Plan, plan_dir: Path, *, launcher: Launcher | None = None, env: dict[str, str] | None = None, store_root: Path | None = None
    ) -> None:
        self.plan = plan
        self.launcher = launcher or Launcher(plan, Path(plan_dir), find_native(), store_root)
        self.env = env
        self.processes: list[NodeProcess] = []

    def start(self, *, timeout_s: float = READY_TIMEOUT_S, progress: Callable[[Progress], None] = lambda _p: None) -> None:
        """Start every node and wait for every ready line (at most ``timeout_s`` in all). On a
        failure the nodes already started are stopped and :class:`ClusterError` says why."""
        try:
            commands = [(n, self.launcher.command(n)) for n in self.plan.nodes]
            for node, command in commands:
                try:
                    process = subprocess.Popen(
                        command.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        start_new_session=True, env=self.env,
                    )  # fmt: skip
                except OSError as error:
                    raise ClusterError(f"cannot start node {node.name} ({command.argv[0]}): {error.strerror}") from None
                running = NodeProcess(node, command, process, time.monotonic())
                self.processes.append(running)
                progress(Started(node, process.pid, command))
            self._wait_ready(timeout_s, progress)
        except BaseException:
            self.stop(progress=progress)
            raise

    def _wait_ready(self, timeout_s: float, progress: Callable[[Progress], None]) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(self.processes)
        while waiting:
            for p in list(waiting):
                if p.ready is not None:
                    waiting.remove(p)
                    progress(Ready(p.node, p.ready, time.monotonic() - p.started_at))
                    continue
                exited = p.exited()
                if exited is not None:
                    raise NodeExited(exited, "before it was ready")
            if not waiting:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(f"{p.node.name} (pid {p.pid}{'; stderr: ' + p.stderr_tail(3) if p.stderr else ''})" for p in waiting)
                raise ClusterError(f"no ready line within {timeout_s:g} s from {names}")
            waiting[0].ready_event.wait(min(left, 0.05))

    def watch(self, *, poll_s: float = 0.2, until: Callable[[], bool] = lambda: False) -> Exited | None:
        """Block until a node exits on its own (returned, never restarted) or ``until()`` holds."""
        while not until():
            for p in self.processes:
                exited = p.exited()
                if exited is not None and not p.stopping:
                    return exited
            time.sleep(poll_s)
        return None

    def stop(self, *, grace_s: float = STOP_GRACE_S, progress: Callable[[Progress], None] = lambda _p: None) -> None:
        """SIGTERM to every node still running, SIGKILL to any left after ``grace_s``."""
        for p in self.processes:
            p.stopping = True
            if p.process.poll() is None:
                try:
                    p.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for p in self.processes:
            if p.reported_stop:
                continue
            p.reported_stop = True
            killed = False
            try:
                p.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # the node and what it started (its own session)
                except ProcessLookupError:
                    pass
                p.process.wait(timeout=grace_s)
            progress(Stopped(p.node, p.pid, p.process.returncode, killed))

    def process(self, name: str) -> NodeProcess:
        for p in self.processes:
            if p.node.name == name:
                return p
        raise ClusterError(f"the cluster has no node {name!r}")


__all__ = [
    "READY_TIMEOUT_S", "STOP_GRACE_S", "Cluster", "Exited", "NodeExited", "NodeProcess", "Progress", "Ready", "ReadyLine",
    "Started", "Stopped", "load",
]
