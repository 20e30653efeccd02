"""manyfold demo edge: the greenhouse split across at least three OS processes (real nodes on
loopback), its report, and its --json shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from manyfold import manifest
from manyfold.examples import greenhouse_edge as gh


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", "demo", "edge", *args], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "160"})  # fmt: skip


def test_the_edge_greenhouse_validates_and_plans_every_crossing():
    """Every crossing is a declared link whose transport keeps what it declares."""
    m = manifest.compile(gh.build())
    assert manifest.validate(m) == []
    assert {(link.name, link.transport) for link in m.links} == {("uart", "serial"), ("ab", "udp"), ("bh", "tcp")}


def test_demo_edge_json_shape():
    """One JSON object: nodes (name, pid, partitions) as distinct live-then-stopped processes,
    links (name, transport, requested, provided, events, dropped), the fan command and its
    lineage across the three nodes, and the federated section (every node answered, the lineage
    walked onto the board)."""
    done = run("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert set(nodes) == {"edge-a", "edge-b", "host"}
    assert len({n["pid"] for n in report["nodes"]}) == 3 and os.getpid() not in {n["pid"] for n in report["nodes"]}
    assert nodes["edge-a"]["partitions"] == ["edge-a", "greenhouse-sensors"]
    for link in report["links"]:
        assert set(link) >= {"name", "transport", "requested", "provided", "events", "dropped"}
    links = {link["name"]: link for link in report["links"]}
    assert links["ab"]["transport"] == "udp" and links["bh"]["transport"] == "tcp"
    assert links["ab"]["requested"] == links["ab"]["provided"] == ["ordered", "reliable"]
    assert links["ab"]["events"] > 0 and links["bh"]["events"] > 0
    assert report["fan_command"]["route"] == str(gh.FAN_COMMAND)
    assert {step["node"] for step in report["lineage"]} == {"edge-a", "edge-b", "host"}
    assert report["stopped"] == {"edge-a": 0, "edge-b": 0, "host": 0}
    federated = report["federated"]
    assert set(federated["answered"]) == {"edge-a", "edge-b", "host"} and federated["unknown"] == []
    assert federated["lineage"]["path"] == ["host", "edge-b", "edge-a", "device greenhouse-sensors"]
    assert {p["partition"]: p["node"] for p in federated["partitions"]}["greenhouse-sensors"] == "edge-a"


def test_demo_edge_report():
    done = run()
    assert done.returncode == 0, done.stderr
    for text in ("1. Nodes: one OS process each", "2. Links: capabilities requested and provided",
                 "3. What explains the host's last fan command", "the chain crosses edge-b <- edge-a, host <- edge-b",
                 "Stopped every node (each exit code 0)"):  # fmt: skip
        assert text in done.stdout, done.stdout
