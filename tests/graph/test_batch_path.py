"""The batch path through the public API: ``publish_many`` (a list or an ``array('d')``) on a
float route gives exactly what a loop of ``publish`` gives, fused or not."""

from __future__ import annotations

import math
import random
import struct
from array import array

import pytest

from manyfold.graph import FLOAT, Aggregate, Graph, SchemaCheckError

from graphkit import route

SPECIALS = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.5e-310, 1.7e308, -1.7e308]


def values(seed: int, n: int) -> list[float]:
    """Seeded floats, one in eight a special (NaN, infinities, -0.0, subnormals, huge)."""
    rng = random.Random(seed)
    return [rng.choice(SPECIALS) if rng.random() < 0.125 else rng.uniform(-500.0, 500.0) for _ in range(n)]


def pipeline():
    """in -> moving_average(3) -> count; in -> count_window(4, 2, sum) -> moving_average(2) -> count."""
    g = Graph()
    temp = g.route(route("x"), FLOAT)
    avg = g.moving_average(temp, 3, name="avg")
    sums = g.count_window(temp, size=4, step=2, aggregate=Aggregate.SUM, name="sums")
    smooth = g.moving_average(sums.output, 2, name="smooth")
    counters = [g.count(avg.output, name="c1"), g.count(smooth.output, name="c2")]
    return g, temp, [temp, avg.output, sums.output, smooth.output], counters


def bits(v) -> object:
    return struct.pack("<d", v) if isinstance(v, float) else v


def envelope_facts(e) -> tuple | None:
    if e is None:
        return None
    return (str(e.id), e.producer, e.event_time_us, e.clock_domain, e.ingest_time_us, e.control_epoch, e.taint_bits,
            [str(p) for p in e.parents], e.parents_elided, tuple(e.payload_ref), bits(e.value))


def observe(g: Graph, routes, counters) -> list:
    """Everything observable: each route's retained envelopes, latest and lineage; node and
    edge stats; counters."""
    seen: list = []
    for r in routes:
        last = g.latest(r)
        seen.append(envelope_facts(last))
        if last is None:
            continue
        seen.extend(envelope_facts(g.envelope(r, s)) for s in range(max(1, last.seq - 300), last.seq + 1))
        found, missing = g.lineage(last)
        seen.append(([str(e.id) for e in found], [str(m) for m in missing]))
    seen.append([(n.name, n.processed, n.emitted, n.failures) for n in g.node_stats()])
    seen.append([(e.name, e.delivered) for e in g.edge_stats()])
    seen.append([c.value for c in counters])
    return seen


@pytest.mark.parametrize("kind", ["list", "array"])
def test_publish_many_equals_a_publish_loop(kind):
    """Chunks of 0, 1, 3, 255..257 and 20k values (with single publishes between) through
    publish_many give the same envelopes, lineage, stats and counts as publish one by one."""
    batched, temp_b, routes_b, counters_b = pipeline()
    looped, temp_l, routes_l, counters_l = pipeline()
    pb, pl = batched.producer("sensor"), looped.producer("sensor")
    for k, n in enumerate([0, 1, 3, 255, 256, 257, 20_000, 2]):
        chunk = values(k, n)
        pb.publish_many(temp_b, array("d", chunk) if kind == "array" else chunk)
        for v in chunk:
            pl.publish(temp_l, v)
        for v in values(100 + k, k % 3):
            pb.publish(temp_b, v)
            pl.publish(temp_l, v)
        assert observe(batched, routes_b, counters_b) == observe(looped, routes_l, counters_l), f"after chunk {k}"
    assert batched._native._fusion_stats()[0] > 0


def test_ints_in_a_list_publish_as_floats_and_bad_items_publish_nothing():
    """A list mixing ints and floats publishes them as floats (the rules of one publish); a
    list holding a string publishes nothing and raises SchemaCheckError naming the item."""
    g, temp, routes, counters = pipeline()
    p = g.producer("sensor")
    assert p.publish_many(temp, [1, 2.5, 3]) == 3
    assert [g.envelope(temp, s).value for s in (1, 2, 3)] == [1.0, 2.5, 3.0]
    with pytest.raises(SchemaCheckError, match=r"\[1\]"):
        p.publish_many(temp, [4.0, "five", 6.0])
    assert g.latest(temp).seq == 3


def test_a_python_subscriber_takes_the_per_event_path_with_the_same_results():
    """A Python subscriber needs every envelope: the batch is not fused, and it sees each
    output the loop would have given it."""
    g, temp, routes, counters = pipeline()
    seen: list = []
    g.subscribe(routes[1], seen.append)
    g.producer("sensor").publish_many(temp, [float(i) for i in range(10)])
    assert [e.value for e in seen] == [float(i) for i in range(1, 9)]
    assert g._native._fusion_stats() == (0, 1)
