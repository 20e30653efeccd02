"""`health` across real runtime nodes (manyfold up's machinery on loopback): each node answers for
the primitive instances with parts on it, and the federated answer keeps the worst state of each
instance with its reasons prefixed by the node; the topology groups parts under their instance
on every node; `manyfold query --cluster PLAN health` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from clusterkit import Running, write_plan

from manyfold.catalog import get
from manyfold.federation import targets_from
from manyfold.federation.answers import NodeTopology
from manyfold.federation.cluster_answer import ask_cluster
from manyfold.federation.plan_facts import plan_facts
from manyfold.graph import FLOAT, Graph
from manyfold.query import HealthReport, HealthState, expose

A_RAW = "read.raw.a.temp.raw.event.v1"
B_RAW = "read.raw.b.temp.raw.event.v1"


def graph() -> Graph:
    """On a, Capacitor `buf` (capacity 4, reject); on b, RateLimiter `limit` (2 per second);
    topology and health exposed to operator."""
    g = Graph()
    for p in ("a", "b"):
        g.partition(p, profile="edge")
    with g.partition("a"):
        get("Capacitor").install(g, "buf", source=g.route(A_RAW, FLOAT), capacity=4, overflow="reject")
    with g.partition("b"):
        get("RateLimiter").install(g, "limit", source=g.route(B_RAW, FLOAT), max_events=2, interval_us=1_000_000)
    expose(g, principals=["operator"], kinds=["topology", "health"])
    return g


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The two nodes running; b's rate limiter has dropped values, a's capacitor holds two."""
    plan_path = write_plan(tmp_path_factory.mktemp("health"), graph(), base_port=43700)
    with Running(plan_path) as running:
        assert len(running.admin) == 2, running.admin
        a, b = (next(c for c in running.admin.values() if c.query("topology", "operator")["answer"]["partitions"] == [p]) for p in ("a", "b"))
        assert a.publish(A_RAW, [1.0, 2.0]) == 2
        assert b.publish(B_RAW, [1.0] * 10) == 10
        yield plan_path, a.query("topology", "operator")["node"], b.query("topology", "operator")["node"]


def test_federated_health_keeps_each_instance_worst_state_with_the_node_in_why(cluster):
    """Both nodes answer typed HealthReports; merged: buf healthy on a's node, limit degraded with why prefixed by b's node and the part."""
    plan_path, node_a, node_b = cluster
    answer = ask_cluster(targets_from(str(plan_path)), "health", facts=plan_facts(str(plan_path)))
    assert set(answer.answered) == {node_a, node_b} and not answer.unknown and not answer.refused
    assert all(isinstance(n.answer, HealthReport) for n in answer.nodes.values())
    assert [i.instance for i in answer.answer(node_a).instances] == ["buf"], "a node answers only for its own instances"
    buf, limit = answer.merged
    assert (buf.instance, buf.state, buf.nodes, buf.why) == ("buf", HealthState.HEALTHY, (node_a,), ())
    assert (limit.instance, limit.contract, limit.state, limit.nodes) == ("limit", "RateLimiter", HealthState.DEGRADED, (node_b,))
    (why,) = limit.why
    assert why.startswith(f"{node_b}: limit: dropped ") and why.endswith(" values over its rate of 2 per 1000000 us"), why
    assert [(p.node, p.state) for p in limit.parts] == [("limit", HealthState.DEGRADED)]


def test_federated_topology_groups_parts_under_their_instance(cluster):
    """Each node's topology names its part's instance; the merge lists each instance with the node holding its parts."""
    plan_path, node_a, node_b = cluster
    answer = ask_cluster(targets_from(str(plan_path)), "topology", facts=plan_facts(str(plan_path)))
    a = answer.answer(node_a)
    assert isinstance(a, NodeTopology) and [p.instance for p in a.primitives] == ["buf"]
    assert a.topology.parts_of("buf")[0].name == "buf"
    assert [(h.primitive.instance, h.primitive.contract, h.nodes) for h in answer.merged.primitives] == [
        ("buf", "Capacitor", (node_a,)), ("limit", "RateLimiter", (node_b,)),
    ]


def test_cli_cluster_health(cluster):
    """`manyfold query --cluster PLAN health` prints each instance's state and why (tables, or the merged JSON); topology lists the instances."""
    plan_path, _node_a, node_b = cluster

    def run(*args: str, what: str = "health") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "manyfold", "query", "--cluster", str(plan_path), what, *args],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})  # fmt: skip

    topology = run(what="topology")
    assert topology.returncode == 0 and "Capacitor v1" in topology.stdout and "RateLimiter v1" in topology.stdout, topology.stdout
    done = run("--json")
    assert done.returncode == 0, done.stderr
    merged = {i["instance"]: i for i in json.loads(done.stdout)["merged"]}
    assert (merged["buf"]["state"], merged["limit"]["state"]) == ("healthy", "degraded")
    text = run()
    assert text.returncode == 0 and "degraded" in text.stdout and f"{node_b}: limit: dropped" in text.stdout, text.stdout
