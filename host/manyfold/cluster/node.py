"""``manyfold node``: a runtime node in Python, for partitions with Python operators and for
devices. The same flags as ``manyfold-node`` (docs/edge.md), plus ``--device``, ``--callables``
and ``--app``.

It loads the hosted partitions of the manifest into a real-time graph with their Python
functions (:mod:`manyfold.cluster.callables`), starts the Rust runtime node on that graph
(``_native.Node``: links, handshake, queues, admin endpoint), attaches its devices
(:mod:`manyfold.cluster.devices`; the admin endpoint's ``device`` queries ask them over their
links), prints the ready line, runs the graph's scheduler and the
devices until SIGTERM, SIGINT or the admin ``stop``, then stops cleanly (what was sent is
acknowledged, bounded) and prints the stopped line.

An ``--app MODULE:FUNC`` is called once the node is ready, on a thread of its own, with a
:class:`NodeApp`: it publishes into the graph (sources the node hosts) until ``app.stopping``
is set.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from manyfold.cluster import callables as callable_refs
from manyfold.cluster.address import Address, PeerUrl
from manyfold.cluster.devices import DeviceQueries, OwnedDevice, attach
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.place import is_device
from manyfold.cluster.plan import DeviceAssignment
from manyfold.graph import Graph
from manyfold.manifest.model import Manifest
from manyfold.zenoh.options import ZenohOptions

TICK_S = 0.02
"""How long the scheduler runs between looks at devices and the stop flag."""


@dataclass(frozen=True)
class NodeOptions:
    """A node's command line, typed."""

    manifest: Path
    name: str
    node_id: int
    partitions: tuple[str, ...]
    listen: Address
    admin: Address | None = None
    links: tuple[tuple[str, PeerUrl], ...] = ()
    keys: tuple[tuple[str, Path], ...] = ()
    faults: tuple[tuple[str, str], ...] = ()
    devices: tuple[DeviceAssignment, ...] = ()
    callables: str | None = None
    """``MODULE:ATTR``: functions the manifest names but that cannot be imported by name."""
    app: str | None = None
    """``MODULE:FUNC``: called with a :class:`NodeApp` once the node is ready."""
    lease_ms: int | None = None
    queue_depth: int | None = None
    peers: tuple[Address, ...] = ()
    """Other nodes' admin endpoints (discovery: configured peers)."""
    advertise: str | None = None
    """The host peers reach this node at (required with a wildcard bind and discovery)."""
    beacon: bool = False
    beacon_group: str | None = None
    beacon_interface: str | None = None
    gossip_ms: int | None = None
    store: Path | None = None
    """The graph's store directory (durable operators keep their stores there)."""
    zenoh: ZenohOptions | None = None
    """How the node joins Zenoh (``--zenoh-*``): its zenoh links, presence, the query plane."""


@dataclass
class NodeApp:
    """What an ``--app`` function gets: the node's graph, manifest and options, and the event
    set when the node stops."""

    graph: Graph
    manifest: Manifest
    options: NodeOptions
    stopping: threading.Event = field(default_factory=threading.Event)


def pair(text: str, flag: str) -> tuple[str, str]:
    """``NAME=VALUE`` of a repeatable flag."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ClusterError(f"{flag} takes NAME=VALUE, got {text!r}")
    return name, value


def _check(m: Manifest, options: NodeOptions) -> None:
    partitions = {p.name: p for p in m.partitions}
    for p in options.partitions:
        if p not in partitions:
            raise ClusterError(f"node {options.name}: the manifest has no partition {p} (it has {', '.join(partitions)})")
        if is_device(partitions[p]):
            raise ClusterError(f"node {options.name}: {p} is a device partition; host it with --device {p}=PORT")
    for d in options.devices:
        if d.partition in options.partitions:
            raise ClusterError(f"node {options.name}: {d.partition} is given both as --partition and as --device")
    for name, path in options.keys:
        if not path.is_file():
            raise ClusterError(f"node {options.name}: the key file {path} of link {name} does not exist")


class RunningNode:
    """A started node: its graph, the native node, its devices and app."""

    def __init__(self, options: NodeOptions) -> None:
        from manyfold import _native, manifest

        self.options = options
        m = Manifest.read(options.manifest)
        _check(m, options)
        self.manifest = m
        functions = callable_refs.resolve(m, options.partitions, options.callables)
        app_fn: Callable | None = callable_refs.load_attr(options.app, "--app") if options.app else None
        self.graph = manifest.load(m, callables=functions, partitions=list(options.partitions), realtime=True, store_dir=options.store)
        hosted = [*options.partitions, *(d.partition for d in options.devices)]
        extra = {k: v for k, v in (
            ("lease_ms", options.lease_ms), ("queue_depth_max", options.queue_depth), ("advertise", options.advertise),
            ("beacon_group", options.beacon_group), ("beacon_interface", options.beacon_interface), ("gossip_ms", options.gossip_ms),
        ) if v is not None}  # fmt: skip
        if options.zenoh is not None:
            from manyfold.zenoh.native import native

            native()  # a build without Zenoh: one sentence, before the node starts
            extra.update(options.zenoh.native_kwargs())
        self.devices: list[OwnedDevice] = []
        self.device_queries = DeviceQueries(options.name, self.devices)
        try:
            self.native = _native.Node(
                self.graph._native, m.to_cbor(), options.name, options.node_id, hosted, str(options.listen),
                links=[(name, str(url)) for name, url in options.links], keys=[(name, str(path)) for name, path in options.keys],
                admin=str(options.admin) if options.admin else None, faults=list(options.faults),
                device_hook=self.device_queries, peers=[str(p) for p in options.peers], beacon=options.beacon, **extra,
            )  # fmt: skip
        except Exception as error:  # the binding's errors are sentences
            raise ClusterError(f"node {options.name}: {error}") from None
        self.app = NodeApp(self.graph, m, options)
        self._app_fn = app_fn
        self._app_thread: threading.Thread | None = None
        self.app_error: BaseException | None = None
        try:
            for d in options.devices:
                self.devices.append(attach(m, self.graph, d))
        except BaseException:
            self.close()
            raise

    @property
    def ready_line(self) -> str:
        ready = json.loads(self.native.ready_line)
        ready["pid"] = os.getpid()
        return json.dumps(ready)

    def start_app(self) -> None:
        if self._app_fn is None:
            return

        def run() -> None:
            try:
                self._app_fn(self.app)  # type: ignore[misc]
            except BaseException as error:  # reported by the main loop
                self.app_error = error

        self._app_thread = threading.Thread(target=run, name=f"{self.options.name}-app", daemon=True)
        self._app_thread.start()

    def run(self, stop: threading.Event) -> None:
        """Run the graph and the devices until ``stop`` is set or the node was asked to stop."""
        while not stop.is_set() and not self.native.stopping:
            self.graph.run_realtime(TICK_S)
            for device in self.devices:
                device.step()
            self.device_queries.serve()
            if self.app_error is not None:
                raise ClusterError(f"node {self.options.name}: the app {self.options.app} failed: {self.app_error!r}")

    def close(self) -> None:
        """Stop cleanly: the app, the native node (acks awaited, bounded), the devices."""
        self.app.stopping.set()
        if self._app_thread is not None:
            self._app_thread.join(timeout=2.0)
        if getattr(self, "device_queries", None) is not None:
            self.device_queries.close()
        if getattr(self, "native", None) is not None:
            self.native.stop()
        for device in self.devices:
            device.close()


def run(options: NodeOptions, out: TextIO = sys.stdout) -> int:
    """Runs a node until SIGTERM, SIGINT or the admin ``stop``; returns its exit code."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        node = RunningNode(options)
        try:
            print(node.ready_line, file=out, flush=True)
            node.start_app()
            node.run(stop)
        finally:
            node.close()
        print(json.dumps({"stopped": True, "node": options.name}), file=out, flush=True)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["NodeApp", "NodeOptions", "RunningNode", "pair", "run"]
