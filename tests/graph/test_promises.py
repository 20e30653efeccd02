"""Issue 11, case by case: the local graph keeps its promises. No silent loss (late join input is
counted and tainted), no invented values (NaN follows one rule, time arithmetic never wraps),
every misuse is a GraphError naming the route or node, and refusals are audited with who."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import refmodel as ref
from graphkit import collect, float_graph, route, stats

from manyfold import query
from manyfold.graph import (
    FLOAT,
    Aggregate,
    BackpressureError,
    Graph,
    GraphError,
    JoinClass,
    LinkCapabilities,
    Mailbox,
    OperatorConfigError,
    Overflow,
    RejectedError,
    Route,
    RouteError,
    SchemaCheckError,
    Taint,
    TimeError,
    schema,
    taints_of,
)

X = "read.logical.p.f.x.meta.v1"


@schema()
@dataclass(frozen=True)
class Side:
    key: int
    v: float


def join_graph(join_class: JoinClass, within_us: int | None):
    g = Graph()
    left = g.route(route("left", "p"), Side)
    right = g.route(route("right", "p"), Side)
    node = g.join(left, right, join_class=join_class, key="key", within_us=within_us)
    return g, left, right, g.producer("p"), node, collect(g, node.output)


# ---------------------------------------------------------------------- 1. late join input


@pytest.mark.parametrize("join_class", [JoinClass.LOCAL, JoinClass.REPARTITION])
def test_a_late_join_input_is_counted_and_the_next_pair_tainted(join_class):
    """within_us=2, left at 0 and 5, then right at 0 and 5: right@0 is late (counted, in the receipt, in the watermarks) and the next pair says delivery_dropped."""
    g, left, right, p, node, out = join_graph(join_class, 2)
    p.publish(left, Side(1, 0.0), event_time_us=0)
    p.publish(left, Side(1, 5.0), event_time_us=5)
    late = p.publish(right, Side(1, 0.0), event_time_us=0)
    p.publish(right, Side(1, 5.0), event_time_us=5)
    assert (late.dropped, late.complete) == (1, False)
    assert [(e.value.left.v, e.value.right.v) for e in out] == [(5.0, 5.0)]
    assert taints_of(out[0]) == {Taint.DELIVERY_DROPPED}
    assert stats(g, node).counters["late"] == 1
    (mark,) = [w for w in query.watermarks(g) if w.node == node.name]
    assert (mark.late, mark.watermark_us) == (1, 5)


@pytest.mark.parametrize("join_class", list(JoinClass))
def test_every_pair_within_the_bound_of_inputs_on_time_comes_out(join_class):
    """An input at most within_us behind the watermark still pairs with every earlier value of the other side within within_us (nothing expired too early)."""
    g, left, right, p, node, out = join_graph(join_class, 2)
    # The right side first: lookup and mirror joins pair left values with what the right side holds.
    p.publish(right, Side(1, 0.0), event_time_us=0)
    p.publish(right, Side(1, 3.0), event_time_us=3)
    p.publish(left, Side(1, 1.0), event_time_us=1)   # 1 >= 3 - 2: on time
    got = sorted((e.value.left.v, e.value.right.v) for e in out)
    if join_class in (JoinClass.LOCAL, JoinClass.REPARTITION):
        assert got == [(1.0, 0.0), (1.0, 3.0)]
    elif join_class is JoinClass.LOOKUP:
        assert got == [(1.0, 3.0)]                    # the table holds the latest value per key
    else:
        assert got == [(1.0, 3.0)]                    # a keyed mirror keeps the latest per key
    assert stats(g, node).counters["late"] == 0


@pytest.mark.parametrize("join_class", [JoinClass.LOOKUP, JoinClass.BROADCAST_MIRROR])
def test_late_input_of_tables_and_mirrors_is_counted_too(join_class):
    """A right value behind the watermark by more than within_us does not replace newer state: it is late, counted and tainted."""
    g, left, right, p, node, out = join_graph(join_class, 2)
    p.publish(right, Side(1, 9.0), event_time_us=9)
    late = p.publish(right, Side(1, 1.0), event_time_us=1)
    p.publish(left, Side(1, 9.5), event_time_us=9)
    assert late.dropped == 1
    assert [(e.value.left.v, e.value.right.v, taints_of(e)) for e in out] == [(9.5, 9.0, {Taint.DELIVERY_DROPPED})]
    assert stats(g, node).counters["late"] == 1


# ---------------------------------------------------------------------- 2. time arithmetic


@pytest.mark.parametrize("join_class", list(JoinClass))
@pytest.mark.parametrize("times", [(-(2**63), 0), (2**63 - 1, -(2**63)), (-(2**62), 2**62), (2**62, -(2**62))])
def test_join_time_arithmetic_never_wraps(join_class, times):
    """Event times 2**63 or more apart never pair within 10 us, whatever the class (the distance is computed without wrapping)."""
    right_t, left_t = times
    g, left, right, p, node, out = join_graph(join_class, 10)
    p.publish(right, Side(1, 0.0), event_time_us=right_t)
    p.publish(left, Side(1, 0.0), event_time_us=left_t)
    assert out == []


def as_ref(events: list) -> list[ref.Out]:
    """Envelopes in the reference model's form: value, event time, taint names, parents' seqs."""
    return [ref.out(e.value, e.event_time_us, e.taint_names, [p.seq for p in e.parents]) for e in events]


def test_extreme_event_times_run_through_every_time_operator():
    """Event times -2**63, 0, 2**63-1, -2**63, 2**63-1 give exactly the reference model's windows (each once, at end - 1), rate-limited values and resequenced order."""
    g, x, p = float_graph()
    tw = g.time_window(x, width_us=10, slide_us=5, records=False, aggregate=Aggregate.COUNT)
    rl = g.rate_limit(x, max_events=1, interval_us=10)
    rs = g.resequence(x, delay_us=10, capacity=2)
    outs = {n: collect(g, n.output) for n in (tw, rl, rs)}
    times = (-(2**63), 0, 2**63 - 1, -(2**63), 2**63 - 1)
    for t in times:
        p.publish(x, 1.0, event_time_us=t)
    inputs = [ref.In(0, t, 1.0, seq) for seq, t in enumerate(times, start=1)]
    # The windows of -2**63 start before time: they end at -2**63 + 3 and + 8; the value at 2**63 - 1
    # is in windows that would end after the last microsecond, which never close.
    assert as_ref(outs[tw]) == ref.time_window(inputs, 10, 5, 0, "count")
    assert [e.event_time_us for e in outs[tw]] == [-(2**63) + 2, -(2**63) + 7, 4, 9]
    assert [e.event_time_us for e in outs[rl]] == [-(2**63), 0, 2**63 - 1]
    assert as_ref(outs[rl]) == ref.rate_limit(inputs, 1, 10)[0]
    assert [e.event_time_us for e in outs[rs]] == [-(2**63), 0]
    assert as_ref(outs[rs]) == ref.resequence(inputs, 10, 2)


@pytest.mark.parametrize("offset_us, want", [(3, [7, 12]), (0, [2, 7])])
def test_a_first_value_near_the_start_of_time_is_windowed_like_any_other(offset_us, want):
    """width 10, slide 5: a first value at -2**63 + 3 is not late and a first value at -2**63 goes into each of its two windows once; a value 1000 us later closes them, at the reference model's end - 1."""
    g, x, p = float_graph()
    node = g.time_window(x, width_us=10, slide_us=5, records=False, aggregate=Aggregate.COUNT)
    out = collect(g, node.output)
    first = p.publish(x, 1.0, event_time_us=-(2**63) + offset_us)
    p.publish(x, 1.0, event_time_us=-(2**63) + offset_us + 1_000)
    assert first.dropped == 0
    assert stats(g, node).counters["late"] == 0
    inputs = [ref.In(0, -(2**63) + offset_us, 1.0, 1), ref.In(0, -(2**63) + offset_us + 1_000, 1.0, 2)]
    assert as_ref(out) == ref.time_window(inputs, 10, 5, 0, "count")
    assert [(e.event_time_us + 2**63, e.value) for e in out] == [(w, 1.0) for w in want]


@pytest.mark.parametrize("width_us, slide_us", [(3, 1), (10, 5), (2**63 - 1, 2**63 - 1)])
def test_windows_that_start_before_time_start_at_its_first_microsecond(width_us, slide_us):
    """Windows that would start before -2**63 are emitted as the reference model says, each with start_us -2**63 (saturated), its exact end and exactly its own values as parents."""
    g, x, p = float_graph()
    out = collect(g, g.time_window(x, width_us=width_us, slide_us=slide_us, aggregate=Aggregate.COUNT).output)
    times = (-(2**63), -(2**63) + 1, -(2**63) + 1, 2**63 - 1)
    for t in times:
        p.publish(x, 1.0, event_time_us=t)
    want = ref.time_window([ref.In(0, t, 1.0, seq) for seq, t in enumerate(times, start=1)], width_us, slide_us, 0, "count")
    got = [(e.value.start_us, e.value.end_us, e.value.count, e.event_time_us, tuple(q.seq for q in e.parents)) for e in out]
    assert got == [(max(w.time_us + 1 - width_us, -(2**63)), w.time_us + 1, int(w.value), w.time_us, w.parents) for w in want]
    assert got[0][0] == -(2**63) and got[0][0] > got[0][1] - width_us


# ---------------------------------------------------------------------- 3. NaN


@pytest.mark.parametrize("aggregate", [Aggregate.MIN, Aggregate.MAX, Aggregate.SUM, Aggregate.MEAN])
def test_nan_in_a_window_gives_nan_never_an_invented_infinity(aggregate):
    """count_window(size=1) over [nan] is nan for min, max, sum and mean; max over [nan, inf] is nan too; count counts the NaN."""
    g, x, p = float_graph()
    one = collect(g, g.count_window(x, size=1, aggregate=aggregate).output)
    two = collect(g, g.count_window(x, size=2, step=2, aggregate=aggregate).output)
    count = collect(g, g.count_window(x, size=2, step=2, aggregate=Aggregate.COUNT).output)
    p.publish(x, math.nan)
    p.publish(x, math.inf)
    assert math.isnan(one[0].value) and one[1].value == math.inf
    assert math.isnan(two[0].value)
    assert count[0].value == 2.0


def test_a_time_window_with_a_nan_is_nan_and_the_next_window_is_clean():
    """A time window holding a NaN gives NaN for min and max; the next window without one is a number again."""
    g, x, p = float_graph()
    lo = collect(g, g.time_window(x, width_us=10, aggregate=Aggregate.MIN, records=False).output)
    hi = collect(g, g.time_window(x, width_us=10, aggregate=Aggregate.MAX, records=False).output)
    for t, v in ((1, 3.0), (2, math.nan), (3, -1.0), (12, 7.0), (25, 0.0)):
        p.publish(x, v, event_time_us=t)
    assert [math.isnan(e.value) for e in lo] == [True, False] and lo[1].value == 7.0
    assert [math.isnan(e.value) for e in hi] == [True, False] and hi[1].value == 7.0


def test_deadband_passes_nan_and_is_never_stuck():
    """deadband(band=1) over [nan, 1, 100, -50] passes all four: a move to or from NaN counts as a move."""
    g, x, p = float_graph()
    out = collect(g, g.deadband(x, band=1.0).output)
    for v in (math.nan, 1.0, 100.0, -50.0, -50.5, math.nan, math.nan, -50.5):
        p.publish(x, v)
    got = ["nan" if math.isnan(e.value) else e.value for e in out]
    assert got == ["nan", 1.0, 100.0, -50.0, "nan", "nan", -50.5]


@pytest.mark.parametrize("limit", [{"above": 1.0}, {"below": 1.0}, {"inside": (0.0, 2.0)}, {"outside": (0.0, 2.0)}])
def test_threshold_passes_nan_in_every_mode(limit):
    """No threshold can place NaN inside or outside its limits, so every mode passes it on rather than hide it."""
    g, x, p = float_graph()
    out = collect(g, g.threshold(x, **limit).output)
    p.publish(x, math.nan)
    assert len(out) == 1 and math.isnan(out[0].value)


def test_a_write_binding_report_of_nan_confirms_a_desired_nan():
    """NaN equals NaN when a write binding compares a report with the desired value: the write is confirmed, not stale forever."""
    g = Graph()
    ctl = g.producer("controller")
    fan = g.write_binding("fan", "climate", "speed", FLOAT, writers=[ctl])
    ctl.publish(fan.request, math.nan)
    g.producer("fan").publish(fan.reported, math.nan)
    assert taints_of(g.latest(fan.effective)) == set()


# ---------------------------------------------------------------------- 4. capacitor refuses


@pytest.mark.parametrize("overflow, error", [(Overflow.BLOCK, BackpressureError), (Overflow.REJECT, RejectedError)])
def test_a_blocking_or_rejecting_capacitor_refuses_the_publish(overflow, error):
    """capacity=1, publish 1 and 2: the second publish is refused (nothing recorded, the node named), counted as refused; after a discharge it goes through."""
    g = Graph()
    p = g.producer("p")
    x = g.route(Route.parse(X), FLOAT)
    cap = g.capacitor(x, capacity=1, overflow=overflow, name="cap")
    first = p.publish(x, 1.0)
    with pytest.raises(error, match="node cap"):
        p.publish(x, 2.0)
    assert (first.dropped, first.rejected) == (0, 0)
    assert g.latest(x).seq == 1
    counters = stats(g, cap).counters
    assert (counters["accepted"], counters["refused"], counters["rejected"], counters["dropped"]) == (1, 1, 0, 0)
    assert stats(g, cap).params["overflow"] == overflow.value
    cap.discharge()
    assert p.publish(x, 2.0).complete


# ---------------------------------------------------------------------- 5. rejects and the taint table


def test_a_refused_publish_loses_nothing_and_taints_nothing():
    """A full REJECT mailbox refuses the whole publish: no mailbox gets it, nothing is recorded, and later deliveries are clean."""
    g, x, p = float_graph()
    rejecting, other = [], []
    g.subscribe(x, rejecting.append, mailbox=Mailbox(1, Overflow.REJECT))
    g.subscribe(x, other.append, mailbox=Mailbox(4, Overflow.DROP_OLDEST))
    p.publish(x, 1.0)
    with pytest.raises(RejectedError):
        p.publish(x, 2.0)
    g.run_until_idle()
    p.publish(x, 3.0)
    g.run_until_idle()
    assert [(e.value, e.taint_names) for e in rejecting] == [(1.0, []), (3.0, [])]
    assert [(e.value, e.taint_names) for e in other] == [(1.0, []), (3.0, [])]
    assert g.latest(x).seq == 2


def test_an_item_a_reject_mailbox_cannot_take_inside_a_dispatch_is_counted_and_taints_the_next():
    """Two outputs of one dispatch reaching a REJECT mailbox with room for one: the second is rejected (no producer to refuse), in the receipt, and the next delivered item says delivery_dropped."""
    g, x, p = float_graph()
    both = g.merge([x, x])  # one publish, two outputs in one dispatch
    seen = []
    g.subscribe(both.output, seen.append, mailbox=Mailbox(1, Overflow.REJECT), name="rejecting")
    receipt = p.publish(x, 1.0)
    assert (receipt.rejected, receipt.complete) == (1, False)
    g.run_until_idle()
    assert [(e.value, e.taint_names) for e in seen] == [(1.0, ["delivery_dropped"])]
    (stats,) = g.mailbox_stats()
    assert stats.rejected == 1


# ---------------------------------------------------------------------- 6. misuse accepted silently


@pytest.mark.parametrize(
    "build, named",
    [
        (lambda g, x, y: g.join(x, y, join_class=JoinClass.LOCAL, key=None, left_key=lambda v: 1, right_key=lambda v: 1, within_us=-1, name="j"), "node j"),
        (lambda g, x, y: g.deadband(x, band=-1.0, name="d"), "node d"),
        (lambda g, x, y: g.deadband(x, band=math.nan, name="d"), "node d"),
        (lambda g, x, y: g.deadband(x, band=math.inf, name="d"), "node d"),
        (lambda g, x, y: g.threshold(x, inside=(5.0, 1.0), name="t"), "node t"),
        (lambda g, x, y: g.threshold(x, outside=(5.0, 1.0), name="t"), "node t"),
        (lambda g, x, y: g.threshold(x, above=math.nan, name="t"), "node t"),
        (lambda g, x, y: g.threshold(x, below=math.inf, name="t"), "node t"),
        (lambda g, x, y: g.scale(x, scale=math.nan, name="s"), "node s"),
        (lambda g, x, y: g.scale(x, offset=math.inf, name="s"), "node s"),
        (lambda g, x, y: g.route(Route.parse("read.logical.p.f.z.meta.v1"), FLOAT, retain=-1), "read.logical.p.f.z.meta.v1"),
        (lambda g, x, y: g.route(Route.parse("read.logical.p.f.z.meta.v1"), FLOAT, history=8, retain=4), "read.logical.p.f.z.meta.v1"),
        (lambda g, x, y: g.count_window(x, size=2**40, name="c"), "node c"),
        (lambda g, x, y: g.capacitor(x, capacity=2**40, name="c"), "node c"),
    ],
)
def test_misuse_is_refused_with_the_node_or_route_named(build, named):
    """Parameters that would never match, pass everything, or mean nothing are refused with OperatorConfigError naming the node or route."""
    g = Graph()
    x = g.route(Route.parse(X), FLOAT)
    y = g.route(Route.parse("read.logical.p.f.y.meta.v1"), FLOAT)
    with pytest.raises(OperatorConfigError, match=named.replace(".", r"\.")):
        build(g, x, y)


# ---------------------------------------------------------------------- 7. the right exception


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, 1.5, "5", True, 10**30])
def test_a_bad_event_time_is_a_graph_error_naming_the_route(bad):
    """event_time_us out of range or not an integer raises TimeError (a GraphError) naming the route, and nothing is published."""
    g = Graph()
    x = g.route(Route.parse(X), FLOAT)
    p = g.producer("p")
    with pytest.raises(TimeError, match=X.replace(".", r"\.")):
        p.publish(x, 1.0, event_time_us=bad)
    with pytest.raises(TimeError, match=X.replace(".", r"\.")):
        g.publish_guarded(x, 1.0, producer=p, not_before_us=bad)
    assert g.latest(x) is None and isinstance(TimeError("m"), GraphError)


@pytest.mark.parametrize("bad", [2**63, 1.5, "5", None])
def test_a_bad_clock_time_is_a_graph_error(bad):
    """advance_to and advance refuse times outside the 64-bit range or not integers with TimeError."""
    g = Graph()
    with pytest.raises(TimeError, match="advance"):
        g.advance_to(bad)
    with pytest.raises(TimeError, match="advance"):
        g.advance(bad)
    g.advance_to(2**63 - 1)
    with pytest.raises(TimeError, match="advance"):
        g.advance(1)


@pytest.mark.parametrize("args", [(2**70,), (0,), (1.5,), ("2",), (2, "bogus"), (2, None)])
def test_a_bad_mailbox_is_an_operator_config_error(args):
    """Mailbox(2**70), Mailbox(2, 'bogus') and friends raise OperatorConfigError saying what a mailbox takes."""
    with pytest.raises(OperatorConfigError, match="mailbox"):
        Mailbox(*args)



@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda g, p, x, node: g.latest(node), "node counted"),
        (lambda g, p, x, node: p.publish(node, 1.0), "node counted"),
        (lambda g, p, x, node: g.subscribe(node, print), "node counted"),
        (lambda g, p, x, node: g.count_window(node, size=1, aggregate=Aggregate.MIN), "node counted"),
        (lambda g, p, x, node: g.connect(x, node), "node counted"),
        (lambda g, p, x, node: g.replay(3), "got int 3"),
        (lambda g, p, x, node: g.latest(None), "got NoneType None"),
    ],
)
def test_a_node_or_other_object_where_a_route_belongs_is_a_route_error(call, named):
    """A node (or a number, or None) passed as a route raises RouteError naming it, never a bare TypeError."""
    g = Graph()
    p = g.producer("p")
    x = g.route(Route.parse(X), FLOAT)
    node = g.count_window(x, size=1, aggregate=Aggregate.MIN, name="counted")
    with pytest.raises(RouteError, match="expected a route") as caught:
        call(g, p, x, node)
    assert named in str(caught.value)


def test_a_route_name_is_taken_where_a_route_belongs():
    """Every route argument also takes the route's printed name, parsed and looked up like a Route."""
    g = Graph()
    p = g.producer("p")
    g.route(X, FLOAT)
    seen = []
    g.subscribe(X, lambda envelope: seen.append(envelope.value))
    p.publish(X, 2.5)
    assert seen == [2.5] and g.latest(X).value == 2.5


# ---------------------------------------------------------------------- 8. audit


def test_refused_publishes_are_audited_with_who_and_why():
    """A publish refused by a full mailbox names the producer in the audit; a publish refused by the schema check is audited too."""
    g, x, p = float_graph()
    g.subscribe(x, lambda e: None, mailbox=Mailbox(1, Overflow.BLOCK), name="slow")
    p.publish(x, 1.0)
    with pytest.raises(BackpressureError):
        p.publish(x, 2.0)
    with pytest.raises(SchemaCheckError):
        p.publish(x, "hot")
    refused = [(e.kind, e.who, e.detail) for e in query.route_audit(g, x).entries if e.kind == "refused"]
    assert refused[0][:2] == ("refused", "producer sensor") and "mailbox slow" in refused[0][2]
    assert refused[1][:2] == ("refused", "producer sensor") and "expected float" in refused[1][2]


def test_a_not_durable_link_adds_det_nonreplayable():
    """A link declared durable=False marks what crosses it det_nonreplayable (the taint table lists it)."""
    g, x, p = float_graph()
    y = g.route(route("far"), FLOAT)
    g.connect(x, y, link=LinkCapabilities(durable=False))
    p.publish(x, 1.0)
    assert taints_of(g.latest(y)) == {Taint.DET_NONREPLAYABLE}


# ---------------------------------------------------------------------- 9. what the docs now say


def test_a_count_window_first_emits_at_size_then_every_step():
    """count_window(size=3, step=2) emits at the 3rd value, then at the 5th, 7th, ...: each the aggregate of the last 3."""
    g, x, p = float_graph()
    out = collect(g, g.count_window(x, size=3, step=2, aggregate=Aggregate.SUM).output)
    for v in range(1, 9):
        p.publish(x, float(v), event_time_us=v * 10)
    assert [(e.value, e.event_time_us, [q.seq for q in e.parents]) for e in out] == [
        (6.0, 30, [1, 2, 3]), (12.0, 50, [3, 4, 5]), (18.0, 70, [5, 6, 7]),
    ]


def test_the_deadband_boundary_is_inclusive():
    """A move of exactly band passes (>=); a smaller one does not."""
    g, x, p = float_graph()
    out = collect(g, g.deadband(x, band=0.5).output)
    for v in (1.0, 1.25, 1.5, 1.99, 2.0):
        p.publish(x, v)
    assert [e.value for e in out] == [1.0, 1.5, 2.0]


def test_lineage_reaches_retain_and_replay_reads_history():
    """With history=2 and retain=4, replay gives the newest 2 envelopes, lineage still walks to the 4 retained, and older ancestors are reported missing."""
    g = Graph()
    x = g.route(Route.parse(X), FLOAT, history=2, retain=4)
    p = g.producer("p")
    total = g.count_window(x, size=6, aggregate=Aggregate.SUM)
    for v in range(6):
        p.publish(x, float(v))
    assert [e.seq for e in g.replay(x)] == [5, 6]
    lin = query.lineage(g, total.output)
    assert sorted(i.seq for i in lin.inputs) == [3, 4, 5, 6]
    assert sorted(m.seq for m in lin.missing) == [1, 2]
    with pytest.raises(OperatorConfigError, match="retain"):
        g.route(Route.parse("read.logical.p.f.w.meta.v1"), FLOAT, history=4, retain=2)


def test_a_full_resequencer_releases_early_and_says_so():
    """Past its capacity a resequencer releases its oldest event before the wait ended: counted in forced, the output marked sched_forced_close."""
    g, x, p = float_graph()
    node = g.resequence(x, delay_us=1_000, capacity=2)
    out = collect(g, node.output)
    for t in (30, 10, 20):
        p.publish(x, float(t), event_time_us=t)
    assert [(e.value, e.taint_names) for e in out] == [(10.0, ["order_resequenced", "sched_forced_close"])]
    assert stats(g, node).counters["forced"] == 1


def test_when_block_and_reject_mailboxes_are_both_full_reject_wins():
    """A publish reaching a full BLOCK and a full REJECT mailbox raises RejectedError (whatever their order), and both count the refusal."""
    for order in ((Overflow.BLOCK, Overflow.REJECT), (Overflow.REJECT, Overflow.BLOCK)):
        g, x, p = float_graph()
        for i, overflow in enumerate(order):
            g.subscribe(x, lambda e: None, mailbox=Mailbox(1, overflow), name=f"m{i}")
        p.publish(x, 1.0)
        with pytest.raises(RejectedError, match="rejects"):
            p.publish(x, 2.0)
        counts = {m.name: (m.overflow, m.blocked, m.rejected) for m in g.mailbox_stats()}
        assert sorted(counts.values()) == sorted([("block", 1, 0), ("reject", 0, 1)])


def test_a_report_equal_to_an_expired_desired_value_is_a_late_confirmation():
    """After the retries ran out, a report equal to the desired value confirms it late: effective carries sched_expired (the first after the expiry) but no coherence taint, and the binding is coherent again."""
    from manyfold.graph import Idempotency

    g = Graph()
    ctl = g.producer("controller")
    fan = g.write_binding("fan", "climate", "speed", FLOAT, retry_max=1, retry_interval_us=100, idempotency=Idempotency.ABSOLUTE_VALUE, writers=[ctl])
    ctl.publish(fan.request, 80.0)
    g.advance_to(1_000)  # a retry at 100, then expired at 200
    g.producer("fan").publish(fan.reported, 80.0)
    assert g.latest(fan.effective).taint_names == ["sched_expired"]
    g.producer("fan").publish(fan.reported, 80.0)
    assert g.latest(fan.effective).taint_names == []
    counters = stats(g, fan.node).counters
    assert (counters["failures"], counters["late_confirmations"], counters["unmatched_echoes"]) == (1, 1, 0)
