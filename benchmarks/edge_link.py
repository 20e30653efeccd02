"""Edge links: node-to-node events of 8 bytes over UDP and TCP on loopback, events per second and
one-way latency, beside Eclipse Zenoh Python peers over TCP loopback measured in the same run.

One JSON line per transport (after a first line describing the run)::

    {"transport": "udp" | "tcp" | "zenoh" | "zenoh-raw" | "zenoh-peer", "events_per_s": N, "p50_us": N, "p99_us": N, ...}

What runs, like for like (each side two OS processes on this machine, Python at both ends):

- ``zenoh-peer``: two ``zenoh.open`` sessions in peer mode (multicast scouting off), the receiver
  listening on ``tcp/127.0.0.1:PORT`` and the sender connecting to it. The sender ``put``s 8-byte
  payloads through one publisher (``CongestionControl.BLOCK``, as Zenoh's own throughput
  examples); the receiver counts them in a Python callback subscriber.
- ``zenoh-raw``: the same two eclipse-zenoh sessions in **client** mode, both connected to a Zenoh
  router in a third process (our ``_native.ZenohRouter``, TCP loopback): raw Zenoh put/subscribe of
  the same 8-byte payload through a router.
- ``zenoh``: our two nodes (as for ``udp``) in client mode through the same kind of router in a
  third process, their link ``ab`` declared ``transport = "zenoh"``. Its line carries ``vs_raw`` =
  our events/s over ``zenoh-raw``'s in the same run (target: at least 0.8).
- ``udp`` / ``tcp``: a manifest of two partitions joined by one link (``udp`` or ``tcp``), one
  route crossing it. Each process loads the manifest into a graph hosting one partition and runs
  the runtime node on it (``_native.Node``), the sender dialing the receiver. The sender publishes
  from Python into its node; the receiver counts with a Python subscriber (``Graph.subscribe``).

The payload is 8 bytes: the sender's ``time.monotonic_ns()`` (CLOCK_MONOTONIC is shared by the
processes of one machine), packed as an int64 for Zenoh and as the float64 value of the route for
ours (exact: the clock is far below 2**53 ns). The receiver takes ``time.monotonic_ns()`` when its
callback runs, so latency is one-way, publish call to subscriber callback.

Two phases per run, because a saturating run measures queueing rather than latency:

1. **throughput**: the sender publishes ``--events`` events as fast as it can, in chunks of
   ``--chunk`` events stamped with the time the chunk starts (ours: one ``publish_many`` per chunk
   from an ``array('d')`` buffer, the fastest Python publish API; Zenoh: one ``put`` per event, it
   has no batch put). ``events_per_s`` = events received / (last receive - first send). Our link
   queues are made deep enough for the whole burst (``--queue-depth``, default the burst): with
   the node's default (1024 events) a ``publish_many`` burst overruns the queue and is dropped
   at the sender, counted and tainted, by design, where Zenoh's BLOCK publisher waits. Events
   lost anyway are reported as ``lost``; the latencies seen in this phase are reported as
   ``loaded_p50_us`` / ``loaded_p99_us`` (queueing, not link latency).
2. **latency**: ``--latency-events`` events, one publish call each, ``--gap-us`` apart (the sender
   sleeps between them), so nothing queues: ``p50_us`` / ``p99_us`` come from this phase.

Before each measured run the sender sends probe events until the receiver sees one (the link or
session is up, the subscription matched), then a warm-up burst. Each run starts a fresh pair of
processes; transports are interleaved run by run so they see the same machine load; the figures
are medians over ``--runs`` runs. Every wait is bounded and every process is stopped at the end
(``quit`` on stdin, then SIGTERM, then SIGKILL).

Run from the repository root after ``pip install -e '.[bench]'``::

    python benchmarks/edge_link.py --peer

``--transports`` chooses what runs (default ``udp,tcp`` and, with ``--peer``, ``zenoh``,
``zenoh-raw`` and ``zenoh-peer``).
Beside ``udp`` and ``tcp`` come ``udp-rust`` and ``tcp-rust``: the same manifest and node code
with no Python (``cargo run --release --example edge_bench``, both nodes in one process sharing
one clock, ``publish_many`` and a subscriber in Rust), to separate the node from the Python
boundary; ``--no-rust`` leaves them out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path

import machine  # benchmarks/machine.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_BYTES = 8
KEY = "manyfold/bench/edge"
PACK = struct.Struct("<q")

STARTUP_S = 20.0
"""Bound on a process's start-up (ready line), and on the probe phase."""
REPLY_S = 60.0
"""Bound on any other reply of a child process."""


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


# ---------------------------------------------------------------- child processes (roles)


class Commands:
    """Reads the harness's JSON commands from stdin, one per line; answers on stdout."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.buf = b""

    def pending(self) -> bool:
        return b"\n" in self.buf or bool(select.select([self.fd], [], [], 0)[0])

    def next(self) -> dict:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return {"cmd": "quit"}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


class Receiver:
    """Records (send stamp, receive time) per event; the backend's callback calls ``add``."""

    def __init__(self) -> None:
        self.sent = array("q")
        self.recv = array("q")

    def reset(self) -> None:
        self.sent = array("q")
        self.recv = array("q")

    def wait(self, n: int, idle_s: float, bound_s: float) -> None:
        """Until ``n`` events arrived, or none arrived for ``idle_s``, or ``bound_s`` passed."""
        end = time.monotonic() + bound_s
        last_count, last_change = -1, time.monotonic()
        while len(self.recv) < n and time.monotonic() < end:
            time.sleep(0.002)
            count = len(self.recv)
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > idle_s:
                break

    def result(self) -> dict:
        n = len(self.recv)
        if n == 0:
            return {"received": 0}
        lat = sorted((r - s) / 1e3 for s, r in zip(self.sent, self.recv))
        span_ns = self.recv[-1] - min(self.sent)
        return {
            "received": n, "span_s": span_ns / 1e9, "events_per_s": n / (span_ns / 1e9) if span_ns > 0 else None,
            "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99), "max_us": lat[-1],
        }  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    i = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def zenoh_config(listen: str | None, connect: str | None, mode: str = "peer"):
    import zenoh

    config = zenoh.Config()
    config.insert_json5("mode", json.dumps(mode))
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("transport/shared_memory/enabled", "false")
    config.insert_json5("listen/endpoints", json.dumps([listen] if listen else []))
    config.insert_json5("connect/endpoints", json.dumps([connect] if connect else []))
    return config


def zenoh_receiver(args: argparse.Namespace) -> int:
    import zenoh

    rx = Receiver()
    router = f"tcp/127.0.0.1:{args.port}"
    session = zenoh.open(zenoh_config(None, router, "client") if args.client else zenoh_config(router, None))
    unpack = PACK.unpack
    now = time.monotonic_ns

    def on_sample(sample) -> None:
        t = now()
        rx.sent.append(unpack(sample.payload.to_bytes())[0])
        rx.recv.append(t)

    subscriber = session.declare_subscriber(KEY, on_sample)
    try:
        return serve_receiver(rx, {"listen": f"tcp/127.0.0.1:{args.port}"})
    finally:
        subscriber.undeclare()
        session.close()


def zenoh_sender(args: argparse.Namespace) -> int:
    import zenoh

    session = zenoh.open(zenoh_config(None, f"tcp/127.0.0.1:{args.port}", "client" if args.client else "peer"))
    publisher = session.declare_publisher(KEY, congestion_control=zenoh.CongestionControl.BLOCK)
    put = publisher.put
    pack = PACK.pack
    now = time.monotonic_ns

    def burst(n: int, chunk: int) -> None:
        left = n
        while left > 0:
            k = min(chunk, left)
            payload = pack(now())
            for _ in range(k):
                put(payload)
            left -= k

    def one() -> None:
        put(pack(now()))

    def matched() -> bool:
        return publisher.matching_status.matching

    try:
        return serve_sender(burst, one, matched)
    finally:
        publisher.undeclare()
        session.close()


def serve_receiver(rx: Receiver, ready: dict) -> int:
    """``arm`` (forget what came; answer at once), ``first`` (answer when an event came),
    ``collect`` (answer with the result when ``n`` came or the stream went idle), ``quit``."""
    commands = Commands()
    emit({"ready": True, "pid": os.getpid(), **ready})
    while True:
        c = commands.next()
        if c["cmd"] == "quit":
            emit({"quit": True})
            return 0
        if c["cmd"] == "arm":
            rx.reset()
            emit({"armed": True})
        elif c["cmd"] == "first":
            rx.wait(1, c.get("bound_s", STARTUP_S), c.get("bound_s", STARTUP_S))
            emit({"first": len(rx.recv) > 0})
        elif c["cmd"] == "collect":
            rx.wait(c["n"], c.get("idle_s", 1.0), c.get("bound_s", REPLY_S))
            emit(rx.result())
        else:
            emit({"error": f"unknown command {c['cmd']!r}"})


def serve_sender(burst, one, matched) -> int:
    """``probe`` (one event every 5 ms until a ``stop`` arrives, bounded), ``burst``
    (``n`` events in chunks), ``paced`` (``n`` single events ``gap_us`` apart), ``quit``."""
    commands = Commands()
    end = time.monotonic() + STARTUP_S
    while not matched() and time.monotonic() < end:
        time.sleep(0.005)
    emit({"ready": True, "pid": os.getpid(), "matched": matched()})
    while True:
        c = commands.next()
        if c["cmd"] == "quit":
            emit({"quit": True})
            return 0
        if c["cmd"] == "probe":
            sent, end = 0, time.monotonic() + STARTUP_S
            while not commands.pending() and time.monotonic() < end:
                one()
                sent += 1
                time.sleep(0.005)
            if commands.pending():
                commands.next()  # the harness's "stop"
            emit({"probes": sent})
        elif c["cmd"] == "burst":
            t0 = time.monotonic_ns()
            burst(c["n"], c["chunk"])
            emit({"sent": c["n"], "publish_s": (time.monotonic_ns() - t0) / 1e9})
        elif c["cmd"] == "paced":
            gap = c["gap_us"] / 1e6
            for _ in range(c["n"]):
                one()
                time.sleep(gap)
            emit({"sent": c["n"]})
        else:
            emit({"error": f"unknown command {c['cmd']!r}"})


# Our half: a manifest of two partitions and one link, a runtime node per process.

SOURCE = "read.raw.a.bench.stamp.event.v1"
INBOUND = "read.raw.b.bench.stamp.event.v1"
LINK = "ab"


def router_role(args: argparse.Namespace) -> int:
    """A Zenoh router (ours, ``_native.ZenohRouter``) on ``tcp/127.0.0.1:PORT`` until ``quit``."""
    from manyfold import _native

    router = _native.ZenohRouter([f"tcp/127.0.0.1:{args.port}"])
    commands = Commands()
    emit({"ready": True, "pid": os.getpid(), "listen": router.endpoints()})
    try:
        while commands.next()["cmd"] != "quit":
            pass
        emit({"quit": True})
        return 0
    finally:
        router.close()


def write_manifest(transport: str, path: Path) -> Path:
    """Partition ``a`` (the sender's) publishes ``SOURCE``; partition ``b`` (the receiver's)
    forwards it over link ``ab`` into ``INBOUND``. The link is ordered and reliable (as Zenoh's
    TCP peers are), neither authenticated nor durable (nor are they): on UDP the link itself
    provides retransmission and resequencing."""
    from manyfold.graph import FLOAT, Graph, LinkCapabilities
    import manyfold.manifest as mm

    g = Graph(realtime=True)
    a, b = g.partition("a", profile="edge"), g.partition("b", profile="edge")
    caps = LinkCapabilities(ordered=True, reliable=True, authenticated=False, durable=False)
    g.link(LINK, a, b, transport="udp" if transport == "zenoh" else transport, capabilities=caps)
    with a:
        source = g.route(SOURCE, FLOAT)
    with b:
        inbound = g.route(INBOUND, FLOAT)
        g.connect(source, inbound, link=caps, name="forward_b")
    m = mm.compile(g)
    if transport == "zenoh":
        import dataclasses

        # Declared on udp (the compiler's transports), then moved to zenoh: the node decides.
        m = dataclasses.replace(m, links=tuple(dataclasses.replace(link, transport="zenoh") for link in m.links))
    path.write_bytes(m.to_cbor())
    return path


def start_node(manifest: Path, name: str, node_id: int, partition: str, dial: str | None, queue_depth: int, zenoh: str | None = None):
    """A graph realtime-loaded with ``partition`` of the manifest, and the node serving it
    (``zenoh``: a router to connect to, for a zenoh link)."""
    import manyfold.manifest as mm
    from manyfold import _native

    g = mm.load(manifest, partitions=[partition], realtime=True)
    links = [(LINK, dial)] if dial else []
    node = _native.Node(
        g._native, manifest.read_bytes(), name, node_id, [partition], "127.0.0.1:0", links=links, queue_depth_max=queue_depth,
        zenoh_connect=[zenoh] if zenoh else [],
    )  # fmt: skip
    return g, node


def link_up(node) -> bool:
    return any(link.state == "up" for link in node.status().links)


def node_receiver(args: argparse.Namespace) -> int:
    rx = Receiver()
    g, node = start_node(Path(args.manifest), "b", 2, "b", None, args.queue_depth, args.zenoh)
    now = time.monotonic_ns

    def on_envelope(envelope) -> None:
        t = now()
        rx.sent.append(int(envelope.value))
        rx.recv.append(t)

    g.subscribe(INBOUND, on_envelope, name="bench_counter")
    try:
        return serve_receiver(rx, {"listen": node.listen})
    finally:
        node.stop()


def node_sender(args: argparse.Namespace) -> int:
    from manyfold.graph import Route

    g, node = start_node(Path(args.manifest), "a", 1, "a", args.connect, args.queue_depth, args.zenoh)
    route = Route.parse(SOURCE)
    producer = g.producer("a")
    publish_many, publish = producer.publish_many, producer.publish
    now = time.monotonic_ns

    def burst(n: int, chunk: int) -> None:
        left = n
        while left > 0:
            k = min(chunk, left)
            publish_many(route, array("d", [float(now())]) * k)
            left -= k

    def one() -> None:
        publish(route, float(now()))

    try:
        return serve_sender(burst, one, lambda: link_up(node))
    finally:
        node.stop()


ROLES = {"zenoh-recv": zenoh_receiver, "zenoh-send": zenoh_sender, "node-recv": node_receiver, "node-send": node_sender, "router": router_role}


# ---------------------------------------------------------------- the harness


class Child:
    """A role of this script in its own process: JSON commands in, JSON lines out, bounded."""

    def __init__(self, role: str, extra: list[str]) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, *extra]
        self.role = role
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)

    def read(self, bound_s: float) -> dict:
        """The next JSON line on its stdout (lines that are not JSON objects are skipped)."""
        end = time.monotonic() + bound_s
        out = self.proc.stdout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.role}: no answer within {bound_s:.0f} s{self.stderr_tail()}")
            ready, _, _ = select.select([out], [], [], left)
            if not ready:
                continue
            line = out.readline()
            if not line:
                raise RuntimeError(f"{self.role} exited with code {self.proc.wait(5)}{self.stderr_tail()}")
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                if "error" in value:
                    raise RuntimeError(f"{self.role}: {value['error']}")
                return value

    def ask(self, command: dict, bound_s: float = REPLY_S) -> dict:
        self.send(command)
        return self.read(bound_s)

    def send(self, command: dict) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def stderr_tail(self) -> str:
        if self.proc.poll() is None:
            return ""
        tail = self.proc.stderr.read().decode(errors="replace").strip().splitlines()[-8:]
        return (": " + " | ".join(tail)) if tail else ""

    def stop(self) -> None:
        """``quit``, then SIGTERM after 5 s, then SIGKILL after 5 more."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
            except (BrokenPipeError, OSError):
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pair(transport: str, workdir: Path, queue_depth: int, extra: list[Child]) -> tuple[Child, Child]:
    """Receiver first (its ready line tells where it listens), then the sender; a router first of
    all for ``zenoh`` and ``zenoh-raw`` (added to ``extra``, to be stopped last)."""
    if transport in ("zenoh", "zenoh-raw"):
        port = str(free_port())
        router = Child("router", ["--port", port])
        extra.append(router)
        router.read(STARTUP_S)
        if transport == "zenoh-raw":
            receiver = Child("zenoh-recv", ["--port", port, "--client"])
            receiver.read(STARTUP_S)
            return receiver, Child("zenoh-send", ["--port", port, "--client"])
        manifest = str(write_manifest(transport, workdir / f"edge-{transport}.mfm"))
        depth = ["--queue-depth", str(queue_depth)]
        zenoh = ["--zenoh", f"tcp/127.0.0.1:{port}"]
        receiver = Child("node-recv", ["--manifest", manifest, *depth, *zenoh])
        receiver.read(STARTUP_S)
        return receiver, Child("node-send", ["--manifest", manifest, *depth, *zenoh])
    if transport == "zenoh-peer":
        port = str(free_port())
        receiver = Child("zenoh-recv", ["--port", port])
        receiver.read(STARTUP_S)
        return receiver, Child("zenoh-send", ["--port", port])
    if transport in ("udp", "tcp"):
        manifest = str(write_manifest(transport, workdir / f"edge-{transport}.mfm"))
        depth = ["--queue-depth", str(queue_depth)]
        receiver = Child("node-recv", ["--manifest", manifest, *depth])
        listen = receiver.read(STARTUP_S)["listen"]
        return receiver, Child("node-send", ["--manifest", manifest, "--connect", f"{transport}://{listen}", *depth])
    raise ValueError(f"unknown transport {transport!r}")


def one_run(transport: str, args: argparse.Namespace, workdir: Path) -> dict:
    receiver = sender = None
    extra: list[Child] = []
    try:
        receiver, sender = start_pair(transport, workdir, queue_depth(args), extra)
        ready = sender.read(STARTUP_S)
        if not ready.get("matched", True):
            raise RuntimeError(f"{transport}: the sender never matched the receiver")
        # Probe until the receiver has seen an event: the path is up end to end.
        receiver.ask({"cmd": "arm"})
        sender.send({"cmd": "probe"})
        first = receiver.ask({"cmd": "first", "bound_s": STARTUP_S}, STARTUP_S + 5)
        sender.send({"cmd": "stop"})
        sender.read(10)  # the probe's answer
        if not first["first"]:
            raise RuntimeError(f"{transport}: no probe event reached the receiver within {STARTUP_S:.0f} s")
        phases = {}
        for phase, n, command in (
            ("warmup", args.warmup, {"cmd": "burst", "n": args.warmup, "chunk": args.chunk}),
            ("throughput", args.events, {"cmd": "burst", "n": args.events, "chunk": args.chunk}),
            ("latency", args.latency_events, {"cmd": "paced", "n": args.latency_events, "gap_us": args.gap_us}),
        ):
            receiver.ask({"cmd": "arm"})
            sent = sender.ask(command)
            got = receiver.ask({"cmd": "collect", "n": n, "idle_s": args.idle_s, "bound_s": REPLY_S}, REPLY_S + 5)
            phases[phase] = {**got, "sent": n, "publish_s": sent.get("publish_s")}
        return phases
    finally:
        for child in (sender, receiver, *extra):
            if child is not None:
                child.stop()


def queue_depth(args: argparse.Namespace) -> int:
    """Our link queues hold a whole burst, so the throughput phase measures what the link
    carries rather than what a full queue drops (Zenoh's BLOCK publisher waits instead)."""
    return args.queue_depth or max(1024, args.events + args.warmup)


def rust_run(transport: str, args: argparse.Namespace, workdir: Path) -> dict:
    """The Rust-only figure: both nodes in one process, no Python (examples/edge_bench.rs)."""
    manifest = write_manifest(transport, workdir / f"edge-{transport}.mfm")
    cmd = ["cargo", "run", "--release", "--quiet", "-p", "manyfold-runtime", "--example", "edge_bench", "--", str(manifest), transport,
           str(args.events), str(args.chunk), str(args.latency_events), str(args.gap_us), str(queue_depth(args))]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarize_rust(transport: str, runs: list[dict]) -> dict:
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {
        "transport": f"{transport}-rust", "events_per_s": round(med("events_per_s")), "p50_us": round(med("p50_us"), 1),
        "p99_us": round(med("p99_us"), 1), "runs": len(runs), "payload_bytes": PAYLOAD_BYTES, "events": runs[0]["events"],
        "lost": [r["lost"] for r in runs], "events_per_s_runs": [round(r["events_per_s"]) for r in runs],
        "publish_events_per_s": round(med("publish_events_per_s")), "loaded_p50_us": round(med("loaded_p50_us")),
        "loaded_p99_us": round(med("loaded_p99_us")), "queue_depth": runs[0]["queue_depth"],
        "what": "both nodes in one Rust process (examples/edge_bench.rs): publish_many in Rust, a Rust subscriber",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip


def summarize(transport: str, runs: list[dict], args: argparse.Namespace) -> dict:
    def med(phase: str, key: str) -> float | None:
        values = [r[phase][key] for r in runs if r[phase].get(key) is not None]
        return statistics.median(values) if values else None

    line = {
        "transport": transport,
        "events_per_s": round(med("throughput", "events_per_s") or 0),
        "p50_us": round(med("latency", "p50_us") or 0, 1),
        "p99_us": round(med("latency", "p99_us") or 0, 1),
        "runs": len(runs), "payload_bytes": PAYLOAD_BYTES, "events": args.events, "chunk": args.chunk,
        "lost": [r["throughput"]["sent"] - r["throughput"]["received"] for r in runs],
        "events_per_s_runs": [round(r["throughput"].get("events_per_s") or 0) for r in runs],
        "publish_events_per_s": round(args.events / med("throughput", "publish_s")) if med("throughput", "publish_s") else None,
        "loaded_p50_us": round(med("throughput", "p50_us") or 0, 1), "loaded_p99_us": round(med("throughput", "p99_us") or 0, 1),
        "latency_events": args.latency_events, "gap_us": args.gap_us,
        "latency_lost": [r["latency"]["sent"] - r["latency"]["received"] for r in runs],
        **({} if transport in ("zenoh-peer", "zenoh-raw") else {"queue_depth": queue_depth(args)}),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", action="store_true", help="also run the Zenoh peers (eclipse-zenoh, the bench extra)")
    parser.add_argument(
        "--transports", default=None,
        help="comma-separated: udp, tcp, zenoh, zenoh-raw, zenoh-peer (default udp,tcp; with --peer also zenoh,zenoh-raw,zenoh-peer)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="runs per transport, each a fresh pair of processes (default 5)")
    parser.add_argument("--events", type=int, default=500_000, help="events in the throughput phase (default 500k)")
    parser.add_argument("--chunk", type=int, default=1000, help="events per publish_many call / per timestamp (default 1000)")
    parser.add_argument("--warmup", type=int, default=20_000, help="events in the warm-up burst (default 20k)")
    parser.add_argument("--latency-events", type=int, default=5000, help="events in the latency phase (default 5000)")
    parser.add_argument("--gap-us", type=int, default=200, help="sleep between latency events, µs (default 200)")
    parser.add_argument("--idle-s", type=float, default=1.0, help="a phase ends when nothing arrived for this long (default 1 s)")
    parser.add_argument("--queue-depth", type=int, default=0, help="our link queues' depth (default: the whole burst)")
    parser.add_argument("--no-rust", action="store_true", help="skip the Rust-only figures (need cargo)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--connect", help=argparse.SUPPRESS)
    parser.add_argument("--zenoh", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return ROLES[args.role](args)

    transports = [t.strip() for t in (args.transports or ("udp,tcp,zenoh,zenoh-raw,zenoh-peer" if args.peer else "udp,tcp")).split(",") if t.strip()]
    emit({
        "run": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **machine.describe(),
        "load_avg": [round(x, 2) for x in os.getloadavg()], "zenoh": _version("eclipse-zenoh"),
        "payload_bytes": PAYLOAD_BYTES, "transports": transports, "runs": args.runs,
    })  # fmt: skip
    results: dict[str, list[dict]] = {t: [] for t in transports}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"edge-link-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    rust = [] if args.no_rust else [t for t in transports if t in ("udp", "tcp")]
    rust_results: dict[str, list[dict]] = {t: [] for t in rust}
    for _ in range(args.runs):
        for t in transports:
            results[t].append(one_run(t, args, workdir))
        for t in rust:
            rust_results[t].append(rust_run(t, args, workdir))
    lines = {t: summarize(t, results[t], args) for t in transports}
    if "zenoh" in lines and "zenoh-raw" in lines and lines["zenoh-raw"]["events_per_s"]:
        lines["zenoh"]["vs_raw"] = round(lines["zenoh"]["events_per_s"] / lines["zenoh-raw"]["events_per_s"], 2)
    for t in transports:
        emit({**lines[t], "load_avg": [round(x, 2) for x in os.getloadavg()]})
    for t in rust:
        emit({**summarize_rust(t, rust_results[t]), "load_avg": [round(x, 2) for x in os.getloadavg()]})
    return 0


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
