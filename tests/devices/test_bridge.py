"""The greenhouse host graph and its sensor board (host simulation) joined by a DeviceBridge."""

from __future__ import annotations

import pytest

from manyfold import manifest, query
from manyfold.devices.image import route_id
from manyfold.examples import greenhouse
from manyfold.graph import Taint


@pytest.fixture(scope="module")
def ran():
    gh, bridge, stop = greenhouse.with_board(7)
    try:
        greenhouse.run(gh, bridge=bridge)
        yield gh, bridge
    finally:
        stop()


def test_host_loads_only_its_partition():
    """Loading partition main from the full manifest leaves the board's nodes out."""
    m = manifest.compile(greenhouse.build(device=True).graph)
    host = manifest.load(m, callables=greenhouse.build(device=True).graph._callables, partitions=["main"])
    names = {n.name for n in query.topology(host).nodes}
    device_nodes = {n.name for n in m.nodes if n.partition == greenhouse.DEVICE}
    assert device_nodes and not names & device_nodes
    assert "board_fan_control" in names and "fan_binding" in names


def test_every_device_event_reaches_its_host_route(ran):
    """Each route the board sends up has as many host envelopes as the board's sequence."""
    gh, bridge = ran
    device_seq = {info.id: info.seq for info in bridge.client.routes()}
    topo = query.topology(gh.graph)
    for device_route, host_route in gh.device.outputs.items():
        assert device_seq[route_id(device_route)] > 0
        assert topo.route(host_route).envelopes == device_seq[route_id(device_route)], device_route
    assert bridge.counts.unknown_routes == 0
    assert bridge.counts.events_from_device == bridge.client.counters_device().events_out


def test_the_fan_loop_crosses_the_link_both_ways(ran):
    """Host setpoints reach the board's actuator, and its reports confirm the host binding."""
    gh, bridge = ran
    desired_on_board = next(i for i in bridge.client.routes() if i.id == route_id(str(gh.device.desired_to_device)))
    assert bridge.counts.events_to_device > 0
    assert desired_on_board.seq == bridge.counts.events_to_device
    counters = {n.name: n.counters for n in gh.graph.node_stats()}["board_fan_binding"]
    assert counters["confirmations"] > 0


def test_link_taints_show_on_the_host_routes(ran):
    """The UART link is declared unreliable and unauthenticated: the host routes fed by it say so."""
    gh, _ = ran
    taints = {rt.route: rt.taints for rt in query.taints(gh.graph)}
    for host_route in gh.device.outputs.values():
        assert {Taint.DELIVERY_DROPPED, Taint.TRUST_UNVERIFIED} <= taints[host_route], host_route


def test_board_demo_report_has_the_device_section(ran):
    """The report's section 6 lists the board's routes beside the host routes."""
    from io import StringIO

    from rich.console import Console

    gh, bridge = ran
    buffer = StringIO()
    greenhouse.report_device(gh, bridge, Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "6. The sensor board: partition greenhouse-sensors" in text
    assert "(the host manifest)" in text
    for device_route, host_route in gh.device.outputs.items():
        assert device_route in text and str(host_route) in text
