"""Property tests: every operator of the local graph against the reference model in
``refmodel.py`` (written from the docs, independent of the runtime), on generated inputs with
bursts, gaps, late and reordered event times, repeats, NaN and infinities; and every public entry
point against bad arguments (each refusal is a GraphError). Hypothesis runs derandomized (the
same examples on every run), a few seconds per test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refmodel as ref
from refmodel import In, Side

from manyfold.graph import (
    FLOAT,
    INT,
    Aggregate,
    Graph,
    GraphError,
    JoinClass,
    Mailbox,
    Overflow,
    Route,
    schema,
)

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SRC = "read.logical.src.prop.x.meta.v1"
AGGREGATES = [a.value for a in Aggregate]

# Mostly a few nearby quarters (repeats, exact band and limit distances), some far values, and
# the values with rules of their own.
values = st.one_of(
    st.integers(-8, 8).map(lambda v: v / 4),
    st.integers(-8, 8).map(lambda v: v / 4),
    st.integers(-400, 400).map(lambda v: v / 4),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.5]),
)
step = st.tuples(st.sampled_from([0, 0, 1, 7, 50, 99, 100, 250, 1_000]), st.sampled_from([0, 0, 0, 1, 30, 120, 600]), values)


def inputs_of(steps) -> list[In]:
    """Inputs from (clock step, lag, value): the clock only moves forward; event times lag it."""
    clock, out = 0, []
    for seq, (dclock, lag, value) in enumerate(steps, start=1):
        clock += dclock
        out.append(In(clock, clock - lag, value, seq))
    return out


def run(build, inputs: list[In], end_us: int | None = None) -> tuple[list[tuple[int, ref.Out]], list]:
    """Runs the operator ``build(g, source)`` (returning {name: route}) over ``inputs``: the
    clock advances to each input's time, then it is published. Returns (clock, output) for
    every output in order, and the receipts."""
    g = Graph()
    source = g.route(Route.parse(SRC), FLOAT)
    routes = build(g, source)
    seen: list = []
    for name, r in routes.items():
        g.subscribe(r, lambda e, name=name: seen.append((name, e)))
    producer = g.producer("src")
    receipts = []
    for i in inputs:
        g.advance_to(i.clock_us)
        receipts.append(producer.publish(source, i.value, event_time_us=i.time_us))
    g.advance_to(end_us if end_us is not None else (inputs[-1].clock_us if inputs else 0))
    outs = [(e.ingest_time_us, ref.out(e.value, e.event_time_us, e.taint_names, [p.seq for p in e.parents], name)) for name, e in seen]
    return outs, receipts


def outputs(build, inputs, end_us=None) -> list[ref.Out]:
    return [o for _, o in run(build, inputs, end_us)[0]]


# ---------------------------------------------------------------------- scalar operators


@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from([1.0, -0.5, 0.0, 3.0]), st.sampled_from([0.0, -273.15, 12.5]))
def test_scale_matches_the_reference(steps, factor, offset):
    """scale emits value * scale + offset for every input (NaN in, NaN out), keeping its event time and parent."""
    inputs = inputs_of(steps)
    build = lambda g, s: {"out": g.scale(s, scale=factor, offset=offset).output}
    assert outputs(build, inputs) == ref.scale(inputs, factor, offset)


@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from(["above", "below", "inside", "outside"]), st.integers(-4, 4), st.integers(0, 4))
def test_threshold_matches_the_reference(steps, mode, low, width):
    """threshold passes what its mode accepts (strict above/below, inclusive inside) and every NaN."""
    inputs = inputs_of(steps)
    low, high = low / 2, (low + width) / 2
    limit = {"above": low, "below": low, "inside": (low, high), "outside": (low, high)}[mode]
    build = lambda g, s: {"out": g.threshold(s, **{mode: limit}).output}
    assert outputs(build, inputs) == ref.threshold(inputs, mode, low, high)


@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from([0.0, 0.25, 0.5, 1.0, 50.0]))
def test_deadband_matches_the_reference(steps, band):
    """deadband passes a value that moved at least band (inclusive) from the last one passed, and every move to or from NaN."""
    inputs = inputs_of(steps)
    assert outputs(lambda g, s: {"out": g.deadband(s, band=band).output}, inputs) == ref.deadband(inputs, band)


@PROPERTY
@given(st.lists(step, max_size=30))
def test_map_filter_and_merge_match_the_reference(steps):
    """map applies its function, filter passes what its predicate accepts, merge interleaves in arrival order: each with its input as parent and its event time."""
    inputs = inputs_of(steps)

    def build(g, s):
        doubled = g.map(s, lambda v: v * 2, name="doubled")
        positive = g.filter(s, lambda v: v > 0, name="positive")
        return {"both": g.merge([doubled.output, positive.output], name="both").output}

    got = outputs(build, inputs)
    want = []
    for i in inputs:
        want.append(ref.out(i.value * 2, i.time_us, (), (i.seq,), "both"))
        if i.value > 0:
            want.append(ref.out(i.value, i.time_us, (), (i.seq,), "both"))
    # Merge outputs name the map's or filter's envelopes: compare values, times and taints.
    assert [(o.value, o.time_us, o.taints) for o in got] == [(o.value, o.time_us, o.taints) for o in want]


# ---------------------------------------------------------------------- windows


@PROPERTY
@given(st.lists(step, max_size=40), st.integers(1, 5), st.integers(1, 5), st.sampled_from(AGGREGATES))
def test_count_window_matches_the_reference(steps, size, step_, agg):
    """A count window first emits at the size-th value, then every step values, the aggregate of its last size values (NaN in, NaN out)."""
    step_ = min(step_, size)
    inputs = inputs_of(steps)
    build = lambda g, s: {"out": g.count_window(s, size=size, step=step_, aggregate=Aggregate(agg)).output}
    assert outputs(build, inputs) == ref.count_window(inputs, size, step_, agg)


@PROPERTY
@given(
    st.lists(step, max_size=50),
    st.sampled_from([(100, 100), (100, 50), (300, 100), (90, 30), (1, 1)]),
    st.sampled_from([0, 0, 40, 250]),
    st.sampled_from(AGGREGATES),
)
def test_event_time_window_matches_the_reference(steps, geometry, lateness, agg):
    """Event-time windows close when the watermark passes their end; a value missing from a closed window is late (counted, the next result tainted); results carry end - 1 and their values as parents."""
    width, slide = geometry
    inputs = inputs_of(steps)
    g_node = {}

    def build(g, s):
        node = g.time_window(s, width_us=width, slide_us=slide, lateness_us=lateness, aggregate=Aggregate(agg), records=False)
        g_node["g"], g_node["node"] = g, node
        return {"out": node.output}

    want = ref.time_window(inputs, width, slide, lateness, agg)
    assert outputs(build, inputs) == want
    counters = next(n for n in g_node["g"].node_stats() if n.name == g_node["node"].name).counters
    assert counters["forced"] == 0


@PROPERTY
@given(
    st.lists(step, max_size=40),
    st.sampled_from([(3, 1), (1, 1), (100, 50), (90, 30), (2**63 - 1, 2**63 - 1)]),
    st.sampled_from([-(2**63), -(2**63) + 3, 2**63 - 60_000]),
)
def test_event_time_windows_at_the_ends_of_time_match_the_reference(steps, geometry, base):
    """Near -2**63 (windows that start before time) and 2**63 - 1 (windows that would end after it never close), event-time windows give exactly the reference model's results, late values and parents."""
    width, slide = geometry
    inputs = [In(i.clock_us, min(max(base + i.time_us, -(2**63)), 2**63 - 1), i.value, i.seq) for i in inputs_of(steps)]
    build = lambda g, s: {"out": g.time_window(s, width_us=width, slide_us=slide, aggregate=Aggregate.COUNT, records=False).output}
    assert outputs(build, inputs) == ref.time_window(inputs, width, slide, 0, "count")


@PROPERTY
@given(st.lists(step, max_size=40), st.integers(1, 3), st.sampled_from([1, 100, 1_000]))
def test_rate_limit_matches_the_reference(steps, max_events, interval):
    """The token bucket on event time passes bursts of max_events, refilled at max_events per interval; each drop is in its receipt, and the next value through says delivery_sampled."""
    inputs = inputs_of(steps)
    got, receipts = run(lambda g, s: {"out": g.rate_limit(s, max_events=max_events, interval_us=interval).output}, inputs)
    want, dropped = ref.rate_limit(inputs, max_events, interval)
    assert [o for _, o in got] == want
    assert [r.dropped for r in receipts] == dropped


# ---------------------------------------------------------------------- clock-driven operators


CLOCKED = {
    "resistor": (lambda g, s, n: g.resistor(s, min_interval_us=n), ref.resistor),
    "sample": (lambda g, s, n: g.sample(s, period_us=n), ref.sample),
}


@pytest.mark.parametrize("kind", sorted(CLOCKED))
@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from([1, 10, 50, 100, 1_000]))
def test_clock_driven_operators_match_the_reference(kind, steps, interval):
    """resistor: at most one output per interval of clock time, early values held (the newest replacing older ones, coalesced) and released at last output + interval. sample: the latest value of each batch at the next multiple of the period after its first value, naming the whole batch, coalesced when it held several."""
    build, model = CLOCKED[kind]
    inputs = inputs_of(steps)
    end = (inputs[-1].clock_us if inputs else 0) + 10 * interval
    got, _ = run(lambda g, s: {"out": build(g, s, interval).output}, inputs, end)
    assert got == model(inputs, interval, end)


@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from([0, 1, 99, 250, 1_000]))
def test_actuator_matches_the_reference(steps, apply_us):
    """One pending write applies apply_us after its batch's first desired value (reported, then effective, at that time); meanwhile every desired value re-emits the setting in effect, write-pending."""
    inputs = inputs_of(steps)
    end = (inputs[-1].clock_us if inputs else 0) + apply_us

    def build(g, s):
        reported = g.route(Route.parse("read.logical.dev.prop.reported.meta.v1"), FLOAT)
        effective = g.route(Route.parse("read.logical.dev.prop.effective.meta.v1"), FLOAT)
        g.actuator(s, reported=reported, effective=effective, apply_us=apply_us)
        return {"reported": reported, "effective": effective}

    got, _ = run(build, inputs, end)
    assert got == ref.actuator(inputs, apply_us, end)


# ---------------------------------------------------------------------- buffers


buffer_ops = st.lists(st.one_of(st.tuples(st.just("publish"), values), st.tuples(st.just("release"), st.one_of(st.none(), st.integers(0, 4)))), max_size=40)


def publish_all(ops, producer, source, release) -> list[str]:
    """Publishes each ("publish", value) op and calls ``release(count)`` for the others; returns
    "ok", "dropped" or "refused" per publish."""
    results = []
    for op in ops:
        if op[0] != "publish":
            release(op[1])
            continue
        try:
            receipt = producer.publish(source, op[1], event_time_us=0)
        except GraphError:
            results.append("refused")
        else:
            results.append("dropped" if receipt.dropped else "ok")
    return results


@PROPERTY
@given(buffer_ops, st.integers(1, 4), st.sampled_from([o.value for o in Overflow]))
def test_capacitor_matches_the_reference(ops, capacity, overflow):
    """A capacitor holds up to capacity values and releases the oldest on demand; drop policies lose values (counted, the next release tainted), block and reject refuse the publish (nothing recorded)."""
    g = Graph()
    source = g.route(Route.parse(SRC), FLOAT)
    node = g.capacitor(source, capacity=capacity, overflow=Overflow(overflow))
    seen: list = []
    g.subscribe(node.output, seen.append)
    results = publish_all(ops, g.producer("src"), source, node.discharge)
    want, want_results = ref.buffer(ops, capacity, overflow)
    assert results == want_results
    assert [(e.parents[0].seq, ref.norm(e.value), tuple(e.taint_names)) for e in seen] == want


@PROPERTY
@given(st.lists(step, max_size=40), st.sampled_from([0, 1, 100, 600]), st.integers(1, 4))
def test_resequence_matches_the_reference(steps, delay, capacity):
    """A resequencer releases in event-time order once the watermark passes; over capacity it releases the oldest early (sched_forced_close); older than what was released is late (dropped, tainted)."""
    inputs = inputs_of(steps)
    assert outputs(lambda g, s: {"out": g.resequence(s, delay_us=delay, capacity=capacity).output}, inputs) == ref.resequence(inputs, delay, capacity)


@PROPERTY
@given(buffer_ops, st.integers(1, 4), st.sampled_from([o.value for o in Overflow]))
def test_mailboxes_match_the_reference(ops, capacity, overflow):
    """A mailbox delivers in order when the scheduler runs (here: a release of any count delivers everything due); drop policies lose items (in the receipt, the next delivery tainted); block and reject refuse the publish, losing and tainting nothing."""
    g = Graph()
    source = g.route(Route.parse(SRC), FLOAT)
    seen: list = []
    g.subscribe(source, seen.append, mailbox=Mailbox(capacity, Overflow(overflow)))
    results = publish_all(ops, g.producer("src"), source, lambda _count: g.run_until_idle())
    g.run_until_idle()
    runs = [("release", None) if op[0] != "publish" else op for op in ops] + [("release", None)]
    want, want_results = ref.buffer(runs, capacity, overflow)
    assert results == want_results
    assert [(e.seq, ref.norm(e.value), tuple(e.taint_names)) for e in seen] == want


binding_ops = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from([1.0, 2.0, math.nan])),
        st.tuples(st.just("report"), st.sampled_from([1.0, 2.0, math.nan])),
        st.just(("ack",)),
        st.tuples(st.just("wait"), st.sampled_from([0, 40, 100, 250, 1_000])),
    ),
    max_size=30,
)


@PROPERTY
@given(binding_ops, st.sampled_from([0, 1, 1, 2]), st.sampled_from([50, 100]))
def test_write_binding_matches_the_reference(ops, retry_max, interval):
    """A write binding sends desired (write-pending) and retries it every interval without an ack or a matching report, then expires it; effective says stale, unmatched, expired or (for a report equal to what it asked, even after expiry) nothing."""
    from manyfold.graph import Idempotency

    g = Graph()
    ctl, device = g.producer("controller"), g.producer("fan")
    fan = g.write_binding("fan", "climate", "speed", FLOAT, retry_max=retry_max, retry_interval_us=interval, idempotency=Idempotency.ABSOLUTE_VALUE, writers=[ctl])
    seen: list = []
    g.subscribe(fan.desired, lambda e: seen.append(("desired", ref.norm(e.value), tuple(sorted(e.taint_names)))))
    g.subscribe(fan.effective, lambda e: seen.append(("effective", ref.norm(e.value), tuple(sorted(e.taint_names)))))
    for op in ops:
        if op[0] == "request":
            ctl.publish(fan.request, op[1])
        elif op[0] == "report":
            device.publish(fan.reported, op[1])
        elif op[0] == "ack":
            device.publish(fan.ack, 1)
        else:
            g.advance(op[1])
    assert seen == ref.write_binding(ops, retry_max, interval)


@PROPERTY
@given(st.lists(st.integers(0, (1 << 24) - 1), max_size=20), st.sets(st.sampled_from(["order_possibly_out_of_order", "delivery_dropped", "time_estimated", "det_nonreplayable"]), max_size=2))
def test_repair_matches_the_reference(bits, adds):
    """A repair clears what it has a proof for and adds what it declares; everything else passes through, the absorbing det_nonreplayable included."""
    from manyfold.graph import Taint, taints_from_bits

    g = Graph()
    source = g.route(Route.parse(SRC), FLOAT)
    clears = [Taint.ORDER_POSSIBLY_OUT_OF_ORDER, Taint.DELIVERY_DROPPED]
    node = g.repair(source, clears=clears, adds=[Taint(a) for a in adds], proof="checked upstream")
    seen: list = []
    g.subscribe(node.output, seen.append)
    producer = g.producer("src")
    valid = sum(1 << t.bit for t in Taint)
    for b in bits:
        producer.publish(source, 1.0, taint_bits=b & valid)
    want = [sorted(({t.value for t in taints_from_bits(b & valid)} - {c.value for c in clears}) | set(adds)) for b in bits]
    assert [sorted(e.taint_names) for e in seen] == want


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 64)), max_size=25))
def test_open_payloads_opens_exactly_what_reaches_it(frames):
    """open_payloads behind a filter opens the payload of every frame the filter passes and of no other, emits its bytes, and payload demand counts each open and byte once."""
    import hashlib

    from manyfold import query
    from manyfold.graph import BYTES, Layer, Plane, Variant

    g = Graph()
    camera = g.route(Route(Plane.READ, Layer.BULK, "cam", "prop", "frame", Variant.PAYLOAD), INT)
    wanted = g.filter(camera, lambda zone: zone == 0, name="zone0")
    opened = g.open_payloads(wanted.output, name="opener")
    seen: list = []
    g.subscribe(opened.output, seen.append)
    cam = g.producer("cam")
    for zone, size in frames:
        data = bytes([zone]) * size
        cam.publish_lazy(camera, zone, length=size, sha256=hashlib.sha256(data).digest(), open=lambda d=data: d)
    want = [bytes([0]) * size for zone, size in frames if zone == 0]
    assert [e.value for e in seen] == want
    demand = query.payload_demand(g, camera)
    assert (demand.metadata_events, demand.opens, demand.bytes_materialized) == (len(frames), len(want), sum(map(len, want)))
    assert g.schema_of(opened.output) == BYTES


# ---------------------------------------------------------------------- joins


@schema()
@dataclass(frozen=True)
class Keyed:
    key: int
    v: float


side = st.tuples(st.sampled_from([0, 0, 1, 5, 20]), st.sampled_from([0, 0, 0, 2, 9, 40]), st.integers(0, 1), st.integers(0, 2))


@PROPERTY
@given(st.lists(side, max_size=40), st.sampled_from(["local", "repartition", "lookup", "broadcast_mirror"]), st.sampled_from([None, 0, 3, 10]), st.integers(1, 3))
def test_joins_match_the_reference(sides, join_class, within, capacity):
    """Every join class pairs what its plan says within the bound; late input, evictions and refusals are counted, in the receipt and taint the next pair; expired values go silently (they could pair with nothing on time)."""
    g = Graph()
    left = g.route(Route.parse("read.logical.src.prop.left.meta.v1"), Keyed)
    right = g.route(Route.parse("read.logical.src.prop.right.meta.v1"), Keyed)
    node = g.join(left, right, join_class=JoinClass(join_class), key="key", within_us=within, capacity=capacity)
    seen: list = []
    g.subscribe(node.output, seen.append)
    producer = g.producer("src")
    clock, seqs, inputs, dropped = 0, [0, 0], [], []
    for dclock, lag, port, key in sides:
        clock += dclock
        seqs[port] += 1
        inputs.append(Side(clock, clock - lag, port, key, float(len(inputs)), seqs[port]))
        receipt = producer.publish(right if port else left, Keyed(key, float(len(inputs) - 1)), event_time_us=clock - lag)
        dropped.append(receipt.dropped)
    want, counters = ref.join(inputs, join_class, within, capacity)
    got = [(e.parents[0].seq, e.parents[1].seq, e.event_time_us, tuple(e.taint_names)) for e in seen]
    assert got == want
    stats = next(n for n in g.node_stats() if n.name == node.name).counters
    assert {k: stats[k] for k in counters} == counters
    assert sum(dropped) == counters["late"] + counters["evicted"] + counters["refused"]


# ---------------------------------------------------------------------- misuse


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.sampled_from([b"x", [], (1, 2), {}, object()]),
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(17)), garbage, garbage)
def test_every_misuse_is_a_graph_error(entry, a, b):
    """Arguments of the wrong type or out of range, at any public entry point, are either accepted or refused with a GraphError subclass: never a bare TypeError, ValueError or OverflowError, never a crash."""
    g = Graph()
    x = g.route(Route.parse(SRC), FLOAT)
    p = g.producer("src")
    calls = [
        lambda: p.publish(x, 1.0, event_time_us=a),
        lambda: p.publish(x, 1.0, clock_domain=a, taint_bits=b),
        lambda: p.publish(x, 1.0, timeout_s=a),
        lambda: g.publish_guarded(x, 1.0, producer=p, not_before_us=a, expires_at_us=b),
        lambda: g.publish_guarded(x, 1.0, producer=p, not_before_epoch=a),
        lambda: g.advance_to(a),
        lambda: g.advance(a),
        lambda: Mailbox(a, b),
        lambda: g.route(Route.parse("read.logical.src.prop.y.meta.v1"), FLOAT, history=a, retain=b),
        lambda: Graph(gated_max=a),
        lambda: g.count_window(x, size=a, step=b),
        lambda: g.time_window(x, width_us=a, slide_us=b),
        lambda: g.join(x, x, join_class=JoinClass.LOCAL, key=lambda v: 1, within_us=a, capacity=b),
        lambda: g.deadband(x, band=a),
        lambda: g.threshold(x, inside=(a, b)),
        lambda: g.capacitor(x, capacity=a, overflow=b).discharge(a),
        lambda: g.rate_limit(x, max_events=a, interval_us=b),
    ]
    try:
        calls[entry]()
    except GraphError:
        pass
