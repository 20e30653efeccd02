"""Lowering a manifest partition to a partition image, run in the host simulation."""

from __future__ import annotations

import pytest

from manyfold import manifest, sim
from manyfold.devices import greenhouse as reference
from manyfold.devices.image import route_id
from manyfold.devices.lower import partition_image, partition_spec
from manyfold.examples import greenhouse
from manyfold.graph import FLOAT, Graph, Route
from manyfold.graph.errors import ManifestError

STEP_US = 100_000
RUN_US = 20_000_000


@pytest.fixture(scope="module")
def system():
    return manifest.compile(greenhouse.build(device=True).graph)


def _run(image: bytes, desired: list[tuple[int, float]], names: list[str]) -> list[tuple[str, int, int, int, object]]:
    """Events (route name, seq, time, taints, value) of a lockstep run with fan setpoints."""
    client = sim.open(image, board="lm3s6965evb", session=1)
    client.connect(lockstep=True, reset=True)
    by_id = {route_id(n): n for n in names}
    index = [by_id[info.id] for info in client.routes()]
    out = []
    pending = list(desired)
    for now in range(STEP_US, RUN_US + 1, STEP_US):
        while pending and pending[0][0] <= now:
            client.send_event(reference.FAN_DESIRED, pending.pop(0)[1], time_us=now)
        out += [(index[e.route], e.seq, e.time_us, e.taints, e.value) for e in client.step(now)]
    return out


def test_lowered_greenhouse_partition_behaves_as_the_reference_partition(system):
    """The partition lowered from the greenhouse manifest emits, event for event, what the
    hand-written reference partition (manyfold.devices.greenhouse) emits."""
    lowered = partition_image(system, greenhouse.DEVICE)
    spec = reference.greenhouse_spec(seed=1)
    names = [r.name for r in spec.routes]
    setpoints = [(3_000_000, 40.0), (9_000_000, 75.5), (9_100_000, 80.0)]
    ours, theirs = _run(lowered, setpoints, names), _run(spec.encode(), setpoints, names)
    assert len(ours) > 100
    assert sorted(ours) == sorted(theirs)


def test_lowered_image_carries_the_manifest_id_and_partition(system):
    """The board's describe names the manifest and partition it was lowered from."""
    client = sim.open(partition_image(system, greenhouse.DEVICE), board="lm3s6965evb")
    d = client.connect()
    assert (d.manifest_id.hex(), d.partition, d.image_status_name) == (system.id, greenhouse.DEVICE, "loaded")


def test_link_routes_come_from_the_graph_edges(system):
    """Routes read by host nodes go to the host; the forwarded fan setpoint comes from it."""
    spec = partition_spec(system, greenhouse.DEVICE)
    assert sorted(spec.to_host) == sorted(reference.greenhouse_spec().to_host)
    assert spec.from_host == [reference.FAN_DESIRED]


def test_host_only_nodes_are_refused_by_name():
    """A Python map cannot run on a device: lowering says which node and why."""
    g = Graph()
    board = g.partition("board", profile="embedded-lite")
    with board:
        raw = g.route(Route.parse("read.raw.dev.s.t.meta.v1"), FLOAT)
        g.map(raw, lambda v: v * 2, schema=FLOAT, name="double")
    with pytest.raises(ManifestError, match=r"node double \(map\) cannot run on a device"):
        partition_image(manifest.compile(g), "board")


def test_unknown_partition_is_refused(system):
    """Asking for a partition the manifest does not have names the ones it has."""
    with pytest.raises(ManifestError, match="no partition 'nope'; it has"):
        partition_image(system, "nope")


def test_sample_runs_the_same_on_the_host_and_on_a_device():
    """g.sample in the local runtime and its lowered device `latest` emit the same values, times
    and coalescing taints for the same inputs."""
    from manyfold.graph import LinkCapabilities, Taint, taints_of

    g = Graph()
    board = g.partition("board", profile="embedded-lite")
    g.link("uart", board, "main", transport="serial", capabilities=LinkCapabilities())
    raw = g.route(Route.parse("write.shadow.host.s.t.desired.v1"), FLOAT)  # a host route the board reads
    with board:
        sampled = g.sample(raw, period_us=1_000_000, output=g.route(Route.parse("read.logical.dev.s.t.meta.v1"), FLOAT), name="every_second")
    up = g.route(Route.parse("read.logical.host.s.t.meta.v1"), FLOAT)
    g.connect(sampled.output, up, link=LinkCapabilities(), name="uplink")
    inputs = [(100_000, 1.0), (400_000, 2.0), (1_200_000, 3.0), (3_500_000, 4.0), (3_600_000, 5.0), (3_700_000, 6.0)]

    client = sim.open(partition_image(manifest.compile(g), "board"), board="lm3s6965evb")
    client.connect(lockstep=True)
    on_device = []
    for now in range(100_000, 5_000_001, 100_000):
        for t, v in inputs:
            if t == now:
                client.send_event("write.shadow.host.s.t.desired.v1", v, time_us=now)
        on_device += [(e.time_us, e.value, "delivery_coalesced" in e.taint_names) for e in client.step(now)]

    host = Graph()
    h_raw = host.route(Route.parse("write.shadow.host.s.t.desired.v1"), FLOAT)
    h_out = host.sample(h_raw, period_us=1_000_000, name="every_second").output
    seen = []
    host.subscribe(h_out, lambda e: seen.append((e.event_time_us, e.value, Taint.DELIVERY_COALESCED in taints_of(e))))
    producer = host.producer("host")
    for t, v in inputs:
        host.advance_to(t)
        producer.publish(h_raw, v, event_time_us=t)
    host.advance_to(5_000_000)
    assert on_device == seen == [(400_000, 2.0, True), (1_200_000, 3.0, False), (3_700_000, 6.0, True)]
