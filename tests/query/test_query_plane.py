"""The query plane: typed answers, serialization at the boundary, queries as routes."""

from __future__ import annotations

import json

import cbor2
import pytest

from manyfold import query
from manyfold.graph import FLOAT, Aggregate, Graph, Layer, Mailbox, OperatorError, Overflow, Plane, RejectedError, Route, Variant


def r(stream: str) -> Route:
    return Route(Plane.READ, Layer.LOGICAL, "sensor", "env", stream, Variant.META)


@pytest.fixture
def g() -> Graph:
    g = Graph()
    temp = g.route(r("temp"), FLOAT, audit=True)
    g.time_window(temp, width_us=100, aggregate=Aggregate.MAX, name="peak")
    g.subscribe(temp, lambda e: None, mailbox=Mailbox(2, Overflow.DROP_OLDEST), name="slow")
    p = g.producer("sensor")
    for t in range(5):
        p.publish(temp, float(t), event_time_us=t * 40)
    return g


def test_topology(g):
    """Routes with owners, schemas, producers and consumers; nodes with parameters; edges with policies."""
    topo = query.topology(g)
    temp = topo.route(r("temp"))
    assert (temp.owner, temp.schema, temp.producer_kind, temp.producer, temp.envelopes) == ("sensor", "float@1", "external", "sensor", 5)
    assert temp.consumers == ("node peak", "subscription slow")
    peak = topo.node("peak")
    assert (peak.kind, peak.params["width_us"], peak.params["aggregate"]) == ("event_time_window", 100, "max")
    assert [(e.name, e.policy, e.mailbox_capacity, e.overflow) for e in topo.edges] == [
        ("peak_in", "inline", None, None), ("slow", "mailbox", 2, "drop_oldest"),
    ]


def test_flow_and_pressure(g):
    """Mailbox depth, capacity and drops; time spent full per second of graph time."""
    g.advance_to(1_000)
    m = query.flow(g).mailbox("slow")
    assert (m.depth, m.capacity, m.dropped, m.accepted, m.delivered) == (0, 2, 3, 5, 2)
    # Full from the 2nd publish (t=0) until the scheduler drained it at t=1000: all of it.
    assert m.blocked_ms_per_s == 1000.0 and m.idle_ms_per_s == 0.0


def test_watermarks_and_scheduler(g):
    """Watermarks per window; scheduler counts."""
    (w,) = query.watermarks(g)
    assert (w.node, w.watermark_us, w.late) == ("peak", 160, 0)
    s = query.scheduler(g)
    assert (s.now_us, s.epoch, s.ready) == (0, 0, 2)


def test_route_audit_in_order(g):
    """Who produced and who consumed each envelope, in order, with drops."""
    audit = query.route_audit(g, r("temp"))
    kinds = [(e.seq, e.kind, e.who) for e in audit.entries[:3]]
    assert kinds == [(1, "published", "producer sensor"), (1, "delivered", "node peak"), (2, "published", "producer sensor")]
    assert [e.seq for e in audit.of_kind("dropped")] == [1, 2, 3]
    assert [e.order for e in audit.entries] == sorted(e.order for e in audit.entries)


def test_answers_serialize_only_at_the_boundary(g):
    """Typed answers turn into dicts, JSON and canonical CBOR that agree."""
    topo = query.topology(g)
    as_dict = topo.to_dict()
    assert json.loads(topo.to_json()) == as_dict
    assert cbor2.loads(topo.to_cbor()) == as_dict
    assert as_dict["routes"][0]["route"] == str(r("temp"))
    assert topo.to_cbor() == query.topology(g).to_cbor()


def test_queries_are_routes(g):
    """A client asks over the query plane's routes and gets the same answers."""
    service = query.QueryService(g)
    assert str(service.request_route) == "query.internal.manyfold.query.requests.query_request.v1"
    client = g.producer("ops")
    g.grant(client, service.request_route)
    remote = service.ask(client, "topology")
    local = query.topology(g).to_dict()
    assert remote["nodes"] == local["nodes"] and remote["edges"] == local["edges"]
    assert [x["route"] for x in remote["routes"]] == [x["route"] for x in local["routes"]]
    assert service.ask(client, "lineage", r("temp"))["root"] == f"{r('temp')}@5"
    assert service.ask(client, "flow")["mailboxes"][0]["name"] == "slow"
    with pytest.raises(RuntimeError, match="unknown query kind"):
        service.ask(client, "gossip")
    responses = g.replay(service.response_route)
    assert [e.value.ok for e in responses] == [True, True, True, False]


def test_query_service_bounds_waiting_requests(g):
    """A service holds at most pending_max unanswered requests; one more is refused (its cause a
    RejectedError), and the held ones are answered at the next dispatch."""
    service = query.QueryService(g, pending_max=2)
    client = g.producer("ops")
    g.grant(client, service.request_route)
    requests = [query.QueryRequest(i, "scheduler") for i in (1, 2, 3)]
    with pytest.raises(OperatorError) as raised:
        client.publish_many(service.request_route, requests)
    assert isinstance(raised.value.__cause__, RejectedError) and "request 3 was refused" in str(raised.value.__cause__)
    assert service.refused == 1
    g.run_until_idle()
    assert [e.value.correlation for e in g.replay(service.response_route)] == [1, 2]
