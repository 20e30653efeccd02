"""A node owns devices: each runs one embedded-lite partition of the manifest, on a board behind
a serial port (any pyserial URL, ``socket://`` for an emulated board's UART) or in the host
simulation (``sim:BOARD``). The node drives each in lockstep with its own clock and publishes
what the device emits into its graph through a :class:`~manyfold.devices.bridge.DeviceBridge`,
with the device's event times and taints; the graph's link forwards add the serial link's
declared taints, and from there the events reach other nodes like any partition's."""

from __future__ import annotations

import time
from dataclasses import dataclass

from manyfold.cluster.errors import ClusterError
from manyfold.cluster.place import is_device
from manyfold.cluster.plan import DeviceAssignment
from manyfold.devices.bridge import DeviceBridge
from manyfold.devices.link import LinkClient
from manyfold.graph import Graph
from manyfold.manifest.model import Manifest

SIM = "sim:"
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

    def step(self) -> int:
        """Advance the device to the node's elapsed time; returns the events it published."""
        target = int((time.monotonic() - self.started) * 1_000_000)
        published = 0
        while self.device_us < target:
            self.device_us = min(target, self.device_us + STEP_US)
            published += len(self.bridge.step(self.device_us))
        return published

    def close(self) -> None:
        self.client.close()


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
    return OwnedDevice(assignment, client, bridge, where, time.monotonic())


__all__ = ["OwnedDevice", "attach"]
