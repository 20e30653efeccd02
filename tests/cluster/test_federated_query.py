"""manyfold query --cluster against real runtime nodes on loopback: the edge greenhouse (three
nodes and the simulated board, shared by the tests of this module) answers every kind with
typed objects, walks the last fan command's lineage onto the device, refuses a principal the
manifest does not expose on every node; a killed node is listed as unknown within the lease."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clusterkit import Running, split_graph, wait_until, write_plan

from manyfold import manifest
from manyfold.demos import edge
from manyfold.examples import greenhouse_edge as gh
from manyfold.federation import targets_from
from manyfold.federation.answers import Counters, LinkReport, NodeFlow, NodeTopology, NodeWatermarks, RouteState
from manyfold.federation.cluster_answer import ask_cluster
from manyfold.federation.plan_facts import plan_facts
from manyfold.query import RouteTaints, expose

NODES = {"edge-a", "edge-b", "host"}
LEASE_S = 10.0
"""A node's default lease: a dead node must be unknown well within it."""


def cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", "query", *args], capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "COLUMNS": "160"})  # fmt: skip


@pytest.fixture(scope="module")
def greenhouse(tmp_path_factory):
    """The edge greenhouse running (A, B, host and the board), until its host holds a fan command."""
    from manyfold.cluster.place import make_plan

    where = tmp_path_factory.mktemp("edge")
    m = manifest.compile(gh.build())
    m.write(where / "greenhouse-edge.json")
    nodes = dataclasses.replace(edge.nodes_file("sim:lm3s6965evb"), base_port=43100)
    make_plan(m, manifest_path=where / "greenhouse-edge.json", plan_path=where / "plan.toml", nodes=nodes).write(where / "plan.toml")
    with Running(where / "plan.toml") as running:
        wait_until(running.links_up, timeout_s=30, what="every link up")
        wait_until(lambda: running.admin[gh.HOST].latest(gh.FAN_COMMAND), timeout_s=90, what="a fan command at the host")
        yield where / "plan.toml", running


def test_topology_json_has_answered_unknown_and_partition_owners(greenhouse):
    """Every node answers; the board's partition is owned by edge-a, as planned; the JSON has answered and unknown."""
    plan_path, _running = greenhouse
    done = cli("--cluster", str(plan_path), "topology", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"kind", "answered", "unknown", "refused", "nodes", "merged"}
    assert set(out["answered"]) == NODES and out["unknown"] == [] and out["refused"] == {}
    owners = {p["partition"]: (p["node"], p["planned"], p["device"]) for p in out["merged"]["partitions"]}
    assert owners["greenhouse-sensors"] == ("edge-a", "edge-a", True)
    assert owners["edge-b"] == ("edge-b", "edge-b", False)
    assert len(set(out["merged"]["manifest_ids"].values())) == 1


def test_every_kind_is_the_local_typed_objects_merged(greenhouse):
    """Each kind parses into the query plane's typed objects, and the merges say where: links from both ends, counter sums, taints with nodes."""
    plan_path, _running = greenhouse
    targets, facts = targets_from(str(plan_path)), plan_facts(str(plan_path))
    expected = {"topology": NodeTopology, "flow": NodeFlow, "watermarks": NodeWatermarks, "counters": Counters}
    for kind, cls in expected.items():
        answer = ask_cluster(targets, kind, facts=facts)
        assert set(answer.nodes) == NODES, (kind, answer.unknown, answer.refused)
        assert all(isinstance(a.answer, cls) for a in answer.nodes.values()), kind
    routes = ask_cluster(targets, "routes", facts=facts)
    assert all(isinstance(s, RouteState) for a in routes.nodes.values() for s in a.answer)
    fan = next(r for r in routes.merged if str(r.route) == str(gh.FAN_COMMAND))
    assert fan.latest_node == gh.HOST and fan.latest.seq >= 1
    links = ask_cluster(targets, "links", facts=facts)
    ab = next(k for k in links.merged if k.name == "ab")
    assert {e.node for e in ab.ends} == {"edge-a", "edge-b"} and all(isinstance(e.link, LinkReport) for e in ab.ends)
    assert ab.requested == ab.provided == ("ordered", "reliable")
    counters = ask_cluster(targets, "counters", facts=facts).merged
    assert counters.totals["published"] == sum(c.published for c in counters.by_node.values()) > 0
    taints = ask_cluster(targets, "taints", facts=facts)
    assert all(isinstance(t, RouteTaints) for a in taints.nodes.values() for t in a.answer)
    fan_taints = next(t for t in taints.merged if str(t.route) == str(gh.FAN_COMMAND))
    assert "trust_unverified" in {t.value for t in fan_taints.taints} and fan_taints.nodes == (gh.HOST,)


def test_lineage_of_the_last_fan_command_walks_host_b_a_device(greenhouse):
    """The fan command's lineage is followed host -> edge-b -> edge-a -> the board behind edge-a."""
    plan_path, _running = greenhouse
    done = cli("--cluster", str(plan_path), "lineage", str(gh.FAN_COMMAND), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    walk = out["merged"]
    assert walk["path"] == ["host", "edge-b", "edge-a", "device greenhouse-sensors"]
    assert set(out["answered"]) == NODES and out["unknown"] == []
    on_device = [s for s in walk["steps"] if s["device"] == "greenhouse-sensors"]
    assert on_device and all(s["node"] == "edge-a" for s in on_device)
    (device,) = walk["devices"]
    assert device["partition"] == "greenhouse-sensors" and device["node"] == "edge-a"
    facts = device["answer"]["answer"]
    assert facts["partition"] == "greenhouse-sensors" and facts["event"]["seq"] >= 1, device  # the device's own latest
    text = cli("--cluster", str(plan_path), "lineage", str(gh.FAN_COMMAND))
    assert text.returncode == 0 and "host -> edge-b -> edge-a -> device greenhouse-sensors" in text.stdout


def test_a_forbidden_principal_is_refused_on_every_node(greenhouse):
    """--principal intruder: every node answers with a refusal sentence; nothing is answered, so the exit code is 1."""
    plan_path, _running = greenhouse
    done = cli("--cluster", str(plan_path), "taints", "--json", "--principal", "intruder")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert set(out["refused"]) == NODES and out["nodes"] == {} and out["unknown"] == []
    assert all("intruder" in sentence for sentence in out["refused"].values())
    text = cli("--cluster", str(plan_path), "taints", "--principal", "intruder")
    assert text.returncode == 1 and text.stdout.count("refused") >= 3
    lineage = cli("--cluster", str(plan_path), "lineage", str(gh.FAN_COMMAND), "--json", "--principal", "intruder")
    out = json.loads(lineage.stdout)
    assert lineage.returncode == 1 and set(out["refused"]) == NODES and out["merged"]["steps"] == []


def test_one_node_by_its_admin_address(greenhouse):
    """--cluster HOST:PORT asks that node alone, named by its own answer."""
    plan_path, running = greenhouse
    admin = next(p.ready.admin for p in running.cluster.processes if p.node.name == "edge-b")
    done = cli("--cluster", str(admin), "counters", "--json")
    out = json.loads(done.stdout)
    assert done.returncode == 0 and out["answered"] == ["edge-b"] and out["merged"]["totals"]["published"] > 0


def test_a_killed_node_is_unknown_within_the_lease(tmp_path):
    """kill -9 of one node: query --cluster lists it under unknown (with the reason) within the lease, the others answer."""
    g = split_graph(device=False, python=False)
    expose(g, principals=["operator"])
    plan_path = write_plan(tmp_path, g, 43200)
    with Running(plan_path) as running:
        wait_until(running.links_up, what="every link up")
        os.kill(running.cluster.process("host").pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def host_unknown():
            done = cli("--cluster", str(plan_path), "topology", "--json", "--timeout", "1")
            out = json.loads(done.stdout)
            return (done, out) if [u["name"] for u in out["unknown"]] == ["host"] else None

        done, out = wait_until(host_unknown, timeout_s=LEASE_S, what="host unknown")
        assert time.monotonic() - killed_at < LEASE_S
    assert done.returncode == 0 and set(out["answered"]) == {"ingest", "control"}
    assert out["unknown"][0]["reason"]
    assert {p["partition"]: p["node"] for p in out["merged"]["partitions"]}["host"] is None


def test_cli_usage_errors_are_one_sentence(tmp_path):
    """Neither --port nor --cluster, a missing plan, or a WHAT the cluster does not answer: one sentence, exit 2."""
    for args, words in ((["topology"], "either --port"), (["--cluster", str(tmp_path / "no.toml"), "topology"], "no such plan file"),
                        (["--cluster", "127.0.0.1:1", "board"], "with --cluster, WHAT is one of")):  # fmt: skip
        done = cli(*args)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_an_address_without_a_node_is_unknown_not_an_error():
    """--cluster HOST:PORT where nothing listens: the node is listed as unknown and the exit code is 1."""
    done = cli("--cluster", "127.0.0.1:9", "counters", "--json", "--timeout", "1")
    out = json.loads(done.stdout)
    assert done.returncode == 1 and out["answered"] == [] and [u["name"] for u in out["unknown"]] == ["127.0.0.1:9"]


def test_a_device_query_is_answered_by_the_node_that_owns_the_board(greenhouse):
    """device PARTITION latest ROUTE: edge-a asks its board and answers; the other nodes refuse, naming the device."""
    plan_path, _running = greenhouse
    done = cli("--cluster", str(plan_path), "device", "greenhouse-sensors", "latest", "read.logical.greenhouse.zone1.temperature_avg.meta.v1", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out["answered"]) == NODES and list(out["nodes"]) == ["edge-a"]
    assert set(out["refused"]) == {"edge-b", "host"} and all("no device greenhouse-sensors" in s for s in out["refused"].values())
    assert out["merged"]["answer"]["board"] == "lm3s6965evb" and out["merged"]["answer"]["event"]["seq"] >= 1
