"""Publish, subscribe, latest, bounded replay and connect with per-edge policies."""

from __future__ import annotations

import pytest

from manyfold.graph import (
    FLOAT,
    TEXT,
    Graph,
    Mailbox,
    MailboxStats,
    NodeStats,
    NotOwnerError,
    OperatorConfigError,
    OperatorError,
    Overflow,
    RejectedError,
    RouteError,
    SchedulerStats,
    SchemaMismatchError,
    UnsafeCycleError,
)

from graphkit import sensor_route


def test_subscribers_see_every_envelope_in_order(g, temp):
    """Inline subscribers receive each envelope during the publish, in order."""
    seen = []
    g.subscribe(temp, lambda e: seen.append((e.seq, e.value)))
    p = g.producer("sensor")
    for v in (1.0, 2.0, 3.0):
        p.publish(temp, v)
    assert seen == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_latest_and_bounded_replay():
    """latest() is the newest envelope; replay() keeps exactly `history` envelopes."""
    g = Graph()
    r = g.route(sensor_route(), FLOAT, history=3)
    assert g.latest(r) is None and g.replay(r) == []
    p = g.producer("sensor")
    for v in range(5):
        p.publish(r, float(v))
    assert g.latest(r).value == 4.0
    assert [e.value for e in g.replay(r)] == [2.0, 3.0, 4.0]


def test_history_must_hold_the_latest():
    """A history of 0 is refused."""
    with pytest.raises(OperatorConfigError, match="history"):
        Graph().route(sensor_route(), FLOAT, history=0)


def test_connect_forwards_with_lineage(g, temp):
    """connect(a, b) re-publishes each envelope of a on b."""
    copy = g.route(sensor_route("copy"), FLOAT)
    g.connect(temp, copy)
    g.producer("sensor").publish(temp, 9.0)
    assert g.latest(copy).value == 9.0
    assert [p.seq for p in g.latest(copy).parents] == [1]


def test_connect_through_a_mailbox_delivers_later(g, temp):
    """A buffered edge holds items until the scheduler runs."""
    copy = g.route(sensor_route("copy"), FLOAT)
    g.connect(temp, copy, mailbox=Mailbox(4, Overflow.DROP_OLDEST))
    g.producer("sensor").publish(temp, 1.0)
    assert g.latest(copy) is None
    assert g.run_until_idle().steps == 1
    assert g.latest(copy).value == 1.0


def test_epoch_boundary_edge_holds_until_next_epoch(g, temp):
    """An epoch-boundary edge delivers at the next control epoch, stamped with it."""
    copy = g.route(sensor_route("copy"), FLOAT)
    g.connect(temp, copy, epoch_boundary=True)
    g.producer("sensor").publish(temp, 1.0)
    g.run_until_idle()
    assert g.latest(copy) is None
    g.advance_epoch()
    e = g.latest(copy)
    assert e.value == 1.0 and e.control_epoch == 1


def test_connect_refuses_incompatible_schemas(g, temp):
    """Connecting routes of different schemas names both routes and schemas."""
    words = g.route(sensor_route("words"), TEXT)
    with pytest.raises(SchemaMismatchError, match=r"float@1.*text@1|schemas differ"):
        g.connect(temp, words)


def test_unsafe_feedback_loop_is_refused_with_its_path(g, temp):
    """A cycle of inline edges is refused, naming the loop; a mailbox on it makes it legal."""
    a = g.route(sensor_route("a"), FLOAT)
    g.connect(temp, a, name="ta")
    with pytest.raises(UnsafeCycleError, match=r"\[ta\]"):
        g.connect(a, temp, name="at")
    g.connect(a, temp, name="at", mailbox=Mailbox(2, Overflow.DROP_OLDEST))


def test_cycle_through_an_epoch_boundary_is_safe(g, temp):
    """A loop closed by an epoch boundary is allowed: it advances one step per epoch."""
    back = g.route(sensor_route("back"), FLOAT)
    loop = g.merge([temp, back])
    plus_one = g.map(loop.output, lambda v: v + 1)
    g.connect(plus_one.output, back, epoch_boundary=True)
    g.producer("sensor").publish(temp, 0.0)
    for _ in range(3):
        g.advance_epoch()
    assert [e.value for e in g.replay(plus_one.output)] == [1.0, 2.0, 3.0, 4.0]
    assert [e.control_epoch for e in g.replay(plus_one.output)] == [0, 1, 2, 3]


def test_only_owners_publish(g, temp):
    """Producers publish on routes they own or were granted, never on a node's output."""
    intruder = g.producer("intruder")
    with pytest.raises(NotOwnerError, match="owned by sensor"):
        intruder.publish(temp, 1.0)
    g.grant(intruder, temp)
    intruder.publish(temp, 1.0)
    avg = g.moving_average(temp, 2)
    owner = g.producer(avg.output.owner)
    with pytest.raises(NotOwnerError, match="produced by node"):
        owner.publish(avg.output, 1.0)


def test_undeclared_routes_are_named(g):
    """Using an undeclared route says which and how to declare it."""
    with pytest.raises(RouteError, match="not declared"):
        g.producer("sensor").publish(sensor_route("nope"), 1.0)


def test_names_are_unique(g, temp):
    """Node and subscription names are unique; a failed add frees its name."""
    g.moving_average(temp, 2, name="avg")
    with pytest.raises(OperatorConfigError, match="already used"):
        g.moving_average(temp, 2, name="avg")
    with pytest.raises(OperatorConfigError):
        g.count_window(temp, size=0, name="bad")
    g.count_window(temp, size=2, name="bad")


def test_subscriber_errors_surface_without_stopping_others(g, temp):
    """A raising subscriber gives OperatorError (cause attached); others still got the value."""
    seen = []

    def broken(e):
        raise RuntimeError("subscriber bug")

    g.subscribe(temp, broken, name="broken")
    g.subscribe(temp, lambda e: seen.append(e.value), name="fine")
    with pytest.raises(OperatorError, match="subscription broken failed") as raised:
        g.producer("sensor").publish(temp, 5.0)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert seen == [5.0] and g.latest(temp).value == 5.0


def test_publishing_from_a_subscriber_is_queued(g, temp):
    """A subscriber may publish into its own graph: it runs right after the current dispatch."""
    echo = g.route(sensor_route("echo"), FLOAT)
    p = g.producer("sensor")
    receipts = []
    g.subscribe(temp, lambda e: receipts.append(p.publish(echo, e.value * 10)))
    p.publish(temp, 2.0)
    assert receipts[0].deferred and g.latest(echo).value == 20.0


def test_publishes_queued_from_inside_are_bounded(g, temp):
    """Publishes queued inside one dispatch are bounded: one more raises RejectedError in the
    callback that made it, and the queued ones still run right after the dispatch."""
    echo = g.route(sensor_route("echo"), FLOAT)
    p = g.producer("sensor")
    queued = []

    def flood(e):
        for _ in range(100_000):
            queued.append(p.publish(echo, 1.0))

    g.subscribe(temp, flood)
    with pytest.raises(OperatorError) as raised:
        p.publish(temp, 1.0)
    assert isinstance(raised.value.__cause__, RejectedError)
    assert "65536 publishes made inside this dispatch already wait" in str(raised.value.__cause__)
    assert len(queued) == 65_536 and g.latest(echo).seq == 65_536


def test_reading_the_graph_from_inside_is_refused(g, temp):
    """Calls that would deadlock inside a dispatch raise a clear error instead."""
    g.subscribe(temp, lambda e: g.latest(temp))
    with pytest.raises(OperatorError, match="inside the same graph"):
        g.producer("sensor").publish(temp, 1.0)


def test_unsubscribe(g, temp):
    """A cancelled subscription receives nothing more."""
    seen = []
    sub = g.subscribe(temp, lambda e: seen.append(e.value))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    sub.cancel()
    p.publish(temp, 2.0)
    assert seen == [1.0]


def test_counter_counts_natively(g, temp):
    """count() counts envelopes without Python callbacks."""
    c = g.count(temp)
    g.producer("sensor").publish_many(temp, [1.0, 2.0, 3.0])
    assert c.value == 3


def test_operator_losses_show_in_receipts(g, temp):
    """Values an operator drops (rate limited, capacitor overflow) make the receipt say so."""
    g.rate_limit(temp, max_events=1, interval_us=1_000)
    g.capacitor(temp, capacity=1)
    p = g.producer("sensor")
    receipts = [p.publish(temp, float(v), event_time_us=0) for v in range(3)]
    # publish 1 fills the capacitor and takes the token; later ones lose one value in each
    assert [r.dropped for r in receipts] == [0, 2, 2]


def test_graph_state_comes_back_as_typed_read_only_objects(g, temp):
    """Node, edge, mailbox and scheduler state are typed snapshots read by attribute, not dicts."""
    avg = g.moving_average(temp, 2, name="avg")
    g.subscribe(temp, lambda e: None, mailbox=Mailbox(3, Overflow.DROP_OLDEST), name="slow")
    for v in (1.0, 2.0):
        g.producer("sensor").publish(temp, v)
    (node,) = g.node_stats()
    assert isinstance(node, NodeStats) and (node.name, node.kind, node.processed, node.emitted) == ("avg", "count_window", 2, 1)
    assert node.inputs == [temp] and node.outputs == [avg.output] and node.input_edges == ["avg_in"]
    (mailbox,) = g.mailbox_stats()
    assert isinstance(mailbox, MailboxStats) and (mailbox.edge, mailbox.depth, mailbox.overflow) == ("slow", 2, "drop_oldest")
    assert [(e.name, e.target_kind, e.policy) for e in g.edge_stats()] == [("avg_in", "node", "inline"), ("slow", "subscription", "mailbox")]
    assert isinstance(g.scheduler_state(), SchedulerStats) and g.scheduler_state().ready == 2
    with pytest.raises(AttributeError):
        node.name = "other"
