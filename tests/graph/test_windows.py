"""Windows of the local graph: count windows (tumbling, sliding, keyed), the moving average,
event-time windows closed by the watermark (tumbling, sliding, lateness, per key) and
processing-time windows closed by the virtual clock. Results are checked value by value,
with their exact bounds, parents and taints."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from graphkit import collect, float_graph, route, stats

from manyfold.graph import (
    FLOAT,
    TEXT,
    Aggregate,
    EnvelopeId,
    Graph,
    OperatorConfigError,
    OperatorError,
    SchemaMismatchError,
    TimeSource,
    WindowResult,
    schema,
)


@schema()
@dataclass(frozen=True)
class Reading:
    zone: str
    celsius: float


@dataclass(frozen=True)
class Sample:
    """A plain dataclass (no @schema): keyed by an int."""

    channel: int
    level: float










def reading_graph():
    g = Graph()
    r = g.route(route("reading"), Reading)
    return g, r, g.producer("sensor")


def aggregate(kind: Aggregate, values: list[float]) -> float:
    """The reference aggregate, computed in arrival order like the kernel."""
    total = 0.0
    for v in values:
        total += v
    return {
        Aggregate.COUNT: float(len(values)),
        Aggregate.SUM: total,
        Aggregate.MEAN: total / len(values),
        Aggregate.MIN: min(values),
        Aggregate.MAX: max(values),
    }[kind]


SERIES = [4.0, -2.0, 7.0, 1.0, 10.0, 3.0, 5.0]


# ---------------------------------------------------------------------- count windows


@pytest.mark.parametrize("kind", list(Aggregate))
def test_tumbling_count_window_emits_each_aggregate_every_size_values(kind):
    """size=3, step=3 emits the aggregate after values 3 and 6 with those 3 inputs as parents and the newest event time."""
    g, temp, sensor = float_graph()
    node = g.count_window(temp, size=3, step=3, aggregate=kind)
    out = collect(g, node.output)
    for i, v in enumerate(SERIES):
        sensor.publish(temp, v, event_time_us=100 * i)
    assert [e.value for e in out] == [aggregate(kind, SERIES[0:3]), aggregate(kind, SERIES[3:6])]
    assert [e.parents for e in out] == [
        [EnvelopeId(temp, 1), EnvelopeId(temp, 2), EnvelopeId(temp, 3)],
        [EnvelopeId(temp, 4), EnvelopeId(temp, 5), EnvelopeId(temp, 6)],
    ]
    assert [e.event_time_us for e in out] == [200, 500]
    assert g.schema_of(node.output) == FLOAT


@pytest.mark.parametrize("kind", list(Aggregate))
def test_sliding_count_window_emits_each_aggregate_after_every_value_once_full(kind):
    """size=3, step=1 emits from the 3rd value on, over the last 3 values each time."""
    g, temp, sensor = float_graph()
    node = g.count_window(temp, size=3, step=1, aggregate=kind)
    out = collect(g, node.output)
    for i, v in enumerate(SERIES):
        sensor.publish(temp, v, event_time_us=100 * i)
    assert [e.value for e in out] == [aggregate(kind, SERIES[i : i + 3]) for i in range(5)]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s) for s in range(i + 1, i + 4)] for i in range(5)]
    assert [e.event_time_us for e in out] == [200, 300, 400, 500, 600]


def test_count_window_with_step_emits_records_spanning_event_times():
    """size=4, step=2 with records=True emits WindowResults spanning the first to last event time of their values."""
    g, temp, sensor = float_graph()
    node = g.count_window(temp, size=4, step=2, aggregate=Aggregate.SUM, records=True)
    out = collect(g, node.output)
    for i in range(7):
        sensor.publish(temp, float(i + 1), event_time_us=1_000 + 10 * i)
    assert [e.value for e in out] == [
        WindowResult(key=None, start_us=1_000, end_us=1_030, count=4, value=10.0, forced=False),
        WindowResult(key=None, start_us=1_020, end_us=1_050, count=4, value=18.0, forced=False),
    ]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s) for s in (1, 2, 3, 4)], [EnvelopeId(temp, s) for s in (3, 4, 5, 6)]]


def test_keyed_count_windows_aggregate_each_key_separately():
    """key='zone' keeps one window per zone: each emits a WindowResult for its own values only."""
    g, readings, sensor = reading_graph()
    node = g.count_window(readings, size=2, step=2, aggregate=Aggregate.MEAN, value="celsius", key="zone")
    out = collect(g, node.output)
    data = [("hall", 20.0), ("attic", 30.0), ("hall", 22.0), ("cellar", 10.0), ("attic", 31.0), ("hall", 1.0), ("hall", 3.0)]
    for i, (zone, c) in enumerate(data):
        sensor.publish(readings, Reading(zone, c), event_time_us=10 * i)
    assert [e.value for e in out] == [
        WindowResult(key="hall", start_us=0, end_us=20, count=2, value=21.0, forced=False),
        WindowResult(key="attic", start_us=10, end_us=40, count=2, value=30.5, forced=False),
        WindowResult(key="hall", start_us=50, end_us=60, count=2, value=2.0, forced=False),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(readings, 1), EnvelopeId(readings, 3)],
        [EnvelopeId(readings, 2), EnvelopeId(readings, 5)],
        [EnvelopeId(readings, 6), EnvelopeId(readings, 7)],
    ]
    assert stats(g, node).counters["keys"] == 3


def test_keyed_count_window_with_key_and_value_functions():
    """key= and value= may be callables; records carry the function's key (an int here)."""
    g = Graph()
    samples = g.route(route("samples"), Sample)
    sensor = g.producer("sensor")
    node = g.count_window(samples, size=2, step=1, aggregate=Aggregate.MAX, key=lambda s: s.channel % 2, value=lambda s: s.level * 10)
    out = collect(g, node.output)
    for i, (ch, level) in enumerate([(1, 0.5), (2, 0.1), (3, 0.2), (4, 0.7), (5, 0.9)]):
        sensor.publish(samples, Sample(ch, level), event_time_us=i)
    assert [(e.value.key, e.value.count, e.value.value) for e in out] == [(1, 2, 5.0), (0, 2, 7.0), (1, 2, 9.0)]
    assert [e.parents for e in out] == [
        [EnvelopeId(samples, 1), EnvelopeId(samples, 3)],
        [EnvelopeId(samples, 2), EnvelopeId(samples, 4)],
        [EnvelopeId(samples, 3), EnvelopeId(samples, 5)],
    ]


def test_keyed_count_window_bounds_its_keys_and_taints_the_next_result():
    """Past 4096 keys, new keys are refused (keys_refused) and the next result carries delivery_dropped."""
    g = Graph()
    samples = g.route(route("samples"), Sample)
    sensor = g.producer("sensor")
    node = g.count_window(samples, size=2, step=2, aggregate=Aggregate.SUM, value="level", key="channel")
    out = collect(g, node.output)
    for ch in range(4096):
        sensor.publish(samples, Sample(ch, 1.0))
    assert out == []
    sensor.publish(samples, Sample(5_000, 1.0))
    sensor.publish(samples, Sample(5_001, 1.0))
    assert stats(g, node).counters == {"keys": 4096, "keys_refused": 2}
    sensor.publish(samples, Sample(7, 2.0))
    assert [(e.value.key, e.value.value, e.taint_names) for e in out] == [(7, 3.0, ["delivery_dropped"])]
    assert out[0].parents == [EnvelopeId(samples, 8), EnvelopeId(samples, 4099)]
    sensor.publish(samples, Sample(8, 2.0))
    assert [e.taint_names for e in out] == [["delivery_dropped"], []]


def test_moving_average_starts_at_the_nth_value_over_the_last_n():
    """moving_average(n=3) emits the mean of the last 3 values from the 3rd value on."""
    g, temp, sensor = float_graph()
    node = g.moving_average(temp, 3)
    out = collect(g, node.output)
    for v in (1.0, 2.0, 3.0, 4.0, 8.0, -3.0):
        sensor.publish(temp, v)
    assert [e.value for e in out] == [2.0, 3.0, 5.0, 3.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s) for s in range(i, i + 3)] for i in (1, 2, 3, 4)]
    assert stats(g, node).params == {"size": 3, "step": 1, "aggregate": "mean", "value": "value", "key": "none"}


def test_moving_average_of_one_is_the_value_itself():
    """moving_average(n=1) re-emits every value."""
    g, temp, sensor = float_graph()
    out = collect(g, g.moving_average(temp, 1).output)
    for v in (1.5, -2.0):
        sensor.publish(temp, v)
    assert [e.value for e in out] == [1.5, -2.0]


@pytest.mark.parametrize(
    ("size", "step"),
    [(0, 1), (3, 0), (3, 4), (1, 2)],
)
def test_count_window_refuses_bad_sizes(size, step):
    """size >= 1 and 1 <= step <= size, else OperatorConfigError naming both; no node is added."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError, match=f"size {size}, step {step}"):
        g.count_window(temp, size=size, step=step)
    assert g.node_stats() == []


def test_count_window_refuses_negative_sizes_and_unknown_aggregates():
    """A negative size is an OperatorConfigError; an unknown aggregate name a ValueError."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError, match="size"):
        g.count_window(temp, size=-1)
    with pytest.raises(OperatorConfigError):
        g.moving_average(temp, 0)
    with pytest.raises(ValueError):
        g.count_window(temp, size=3, aggregate="median")


def test_window_value_must_be_a_number():
    """A record input without value=, or value= naming a text field, raises SchemaMismatchError."""
    g, readings, _ = reading_graph()
    with pytest.raises(SchemaMismatchError, match="Reading@1 which is not a number"):
        g.count_window(readings, size=2)
    with pytest.raises(SchemaMismatchError, match="field zone of Reading@1 is not a number"):
        g.count_window(readings, size=2, value="zone")
    with pytest.raises(SchemaMismatchError, match="field zone of Reading@1 is not a number"):
        g.time_window(readings, width_us=10, value="zone")
    words = g.route(route("words"), TEXT)
    with pytest.raises(SchemaMismatchError, match="text@1 which is not a number"):
        g.moving_average(words, 3)


def test_failing_key_function_is_an_operator_error():
    """A key function that raises fails the publish with OperatorError (cause kept); no window state is created."""
    g, readings, sensor = reading_graph()

    def key(r: Reading) -> str:
        raise LookupError(r.zone)

    node = g.count_window(readings, size=1, value="celsius", key=key)
    with pytest.raises(OperatorError) as info:
        sensor.publish(readings, Reading("hall", 1.0))
    assert isinstance(info.value.__cause__, LookupError)
    assert stats(g, node).counters["keys"] == 0


# ---------------------------------------------------------------------- event-time windows


def test_event_time_tumbling_windows_close_when_the_watermark_passes_their_end():
    """A tumbling window emits only when the watermark reaches its end, with exact bounds, aggregate, parents and event time end - 1."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, aggregate=Aggregate.MEAN)
    out = collect(g, node.output)
    for t, v in [(100, 1.0), (900, 3.0), (999, 5.0)]:
        sensor.publish(temp, v, event_time_us=t)
    assert out == []
    sensor.publish(temp, 10.0, event_time_us=1_000)
    sensor.publish(temp, 20.0, event_time_us=1_500)
    assert len(out) == 1
    sensor.publish(temp, 7.0, event_time_us=2_000)
    assert [e.value for e in out] == [
        WindowResult(key=None, start_us=0, end_us=1_000, count=3, value=3.0, forced=False),
        WindowResult(key=None, start_us=1_000, end_us=2_000, count=2, value=15.0, forced=False),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(temp, 1), EnvelopeId(temp, 2), EnvelopeId(temp, 3)],
        [EnvelopeId(temp, 4), EnvelopeId(temp, 5)],
    ]
    assert [e.event_time_us for e in out] == [999, 1_999]
    assert all(e.taint_names == [] for e in out)
    node_stats = stats(g, node)
    assert node_stats.kind == "event_time_window"
    assert node_stats.watermark_us == 2_000
    assert node_stats.counters == {"keys": 1, "late": 0, "forced": 0, "keys_refused": 0}


def test_event_time_windows_ignore_the_graph_clock():
    """Advancing the virtual clock closes no event-time window; only event time does."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=100, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0, event_time_us=10)
    g.advance(1_000_000)
    assert out == []
    sensor.publish(temp, 1.0, event_time_us=100)
    assert [(e.value.start_us, e.value.value) for e in out] == [(0, 1.0)]


def test_event_time_windows_skip_gaps_without_empty_results():
    """Windows that saw no value emit nothing, however long the gap."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=10, aggregate=Aggregate.COUNT)
    out = collect(g, node.output)
    for t in (5, 1_000_005, 1_000_006, 9_000_000_000):
        sensor.publish(temp, 1.0, event_time_us=t)
    assert [(e.value.start_us, e.value.end_us, e.value.value) for e in out] == [(0, 10, 1.0), (1_000_000, 1_000_010, 2.0)]


def test_event_time_sliding_windows_count_each_value_in_every_window_it_falls_in():
    """width 1000, slide 500: each value is in two windows, emitted in order with exactly their inputs as parents."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, slide_us=500, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    for t, v in [(100, 1.0), (600, 2.0), (1_200, 4.0), (1_400, 8.0), (2_600, 16.0)]:
        sensor.publish(temp, v, event_time_us=t)
    assert [e.value for e in out] == [
        WindowResult(key=None, start_us=-500, end_us=500, count=1, value=1.0, forced=False),
        WindowResult(key=None, start_us=0, end_us=1_000, count=2, value=3.0, forced=False),
        WindowResult(key=None, start_us=500, end_us=1_500, count=3, value=14.0, forced=False),
        WindowResult(key=None, start_us=1_000, end_us=2_000, count=2, value=12.0, forced=False),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(temp, 1)],
        [EnvelopeId(temp, 1), EnvelopeId(temp, 2)],
        [EnvelopeId(temp, 2), EnvelopeId(temp, 3), EnvelopeId(temp, 4)],
        [EnvelopeId(temp, 3), EnvelopeId(temp, 4)],
    ]
    assert [e.event_time_us for e in out] == [499, 999, 1_499, 1_999]


def test_a_gap_in_event_time_closes_windows_normally_not_forced():
    """An in-order value far ahead closes earlier windows through the watermark, never as forced closes."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, slide_us=500, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    for t, v in [(100, 1.0), (600, 2.0), (1_200, 4.0), (5_000, 8.0)]:
        sensor.publish(temp, v, event_time_us=t)
    assert [(e.value.start_us, e.value.value, e.value.forced, e.taint_names) for e in out] == [
        (-500, 1.0, False, []),
        (0, 3.0, False, []),
        (500, 6.0, False, []),
        (1_000, 4.0, False, []),
    ]
    assert stats(g, node).counters["forced"] == 0


def test_window_memory_stays_bounded_over_a_long_stream():
    """Over 3000 values with jumps, open panes stay within the per-key bound, nothing is forced, and results match a reference."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=100, slide_us=50, lateness_us=120, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    panes_bound = 100 // 50 + 120 // 50 + 2
    rng = random.Random(7)
    t = 0
    sent = []
    most_open = 0
    for i in range(3_000):
        t += rng.choice([1, 7, 30, 90]) + (1_000_000 if i % 500 == 499 else 0)
        v = float(rng.randrange(-50, 50))
        sensor.publish(temp, v, event_time_us=t)
        sent.append((t, v))
        if i % 10 == 0:
            most_open = max(most_open, stats(g, node).buffered)
    assert 0 < most_open <= panes_bound
    assert stats(g, node).counters["forced"] == 0
    watermark = t - 120
    windows: dict[int, list[float]] = {}
    for ts, v in sent:
        for k in (ts // 50 - 1, ts // 50):
            windows.setdefault(k, []).append(v)
    expected = [(k * 50, k * 50 + 100, len(vs), sum(vs)) for k, vs in sorted(windows.items()) if k * 50 + 100 <= watermark]
    assert [(e.value.start_us, e.value.end_us, e.value.count, e.value.value) for e in out] == expected
    assert not any(e.value.forced for e in out)


def test_lateness_accepts_values_within_it_and_drops_values_beyond_it():
    """Within lateness a late value joins its window; behind the watermark it is dropped, counted late, and taints the next result."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, lateness_us=500, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0, event_time_us=100)
    sensor.publish(temp, 2.0, event_time_us=1_200)  # watermark 700: [0, 1000) stays open
    sensor.publish(temp, 4.0, event_time_us=800)  # late by 400 us, within lateness: accepted
    assert out == []
    sensor.publish(temp, 8.0, event_time_us=1_600)  # watermark 1100 closes [0, 1000)
    sensor.publish(temp, 16.0, event_time_us=900)  # its window is closed: late, dropped
    sensor.publish(temp, 32.0, event_time_us=1_400)
    sensor.publish(temp, 64.0, event_time_us=2_600)  # watermark 2100 closes [1000, 2000)
    assert [e.value for e in out] == [
        WindowResult(key=None, start_us=0, end_us=1_000, count=2, value=5.0, forced=False),
        WindowResult(key=None, start_us=1_000, end_us=2_000, count=3, value=42.0, forced=False),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(temp, 1), EnvelopeId(temp, 3)],
        [EnvelopeId(temp, 2), EnvelopeId(temp, 4), EnvelopeId(temp, 6)],
    ]
    assert [e.taint_names for e in out] == [[], ["delivery_dropped"]]
    node_stats = stats(g, node)
    assert node_stats.counters["late"] == 1
    assert node_stats.counters["forced"] == 0
    assert node_stats.watermark_us == 2_100


def test_without_lateness_any_value_behind_the_watermark_is_late():
    """lateness 0: a value for an already closed window is refused and counted; the window is not re-emitted."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=10, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    for t, v in [(1, 1.0), (5, 5.0), (12, 12.0), (3, 3.0), (25, 25.0), (9, 9.0)]:
        sensor.publish(temp, v, event_time_us=t)
    assert [(e.value.start_us, e.value.value, e.taint_names) for e in out] == [(0, 6.0, []), (10, 12.0, ["delivery_dropped"])]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 1), EnvelopeId(temp, 2)], [EnvelopeId(temp, 3)]]
    assert stats(g, node).counters["late"] == 2


def test_values_earlier_than_the_first_one_seen_are_accepted_within_lateness():
    """A value older than the first one seen, but not behind the watermark, is accepted into its own earlier window."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, lateness_us=2_000, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0, event_time_us=2_500)  # watermark 500
    sensor.publish(temp, 2.0, event_time_us=1_200)
    sensor.publish(temp, 4.0, event_time_us=300)
    sensor.publish(temp, 0.0, event_time_us=5_000)  # watermark 3000 closes three windows
    assert [(e.value.start_us, e.value.value) for e in out] == [(0, 4.0), (1_000, 2.0), (2_000, 1.0)]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 3)], [EnvelopeId(temp, 2)], [EnvelopeId(temp, 1)]]
    assert stats(g, node).counters["late"] == 0


@pytest.mark.parametrize("kind", list(Aggregate))
def test_time_window_aggregates(kind):
    """Each aggregate over one event-time window of 4, -2, 7."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=100, aggregate=kind)
    out = collect(g, node.output)
    for t, v in [(10, 4.0), (20, -2.0), (99, 7.0), (100, 1.0)]:
        sensor.publish(temp, v, event_time_us=t)
    assert [e.value for e in out] == [WindowResult(None, 0, 100, 3, aggregate(kind, [4.0, -2.0, 7.0]), False)]


def test_per_key_event_time_windows():
    """key='zone' gives each zone its own windows, closed by the shared watermark; a new key's value behind it is late."""
    g, readings, sensor = reading_graph()
    node = g.time_window(readings, width_us=1_000, aggregate=Aggregate.MAX, value="celsius", key="zone")
    out = collect(g, node.output)
    for t, zone, c in [(100, "a", 1.0), (200, "b", 5.0), (400, "a", 3.0), (1_100, "b", 2.0)]:
        sensor.publish(readings, Reading(zone, c), event_time_us=t)
    assert [e.value for e in out] == [
        WindowResult(key="a", start_us=0, end_us=1_000, count=2, value=3.0, forced=False),
        WindowResult(key="b", start_us=0, end_us=1_000, count=1, value=5.0, forced=False),
    ]
    sensor.publish(readings, Reading("c", 9.0), event_time_us=1_200)
    sensor.publish(readings, Reading("c", 7.0), event_time_us=300)  # behind the watermark: late
    sensor.publish(readings, Reading("a", 0.5), event_time_us=2_500)
    assert [e.value for e in out[2:]] == [
        WindowResult(key="b", start_us=1_000, end_us=2_000, count=1, value=2.0, forced=False),
        WindowResult(key="c", start_us=1_000, end_us=2_000, count=1, value=9.0, forced=False),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(readings, 1), EnvelopeId(readings, 3)],
        [EnvelopeId(readings, 2)],
        [EnvelopeId(readings, 4)],
        [EnvelopeId(readings, 5)],
    ]
    assert [e.taint_names for e in out] == [[], [], ["delivery_dropped"], []]
    assert stats(g, node).counters == {"keys": 3, "late": 1, "forced": 0, "keys_refused": 0}


def test_time_window_with_key_and_value_functions():
    """key= and value= callables decide the key and the number of each value."""
    g, readings, sensor = reading_graph()
    node = g.time_window(readings, width_us=10, aggregate=Aggregate.SUM, value=lambda r: r.celsius * 2, key=lambda r: r.zone.upper())
    out = collect(g, node.output)
    for t, zone, c in [(30, "a", 1.0), (31, "b", 3.0), (35, "a", 1.5), (41, "a", 0.0)]:
        sensor.publish(readings, Reading(zone, c), event_time_us=t)
    assert [e.value for e in out] == [WindowResult("A", 30, 40, 2, 5.0, False), WindowResult("B", 30, 40, 1, 6.0, False)]


@pytest.mark.parametrize(("width", "slide", "lateness"), [(100, 100, 0), (100, 100, 250), (100, 25, 60), (90, 30, 0)])
def test_event_time_windows_match_a_reference_model_on_shuffled_input(width, slide, lateness):
    """A seeded out-of-order stream gives the same results, parents, taints and late count as a reference model."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=width, slide_us=slide, lateness_us=lateness, aggregate=Aggregate.SUM)
    out = collect(g, node.output)
    rng = random.Random(width * 1_000 + slide * 10 + lateness)
    watermark = None
    windows: dict[int, list[tuple[int, int, float]]] = {}  # k -> [(pane, seq, value)]
    expected = []
    late = 0
    pending_drop = False
    n = width // slide
    for seq in range(1, 401):
        t = seq * 13 - rng.randrange(0, 2 * width + lateness + 50)
        v = float(rng.randrange(0, 100))
        sensor.publish(temp, v, event_time_us=t)
        candidate = t - lateness
        if watermark is None or candidate > watermark:
            watermark = candidate
            for k in sorted(windows):
                if k * slide + width <= watermark:
                    members = sorted(windows.pop(k))
                    taints = ["delivery_dropped"] if pending_drop else []
                    pending_drop = False
                    expected.append(
                        (k * slide, k * slide + width, len(members), sum(m[2] for m in members), [EnvelopeId(temp, m[1]) for m in members], taints)
                    )
        pane = t // slide
        its_windows = range(pane - n + 1, pane + 1)
        # Late as soon as one of its windows closed: it would be missing from that one.
        if any(k * slide + width <= watermark for k in its_windows):
            late += 1
            pending_drop = True
            continue
        for k in its_windows:
            windows.setdefault(k, []).append((pane, seq, v))
    got = [(e.value.start_us, e.value.end_us, e.value.count, e.value.value, e.parents, e.taint_names) for e in out]
    assert got == expected
    assert late > 0
    assert stats(g, node).counters["late"] == late
    assert stats(g, node).counters["forced"] == 0


# ---------------------------------------------------------------------- processing-time windows


def test_processing_time_tumbling_windows_close_on_advance_with_processing_taints():
    """Processing windows use the graph clock at arrival and close exactly on g.advance, with processing-time taints."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=1_000, aggregate=Aggregate.SUM, time=TimeSource.PROCESSING)
    out = collect(g, node.output)
    g.advance(100)
    sensor.publish(temp, 1.0, event_time_us=999_999)
    g.advance(300)
    sensor.publish(temp, 2.0, event_time_us=5)
    g.advance_to(999)
    assert out == []
    g.advance(1)
    assert [e.value for e in out] == [WindowResult(None, 0, 1_000, 2, 3.0, False)]
    assert out[0].parents == [EnvelopeId(temp, 1), EnvelopeId(temp, 2)]
    assert sorted(out[0].taint_names) == ["det_processing_clock", "time_processing"]
    assert out[0].ingest_time_us == 1_000
    assert out[0].event_time_us == 999
    sensor.publish(temp, 4.0)  # at 1000: the next window
    g.advance_to(5_000)
    assert [(e.value.start_us, e.value.value, e.ingest_time_us) for e in out] == [(0, 3.0, 1_000), (1_000, 4.0, 2_000)]
    assert g.scheduler_state().timers == 0
    assert stats(g, node).kind == "processing_time_window"


def test_processing_time_sliding_windows():
    """width 20, slide 10: values at 5 and 15 fall in three windows, each closed at its end."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=20, slide_us=10, aggregate=Aggregate.SUM, time=TimeSource.PROCESSING)
    out = collect(g, node.output)
    g.advance(5)
    sensor.publish(temp, 1.0)
    g.advance(10)
    sensor.publish(temp, 2.0)
    g.advance_to(100)
    assert [(e.value.start_us, e.value.end_us, e.value.value, e.ingest_time_us) for e in out] == [
        (-10, 10, 1.0, 10),
        (0, 20, 3.0, 20),
        (10, 30, 2.0, 30),
    ]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 1)], [EnvelopeId(temp, 1), EnvelopeId(temp, 2)], [EnvelopeId(temp, 2)]]
    assert all(sorted(e.taint_names) == ["det_processing_clock", "time_processing"] for e in out)


def test_processing_time_windows_need_the_clock_to_move():
    """run_until_idle does not move the virtual clock, so a processing window stays open."""
    g, temp, sensor = float_graph()
    node = g.time_window(temp, width_us=10, aggregate=Aggregate.COUNT, time=TimeSource.PROCESSING)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    g.run_until_idle()
    assert out == []
    g.advance(10)
    assert [e.value.value for e in out] == [1.0]


# ---------------------------------------------------------------------- time window configuration


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width_us": 0}, "width_us > 0"),
        ({"width_us": -10}, "width_us > 0"),
        ({"width_us": 10, "slide_us": 0}, "slide_us > 0"),
        ({"width_us": 10, "slide_us": 3}, "width a multiple of slide"),
        ({"width_us": 10, "slide_us": 20}, "width a multiple of slide"),
        ({"width_us": 10, "lateness_us": -1}, "lateness_us must not be negative"),
        ({"width_us": 1, "lateness_us": 1_000_000}, "panes of state per key"),
    ],
)
def test_time_window_refuses_bad_geometry(kwargs, message):
    """Bad width, slide or lateness raise OperatorConfigError with a message saying why; no node is added."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError, match=message):
        g.time_window(temp, **kwargs)
    assert g.node_stats() == []
