"""Helpers for the cluster tests: a small manifest split over partitions, written to a file."""

from __future__ import annotations

from pathlib import Path

from manyfold import manifest
from manyfold.graph import FLOAT, Graph, Layer, LinkCapabilities, Plane, Route, SyntheticSource, Variant
from manyfold.manifest import Manifest

UDP = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
TCP = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
SERIAL = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)


def r(owner: str, stream: str) -> Route:
    return Route(Plane.READ, Layer.LOGICAL, owner, "env", stream, Variant.META)


def double(x: float) -> float:
    return 2 * x


def split_graph(*, device: bool = True, ingest_placement: dict | None = None, bh: LinkCapabilities = TCP, python: bool = True,
                transports: tuple[str, str] = ("udp", "tcp"), ab: str = "ab") -> Graph:  # fmt: skip
    """sensor (a board) -serial-> ingest -udp-> control -tcp-> host (a Python operator); the
    transports of ab and bh (zenoh) and the name of ab can be changed."""
    g = Graph()
    ingest = g.partition("ingest", profile="edge", **(ingest_placement or {}))
    control = g.partition("control", profile="edge")
    host = g.partition("host", profile="local")
    with ingest:
        raw = g.route(r("probe", "raw"), FLOAT)
    if device:
        sensor = g.partition("sensor", profile="embedded-lite", board="lm3s6965evb")
        g.link("uart", sensor, ingest, transport="serial", capabilities=SERIAL)
        with sensor:
            reading = g.route(r("board", "reading"), FLOAT, source=SyntheticSource(100_000, "triangle", 30.0, 10.0, 20, 0.0, 1))
        with ingest:
            g.connect(reading, raw, link=SERIAL, name="uplink")
    g.link(ab, ingest, control, transport=transports[0], capabilities=UDP)
    g.link("bh", control, host, transport=transports[1], capabilities=bh)
    with ingest:
        avg = g.moving_average(raw, 3, name="avg")
    with control:
        seen = g.route(r("control", "avg"), FLOAT)
        g.connect(avg.output, seen, link=UDP, name="ab_in")
        hot = g.threshold(seen, above=30.0, name="hot")
    with host:
        alarm = g.route(r("host", "hot"), FLOAT)
        g.connect(hot.output, alarm, link=bh, name="bh_in")
        if python:
            g.map(alarm, double, schema=FLOAT, name="doubled")
        else:
            g.scale(alarm, scale=2.0, name="doubled")
    return g


def write_manifest(tmp_path: Path, g: Graph | None = None, name: str = "split.json") -> tuple[Manifest, Path]:
    m = manifest.compile(g or split_graph())
    path = tmp_path / name
    m.write(path)
    return m, path


def write_plan(tmp_path: Path, graph: Graph | None = None, base_port: int = 42000) -> Path:
    """The manifest of ``graph`` and its plan (ports from ``base_port``) in ``tmp_path``."""
    from manyfold.cluster.nodes_file import NodesFile
    from manyfold.cluster.place import make_plan

    m, path = write_manifest(tmp_path, graph)
    plan_path = tmp_path / "plan.toml"
    make_plan(m, manifest_path=path, plan_path=plan_path, nodes=NodesFile(base_port=base_port)).write(plan_path)
    return plan_path


def wait_until(condition, timeout_s: float = 15.0, what: str = "the condition"):
    """Polls ``condition()`` until it returns something truthy (returned), at most ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout_s} s")
        time.sleep(0.05)


def node_env() -> dict[str, str]:
    """The environment of node processes: this directory on the path, so that ``manyfold node``
    imports the functions the test graphs call (``clusterkit.double``)."""
    import os

    here = str(Path(__file__).resolve().parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


class Running:
    """A plan's nodes started with ``manyfold up``'s machinery (a context manager), and an admin
    client per node."""

    def __init__(self, plan_path: Path, launcher=None, timeout_s: float = 30.0, native: bool = True) -> None:
        """``native=False``: every node runs ``manyfold node``, even where ``manyfold-node`` could."""
        from manyfold.cluster import up
        from manyfold.cluster.launch import Launcher

        self.plan, self.manifest = up.load(plan_path)
        if launcher is None and not native:
            launcher = Launcher(self.plan, plan_path.resolve().parent, None)
        self.cluster = up.Cluster(self.plan, plan_path.resolve().parent, launcher=launcher, env=node_env())
        self.timeout_s = timeout_s
        self.events: list = []

    def __enter__(self) -> "Running":
        from manyfold.cluster.admin import AdminClient

        self.cluster.start(timeout_s=self.timeout_s, progress=self.events.append)
        self.admin = {p.node.name: AdminClient(p.ready.admin, timeout_s=10) for p in self.cluster.processes}
        return self

    def __exit__(self, *exc) -> None:
        for client in getattr(self, "admin", {}).values():
            client.close()
        self.cluster.stop(progress=self.events.append)

    def links_up(self) -> bool:
        return all(link.state == "up" for client in self.admin.values() for link in client.status().links)
