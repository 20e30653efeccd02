"""The link between a host graph and a device running one partition of the same manifest.

The host runtime builds its own partitions (``manifest.load(..., partitions=[...])``); the
device runs the lowered partition image. The bridge carries events both ways over a
:class:`~manyfold.devices.link.LinkClient` (a board's UART or ``manyfold.sim``):

- a device route the host reads arrives as a device event and is published on the host graph
  under the same route, with the device's event time and taints (the host graph's link
  forwards then add the link's declared taints);
- a host route forwarded into the device partition (a ``forward`` node in the device partition
  whose input is a host route) is watched on the host, and its values are sent to the device.

In lockstep the host drives the device's clock: :meth:`DeviceBridge.step` sends what the host
produced, advances the device to the host's time and publishes what the device emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from manyfold.devices.link import LinkClient
from manyfold.devices.lower import partition_spec
from manyfold.graph import Graph, Route
from manyfold.manifest.model import Manifest


@dataclass
class BridgeCounts:
    events_from_device: int = 0
    events_to_device: int = 0
    unknown_routes: int = 0


@dataclass
class DeviceBridge:
    """Carries events between ``host`` and the device behind ``client``."""

    manifest: Manifest
    partition: str
    host: Graph
    client: LinkClient
    producer: str = "greenhouse"
    counts: BridgeCounts = field(default_factory=BridgeCounts)
    where: str = ""
    """Where the device runs, for reports: "host simulation", "QEMU lm3s6965evb", ..."""

    def __post_init__(self) -> None:
        spec = partition_spec(self.manifest, self.partition)
        self.route_names = [r.name for r in spec.routes]
        self.to_host = set(spec.to_host)
        self._publisher = self.host.producer(self.producer)
        # Host routes whose values go to the device: the inputs of the downlink forwards.
        self.downlinks: list[tuple[Route, str]] = []
        edges = {e.name: e for e in self.manifest.edges}
        for node in self.manifest.nodes:
            if node.partition == self.partition and node.kind == "forward":
                source = edges[node.inputs[0]].source
                if self.manifest.route(source).partition != self.partition:
                    self.downlinks.append((source, str(node.outputs[0])))
        self._outbox: list[tuple[str, float, int]] = []
        for source, device_route in self.downlinks:
            self.host.subscribe(source, self._queue(device_route), name=f"bridge_{source.stream}_{source.variant.word}")

    def _queue(self, device_route: str):
        def on_value(envelope) -> None:
            self._outbox.append((device_route, envelope.value, envelope.event_time_us))

        return on_value

    def step(self, now_us: int) -> list:
        """Send the host's pending values, advance the device to ``now_us``, publish its events."""
        outbox, self._outbox = self._outbox, []
        for device_route, value, _time in outbox:
            self.client.send_event(device_route, value, time_us=now_us)
            self.counts.events_to_device += 1
        events = self.client.step(now_us)
        self.publish(events)
        return events

    def publish(self, events: list) -> None:
        """Publish device events on the host graph, in the order given (what :meth:`step` does
        with the events of one step; a fleet of boards interleaves several bridges with it)."""
        for event in events:
            name = self.route_names[event.route] if event.route < len(self.route_names) else None
            if name is None or name not in self.to_host:
                self.counts.unknown_routes += 1
                continue
            self._publisher.publish(Route.parse(name), float(event.value), event_time_us=event.time_us, taint_bits=event.taints)
            self.counts.events_from_device += 1
