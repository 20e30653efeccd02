"""The scheduler: deterministic, driven by a virtual clock in tests, and by the wall clock in
real-time mode; guards gate work on epochs and deadlines."""

from __future__ import annotations

import threading
import time

import pytest

from manyfold.graph import (
    FLOAT,
    Aggregate,
    ClockModeError,
    Graph,
    GuardError,
    Mailbox,
    OperatorConfigError,
    Overflow,
    RejectedError,
)

from graphkit import sensor_route


def build_and_run() -> list[tuple]:
    """A graph with mailboxes, windows, a resistor and a join, driven by one script."""
    g = Graph()
    temp = g.route(sensor_route(), FLOAT)
    hum = g.route(sensor_route("humidity"), FLOAT)
    avg = g.moving_average(temp, 3)
    win = g.time_window(hum, width_us=1_000, aggregate=Aggregate.MAX)
    slow = g.resistor(avg.output, min_interval_us=500)
    merged = g.merge([temp, hum])
    log = []
    for route in (avg.output, win.output, slow.output, merged.output):
        g.subscribe(route, lambda e: log.append((str(e.id), repr(e.value), tuple(e.taint_names), tuple(str(p) for p in e.parents))), mailbox=Mailbox(4, Overflow.DROP_OLDEST))
    p = g.producer("sensor")
    for step in range(40):
        p.publish(temp, float(step % 7), event_time_us=step * 100)
        if step % 3 == 0:
            p.publish(hum, float(step), event_time_us=step * 100)
        if step % 5 == 0:
            g.run_until_idle()
        g.advance(100)
    g.advance(10_000)
    return log


def test_same_script_same_outputs():
    """Two runs of one script produce identical envelopes (ids, values, taints, parents)."""
    first, second = build_and_run(), build_and_run()
    assert len(first) > 40
    assert first == second


def test_run_until_idle_does_not_move_time(g, temp):
    """run_until_idle delivers due work only; the virtual clock stays put."""
    g.subscribe(temp, lambda e: None, mailbox=Mailbox(4))
    g.producer("sensor").publish(temp, 1.0)
    assert g.now_us == 0
    assert g.run_until_idle().steps == 1
    assert g.now_us == 0


def test_timers_fire_at_their_time(g, temp):
    """A resistor's held value comes out exactly when the virtual clock reaches its release."""
    slow = g.resistor(temp, min_interval_us=1_000)
    out = []
    g.subscribe(slow.output, lambda e: out.append((g_now(e), e.value)))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    g.advance(10)
    p.publish(temp, 2.0)
    g.advance(989)
    assert [v for _, v in out] == [1.0]
    g.advance(1)
    assert out == [(0, 1.0), (1_000, 2.0)]


def g_now(envelope):
    return envelope.ingest_time_us


def test_clock_cannot_go_back(g):
    """Moving a virtual clock backwards is refused."""
    g.advance_to(100)
    with pytest.raises(ClockModeError, match="back"):
        g.advance_to(50)


def test_step_bound_stops_runaway_loops(g, temp):
    """A feedback loop through a mailbox runs within a step bound and reports not idle."""
    back = g.route(sensor_route("back"), FLOAT)
    loop = g.merge([temp, back])
    plus_one = g.map(loop.output, lambda v: v + 1)
    g.connect(plus_one.output, back, mailbox=Mailbox(2, Overflow.DROP_OLDEST))
    g.producer("sensor").publish(temp, 0.0)
    report = g.run_until_idle(max_steps=50)
    assert report.steps == 50 and not report.idle
    assert g.latest(plus_one.output).value == 51.0


def test_epoch_guard(g, temp):
    """A guarded publish waits for its epoch, then runs with the sched_gated taint."""
    p = g.producer("sensor")
    guard = g.publish_guarded(temp, 7.0, producer=p, not_before_epoch=2)
    state = g.scheduler_state()
    assert [x.guard_id for x in state.gated] == [guard]
    g.advance_epoch()
    assert g.latest(temp) is None
    g.advance_epoch()
    e = g.latest(temp)
    assert e.value == 7.0 and e.taint_names == ["sched_gated"] and e.control_epoch == 2
    assert g.scheduler_state().gated == []


def test_deadline_guard_expires(g, temp):
    """Work still gated at its deadline expires: never published, and counted."""
    p = g.producer("sensor")
    guard = g.publish_guarded(temp, 1.0, producer=p, not_before_epoch=1, expires_at_us=500)
    g.advance_to(499)
    assert len(g.scheduler_state().gated) == 1
    g.advance_to(500)
    state = g.scheduler_state()
    assert state.gated == [] and state.expired_total == 1
    assert state.expired[0].guard_id == guard and state.expired[0].expired_at_us == 500
    g.advance_epoch()
    assert g.latest(temp) is None


def test_time_guard(g, temp):
    """not_before_us releases work when the clock gets there."""
    g.publish_guarded(temp, 3.0, producer=g.producer("sensor"), not_before_us=250)
    g.advance_to(249)
    assert g.latest(temp) is None
    g.advance_to(250)
    assert g.latest(temp).ingest_time_us == 250


def test_guard_in_the_past_is_refused(g, temp):
    """A guard that has already expired is refused."""
    g.advance_to(100)
    with pytest.raises(GuardError, match="not after now"):
        g.publish_guarded(temp, 1.0, producer=g.producer("sensor"), expires_at_us=100)


def test_real_time_runs_the_same_graph():
    """The same resistor graph runs against the wall clock: the held value is released."""
    g = Graph(realtime=True)
    temp = g.route(sensor_route(), FLOAT)
    slow = g.resistor(temp, min_interval_us=20_000)
    out = []
    g.subscribe(slow.output, lambda e: out.append(e.value))
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    p.publish(temp, 2.0)
    assert out == [1.0]
    start = time.monotonic()
    g.run_realtime(0.1)
    assert out == [1.0, 2.0]
    assert time.monotonic() - start >= 0.09


def test_virtual_only_operations_are_refused_in_real_time():
    """advance() needs a virtual clock; run_realtime() needs a real-time graph."""
    with pytest.raises(ClockModeError):
        Graph(realtime=True).advance(10)
    with pytest.raises(ClockModeError):
        Graph().run_realtime(0.01)


def test_real_time_publishers_on_other_threads():
    """Producers on several threads feed a real-time graph; nothing is lost or duplicated."""
    g = Graph(realtime=True)
    temp = g.route(sensor_route(), FLOAT)
    counter = g.count(temp)
    seen = []
    g.subscribe(temp, lambda e: seen.append(e.value), mailbox=Mailbox(8, Overflow.BLOCK))
    runner = threading.Thread(target=g.run_realtime, args=(1.5,))
    runner.start()
    p = g.producer("sensor")

    def feed(base):
        for i in range(200):
            p.publish(temp, float(base + i), timeout_s=1.0)

    feeders = [threading.Thread(target=feed, args=(k * 1000,)) for k in range(3)]
    for t in feeders:
        t.start()
    for t in feeders:
        t.join()
    runner.join()
    assert counter.value == 600
    assert sorted(seen) == sorted(float(k * 1000 + i) for k in range(3) for i in range(200))


def test_the_gate_is_bounded():
    """Guarded publishes wait up to gated_max; one more is refused (RejectedError, counted)."""
    g = Graph(gated_max=2)
    temp = g.route(sensor_route(), FLOAT)
    p = g.producer("sensor")
    for v in (1.0, 2.0):
        g.publish_guarded(temp, v, producer=p, not_before_epoch=1)
    with pytest.raises(RejectedError, match=r"2 guarded publishes already wait \(gated_max\)"):
        g.publish_guarded(temp, 3.0, producer=p, not_before_epoch=1)
    state = g.scheduler_state()
    assert len(state.gated) == 2 and state.gated_max == 2 and state.gated_refused == 1
    g.advance_epoch()
    assert [e.value for e in g.replay(temp)] == [1.0, 2.0]
    g.publish_guarded(temp, 3.0, producer=p, not_before_epoch=1)
    assert g.latest(temp).value == 3.0


def test_gated_max_must_be_positive():
    """A graph whose gate could hold nothing is refused with a clear error."""
    with pytest.raises(OperatorConfigError, match="gated_max must be an integer from 1"):
        Graph(gated_max=0)
