"""Compiling graphs to manifests: content, golden files, determinism, serializations."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cbor2
from manifestkit import check_golden, r, small_graph

from manyfold import manifest
from manyfold.examples import greenhouse
from manyfold.graph import FLOAT, Graph, LinkCapabilities

ROOT = Path(__file__).resolve().parent.parent.parent


def test_records_describe_the_graph():
    """Routes, schemas, nodes, edges and policies are all in the manifest."""
    m = manifest.compile(small_graph())
    assert m.format == "manyfold.graph.v1" and m.compatible == ">=0.2,<1.0"
    assert [n.name for n in m.nodes] == ["buffer", "avg", "hot"]
    assert m.node("avg").kind == "count_window" and m.node("avg").params == {"size": 3, "step": 1, "aggregate": "mean", "emit": "value"}
    assert m.node("hot").params == {"mode": "above", "low": 30.0}
    buffer = m.edge("buffer_in")
    assert (buffer.policy.kind, buffer.policy.capacity, buffer.policy.overflow) == ("mailbox", 8, "drop_oldest")
    temp = m.route(r("sensor", "temp"))
    assert (temp.history, temp.retain, temp.partition, temp.schema) == (4, 256, "main", m.schemas[0].hash)
    assert m.schemas[0].type == "float"


def test_golden_manifests():
    """The examples compile to their golden manifests, byte for byte."""
    check_golden("small.json", manifest.compile(small_graph()).to_json())
    check_golden("greenhouse.json", manifest.compile(greenhouse.build(device=True).graph).to_json())


def test_json_and_cbor_agree_and_id_is_sha256_of_cbor():
    """Both serializations carry the same data; the id is SHA-256 over the CBOR."""
    m = manifest.compile(greenhouse.build().graph)
    assert json.loads(m.to_json()) == cbor2.loads(m.to_cbor())
    assert m.id == hashlib.sha256(m.to_cbor()).hexdigest()
    assert manifest.Manifest.from_json(m.to_json()) == m
    assert manifest.Manifest.from_cbor(m.to_cbor()).to_cbor() == m.to_cbor()


def test_canonical_json_is_one_record_per_line():
    """Keys sorted, records one per line: a diff of two manifests reads well."""
    text = manifest.compile(small_graph()).to_json()
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("\n")
    top_keys = [line.split('"')[1] for line in lines if line.startswith('  "')]
    assert top_keys == sorted(top_keys)
    node_lines = [line for line in lines if line.startswith('    {"inputs"')]
    assert len(node_lines) == 3


def test_same_bytes_across_processes_and_hash_seeds():
    """`manyfold compile` gives byte-identical output in fresh processes with other hash seeds."""
    outputs = set()
    for seed in ("0", "1", "4242"):
        result = subprocess.run(
            [sys.executable, "-m", "manyfold", "compile", str(ROOT / "examples" / "greenhouse.py"), "--cbor"],
            capture_output=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, check=True, timeout=120,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert hashlib.sha256(outputs.pop()).hexdigest() == manifest.compile(greenhouse.build(device=True).graph).id


def test_partitions_links_and_query_exposure():
    """Partitions, links (with capabilities), crossings and query exposure are recorded."""
    from manyfold.query import QueryService

    g = Graph()
    board = g.partition("board", profile="embedded-lite", board="lm3s6965evb")
    host = g.partition("host", profile="local")
    g.link("uart", board, host, transport="serial", capabilities=LinkCapabilities(ordered=True, reliable=False, durable=False))
    with board:
        raw = g.route(r("sensor", "raw"), FLOAT)
    with host:
        seen = g.route(r("sensor", "seen"), FLOAT)
        g.connect(raw, seen, link=LinkCapabilities(reliable=False, durable=False), name="uplink")
    QueryService(g)
    ops = g.producer("ops")
    g.grant(ops, g.routes[-2])
    m = manifest.compile(g)
    assert [(p.name, p.profile, p.placement) for p in m.partitions] == [
        ("board", "embedded-lite", {"board": "lm3s6965evb"}), ("host", "local", {}), ("main", "local", {}),
    ]
    assert m.links[0].to_data() == {"name": "uart", "between": ["board", "host"], "transport": "serial", "ordered": True, "reliable": False, "authenticated": True, "durable": False}
    assert m.edge("uplink_in").link == "uart"
    assert m.node("uplink").params == {"link_taints": ["delivery_dropped", "det_nonreplayable"]}
    assert m.query.service == "manyfold" and "lineage" in m.query.kinds and m.query.principals == ("ops",)


def test_expose_declares_query_exposure_of_a_split_graph():
    """`manyfold.query.expose` records principals and kinds without query routes, and a manifest round trip keeps them."""
    from manyfold.graph import OperatorConfigError
    from manyfold.query import expose, exposure_kind

    g = Graph()
    board = g.partition("board", profile="embedded-lite", board="lm3s6965evb")
    with board:
        g.route(r("sensor", "raw"), FLOAT)
    routes_before = list(g.routes)
    expose(g, principals=["operator", "monitor"], kinds=["topology", "taints"])
    m = manifest.compile(g)
    assert g.routes == routes_before
    assert (m.query.service, m.query.kinds, m.query.principals) == ("manyfold", ("topology", "taints"), ("operator", "monitor"))
    again = manifest.compile(manifest.load(manifest.Manifest.from_data(m.to_data())))
    assert again.query == m.query
    assert exposure_kind("counters") == "flow" and exposure_kind("device", "latest") == "topology" and exposure_kind("nope") is None
    for bad in ({"principals": []}, {"principals": ["operator"], "kinds": ["everything"]}):
        try:
            expose(g, **bad)
        except OperatorConfigError:
            continue
        raise AssertionError(f"expose accepted {bad}")
