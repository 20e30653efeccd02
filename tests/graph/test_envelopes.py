"""Envelopes: closed metadata kept apart from the payload."""

from __future__ import annotations

from manyfold.graph import FLOAT, Route

from graphkit import sensor_route


def test_envelope_metadata(g, temp):
    """An envelope records route, producer, per-route seq, event time and domain, ingest time,
    control epoch, taints, parents and its payload reference."""
    g.advance_to(5_000)
    p = g.producer("sensor")
    p.publish(temp, 21.5, event_time_us=4_200, clock_domain=1)
    e = g.latest(temp)
    assert e.route == temp and str(e.id) == f"{temp}@1" and e.seq == 1
    assert e.producer == ("producer", "sensor")
    assert (e.event_time_us, e.clock_domain, e.ingest_time_us) == (4_200, 1, 5_000)
    assert e.control_epoch == 0
    assert e.taint_names == [] and e.parents == []
    assert e.payload_ref == ("inline", 9)
    assert e.value == 21.5


def test_event_time_defaults_to_ingest(g, temp):
    """Without an event time, the ingest clock (domain 0) is used."""
    g.advance_to(777)
    g.producer("sensor").publish(temp, 1.0)
    e = g.latest(temp)
    assert (e.event_time_us, e.clock_domain) == (777, 0)


def test_sequence_numbers_are_per_route(g, temp):
    """Each route counts its own sequence numbers from 1."""
    other = g.route(sensor_route("humidity"), FLOAT)
    p = g.producer("sensor")
    seqs = [p.publish(r, 1.0).seq for r in (temp, other, temp, other, temp)]
    assert seqs == [1, 1, 2, 2, 3]


def test_derived_envelopes_name_their_parents(g, temp):
    """A node's output lists the input envelopes it came from and its producing node."""
    out = g.connect(temp, g.route(Route.parse("read.logical.sensor.env.copy.meta.v1"), FLOAT), name="copy")
    g.producer("sensor").publish(temp, 3.0)
    e = g.latest(out.output)
    assert [str(p) for p in e.parents] == [f"{temp}@1"]
    assert e.producer == ("node", "copy")
    assert e.value == 3.0


def test_control_epoch_is_stamped(g, temp):
    """Envelopes carry the control epoch they were published in."""
    p = g.producer("sensor")
    p.publish(temp, 1.0)
    g.advance_epoch()
    g.advance_epoch()
    p.publish(temp, 2.0)
    assert [e.control_epoch for e in g.replay(temp)] == [0, 2]
