"""`manyfold up` gives each node its own store directory (`<plan dir>/<node>`, or
`--store-root`): a view kept by a node started from a plan survives the plan being stopped and
started again, and is answered over the node's query plane."""

from __future__ import annotations

import os
from pathlib import Path

from viewkit import SOURCE, VIEW, expected_rows, reading, view_graph

from manyfold import manifest
from manyfold.cluster import up
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.nodes_file import NodesFile
from manyfold.cluster.place import make_plan
from manyfold.stores import ViewState


def write_plan(tmp_path: Path) -> Path:
    m = manifest.compile(view_graph(tmp_path / "unused"))
    path = tmp_path / "station.json"
    m.write(path)
    plan_path = tmp_path / "plan.toml"
    base_port = 45000 + (os.getpid() % 500) * 8
    make_plan(m, manifest_path=path, plan_path=plan_path, nodes=NodesFile(base_port=base_port)).write(plan_path)
    return plan_path


def view_of(cluster: up.Cluster) -> ViewState:
    (process,) = cluster.processes
    with AdminClient(process.ready.admin, timeout_s=10) as admin:
        answer = admin.ask({"q": "query", "kind": "view", "principal": "operator", "view": VIEW})
    return ViewState.from_dict(answer["answer"])


def publish(cluster: up.Cluster, first: int, last: int) -> None:
    (process,) = cluster.processes
    with AdminClient(process.ready.admin, timeout_s=10) as admin:
        assert admin.publish(SOURCE, [dict(reading(i).__dict__) for i in range(first, last + 1)]) == last - first + 1


def test_up_gives_each_node_a_store_directory_that_outlives_the_plan(tmp_path):
    """Stop and start the plan: the node's view is rebuilt from <plan dir>/<node>/latest.sqlite."""
    plan_path = write_plan(tmp_path)
    plan, _ = up.load(plan_path)
    (node,) = plan.nodes
    cluster = up.Cluster(plan, tmp_path)
    cluster.start(timeout_s=30)
    try:
        assert cluster.processes[0].command.argv[-2:] == ("--store", str(tmp_path / node.name))
        publish(cluster, 1, 60)
        assert view_of(cluster).keys == 7
    finally:
        cluster.stop()
    assert (tmp_path / node.name / "latest.sqlite").exists()
    cluster = up.Cluster(plan, tmp_path)
    cluster.start(timeout_s=30)
    try:
        view = view_of(cluster)
        assert {k: v["seq"] for k, v in view.rows.items()} == expected_rows(60)
        assert (view.replayed, view.snapshot_seq, view.lost) == (10, 50, ())
    finally:
        cluster.stop()


def test_a_store_root_moves_every_node_directory(tmp_path):
    """--store-root DIR: each node's flags say DIR/<node>."""
    plan_path = write_plan(tmp_path)
    plan, _ = up.load(plan_path)
    cluster = up.Cluster(plan, tmp_path, store_root=tmp_path / "elsewhere")
    argv = cluster.launcher.command(plan.nodes[0]).argv
    assert argv[-2:] == ("--store", str(tmp_path / "elsewhere" / plan.nodes[0].name))
