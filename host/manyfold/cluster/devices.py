"""A node owns devices: each runs one embedded-lite partition of the manifest, on a board behind
a serial port (any pyserial URL, ``socket://`` for an emulated board's UART) or in the host
simulation (``sim:BOARD``). The node drives each in lockstep with its own clock and publishes
what the device emits into its graph through a :class:`~manyfold.devices.bridge.DeviceBridge`,
with the device's event times and taints; the graph's link forwards add the serial link's
declared taints, and from there the events reach other nodes like any partition's.

The node's thread steps each device; the admin endpoint's ``device`` queries ask it over the same
link from another thread (:class:`DeviceQueries`, the native node's device hook), so each device
has a lock that a step and a query take in turn."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from manyfold.cluster.errors import ClusterError
from manyfold.cluster.place import is_device
from manyfold.cluster.plan import DeviceAssignment
from manyfold.devices.bridge import DeviceBridge
from manyfold.devices.link import LinkClient
from manyfold.graph import Graph
from manyfold.manifest.model import Manifest
from manyfold.query.device import DeviceAnswer
from manyfold.query.model import Serializable

SIM = "sim:"
STEP_US = 50_000
"""How far a device is stepped at a time at most (its events reach the graph this often)."""


@dataclass(frozen=True)
class DeviceStatus(Serializable):
    """A device behind a node, as the node's ``status`` lists it."""

    partition: str
    port: str
    where: str
    """``host simulation of BOARD``, or the port."""
    state: str
    """``running`` or ``closed``."""


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Taken by a step and by a query: one conversation on the link at a time."""

    def step(self) -> int:
        """Advance the device to the node's elapsed time; returns the events it published."""
        target = int((time.monotonic() - self.started) * 1_000_000)
        published = 0
        with self.lock:
            while self.device_us < target and not self.closed:
                self.device_us = min(target, self.device_us + STEP_US)
                published += len(self.bridge.step(self.device_us))
        return published

    def ask(self, what: str, route: str | None = None) -> DeviceAnswer:
        """One query of ``manyfold.devices.queries`` over the device's link, between steps;
        raises :class:`~manyfold.devices.queries.QueryError` when it cannot be answered."""
        from manyfold.devices import queries

        queries.check(what, route)
        with self.lock:
            if self.closed:
                raise queries.QueryError(f"device {self.assignment.partition} on {self.assignment.port} is closed")
            return queries.ask(self.client, what, port=self.assignment.port, route=route, names=self.names)

    def status(self) -> DeviceStatus:
        return DeviceStatus(self.assignment.partition, self.assignment.port, self.where, "closed" if self.closed else "running")

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.client.close()


class DeviceQueries:
    """The native node's device hook: answers the admin endpoint's ``device`` queries by asking
    the owned device over its link (``{"what", "partition"[, "route"]}`` -> the device's typed
    answer's ``to_dict()``), lists the devices for ``status`` (``{"what": "devices"}``), and
    refuses a partition this node does not own."""

    def __init__(self, node: str, devices: list[OwnedDevice]) -> None:
        self.node = node
        self.devices = devices

    def __call__(self, request: dict) -> dict:
        what = request.get("what")
        if what == "devices":
            return {"devices": [d.status().to_dict() for d in self.devices]}
        partition = request.get("partition")
        device = next((d for d in self.devices if d.assignment.partition == partition), None)
        if device is None:
            return {"refused": f"no device {partition} behind node {self.node}"}
        return device.ask(str(what), request.get("route")).to_dict()


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


__all__ = ["DeviceQueries", "DeviceStatus", "OwnedDevice", "attach"]
