"""The link protocol over a serial line: wire bytes per event, events per second and query
round-trip time, over an emulated board's UART (QEMU) and over the host simulation, each beside
the theoretical limit of a 115200-baud UART.

One JSON line per result; every byte count is of real frames a device sent (the simulation's
output is byte-identical to a board's: tests/boards checks it):

1. ``wire_bytes_per_event`` with ``frame``: ``"single"``: readings whose value needs 2, 4 and 8
   bytes (float values exact in 16, 32 and 64 bits), each the only event of its frame, a minute
   into a lockstep run, after the host read the route table (link v1.1 short form). Beside each,
   the peer: the same event in link v1 (encoded by the independent v1 codec,
   ``runtime_nostd/vectors/oracle.py``), and MAVLink 2's published frame for a 4-byte payload
   (12 bytes of header and CRC-16 plus the payload: 16 bytes; no route, time or taints).
2. ``wire_bytes_per_event`` with ``frame``: ``"batched"``: the benchmark partition (a noisy
   source every 1 ms, float64 values, sent to the host) stepped 1 s at a time: many events to a
   frame. The limit: a UART at 115200 baud, 8N1, carries 11520 bytes/s.
3. ``latest_exchange_bytes``: a ``latest`` query of a reading route and its reply, as framed on
   the line (the host's bytes counted as written).
4. ``events_per_s``: the benchmark partition in lockstep, stepped 1 s of device time at a time
   (1000 events a step), events received per second of wall time.
5. ``query_rtt_ms``: median (and 90th percentile) of N ``latest`` queries in lockstep.

Targets: ``udp`` is the UDP build of ``mps2-an386`` (LAN9118 + smoltcp, datagram frames) in
QEMU with user networking forwarding a loopback UDP port to it (``udp://``): the same lockstep
events/s and ``latest`` round trip over UDP; its wire bytes per event are datagram bytes
(message + CRC-32C: no COBS, no delimiter), reported with it. ``qemu`` is ``qemu-system-arm``
running the firmware (``--board``, default
``lm3s6965evb``) with UART0 on a local TCP socket (pyserial ``socket://``); QEMU does not pace
its UART models at the baud rate, so the emulated link can beat the 115200 limit and measures
the firmware and the host client instead. ``sim`` is ``manyfold.sim`` (the same device code in
the extension, in-process). Needs QEMU and the cross tools for ``qemu``; ``--targets sim`` runs
the simulation alone. Run from the repository root after ``pip install -e .``:

    python benchmarks/serial_link.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import machine  # benchmarks/machine.py (the script's folder is on sys.path)

import manyfold.sim as sim
from manyfold.devices import image as im
from manyfold.devices.link import LinkClient
from manyfold.framing import FrameDecoder, encode_frame

BAUD = 115_200
LINE_BYTES_PER_S = BAUD / 10  # 8N1: a start bit, 8 data bits, a stop bit
MAX_MESSAGE = 256
SOURCE = "read.raw.bench.adc.counts.meta.v1"
PERIOD_US = 1_000
STEP_US = 1_000_000
MAVLINK2_4_BYTE_FRAME = 12 + 4
"""MAVLink 2: 10 bytes of header (STX, len, flags, seq, system, component, 3-byte id) + payload
+ CRC-16 (mavlink.io, "Packet Serialization"): 16 bytes for a 4-byte payload."""

READINGS = {2: 24.5, 4: 2048.5, 8: 0.1}
"""Values whose shortest exact float is 16, 32 and 64 bits, by payload bytes."""


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def bench_spec() -> im.PartitionSpec:
    """One ADC-like source every 1 ms of device time, with noise, sent straight to the host."""
    return im.PartitionSpec(
        name="serial-bench",
        routes=[im.RouteSpec(SOURCE)],
        sources=[im.Source(SOURCE, PERIOD_US, im.Waveform.TRIANGLE, center=2048.0, amplitude=1000.0, cycle=64, noise=4.0, seed=7)],
        to_host=[SOURCE],
    )


def readings_spec() -> im.PartitionSpec:
    """Three constant readings, each once a minute (10 s apart), sent to the host."""
    names = [f"read.raw.bench.reading.b{n}.meta.v1" for n in READINGS]
    sources = [
        im.Source(name, 60_000_000, center=value, phase_us=60_000_000 + i * 10_000_000)
        for i, (name, value) in enumerate(zip(names, READINGS.values()))
    ]
    return im.PartitionSpec(name="readings", routes=[im.RouteSpec(n) for n in names], sources=sources, to_host=names)


class CountingPort:
    """A port that counts the bytes the host writes (to measure the host's frames)."""

    def __init__(self, port) -> None:
        self.port = port
        self.written = 0

    def write(self, data: bytes):
        self.written += len(data)
        return self.port.write(data)

    def __getattr__(self, name):
        return getattr(self.port, name)


def _unframe(frame: bytes) -> bytes:
    return FrameDecoder(MAX_MESSAGE).feed(frame)[0]


def _v1_frame_len(event) -> int:
    """The frame of the same event in link v1, by the independent v1 codec (the peer)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime_nostd" / "vectors"))
    import oracle

    lineage = oracle.Lineage(event.lineage.route, event.lineage.first_seq, event.lineage.count)
    v1 = oracle.Event(event.route, event.seq, event.time_us, event.epoch, event.taints, lineage, event.value)
    # A minute into a run the device's link ids are in the thousands.
    return len(encode_frame(oracle.encode(oracle.Message(60_001, v1)), MAX_MESSAGE))


def single_readings(board: str) -> dict:
    """Line 1: the frames of single readings, and line 3: a latest exchange."""
    port = CountingPort(sim.SimPort(readings_spec().encode(), board))
    c = LinkClient(port, clock=port.port.clock, session=5, record=True)
    c.wait_for_boot(timeout_s=1.0)
    c.connect(lockstep=True, reset=True)
    c.step(59_000_000)  # a step acknowledges the times the host has seen: the next step's readings go short
    c.clear_transcript()
    out = {}
    for i, (size, value) in enumerate(READINGS.items()):
        events = c.step(60_000_000 + i * 10_000_000)
        frames = [f for f in c.transcript if _unframe(f)[0] < 0x80]
        assert len(events) == 1 and len(frames) == 1 and events[0].value == value, (events, frames)
        out[size] = (len(frames[0]), len(_unframe(frames[0])), _v1_frame_len(events[0]))
        c.clear_transcript()
    before = port.written
    latest = c.latest(1)
    query_frame = port.written - before
    reply_frame = len(c.transcript[-1])
    assert latest is not None and latest.value == READINGS[4]
    return {"readings": out, "latest": (query_frame, reply_frame)}


def batched_frames(board: str, steps: int) -> tuple[list[int], int]:
    """The bench partition's event frames over ``steps`` lockstep steps: sizes and events."""
    c = sim.open(bench_spec().encode(), board=board, session=5, record=True)
    c.connect(lockstep=True, reset=True)
    c.step(STEP_US)
    c.clear_transcript()
    events = 0
    for i in range(2, steps + 2):
        events += len(c.step(i * STEP_US))
    sizes = [len(f) for f in c.transcript if _unframe(f)[0] < 0x80]
    return sizes, events


def batched_messages(board: str, steps: int) -> list[bytes]:
    """The bench partition's event messages over ``steps`` lockstep steps (a datagram is each
    with its 4-byte CRC)."""
    c = sim.open(bench_spec().encode(), board=board, session=5, record=True)
    c.connect(lockstep=True, reset=True)
    c.step(STEP_US)
    c.clear_transcript()
    for i in range(2, steps + 2):
        c.step(i * STEP_US)
    return [m for m in (_unframe(f) for f in c.transcript) if m[0] < 0x80]


def limit_events_per_s(frame_bytes: float) -> float:
    return LINE_BYTES_PER_S / frame_bytes


def measure(client, steps: int, queries: int) -> dict:
    """Lockstep events/s over ``steps`` steps after a warm-up step, then the query RTTs."""
    client.connect(lockstep=True, reset=True)
    client.step(STEP_US)  # warm-up
    events = 0
    start = time.perf_counter()
    for i in range(2, steps + 2):
        events += len(client.step(i * STEP_US))
    elapsed = time.perf_counter() - start
    rtts = []
    for _ in range(queries):
        t = time.perf_counter()
        client.latest(0)
        rtts.append(time.perf_counter() - t)
    rtts.sort()
    return {
        "events": events, "seconds": elapsed, "events_per_s": events / elapsed,
        "rtt_median_ms": statistics.median(rtts) * 1e3, "rtt_p90_ms": rtts[int(0.9 * (len(rtts) - 1))] * 1e3,
    }  # fmt: skip


def report(target: str, board: str, result: dict, event_bytes: float, rtt_limit_ms: float, queries: int, conditions: str) -> None:
    emit({
        "metric": "events_per_s", "target": target, "board": board, "mode": "lockstep", "step_us": STEP_US,
        "events": result["events"], "events_per_s": round(result["events_per_s"]),
        "wire_bytes_per_s": round(result["events_per_s"] * event_bytes),
        "limit_events_per_s_115200": round(limit_events_per_s(event_bytes), 1),
        "x_limit": round(result["events_per_s"] / limit_events_per_s(event_bytes), 2), "conditions": conditions,
    })  # fmt: skip
    emit({
        "metric": "query_rtt_ms", "target": target, "board": board, "mode": "lockstep", "query": "latest", "n": queries,
        "median_ms": round(result["rtt_median_ms"], 3), "p90_ms": round(result["rtt_p90_ms"], 3),
        "limit_ms_115200": round(rtt_limit_ms, 3), "conditions": conditions,
    })  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="lm3s6965evb", help="the emulated board (default lm3s6965evb)")
    parser.add_argument("--steps", type=int, default=10, help="lockstep steps of 1 s (1000 events each) to time (default 10)")
    parser.add_argument("--queries", type=int, default=200, help="latest queries to time (default 200)")
    parser.add_argument("--targets", default="qemu,udp,sim", help="comma-separated: qemu, udp, sim (default all)")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]

    qemu_version = ""
    if "qemu" in targets:
        try:
            qemu_version = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            qemu_version = "qemu-system-arm not found"
    emit({
        "run": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **machine.describe(),
        "qemu": qemu_version or None, "baud_limit": BAUD, "line_bytes_per_s": LINE_BYTES_PER_S, "protocol": "link v1.1",
    })  # fmt: skip

    singles = single_readings(args.board)
    for size, (frame, message, v1_frame) in singles["readings"].items():
        line = {
            "metric": "wire_bytes_per_event", "frame": "single", "reading_bytes": size, "value": READINGS[size],
            "message_bytes": message, "frame_bytes": frame, "line_bits": frame * 10,
            "limit_events_per_s_115200": round(limit_events_per_s(frame), 1), "peer_link_v1_frame_bytes": v1_frame,
        }  # fmt: skip
        if size == 4:
            line["peer_mavlink2_frame_bytes"] = MAVLINK2_4_BYTE_FRAME
        emit(line)
    sizes, events = batched_frames(args.board, 2)
    event_bytes = sum(sizes) / events
    datagram_sizes = [len(m) + 4 for m in batched_messages(args.board, 2)]
    emit({
        "metric": "wire_bytes_per_event", "frame": "batched", "reading": "bench partition events (float64 source with noise)",
        "events": events, "frames": len(sizes), "bytes_per_event": round(event_bytes, 2),
        "frame_bytes_mean": round(statistics.fmean(sizes), 1), "limit_events_per_s_115200": round(limit_events_per_s(event_bytes), 1),
    })  # fmt: skip
    emit({
        "metric": "wire_bytes_per_event", "frame": "batched", "link": "udp", "reading": "bench partition events (float64 source with noise)",
        "events": events, "datagrams": len(datagram_sizes), "bytes_per_event": round(sum(datagram_sizes) / events, 2),
        "datagram_bytes_mean": round(statistics.fmean(datagram_sizes), 1), "note": "UDP payload; IPv4 + UDP headers add 28 B per datagram",
    })  # fmt: skip
    query_frame, reply_frame = singles["latest"]
    rtt_limit_ms = (query_frame + reply_frame) / LINE_BYTES_PER_S * 1e3
    emit({
        "metric": "latest_exchange_bytes", "query_frame_bytes": query_frame, "reply_frame_bytes": reply_frame,
        "frame_bytes": query_frame + reply_frame, "line_ms_115200": round(rtt_limit_ms, 3),
    })  # fmt: skip

    image = bench_spec().encode()
    if "qemu" in targets:
        from manyfold.devices import qemu

        elf = qemu.build_firmware(args.board)
        with qemu.start_board(args.board, elf, image) as running:
            client = running.client(session=7)
            result = measure(client, args.steps, args.queries)
        conditions = f"QEMU {args.board}, UART0 on a local TCP socket (nodelay), pyserial socket://, LinkClient in this process"
        report("qemu", args.board, result, event_bytes, rtt_limit_ms, args.queries, conditions)
    if "udp" in targets:
        from manyfold.devices import qemu
        from manyfold.devices.boards import board as find_board

        udp_board = args.board if find_board(args.board).ethernet is not None else "mps2-an386"
        elf = qemu.build_firmware(udp_board, link="udp")
        with qemu.start_board(udp_board, elf, image, link="udp") as running:
            client = running.client(session=7)
            result = measure(client, args.steps, args.queries)
        conditions = (
            f"QEMU {udp_board} UDP build (LAN9118, smoltcp), user networking forwarding a loopback UDP port, "
            "udp:// (datagram frames), LinkClient in this process"
        )
        udp_event_bytes = sum(datagram_sizes) / events
        report("udp", udp_board, result, udp_event_bytes, rtt_limit_ms, args.queries, conditions)
    if "sim" in targets:
        client = sim.open(image, board=args.board, session=7)
        result = measure(client, args.steps, args.queries)
        report("sim", args.board, result, event_bytes, rtt_limit_ms, args.queries, "manyfold.sim in-process (SimPort), LinkClient in this process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
