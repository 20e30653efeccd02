"""The node query plane over the admin endpoint, on real processes: a `manyfold node` that owns
a device (the sensor partition in the host simulation) answers `device` queries by asking the
device over its link, both node kinds answer with the field names of the typed query objects,
and a forbidden principal is refused on both."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manyfold import manifest
from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient, NodeDevice
from manyfold.cluster.launch import find_native
from manyfold.graph import FLOAT, Graph, Layer, LinkCapabilities, Mailbox, Overflow, Plane, Route, SyntheticSource, Variant
from manyfold.query import EdgeFlow, EdgeInfo, MailboxFlow, NodeInfo, RouteInfo, RouteTaints, TaintOrigin, Watermark, expose

SERIAL = LinkCapabilities(ordered=True, reliable=False, authenticated=False, durable=False)
UDP = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
READY_S = 30.0


def r(owner: str, stream: str) -> Route:
    return Route(Plane.READ, Layer.LOGICAL, owner, "env", stream, Variant.META)


READING, RAW, SEEN = r("board", "reading"), r("probe", "raw"), r("control", "seen")


def graph() -> Graph:
    """sensor (a board) -serial-> ingest (a mailbox, a window) -udp-> control; queries exposed to
    the operator."""
    g = Graph()
    sensor = g.partition("sensor", profile="embedded-lite", board="lm3s6965evb")
    ingest = g.partition("ingest", profile="edge")
    control = g.partition("control", profile="edge")
    g.link("uart", sensor, ingest, transport="serial", capabilities=SERIAL)
    g.link("ab", ingest, control, transport="udp", capabilities=UDP)
    with sensor:
        reading = g.route(READING, FLOAT, source=SyntheticSource(100_000, "triangle", 30.0, 10.0, 20, 0.0, 1))
    with ingest:
        raw = g.route(RAW, FLOAT)
        g.connect(reading, raw, link=SERIAL, name="uplink")
        buffered = g.route(r("probe", "buffered"), FLOAT)
        g.connect(raw, buffered, mailbox=Mailbox(8, Overflow.DROP_OLDEST), name="buffer")
        g.time_window(buffered, width_us=1_000_000, records=False, name="second")
    with control:
        g.connect(raw, g.route(SEEN, FLOAT), link=UDP, name="ab_in")
    expose(g, principals=["operator"])
    return g


class Proc:
    """A node process and its admin client, stopped (SIGTERM, bounded) on exit."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise AssertionError(f"{argv[0]} printed no ready line: {self.process.stderr.read()}")
        self.ready = json.loads(line)
        self.admin = AdminClient(Address.parse(self.ready["admin"]), timeout_s=10.0)

    def close(self) -> None:
        self.admin.close()
        self.process.terminate()
        try:
            self.process.communicate(timeout=20)
        finally:
            self.process.kill()


def wait_until(condition, what: str, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


def fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.fixture
def nodes(tmp_path: Path):
    native = find_native()
    if native is None:
        pytest.fail("manyfold-node is not built: cargo build --release -p manyfold-runtime --bin manyfold-node")
    path = tmp_path / "split.json"
    manifest.compile(graph()).write(path)
    common = ["--manifest", str(path), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
    ingest = Proc([sys.executable, "-m", "manyfold", "node", *common, "--node", "ingest", "--node-id", "1",
                   "--partition", "ingest", "--device", "sensor=sim:lm3s6965evb"])  # fmt: skip
    try:
        control = Proc([str(native), *common, "--node", "control", "--node-id", "2", "--partition", "control",
                        "--link", f"ab=udp://{ingest.ready['listen']}"])  # fmt: skip
    except BaseException:
        ingest.close()
        raise
    try:
        wait_until(lambda: control.admin.latest(SEEN), "device events at control")
        yield ingest, control
    finally:
        control.close()
        ingest.close()


def test_device_queries_are_answered_by_the_node_that_owns_the_device(nodes):
    """`device` queries at the Python node ask the simulated board over its link and return its
    typed answers' to_dict(); status lists the device; manyfold-node has no device to ask."""
    ingest, control = nodes
    assert ingest.admin.status().devices == (NodeDevice("sensor", "sim:lm3s6965evb", "host simulation of lm3s6965evb", "running"),)
    assert control.admin.status().devices == ()
    topology = ingest.admin.query("device", "operator", partition="sensor", what="topology")
    assert (topology["node"], topology["kind"]) == ("ingest", "device")
    board = topology["answer"]
    assert (board["board"], board["partition"], board["manifest_id"]) == ("lm3s6965evb", "sensor", topology["manifest_id"])
    assert str(READING) in [route["name"] for route in board["routes"]]
    taints = ingest.admin.query("device", "operator", partition="sensor", what="taints")["answer"]
    assert str(READING) in [row["name"] for row in taints["taints"]]
    latest = ingest.admin.query("device", "operator", partition="sensor", what="latest", route=READING)["answer"]
    assert latest["name"] == str(READING) and latest["event"]["seq"] >= 1
    counters = ingest.admin.query("device", "operator", partition="sensor", what="counters")["answer"]
    assert counters["partition"] == "sensor"
    assert control.admin.query("device", "operator", partition="sensor", what="taints")["refused"] == "no device sensor behind node control"
    assert ingest.admin.query("device", "operator", partition="control", what="taints")["refused"] == "no device control behind node ingest"
    node_topology = ingest.admin.query("topology", "operator")["answer"]
    assert (node_topology["partitions"], node_topology["devices"]) == (["ingest"], ["sensor"])


def test_answers_carry_the_typed_objects_fields(nodes):
    """Topology, flow, watermarks and taints from both node kinds have exactly the fields of
    RouteInfo, NodeInfo, EdgeInfo, MailboxFlow, EdgeFlow, Watermark, RouteTaints and TaintOrigin."""
    ingest, control = nodes
    for node in (ingest, control):
        topology = node.admin.query("topology", "operator")["answer"]
        assert topology["routes"] and all(set(route) == fields(RouteInfo) for route in topology["routes"])
        assert all(set(n) == fields(NodeInfo) for n in topology["nodes"])
        assert all(set(e) == fields(EdgeInfo) for e in topology["edges"])
        taints = node.admin.query("taints", "operator")["answer"]
        assert taints and all(set(t) == fields(RouteTaints) for t in taints)
        assert all(set(o) == fields(TaintOrigin) for t in taints for o in t["added"] + t["repaired"])
    flow = ingest.admin.query("flow", "operator")["answer"]
    assert [set(m) for m in flow["mailboxes"]] == [fields(MailboxFlow)]
    assert all(set(e) == fields(EdgeFlow) for e in flow["edges"])
    assert flow["link_queues"][0]["link"] == "ab"
    marks = ingest.admin.query("watermarks", "operator")["answer"]["watermarks"]
    assert [set(w) for w in marks] == [fields(Watermark)] and marks[0]["node"] == "second"


def test_a_forbidden_principal_is_refused_on_both_node_kinds(nodes):
    """A principal the manifest does not name is refused (an answer naming who may ask) by the
    Python node, for its device too, and by manyfold-node; the refusals are counted."""
    ingest, control = nodes
    for node in (ingest, control):
        refused = node.admin.query("topology", "intruder")
        assert "answer" not in refused and 'principal "intruder" may not query' in refused["refused"]
        assert "operator" in refused["refused"]
        assert node.admin.query("counters", "operator")["answer"]["queries_refused"] == 1
    device = ingest.admin.query("device", "intruder", partition="sensor", what="taints")
    assert 'principal "intruder"' in device["refused"]
