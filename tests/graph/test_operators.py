"""The built-in per-value operators of the local graph: map, filter, merge, rate limiter,
capacitor, resistor, deadband, threshold and scale, with their lineage, taints, counters and
configuration errors. Everything runs on a virtual clock; time only moves through ``advance``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from graphkit import collect, float_graph, route, stats

from manyfold.graph import (
    FLOAT,
    INT,
    TEXT,
    BackpressureError,
    EnvelopeId,
    Graph,
    Mailbox,
    OperatorConfigError,
    OperatorError,
    Overflow,
    RejectedError,
    SchemaCheckError,
    SchemaMismatchError,
    schema,
)


@schema()
@dataclass(frozen=True)
class Reading:
    zone: str
    celsius: float










# ---------------------------------------------------------------------- map


def test_map_applies_the_callable_and_names_the_input_as_parent():
    """map emits fn(value) for each input, with the input as sole parent, its event time, and the node as producer."""
    g, temp, sensor = float_graph()
    node = g.map(temp, lambda c: c * 9 / 5 + 32)
    out = collect(g, node.output)
    for i, c in enumerate((0.0, 100.0, -40.0)):
        sensor.publish(temp, c, event_time_us=1_000 + i)
    assert [e.value for e in out] == [32.0, 212.0, -40.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 1)], [EnvelopeId(temp, 2)], [EnvelopeId(temp, 3)]]
    assert [str(e.parents[0]) for e in out] == [f"{temp}@{n}" for n in (1, 2, 3)]
    assert [e.event_time_us for e in out] == [1_000, 1_001, 1_002]
    assert [e.seq for e in out] == [1, 2, 3]
    assert all(e.producer == ("node", node.name) for e in out)
    assert all(e.taint_names == [] for e in out)
    assert stats(g, node).processed == 3 and stats(g, node).emitted == 3


def test_map_to_another_schema_emits_values_of_that_schema():
    """map(schema=INT) turns floats into ints, and the output route carries the INT schema."""
    g, temp, sensor = float_graph()
    node = g.map(temp, lambda c: round(c * 10), schema=INT)
    out = collect(g, node.output)
    sensor.publish(temp, 21.5)
    sensor.publish(temp, -0.25)
    assert [e.value for e in out] == [215, -2]
    assert all(type(e.value) is int for e in out)
    assert g.schema_of(node.output) == INT


def test_map_from_a_record_field():
    """map receives the dataclass instance and may return a scalar of the declared schema."""
    g = Graph()
    readings = g.route(route("reading"), Reading)
    node = g.map(readings, lambda r: r.zone.upper(), schema=TEXT)
    out = collect(g, node.output)
    g.producer("sensor").publish(readings, Reading("hall", 20.0))
    assert [e.value for e in out] == ["HALL"]


def test_nondeterministic_map_taints_its_outputs_and_a_deterministic_one_does_not():
    """deterministic=False adds det_nondeterministic_operator to every output; the default adds nothing."""
    g, temp, sensor = float_graph()
    pure = g.map(temp, lambda v: v + 1)
    impure = g.map(temp, lambda v: v + 2, deterministic=False)
    pure_out, impure_out = collect(g, pure.output), collect(g, impure.output)
    sensor.publish(temp, 1.0)
    sensor.publish(temp, 2.0)
    assert [(e.value, e.taint_names) for e in pure_out] == [(2.0, []), (3.0, [])]
    assert [(e.value, e.taint_names) for e in impure_out] == [
        (3.0, ["det_nondeterministic_operator"]),
        (4.0, ["det_nondeterministic_operator"]),
    ]
    assert stats(g, pure).deterministic is True
    assert stats(g, impure).deterministic is False


def test_taints_flow_through_later_operators():
    """A taint added by a nondeterministic map is inherited by a deterministic map downstream."""
    g, temp, sensor = float_graph()
    first = g.map(temp, lambda v: v * 2, deterministic=False)
    second = g.map(first.output, lambda v: v + 1)
    out = collect(g, second.output)
    sensor.publish(temp, 5.0)
    assert [(e.value, e.taint_names) for e in out] == [(11.0, ["det_nondeterministic_operator"])]
    assert out[0].parents == [EnvelopeId(first.output, 1)]


def test_raising_map_gives_operator_error_with_cause_and_other_consumers_still_get_the_value():
    """A raising callable gives OperatorError (cause kept); other subscribers still got the value and the node keeps working."""
    g, temp, sensor = float_graph()

    def invert(v: float) -> float:
        if v == 0.0:
            raise ZeroDivisionError("no inverse of zero")
        return 1.0 / v

    before = collect(g, temp)
    node = g.map(temp, invert)
    after = collect(g, temp)
    out = collect(g, node.output)
    with pytest.raises(OperatorError) as info:
        sensor.publish(temp, 0.0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert str(info.value.__cause__) == "no inverse of zero"
    assert node.name in str(info.value)
    assert info.value.origin == f"node {node.name}"
    assert [e.value for e in before] == [0.0]
    assert [e.value for e in after] == [0.0]
    assert out == []
    assert g.latest(temp).value == 0.0
    assert stats(g, node).failures == 1
    # The node stays in the graph and handles the next value.
    sensor.publish(temp, 4.0)
    assert [e.value for e in out] == [0.25]
    assert out[0].parents == [EnvelopeId(temp, 2)]
    assert stats(g, node).failures == 1


def test_map_returning_a_value_of_the_wrong_type_is_an_operator_error():
    """A map whose result does not fit its output schema fails with OperatorError and emits nothing."""
    g, temp, sensor = float_graph()
    node = g.map(temp, lambda v: "warm")
    out = collect(g, node.output)
    with pytest.raises(OperatorError, match="does not fit the output route"):
        sensor.publish(temp, 1.0)
    assert out == []


# ---------------------------------------------------------------------- filter


def test_filter_passes_accepted_values_unchanged_with_lineage_and_counts_refusals():
    """filter emits exactly the accepted values, each with its input as parent; refusals are counted."""
    g, temp, sensor = float_graph()
    node = g.filter(temp, lambda v: v >= 20.0)
    out = collect(g, node.output)
    for v in (19.0, 20.0, 25.5, 3.0, 20.1):
        sensor.publish(temp, v)
    assert [e.value for e in out] == [20.0, 25.5, 20.1]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 2)], [EnvelopeId(temp, 3)], [EnvelopeId(temp, 5)]]
    assert [e.seq for e in out] == [1, 2, 3]
    assert stats(g, node).counters["refused"] == 2
    assert g.schema_of(node.output) == FLOAT


def test_nondeterministic_filter_taints_what_it_passes():
    """filter(deterministic=False) adds the determinism taint to passed values."""
    g, temp, sensor = float_graph()
    node = g.filter(temp, lambda v: v > 0, deterministic=False)
    out = collect(g, node.output)
    sensor.publish(temp, -1.0)
    sensor.publish(temp, 1.0)
    assert [(e.value, e.taint_names) for e in out] == [(1.0, ["det_nondeterministic_operator"])]


def test_raising_filter_gives_operator_error_with_cause():
    """A predicate that raises surfaces as OperatorError whose __cause__ is the original exception."""
    g, temp, sensor = float_graph()
    node = g.filter(temp, lambda v: {1.0: True}[v])
    seen = collect(g, temp)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    with pytest.raises(OperatorError) as info:
        sensor.publish(temp, 2.0)
    assert isinstance(info.value.__cause__, KeyError)
    assert [e.value for e in out] == [1.0]
    assert [e.value for e in seen] == [1.0, 2.0]


# ---------------------------------------------------------------------- merge


def test_merge_interleaves_sources_in_arrival_order():
    """merge re-publishes values of several routes in the order they arrived, each with its own parent."""
    g = Graph()
    a = g.route(route("temp", "north"), FLOAT)
    b = g.route(route("temp", "south"), FLOAT)
    north, south = g.producer("north"), g.producer("south")
    node = g.merge([a, b])
    out = collect(g, node.output)
    north.publish(a, 1.0, event_time_us=10)
    south.publish(b, 2.0, event_time_us=5)
    south.publish(b, 3.0, event_time_us=7)
    north.publish(a, 4.0, event_time_us=11)
    assert [e.value for e in out] == [1.0, 2.0, 3.0, 4.0]
    assert [e.parents for e in out] == [[EnvelopeId(a, 1)], [EnvelopeId(b, 1)], [EnvelopeId(b, 2)], [EnvelopeId(a, 2)]]
    assert [e.seq for e in out] == [1, 2, 3, 4]
    assert [e.event_time_us for e in out] == [10, 5, 7, 11]


def test_merge_of_a_route_and_its_derived_route_is_ordered_source_first():
    """In a diamond (r and map(r) merged), each publish yields the source value, then the derived one."""
    g, temp, sensor = float_graph()
    doubled = g.map(temp, lambda v: v * 2)
    node = g.merge([temp, doubled.output])
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    sensor.publish(temp, 5.0)
    assert [e.value for e in out] == [1.0, 2.0, 5.0, 10.0]
    assert [e.parents for e in out] == [
        [EnvelopeId(temp, 1)],
        [EnvelopeId(doubled.output, 1)],
        [EnvelopeId(temp, 2)],
        [EnvelopeId(doubled.output, 2)],
    ]


def test_merge_refuses_sources_of_different_schemas_and_empty_lists():
    """merge needs at least one source, and all sources must carry the same schema."""
    g = Graph()
    a = g.route(route("temp"), FLOAT)
    b = g.route(route("count"), INT)
    with pytest.raises(SchemaMismatchError, match="int@1"):
        g.merge([a, b])
    with pytest.raises(OperatorConfigError):
        g.merge([])
    assert g.node_stats() == []


# ---------------------------------------------------------------------- rate limiter


def test_rate_limit_passes_max_events_per_interval_and_drops_the_rest():
    """Bursts of 5 one interval apart: the first 2 of each pass, 9 drops are counted, the first pass after drops is delivery_sampled."""
    g, temp, sensor = float_graph()
    node = g.rate_limit(temp, max_events=2, interval_us=100)
    out = collect(g, node.output)
    seq = 0
    for burst in range(3):
        for i in range(5):
            sensor.publish(temp, float(burst * 10 + i), event_time_us=burst * 100)
            seq += 1
    assert [e.value for e in out] == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s)] for s in (1, 2, 6, 7, 11, 12)]
    assert [e.taint_names for e in out] == [[], [], ["delivery_sampled"], [], ["delivery_sampled"], []]
    assert stats(g, node).counters["dropped"] == 9


def test_rate_limit_refills_credit_continuously_in_event_time():
    """The limiter is a token bucket over event time: credit refills pro rata and is capped at a burst of max_events."""
    g, temp, sensor = float_graph()
    node = g.rate_limit(temp, max_events=2, interval_us=100)
    out = collect(g, node.output)
    times = [0, 10, 20, 30, 50, 60, 100, 1_000, 1_000, 1_000, 1_000]
    for i, t in enumerate(times):
        sensor.publish(temp, float(i), event_time_us=t)
    # t=0,10 spend the burst; 20,30 find 20/40% of a token; 50 has a whole one again; 60 not;
    # 100 has one; at 1000 the bucket is full again but capped at 2.
    assert [e.value for e in out] == [0.0, 1.0, 4.0, 6.0, 7.0, 8.0]
    assert [e.taint_names for e in out] == [[], [], ["delivery_sampled"], ["delivery_sampled"], [], []]
    assert stats(g, node).counters["dropped"] == 5


def test_rate_limit_uses_event_time_not_the_graph_clock():
    """Advancing the graph clock earns no credit: only event time refills the bucket."""
    g, temp, sensor = float_graph()
    node = g.rate_limit(temp, max_events=1, interval_us=100)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0, event_time_us=0)
    g.advance(10_000)
    sensor.publish(temp, 2.0, event_time_us=50)
    sensor.publish(temp, 3.0, event_time_us=100)
    assert [e.value for e in out] == [1.0, 3.0]
    assert stats(g, node).counters["dropped"] == 1


# ---------------------------------------------------------------------- capacitor


def test_capacitor_buffers_until_discharged_oldest_first():
    """A capacitor emits nothing on input; discharge(n) releases the n oldest, discharge() the rest."""
    g, temp, sensor = float_graph()
    node = g.capacitor(temp, capacity=5)
    out = collect(g, node.output)
    for i in range(4):
        sensor.publish(temp, float(i), event_time_us=100 + i)
    assert out == []
    assert (stats(g, node).buffered, stats(g, node).buffered_max) == (4, 5)
    node.discharge(2)
    assert [e.value for e in out] == [0.0, 1.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 1)], [EnvelopeId(temp, 2)]]
    assert [e.event_time_us for e in out] == [100, 101]
    node.discharge()
    assert [e.value for e in out] == [0.0, 1.0, 2.0, 3.0]
    node.discharge()
    node.discharge(3)
    assert len(out) == 4
    counters = stats(g, node).counters
    assert counters == {"accepted": 4, "released": 4, "dropped": 0, "rejected": 0, "refused": 0}
    assert all(e.taint_names == [] for e in out)


def test_capacitor_drop_oldest_counts_losses_and_taints_the_next_release():
    """Overflow DROP_OLDEST evicts the oldest values (counted); the next released value carries delivery_dropped."""
    g, temp, sensor = float_graph()
    node = g.capacitor(temp, capacity=3, overflow=Overflow.DROP_OLDEST)
    out = collect(g, node.output)
    for i in range(5):
        sensor.publish(temp, float(i))
    assert stats(g, node).counters["dropped"] == 2
    node.discharge(1)
    node.discharge(5)
    assert [e.value for e in out] == [2.0, 3.0, 4.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s)] for s in (3, 4, 5)]
    assert [e.taint_names for e in out] == [["delivery_dropped"], [], []]
    assert stats(g, node).counters == {"accepted": 5, "released": 3, "dropped": 2, "rejected": 0, "refused": 0}


def test_capacitor_releases_on_a_demand_route():
    """An int on the demand route releases that many (a negative int all); DROP_NEWEST discards the overflow."""
    g, temp, sensor = float_graph()
    demand = g.route(route("demand"), INT)
    node = g.capacitor(temp, capacity=4, overflow=Overflow.DROP_NEWEST, demand=demand)
    out = collect(g, node.output)
    for i in range(6):
        sensor.publish(temp, float(i))
    sensor.publish(demand, 1)
    assert [(e.value, e.taint_names) for e in out] == [(0.0, ["delivery_dropped"])]
    sensor.publish(demand, 0)
    assert len(out) == 1
    sensor.publish(demand, 2)
    assert [e.value for e in out] == [0.0, 1.0, 2.0]
    sensor.publish(demand, -1)
    assert [e.value for e in out] == [0.0, 1.0, 2.0, 3.0]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s)] for s in (1, 2, 3, 4)]
    assert stats(g, node).counters == {"accepted": 4, "released": 4, "dropped": 2, "rejected": 0, "refused": 0}


@pytest.mark.parametrize("overflow, error", [(Overflow.REJECT, RejectedError), (Overflow.BLOCK, BackpressureError)])
def test_capacitor_reject_and_block_refuse_new_values_when_full(overflow, error):
    """REJECT and BLOCK refuse the publish itself once full (nothing recorded, nothing lost, so nothing tainted), counted as refused."""
    g, temp, sensor = float_graph()
    node = g.capacitor(temp, capacity=2, overflow=overflow)
    out = collect(g, node.output)
    for i in range(4):
        if i < 2:
            assert sensor.publish(temp, float(i)).complete
        else:
            with pytest.raises(error, match=f"node {node.name}"):
                sensor.publish(temp, float(i))
    node.discharge()
    assert [e.value for e in out] == [0.0, 1.0]
    assert [e.taint_names for e in out] == [[], []]
    assert g.latest(temp).seq == 2
    assert stats(g, node).counters == {"accepted": 2, "released": 2, "dropped": 0, "rejected": 0, "refused": 2}
    assert stats(g, node).params["overflow"] == overflow.value


def test_a_full_rejecting_capacitor_behind_a_mailbox_rejects_and_taints():
    """Fed through a mailbox, a full REJECT capacitor cannot refuse the producer: the item is rejected, counted, and the next release says delivery_dropped."""
    g, temp, sensor = float_graph()
    mid = g.route(route("mid"), FLOAT)
    g.connect(temp, mid, mailbox=Mailbox(4, Overflow.DROP_OLDEST))
    node = g.capacitor(mid, capacity=1, overflow=Overflow.REJECT)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    sensor.publish(temp, 2.0)
    g.run_until_idle()
    node.discharge()
    assert [(e.value, e.taint_names) for e in out] == [(1.0, ["delivery_dropped"])]
    assert stats(g, node).counters == {"accepted": 1, "released": 1, "dropped": 0, "rejected": 1, "refused": 0}


def test_only_capacitors_discharge():
    """discharge() on a node that is not a capacitor raises OperatorConfigError."""
    g, temp, _ = float_graph()
    node = g.map(temp, lambda v: v)
    with pytest.raises(OperatorConfigError, match="only capacitors discharge"):
        node.discharge()


# ---------------------------------------------------------------------- resistor


def test_resistor_holds_coalesces_and_releases_when_the_interval_has_passed():
    """Values within the interval are held, the newest replacing older ones (coalesced), and released exactly at last + interval."""
    g, temp, sensor = float_graph()
    node = g.resistor(temp, min_interval_us=100)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    g.advance(10)
    sensor.publish(temp, 2.0)
    g.advance(10)
    sensor.publish(temp, 3.0)
    assert [e.value for e in out] == [1.0]
    assert (stats(g, node).buffered, stats(g, node).buffered_max) == (1, 1)
    g.advance_to(99)
    assert len(out) == 1
    g.advance(1)
    assert [e.value for e in out] == [1.0, 3.0]
    assert [e.ingest_time_us for e in out] == [0, 100]
    assert [e.event_time_us for e in out] == [0, 20]
    assert [e.parents for e in out] == [[EnvelopeId(temp, 1)], [EnvelopeId(temp, 3)]]
    assert [e.taint_names for e in out] == [[], ["delivery_coalesced"]]
    assert stats(g, node).counters["coalesced"] == 1
    assert (stats(g, node).buffered, stats(g, node).buffered_max) == (0, 1)


def test_resistor_spaces_later_values_from_the_last_release():
    """Held values go out exactly one interval after the previous output; a value after a quiet interval passes at once."""
    g, temp, sensor = float_graph()
    node = g.resistor(temp, min_interval_us=100)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)  # out at 0
    g.advance_to(50)
    sensor.publish(temp, 2.0)  # held until 100
    g.advance_to(150)
    sensor.publish(temp, 3.0)  # held until 200
    g.advance_to(200)
    sensor.publish(temp, 4.0)  # 3.0 went out at 200, so held until 300
    g.advance_to(1_000)
    sensor.publish(temp, 5.0)  # quiet for 700 us: passes immediately
    assert [(e.value, e.ingest_time_us) for e in out] == [(1.0, 0), (2.0, 100), (3.0, 200), (4.0, 300), (5.0, 1_000)]
    assert all(e.taint_names == [] for e in out)
    assert stats(g, node).counters["coalesced"] == 0


def test_resistor_holds_nothing_across_idle_runs():
    """run_until_idle does not move the clock, so a held value stays held until advance."""
    g, temp, sensor = float_graph()
    node = g.resistor(temp, min_interval_us=1_000)
    out = collect(g, node.output)
    sensor.publish(temp, 1.0)
    sensor.publish(temp, 2.0)
    g.run_until_idle()
    assert [e.value for e in out] == [1.0]
    g.advance(1_000)
    assert [(e.value, e.ingest_time_us) for e in out] == [(1.0, 0), (2.0, 1_000)]


# ---------------------------------------------------------------------- deadband, threshold, scale


def test_deadband_passes_moves_of_at_least_the_band_from_the_last_passed_value():
    """Wiggles smaller than the band are refused; a move of exactly the band passes and re-centres."""
    g, temp, sensor = float_graph()
    node = g.deadband(temp, band=0.5)
    out = collect(g, node.output)
    values = [20.0, 20.2, 20.49, 20.5, 20.1, 19.9, 19.5, 19.4]
    for v in values:
        sensor.publish(temp, v)
    assert [e.value for e in out] == [20.0, 20.5, 19.9, 19.4]
    assert [e.parents for e in out] == [[EnvelopeId(temp, s)] for s in (1, 4, 6, 8)]
    assert stats(g, node).counters["refused"] == 4


def test_deadband_on_a_record_field_passes_the_whole_record():
    """deadband(value='celsius') decides on the field and passes the record unchanged."""
    g = Graph()
    readings = g.route(route("reading"), Reading)
    sensor = g.producer("sensor")
    node = g.deadband(readings, band=1.0, value="celsius")
    out = collect(g, node.output)
    for c in (10.0, 10.5, 11.0, 9.9):
        sensor.publish(readings, Reading("hall", c))
    assert [e.value for e in out] == [Reading("hall", 10.0), Reading("hall", 11.0), Reading("hall", 9.9)]


@pytest.mark.parametrize(
    ("kwargs", "passed"),
    [
        ({"above": 30.0}, [30.5, 100.0]),
        ({"below": 5.0}, [-1.0, 0.99, 1.0, 1.5, 2.0, 2.01, 4.99]),
        ({"inside": (1.0, 2.0)}, [1.0, 1.5, 2.0]),
        ({"outside": (1.0, 2.0)}, [-1.0, 0.99, 2.01, 4.99, 5.0, 30.0, 30.5, 100.0]),
    ],
)
def test_threshold_modes_and_their_boundaries(kwargs, passed):
    """above/below are strict, inside is inclusive and outside is its exact complement."""
    values = [-1.0, 0.99, 1.0, 1.5, 2.0, 2.01, 4.99, 5.0, 30.0, 30.5, 100.0]
    g, temp, sensor = float_graph()
    node = g.threshold(temp, **kwargs)
    out = collect(g, node.output)
    for v in values:
        sensor.publish(temp, v)
    assert [e.value for e in out] == passed
    assert [e.parents for e in out] == [[EnvelopeId(temp, values.index(v) + 1)] for v in passed]
    assert stats(g, node).counters["refused"] == len(values) - len(passed)


def test_threshold_needs_exactly_one_limit():
    """threshold with no limit or with two limits raises OperatorConfigError."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError, match="exactly one"):
        g.threshold(temp)
    with pytest.raises(OperatorConfigError, match="exactly one"):
        g.threshold(temp, above=1.0, below=5.0)


def test_scale_converts_raw_counts_to_floats():
    """scale emits value * scale + offset as a float, from an INT route, with the input as parent."""
    g = Graph()
    raw = g.route(route("adc"), INT)
    sensor = g.producer("sensor")
    node = g.scale(raw, scale=0.1, offset=-50.0)
    out = collect(g, node.output)
    counts = [0, 500, 2048, 4095]
    for c in counts:
        sensor.publish(raw, c, event_time_us=c)
    assert [e.value for e in out] == [c * 0.1 + -50.0 for c in counts]
    assert out[2].value == 154.8
    assert all(type(e.value) is float for e in out)
    assert [e.parents for e in out] == [[EnvelopeId(raw, s)] for s in (1, 2, 3, 4)]
    assert [e.event_time_us for e in out] == counts
    assert g.schema_of(node.output) == FLOAT


def test_scale_of_a_record_field():
    """scale(value='celsius') converts one field of a record to a float."""
    g = Graph()
    readings = g.route(route("reading"), Reading)
    node = g.scale(readings, scale=1.8, offset=32.0, value="celsius")
    out = collect(g, node.output)
    g.producer("sensor").publish(readings, Reading("hall", 100.0))
    assert [e.value for e in out] == [212.0]


# ---------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    "build",
    [
        lambda g, r: g.rate_limit(r, max_events=0, interval_us=100),
        lambda g, r: g.rate_limit(r, max_events=1, interval_us=0),
        lambda g, r: g.rate_limit(r, max_events=-1, interval_us=100),
        lambda g, r: g.capacitor(r, capacity=0),
        lambda g, r: g.resistor(r, min_interval_us=0),
        lambda g, r: g.resistor(r, min_interval_us=-5),
    ],
    ids=["rate-zero-events", "rate-zero-interval", "rate-negative", "capacitor-zero", "resistor-zero", "resistor-negative"],
)
def test_bad_sizes_are_operator_config_errors_and_add_no_node(build):
    """Zero or negative sizes and intervals raise OperatorConfigError and leave the graph unchanged."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError):
        build(g, temp)
    assert g.node_stats() == []
    assert g.nodes == {}


def test_a_refused_node_does_not_use_up_its_name():
    """After a refused configuration, the next node of that kind gets the plain default name."""
    g, temp, _ = float_graph()
    with pytest.raises(OperatorConfigError):
        g.rate_limit(temp, max_events=0, interval_us=10)
    node = g.rate_limit(temp, max_events=1, interval_us=10)
    assert node.name == "rate_limit_temp"


@pytest.mark.parametrize(
    "build",
    [
        lambda g, r: g.deadband(r, band=1.0),
        lambda g, r: g.threshold(r, above=1.0),
        lambda g, r: g.scale(r, scale=2.0),
    ],
    ids=["deadband", "threshold", "scale"],
)
def test_numeric_operators_refuse_non_numeric_inputs(build):
    """deadband, threshold and scale on a TEXT route raise SchemaMismatchError naming the schema."""
    g = Graph()
    words = g.route(route("words"), TEXT)
    with pytest.raises(SchemaMismatchError, match="text@1 which is not a number"):
        build(g, words)


def test_a_value_field_that_is_not_a_number_is_a_schema_mismatch():
    """value= naming a text field, or a field that does not exist, raises SchemaMismatchError."""
    g = Graph()
    readings = g.route(route("reading"), Reading)
    with pytest.raises(SchemaMismatchError, match="field zone of Reading@1 is not a number"):
        g.scale(readings, value="zone")
    with pytest.raises(SchemaMismatchError, match='no field "kelvin"'):
        g.deadband(readings, band=1.0, value="kelvin")


def test_a_value_function_returning_a_non_number_fails_at_run_time():
    """A value= function returning text raises OperatorError when the value arrives."""
    g = Graph()
    readings = g.route(route("reading"), Reading)
    node = g.scale(readings, value=lambda r: r.zone)
    out = collect(g, node.output)
    with pytest.raises(OperatorError, match="not a number"):
        g.producer("sensor").publish(readings, Reading("hall", 1.0))
    assert out == []


def test_publishing_a_value_of_the_wrong_type_reaches_no_operator():
    """A publish that fails the schema check raises SchemaCheckError and no operator runs."""
    g, temp, sensor = float_graph()
    node = g.map(temp, lambda v: v)
    with pytest.raises(SchemaCheckError):
        sensor.publish(temp, "hot")
    assert stats(g, node).processed == 0
