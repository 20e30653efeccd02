"""Bounded mailboxes: every overflow policy is visible, and block really pushes back."""

from __future__ import annotations

import threading
import time

import pytest

from manyfold.graph import (
    FLOAT,
    BackpressureError,
    Graph,
    Mailbox,
    OperatorConfigError,
    Overflow,
    RejectedError,
)

from graphkit import sensor_route


def slow_consumer(g, route, policy):
    seen = []
    g.subscribe(route, lambda e: seen.append((e.value, e.taint_names)), mailbox=policy, name="slow")
    return seen


def stats(g):
    (mailbox,) = g.mailbox_stats()
    return mailbox


def test_block_refuses_and_records_nothing(g, temp):
    """A full blocking mailbox makes publish raise BackpressureError; nothing is recorded."""
    seen = slow_consumer(g, temp, Mailbox(2, Overflow.BLOCK))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    p.publish(temp, 2.0)
    with pytest.raises(BackpressureError, match="mailbox slow is full"):
        p.publish(temp, 3.0)
    assert g.latest(temp).seq == 2
    g.run_until_idle()
    p.publish(temp, 3.0)
    g.run_until_idle()
    assert [v for v, _ in seen] == [1.0, 2.0, 3.0]
    assert stats(g).blocked == 1 and stats(g).dropped_oldest == 0


def test_block_applies_through_inline_operators(g, temp):
    """Backpressure reaches a producer whose publish would flow inline into the full mailbox."""
    avg = g.moving_average(temp, 1)
    slow_consumer(g, avg.output, Mailbox(1, Overflow.BLOCK))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    with pytest.raises(BackpressureError):
        p.publish(temp, 2.0)


def test_drop_oldest_counts_and_taints(g, temp):
    """drop_oldest keeps the newest items, reports each drop in the receipt, and the next
    delivered item carries delivery_dropped."""
    seen = slow_consumer(g, temp, Mailbox(2, Overflow.DROP_OLDEST))
    p = g.producer("sensor")
    receipts = [p.publish(temp, float(v)) for v in range(5)]
    assert [r.dropped for r in receipts] == [0, 0, 1, 1, 1]
    assert not receipts[2].complete
    g.run_until_idle()
    assert seen == [(3.0, ["delivery_dropped"]), (4.0, [])]
    s = stats(g)
    assert (s.dropped_oldest, s.accepted, s.delivered, s.depth_max) == (3, 5, 2, 2)


def test_drop_newest_keeps_the_oldest(g, temp):
    """drop_newest keeps what is queued and discards new items, visibly."""
    seen = slow_consumer(g, temp, Mailbox(2, Overflow.DROP_NEWEST))
    p = g.producer("sensor")
    dropped = sum(p.publish(temp, float(v)).dropped for v in range(4))
    g.run_until_idle()
    assert dropped == 2
    assert [v for v, _ in seen] == [0.0, 1.0]
    assert seen[0][1] == ["delivery_dropped"]
    assert stats(g).dropped_newest == 2


def test_reject_refuses_the_publish(g, temp):
    """reject raises RejectedError and records nothing."""
    slow_consumer(g, temp, Mailbox(1, Overflow.REJECT))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    with pytest.raises(RejectedError, match="rejects"):
        p.publish(temp, 2.0)
    assert g.latest(temp).seq == 1


def test_capacity_must_be_positive():
    """A mailbox of capacity 0 is refused."""
    with pytest.raises(OperatorConfigError):
        Mailbox(0)


def test_mailboxes_are_served_round_robin(g, temp):
    """The scheduler delivers one item per mailbox per round, in creation order."""
    order = []
    other = g.route(sensor_route("other"), FLOAT)
    g.subscribe(temp, lambda e: order.append(("t", e.value)), mailbox=Mailbox(8, Overflow.BLOCK), name="mt")
    g.subscribe(other, lambda e: order.append(("o", e.value)), mailbox=Mailbox(8, Overflow.BLOCK), name="mo")
    p = g.producer("sensor")
    for v in (1.0, 2.0):
        p.publish(temp, v)
        p.publish(other, v)
    g.run_until_idle()
    assert order == [("t", 1.0), ("o", 1.0), ("t", 2.0), ("o", 2.0)]


def test_block_waits_with_a_timeout_in_real_time():
    """In real time, a producer with timeout_s waits for a slow consumer instead of failing:
    all items arrive in order, and the mailbox shows it blocked."""
    g = Graph(realtime=True)
    r = g.route(sensor_route(), FLOAT)
    seen = []

    def slow(e):
        time.sleep(0.002)
        seen.append(e.value)

    g.subscribe(r, slow, mailbox=Mailbox(2, Overflow.BLOCK), name="slow")
    runner = threading.Thread(target=g.run_realtime, args=(3.0,))
    runner.start()
    try:
        p = g.producer("sensor")
        for v in range(20):
            p.publish(r, float(v), timeout_s=2.0)
        deadline = time.monotonic() + 2.0
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.join()
    assert seen == [float(v) for v in range(20)]
    s = stats(g)
    assert s.blocked > 0 and s.dropped_oldest == 0


def test_block_timeout_expires():
    """With nobody draining, a blocking publish with a timeout gives up with BackpressureError."""
    g = Graph(realtime=True)
    r = g.route(sensor_route(), FLOAT)
    g.subscribe(r, lambda e: None, mailbox=Mailbox(1, Overflow.BLOCK), name="stuck")
    p = g.producer("sensor")
    p.publish(r, 1.0)
    start = time.monotonic()
    with pytest.raises(BackpressureError):
        p.publish(r, 2.0, timeout_s=0.1)
    assert 0.09 <= time.monotonic() - start < 2.0
