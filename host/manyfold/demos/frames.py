"""The frame layer at work: sensor messages across a lossy in-memory serial link.

A simulated sensor encodes readings as CBOR messages and frames them (COBS + CRC-32C). The bytes
cross a link that drops and corrupts bytes at seeded rates; the receiver's decoder returns what
arrived intact and names the reason for every frame it refused. Nothing is lost silently: each
message sent is accounted for as arrived, rejected with a reason, or swallowed by damage that
destroyed its delimiter (it then shows up inside a neighbour's rejected frame).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cbor2

from manyfold.framing import FrameDecoder, FrameError, encode_frame
from manyfold.links.faults import FaultConfig, FaultCounts, FaultInjector

SENSORS = ("zone1.temperature", "zone1.humidity", "zone2.temperature", "zone2.humidity")
READ_LEN = 64
"""Bytes per read at the receiver, as a UART driver would hand them over."""
REJECTIONS_SHOWN = 12


@dataclass
class FrameDemoResult:
    """Everything the demo observed, for the report and for tests."""

    sent: list[dict]
    arrived: list[dict]
    rejections: list[FrameError]
    faults: FaultCounts
    wire_bytes: int
    corrupted_but_accepted: int = 0
    rejection_counts: Counter = field(default_factory=Counter)

    @property
    def missing_seqs(self) -> list[int]:
        got = {m["seq"] for m in self.arrived}
        return [m["seq"] for m in self.sent if m["seq"] not in got]


def reading(seq: int, seed: int) -> dict:
    """A deterministic sensor reading: seq, sensor name, time in ms, value."""
    sensor = SENSORS[seq % len(SENSORS)]
    base = 21.0 if sensor.endswith("temperature") else 48.0
    wobble = ((seq * 7919 + seed) % 200) / 40.0
    return {"seq": seq, "sensor": sensor, "t_ms": 1000 + 250 * seq, "value": round(base + wobble, 2)}


def run_frame_demo(messages: int = 200, seed: int = 7, drop_rate: float = 0.002, flip_rate: float = 0.002) -> FrameDemoResult:
    """Send ``messages`` readings through a faulty link and decode them. Deterministic per seed."""
    injector = FaultInjector(FaultConfig(drop_rate=drop_rate, flip_rate=flip_rate), seed=seed)
    decoder = FrameDecoder()
    sent = [reading(seq, seed) for seq in range(messages)]
    wire = b"".join(encode_frame(cbor2.dumps(m)) for m in sent)
    damaged = injector.apply(wire)

    arrived: list[dict] = []
    rejections: list[FrameError] = []
    for start in range(0, len(damaged), READ_LEN):
        for outcome in decoder.feed_outcomes(damaged[start : start + READ_LEN]):
            if isinstance(outcome, FrameError):
                rejections.append(outcome)
            else:
                arrived.append(cbor2.loads(outcome))

    by_seq = {m["seq"]: m for m in sent}
    corrupted = sum(1 for m in arrived if by_seq.get(m.get("seq")) != m)
    return FrameDemoResult(
        sent=sent,
        arrived=arrived,
        rejections=rejections,
        faults=injector.counts,
        wire_bytes=len(wire),
        corrupted_but_accepted=corrupted,
        rejection_counts=Counter(r.kind.value for r in rejections),
    )


def render_frame_demo(result: FrameDemoResult, console) -> None:
    """Print the demo's report with rich."""
    from rich.table import Table

    console.rule("[bold]Frame layer: sensor readings over a lossy link")
    faults = result.faults
    console.print(
        f"Sent [bold]{len(result.sent)}[/] readings as {result.wire_bytes} wire bytes; the link dropped "
        f"[yellow]{faults.dropped}[/] bytes and flipped a bit in [yellow]{faults.flipped}[/]."
    )

    arrived = Table(title="First readings that arrived", show_lines=False)
    for column in ("seq", "sensor", "t_ms", "value"):
        arrived.add_column(column, justify="right" if column != "sensor" else "left")
    for m in result.arrived[:8]:
        arrived.add_row(str(m["seq"]), m["sensor"], str(m["t_ms"]), f"{m['value']:.2f}")
    console.print(arrived)

    rejected = Table(title="Frames the decoder refused, and why")
    rejected.add_column("#", justify="right")
    rejected.add_column("kind")
    rejected.add_column("reason")
    for i, error in enumerate(result.rejections[:REJECTIONS_SHOWN], 1):
        rejected.add_row(str(i), error.kind.value, str(error))
    hidden = len(result.rejections) - REJECTIONS_SHOWN
    if hidden > 0:
        rejected.add_row("", "", f"... and {hidden} more (counted below)")
    console.print(rejected)

    summary = Table(title="Accounting", show_header=False)
    summary.add_column("what")
    summary.add_column("count", justify="right")
    summary.add_row("readings sent", str(len(result.sent)))
    summary.add_row("arrived intact", f"[green]{len(result.arrived)}[/]")
    for kind, count in sorted(result.rejection_counts.items()):
        summary.add_row(f"frames rejected: {kind}", f"[red]{count}[/]")
    summary.add_row("readings missing (lost inside rejected frames)", str(len(result.missing_seqs)))
    summary.add_row("corrupted readings accepted", f"[bold]{result.corrupted_but_accepted}[/]")
    console.print(summary)
