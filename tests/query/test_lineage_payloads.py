"""Lineage walks and lazy payload demand, asserted exactly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from manyfold import query
from manyfold.graph import (
    FLOAT,
    Graph,
    JoinClass,
    Layer,
    OperatorError,
    Plane,
    Route,
    RouteError,
    Variant,
    schema,
)


@schema()
@dataclass(frozen=True)
class Frame:
    zone: str
    n: int


def r(owner: str, stream: str, layer: Layer = Layer.LOGICAL, variant: Variant = Variant.META) -> Route:
    return Route(Plane.READ, layer, owner, "env", stream, variant)


def ids(steps) -> list[str]:
    return [str(s.id) for s in steps]


def test_lineage_of_a_window_chain():
    """A moving average of a forwarded stream walks back through every hop to its inputs."""
    g = Graph()
    raw = g.route(r("sensor", "raw"), FLOAT)
    clean = g.route(r("sensor", "clean"), FLOAT)
    g.connect(raw, clean, name="copy")
    avg = g.moving_average(clean, 2, name="avg")
    p = g.producer("sensor")
    for v in (1.0, 2.0, 3.0):
        p.publish(raw, v)
    lin = query.lineage(g, avg.output)
    assert ids(lin.steps) == [
        f"{avg.output}@2", f"{clean}@2", f"{clean}@3", f"{raw}@2", f"{raw}@3",
    ]
    assert [str(i) for i in lin.inputs] == [f"{raw}@2", f"{raw}@3"]
    assert lin.step(f"{clean}@3").producer == "node copy"
    assert lin.epochs == (0,) and lin.missing == () and lin.payloads_opened == ()


def test_lineage_reports_forgotten_ancestors():
    """Ancestors beyond a route's `retain` are listed as missing, not silently dropped."""
    g = Graph()
    raw = g.route(r("sensor", "raw"), FLOAT, history=2, retain=2)
    total = g.count_window(raw, size=4)
    p = g.producer("sensor")
    for v in range(4):
        p.publish(raw, float(v))
    lin = query.lineage(g, total.output)
    assert [str(i) for i in lin.missing] == [f"{raw}@1", f"{raw}@2"]
    assert [str(i) for i in lin.inputs] == [f"{raw}@3", f"{raw}@4"]


def test_lineage_names_control_epochs():
    """The control epochs of every envelope in the walk are reported."""
    g = Graph()
    a = g.route(r("sensor", "a"), FLOAT)
    b = g.route(r("sensor", "b"), FLOAT)
    j = g.join(a, b, join_class=JoinClass.LOOKUP, key=lambda v: 0)
    p = g.producer("sensor")
    p.publish(b, 1.0)
    g.advance_epoch()
    g.advance_epoch()
    p.publish(a, 2.0)
    lin = query.lineage(g, j.output)
    assert lin.epochs == (0, 2)
    assert sorted(str(i) for i in lin.inputs) == sorted([f"{a}@1", f"{b}@1"])


def test_lineage_of_an_empty_route_is_an_error():
    """Asking the lineage of a route with no envelope says so."""
    g = Graph()
    a = g.route(r("sensor", "a"), FLOAT)
    with pytest.raises(RouteError, match="no envelope yet"):
        query.lineage(g, a)


def lazy_setup():
    g = Graph()
    camera = g.route(r("camera", "frame", Layer.BULK, Variant.PAYLOAD), Frame, audit=True)
    hot = {"north"}
    wanted = g.filter(camera, lambda f: f.zone in hot, name="wanted")
    inspect = g.open_payloads(wanted.output, name="inspect")
    opened_by_source: list[int] = []
    p = g.producer("camera")

    def publish(zone: str, n: int, data: bytes | None = None, declared: bytes | None = None):
        data = data if data is not None else bytes([n]) * 100
        declared = declared if declared is not None else data

        def source():
            opened_by_source.append(n)
            return data

        return p.publish_lazy(camera, Frame(zone, n), length=len(declared), sha256=hashlib.sha256(declared).digest(), open=source)

    return g, camera, inspect, publish, opened_by_source


def test_payloads_open_only_on_downstream_demand():
    """Metadata is published eagerly; only frames that pass the filter are opened, once each,
    and the graph reports who opened what."""
    g, camera, inspect, publish, opened = lazy_setup()
    for n, zone in enumerate(["north", "south", "south", "north"], start=1):
        publish(zone, n)
    assert opened == [1, 4]
    assert [e.value for e in g.replay(inspect.output)] == [bytes([1]) * 100, bytes([4]) * 100]
    d = query.payload_demand(g, camera)
    assert (d.metadata_events, d.opens, d.cache_hits, d.bytes_materialized, d.failures) == (4, 2, 0, 200, 0)
    assert d.by_consumer == {"node inspect": 2}
    assert g.latest(camera).payload_ref[0] == "lazy" and g.latest(camera).value == Frame("north", 4)


def test_opened_payloads_are_cached_and_audited():
    """A second open is a cache hit (the source is not called again) and the audit lists both."""
    g, camera, inspect, publish, opened = lazy_setup()
    publish("north", 1)
    again = g.open_payload(g.envelope(camera, 1), consumer="operator console")
    assert again == bytes([1]) * 100 and opened == [1]
    d = query.payload_demand(g, camera)
    assert (d.opens, d.cache_hits, d.by_consumer) == (2, 1, {"node inspect": 1, "operator console": 1})
    opens = query.route_audit(g, camera).of_kind("opened")
    assert [(e.seq, e.who, e.detail) for e in opens] == [(1, "node inspect", "100 bytes"), (1, "operator console", "100 bytes, cache hit")]
    lin = query.lineage(g, inspect.output)
    assert [str(i) for i in lin.payloads_opened] == [f"{camera}@1"]
    assert [(o.consumer, o.cache_hit) for o in lin.step(f"{camera}@1").opens] == [("node inspect", False), ("operator console", True)]


def test_payloads_that_do_not_match_their_digest_are_refused():
    """A source returning other bytes than declared is refused and counted as a failure."""
    g, camera, inspect, publish, _ = lazy_setup()
    with pytest.raises(OperatorError, match="does not match its declared SHA-256"):
        publish("north", 1, data=b"x" * 100, declared=b"y" * 100)
    with pytest.raises(OperatorError, match="has 3 bytes but 100 were declared"):
        publish("north", 2, data=b"abc", declared=b"z" * 100)
    assert query.payload_demand(g, camera).failures == 2
    assert g.replay(inspect.output) == []
