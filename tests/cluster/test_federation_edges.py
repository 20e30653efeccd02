"""The federated client's edges against stand-in admin endpoints (real loopback sockets served
by this process): a node that rejects the question, a node that never answers, a host name the
resolver cannot encode, a lineage started on a named node, and the terminal rendering of
unknown and refused nodes."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from rich.console import Console

from manyfold.cli.federated_query import render_cluster_answer, render_lineage
from manyfold.cluster.address import Address
from manyfold.federation import Target, fan_out
from manyfold.federation.cluster_answer import ask_cluster
from manyfold.federation.lineage import CrossLineage, LineageWalkError, walk_lineage

ROUTE = "read.internal.reorder.climate.temperature.event.v1"


@contextmanager
def admin_endpoint(answer: Callable[[dict], dict]) -> Iterator[Address]:
    """A loopback admin endpoint answering each request line with ``answer(request)``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    f.write(json.dumps(answer(json.loads(line))).encode() + b"\n")
                    f.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Address("127.0.0.1", server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


@contextmanager
def silent_endpoint() -> Iterator[Address]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield Address("127.0.0.1", server.getsockname()[1])
    finally:
        server.close()


def _no_route(request: dict) -> dict:
    return {"error": f"the manifest has no route {request.get('route')}"}


def test_a_question_every_node_rejects_is_a_usage_error_with_the_nodes_sentence():
    """taints of a route no manifest has: exit 2 and the node's one sentence, not every node unknown."""
    with admin_endpoint(_no_route) as a, admin_endpoint(_no_route) as b:
        answer = ask_cluster((Target("a", a), Target("b", b)), "taints", route="no.such.route", timeout_s=2)
        assert answer.rejected_by_all is not None and "has no route no.such.route" in answer.rejected_by_all
        done = subprocess.run([sys.executable, "-m", "manyfold", "query", "--cluster", str(a), "taints", "no.such.route"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done
    assert done.stderr.strip() == f"manyfold query: admin {a}: the manifest has no route no.such.route"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_rejection_next_to_a_silent_node_is_no_usage_error():
    """One node rejecting while another does not answer is not the question's fault: both stay unknown."""
    with admin_endpoint(_no_route) as a, silent_endpoint() as b:
        answer = ask_cluster((Target("a", a), Target("b", b)), "taints", route="no.such.route", timeout_s=0.3)
    assert answer.rejected_by_all is None
    assert [(u.name, u.rejected) for u in answer.unknown] == [("a", True), ("b", False)]


def test_fan_out_asks_on_daemon_threads():
    """Every thread asking a silent node is a daemon, so Ctrl-C does not wait for its timeout."""
    with silent_endpoint() as silent:
        runner = threading.Thread(target=fan_out, args=((Target("s", silent),), {"q": "status"}), kwargs={"timeout_s": 3.0})
        runner.start()
        deadline = time.monotonic() + 2.0
        askers: list[threading.Thread] = []
        while not askers and time.monotonic() < deadline:
            askers = [t for t in threading.enumerate() if t.name.startswith("fan-out")]
            time.sleep(0.01)
        assert askers, "no fan-out thread seen"
        assert all(t.daemon for t in askers)
        runner.join(timeout=5)


def test_ctrl_c_during_a_cluster_query_ends_it_at_once():
    """SIGINT while a node is silent: "interrupted", exit 130, within two seconds, not after --timeout."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        proc = subprocess.Popen([sys.executable, "-m", "manyfold", "query", "--cluster", address, "topology", "--timeout", "20"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            conn, _ = server.accept()  # the query has connected and waits for an answer that never comes
            proc.send_signal(signal.SIGINT)
            started = time.monotonic()
            _out, err = proc.communicate(timeout=10)
            conn.close()
        finally:
            proc.kill()
    assert time.monotonic() - started < 2.0
    assert proc.returncode == 130 and err.strip() == "interrupted", err


def test_a_host_name_the_resolver_cannot_encode_is_unknown_with_a_sentence():
    """A 70-letter host label: the node is unknown with one sentence (no thread traceback)."""
    host = "a" * 70
    answer = ask_cluster((Target("far", Address(host, 5000)),), "topology", timeout_s=1)
    assert [u.reason for u in answer.unknown] == [f"admin {host}:5000: {host!r} is not a valid host name"]


def _holder(name: str, latest_seq: int | None) -> Callable[[dict], dict]:
    def answer(request: dict) -> dict:
        me = {"node": name, "id": 1, "incarnation": 1, "manifest_id": "00", "kind": request.get("kind")}
        if request.get("kind") == "topology":
            return {**me, "answer": {"manifest_id": "00", "partitions": [], "devices": [], "routes": [], "nodes": [], "edges": []}}
        if request.get("kind") == "routes":
            latest = None if latest_seq is None else {"seq": latest_seq, "time_us": 1, "taints": [], "value": 1}
            return {**me, "answer": [{"route": ROUTE, "owner": "p", "producer": "x", "consumers": [], "envelopes": 1, "latest": latest}]}
        return {"error": "not asked in this test"}

    return answer


def test_lineage_of_a_route_on_a_named_node_starts_on_that_node():
    """`lineage ROUTE NODE`: the walk starts on NODE, not on whichever node holds a newer envelope."""
    with admin_endpoint(_holder("a", None)) as a, admin_endpoint(_holder("b", 9)) as b:
        with pytest.raises(LineageWalkError, match=f"node a holds no envelope of {ROUTE}"):
            walk_lineage((Target("a", a), Target("b", b)), ROUTE, node="a", timeout_s=1)


def _render(draw) -> str:
    out = io.StringIO()
    draw(Console(file=out, width=160, color_system=None))
    return out.getvalue()


def test_unknown_nodes_read_unknown_not_markup():
    """The nodes table says unknown in plain words (rich markup in a cell would be printed as is)."""
    answer = ask_cluster((Target("gone", Address("127.0.0.1", 1)),), "topology", timeout_s=1)
    text = _render(lambda c: render_cluster_answer(c, answer))
    assert "unknown" in text and "[bold red]" not in text and "[/]" not in text


def test_a_lineage_every_node_refused_names_the_refusals():
    """A walk no node answered prints each refusal and says no node answered (no empty "held by")."""
    walk = CrossLineage("", ROUTE, 0, (), (), (), 0, (), False, ("a",), {"a": 'principal "m" may not query this graph'})
    text = _render(lambda c: render_lineage(c, walk))
    assert 'refused a: principal "m" may not query this graph' in text
    assert "no node answered" in text and "held by" not in text


def test_two_nodes_answering_under_one_name_are_both_kept():
    """Two endpoints calling themselves the same node: neither answer is silently dropped."""
    with admin_endpoint(_holder("n", 1)) as a, admin_endpoint(_holder("n", 2)) as b:
        answer = ask_cluster((Target("a", a), Target("b", b)), "routes", timeout_s=2)
    assert answer.answered == ("n", f"n ({b})") and set(answer.nodes) == set(answer.answered)
    assert answer.unknown == ()


@pytest.mark.parametrize("command", [["query", "--cluster", "127.0.0.1:1", "topology", "--timeout", "inf"],
                                     ["monitor", "--cluster", "127.0.0.1:1", "--interval", "1e300", "--count", "1"],
                                     ["nodes", "--peer", "127.0.0.1:1", "--timeout", "1e300"]])  # fmt: skip
def test_seconds_too_large_for_a_socket_are_a_usage_error(command):
    """--timeout inf or 1e300 seconds: exit 2 and argparse's one-line reason, no OverflowError traceback."""
    done = subprocess.run([sys.executable, "-m", "manyfold", *command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "expected at most 100000000 seconds" in done.stderr.splitlines()[-1] and "Traceback" not in done.stderr


def test_a_partition_two_nodes_host_is_shown_with_both_never_merged_away():
    """Two nodes answering that they host the same partition: the merged topology keeps the first
    as its node and the other under ``also``, and says so; a planned partition nobody answered
    for has no node."""
    from manyfold.federation.answers import NodeTopology
    from manyfold.federation.merge import merge
    from manyfold.federation.plan_facts import PlanFacts

    def topo(*partitions: str) -> NodeTopology:
        return NodeTopology("ab" * 32, partitions, (), (), (), ())

    facts = PlanFacts(partitions={"a": ("ingest",), "b": ("control",), "c": ("host",)})
    merged = merge("topology", {"a": topo("ingest"), "b": topo("control", "ingest")}, facts)
    owners = {p.partition: p for p in merged.partitions}
    assert (owners["ingest"].node, owners["ingest"].also, owners["ingest"].planned) == ("a", ("b",), "a")
    assert owners["ingest"].hosts == "a, b (hosted twice)" and owners["control"].hosts == "b"
    assert owners["host"].node is None and owners["host"].hosts == "no answer"
