"""Taints: real sources, exact propagation, proven repairs, absorbing taints."""

from __future__ import annotations

import pytest
from graphkit import collect, float_graph, route

from manyfold import query
from manyfold.graph import (
    FLOAT,
    Aggregate,
    Graph,
    JoinClass,
    Layer,
    LinkCapabilities,
    Mailbox,
    OperatorConfigError,
    Overflow,
    Plane,
    Route,
    Taint,
    TaintDomain,
    TimeSource,
    taints_of,
)


def names(envelope) -> set[str]:
    return {t.value for t in taints_of(envelope)}


def test_python_taints_match_the_core_bits():
    """Every Python Taint has the same bit and name as the Rust core."""
    g, temp, p = float_graph()
    for taint in Taint:
        p.publish(temp, 1.0, taint_bits=1 << taint.bit)
        e = g.latest(temp)
        assert e.taint_names == [taint.value]
        assert taints_of(e) == {taint}
    assert Taint.DET_NONREPLAYABLE.absorbing and not Taint.DELIVERY_DROPPED.absorbing
    assert {t.domain for t in Taint} == set(TaintDomain)
    assert Taint.SCHED_GATED.domain is TaintDomain.SCHEDULING


def test_mailbox_drop_adds_delivery_taint_downstream():
    """A mailbox overflow taints the next delivered item and everything derived from it."""
    g, temp, p = float_graph()
    copy = g.route(route("copy"), FLOAT)
    g.connect(temp, copy, mailbox=Mailbox(2, Overflow.DROP_OLDEST))
    avg = g.moving_average(copy, 2)
    for v in range(4):
        p.publish(temp, float(v))
    g.run_until_idle()
    assert [names(e) for e in g.replay(copy)] == [{"delivery_dropped"}, set()]
    assert names(g.latest(avg.output)) == {"delivery_dropped"}


def test_full_epoch_hold_drops_taints_and_is_named():
    """A full epoch hold drops its oldest items; the first release carries delivery_dropped and
    the taint query names the hold as its origin."""
    g, temp, p = float_graph()
    copy = g.route(route("copy"), FLOAT, retain=8192)
    g.connect(temp, copy, epoch_boundary=True, name="next_epoch")
    p.publish_many(temp, [float(v) for v in range(4098)])
    g.advance_epoch()
    first, second = g.envelope(copy, 1), g.envelope(copy, 2)
    assert (first.value, names(first)) == (2.0, {"delivery_dropped"})
    assert names(second) == set() and g.latest(copy).seq == 4096
    (found,) = query.taints(g, copy)
    assert query.TaintOrigin(Taint.DELIVERY_DROPPED, "epoch_hold", "next_epoch_in") in found.added


def test_processing_time_window_adds_time_and_determinism_taints():
    """A processing-time window's results carry time_processing and det_processing_clock."""
    g, temp, p = float_graph()
    w = g.time_window(temp, width_us=100, time=TimeSource.PROCESSING)
    p.publish(temp, 1.0)
    g.advance(100)
    assert names(g.latest(w.output)) == {"time_processing", "det_processing_clock"}


def test_unordered_link_then_resequencer_repairs_with_proof():
    """An unordered link adds order_possibly_out_of_order; a resequencer clears it (naming its
    proof) and adds order_resequenced."""
    g, temp, p = float_graph()
    linked = g.route(route("linked"), FLOAT)
    g.connect(temp, linked, link=LinkCapabilities(ordered=False), name="radio")
    ordered = g.resequence(linked, delay_us=10, name="reorder")
    out = collect(g, ordered.output)
    for t in (5, 1, 3, 20):
        p.publish(temp, float(t), event_time_us=t)
    assert names(g.latest(linked)) == {"order_possibly_out_of_order"}
    assert [e.value for e in out] == [1.0, 3.0, 5.0]
    assert all(names(e) == {"order_resequenced"} for e in out)
    (answer,) = query.taints(g, ordered.output)
    assert answer.taints == {Taint.ORDER_RESEQUENCED}
    assert [(o.taint, o.kind, o.name) for o in answer.added] == [(Taint.ORDER_RESEQUENCED, "node", "reorder")]
    (repair,) = answer.repaired
    assert (repair.taint, repair.name) == (Taint.ORDER_POSSIBLY_OUT_OF_ORDER, "reorder")
    assert "event time" in repair.proof
    (linked_answer,) = query.taints(g, linked)
    assert [(o.kind, o.name) for o in linked_answer.added] == [("link", "radio")]


def test_link_capabilities_map_to_taints():
    """Each capability a link lacks becomes its taint on every envelope crossing it."""
    g, temp, p = float_graph()
    far = g.route(route("far"), FLOAT)
    g.connect(temp, far, link=LinkCapabilities(ordered=True, reliable=False, authenticated=False))
    p.publish(temp, 1.0)
    assert names(g.latest(far)) == {"delivery_dropped", "trust_unverified"}


def test_ephemeral_routes_are_non_replayable_and_absorbing():
    """Ephemeral routes stamp det_nonreplayable, and no repair may clear it."""
    g = Graph()
    eph = g.route(Route(Plane.READ, Layer.EPHEMERAL, "sensor", "env", "blip"), FLOAT)
    avg = g.moving_average(eph, 1)
    g.producer("sensor").publish(eph, 1.0)
    assert names(g.latest(avg.output)) == {"det_nonreplayable"}
    with pytest.raises(OperatorConfigError, match="absorbing"):
        g.repair(avg.output, clears=[Taint.DET_NONREPLAYABLE], proof="trust me")
    (answer,) = query.taints(g, avg.output)
    assert [(o.kind, o.name) for o in answer.added] == [("route", str(eph))]


def test_repair_needs_a_proof_and_a_taint():
    """A repair without a proof, or clearing nothing, is refused."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError, match="proof"):
        g.repair(temp, clears=[Taint.DELIVERY_DUPLICATED], proof=" ")
    with pytest.raises(OperatorConfigError, match="at least one"):
        g.repair(temp, clears=[], proof="nothing")


def test_repair_clears_what_it_proves():
    """A dedupe-style repair clears delivery_duplicated and keeps the other taints."""
    g, temp, p = float_graph()
    fixed = g.repair(temp, clears=[Taint.DELIVERY_DUPLICATED], proof="deduplicated by sequence number")
    p.publish(temp, 1.0, taint_bits=(1 << Taint.DELIVERY_DUPLICATED.bit) | (1 << Taint.TRUST_UNVERIFIED.bit))
    assert names(g.latest(fixed.output)) == {"trust_unverified"}


@pytest.mark.parametrize(
    "build",
    [
        lambda g, s: g.map(s, lambda v: v * 2),
        lambda g, s: g.filter(s, lambda v: True),
        lambda g, s: g.merge([s]),
        lambda g, s: g.count_window(s, size=1),
        lambda g, s: g.count_window(s, size=1, key=lambda v: "k"),
        lambda g, s: g.rate_limit(s, max_events=10, interval_us=1),
        lambda g, s: g.deadband(s, band=0.0),
        lambda g, s: g.threshold(s, above=-1.0),
        lambda g, s: g.scale(s, scale=2.0),
        lambda g, s: g.resequence(s, delay_us=0),
        lambda g, s: g.connect(s, g.route(route("fwd"), FLOAT)),
    ],
)
def test_taints_survive_every_operator(build):
    """An input taint reaches the output of every operator (fluent pipelines included)."""
    g, temp, p = float_graph()
    node = build(g, temp)
    p.publish(temp, 1.0, taint_bits=1 << Taint.TRUST_UNVERIFIED.bit, event_time_us=0)
    p.publish(temp, 2.0, taint_bits=1 << Taint.TRUST_UNVERIFIED.bit, event_time_us=1)
    g.advance(10)
    assert Taint.TRUST_UNVERIFIED in taints_of(g.latest(node.output))


def test_taints_survive_windows_joins_and_buffers():
    """Time windows, joins, capacitors and resistors keep their inputs' taints."""
    g, temp, p = float_graph()
    other = g.route(route("other"), FLOAT)
    window = g.time_window(temp, width_us=10, aggregate=Aggregate.SUM)
    join = g.join(temp, other, join_class=JoinClass.LOOKUP, key=lambda v: 1)
    cap = g.capacitor(temp, capacity=4)
    res = g.resistor(temp, min_interval_us=5)
    bits = 1 << Taint.TRUST_UNVERIFIED.bit
    p.publish(other, 1.0)
    p.publish(temp, 1.0, taint_bits=bits, event_time_us=1)
    p.publish(temp, 2.0, event_time_us=20)
    cap.discharge()
    for node in (window, join, cap, res):
        assert Taint.TRUST_UNVERIFIED in taints_of(g.replay(node.output)[0]), node.kind


def test_the_taint_source_table_names_every_taint():
    """docs/observability.md's table of taint sources lists every taint, so none has an undocumented source."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    table = text[text.index("| source | taint |"):text.index("```python", text.index("| source | taint |"))]
    missing = [t.value for t in Taint if f"`{t.value}`" not in table]
    assert missing == []
