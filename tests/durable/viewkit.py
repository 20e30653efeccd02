"""Shared by the durable tests: a graph with a materialized view of sensor readings, and the
expected view for what a writer reported committed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manyfold.graph import Graph, Layer, Plane, Route, Variant, schema
from manyfold.query import expose


@schema
@dataclass(frozen=True)
class Reading:
    sensor: str
    seq: int
    value: float


SOURCE = Route(Plane.READ, Layer.LOGICAL, "probe", "env", "reading", Variant.META)
VIEW = "latest"
SENSORS = 7


def view_graph(store_dir: Path | None, snapshot_every: int = 50, sync: str = "full") -> Graph:
    """probe.reading -> latest (materialized_view keyed by sensor), in partition `station`;
    queries exposed to `operator`."""
    g = Graph(realtime=False, store_dir=store_dir)
    with g.partition("station", profile="edge"):
        src = g.route(SOURCE, Reading)
        g.materialized_view(src, key="sensor", snapshot_every=snapshot_every, sync=sync, name=VIEW)
    expose(g, principals=["operator"])
    return g


def reading(i: int) -> Reading:
    """The i-th reading (from 1): sensors take turns."""
    return Reading(f"s{i % SENSORS}", i, i / 10)


def expected_rows(last: int) -> dict[str, int]:
    """Sensor -> the seq of its latest reading after readings 1..last."""
    rows: dict[str, int] = {}
    for i in range(1, last + 1):
        rows[reading(i).sensor] = i
    return rows
