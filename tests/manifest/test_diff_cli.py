"""Semantic diff, drawing, and the manifest commands run as real processes."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from manifestkit import small_graph

from manyfold import manifest
from manyfold.examples import greenhouse
from manyfold.graph import FLOAT, Graph, Mailbox, Overflow

from manifestkit import r

ROOT = Path(__file__).resolve().parent.parent.parent


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120, **kwargs)


def changed_graph() -> Graph:
    """small_graph with a bigger mailbox, a new route and node, and the threshold removed."""
    g = Graph()
    temp = g.route(r("sensor", "temp"), FLOAT, history=4)
    copy = g.route(r("sensor", "copy"), FLOAT)
    g.connect(temp, copy, mailbox=Mailbox(16, Overflow.DROP_OLDEST), name="buffer")
    g.moving_average(copy, 3, name="avg")
    g.route(r("sensor", "humidity"), FLOAT)
    return g


def test_diff_names_additions_removals_and_changes():
    """Routes, nodes and edges added/removed/changed, with compatibility judged per change."""
    d = manifest.diff(manifest.compile(small_graph()), manifest.compile(changed_graph()))
    summary = {(c.kind, c.subject, c.compatible) for c in d.changes}
    assert ("added", f"route {r('sensor', 'humidity')}", True) in summary
    assert ("removed", "node hot", False) in summary
    assert ("removed", "edge hot_in", False) in summary
    change = next(c for c in d.changes if c.subject == "edge buffer_in")
    assert change.kind == "changed" and change.compatible and "capacity" in change.detail
    assert not d.compatible


def test_identical_manifests_have_no_diff():
    """A manifest diffed with itself is empty and compatible."""
    m = manifest.compile(small_graph())
    d = manifest.diff(m, m)
    assert d.empty and d.compatible


def test_schema_change_is_incompatible():
    """Changing a route's schema is an incompatible change."""
    old = manifest.compile(small_graph())
    new = dataclasses.replace(old, routes=tuple(dataclasses.replace(x, schema="0" * 64) if x.route == r("sensor", "temp") else x for x in old.routes))
    (change,) = [c for c in manifest.diff(old, new).changes if c.subject.startswith("route")]
    assert not change.compatible and "schema" in change.detail


def test_dot_has_clusters_mailboxes_and_routes():
    """The drawing shows partitions as clusters, mailboxes as cylinders, and every route."""
    m = manifest.compile(greenhouse.build().graph)
    dot = manifest.to_dot(m)
    assert dot.count("subgraph cluster_") == 1 and "partition main (local)" in dot
    assert "shape=cylinder" in dot and "ingest_in" in dot
    assert all(f'"r:{x.route}"' in dot for x in m.routes)


@pytest.mark.skipif(shutil.which("dot") is None and not __import__("os").environ.get("CI"), reason="Graphviz's dot is not installed (apt install graphviz)")
def test_graph_command_renders_svg(tmp_path):
    """`manyfold graph` writes an SVG picture with the routes in it."""
    manifest_path = tmp_path / "g.json"
    manifest.compile(greenhouse.build().graph).write(manifest_path)
    out = tmp_path / "g.svg"
    result = run("graph", str(manifest_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and "fan_binding" in svg


def test_compile_validate_show_diff_commands(tmp_path):
    """compile writes the manifest; validate, show and diff read it; exit codes say the outcome."""
    out = tmp_path / "gh.json"
    result = run("compile", str(ROOT / "examples" / "greenhouse.py"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == manifest.compile(greenhouse.build(device=True).graph).to_json()
    result = run("validate", str(out))
    assert result.returncode == 0 and "valid (10 checks" in result.stdout
    result = run("show", str(out))
    assert result.returncode == 0 and "fan_binding" in result.stdout
    assert run("diff", str(out), str(out)).stdout.strip() == "no differences"


def test_validate_reports_violations_with_exit_1(tmp_path):
    """An invalid manifest lists each violation and exits 1."""
    m = manifest.compile(small_graph())
    bad = dataclasses.replace(m, edges=tuple(dataclasses.replace(e, policy=manifest.EdgePolicy("mailbox", 0, "block")) for e in m.edges))
    path = tmp_path / "bad.json"
    bad.write(path)
    result = run("validate", str(path))
    assert result.returncode == 1
    assert "[hidden_unbounded_queue] edge buffer_in" in result.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "manyfold.graph.v7"}', "unknown manifest format"),
        ('{"format": "manyfold.graph.v1", "routes": [{"route": "x"}]}', "routes\\[0\\]"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_files_are_sentences_not_tracebacks(tmp_path, content, message):
    """Broken manifests and missing files exit 2 with a sentence naming the problem."""
    path = tmp_path / "m.json"
    path.write_text(content)
    result = run("validate", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert __import__("re").search(message, result.stderr)
    missing = run("validate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_compile_explains_what_the_file_must_define(tmp_path):
    """compile on a file without a graph says what it needs."""
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    result = run("compile", str(path))
    assert result.returncode == 2 and "must define `graph`" in result.stderr
