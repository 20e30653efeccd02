"""Write bindings: desired, reported and effective routes with coherence taints and retries."""

from __future__ import annotations

import pytest

from manyfold import query
from manyfold.graph import FLOAT, Graph, Idempotency, OperatorConfigError, taints_of


def binding(retry_max=2, interval=100):
    g = Graph()
    app = g.producer("app")
    fan = g.write_binding("fan", "climate", "speed", FLOAT, retry_max=retry_max, retry_interval_us=interval,
                          idempotency=Idempotency.ABSOLUTE_VALUE, writers=[app])
    return g, fan, app, g.producer("fan")


def names(e) -> set[str]:
    return {t.value for t in taints_of(e)}


def test_routes_of_a_binding():
    """A binding declares request, desired, reported, effective and ack routes."""
    _, fan, _, _ = binding()
    assert [str(r) for r in (fan.request, fan.desired, fan.reported, fan.effective, fan.ack)] == [
        "write.logical.fan.climate.speed.request.v1",
        "write.shadow.fan.climate.speed.desired.v1",
        "write.shadow.fan.climate.speed.reported.v1",
        "write.shadow.fan.climate.speed.effective.v1",
        "write.shadow.fan.climate.speed.ack.v1",
    ]


def test_coherence_taints_follow_the_values():
    """write pending -> stale reported -> stable -> echo unmatched, exactly."""
    g, fan, app, device = binding(retry_max=0)
    app.publish(fan.request, 60.0)
    assert g.latest(fan.desired).value == 60.0
    assert names(g.latest(fan.desired)) == {"coherence_write_pending"}
    device.publish(fan.reported, 30.0)
    assert (g.latest(fan.effective).value, names(g.latest(fan.effective))) == (30.0, {"coherence_write_pending", "coherence_stale_reported"})
    device.publish(fan.reported, 60.0)
    assert (g.latest(fan.effective).value, names(g.latest(fan.effective))) == (60.0, set())
    device.publish(fan.reported, 45.0)
    assert names(g.latest(fan.effective)) == {"coherence_echo_unmatched"}
    lin = query.lineage(g, g.latest(fan.effective))
    assert [str(i) for i in lin.inputs] == [f"{fan.reported}@3", f"{fan.request}@1"]


def test_retries_are_bounded_and_stop_on_ack():
    """Without an ack desired is re-sent every interval at most retry_max times; an ack stops it."""
    g, fan, app, device = binding(retry_max=2, interval=100)
    app.publish(fan.request, 50.0)
    g.advance(1_000)
    assert len(g.replay(fan.desired)) == 3  # 1 send + 2 retries
    counters = {n.name: n.counters for n in g.node_stats()}["fan_speed_binding"]
    assert (counters["retries"], counters["failures"]) == (2, 1)
    device.publish(fan.reported, 10.0)
    assert "sched_expired" in names(g.latest(fan.effective))

    g2, fan2, app2, device2 = binding(retry_max=2, interval=100)
    app2.publish(fan2.request, 50.0)
    device2.publish(fan2.ack, 1)
    g2.advance(1_000)
    assert len(g2.replay(fan2.desired)) == 1


def test_retrying_needs_a_declared_idempotency_boundary():
    """A binding that retries without saying why a repeat is safe is refused."""
    with pytest.raises(OperatorConfigError, match="idempotency"):
        Graph().write_binding("fan", "climate", "speed", FLOAT, retry_max=1, retry_interval_us=10)


def test_only_writers_request():
    """The request route takes writes only from granted writers (and the owner)."""
    g, fan, app, _ = binding()
    from manyfold.graph import NotOwnerError

    with pytest.raises(NotOwnerError):
        g.producer("stranger").publish(fan.request, 1.0)
