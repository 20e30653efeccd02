"""The greenhouse example's answers, asserted exactly on a real run."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from manyfold import query
from manyfold.examples import greenhouse
from manyfold.graph import Taint, taints_of


@pytest.fixture(scope="module")
def gh():
    return greenhouse.run(greenhouse.build(seed=7))


def test_routes_and_owners(gh):
    """Every route has an owner and a producer, and the fan routes belong to the fan."""
    topo = query.topology(gh.graph)
    owners = {str(r.route): (r.owner, r.producer_kind, r.producer) for r in topo.routes}
    assert owners[str(gh.temperature_raw)] == ("probes", "external", "probes")
    assert owners[str(gh.fan.desired)] == ("fan", "node", "fan_binding")
    assert owners[str(gh.fan.request)] == ("fan", "node", "fan_pacing")


def test_buffers_windows_and_guards(gh):
    """The ingest mailbox overflowed during the burst; the misting guard expired."""
    ingest = query.flow(gh.graph).mailbox("ingest_in")
    assert (ingest.capacity, ingest.dropped, ingest.depth_max) == (16, 26, 16)
    sched = query.scheduler(gh.graph)
    assert sched.expired_total == 1 and sched.expired[0].route == gh.mist
    kinds = {n.name: n.kind for n in query.topology(gh.graph).nodes}
    assert kinds["zone_mean"] == "event_time_window" and kinds["fan_pacing"] == "resistor"


def test_last_fan_command_is_explained(gh):
    """The last fan command traces back to 13 probe readings and one opened camera frame."""
    last = gh.graph.latest(gh.fan.desired)
    lin = query.lineage(gh.graph, last)
    inputs = [lin.step(i) for i in lin.inputs]
    assert sorted({str(s.route) for s in inputs}) == sorted([str(gh.camera), str(gh.temperature_raw)])
    assert sum(s.route == gh.temperature_raw for s in inputs) == 13
    assert [str(i) for i in lin.payloads_opened] == [f"{gh.camera}@33"]
    assert lin.epochs == (4, 5) and lin.missing == ()
    assert taints_of(last) == {Taint.COHERENCE_WRITE_PENDING, Taint.ORDER_RESEQUENCED}


def test_taints_added_and_repaired(gh):
    """The report's taint answers: mailbox drops, the unordered link, and the resequencer's repair."""
    (temp,) = query.taints(gh.graph, gh.temperature)
    assert {(o.taint.value, o.kind, o.name) for o in temp.added} == {
        ("order_possibly_out_of_order", "link", "ingest"), ("delivery_dropped", "mailbox", "ingest_in"),
    }
    (mean,) = query.taints(gh.graph, gh.zone_mean)
    assert mean.taints == {Taint.ORDER_RESEQUENCED, Taint.DELIVERY_DROPPED}
    assert [(o.taint, o.name) for o in mean.repaired] == [(Taint.ORDER_POSSIBLY_OUT_OF_ORDER, "reorder")]


def test_payloads_opened_and_why(gh):
    """Only hot-zone frames were opened: 7 of 36, each once, all by the inspect node."""
    d = query.payload_demand(gh.graph, gh.camera)
    assert (d.metadata_events, d.opens, d.cache_hits, d.bytes_materialized) == (36, 7, 0, 7 * 16_384)
    assert d.by_consumer == {"node inspect": 7}
    opened = query.route_audit(gh.graph, gh.camera).of_kind("opened")
    assert all(gh.graph.envelope(gh.camera, e.seq).value.zone == "north" for e in opened)


def test_report_prints(gh):
    """The rich report renders all five answers."""
    out = io.StringIO()
    greenhouse.report(gh, Console(file=out, width=140))
    text = out.getvalue()
    assert "5. Which payloads were opened, and why" in text and "mean" in text
