"""A second, independent implementation of a simulated fleet, as a test oracle: N boards opened
one by one with ``manyfold.sim.open`` (each its own LinkClient in lockstep) and, when a host
graph is given, N ``DeviceBridge``s publishing into it.

It follows ``manyfold.sim.fleet``'s contract (docs/embedded.md, "Fleet simulation"):

- one virtual clock in ticks of ``step_us``; each tick steps every board to the tick;
- the events of a tick are merged by ``(time_us, board, arrival)`` and published in that order,
  board ``i`` as producer ``"{owner}#{i}"`` (granted the partition's host-bound
  routes), then the graph clock advances to the tick;
- no faults (the reference is the fault-free oracle) and no Python shortcut: everything goes
  through the public client and bridge APIs, one event at a time.

It is slow on purpose (plain Python per board and per event) and serves as the same-run peer
figure in ``benchmarks/fleet_sim.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from manyfold import sim
from manyfold.devices.bridge import DeviceBridge
from manyfold.devices.link import LinkClient
from manyfold.graph import Graph, Route
from manyfold.manifest.model import Manifest


@dataclass
class ReferenceReport:
    """What one ``run`` did."""

    sim_s: float
    wall_s: float
    events: int
    events_by_route: dict[str, int] = field(default_factory=dict)


class ReferenceFleet:
    """N ``sim.open`` boards in lockstep on one virtual clock (see the module docstring)."""

    def __init__(
        self,
        images: list[bytes],
        *,
        sessions: list[int] | None = None,
        board: str = "lm3s6965evb",
        manifest: Manifest | None = None,
        partition: str | None = None,
        graph: Graph | None = None,
        step_us: int = 100_000,
        record: tuple[int, ...] = (),
    ) -> None:
        if step_us <= 0:
            raise ValueError(f"step_us must be positive, got {step_us}")
        if graph is not None and (manifest is None or partition is None):
            raise ValueError("a reference fleet feeding a graph needs the manifest and the partition its boards run")
        self._images = [bytes(image) for image in images]
        self._sessions = list(sessions) if sessions is not None else [i + 1 for i in range(len(images))]
        self.step_us = step_us
        self.graph = graph
        self._now_us = 0
        self._record = set(record)
        self._events: list[list] = [[] for _ in images]
        self.boards: list[LinkClient] = []
        for i, (image, session) in enumerate(zip(self._images, self._sessions)):
            client = sim.open(image, board=board, session=session, record=i in self._record)
            client.connect(lockstep=True, reset=True)
            self.boards.append(client)
        self.bridges: list[DeviceBridge] = []
        if graph is not None:
            for i, client in enumerate(self.boards):
                producer = board_producer(_owner(manifest, partition), i)
                bridge = DeviceBridge(manifest, partition, graph, client, producer=producer, where="reference fleet")
                for name in bridge.to_host:
                    graph.grant(graph.producer(producer), Route.parse(name))
                self.bridges.append(bridge)
        self._route_names = self.bridges[0].route_names if self.bridges else []

    @property
    def count(self) -> int:
        return len(self.boards)

    @property
    def now_us(self) -> int:
        return self._now_us

    def image(self, i: int) -> bytes:
        return self._images[i]

    def session(self, i: int) -> int:
        return self._sessions[i]

    def transcript(self, i: int) -> list[bytes]:
        return self.boards[i].transcript

    def events(self, i: int) -> list:
        """Board ``i``'s events so far (every event, in arrival order)."""
        return self._events[i]

    def run_to(self, t_us: int) -> int:
        """Steps every board tick by tick up to ``t_us``; returns the events seen."""
        seen = 0
        while self._now_us < t_us:
            tick = min(self._now_us + self.step_us, t_us)
            merged = []
            for i, client in enumerate(self.boards):
                for arrival, event in enumerate(client.step(tick)):
                    self._events[i].append(event)
                    merged.append((event.time_us, i, arrival, event))
            merged.sort(key=lambda item: item[:3])
            if self.bridges:
                for _time, i, _arrival, event in merged:
                    self.bridges[i].publish([event])
                self.graph.advance_to(tick)
            seen += len(merged)
            self._now_us = tick
        return seen

    def run(self, seconds: float) -> ReferenceReport:
        start_events = [len(e) for e in self._events]
        t0 = time.perf_counter()
        t_start = self._now_us
        events = self.run_to(self._now_us + int(seconds * 1_000_000))
        wall = time.perf_counter() - t0
        by_route: dict[str, int] = {}
        for i, board_events in enumerate(self._events):
            for event in board_events[start_events[i]:]:
                name = self._route_names[event.route] if event.route < len(self._route_names) else str(event.route)
                by_route[name] = by_route.get(name, 0) + 1
        return ReferenceReport((self._now_us - t_start) / 1e6, wall, events, by_route)


def _owner(m: Manifest, partition: str) -> str:
    """The owner of the partition's host-bound routes (the producer DeviceBridge uses)."""
    from manyfold.devices.lower import partition_spec

    owners = {Route.parse(name).owner for name in partition_spec(m, partition).to_host}
    if len(owners) != 1:
        raise ValueError(f"partition {partition}'s host routes have {len(owners)} owners; a fleet needs one")
    return owners.pop()


def board_producer(owner: str, i: int) -> str:
    """The producer board ``i`` publishes as."""
    return f"{owner}#{i}"


SEED_STRIDE = 1 << 16
"""With ``seeds=s``, board ``i`` is seeded ``s + i * SEED_STRIDE`` (the fleet's contract)."""


def seeded_spec(spec, seed: int):
    """``spec`` with source j seeded ``seed + j`` (so ``greenhouse_spec(s)`` is its own seed ``s``)."""
    import dataclasses

    return dataclasses.replace(spec, sources=[dataclasses.replace(s, seed=seed + j) for j, s in enumerate(spec.sources)])


def session_for(seed: int) -> int:
    """Board session from its seed: odd, never 0."""
    return (seed & 0xFFFF_FFFF) | 1


def fleet(
    image_or_manifest,
    count: int,
    *,
    seeds=1,
    partition: str | None = None,
    board: str = "lm3s6965evb",
    graph: Graph | None = None,
    faults=None,
    step_us: int = 100_000,
    record=(),
) -> ReferenceFleet:
    """``manyfold.sim.fleet``'s signature over the reference: a ``PartitionSpec`` or a manifest
    plus ``partition``; ``seeds`` is one seed per board, or one int ``s`` for seeds ``s + i * 2**16``.
    Session ``seeds[i] | 1``. No faults."""
    from manyfold.devices.lower import partition_spec

    if faults:
        raise ValueError("the reference fleet runs without faults")
    manifest = image_or_manifest if isinstance(image_or_manifest, Manifest) else None
    spec = partition_spec(manifest, partition) if manifest is not None else image_or_manifest
    if isinstance(seeds, int):
        seeds = [seeds + i * SEED_STRIDE for i in range(count)]
    seeds = list(seeds)
    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} boards")
    images = [seeded_spec(spec, s).encode() for s in seeds]
    return ReferenceFleet(images, sessions=[session_for(s) for s in seeds], board=board, manifest=manifest,
                          partition=partition, graph=graph, step_us=step_us, record=tuple(record))  # fmt: skip
