"""Runs one operator on the host graph and on a simulated board, and puts both outputs in one
comparable form.

The operator is declared once, by a builder on a :class:`~manyfold.graph.Graph`. The host run
builds it in a plain virtual-clock graph. The device run builds it inside an ``embedded-lite``
partition, compiles the manifest and lowers the partition to an image
(:func:`manyfold.devices.lower.partition_spec`, what ``manyfold flash`` does), then runs the image
in ``manyfold.sim`` in lockstep. Both runs see the same inputs: at each input's clock time the
host graph advances to it and the board steps to it, then the value is published (host) or
sent (board) with its event time. Event times may lag the clock (late values); the clock never
goes back.

Only the public surfaces are used: ``Graph`` (route, producer, publish, advance_to, subscribe)
and the board client (``connect``, ``send_event``, ``step``; events with ``route``, ``seq``,
``time_us``, ``value``, ``taints`` and ``lineage``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import manyfold.sim as sim
from manyfold import manifest
from manyfold.devices.lower import partition_spec
from manyfold.graph import FLOAT, Graph, LinkCapabilities, Route
from manyfold.graph.taints import taints_from_bits

INPUT = "read.logical.host.parity.input.meta.v1"
"""The operator's input: published by the host (on the board: sent by the host)."""
PRODUCER = "host"

OutFactory = Callable[[str], Route]
Builder = Callable[[Graph, Route, OutFactory], list]
"""Declares the operator on ``g`` reading ``source``; output routes come from the factory (by
stream name). Returns the output routes."""


def output_name(stream: str) -> str:
    return f"read.logical.dev.parity.{stream}.meta.v1"


@dataclass(frozen=True)
class Input:
    """One input: published at clock time ``clock_us`` with event time ``time_us``."""

    clock_us: int
    time_us: int
    value: float


@dataclass(frozen=True)
class Out:
    """One output event, the same shape from either run. ``lineage`` is the input route and
    the seqs of the input events it was derived from; ``value`` is ``"nan"`` for a NaN."""

    route: str
    seq: int
    time_us: int
    value: object
    taints: frozenset
    lineage: tuple

    def compact(self) -> "Out":
        """The same event with lineage as (route, first seq, count): what a device states
        exactly whatever the input order."""
        route, seqs = self.lineage
        return Out(self.route, self.seq, self.time_us, self.value, self.taints, (route, seqs[:1], len(seqs)))


def _value(v) -> object:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def _taint_names(taints) -> frozenset:
    if isinstance(taints, int):
        return frozenset(t.value for t in taints_from_bits(taints))
    return frozenset(getattr(t, "value", t) for t in taints)


def run_host(build: Builder, inputs: list[Input], end_us: int) -> list[Out]:
    """The outputs of the operator in the host graph, in the order they were published."""
    g = Graph()
    source = g.route(Route.parse(INPUT), FLOAT)
    outputs = build(g, source, lambda stream: g.route(Route.parse(output_name(stream)), FLOAT))
    seen: list = []
    for r in outputs:
        g.subscribe(r, seen.append)
    producer = g.producer(PRODUCER)
    for i in inputs:
        g.advance_to(i.clock_us)
        producer.publish(source, i.value, event_time_us=i.time_us)
    g.advance_to(end_us)
    out = []
    for e in seen:
        parents = tuple(e.parents)
        assert {str(p.route) for p in parents} <= {INPUT}, f"{e.route} names a parent outside the input route"
        out.append(Out(str(e.route), e.seq, e.event_time_us, _value(e.value), _taint_names(e.taint_names), (INPUT, tuple(p.seq for p in parents))))
    return out


def device_image(build: Builder) -> tuple[bytes, list[str]]:
    """The operator lowered to a partition image, and the image's route names by index."""
    g = Graph()
    board = g.partition("board", profile="embedded-lite")
    g.link("uart", board, "main", transport="serial", capabilities=LinkCapabilities())
    source = g.route(Route.parse(INPUT), FLOAT)  # a host route the board reads
    with board:
        outputs = build(g, source, lambda stream: g.route(Route.parse(output_name(stream)), FLOAT))
    for r in outputs:
        up = g.route(Route.parse(f"read.logical.uplink.parity.{r.stream}.meta.v1"), FLOAT)
        g.connect(r, up, link=LinkCapabilities(), name=f"uplink_{r.stream}")
    spec = partition_spec(manifest.compile(g), "board")
    return spec.encode(), [r.name for r in spec.routes]


def run_device(image: tuple[bytes, list[str]], inputs: list[Input], end_us: int) -> list[Out]:
    """The outputs of the lowered operator on a simulated board, in the order it sent them."""
    data, names = image
    board = sim.open(data, board="sim")
    board.connect(lockstep=True, reset=True)
    events: list = []
    for i in inputs:
        events += board.step(i.clock_us)
        board.send_event(INPUT, i.value, time_us=i.time_us)
    events += board.step(end_us)
    out = []
    for e in events:
        lineage = (names[e.lineage.route], tuple(range(e.lineage.first_seq, e.lineage.first_seq + e.lineage.count)))
        out.append(Out(names[e.route], e.seq, e.time_us, _value(e.value), _taint_names(e.taints), lineage))
    return out


def run_both(build: Builder, inputs: list[Input], end_us: int | None = None) -> tuple[list[Out], list[Out]]:
    """(host outputs, device outputs) for the same inputs; by default the runs end 10 s after
    the last input, when everything due has fired."""
    end = end_us if end_us is not None else max((i.clock_us for i in inputs), default=0) + 10_000_000
    return run_host(build, inputs, end), run_device(device_image(build), inputs, end)


def at(*timed: tuple[int, float]) -> list[Input]:
    """Inputs from (event time, value) pairs, each published when the clock reaches the
    largest event time so far (a value behind it is late)."""
    clock, out = 0, []
    for t, v in timed:
        clock = max(clock, t)
        out.append(Input(clock, t, v))
    return out


def random_inputs(rng: random.Random, n: int, *, nan: bool = True) -> list[Input]:
    """``n`` inputs: bursts (several at one time), gaps of all sizes, some values late by up to
    2 ms, repeated values and (if ``nan``) an occasional NaN."""
    clock, out, last = 0, [], 0.0
    for _ in range(n):
        clock += rng.choice([0, 0, 1, 10, 40, 100, 250, 600, 1_000, 2_500])
        time_us = clock - rng.choice([1, 50, 700, 2_000]) if rng.random() < 0.12 else clock
        roll = rng.random()
        if nan and roll < 0.04:
            value = math.nan
        elif roll < 0.2:
            value = last
        else:
            value = round(rng.uniform(-40.0, 40.0), 2)
        last = value if not math.isnan(value) else last
        out.append(Input(clock, time_us, value))
    return out
