"""The link protocol over a serial line: wire bytes per event, events per second and query
round-trip time, over an emulated board's UART (QEMU) and over the host simulation, each beside
the theoretical limit of a 115200-baud UART.

One JSON line per result:

1. ``wire_bytes_per_event``: a 4-byte reading (an int that needs 4 bytes, ``0x12345678``) and,
   since floats always go as 64-bit CBOR (docs/wire.md 2), a float reading, each computed from
   the real encoded event message and its frame (COBS + CRC-32C + delimiter); then the mean
   frame of the events the benchmark partition actually sends. The limit: a UART at 115200 baud,
   8N1 (10 bits a byte), carries 11520 bytes/s, so at most 11520 / frame_bytes events/s.
2. ``events_per_s``: the benchmark partition (one synthetic source every 1 ms of device time,
   sent straight to the host) run in **lockstep**: the host steps the board 1 s of device time
   at a time (1000 events a step) and counts the events it receives per second of wall time.
3. ``query_rtt_ms``: the median (and 90th percentile) over N ``latest`` queries, in lockstep
   (no events in flight), from sending the query to having the decoded reply; the limit is the
   time the query and reply frames take on the line at 115200 baud.

Targets: ``qemu`` is ``qemu-system-arm`` running the firmware (``--board``, default
``lm3s6965evb``) with UART0 on a local TCP socket (pyserial ``socket://``); QEMU does not pace
its UART models at the baud rate, so the emulated link can beat the 115200 limit and measures
the firmware and the host client instead. ``sim`` is ``manyfold.sim`` (the same device code in
the extension, in-process). Needs QEMU and the cross tools for ``qemu`` (built with
boards/build.sh); ``--targets sim`` runs the simulation alone. Run from the repository root
after ``pip install -e .``:

    python benchmarks/serial_link.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import manyfold.sim as sim
from manyfold.devices import image as im
from manyfold.devices import messages as m
from manyfold.framing import FrameDecoder, encode_frame

BAUD = 115_200
LINE_BYTES_PER_S = BAUD / 10  # 8N1: a start bit, 8 data bits, a stop bit
MAX_MESSAGE = 256
SOURCE = "read.raw.bench.adc.counts.meta.v1"
PERIOD_US = 1_000
STEP_US = 1_000_000


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


def frame_len(message: m.Message) -> tuple[int, int]:
    body = m.encode(message)
    return len(body), len(encode_frame(body, MAX_MESSAGE))


def limit_events_per_s(frame_bytes: float) -> float:
    return LINE_BYTES_PER_S / frame_bytes


def wire_bytes() -> None:
    """Line 1: one event of a 4-byte reading and of a float reading, encoded for real."""
    # A source event a minute into the run: seq and link id in the thousands, time needing 4
    # bytes, det_seeded_entropy (a seeded source), no lineage.
    fields = dict(route=0, seq=60_000, time_us=60_000_000, epoch=0, taints=1 << m.TAINT_NAMES.index("det_seeded_entropy"), lineage=m.Lineage())
    for kind, value in (("int32", 0x12345678), ("float64", 2048.5)):
        msg_len, frame = frame_len(m.Message(60_001, m.Event(**fields, value=value)))
        emit({
            "metric": "wire_bytes_per_event", "reading": kind, "reading_bytes": 4 if kind == "int32" else 8,
            "message_bytes": msg_len, "frame_bytes": frame, "line_bits": frame * 10,
            "limit_events_per_s_115200": round(limit_events_per_s(frame), 1),
        })  # fmt: skip


def event_frames_of(image: bytes, board: str, steps: int) -> list[int]:
    """The frame sizes of the events the device sends for ``steps`` lockstep steps (the
    simulation's output is byte-identical to the board's: tests/boards checks it)."""
    c = sim.open(image, board=board, session=5, record=True)
    c.connect(lockstep=True, reset=True)
    c.transcript.clear()
    for i in range(1, steps + 1):
        c.step(i * STEP_US)
    sizes = []
    for frame in c.transcript:
        if m.decode(FrameDecoder(MAX_MESSAGE).feed(frame)[0]).kind == m.Kind.EVENT:
            sizes.append(len(frame))
    return sizes


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


def report(target: str, board: str, result: dict, event_frame: float, rtt_limit_ms: float, queries: int, conditions: str) -> None:
    emit({
        "metric": "events_per_s", "target": target, "board": board, "mode": "lockstep", "step_us": STEP_US,
        "events": result["events"], "events_per_s": round(result["events_per_s"]),
        "wire_bytes_per_s": round(result["events_per_s"] * event_frame),
        "limit_events_per_s_115200": round(limit_events_per_s(event_frame), 1),
        "x_limit": round(result["events_per_s"] / limit_events_per_s(event_frame), 2), "conditions": conditions,
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
    parser.add_argument("--targets", default="qemu,sim", help="comma-separated: qemu, sim (default both)")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]

    image = bench_spec().encode()
    qemu_version = ""
    if "qemu" in targets:
        try:
            qemu_version = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            qemu_version = "qemu-system-arm not found"
    emit({
        "run": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "machine": platform.machine(), "cpu": _cpu(), "cpus": os.cpu_count(),
        "qemu": qemu_version or None, "baud_limit": BAUD, "line_bytes_per_s": LINE_BYTES_PER_S,
    })  # fmt: skip

    wire_bytes()
    sizes = event_frames_of(image, args.board, 2)
    event_frame = statistics.fmean(sizes)
    emit({
        "metric": "wire_bytes_per_event", "reading": "bench partition events (float64 source, as sent)",
        "frame_bytes_mean": round(event_frame, 2), "frame_bytes_min": min(sizes), "frame_bytes_max": max(sizes),
        "limit_events_per_s_115200": round(limit_events_per_s(event_frame), 1),
    })  # fmt: skip
    # The query and its reply as they go on the line (a latest reply carries one event).
    _, query_frame = frame_len(m.Message(70_000, m.Query(m.QueryKind.LATEST, 0)))
    probe = sim.open(image, board=args.board, session=6, record=True)
    probe.connect(lockstep=True, reset=True)
    probe.step(STEP_US)
    probe.transcript.clear()
    probe.latest(0)
    reply_frame = len(probe.transcript[-1])
    rtt_limit_ms = (query_frame + reply_frame) / LINE_BYTES_PER_S * 1e3

    if "qemu" in targets:
        from manyfold.devices import qemu

        elf = qemu.build_firmware(args.board)
        with qemu.start_board(args.board, elf, image) as running:
            client = running.client(session=7)
            result = measure(client, args.steps, args.queries)
        conditions = f"QEMU {args.board}, UART0 on a local TCP socket (nodelay), pyserial socket://, LinkClient in this process"
        report("qemu", args.board, result, event_frame, rtt_limit_ms, args.queries, conditions)
    if "sim" in targets:
        client = sim.open(image, board=args.board, session=7)
        result = measure(client, args.steps, args.queries)
        report("sim", args.board, result, event_frame, rtt_limit_ms, args.queries, "manyfold.sim in-process (SimPort), LinkClient in this process")
    return 0


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
