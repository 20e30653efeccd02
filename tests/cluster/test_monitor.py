"""``manyfold monitor`` against real node processes: JSON lines, node states by lease, link
rates, Ctrl-C, the web server's bounds (the page itself: test_monitor_web.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from clusterkit import Running, split_graph, wait_until, write_plan
from monitorkit import RAW, Monitor, Publishing, link, states

from manyfold.cluster import up
from manyfold.cluster.launch import Launcher, find_native
from manyfold.monitor.model import ClusterSnapshot
from manyfold.monitor.web import Hub

LEASE_S = 2.0
INTERVAL_S = 0.2
NODE_LEASE_MS = 1500


class ShortLease(Launcher):
    """The plan's command lines, with the nodes' link lease shortened to ``NODE_LEASE_MS``."""

    def flags(self, node) -> list[str]:
        return [*super().flags(node), "--lease-ms", str(NODE_LEASE_MS)]


def test_a_killed_node_goes_stale_then_gone_within_the_lease_and_rates_follow_traffic(tmp_path):
    """kill -9 of one node: the monitor's JSON lines mark it stale, then gone within the lease
    (plus one poll), and its peer's link down once the nodes' lease ends; before that, published
    events show as a rate on the link; Ctrl-C exits 0."""
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 44300)
    plan, _ = up.load(plan_path)
    launcher = ShortLease(plan, plan_path.parent, find_native())
    with Running(plan_path, launcher=launcher) as running, Monitor("--cluster", str(plan_path), "--interval", str(INTERVAL_S), "--lease-s", str(LEASE_S)) as monitor:
        wait_until(running.links_up, what="every link up")
        first = monitor.until(lambda s: set(states(s).values()) == {"online"}, 10, "every node online")
        assert set(first) >= {"nodes", "links", "taints", "events"}
        assert {n["name"] for n in first["nodes"]} == {"ingest", "control", "host"}

        def busy(snapshot: dict) -> bool:
            running.admin["ingest"].publish(RAW, [1.0, 2.0, 3.0, 4.0])
            ab = link(snapshot, "ingest", "ab")
            return ab["tx_per_s"] is not None and ab["tx_per_s"] > 0

        ab = link(monitor.until(busy, 10, "a rate on ingest's link ab"), "ingest", "ab")
        assert ab["events_tx"] > 0 and ab["state"] == "up" and ab["provided"] == ["ordered"]

        host = running.cluster.process("host")
        os.kill(host.pid, signal.SIGKILL)
        killed = time.monotonic()
        stale = monitor.until(lambda s: states(s)["host"] != "online", 5, "host no longer online")
        assert states(stale)["host"] == "stale" and next(n for n in stale["nodes"] if n["name"] == "host")["error"]
        gone = monitor.until(lambda s: states(s)["host"] == "gone", LEASE_S + 5, "host gone")
        after_s = time.monotonic() - killed
        assert after_s <= LEASE_S + 4 * INTERVAL_S + 1.0, f"gone after {after_s:.1f} s"
        assert states(gone) == {"control": "online", "host": "gone", "ingest": "online"}
        assert [e["kind"] for e in gone["events"] if e["node"] == "host"] == ["gone"]
        assert link(gone, "host", "bh")["fresh"] is False  # the last numbers it reported, marked old
        if link(gone, "control", "bh")["state"] != "down":
            monitor.until(lambda s: link(s, "control", "bh")["state"] == "down", NODE_LEASE_MS / 1e3 + 5, "bh down at control")
        texts = [e["text"] for s in monitor.seen for e in s["events"] if e["kind"] == "link"]
        assert [t for t in texts if t.startswith("link bh at control: down")] == [texts[-1]], texts
        assert monitor.interrupt() == 0


def test_taints_appear_once_per_route_and_a_refused_principal_leaves_them_unknown(tmp_path):
    """With the manifest exposing taints to operator, the taints link ab adds show per route at
    control (added by link ab_in) and appear once as events; as another principal the nodes
    refuse the taints query, and the monitor says taints unknown instead of failing."""
    from manyfold import query

    graph = split_graph(device=False, python=False)
    query.expose(graph, principals=["operator"], kinds=["taints"])
    plan_path = write_plan(tmp_path, graph, 44400)
    args = ("--cluster", str(plan_path), "--interval", str(INTERVAL_S))
    with Running(plan_path) as running, Publishing(running.admin["ingest"]), Monitor(*args) as monitor, Monitor(*args, "--principal", "intruder") as refused:
        wait_until(running.links_up, what="every link up")
        route = "read.logical.control.env.avg.meta.v1"

        def tainted(snapshot: dict) -> bool:
            return any(t["node"] == "control" and t["route"] == route for t in snapshot["taints"])

        seen = [monitor.until(tainted, 10, f"taints on {route} at control")]
        seen += [monitor.next() for _ in range(3)]
        at_control = next(t for t in seen[-1]["taints"] if t["node"] == "control" and t["route"] == route)
        assert "delivery_dropped" in at_control["taints"]
        assert {(a["kind"], a["name"]) for a in at_control["added"]} == {("link", "ab_in")}
        appeared = [e for s in seen for e in s["events"] if e["kind"] == "appeared" and e["node"] == "control" and e["route"] == route]
        assert len(appeared) == 1 and set(appeared[0]["taints"]) == set(at_control["taints"])
        other = refused.until(lambda s: set(states(s).values()) == {"online"}, 10, "every node online")
        assert [n["taints_known"] for n in other["nodes"]] == [False, False, False] and other["taints"] == []
        assert all(n["taints_known"] for n in seen[-1]["nodes"])


def test_the_device_behind_a_node_is_listed(tmp_path):
    """The board partition of the split graph (a simulated board behind ingest) is listed as a
    device of node ingest, and of no other node."""
    plan_path = write_plan(tmp_path, split_graph(device=True), 44500)
    with Running(plan_path) as running, Monitor("--cluster", str(plan_path), "--interval", str(INTERVAL_S)) as monitor:
        wait_until(running.links_up, what="every link up")
        snapshot = monitor.until(lambda s: set(states(s).values()) == {"online"}, 15, "every node online")
        devices = {n["name"]: [d["partition"] for d in n["devices"]] for n in snapshot["nodes"]}
        assert devices == {"control": [], "host": [], "ingest": ["sensor"]}


def test_an_unreachable_node_is_stale_then_gone_in_the_live_view(tmp_path):
    """The terminal view of an address nothing answers on: the node is stale, then gone after
    the lease, with the reason; --count stops it with exit code 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        out = subprocess.run(
            [sys.executable, "-m", "manyfold", "monitor", "--cluster", f"127.0.0.1:{port}", "--interval", "0.1", "--lease-s", "0.3", "--count", "6"],
            capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "160"},
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "nodes" in out.stdout and "links" in out.stdout and f"127.0.0.1:{port}" in out.stdout
    assert "gone 1" in out.stdout and "never" in out.stdout
    assert f"node 127.0.0.1:{port} gone" in out.stdout and "Traceback" not in out.stderr


def test_a_plan_without_its_manifest_file_is_monitored_without_the_page(tmp_path):
    """The manifest is read only for --http's drawing: without its file, --json still polls every planned node."""
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 44900)
    (tmp_path / "split.json").unlink()
    out = subprocess.run([sys.executable, "-m", "manyfold", "monitor", "--cluster", str(plan_path), "--json", "--count", "1", "--interval", "0.1"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert {n["name"] for n in json.loads(out.stdout)["nodes"]} == {"ingest", "control", "host"}


def test_the_page_is_not_served_on_a_public_address_unless_asked():
    """--http on a non-loopback address without --http-public is refused with one sentence."""
    out = subprocess.run(
        [sys.executable, "-m", "manyfold", "monitor", "--cluster", "127.0.0.1:9", "--http", "0.0.0.0:0", "--count", "1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert "not a loopback address" in out.stderr and "--http-public" in out.stderr and "Traceback" not in out.stderr


def _get(port: int, path: str, *, first_event: bool = False) -> tuple[socket.socket, str]:
    """An HTTP GET on a new connection: the connection and the text read (for an event stream,
    up to its first snapshot)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    text = b""
    while (b"data: " not in text or not text.endswith(b"\n\n")) if first_event else b"\r\n\r\n" not in text:
        chunk = conn.recv(65536)
        if not chunk:
            break
        text += chunk
    return conn, text.decode()


def test_event_streams_are_bounded_and_a_freed_place_is_taken_again():
    """With --http-clients 2, a third event stream gets 503 with Retry-After; once a stream
    closes, a new one is served; /snapshot.json is the snapshot the streams carry."""
    with Monitor("--cluster", "127.0.0.1:9", "--interval", "0.1", "--http", "127.0.0.1:0", "--http-clients", "2") as monitor:
        url = monitor.next()["http"]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        monitor.next()
        a, first = _get(port, "/events", first_event=True)
        b, _ = _get(port, "/events", first_event=True)
        snapshot = json.loads(first.split("data: ", 1)[1])
        assert snapshot["nodes"][0]["name"] == "127.0.0.1:9"
        c, refused = _get(port, "/events")
        assert refused.startswith("HTTP/1.1 503") and "Retry-After: 5" in refused, refused
        c.close()
        a.close()

        def served():
            conn, text = _get(port, "/events")
            conn.close()
            return text.startswith("HTTP/1.1 200")

        wait_until(served, timeout_s=10, what="a stream served after one closed")  # the server notices at its next send
        b.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /snapshot.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = b""
            while chunk := conn.recv(65536):
                body += chunk
        head, _, data = body.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200") and set(json.loads(data)) >= {"seq", "nodes", "links", "taints", "events"}
        assert monitor.interrupt() == 0


def test_a_slow_stream_keeps_the_newest_snapshots():
    """A stream's send queue holds at most queue_max snapshots: a slow client loses the oldest,
    and gets the newest."""
    hub = Hub(clients_max=1, queue_max=2)
    q = hub.join()
    assert hub.join() is None and hub.refused == 1
    for seq in range(1, 6):
        hub.publish(ClusterSnapshot(seq, 0.0, 1.0, 10.0, (), (), (), ()))
    assert [json.loads(q.get_nowait())["seq"] for _ in range(2)] == [4, 5] and hub.dropped == 3
