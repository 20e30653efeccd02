"""Joins of the local graph, one join class at a time: local (keyed buffers on both sides,
optionally bounded in time), lookup (the right side is a table), broadcast mirror (the right
side mirrored whole, with or without a key) and repartition (sides keyed by different fields,
spread over partitions by a stable hash). Every test checks the exact pairs, their parents and
the join's counters; unbounded all-to-all plans are refused."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from graphkit import collect, route, stats

from manyfold.graph import (
    FLOAT,
    EnvelopeId,
    Graph,
    JoinClass,
    JoinRejectedError,
    OperatorConfigError,
    OperatorError,
    Pair,
    SchemaMismatchError,
    schema,
)


@schema()
@dataclass(frozen=True)
class Reading:
    zone: str
    celsius: float


@schema()
@dataclass(frozen=True)
class Zone:
    name: str
    floor: int


@schema()
@dataclass(frozen=True)
class Setpoint:
    zone: str
    target: float








def readings_and_zones():
    """A graph with readings (left, owned by 'sensor') and zones (right, owned by 'registry')."""
    g = Graph()
    left = g.route(route("reading", "sensor"), Reading)
    right = g.route(route("zone", "registry"), Zone)
    return g, left, right, g.producer("sensor"), g.producer("registry")


def pairs(out: list) -> list[tuple]:
    """(left, right, [parent strings], event time) of each emitted pair."""
    return [(e.value.left, e.value.right, [str(p) for p in e.parents], e.event_time_us) for e in out]


def fnv1a_text_key(text: str) -> int:
    """The runtime's stable key hash for a text key: FNV-1a 64 over a tag byte 3 and the UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for b in bytes([3]) + text.encode():
        h ^= b
        h = (h * 0x100000001B3) % (1 << 64)
    return h


def script(sensor, registry, left, right):
    """The shared script: zone a, reading a@5, reading b@6, zone b@8, zone a (floor 3)@9, reading a@20."""
    registry.publish(right, Zone("a", 1), event_time_us=0)
    sensor.publish(left, Reading("a", 1.0), event_time_us=5)
    sensor.publish(left, Reading("b", 2.0), event_time_us=6)
    registry.publish(right, Zone("b", 2), event_time_us=8)
    registry.publish(right, Zone("a", 3), event_time_us=9)
    sensor.publish(left, Reading("a", 3.0), event_time_us=20)


# ---------------------------------------------------------------------- local


def test_local_join_pairs_equal_keys_within_the_time_bound():
    """A local join pairs equal keys at most within_us apart, with both inputs as parents and the later event time."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOCAL, left_key="zone", right_key="name", within_us=10)
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert pairs(out) == [
        (Reading("a", 1.0), Zone("a", 1), [f"{left}@1", f"{right}@1"], 5),
        (Reading("b", 2.0), Zone("b", 2), [f"{left}@2", f"{right}@2"], 8),
        (Reading("a", 1.0), Zone("a", 3), [f"{left}@1", f"{right}@3"], 9),
    ]
    assert all(type(e.value) is Pair for e in out)
    node_stats = stats(g, node)
    # Unmatched on arrival: zone a@0, reading b@6, reading a@20 (both zones are > 10 us older).
    # Nothing is late (at most 10 us behind the watermark) and nothing has expired yet (more
    # than 20 us behind it): the zones could still pair with a reading on time.
    assert node_stats.counters == {"matched": 3, "unmatched": 3, "late": 0, "expired": 0, "evicted": 0, "refused": 0}
    assert node_stats.watermark_us == 20
    assert node_stats.params["within_us"] == 10
    assert g.schema_of(node.output).name == "Pair[Reading,Zone]"


def test_local_join_without_time_bound_pairs_with_every_buffered_value_of_the_key():
    """Without within_us, a new value pairs with every buffered value of its key, oldest first."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOCAL, left_key="zone", right_key="name")
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert [(p[0].celsius, p[1].floor) for p in pairs(out)] == [(1.0, 1), (2.0, 2), (1.0, 3), (3.0, 1), (3.0, 3)]
    assert [e.parents for e in out][-2:] == [
        [EnvelopeId(left, 3), EnvelopeId(right, 1)],
        [EnvelopeId(left, 3), EnvelopeId(right, 3)],
    ]
    assert stats(g, node).counters["matched"] == 5


def test_local_join_keeps_at_most_capacity_values_per_key_and_side():
    """capacity=2: the third left value of a key evicts the first, so a later right value pairs with two."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOCAL, left_key="zone", right_key="name", capacity=2)
    out = collect(g, node.output)
    for i in range(3):
        sensor.publish(left, Reading("a", float(i)), event_time_us=i)
    sensor.publish(left, Reading("b", 9.0), event_time_us=3)
    registry.publish(right, Zone("a", 7), event_time_us=4)
    assert [(e.value.left.celsius, e.value.right.floor) for e in out] == [(1.0, 7), (2.0, 7)]
    assert [e.parents for e in out] == [[EnvelopeId(left, 2), EnvelopeId(right, 1)], [EnvelopeId(left, 3), EnvelopeId(right, 1)]]
    assert stats(g, node).counters["evicted"] == 1


def test_local_join_on_a_field_both_sides_share():
    """key='zone' keys both sides by their own zone field."""
    g = Graph()
    left = g.route(route("reading", "sensor"), Reading)
    right = g.route(route("setpoint", "hvac"), Setpoint)
    sensor, hvac = g.producer("sensor"), g.producer("hvac")
    node = g.join(left, right, join_class=JoinClass.LOCAL, key="zone")
    out = collect(g, node.output)
    hvac.publish(right, Setpoint("hall", 21.0), event_time_us=1)
    sensor.publish(left, Reading("attic", 25.0), event_time_us=2)
    sensor.publish(left, Reading("hall", 19.5), event_time_us=3)
    assert [e.value for e in out] == [Pair(Reading("hall", 19.5), Setpoint("hall", 21.0))]
    assert out[0].parents == [EnvelopeId(left, 2), EnvelopeId(right, 1)]
    assert out[0].event_time_us == 3


def test_join_with_key_functions():
    """left_key/right_key may be callables; keys compare by value (here ints)."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOCAL, left_key=lambda r: len(r.zone), right_key=lambda z: z.floor)
    out = collect(g, node.output)
    registry.publish(right, Zone("x", 4), event_time_us=0)
    registry.publish(right, Zone("y", 2), event_time_us=0)
    sensor.publish(left, Reading("hall", 20.0), event_time_us=1)
    sensor.publish(left, Reading("ab", 21.0), event_time_us=1)
    assert [e.value for e in out] == [Pair(Reading("hall", 20.0), Zone("x", 4)), Pair(Reading("ab", 21.0), Zone("y", 2))]


def test_a_failing_key_function_is_an_operator_error():
    """A key function that raises surfaces as OperatorError with the original cause."""
    g, left, right, sensor, _ = readings_and_zones()

    def bad_key(r: Reading) -> str:
        raise RuntimeError("no key for " + r.zone)

    g.join(left, right, join_class=JoinClass.LOCAL, left_key=bad_key, right_key="name")
    with pytest.raises(OperatorError) as info:
        sensor.publish(left, Reading("a", 1.0))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value.__cause__) == "no key for a"


def test_pairs_carry_the_taints_of_both_sides():
    """A pair's taints are the union of its left and right envelopes' taints."""
    g, left, right, sensor, registry = readings_and_zones()
    fuzzy = g.map(left, lambda r: Reading(r.zone, r.celsius + 0.5), deterministic=False)
    node = g.join(fuzzy.output, right, join_class=JoinClass.LOOKUP, left_key="zone", right_key="name")
    out = collect(g, node.output)
    registry.publish(right, Zone("a", 1))
    sensor.publish(left, Reading("a", 1.0))
    assert [(e.value, e.taint_names) for e in out] == [(Pair(Reading("a", 1.5), Zone("a", 1)), ["det_nondeterministic_operator"])]
    assert out[0].parents == [EnvelopeId(fuzzy.output, 1), EnvelopeId(right, 1)]


# ---------------------------------------------------------------------- lookup


def test_lookup_join_treats_the_right_side_as_a_table():
    """Right values only update the table; each left value pairs with the latest right value of its key or is unmatched."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOOKUP, left_key="zone", right_key="name")
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert pairs(out) == [
        (Reading("a", 1.0), Zone("a", 1), [f"{left}@1", f"{right}@1"], 5),
        (Reading("a", 3.0), Zone("a", 3), [f"{left}@3", f"{right}@3"], 20),
    ]
    assert stats(g, node).counters == {"matched": 2, "unmatched": 1, "late": 0, "expired": 0, "evicted": 0, "refused": 0}


def test_lookup_join_right_updates_never_emit():
    """However many right values arrive, a lookup join emits only on left values."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOOKUP, left_key="zone", right_key="name")
    out = collect(g, node.output)
    sensor.publish(left, Reading("a", 1.0))
    for floor in range(5):
        registry.publish(right, Zone("a", floor))
    assert out == []
    sensor.publish(left, Reading("a", 2.0))
    sensor.publish(left, Reading("a", 3.0))
    assert [e.value.right.floor for e in out] == [4, 4]
    assert [e.parents[1] for e in out] == [EnvelopeId(right, 5), EnvelopeId(right, 5)]


def test_lookup_join_within_bound_and_table_capacity():
    """within_us refuses a stale table entry; capacity refuses new keys but accepts updates of known ones."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.LOOKUP, left_key="zone", right_key="name", within_us=100, capacity=1)
    out = collect(g, node.output)
    registry.publish(right, Zone("a", 1), event_time_us=0)
    registry.publish(right, Zone("b", 2), event_time_us=0)  # table full: refused
    sensor.publish(left, Reading("b", 1.0), event_time_us=50)
    sensor.publish(left, Reading("a", 2.0), event_time_us=100)
    sensor.publish(left, Reading("a", 3.0), event_time_us=101)  # 101 us after the entry: too old
    registry.publish(right, Zone("a", 5), event_time_us=150)  # update of a known key
    sensor.publish(left, Reading("a", 4.0), event_time_us=200)
    assert [(e.value.left.celsius, e.value.right.floor) for e in out] == [(2.0, 1), (4.0, 5)]
    # The refused zone b is a loss: the next pair says so.
    assert [e.taint_names for e in out] == [["delivery_dropped"], []]
    assert stats(g, node).counters == {"matched": 2, "unmatched": 2, "late": 0, "expired": 0, "evicted": 0, "refused": 1}


# ---------------------------------------------------------------------- broadcast mirror


def test_broadcast_mirror_without_key_pairs_each_left_with_the_whole_mirror():
    """Without a key, each left value pairs with every mirrored right value (the last `capacity`), oldest first."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.BROADCAST_MIRROR, capacity=2)
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert pairs(out) == [
        (Reading("a", 1.0), Zone("a", 1), [f"{left}@1", f"{right}@1"], 5),
        (Reading("b", 2.0), Zone("a", 1), [f"{left}@2", f"{right}@1"], 6),
        (Reading("a", 3.0), Zone("b", 2), [f"{left}@3", f"{right}@2"], 20),
        (Reading("a", 3.0), Zone("a", 3), [f"{left}@3", f"{right}@3"], 20),
    ]
    # Zone a@0 left the full mirror while a reading could still pair with it: a loss, tainted.
    assert [e.taint_names for e in out] == [[], [], ["delivery_dropped"], []]
    assert stats(g, node).counters == {"matched": 4, "unmatched": 0, "late": 0, "expired": 0, "evicted": 1, "refused": 0}


def test_broadcast_mirror_with_key_keeps_the_latest_per_key_and_pairs_by_key():
    """With keys, the mirror holds the latest right value per key and a left value pairs only with its key."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.BROADCAST_MIRROR, left_key="zone", right_key="name")
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert pairs(out) == [
        (Reading("a", 1.0), Zone("a", 1), [f"{left}@1", f"{right}@1"], 5),
        (Reading("a", 3.0), Zone("a", 3), [f"{left}@3", f"{right}@3"], 20),
    ]
    assert stats(g, node).counters == {"matched": 2, "unmatched": 1, "late": 0, "expired": 0, "evicted": 0, "refused": 0}
    assert stats(g, node).buffered == 2


def test_broadcast_mirror_before_any_right_value_leaves_left_values_unmatched():
    """A left value arriving while the mirror is empty emits nothing and is counted unmatched."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.BROADCAST_MIRROR)
    out = collect(g, node.output)
    sensor.publish(left, Reading("a", 1.0))
    registry.publish(right, Zone("z", 0))
    sensor.publish(left, Reading("b", 2.0))
    assert [e.value for e in out] == [Pair(Reading("b", 2.0), Zone("z", 0))]
    assert stats(g, node).counters["unmatched"] == 1


# ---------------------------------------------------------------------- repartition


def test_repartition_join_rekeys_both_sides_into_stable_partitions():
    """Sides keyed by different fields give exact pairs, and partition item counters match the reference FNV-1a hash."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.REPARTITION, left_key="zone", right_key="name", partitions=4)
    out = collect(g, node.output)
    zones = ["hall", "attic", "cellar", "garage", "roof", "porch"]
    for i, z in enumerate(zones):
        registry.publish(right, Zone(z, i), event_time_us=i)
    lefts = ["hall", "roof", "nowhere", "hall", "porch"]
    for i, z in enumerate(lefts):
        sensor.publish(left, Reading(z, float(i)), event_time_us=100 + i)
    assert [(e.value.left.zone, e.value.left.celsius, e.value.right.floor) for e in out] == [
        ("hall", 0.0, 0),
        ("roof", 1.0, 4),
        ("hall", 3.0, 0),
        ("porch", 4.0, 5),
    ]
    assert [e.parents for e in out] == [
        [EnvelopeId(left, 1), EnvelopeId(right, 1)],
        [EnvelopeId(left, 2), EnvelopeId(right, 5)],
        [EnvelopeId(left, 4), EnvelopeId(right, 1)],
        [EnvelopeId(left, 5), EnvelopeId(right, 6)],
    ]
    expected = [0, 0, 0, 0]
    for z in zones + lefts:
        expected[fnv1a_text_key(z) % 4] += 1
    counters = stats(g, node).counters
    assert [counters[f"partition_{i}_items"] for i in range(4)] == expected
    assert sum(expected) == 11
    assert sum(1 for n in expected if n > 0) >= 2  # the keys really spread
    assert counters["matched"] == 4
    # Unmatched on arrival: all 6 zones (no reading yet) and the reading for "nowhere".
    assert counters["unmatched"] == 7
    assert stats(g, node).params["partitions"] == 4


def test_repartition_join_with_one_partition_behaves_like_a_local_join():
    """partitions=1 puts every item in partition 0 and gives the local join's pairs."""
    g, left, right, sensor, registry = readings_and_zones()
    node = g.join(left, right, join_class=JoinClass.REPARTITION, left_key="zone", right_key="name", within_us=10, partitions=1)
    out = collect(g, node.output)
    script(sensor, registry, left, right)
    assert [(e.value.left.celsius, e.value.right.floor) for e in out] == [(1.0, 1), (2.0, 2), (1.0, 3)]
    assert stats(g, node).counters["partition_0_items"] == 6


# ---------------------------------------------------------------------- refusals


@pytest.mark.parametrize("join_class", [JoinClass.LOCAL, JoinClass.LOOKUP, JoinClass.REPARTITION])
def test_a_join_without_keys_is_refused_as_all_to_all(join_class):
    """Keyless local, lookup and repartition joins raise JoinRejectedError explaining the all-to-all problem; no node is added."""
    g, left, right, _, _ = readings_and_zones()
    with pytest.raises(JoinRejectedError) as info:
        g.join(left, right, join_class=join_class)
    message = str(info.value)
    assert f"({join_class.value}) has no key on either side" in message
    assert "every left value would pair with every right value" in message
    assert "unbounded all-to-all join" in message
    assert "broadcast mirror" in message
    assert g.node_stats() == []


def test_a_join_keyed_on_one_side_only_names_the_missing_side():
    """A key on one side only is refused too, and the message says which side lacks it."""
    g, left, right, _, _ = readings_and_zones()
    with pytest.raises(JoinRejectedError, match="has no key on the right side"):
        g.join(left, right, join_class=JoinClass.LOOKUP, left_key="zone")
    with pytest.raises(JoinRejectedError, match="has no key on the left side"):
        g.join(left, right, join_class=JoinClass.LOCAL, right_key="name")


def test_a_key_field_missing_from_a_side_is_a_schema_mismatch():
    """key='zone' on a right side without a zone field raises SchemaMismatchError listing its fields."""
    g, left, right, _, _ = readings_and_zones()
    with pytest.raises(SchemaMismatchError, match=r'Zone@1 has no field "zone" \(fields: name, floor\)'):
        g.join(left, right, join_class=JoinClass.LOCAL, key="zone")


def test_joins_of_scalar_routes_need_key_functions():
    """Scalar routes have no fields: a field key is a SchemaMismatchError, a function key works."""
    g = Graph()
    a = g.route(route("a", "sensor"), FLOAT)
    b = g.route(route("b", "sensor"), FLOAT)
    with pytest.raises(SchemaMismatchError, match="has no field"):
        g.join(a, b, join_class=JoinClass.LOCAL, key="x")
    node = g.join(a, b, join_class=JoinClass.LOCAL, key=lambda v: int(v))
    out = collect(g, node.output)
    p = g.producer("sensor")
    p.publish(a, 1.25)
    p.publish(b, 1.75)
    p.publish(b, 2.0)
    assert [e.value for e in out] == [Pair(1.25, 1.75)]


@pytest.mark.parametrize("kwargs", [{"capacity": 0}, {"partitions": 0}])
def test_zero_join_sizes_are_operator_config_errors(kwargs):
    """A join with capacity 0 or 0 partitions is an invalid parameter: OperatorConfigError."""
    g, left, right, _, _ = readings_and_zones()
    with pytest.raises(OperatorConfigError, match="capacity >= 1 and partitions >= 1"):
        g.join(left, right, join_class=JoinClass.REPARTITION, left_key="zone", right_key="name", **kwargs)
    assert g.node_stats() == []



