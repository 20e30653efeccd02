"""Host/device parity: every operator kind a device runs gives the same outputs (values, event
times, order), taints and lineage in the host graph and on a simulated board running the
lowered partition, for edge cases and for seeded random input sequences."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Callable

import pytest
from paritykit import INPUT, Builder, Input, Out, at, output_name, random_inputs, run_both

from manyfold.graph import Aggregate, Route

# The reference model of every operator lives with the graph tests; it is independent of the
# runtime, so it can catch what host and board get wrong alike (they run the same kernels).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graph"))
import refmodel as ref  # noqa: E402

SEEDS = range(25)
AGGREGATES = list(Aggregate)


# ---------------------------------------------------------------------- operators, by kind


def threshold(**limit):
    return lambda g, source, out: [g.threshold(source, output=out("out"), **limit).output]


def deadband(band: float):
    return lambda g, source, out: [g.deadband(source, band=band, output=out("out")).output]


def scale(factor: float, offset: float):
    return lambda g, source, out: [g.scale(source, scale=factor, offset=offset, output=out("out")).output]


def count_window(size: int, step: int, aggregate: Aggregate):
    return lambda g, source, out: [
        g.count_window(source, size=size, step=step, aggregate=aggregate, records=False, output=out("out")).output
    ]


def time_window(width_us: int, slide_us: int, aggregate: Aggregate):
    return lambda g, source, out: [
        g.time_window(source, width_us=width_us, slide_us=slide_us, aggregate=aggregate, records=False, output=out("out")).output
    ]


def rate_limit(max_events: int, interval_us: int):
    return lambda g, source, out: [g.rate_limit(source, max_events=max_events, interval_us=interval_us, output=out("out")).output]


def latest(period_us: int):
    return lambda g, source, out: [g.sample(source, period_us=period_us, output=out("out")).output]


def write_binding(apply_us: int):
    def build(g, source, out):
        reported, effective = out("reported"), out("effective")
        g.actuator(source, reported=reported, effective=effective, apply_us=apply_us)
        return [reported, effective]

    return build


Model = Callable[[list[ref.In], int], list[ref.Out]]
"""The reference model of an operator (tests/graph/refmodel.py): its outputs for the inputs, a
run ending at the given clock time."""


def random_operator(kind: str, rng: random.Random) -> tuple[Builder, Model]:
    """An operator of ``kind`` with random parameters within a board's capacities (windows of
    at most 4 values or 3 panes), and its reference model."""
    if kind == "threshold":
        low = round(rng.uniform(-30, 10), 1)
        mode = rng.choice(["above", "below", "inside", "outside"])
        high = low + rng.choice([0.0, 5.0, 30.0]) if mode in ("inside", "outside") else low
        limit = low if mode in ("above", "below") else (low, high)
        return threshold(**{mode: limit}), lambda inputs, end: ref.threshold(inputs, mode, low, high)
    if kind == "deadband":
        band = rng.choice([0.0, 0.5, 3.0, 25.0])
        return deadband(band), lambda inputs, end: ref.deadband(inputs, band)
    if kind == "scale":
        factor, offset = rng.choice([1.0, -0.5, 0.01, 3.0]), rng.choice([0.0, -273.15, 12.5])
        return scale(factor, offset), lambda inputs, end: ref.scale(inputs, factor, offset)
    if kind == "count_window":
        size = rng.randint(1, 4)
        step, aggregate = rng.randint(1, size), rng.choice(AGGREGATES)
        return count_window(size, step, aggregate), lambda inputs, end: ref.count_window(inputs, size, step, aggregate.value)
    if kind == "time_window":
        slide = rng.choice([100, 250, 1_000])
        width, aggregate = slide * rng.randint(1, 3), rng.choice(AGGREGATES)
        return time_window(width, slide, aggregate), lambda inputs, end: ref.time_window(inputs, width, slide, 0, aggregate.value)
    if kind == "rate_limit":
        max_events, interval_us = rng.randint(1, 3), rng.choice([100, 1_000, 5_000])
        return rate_limit(max_events, interval_us), lambda inputs, end: ref.rate_limit(inputs, max_events, interval_us)[0]
    if kind == "latest":
        period_us = rng.choice([100, 1_000, 2_500])
        return latest(period_us), lambda inputs, end: [o for _, o in ref.sample(inputs, period_us, end)]
    apply_us = rng.choice([0, 150, 1_000, 4_000])
    return write_binding(apply_us), lambda inputs, end: [o for _, o in ref.actuator(inputs, apply_us, end)]


KINDS = ["threshold", "deadband", "scale", "count_window", "time_window", "rate_limit", "latest", "write_binding"]


def assert_same(host, device, *, compact_lineage: bool = False):
    if compact_lineage:
        host, device = [o.compact() for o in host], [o.compact() for o in device]
    assert device == host


# ---------------------------------------------------------------------- seeded random sequences


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_random_sequences_agree(kind, seed):
    """For random parameters and 80 random inputs (bursts, gaps, late values, repeats, NaN),
    host and board emit the same events, taints and lineage in the same order."""
    rng = random.Random(f"{kind}-{seed}")
    build, _ = random_operator(kind, rng)
    inputs = random_inputs(rng, 80)
    host, device = run_both(build, inputs)
    # A window over late or reordered values: a device names its parents as a run of seqs
    # from the first one (docs/wire.md 3.3), exact only for values in time order.
    reordered = any(b.time_us < a.time_us for a, b in zip(inputs, inputs[1:]))
    assert_same(host, device, compact_lineage=kind == "time_window" and reordered)
    if kind not in ("threshold", "rate_limit"):
        assert host or not inputs, "the sequence exercised the operator"


# ---------------------------------------------------------------------- edge cases


def test_threshold_boundaries_and_nan():
    """Limits are strict (above/below) or inclusive (inside); NaN in, NaN out: every mode passes
    NaN (no limit can place it), on the host and on the board alike."""
    values = at((0, 10.0), (1, 10.000001), (2, math.nan), (3, 9.99), (4, -math.inf), (5, math.inf))
    expected = {
        "above": [10.000001, "nan", math.inf],
        "below": ["nan", 9.99, -math.inf],
        "inside": [10.0, "nan", 9.99],
        "outside": [10.000001, "nan", -math.inf, math.inf],
    }
    for limit in ({"above": 10.0}, {"below": 10.0}, {"inside": (9.99, 10.0)}, {"outside": (9.99, 10.0)}):
        host, device = run_both(threshold(**limit), values)
        assert_same(host, device)
        assert [o.value for o in host] == expected[next(iter(limit))]


def test_deadband_first_value_nan_and_zero_band():
    """NaN in, NaN out: a NaN passes and so does the first value after it (a move to or from NaN
    counts as a move), so the deadband is never stuck; a zero band passes everything."""
    host, device = run_both(deadband(1.0), at((0, math.nan), (1, 5.0), (2, 5.5), (3, 50.0), (4, math.nan), (5, math.nan), (6, 50.0)))
    assert_same(host, device)
    assert [o.value for o in host] == ["nan", 5.0, 50.0, "nan", "nan", 50.0]
    host, device = run_both(deadband(0.0), at((0, 1.0), (1, 1.0), (2, 0.5)))
    assert_same(host, device)
    assert [o.value for o in host] == [1.0, 1.0, 0.5]


def test_scale_keeps_event_times_and_parents():
    """Scale converts each value, keeping its event time (late ones too) and its one parent."""
    host, device = run_both(scale(0.1, -50.0), at((100, 2048.0), (50, 0.0), (300, math.nan)))
    assert_same(host, device)
    assert [(o.time_us, o.lineage) for o in host] == [(100, (INPUT, (1,))), (50, (INPUT, (2,))), (300, (INPUT, (3,)))]


def test_count_window_that_never_fills_emits_nothing():
    """A window of 4 fed 3 values emits nothing; once full, each step names the window's values."""
    host, device = run_both(count_window(4, 2, Aggregate.MEAN), at((0, 1.0), (10, 2.0), (20, 3.0)))
    assert_same(host, device)
    assert host == []
    host, device = run_both(count_window(4, 2, Aggregate.MAX), at(*[(10 * i, float(i)) for i in range(7)] + [(5, math.nan)]))
    assert_same(host, device)
    # NaN in, NaN out: the window holding the NaN is NaN, never the largest of the others.
    assert [(o.value, o.lineage[1]) for o in host] == [(3.0, (1, 2, 3, 4)), (5.0, (3, 4, 5, 6)), ("nan", (5, 6, 7, 8))]


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_windows_of_a_nan_are_nan_and_recover(aggregate):
    """Count and time windows holding a NaN give NaN for sum, mean, min and max (never an
    infinity) and count it; the next window without one is a number again, on both runs."""
    inputs = at((0, math.nan), (100, math.inf), (1_000, 2.0), (1_100, -1.0), (2_500, 0.0))
    expected = {"count": [2.0, 2.0], "sum": ["nan", 1.0], "mean": ["nan", 0.5], "min": ["nan", -1.0], "max": ["nan", 2.0]}
    for build in (count_window(2, 2, aggregate), time_window(1_000, 1_000, aggregate)):
        host, device = run_both(build, inputs)
        assert_same(host, device)
        assert [o.value for o in host] == expected[aggregate.value]


def test_time_window_empty_windows_late_values_and_ends():
    """Windows without values emit nothing; a value exactly at a window's end closes it; a late
    value is dropped and the next result says delivery_dropped; results carry end - 1."""
    inputs = at((100, 1.0), (900, 3.0), (1_000, 10.0), (999, 7.0), (5_000, 2.0), (12_000, 0.0))
    host, device = run_both(time_window(1_000, 1_000, Aggregate.SUM), inputs)
    assert_same(host, device)
    assert [(o.time_us, o.value, sorted(o.taints)) for o in host] == [
        (999, 4.0, []),
        (1_999, 10.0, ["delivery_dropped"]),
        (5_999, 2.0, []),
    ]


def test_sliding_time_window_counts_each_value_in_every_window():
    """Width 3 slides: each in-order value is in three windows, each naming exactly its values."""
    inputs = at((50, 1.0), (120, 2.0), (260, 4.0), (900, 8.0))
    host, device = run_both(time_window(300, 100, Aggregate.SUM), inputs)
    assert_same(host, device)
    assert [o.value for o in host] == [1.0, 3.0, 7.0, 6.0, 4.0]


def test_rate_limiter_bursts_and_refill():
    """A burst at one instant passes `max_events`; later values pass as tokens refill, the
    first after a drop marked delivery_sampled."""
    inputs = at(*[(0, float(i)) for i in range(5)] + [(400, 5.0), (1_000, 6.0), (1_000, 7.0), (3_500, 8.0)])
    host, device = run_both(rate_limit(2, 1_000), inputs)
    assert_same(host, device)
    assert [(o.value, sorted(o.taints)) for o in host] == [
        (0.0, []), (1.0, []), (6.0, ["delivery_sampled"]), (7.0, []), (8.0, []),
    ]


def test_latest_boundaries_single_values_and_bursts():
    """A value on a period boundary waits for the next one; a single value goes out clean; a
    burst goes out once, coalesced, naming every value of it, with the latest's event time."""
    inputs = at((1_000, 1.0), (1_500, 2.0), (1_999, 3.0), (2_000, 4.0), (7_200, 5.0))
    host, device = run_both(latest(1_000), inputs)
    assert_same(host, device)
    assert [(o.time_us, o.value, sorted(o.taints), o.lineage[1]) for o in host] == [
        (1_999, 3.0, ["delivery_coalesced"], (1, 2, 3)),
        (2_000, 4.0, [], (4,)),
        (7_200, 5.0, [], (5,)),
    ]


def test_write_binding_burst_faster_than_apply_does_not_starve():
    """Desired values every 100 us with apply_us 250: each write applies 250 us after the first
    value of its batch (coalesced, naming the batch), reported then effective at the time of
    application; meanwhile every desired value re-emits the setting in effect, write-pending."""
    inputs = [Input(t, t, float(k)) for k, t in enumerate(range(0, 1_000, 100))]
    host, device = run_both(write_binding(250), inputs)
    assert_same(host, device)
    applied = [(o.route, o.time_us, o.value, o.lineage[1]) for o in host if "coherence_write_pending" not in o.taints]
    reported, effective = output_name("reported"), output_name("effective")
    assert applied == [
        (reported, 250, 2.0, (1, 2, 3)), (effective, 250, 2.0, (1, 2, 3)),
        (reported, 550, 5.0, (4, 5, 6)), (effective, 550, 5.0, (4, 5, 6)),
        (reported, 850, 8.0, (7, 8, 9)), (effective, 850, 8.0, (7, 8, 9)),
        (reported, 1_150, 9.0, (10,)), (effective, 1_150, 9.0, (10,)),
    ]
    pending = [(o.time_us, o.value) for o in host if "coherence_write_pending" in o.taints]
    assert pending == [(300, 2.0), (400, 2.0), (500, 2.0), (600, 5.0), (700, 5.0), (800, 5.0), (900, 8.0)]


def test_write_binding_applies_at_once_without_delay():
    """apply_us = 0: each desired value is reported and in effect at once, never write-pending."""
    host, device = run_both(write_binding(0), at((0, 1.0), (0, 2.0), (10, math.nan), (5, 3.0)))
    assert_same(host, device)
    assert [(o.time_us, o.value) for o in host] == [(0, 1.0), (0, 1.0), (0, 2.0), (0, 2.0), (10, "nan"), (10, "nan"), (10, 3.0), (10, 3.0)]
    assert not any(o.taints for o in host)


# ---------------------------------------------------------------------- late and extreme times


EXTREMES = [-(2**63), -(2**62), -1, 0, 1, 2**62, 2**63 - 1]


def as_ref(outputs: list[Out]) -> list[ref.Out]:
    """Outputs in the reference model's form: value, event time, taints, parents' seqs and the
    output's stream name."""
    return [ref.out(o.value, o.time_us, o.taints, o.lineage[1], Route.parse(o.route).stream) for o in outputs]


@pytest.mark.parametrize("kind", KINDS)
def test_event_times_at_both_ends_of_the_range_agree(kind):
    """Event times anywhere in the 64-bit range (and jumps of 2^63 or more between them, forward
    and back) go through every device operator as the reference model says (exact values, event
    times, taints and parents), and host and board agree."""
    rng = random.Random(f"extremes-{kind}")
    build, model = random_operator(kind, rng)
    inputs = [Input(i * 100, t, float(i)) for i, t in enumerate([EXTREMES[rng.randrange(len(EXTREMES))] for _ in range(30)])]
    end_us = inputs[-1].clock_us + 10_000_000
    host, device = run_both(build, inputs, end_us)
    assert_same(host, device, compact_lineage=kind == "time_window")
    want = model([ref.In(i.clock_us, i.time_us, i.value, seq) for seq, i in enumerate(inputs, start=1)], end_us)
    assert as_ref(host) == want
    if kind not in ("threshold", "rate_limit"):
        assert want, "the sequence exercised the operator"


@pytest.mark.parametrize("first_us", [-(2**63), -(2**63) + 3, -(2**63) + 99])
@pytest.mark.parametrize("width_us, slide_us", [(100, 100), (300, 100), (750, 250)])
def test_time_windows_at_the_start_of_time_agree_with_the_reference(first_us, width_us, slide_us):
    """Windows that start before -2**63 (or just after it) hold exactly their values and end
    where the reference model says, on the host and the board; a value at 2**63 - 1 is in
    windows that would end after the last microsecond, which never close."""
    times = [first_us + d for d in (0, 1, 97, 150, 1_000, 1_001, 5_000)] + [2**63 - 1]
    inputs = [Input(i * 100, t, float(i)) for i, t in enumerate(times)]
    host, device = run_both(time_window(width_us, slide_us, Aggregate.SUM), inputs)
    assert_same(host, device)
    want = ref.time_window([ref.In(i.clock_us, i.time_us, i.value, seq) for seq, i in enumerate(inputs, start=1)], width_us, slide_us, 0, "sum")
    assert as_ref(host) == want
    assert want[0].time_us < first_us + width_us and want[-1].time_us < 2**63 - 1


def test_late_values_agree_on_every_event_time_operator():
    """Values behind the watermark: a time window drops them (counted, the next result tainted),
    a rate limiter refills nothing for them, and a threshold keeps their event time: host and
    board alike."""
    inputs = at((1_000, 1.0), (5_000, 2.0), (10, 3.0), (4_999, 4.0), (9_000, 5.0), (20_000, 6.0))
    for build in (time_window(1_000, 1_000, Aggregate.COUNT), rate_limit(1, 1_000), threshold(above=0.0), scale(2.0, 1.0)):
        host, device = run_both(build, inputs)
        assert_same(host, device)
    host, _ = run_both(time_window(1_000, 1_000, Aggregate.COUNT), inputs)
    assert [(o.time_us, o.value, sorted(o.taints)) for o in host] == [
        (1_999, 1.0, []), (5_999, 1.0, ["delivery_dropped"]), (9_999, 1.0, []),
    ]
