"""Device queries as a library (manyfold.devices.queries): each answer is a typed object of
manyfold.query.device, asked of the host simulation in lockstep; dicts appear only at to_dict()."""

from __future__ import annotations

import json

import pytest

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as p
from manyfold.devices import queries
from manyfold.devices.image import Op, Overflow, ValueKind, Waveform, route_id
from manyfold.graph.taints import Taint
from manyfold.query import device as answers

SPEC = gh.greenhouse_spec()


@pytest.fixture
def board():
    """The greenhouse partition in the simulation, three seconds into a lockstep run."""
    client = sim.open(SPEC.encode(), board="lm3s6965evb", session=1)
    client.connect(lockstep=True, reset=True)
    client.step(3_000_000)
    yield client
    client.close()


def test_topology_is_typed(board):
    """Routes, nodes and sources come back as typed rows: route names from the reference
    partition, codes as the image format's enums, directions as RouteDirection."""
    t = queries.topology(board, port="sim://")
    assert isinstance(t, answers.DeviceTopology)
    assert (t.facts.port, t.facts.board, t.facts.partition, t.facts.manifest_id, t.facts.protocol) == (
        "sim://", "lm3s6965evb", "greenhouse-sensors", SPEC.image_id(), "1.1",
    )  # fmt: skip
    assert [r.name for r in t.routes] == [r.name for r in SPEC.routes]
    assert [r.id for r in t.routes] == [route_id(r.name) for r in SPEC.routes]
    fan = t.route(gh.FAN_DESIRED)
    assert (fan.index, fan.kind, fan.direction) == (SPEC.route_index(gh.FAN_DESIRED), ValueKind.FLOAT, answers.RouteDirection.FROM_HOST)
    assert t.route(2).direction is answers.RouteDirection.TO_HOST and t.route(0).direction is answers.RouteDirection.LOCAL
    assert [n.op for n in t.nodes] == [Op.SCALE, Op.COUNT_WINDOW, Op.THRESHOLD, Op.SCALE, Op.TIME_WINDOW, Op.DEADBAND, Op.RATE_LIMIT, Op.WRITE_BINDING]
    assert {n.overflow for n in t.nodes} == {Overflow.DROP_OLDEST}
    assert [s.waveform for s in t.sources] == [Waveform.TRIANGLE, Waveform.TRIANGLE, Waveform.RANDOM_WALK, Waveform.TRIANGLE]


def test_to_dict_puts_the_facts_first_and_names_the_codes(board):
    """to_dict() is the JSON `manyfold query --json` prints: the describe's facts, flat, then
    the rows, with ids in hex, schema hashes in hex and codes by name."""
    d = queries.topology(board, port="sim://").to_dict()
    assert list(d)[:6] == ["port", "board", "partition", "manifest_id", "protocol", "image_status"]
    assert d["manifest_id"] == SPEC.image_id().hex()
    fan = d["routes"][SPEC.route_index(gh.FAN_DESIRED)]
    assert fan == {
        "index": SPEC.route_index(gh.FAN_DESIRED), "id": f"{route_id(gh.FAN_DESIRED):08x}", "name": gh.FAN_DESIRED,
        "schema": fan["schema"], "kind": "float", "direction": "from host", "seq": 0,
    }  # fmt: skip
    assert len(bytes.fromhex(fan["schema"])) == 8
    assert d["nodes"][7] == {"index": 7, "op": "write_binding", "input": 11, "output": 13, "output2": 12, "mailbox_capacity": 2, "overflow": "drop_oldest"}
    assert d["sources"][2]["waveform"] == "random_walk"
    json.dumps(d)


def test_flow_taints_latest_counters_and_board_are_typed(board):
    """Each of the other queries returns its typed answer: mailbox rows with their operator,
    taints as Taint sets, the latest event as the protocol's Event, counters and board facts as
    the protocol's objects."""
    flow = queries.flow(board)
    assert [row.node for row in flow.flow] == list(range(8)) and flow.flow[7].op is Op.WRITE_BINDING
    assert all(row.accepted == row.delivered + row.depth + row.dropped for row in flow.flow)

    taints = queries.taints(board)
    avg = next(t for t in taints.taints if t.name == gh.Z1_TEMP_AVG)
    assert avg.seen == frozenset({Taint.DET_SEEDED_ENTROPY}) and avg.pending == frozenset()
    assert queries.taints(board).to_dict()["taints"][avg.route]["seen"] == ["det_seeded_entropy"]

    latest = queries.latest(board, gh.Z1_TEMP_AVG)
    assert (latest.route, latest.name) == (SPEC.route_index(gh.Z1_TEMP_AVG), gh.Z1_TEMP_AVG)
    assert isinstance(latest.event, p.Event) and latest.event.time_us == 3_000_000
    assert latest.to_dict()["event"] == latest.event.to_dict()
    assert queries.latest(board, str(latest.route)).event.seq == latest.event.seq

    counters = queries.counters(board)
    assert isinstance(counters.device, p.DeviceCounters) and counters.device.steps == 1
    facts = queries.board_facts(board)
    assert isinstance(facts.board_facts, p.BoardInfo) and facts.board_facts.time_us == 3_000_000
    assert facts.to_dict()["board_facts"]["capacities"]["routes"] == 16


def test_ask_runs_a_query_by_name(board):
    """ask() runs the query named as on the command line and returns the same typed answer."""
    assert isinstance(queries.ask(board, "flow"), answers.DeviceFlow)
    assert queries.ask(board, "latest", route="2").route == 2
    assert isinstance(queries.ask(board, "board"), answers.DeviceBoardReport)


def test_what_cannot_be_asked_is_a_query_error(board, tmp_path):
    """A query without the route it needs, a route it does not take, an unknown query or route,
    and an unreadable names file are errors with one sentence naming the problem."""
    with pytest.raises(queries.QueryError, match="`latest` needs a ROUTE"):
        queries.ask(board, "latest")
    with pytest.raises(queries.QueryError, match="ROUTE is only for `latest`, not `flow`"):
        queries.ask(board, "flow", route="3")
    with pytest.raises(queries.QueryError, match="unknown query 'routes'"):
        queries.ask(board, "routes")
    with pytest.raises(queries.QueryError, match=r"^unknown route 99: the device has 14 routes \(0 to 13\)$"):
        queries.latest(board, "99")
    with pytest.raises(queries.QueryError, match="unknown route 'read.logical.nope.meta.v1'"):
        queries.latest(board, "read.logical.nope.meta.v1")
    (tmp_path / "junk.bin").write_bytes(b"junk")
    with pytest.raises(queries.RouteNamesError, match="junk.bin is not a partition image"):
        queries.route_names_from_file(tmp_path / "junk.bin")
    with pytest.raises(queries.RouteNamesError, match="cannot read .*missing.bin: no such file"):
        queries.route_names_from_file(tmp_path / "missing.bin")
