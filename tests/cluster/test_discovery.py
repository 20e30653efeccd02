"""Discovery with real processes: nodes that know one peer learn the rest by gossip and
``manyfold nodes`` lists them all from one address; a killed node is listed unreachable; a
wildcard bind without ``--advertise`` is refused; ``manyfold up`` gives every node the others as
peers; the multicast beacon (in a network namespace each test creates) finds nodes nobody
configured, and is off unless asked for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clusterkit import UDP, Running, split_graph, wait_until, write_manifest, write_plan
from discoverykit import NodeProc, node_argv, run_nodes_cli

from manyfold.cluster.launch import Launcher, find_native
from manyfold.cluster.plan import Plan

HERE = Path(__file__).resolve().parent



@pytest.fixture(autouse=True)
def native_node() -> None:
    """Every test here runs manyfold-node; CI builds it (cargo test) before pytest, so there a
    missing binary fails rather than skips."""
    if find_native() is None:
        why = "manyfold-node is not built (cargo build --release -p manyfold-runtime --bin manyfold-node)"
        if os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1":
            pytest.fail(why)
        pytest.skip(why)


def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, split_graph(device=False, python=False))[1]


def listed(out: subprocess.CompletedProcess) -> dict[str, dict]:
    assert out.stdout, out.stderr
    return {n["name"]: n for n in json.loads(out.stdout)["nodes"]}


def test_one_known_peer_is_enough_gossip_spreads_the_rest_and_nodes_lists_all(tmp_path):
    """ingest knows nobody, control (a Python node) knows ingest, host knows control: ingest's
    own peer list comes to hold host (learned from control's list), `manyfold nodes --peer
    INGEST --json` lists all three online, and once host is killed it is listed unreachable."""
    m = manifest(tmp_path)
    fast = ("--gossip-ms", "200")
    ingest = NodeProc("manyfold-node", m, "ingest", 1, "ingest", *fast)
    nodes = [ingest]
    try:
        nodes.append(control := NodeProc("manyfold node", m, "control", 2, "control", "--peer", str(ingest.admin), *fast))
        nodes.append(host := NodeProc("manyfold-node", m, "host", 3, "host", "--peer", str(control.admin), *fast))
        peers = wait_until(lambda: (p := ingest.peers()).keys() >= {"control", "host"} and p, timeout_s=15, what="ingest hears of host")
        assert peers["host"]["source"] == "gossip" and peers["host"]["admin"] == str(host.admin)
        assert peers["host"]["partitions"] == ["host"] and peers["host"]["manifest_id"] == ingest.ask({"q": "status"})["manifest_id"]
        assert host.peers()["control"]["source"] == "configured"

        out = run_nodes_cli("--peer", str(ingest.admin), "--json")
        assert out.returncode == 0, out.stderr
        found = listed(out)
        assert sorted(found) == ["control", "host", "ingest"]
        assert {n: f["state"] for n, f in found.items()} == dict.fromkeys(found, "online")
        assert found["ingest"]["found"][0] == "configured" and "gossip" in found["host"]["found"]
        assert found["control"]["partitions"] == ["control"] and found["control"]["devices"] == []
        assert not any(f["other_manifest"] for f in found.values())

        host.kill()
        found = listed(run_nodes_cli("--peer", str(ingest.admin), "--json", "--timeout", "0.3"))
        assert found["host"]["state"] == "unreachable" and found["host"]["error"]
        assert found["ingest"]["state"] == found["control"]["state"] == "online"
    finally:
        for n in nodes:
            n.stop()


def test_the_table_view_names_each_node_and_how_it_was_found(tmp_path):
    """Without --json, a table lists each node with its state and sources; no node answering
    exits 1 with the unreachable one named."""
    m = manifest(tmp_path)
    a = NodeProc("manyfold-node", m, "ingest", 1, "ingest")
    try:
        out = run_nodes_cli("--peer", str(a.admin))
        assert out.returncode == 0 and "1 of 1 nodes online" in out.stdout and "ingest" in out.stdout and "configured" in out.stdout
    finally:
        a.stop()
    out = run_nodes_cli("--peer", str(a.admin), "--timeout", "0.3")
    assert out.returncode == 1 and "unreachable" in out.stdout and "Traceback" not in out.stderr


def test_a_node_of_another_manifest_is_listed_and_marked(tmp_path):
    """A node running another manifest that gossips with the cluster is listed, online, with its
    own manifest id and marked other_manifest; the cluster's nodes are not."""
    m = manifest(tmp_path)
    other = write_manifest(tmp_path, split_graph(device=False, python=False, bh=UDP), "other.json")[1]
    ingest = NodeProc("manyfold-node", m, "ingest", 1, "ingest")
    nodes = [ingest]
    try:
        nodes.append(NodeProc("manyfold-node", m, "control", 2, "control", "--peer", str(ingest.admin)))
        nodes.append(NodeProc("manyfold-node", other, "stray", 9, "host", "--peer", str(ingest.admin)))
        found = listed(run_nodes_cli("--peer", str(ingest.admin), "--json"))
        assert {n: (f["state"], f["other_manifest"]) for n, f in found.items()} == {
            "ingest": ("online", False), "control": ("online", False), "stray": ("online", True),
        }
        assert found["stray"]["manifest_id"] != found["ingest"]["manifest_id"]
        table = run_nodes_cli("--peer", str(ingest.admin))
        assert "stray (other manifest)" in table.stdout
    finally:
        for n in nodes:
            n.stop()


def test_nodes_without_anywhere_to_look_is_a_usage_error():
    """No --cluster, --peer, --beacon or --device: one sentence, exit 2."""
    out = run_nodes_cli()
    assert out.returncode == 2 and out.stderr.strip() == "manyfold nodes: say where to look: --cluster PLAN_OR_ADDRESS (or zenoh:ENDPOINT), --peer HOST:PORT, --beacon or --device URL"


@pytest.mark.parametrize("program", ["manyfold-node", "manyfold node"])
def test_a_wildcard_bind_without_advertise_is_refused_with_a_sentence(tmp_path, program):
    """With --peer, a node listening on 0.0.0.0 exits 2 with one sentence asking for
    --advertise; with --advertise 127.0.0.1 it starts and advertises 127.0.0.1, never 0.0.0.0."""
    m = manifest(tmp_path)
    argv = [*node_argv(program), "--manifest", str(m), "--node", "ingest", "--node-id", "1", "--partition", "ingest",
            "--listen", "0.0.0.0:0", "--admin", "127.0.0.1:0", "--peer", "127.0.0.1:9"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "wildcard 0.0.0.0:0" in lines[0] and "give --advertise HOST" in lines[0], out.stderr
    node = NodeProc(program, m, "ingest", 1, "ingest", "--peer", "127.0.0.1:9", "--advertise", "127.0.0.1", listen="0.0.0.0:0", admin="0.0.0.0:0")
    try:
        me = node.ask({"q": "peers"})
        assert me["admin"] == f"127.0.0.1:{node.admin.port}" and me["listen"].startswith("127.0.0.1:")
    finally:
        node.stop()


def test_up_gives_every_node_the_others_as_peers_so_one_address_finds_all(tmp_path):
    """The launcher passes every other planned node's admin endpoint as --peer (never its own);
    with the nodes of a plan running, each node's peers are the others (configured) and `manyfold
    nodes --cluster ONE_ADMIN` lists all three online."""
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 42860)
    plan = Plan.read(plan_path)
    launcher = Launcher(plan, tmp_path, find_native())
    for node in plan.nodes:
        argv = launcher.command(node).argv
        given = [b for a, b in zip(argv, argv[1:]) if a == "--peer"]
        assert sorted(given) == sorted(str(n.admin) for n in plan.nodes if n.name != node.name)
    with Running(plan_path) as running:
        control = running.admin["control"].ask({"q": "peers"})
        assert sorted((p["admin"], p["source"]) for p in control["peers"]) == [(str(plan.node(n).admin), "configured") for n in ("host", "ingest")]
        found = listed(run_nodes_cli("--cluster", str(plan.node("host").admin), "--json"))
        assert sorted(found) == ["control", "host", "ingest"] and all(f["state"] == "online" for f in found.values())
        assert found["host"]["found"] == ["configured", "gossip"] and found["ingest"]["found"] == ["gossip"]
        from_plan = listed(run_nodes_cli("--cluster", str(plan_path), "--json"))
        assert {n: f["found"][0] for n, f in from_plan.items()} == dict.fromkeys(found, "configured")


def in_namespace(mode: str, m: Path) -> dict:
    """Runs netns_beacon.py MODE in a new user and network namespace; its JSON result."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rn (a user and network namespace) is not available here")
    out = subprocess.run(["unshare", "-rn", sys.executable, str(HERE / "netns_beacon.py"), mode, str(m)],
                         capture_output=True, text=True, timeout=90)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_beacon_finds_nodes_nobody_configured_inside_a_namespace(tmp_path):
    """Two nodes with --beacon and no --peer on a test group in a fresh network namespace: each
    lists the other (source beacon), and `manyfold nodes --beacon` lists both online, found by
    beacon, with their real (loopback) addresses."""
    result = in_namespace("listing", manifest(tmp_path))
    assert result["code"] == 0, result["stderr"]
    found = {n["name"]: n for n in result["listing"]["nodes"]}
    assert sorted(found) == ["control", "ingest"]
    for name, node in found.items():
        assert node["state"] == "online" and "beacon" in node["found"] and node["admin"].startswith("127.0.0.1:")
    assert result["peers"]["ingest"]["control"]["source"] == "beacon"
    assert result["peers"]["control"]["ingest"]["source"] == "beacon"
    assert result["listing"]["beacons_heard"] == 2


def test_the_beacon_is_off_unless_asked_for(tmp_path):
    """On the default group, a node without --beacon (even with --peer) sends nothing in 2.5 s
    (beacons go every second); a node with --beacon is heard, with a valid datagram of at most
    512 bytes naming its admin endpoint."""
    result = in_namespace("off", manifest(tmp_path))
    assert result["silent"] == 0
    assert result["heard"] >= 1 and result["bytes"] <= 512
    assert result["beacon"] == {"node": "control", "id": 2, "admin": result["loud_admin"]}


def test_a_beacon_listen_that_hears_nothing_says_so():
    """Listening on a group nobody beacons on: no node, and a note naming the group and why
    (nodes beacon only with --beacon), not a bare empty list."""
    from manyfold.discovery.beacon import BeaconOptions
    from manyfold.discovery.find import discover

    listing = discover((), beacon=BeaconOptions("239.255.109.103", 47998, "127.0.0.1"), listen_s=0.3)
    assert listing.nodes == () and listing.beacons_heard == 0
    assert listing.notes == (
        "no beacon heard on 239.255.109.103:47998 (interface 127.0.0.1) within 0.3 s: nodes send one only when started with --beacon",
    )
