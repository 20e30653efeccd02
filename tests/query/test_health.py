"""Primitive health and topology grouping on a local graph: manyfold.query.health reads each
installed instance's parts (their operators' health joined with their input mailboxes'), the
topology groups parts under their instance, the query service and the CLI answer the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manyfold import query
from manyfold.catalog import get
from manyfold.graph import FLOAT, Graph, Layer, Node, Plane, RejectedError, Route, Variant
from manyfold.query import HealthReport, HealthState, InstanceHealth, PartHealth

FULL = "full (2 of 2) and refusing new values until some are released (overflow reject); refused 1 so far"


def r(stream: str) -> Route:
    return Route(Plane.READ, Layer.LOGICAL, "sensor", "env", stream, Variant.META)


def capacitor_graph() -> tuple[Graph, Route, Node]:
    """A Capacitor instance `buf` (capacity 2, overflow reject) and a plain scale node `plain`."""
    g = Graph()
    temp = g.route(r("temp"), FLOAT)
    installed = get("Capacitor").install(g, "buf", source=temp, capacity=2, overflow="reject")
    g.scale(temp, scale=2.0, name="plain")
    return g, temp, installed.nodes[0]


def test_a_capacitor_that_fills_is_blocked_with_why_and_healthy_once_released():
    """A rejecting capacitor instance is healthy, then blocked when full (why names its fill and refusals), then healthy after a release."""
    g, temp, buf_node = capacitor_graph()
    healthy = InstanceHealth("buf", "Capacitor", 1, HealthState.HEALTHY, (), (PartHealth("buf", HealthState.HEALTHY, ()),))
    assert query.health(g) == [healthy]
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    p.publish(temp, 2.0)
    with pytest.raises(RejectedError):
        p.publish(temp, 3.0)
    (buf,) = query.health(g)
    assert (buf.state, buf.why) == (HealthState.BLOCKED, (f"buf: {FULL}",))
    assert buf.parts == (PartHealth("buf", HealthState.BLOCKED, (FULL,)),)
    buf_node.discharge(1)
    assert query.health(g) == [healthy]


def test_an_instance_is_as_bad_as_its_worst_part_and_drops_degrade():
    """A dropping capacitor and a rate limiter dropping over its rate are degraded, with counts; a graph without instances answers nothing."""
    g = Graph()
    temp = g.route(r("temp"), FLOAT)
    get("Capacitor").install(g, "keep", source=temp, capacity=1, overflow="drop_oldest")
    get("RateLimiter").install(g, "limit", source=temp, max_events=1, interval_us=1_000_000)
    p = g.producer("sensor")
    for t in range(3):
        p.publish(temp, float(t), event_time_us=t)
    by_name = {i.instance: i for i in query.health(g)}
    assert by_name["keep"].state is by_name["limit"].state is HealthState.DEGRADED
    assert by_name["keep"].why == ("keep: dropped 2 values when full (overflow drop_oldest)",)
    assert by_name["limit"].why == ("limit: dropped 2 values over its rate of 1 per 1000000 us",)
    assert HealthState.worst([HealthState.HEALTHY, HealthState.BLOCKED, HealthState.DEGRADED]) is HealthState.BLOCKED
    assert query.health(Graph()) == []


def test_topology_groups_parts_under_their_instance():
    """Each part node names its instance (others None); the topology lists each instance with its nodes, routes and stores."""
    g, _temp, _node = capacitor_graph()
    topo = query.topology(g)
    assert (topo.node("buf").primitive, topo.node("plain").primitive) == ("buf", None)
    (buf,) = topo.primitives
    assert (buf.instance, buf.contract, buf.version, buf.nodes, buf.stores) == ("buf", "Capacitor", 1, ("buf",), ())
    assert buf.routes == topo.node("buf").outputs
    assert [n.name for n in topo.parts_of("buf")] == ["buf"]
    assert query.Topology.from_dict(json.loads(topo.to_json())) == topo


def test_the_query_service_answers_health_as_a_node_does():
    """`health` through a QueryService answers {"kind": "health", "instances": [...]}, which reads back as the same typed objects."""
    g, temp, _node = capacitor_graph()
    service = query.QueryService(g)
    asker = g.producer("operator")
    g.grant(asker, service.request_route)
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    p.publish(temp, 2.0)
    answer = service.ask(asker, "health")
    assert answer["kind"] == "health" and answer["instances"][0]["state"] == "blocked"
    assert HealthReport.from_dict(answer) == HealthReport(tuple(query.health(g)))
    assert query.exposure_kind("health") == "health"
    assert "health" in query.expose(g, principals=["operator"], kinds=["health"]).kinds


def test_cli_query_health_on_a_graph_file(tmp_path: Path):
    """`manyfold query --graph FILE health` prints the instances and parts (tables, or the answer as JSON); an unknown WHAT is one sentence."""
    file = tmp_path / "buffered.py"
    file.write_text(
        "from manyfold.catalog import get\n"
        "from manyfold.graph import FLOAT, Graph\n"
        "graph = Graph()\n"
        "temp = graph.route('read.logical.sensor.env.temp.meta.v1', FLOAT)\n"
        "get('Capacitor').install(graph, 'buf', source=temp, capacity=2, overflow='drop_oldest')\n"
        "for v in range(4):\n"
        "    graph.producer('sensor').publish(temp, float(v))\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "manyfold", "query", "--graph", str(file), *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "COLUMNS": "160"})  # fmt: skip

    done = run("health", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["kind"] == "health"
    assert [(i["instance"], i["state"], i["why"]) for i in out["instances"]] == [("buf", "degraded", ["buf: dropped 2 values when full (overflow drop_oldest)"])]
    text = run("health")
    assert text.returncode == 0 and "degraded" in text.stdout and "dropped 2 values" in text.stdout
    topo = run("topology")
    assert topo.returncode == 0 and "Capacitor v1" in topo.stdout
    wrong = run("flow")
    assert wrong.returncode == 2 and "with --graph, WHAT is one of health, topology" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_mailbox_instance_answers_for_its_edge():
    """A Mailbox instance's part is the node behind its mailbox: degraded when it dropped, blocked when full and blocking."""
    states = {}
    for overflow, published in (("drop_oldest", 5), ("block", 2)):
        g = Graph()
        temp, sink = g.route(r("temp"), FLOAT), g.route(r("sink"), FLOAT)
        get("Mailbox").install(g, "mb", source=temp, sink=sink, capacity=2, overflow=overflow)
        p = g.producer("sensor")
        for v in range(published):
            p.publish(temp, float(v))
        (mb,) = query.health(g)
        states[overflow] = (mb.state, mb.why)
    assert states["drop_oldest"] == (HealthState.DEGRADED, ("mb: input mailbox mb_in dropped 3 values when full (overflow drop_oldest)",))
    assert states["block"] == (HealthState.BLOCKED, ("mb: input mailbox mb_in is full (2 of 2) and refuses new values (overflow block)",))
