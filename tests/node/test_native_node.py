"""`_native.Node`: the Rust runtime node serving a graph loaded in Python, with Python
operators, linked to another node over UDP on loopback (two nodes in one process here; the
process tests of the binary are runtime_std/tests/node_*.rs)."""

import time
from pathlib import Path

import pytest

from manyfold import _native
from manyfold.graph import taints_of
from manyfold.manifest import Manifest, load

FIXTURES = Path(__file__).resolve().parents[2] / "runtime_std" / "tests" / "fixtures"
RAW = "read.raw.a.temp.raw.event.v1"
OUT = "read.raw.b.temp.out.event.v1"


def wait_for(what, check, bound_s=10.0):
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_python_operator_partition_is_hosted_and_linked():
    m = Manifest.read(FIXTURES / "python.json")
    (ref,) = {r for n in m.nodes for r in n.function_refs()}
    ga = load(m, partitions=["a"], realtime=True)
    gb = load(m, callables={ref: lambda v: v + 1.0}, partitions=["b"], realtime=True)
    a = _native.Node(ga._native, m.to_cbor(), "a", 1, ["a"], "127.0.0.1:0", admin="127.0.0.1:0")
    b = _native.Node(gb._native, m.to_cbor(), "b", 2, ["b"], "127.0.0.1:0", links=[("ab", f"udp://{a.listen}")])
    try:
        wait_for("ab up", lambda: b.status().links[0].state == "up")
        seen = []
        gb.subscribe(OUT, lambda env: seen.append((env.seq, env.value, sorted(t.value for t in taints_of(env)))))
        producer = ga.producer("a")
        for x in (1.0, 2.0, 3.0):
            ga.publish(RAW, x, producer=producer)
        wait_for("3 values at b", lambda: len(seen) == 3)
        assert [(s, v) for s, v, _ in seen] == [(1, 3.0), (2, 5.0), (3, 7.0)]
        assert seen[0][2] == ["det_nonreplayable", "trust_unverified"]
        link = b.status().links[0]
        assert (link.name, link.transport, link.peer, link.events_rx) == ("ab", "udp", "a", 3)
        assert link.requested == ["ordered", "reliable"] and link.missing == []
        assert a.status().links[0].events_tx == 3
        assert '"ready":true' in a.ready_line and a.admin
    finally:
        last_b = b.stop()
        last_a = a.stop()
    assert last_a.links[0].state in ("down", "up") and last_b.node == "b"
    assert b.stopping


def test_bad_options_are_refused_in_one_sentence():
    m = Manifest.read(FIXTURES / "chain.json")
    g = load(m, partitions=["a"])
    with pytest.raises(Exception, match="no partition"):
        _native.Node(g._native, m.to_cbor(), "a", 1, ["zz"], "127.0.0.1:0")
    with pytest.raises(Exception, match="udp:// or tcp://"):
        _native.Node(g._native, m.to_cbor(), "a", 1, ["a"], "127.0.0.1:0", links=[("ab", "http://x:1")])


def test_a_lazy_payload_crosses_as_metadata_and_is_fetched_when_opened():
    """A lazy envelope's metadata crosses at once; Graph.open_payload at the receiving node
    fetches the bytes over the link (checked against the digest), and the open shows in payload
    demand and the route audit there, and in the link's `fetches` counter (docs/wire.md 4.10)."""
    import hashlib

    from manyfold import query

    frames, inbound = "read.bulk.a.camera.frame.payload.v1", "read.bulk.b.camera.frame.payload.v1"
    m = Manifest.read(FIXTURES / "lazy.json")
    ga = load(m, partitions=["a"], realtime=True)
    gb = load(m, partitions=["b"], realtime=True)
    a = _native.Node(ga._native, m.to_cbor(), "a", 1, ["a"], "127.0.0.1:0")
    b = _native.Node(gb._native, m.to_cbor(), "b", 2, ["b"], "127.0.0.1:0", links=[("ab", f"udp://{a.listen}")])
    try:
        wait_for("ab up", lambda: b.status().links[0].state == "up")
        assert b.status().links[0].provided == ["ordered", "reliable", "lazy"]
        pixels = bytes(range(256)) * 64  # 16 KiB, a greenhouse camera frame: fetched in pieces
        opened_at_a = []

        def produce():
            opened_at_a.append(1)
            return pixels

        camera = ga.producer("a")
        camera.publish_lazy(frames, 42, length=len(pixels), sha256=hashlib.sha256(pixels).digest(), open=produce)
        env = wait_for("the frame's metadata at b", lambda: gb.latest(inbound))
        assert env.value == 42 and not opened_at_a
        assert b.status().links[0].fetches == 0
        assert gb.open_payload(env, consumer="inspect") == pixels
        assert opened_at_a == [1]
        link = b.status().links[0]
        assert (link.fetches, link.fetch_failures) == (1, 0)
        assert a.status().links[0].fetches_served == 1
        demand = query.payload_demand(gb, frames)
        assert (demand.metadata_events, demand.opens, demand.bytes_materialized) == (1, 1, len(pixels))
        assert demand.by_consumer == {"inspect": 1}
        opens = query.route_audit(gb, frames).of_kind("opened")
        assert [e.who for e in opens] == ["inspect"]
    finally:
        b.stop()
        a.stop()


LOCK_ORDER_SCRIPT = """
import sys, threading, time
from pathlib import Path
from manyfold import _native
from manyfold.manifest import Manifest, load
m = Manifest.read(Path(sys.argv[1]))
(ref,) = {r for n in m.nodes for r in n.function_refs()}
ga = load(m, partitions=["a"], realtime=True)
gb = load(m, callables={ref: lambda v: v + 1.0}, partitions=["b"], realtime=True)
a = _native.Node(ga._native, m.to_cbor(), "a", 1, ["a"], "127.0.0.1:0")
b = _native.Node(gb._native, m.to_cbor(), "b", 2, ["b"], "127.0.0.1:0", links=[("ab", f"udp://{a.listen}")], run_scheduler=False)
up_by = time.monotonic() + 10
while b.status().links[0].state != "up" and time.monotonic() < up_by:
    time.sleep(0.01)
stop = threading.Event()
def publish():
    p, x = ga.producer("a"), 0
    while not stop.is_set():
        ga.publish("read.raw.a.temp.raw.event.v1", float(x), producer=p)
        x += 1
        if x % 50 == 0:
            time.sleep(0.001)
threading.Thread(target=publish, daemon=True).start()
end, passes = time.monotonic() + 2.0, 0
while time.monotonic() < end:
    gb.run_realtime(0.0)
    passes += 1
stop.set()
print(passes, b.status().links[0].events_rx, flush=True)
b.stop(); a.stop()
"""


def test_run_realtime_never_deadlocks_against_a_link_thread_running_python_operators():
    """Graph.run_realtime in a loop while a link thread ingests into the same graph (Python
    operator, so it needs the GIL with the graph locked) finishes: the binding never waits for
    the graph's lock while holding the GIL (this deadlocked the edge demo's node B once)."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", LOCK_ORDER_SCRIPT, str(FIXTURES / "python.json")],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError("run_realtime and the link thread deadlocked (no progress within 30 s)") from None
    assert done.returncode == 0, done.stderr
    passes, received = (int(x) for x in done.stdout.split())
    assert passes > 100 and received > 100
