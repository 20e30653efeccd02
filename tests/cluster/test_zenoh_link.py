"""Node links on Zenoh with a real router: eclipse-zenoh's router (``zenoh_router.py``, an
independent build of Zenoh) or our own ``manyfold zenoh-router``, in a child process that the
tests kill -9 and restart on the same port; real node processes (``manyfold-node`` for partition
a, ``manyfold node`` for b), clients of the router, with a short lease. Every wait is a deadline.

CI never skips these (tests/conftest.py): eclipse-zenoh, ``_native.ZENOH`` and the
``manyfold-node`` binary must be there.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusterkit import Running, r, wait_until

pytest.importorskip("zenoh", reason="eclipse-zenoh (the test extra) runs the router")

from zenoh_router import EclipseRouter  # noqa: E402

from manyfold import manifest  # noqa: E402
from manyfold.cluster import up  # noqa: E402
from manyfold.cluster.launch import LaunchCommand, Launcher, find_native  # noqa: E402
from manyfold.cluster.nodes_file import NodeRequest, NodesFile  # noqa: E402
from manyfold.cluster.place import make_plan  # noqa: E402
from manyfold.cluster.plan import PlannedNode, Runtime  # noqa: E402
from manyfold.graph import FLOAT, Graph, LinkCapabilities  # noqa: E402
from manyfold.query import expose  # noqa: E402
from manyfold.zenoh import ZenohMode, ZenohOptions, available  # noqa: E402

if not available():
    pytest.skip("this build has no Zenoh transport (_native.ZENOH is false)", allow_module_level=True)
if find_native() is None:
    pytest.skip("manyfold-node is not built (cargo build --release -p manyfold-runtime --bin manyfold-node)", allow_module_level=True)

ZL = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
"""What link ab keeps: the node link resequences and retransmits (Zenoh is reliable hop by hop only)."""
TEMP, HUM = r("probe", "temp"), r("probe", "hum")
SEEN = {TEMP: r("seen", "temp"), HUM: r("seen", "hum")}
"""Each route produced on a, and the route on b it crosses link ab into."""
DECLARED = {"det_nonreplayable", "trust_unverified"}
"""The taints every crossing carries by declaration (the link is neither durable nor keyed)."""
LEASE_MS = 1500
UP_TIMEOUT_S = 20.0


def zenoh_graph(extra: bool = False) -> Graph:
    """a -zenoh-> b, two routes crossing (``extra``: one more route, so another manifest id)."""
    g = Graph()
    a, b = g.partition("a", profile="edge"), g.partition("b", profile="edge")
    g.link("ab", a, b, transport="zenoh", capabilities=ZL)
    with a:
        routes = [g.route(TEMP, FLOAT), g.route(HUM, FLOAT)]
    with b:
        for route in routes:
            g.connect(route, g.route(SEEN[route], FLOAT), link=ZL, name=f"ab_{route.stream}")
        if extra:
            g.route(r("seen", "extra"), FLOAT)
    expose(g, principals=["operator"], kinds=["topology", "taints"])
    return g


@dataclass(frozen=True)
class ZenohLauncher(Launcher):
    """The plan's command lines with a short link lease, and (``other``) node b on another manifest."""

    lease_ms: int = LEASE_MS
    other: Path | None = None

    def flags(self, node: PlannedNode) -> list[str]:
        return [*super().flags(node), "--lease-ms", str(self.lease_ms)]

    def command(self, node: PlannedNode) -> LaunchCommand:
        command = super().command(node)
        if node.name != "b" or self.other is None:
            return command
        argv = list(command.argv)
        argv[argv.index("--manifest") + 1] = str(self.other)
        return LaunchCommand(tuple(argv), command.program, command.note)


def start(tmp_path: Path, zenoh: ZenohOptions, base_port: int, *, lease_ms: int = LEASE_MS, other: bool = False) -> Running:
    """Plans a on manyfold-node and b on manyfold node, both joining ``zenoh``; not yet started."""
    m = manifest.compile(zenoh_graph())
    m.write(tmp_path / "zenoh.json")
    nodes = NodesFile(nodes=(NodeRequest("a", partitions=("a",)), NodeRequest("b", partitions=("b",), runtime=Runtime.PYTHON)),
                      base_port=base_port, zenoh=zenoh)  # fmt: skip
    plan_path = tmp_path / "plan.toml"
    make_plan(m, manifest_path=tmp_path / "zenoh.json", plan_path=plan_path, nodes=nodes).write(plan_path)
    if other:
        manifest.compile(zenoh_graph(extra=True)).write(tmp_path / "other.json")
    plan, _m = up.load(plan_path)
    launcher = ZenohLauncher(plan, tmp_path, find_native(), lease_ms=lease_ms, other=tmp_path / "other.json" if other else None)
    return Running(plan_path, launcher)


def links(running: Running) -> list:
    return [running.admin[n].status().link("ab") for n in ("a", "b")]


def states(running: Running, state: str) -> list | None:
    ends = links(running)
    return ends if all(end.state == state for end in ends) else None


def publish(running: Running, values: list[float]) -> None:
    for route in SEEN:
        assert running.admin["a"].publish(route, values) == len(values)


def arrived(running: Running, values: list[float]) -> dict | None:
    """Each crossing route's history at b, once it holds every value of ``values``."""
    held = {route: running.admin["b"].history(SEEN[route]) for route in SEEN}
    return held if all(set(values) <= {e.value for e in h} for h in held.values()) else None


def taint_names(envelope) -> set[str]:
    return {t.value for t in envelope.taints}


def test_nodes_connect_through_the_router_and_events_cross(tmp_path):
    """Both ends come up through the router (transport zenoh, requested = provided, the router and
    link key in the status), and events cross in order with only the declared taints."""
    with EclipseRouter() as router, start(tmp_path, ZenohOptions.client(router.endpoint), 43200) as running:
        programs = {p.node.name: p.command.program for p in running.cluster.processes}
        assert programs == {"a": "manyfold-node", "b": "manyfold node"}
        ends = wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up at both ends")
        publish(running, [1.0, 2.0, 3.0])
        held = wait_until(lambda: arrived(running, [1.0, 2.0, 3.0]), 10, "the events at b")
        raw = [next(k for k in running.admin[n].ask({"q": "status"})["links"] if k["name"] == "ab") for n in ("a", "b")]
    for end, other in zip(ends, ("b", "a")):
        assert (end.transport, end.requested, end.provided, end.missing) == ("zenoh", ("ordered", "reliable"), ("ordered", "reliable"), ())
        assert end.peer == other
    assert all(router.endpoint in (k["peer_addr"] or "") for k in raw), raw
    for history in held.values():
        assert [e.value for e in history] == [1.0, 2.0, 3.0] and [e.seq for e in history] == [1, 2, 3]
        assert all(taint_names(e) == DECLARED for e in history)


def test_another_manifest_is_refused_by_name_at_both_ends(tmp_path):
    """Node b on another manifest hears a's hello on the link key (which carries no manifest id)
    and the handshake is refused manifest_mismatch, named at both ends; nothing crosses."""
    with EclipseRouter() as router, start(tmp_path, ZenohOptions.client(router.endpoint), 43220, other=True) as running:
        ends = wait_until(lambda: states(running, "refused"), UP_TIMEOUT_S, "ab refused at both ends")
    for end in ends:
        assert "manifest" in (end.refusal or "") and end.events_rx == 0, end


def test_router_kill_takes_both_ends_down_taints_the_next_events_and_restart_recovers(tmp_path):
    """kill -9 of the router: both ends go down (lease_expired) within the lease; restarted on the
    same port, the link comes up again with no user action; the first event of every crossing
    route after the outage carries delivery_dropped, and no event is delivered twice."""
    with EclipseRouter() as router, start(tmp_path, ZenohOptions.client(router.endpoint), 43240) as running:
        wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up")
        publish(running, [1.0, 2.0])
        wait_until(lambda: arrived(running, [1.0, 2.0]), 10, "the first events at b")
        router.kill()
        down = wait_until(lambda: states(running, "down"), LEASE_MS / 1000 + 5, "link ab down at both ends")
        assert all("lease" in (end.down_reason or "") for end in down), down
        publish(running, [3.0])  # while the router is away
        router.start()  # the same port
        wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up again after the restart")
        publish(running, [4.0, 5.0])
        held = wait_until(lambda: arrived(running, [4.0, 5.0]), 10, "the events after the restart at b")
    for history in held.values():
        values, seqs = [e.value for e in history], [e.seq for e in history]
        assert seqs == sorted(set(seqs)), seqs  # unique and increasing
        assert len(values) == len(set(values)) and values[:2] == [1.0, 2.0], values  # no duplicate delivery
        assert all(taint_names(e) == DECLARED for e in history[:2])
        assert "delivery_dropped" in taint_names(history[2]), history[2]  # the first event after the outage


def test_a_short_outage_loses_nothing(tmp_path):
    """The router killed and restarted within the lease: the session survives, what was published
    meanwhile is retransmitted, and every event arrives once, in order, with only the declared taints."""
    with EclipseRouter() as router, start(tmp_path, ZenohOptions.client(router.endpoint), 43260, lease_ms=15000) as running:
        wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up")
        publish(running, [1.0, 2.0])
        wait_until(lambda: arrived(running, [1.0, 2.0]), 10, "the first events at b")
        router.kill()
        publish(running, [3.0, 4.0, 5.0])  # into the outage: lost by Zenoh, kept by the session
        router.start()
        held = wait_until(lambda: arrived(running, [3.0, 4.0, 5.0]), 14, "the outage's events at b")
        ends = links(running)
    assert [end.state for end in ends] == ["up", "up"] and all(end.down_reason is None for end in ends), ends
    assert ends[0].retransmits > 0  # the outage really lost something on the way
    for history in held.values():
        assert [e.value for e in history] == [1.0, 2.0, 3.0, 4.0, 5.0] and [e.seq for e in history] == [1, 2, 3, 4, 5]
        assert all(taint_names(e) == DECLARED for e in history)


def test_peer_mode_keeps_delivering_when_the_router_dies(tmp_path):
    """In peer mode the router only introduces the nodes (documented behaviour): once it is
    killed the link stays up and new events still cross with only the declared taints."""
    with EclipseRouter() as router:
        peer = ZenohOptions(ZenohMode.PEER, (router.endpoint,), ("tcp/127.0.0.1:0",))
        with start(tmp_path, peer, 43280) as running:
            wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up")
            publish(running, [1.0])
            wait_until(lambda: arrived(running, [1.0]), 10, "the first event at b")
            router.kill()
            publish(running, [2.0, 3.0])
            held = wait_until(lambda: arrived(running, [2.0, 3.0]), 5, "events with the router dead")
            ends = links(running)
    assert [end.state for end in ends] == ["up", "up"], ends
    for history in held.values():
        assert [e.value for e in history] == [1.0, 2.0, 3.0] and all(taint_names(e) == DECLARED for e in history)


def manyfold(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=timeout_s)


def test_query_and_nodes_through_our_own_router(tmp_path):
    """With manyfold zenoh-router: manyfold query --cluster zenoh:... answers from every node
    through its admin queryable; a frozen node (token, no reply) is unknown and unreachable; a
    killed node's token goes, so it is no longer listed."""
    from manyfold.zenoh.router import RouterProcess

    with RouterProcess() as router:
        assert router.ready["listen"] == [router.listen]
        cluster = f"zenoh:{router.listen}"
        with start(tmp_path, ZenohOptions.client(router.listen), 43300) as running:
            wait_until(lambda: states(running, "up"), UP_TIMEOUT_S, "link ab up")
            done = manyfold("query", "--cluster", cluster, "topology", "--json", "--timeout", "2")
            assert done.returncode == 0, done.stderr
            answer = json.loads(done.stdout)
            assert sorted(answer["answered"]) == ["a", "b"] and answer["unknown"] == []
            listing = json.loads(manyfold("nodes", "--cluster", cluster, "--json", "--timeout", "2").stdout)
            assert {(n["name"], n["state"], n["other_manifest"]) for n in listing["nodes"]} == {("a", "online", False), ("b", "online", False)}
            assert all(n["found"] == ["liveliness"] and n["zenoh_key"].endswith(f"/admin/{n['name']}") for n in listing["nodes"])

            b = next(p for p in running.cluster.processes if p.node.name == "b")
            os.kill(b.pid, signal.SIGSTOP)
            try:
                frozen = manyfold("query", "--cluster", cluster, "topology", "--json", "--timeout", "1")
                nodes = json.loads(manyfold("nodes", "--cluster", cluster, "--json", "--timeout", "1").stdout)
            finally:
                os.kill(b.pid, signal.SIGCONT)
            answer = json.loads(frozen.stdout)
            assert frozen.returncode == 0 and answer["answered"] == ["a"], frozen.stdout
            assert [u["name"] for u in answer["unknown"]] == ["b"] and "no answer within 1 s" in answer["unknown"][0]["reason"]
            assert {n["name"]: n["state"] for n in nodes["nodes"]} == {"a": "online", "b": "unreachable"}

            os.kill(b.pid, signal.SIGKILL)
            wait_until(lambda: [n["name"] for n in json.loads(manyfold("nodes", "--cluster", cluster, "--json").stdout)["nodes"]] == ["a"],
                       10, "the killed node's token gone")  # fmt: skip


def test_demo_edge_on_zenoh_gives_the_udp_report(tmp_path):
    """manyfold demo edge --transport zenoh starts its own router and prints the report with the
    keys of the udp/tcp run: both node links on zenoh and up, the fan command's lineage across
    the three nodes, the query plane answered by every node through Zenoh, every node stopped cleanly."""
    done = manyfold("demo", "edge", "--transport", "zenoh", "--json", timeout_s=110)
    assert done.returncode == 0, done.stderr
    assert "Zenoh router (manyfold zenoh-router) on tcp/127.0.0.1:" in done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"nodes", "links", "devices", "fan_command", "lineage", "stopped", "federated"}
    links_by = {k["name"]: k for k in report["links"]}
    assert {name: (k["transport"], k["state"]) for name, k in links_by.items()} == {"ab": ("zenoh", "up"), "bh": ("zenoh", "up")}
    assert set(links_by["ab"]) == {"name", "transport", "nodes", "state", "requested", "provided", "missing", "events", "dropped",
                                   "retransmits", "gaps", "refusal"}  # fmt: skip
    assert links_by["ab"]["requested"] == links_by["ab"]["provided"] == ["ordered", "reliable"]
    assert {step["node"] for step in report["lineage"]} == {"edge-a", "edge-b", "host"}
    assert report["stopped"] == {"edge-a": 0, "edge-b": 0, "host": 0}
    federated = report["federated"]
    assert set(federated["answered"]) == {"edge-a", "edge-b", "host"} and federated["unknown"] == []
    assert federated["lineage"]["path"] == ["host", "edge-b", "edge-a", "device greenhouse-sensors"]


def test_zenoh_router_command_ready_line_and_clean_stop():
    """manyfold zenoh-router prints one JSON ready line naming the port it chose, and SIGTERM ends
    it with exit code 0; a listen address that is not a Zenoh endpoint is one sentence, exit 2."""
    router = subprocess.Popen([sys.executable, "-m", "manyfold", "zenoh-router", "--listen", "tcp/127.0.0.1:0"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert router.stdout is not None and select.select([router.stdout], [], [], 10)[0], "no ready line within 10 s"
        ready = json.loads(router.stdout.readline())
        assert ready["ready"] is True and ready["pid"] == router.pid
        ((endpoint,),) = (ready["listen"],)
        assert endpoint.startswith("tcp/127.0.0.1:") and not endpoint.endswith(":0")
        router.send_signal(signal.SIGTERM)
        assert router.wait(10) == 0
    finally:
        if router.poll() is None:
            router.kill()
            router.wait(5)
        router.stdout.close()
        router.stderr.close()
    bad = manyfold("zenoh-router", "--listen", "127.0.0.1:7447")
    assert bad.returncode == 2 and bad.stderr.strip() == "manyfold zenoh-router: --listen '127.0.0.1:7447' is not a Zenoh endpoint like tcp/127.0.0.1:7447"
