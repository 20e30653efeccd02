"""Real runtime nodes, each its own OS process on loopback, started by manyfold up's machinery:
the split graph computes what the single-process graph computes (values, taints, lineage), and a
manifest mismatch is refused at the handshake and shown in both nodes' status."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusterkit import Running, r, split_graph, wait_until, write_plan

from manyfold import manifest
from manyfold.cluster import up
from manyfold.cluster.admin import AdminError
from manyfold.cluster.launch import LaunchCommand, Launcher, find_native
from manyfold.cluster.plan import PlannedNode
from manyfold.graph import taints_of

VALUES = [10.0, 20.0, 40.0, 50.0, 25.0, 35.0, 45.0]
RAW = r("probe", "raw")


def single_process(m) -> dict:
    """Every route's envelopes in one process: (seq, value, taints, parents as (route, seq))."""
    from clusterkit import double

    g = manifest.load(m, callables={"clusterkit.double": double})
    producer = g.producer("probe")
    for v in VALUES:
        producer.publish(RAW, v)
    g.run_until_idle()
    out = {}
    for record in m.routes:
        rows, seq = [], 1
        while (e := g.envelope(record.route, seq)) is not None:
            rows.append((seq, e.value, frozenset(t.value for t in taints_of(e)), tuple((str(p.route), p.seq) for p in e.parents)))
            seq += 1
        out[str(record.route)] = rows
    return out


@pytest.mark.parametrize(("runtime", "python", "port"), [("native", False, 42700), ("python", False, 42740), ("native", True, 42760)])
def test_the_split_graph_gives_the_same_values_taints_and_lineage(tmp_path, runtime, python, port):
    """ingest -udp-> control -tcp-> host, three processes (manyfold-node where it can, else
    manyfold node; or manyfold node everywhere; with a Python operator on the host): every route
    of every node holds what the same route holds in one process, envelope by envelope."""
    if runtime == "native" and find_native() is None:
        why = "manyfold-node is not built (cargo build -p manyfold-runtime --bin manyfold-node)"
        if os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1":
            pytest.fail(f"{why}; CI builds it with cargo test before pytest, so this run would hide the native node")
        pytest.skip(why)
    graph = split_graph(device=False, python=python)
    plan_path = write_plan(tmp_path, graph, port)
    with Running(plan_path, native=runtime == "native") as running:
        programs = {p.node.name: p.command.program for p in running.cluster.processes}
        assert programs["host"] == ("manyfold node" if python or runtime == "python" else "manyfold-node")
        wait_until(running.links_up, what="every link up")
        assert running.admin["ingest"].publish(RAW, VALUES) == len(VALUES)
        expected = single_process(running.manifest)
        owner = {str(rec.route): running.plan.node_of(rec.partition).name for rec in running.manifest.routes}
        last = str(running.manifest.routes[1].route)  # read.internal.doubled...: the end of the chain
        wait_until(lambda: len(running.admin[owner[last]].history(last)) == len(expected[last]), what=f"{last} complete")
        for route, rows in expected.items():
            held = running.admin[owner[route]].history(route)
            got = [(e.seq, e.value, frozenset(t.value for t in e.taints), tuple((str(p.route), p.seq) for p in e.parents)) for e in held]
            assert got == rows, route
        # Lineage across nodes: the host's last output names, hop by hop, the nodes holding its ancestors.
        tail = running.admin["host"].history(last)[-1]
        lineage = running.admin["host"].lineage(last, tail.seq)
        assert {ref.node for ref in lineage.elsewhere} == {running.plan.node("control").id}
        status = {name: client.status() for name, client in running.admin.items()}
    ab = status["control"].link("ab")
    assert (ab.transport, ab.requested, ab.provided, ab.missing) == ("udp", ("ordered",), ("ordered",), ())
    assert ab.events_rx == status["ingest"].link("ab").events_tx > 0
    assert status["host"].link("bh").provided == ("ordered", "reliable")
    assert [e.code for e in running.events if type(e).__name__ == "Stopped"] == [0, 0, 0]


@dataclass(frozen=True)
class OtherManifest(Launcher):
    """Gives node ``odd`` another manifest than the plan's."""

    odd: str = ""
    other: Path = Path()

    def command(self, node: PlannedNode) -> LaunchCommand:
        command = super().command(node)
        if node.name != self.odd:
            return command
        argv = list(command.argv)
        argv[argv.index("--manifest") + 1] = str(self.other)
        return LaunchCommand(tuple(argv), command.program, command.note)


def test_a_device_behind_a_node_feeds_the_other_nodes(tmp_path):
    """The sensor partition runs in the host simulation, owned by the ingest node (manyfold node
    --device); its events reach the host node two links away, with the serial link's taints and
    their lineage back to the board's route."""
    plan_path = write_plan(tmp_path, split_graph(device=True), 42780)
    with Running(plan_path) as running:
        last = "read.internal.doubled.env.hot.event.v1"
        tail = wait_until(lambda: running.admin["host"].latest(last), what="device events at the host")
        raw = running.admin["ingest"].latest(RAW)
        status = running.admin["ingest"].status()
    assert status.partitions == ("ingest", "sensor")
    assert {t.value for t in raw.taints} >= {"delivery_dropped", "trust_unverified", "det_nonreplayable"}
    assert [str(p.route) for p in raw.parents] == [str(r("board", "reading"))]
    assert tail.value > 0 and tail.seq >= 1


def test_a_manifest_mismatch_is_refused_at_the_handshake_and_shown_at_both_ends(tmp_path):
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 42720)
    manifest.compile(_changed()).write(tmp_path / "other.json")
    plan, _m = up.load(plan_path)
    launcher = OtherManifest(plan, tmp_path, find_native(), odd="host", other=tmp_path / "other.json")
    with Running(plan_path, launcher) as running:
        def refused():
            links = [running.admin["control"].status().link("bh"), running.admin["host"].status().link("bh")]
            return links if all(link.refusal for link in links) else None

        control, host = wait_until(refused, what="bh refused at both ends")
    for link in (control, host):
        assert link.state == "refused" and "manifest" in link.refusal
        assert link.events_rx == 0


def _changed():
    """The same partitions and links, one more route: another manifest id."""
    from manyfold.graph import FLOAT

    g = split_graph(device=False, python=False)
    g.route(r("host", "extra"), FLOAT)
    return g


def test_a_killed_node_is_reported_not_restarted_and_its_peer_marks_the_link_down(tmp_path):
    """kill -9 of the host node: the cluster reports its exit (never restarts it), and its peer
    marks the link down within the lease (10 s)."""
    import os
    import signal

    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 42800)
    with Running(plan_path) as running:
        wait_until(running.links_up, what="every link up")
        host = running.cluster.process("host")
        killed_pid = host.pid
        os.kill(killed_pid, signal.SIGKILL)
        exited = running.cluster.watch(poll_s=0.05)
        assert exited is not None and exited.node.name == "host" and exited.code == -signal.SIGKILL
        def bh_down():
            link = running.admin["control"].status().link("bh")
            return link if link.state == "down" else None

        link = wait_until(bh_down, timeout_s=15, what="bh down at control")
        assert link.down_reason is not None
        # Nothing started again: the same three processes, the killed one still dead, and
        # nobody answers on its admin endpoint.
        assert [p.node.name for p in running.cluster.processes] == ["control", "host", "ingest"]
        again = running.cluster.process("host").process
        assert again.pid == killed_pid and again.poll() == -signal.SIGKILL
        with pytest.raises(AdminError):
            running.admin["host"].status()
        assert running.admin["ingest"].status().link("ab").state == "up"
