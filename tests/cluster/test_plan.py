"""manyfold plan: partitions onto nodes, deterministic and reviewable; bad input is a sentence."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from clusterkit import TCP, split_graph, write_manifest

from manyfold.cluster.address import Address, Transport
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.nodes_file import NodesFile
from manyfold.cluster.place import make_plan
from manyfold.cluster.plan import DeviceAssignment, Plan, Runtime


def plan_of(tmp_path: Path, nodes_toml: str | None = None, graph=None) -> Plan:
    m, path = write_manifest(tmp_path, graph)
    nodes = None
    if nodes_toml is not None:
        (tmp_path / "nodes.toml").write_text(nodes_toml)
        nodes = NodesFile.read(tmp_path / "nodes.toml")
    return make_plan(m, manifest_path=path, plan_path=tmp_path / "plan.toml", nodes=nodes)


def manyfold(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_default_plan_one_node_per_partition(tmp_path):
    """Each non-device partition with content gets a node on 127.0.0.1; the device goes with the
    node at the other end of its link; Python operators make a python node; the lower id dials."""
    plan = plan_of(tmp_path, "base_port = 41200\n")
    assert [(n.name, n.id, n.partitions, n.runtime) for n in plan.nodes] == [
        ("control", 1, ("control",), Runtime.NATIVE),
        ("host", 2, ("host",), Runtime.PYTHON),
        ("ingest", 3, ("ingest",), Runtime.PYTHON),
    ]
    assert plan.node("ingest").devices == (DeviceAssignment("sensor", "sim:lm3s6965evb"),)
    assert all(n.listen.host == "127.0.0.1" and 41201 <= n.listen.port < 41300 for n in plan.nodes)
    assert all(41301 <= n.admin.port < 41400 for n in plan.nodes)
    assert [(k.name, k.nodes, k.dialer, k.transport) for k in plan.links] == [
        ("ab", ("ingest", "control"), "control", Transport.UDP),
        ("bh", ("control", "host"), "control", Transport.TCP),
    ]
    assert plan.manifest == "split.json"
    text = plan.to_toml()
    assert "partition main holds no routes or nodes: not placed" in text
    assert "link uart: the serial link of device sensor, owned by node ingest" in text
    assert "runtime python: Python operators in host (doubled)" in text


def test_plan_is_deterministic_and_reads_back(tmp_path):
    """The same inputs give the same bytes; the file reads back to the same plan."""
    first = plan_of(tmp_path, "base_port = 41220\n")
    second = plan_of(tmp_path, "base_port = 41220\n")
    assert first.to_toml() == second.to_toml()
    first.write(tmp_path / "plan.toml")
    assert Plan.read(tmp_path / "plan.toml") == first


def test_ports_in_use_are_skipped(tmp_path):
    """A port something holds is skipped, the rest stay in order."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 41241))
        plan = plan_of(tmp_path, "base_port = 41240\n")
    assert [n.listen.port for n in plan.nodes] == [41242, 41243, 41244]


def test_nodes_file_assignments_tags_devices_and_keys(tmp_path):
    """Explicit assignments, placement tags, device ports, ids, addresses and key files."""
    (tmp_path / "keys").mkdir()
    nodes = """
base_port = 41260
[[node]]
name = "edge-a"
id = 7
partitions = ["control"]
listen = "127.0.0.1:41299"
[[node]]
name = "north"
tags = { site = "north" }
[[node]]
name = "spare"
[devices]
sensor = "socket://127.0.0.1:5555"
[[link]]
name = "ab"
key_file = "keys/ab.key"
"""
    plan = plan_of(tmp_path, nodes, split_graph(ingest_placement={"site": "north"}))
    assert [(n.name, n.id, n.hosted) for n in plan.nodes] == [
        ("edge-a", 7, ("control",)), ("north", 1, ("ingest", "sensor")), ("host", 2, ("host",)),
    ]
    assert plan.node("edge-a").listen == Address("127.0.0.1", 41299)
    assert plan.node("north").devices == (DeviceAssignment("sensor", "socket://127.0.0.1:5555"),)
    ab = next(k for k in plan.links if k.name == "ab")
    assert ab.key_file == "keys/ab.key" and ab.dialer == "north"
    assert "left out: spare" in plan.to_toml()


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ('[[node]]\nname = "a"\npartitions = ["nope"]\n', "node a is assigned partition nope, which the manifest does not have"),
        ('[[node]]\nname = "a"\npartitions = ["sensor"]\n', "node a is assigned sensor, a device partition"),
        ('[[node]]\nname = "a"\npartitions = ["host"]\n[[node]]\nname = "b"\npartitions = ["host"]\n', "partition host is assigned to two nodes, a and b"),
        ('[[node]]\nname = "a"\npartitions = ["host"]\nruntime = "native"\n', "node a is asked to run native, but it hosts Python operators in host (doubled)"),
        ('[[node]]\nname = "a"\nruntime = "rust"\n', "runtime must be one of 'native', 'python', got 'rust'"),
        ('[[node]]\nname = "a"\nid = 0\n', "node a: id 0 is not between 1 and 65535"),
        ('[[node]]\nname = "a"\nlisten = "nowhere"\n', "listen 'nowhere' is not HOST:PORT"),
        ('[devices]\nhost = "/dev/ttyUSB0"\n', "[devices] names host, which is not a device partition of the manifest (sensor)"),
        ('[[link]]\nname = "zz"\n', "configures link zz, which the manifest does not declare (ab, bh, uart)"),
        ('colour = "blue"\n', "unknown key 'colour'"),
        ('[[node]]\nid = 3\n', "node 1 has no name"),
    ],
)
def test_nodes_file_errors_are_sentences(tmp_path, nodes, message):
    with pytest.raises(ClusterError, match=None) as error:
        plan_of(tmp_path, nodes)
    assert message in str(error.value)


def test_unmatched_placement_is_refused_when_nodes_are_declared(tmp_path):
    with pytest.raises(ClusterError) as error:
        plan_of(tmp_path, '[[node]]\nname = "south"\ntags = { site = "south" }\n', split_graph(ingest_placement={"site": "north"}))
    assert "partition ingest needs placement site=north, but no node of the nodes file has those tags" in str(error.value)


def test_an_authenticated_link_needs_a_key_file(tmp_path):
    """An authenticated node link without a key is refused at plan time, naming the link."""
    g = split_graph(bh=dataclasses.replace(TCP, authenticated=True))
    with pytest.raises(ClusterError) as error:
        plan_of(tmp_path, None, g)
    assert "link bh declares authenticated, which needs a pre-shared key" in str(error.value)
    plan = plan_of(tmp_path, '[[link]]\nname = "bh"\nkey_file = "bh.key"\n', g)
    assert next(k for k in plan.links if k.name == "bh").key_file == "bh.key"


def test_a_manifest_breaking_the_link_rules_is_refused(tmp_path):
    """A link declaring what its transport cannot keep is refused before anything is placed."""
    g = split_graph(bh=dataclasses.replace(TCP, durable=True))
    with pytest.raises(ClusterError) as error:
        plan_of(tmp_path, None, g)
    assert "cannot be split over links as it is: [link_capability_unavailable] link bh: declares durable" in str(error.value)


def test_plan_cli_writes_the_file_and_reports_errors_as_sentences(tmp_path):
    """The command writes the plan; bad input exits 2 with one sentence, never a traceback."""
    _m, path = write_manifest(tmp_path)
    (tmp_path / "nodes.toml").write_text("base_port = 41280\n")
    done = manyfold("plan", path.name, "--nodes", "nodes.toml", "-o", "plan.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote plan.toml: 3 nodes" in done.stderr
    assert Plan.read(tmp_path / "plan.toml").manifest == "split.json"
    again = manyfold("plan", path.name, "--nodes", "nodes.toml", "-o", "again.toml", cwd=tmp_path)
    assert (tmp_path / "again.toml").read_bytes() == (tmp_path / "plan.toml").read_bytes()

    (tmp_path / "bad.toml").write_text("[[node]\n")
    for args, expected in (
        (("plan", "missing.json", "-o", "p.toml"), "cannot read missing.json"),
        (("plan", path.name, "--nodes", "bad.toml", "-o", "p.toml"), "the nodes file bad.toml is not valid TOML"),
        (("plan", path.name, "--nodes", "none.toml", "-o", "p.toml"), "cannot read the nodes file none.toml"),
    ):
        done = manyfold(*args, cwd=tmp_path)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert again.returncode == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('format = "manyfold.plan.v1"', 'format = "v0"'), "format must be 'manyfold.plan.v1', got 'v0'"),
        (lambda t: t.replace("id = 2", "id = 1"), "nodes control and host have the same id 1"),
        (lambda t: t.replace('dialer = "control"', 'dialer = "host"', 1), "link ab: dialer 'host' is not one of its nodes ['ingest', 'control']"),
        (lambda t: t.replace('transport = "udp"', 'transport = "carrier-pigeon"'), "link ab: transport must be one of 'udp', 'tcp'"),
        (lambda t: t.replace('partitions = ["host"]', 'partitions = ["control"]'), "partition control is on two nodes, control and host"),
    ],
)
def test_edited_plans_are_checked(tmp_path, edit, message):
    """A hand-edited plan is checked field by field when read."""
    plan = plan_of(tmp_path, "base_port = 41300\n")
    (tmp_path / "plan.toml").write_text(edit(plan.to_toml()))
    with pytest.raises(ClusterError) as error:
        Plan.read(tmp_path / "plan.toml")
    assert message in str(error.value)
