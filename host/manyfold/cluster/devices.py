"""A node owns devices: each runs one embedded-lite partition of the manifest, on a board behind
a serial port (any pyserial URL, ``socket://`` for an emulated board's UART) or in the host
simulation (``sim:BOARD``). The node drives each in lockstep with its own clock and publishes
what the device emits into its graph through a :class:`~manyfold.devices.bridge.DeviceBridge`,
with the device's event times and taints; the graph's link forwards add the serial link's
declared taints, and from there the events reach other nodes like any partition's.

The admin endpoint's ``device`` queries ask a device over the same link (:class:`DeviceQueries`,
the native node's device hook). A link client belongs to the thread that opened it, so the hook
(called on an admin thread) hands each query to the node's loop, which asks between two steps
and hands the answer back."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass, field

from manyfold.cluster.admin import NodeDevice
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.place import is_device
from manyfold.cluster.plan import DeviceAssignment
from manyfold.devices.bridge import DeviceBridge
from manyfold.devices.link import LinkClient
from manyfold.graph import Graph
from manyfold.manifest.model import Manifest
from manyfold.query.device import DeviceAnswer

SIM = "sim:"
QUERIES_PENDING_MAX = 16
"""Device queries waiting for the node's loop at most; one more is refused with a sentence."""
QUERY_WAIT_S = 4.0
"""How long a device query waits for the node's loop to ask it (the native node waits 5 s)."""
STEP_US = 50_000
"""How far a device is stepped at a time at most (its events reach the graph this often)."""


@dataclass
class OwnedDevice:
    """One device the node drives."""

    assignment: DeviceAssignment
    client: LinkClient
    bridge: DeviceBridge
    where: str
    started: float
    device_us: int = 0
    names: dict[int, str] = field(default_factory=dict)
    """Printed route names by route id (the partition image's), for query answers."""
    closed: bool = False

    def step(self) -> int:
        """Advance the device to the node's elapsed time; returns the events it published."""
        target = int((time.monotonic() - self.started) * 1_000_000)
        published = 0
        while self.device_us < target and not self.closed:
            self.device_us = min(target, self.device_us + STEP_US)
            published += len(self.bridge.step(self.device_us))
        return published

    def ask(self, what: str, route: str | None = None) -> DeviceAnswer:
        """One query of ``manyfold.devices.queries`` over the device's link (on the thread that
        steps it); raises :class:`~manyfold.devices.queries.QueryError` when it cannot be
        answered."""
        from manyfold.devices import queries

        queries.check(what, route)
        if self.closed:
            raise queries.QueryError(f"device {self.assignment.partition} on {self.assignment.port} is closed")
        return queries.ask(self.client, what, port=self.assignment.port, route=route, names=self.names)

    def status(self) -> NodeDevice:
        """The device as the node's ``status`` lists it (state ``running`` or ``closed``)."""
        return NodeDevice(self.assignment.partition, self.assignment.port, self.where, "closed" if self.closed else "running")

    def close(self) -> None:
        self.closed = True
        self.client.close()


@dataclass
class _Pending:
    device: OwnedDevice
    what: str
    route: str | None
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict | None = None
    error: str | None = None


class DeviceQueries:
    """The native node's device hook: answers the admin endpoint's ``device`` queries by asking
    the owned device over its link (``{"what", "partition"[, "route"]}`` -> the device's typed
    answer's ``to_dict()``), lists the devices for ``status`` (``{"what": "devices"}``), and
    refuses a partition this node does not own. The node's loop calls :meth:`serve` between
    steps: the queries run there, on the thread that owns the link clients."""

    def __init__(self, node: str, devices: list[OwnedDevice]) -> None:
        self.node = node
        self.devices = devices
        self._pending: queue.Queue[_Pending] = queue.Queue(maxsize=QUERIES_PENDING_MAX)
        self._closed = False

    def __call__(self, request: dict) -> dict:
        what = request.get("what")
        if what == "devices":
            return {"devices": [dataclasses.asdict(d.status()) for d in self.devices]}
        partition = request.get("partition")
        device = next((d for d in self.devices if d.assignment.partition == partition), None)
        if device is None:
            return {"refused": f"no device {partition} behind node {self.node}"}
        if self._closed:
            raise ClusterError(f"node {self.node} is stopping")
        pending = _Pending(device, str(what), request.get("route"))
        try:
            self._pending.put_nowait(pending)
        except queue.Full:
            raise ClusterError(f"{QUERIES_PENDING_MAX} device queries already wait on node {self.node}") from None
        if not pending.done.wait(QUERY_WAIT_S):
            raise ClusterError(f"node {self.node} did not get to the query within {QUERY_WAIT_S:g} s")
        if pending.error is not None:
            raise ClusterError(pending.error)
        return pending.answer or {}

    def serve(self) -> int:
        """Asks the devices the queries waiting (on the calling thread, the one that steps the
        devices); returns how many were answered."""
        from manyfold.devices.link import LinkError

        served = 0
        # Bounded by the queue's size: new queries wait for the next call.
        for _ in range(QUERIES_PENDING_MAX):
            try:
                pending = self._pending.get_nowait()
            except queue.Empty:
                break
            try:
                pending.answer = pending.device.ask(pending.what, pending.route).to_dict()
            except (LinkError, ValueError) as error:  # QueryError is a LinkError; a bad route is a ValueError
                pending.error = str(error)
            except Exception as error:  # an answer, not a stopped node: the asker gets the reason
                pending.error = f"device {pending.device.assignment.partition}: {type(error).__name__}: {error}"
            pending.done.set()
            served += 1
        return served

    def close(self) -> None:
        """Refuses new queries and answers those waiting with an error."""
        self._closed = True
        # Bounded by the queue's size.
        while True:
            try:
                pending = self._pending.get_nowait()
            except queue.Empty:
                return
            pending.error = f"node {self.node} is stopping"
            pending.done.set()


def attach(m: Manifest, graph: Graph, assignment: DeviceAssignment) -> OwnedDevice:
    """Open ``assignment``'s port, check the device runs the partition (or load it into the
    simulation), connect in lockstep, and bridge it into ``graph``."""
    from manyfold.devices.lower import partition_image

    partition = next((p for p in m.partitions if p.name == assignment.partition), None)
    if partition is None or not is_device(partition):
        raise ClusterError(f"--device {assignment.partition}: not an embedded-lite partition of the manifest")
    image = partition_image(m, assignment.partition)
    if assignment.port.startswith(SIM):
        from manyfold import sim

        board = assignment.port[len(SIM):] or partition.placement.get("board", "lm3s6965evb")
        client = sim.open(image, board=board)
        where = f"host simulation of {board}"
    else:
        from manyfold.devices.ports import open_port

        client = open_port(assignment.port, 5.0)
        where = assignment.port
    describe = client.connect(lockstep=True, reset=True)
    if describe.manifest_id is None or describe.manifest_id.hex() != m.id or describe.partition != assignment.partition:
        client.close()
        got = describe.manifest_id.hex()[:16] if describe.manifest_id else "none"
        raise ClusterError(
            f"the device on {assignment.port} runs partition {describe.partition or '-'} of manifest {got}, "
            f"not {assignment.partition} of {m.id[:16]}: flash it (manyfold flash)"
        )
    owners = {r.route.owner for r in m.routes if r.partition == assignment.partition}
    bridge = DeviceBridge(m, assignment.partition, graph, client, producer=sorted(owners)[0] if owners else "device", where=where)
    from manyfold.devices.queries import known_route_names

    return OwnedDevice(assignment, client, bridge, where, time.monotonic(), names=known_route_names(image))


__all__ = ["DeviceQueries", "OwnedDevice", "attach"]
