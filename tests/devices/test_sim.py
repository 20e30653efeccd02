"""manyfold.sim: the greenhouse partition on a simulated board, through the same client API as
a real board: lockstep runs, the write binding, queries, free-running time, uploads, nacks."""

from __future__ import annotations

import pytest

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import image as im
from manyfold.devices import protocol as m
from manyfold.devices.image import route_id
from manyfold.devices.link import LinkError, NackError

IMAGE = gh.greenhouse_spec().encode()
SPEC = gh.greenhouse_spec()


def lockstep(board: str = "lm3s6965evb", image: bytes = IMAGE, **kw):
    client = sim.open(image, board=board, session=1, record=True, **kw)
    client.connect(lockstep=True, reset=True)
    return client


def on(events, route: str):
    index = SPEC.route_index(route)
    return [e for e in events if e.route == index]


def test_lockstep_runs_are_byte_identical():
    """Two simulations of the same trace send the same frames, byte for byte."""

    def run():
        c = lockstep()
        for t in range(250_000, 8_000_001, 250_000):
            c.step(t)
        c.send_event(gh.FAN_DESIRED, 40.0, time_us=8_000_000)
        c.step(9_000_000)
        c.counters_device()
        return c.transcript

    first = run()
    assert len(first) > 50
    assert first == run()


def test_greenhouse_raises_hot_when_zone1_averages_above_28():
    """The count-window mean of zone 1 crosses 28 degC within one temperature cycle, and each
    hot event names the four readings it averages."""
    c = lockstep()
    events = c.step(12_000_000)
    avg = on(events, gh.Z1_TEMP_AVG)
    hot = on(events, gh.Z1_HOT)
    assert avg and hot
    assert all(e.value > gh.HOT_ABOVE_C for e in hot)
    assert {e.value for e in hot} <= {e.value for e in avg}
    assert all(e.lineage.route == SPEC.route_index(gh.Z1_TEMP_AVG) and e.lineage.count == 1 for e in hot)
    assert all(e.lineage.count == 4 for e in avg)
    assert all("det_seeded_entropy" in e.taint_names for e in avg), "the sensor noise is seeded"
    z2 = on(events, gh.Z2_TEMP_AVG)
    # 2 s windows every 1 s, stamped with their last microsecond; the readings come at 50 ms
    # past each 250 ms, so the window ending at 12 s waits for the reading at 12.05 s.
    assert [e.time_us for e in z2] == list(range(999_999, 11_000_000, 1_000_000)), "2 s windows every 1 s"


def test_fan_setpoint_is_desired_reported_effective():
    """A desired setpoint is applied after 200 ms (reported, then effective); while a new write
    is on its way, effective is the old setting marked coherence_write_pending."""
    c = lockstep()
    c.step(1_000_000)
    c.send_event(gh.FAN_DESIRED, 40.0, time_us=1_000_000)
    assert not on(c.events(), gh.FAN_EFFECTIVE), "nothing is in effect before the actuator reports"
    events = c.step(1_200_000)
    assert [e.value for e in on(events, gh.FAN_REPORTED)] == [40.0]
    assert [(e.value, e.taint_names) for e in on(events, gh.FAN_EFFECTIVE)] == [(40.0, [])]
    c.step(1_300_000)
    c.send_event(gh.FAN_DESIRED, 80.0, time_us=1_300_000)
    pending = on(c.events(), gh.FAN_EFFECTIVE)
    assert [(e.value, e.taint_names) for e in pending] == [(40.0, ["coherence_write_pending"])]
    events = c.step(1_500_000)
    assert [e.value for e in on(events, gh.FAN_EFFECTIVE)] == [80.0]
    assert c.latest(gh.FAN_EFFECTIVE).value == 80.0
    assert c.latest(gh.FAN_REPORTED).lineage == m.Lineage(SPEC.route_index(gh.FAN_DESIRED), 2, 1)


def test_queries_show_topology_counters_flow_and_taints():
    """Routes (by id), nodes, sources, counters, flow, taints and board facts describe the
    running partition."""
    c = lockstep()
    c.step(5_000_000)
    routes = c.routes()
    assert [r.id for r in routes] == [route_id(r.name) for r in SPEC.routes]
    assert routes[SPEC.route_index(gh.FAN_DESIRED)].link == 2
    assert routes[SPEC.route_index(gh.Z1_HOT)].link == 1
    nodes = c.nodes()
    assert len(nodes) == 8 and {n.op for n in nodes} == {0, 1, 2, 3, 4, 5, 7}
    binding = [n for n in nodes if n.op == 7][0]
    assert (binding.input, binding.output, binding.output2) == tuple(SPEC.route_index(r) for r in (gh.FAN_DESIRED, gh.FAN_EFFECTIVE, gh.FAN_REPORTED))
    assert [s.period_us for s in c.sources()] == [250_000, 250_000, 500_000, 500_000]
    counters = c.counters_device()
    assert counters.steps == 1 and counters.source_events == 21 + 20 + 10 + 10 and counters.nacks_tx == 0
    assert counters.sampled > 0, "the zone 2 humidity rate limiter drops values"
    flow = c.flow()
    assert all(f.dropped == 0 and f.depth == 0 for f in flow)
    assert flow[0].accepted == 21, "zone 1 temperature at 0, 0.25, ... 5 s"
    taints = c.taints()
    assert "delivery_sampled" in m.taint_names(taints[SPEC.route_index(gh.Z2_HUMIDITY)].seen)
    board = c.board()
    assert board.lockstep and board.time_us == 5_000_000
    assert (board.capacities.routes, board.capacities.nodes) == (16, 9)
    assert c.latest(gh.Z1_TEMP_AVG).time_us == 5_000_000


def test_free_running_sim_follows_its_clock():
    """Free-running, the simulated board runs on the port's virtual clock while the host waits,
    and heartbeats keep an idle link alive."""
    c = sim.open(IMAGE, board="mps2-an386", session=5)
    c.connect()
    events = c.poll(3.0)
    assert len(on(events, gh.Z1_TEMP_AVG)) >= 8
    assert c.port.now_us() >= 3_000_000
    assert c.state == "up"
    counters = c.counters_device()
    assert counters.stale == 0 and counters.messages_rx >= 3, "the host's heartbeats arrived"


def test_empty_region_is_described_not_crashed():
    """A simulated board with nothing in its partition region describes why, and refuses events."""
    c = sim.open(bytes(8192), board="lm3s6965evb", session=1)
    d = c.connect(lockstep=True, reset=True)
    assert (d.image_status_name, d.manifest_id, d.partition) == ("header_empty", None, "")
    with pytest.raises(NackError) as error:
        c.send_event(0, 1.0)
    assert error.value.reason == m.NackReason.NO_IMAGE


def test_refused_requests_raise_with_the_reason():
    """Events on a route the host does not own, steps out of lockstep and bad queries are nacked."""
    c = lockstep()
    with pytest.raises(NackError, match="route_not_inbound") as error:
        c.send_event(gh.Z1_HOT, 1.0)
    assert error.value.detail == SPEC.route_index(gh.Z1_HOT)
    with pytest.raises(NackError, match="value_kind_mismatch"):
        c.send_event(gh.FAN_DESIRED, True)
    with pytest.raises(NackError, match="query_bad_arg"):
        c.latest(99)
    with pytest.raises(NackError, match="step_backwards"):
        c.step(1_000)
        c.step(500)
    c.resume()
    with pytest.raises(NackError, match="not_lockstep"):
        c.step(2_000_000)


def test_upload_switches_the_partition():
    """The generic simulated board accepts uploads: a new image is checked and switched to; an
    invalid one is refused and the old one keeps running."""
    c = sim.open(IMAGE, board="sim", session=1)
    d = c.connect(lockstep=True, reset=True)
    assert d.capabilities & m.CAP_UPLOAD
    other = gh.greenhouse_spec(seed=9, manifest_id=bytes([7] * 32))
    c.upload(other.encode(), chunk_len=100)
    assert c.connect(lockstep=True).manifest_id == bytes([7] * 32)
    broken = bytearray(other.encode())
    broken[-3] ^= 0xFF
    with pytest.raises(NackError) as error:
        c.upload(bytes(broken))
    assert error.value.reason == m.NackReason.UPLOAD_DIGEST_MISMATCH or error.value.reason == m.NackReason.IMAGE_INVALID
    assert c.connect(lockstep=True).manifest_id == bytes([7] * 32)
    board = sim.open(IMAGE, board="lm3s6965evb", session=1)
    assert not board.connect().capabilities & m.CAP_UPLOAD, "a simulated real board says what the firmware says"
    with pytest.raises(NackError, match="upload_unsupported"):
        board.upload(IMAGE)


def test_the_route_table_held_after_an_upload_is_the_new_one():
    """After an upload the client holds the new partition's route table (the host role reads it
    again), not the old partition's."""
    c = sim.open(IMAGE, board="sim", session=1)
    c.connect(lockstep=True, reset=True)
    assert [r.id for r in c._native.routes_known] == [route_id(r.name) for r in SPEC.routes]
    name = "read.raw.demo.probe.other.meta.v1"
    c.upload(im.PartitionSpec("demo", [im.RouteSpec(name)], to_host=[name]).encode())
    assert [r.id for r in c._native.routes_known] == [route_id(name)]
    assert c.route_index(name) == 0
    with pytest.raises(LinkError, match=f"no route {gh.FAN_DESIRED}"):
        c.route_index(gh.FAN_DESIRED)


def test_route_names_resolve_with_the_table_held():
    """A route name resolves against the route table the host role read while connecting, with
    no query; a session opened without the table asks for it."""
    c = lockstep()
    sent = c.counters.messages_tx
    assert c.route_index(gh.FAN_DESIRED) == SPEC.route_index(gh.FAN_DESIRED)
    assert c.counters.messages_tx == sent, "no query"
    bare = sim.open(IMAGE, board="lm3s6965evb", session=2)
    bare.connect(fetch_routes=False)
    sent = bare.counters.messages_tx
    assert bare.route_index(gh.FAN_DESIRED) == SPEC.route_index(gh.FAN_DESIRED)
    assert bare.counters.messages_tx > sent, "the routes query"


def test_host_events_are_numbered_by_the_host_role():
    """send_event without a seq takes the one after the host's last event on the route (taken
    or refused); a new connect numbers from the device's last seq again."""
    c = lockstep()
    c.send_event(gh.FAN_DESIRED, 40.0, time_us=0)
    assert c.latest(gh.FAN_DESIRED).seq == 1
    c.send_event(gh.FAN_DESIRED, 41.0, seq=7, time_us=0)
    c.send_event(gh.FAN_DESIRED, 42.0, time_us=0)
    assert c.latest(gh.FAN_DESIRED).seq == 8
    with pytest.raises(NackError, match="seq_not_increasing"):
        c.send_event(gh.FAN_DESIRED, 43.0, seq=3, time_us=0)
    with pytest.raises(NackError, match="seq_not_increasing"):
        c.send_event(gh.FAN_DESIRED, 43.0, time_us=0)
    c.connect(lockstep=True)
    c.send_event(gh.FAN_DESIRED, 44.0, time_us=0)
    assert c.latest(gh.FAN_DESIRED).seq == 9
