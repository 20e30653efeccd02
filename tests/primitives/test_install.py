"""Primitive.install: policies checked, the installer run, the instance recorded on the graph."""

from __future__ import annotations

import pytest
from primkit import COPY, TEMP, example_kwargs, graph

from manyfold import catalog, manifest
from manyfold.graph import Route
from manyfold.primitives import Installed, Maturity, PrimitiveError


def _values(g, route):
    return [e.value for e in g.replay(route)]


def test_an_installed_resistor_runs_and_is_recorded():
    """A Resistor installed from its contract shapes values like graph.resistor, and the graph records the instance."""
    g = graph()
    slow = catalog.get("Resistor").install(g, "slow_temp", source=TEMP, min_interval_us=1000)
    sensor = g.producer("sensor")
    for v in (20.0, 21.0, 22.0):
        sensor.publish(Route.parse(TEMP), v)
    g.run_until_idle()
    assert _values(g, slow.output) == [20.0]
    g.advance(1000)
    assert _values(g, slow.output) == [20.0, 22.0]
    record = g.primitives["slow_temp"]
    assert (record.contract, record.version, record.maturity, record.policies) == ("Resistor", 1, Maturity.EXECUTABLE, {"min_interval_us": 1000})
    assert record.nodes == ("slow_temp",) and record.routes == (slow.output,)
    assert slow.port("output") == slow.output and slow.node.kind == "resistor"


def test_an_installed_mailbox_delivers_through_the_scheduler():
    """A Mailbox instance holds values until the scheduler runs, and applies its capacity."""
    g = graph()
    catalog.get("Mailbox").install(g, "buffer", source=TEMP, sink=COPY, capacity=2, overflow="drop_oldest")
    sensor = g.producer("sensor")
    for v in (1.0, 2.0, 3.0):
        sensor.publish(Route.parse(TEMP), v)
    assert _values(g, Route.parse(COPY)) == []
    g.run_until_idle()
    assert _values(g, Route.parse(COPY)) == [2.0, 3.0]
    (edge,) = [e for e in manifest.compile(g).edges if e.target == "buffer"]
    assert (edge.policy.kind, edge.policy.capacity, edge.policy.overflow) == ("mailbox", 2, "drop_oldest")


EXECUTABLE = [c.name for c in catalog.all() if c.maturity >= Maturity.EXECUTABLE and c.name not in ("DurableQueue", "MaterializedView")]


@pytest.mark.parametrize("name", EXECUTABLE)
def test_every_executable_contract_installs_compiles_validates_and_loads(name):
    """Each executable contract installs, its nodes are of its kinds, the manifest validates clean and loads with the instance."""
    g = graph()
    contract = catalog.get(name)
    installed = contract.install(g, "inst", **example_kwargs(name))
    assert isinstance(installed, Installed) and installed.nodes
    assert all(n.kind in contract.kinds for n in installed.nodes)
    m = manifest.compile(g)
    assert [p.instance for p in m.primitives] == ["inst"] and m.primitives[0].contract == name
    assert manifest.validate(m) == []
    loaded = manifest.load(m)
    assert loaded.primitives["inst"].contract == name
    assert manifest.compile(loaded).to_cbor() == m.to_cbor()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"source": TEMP}, "policy min_interval_us is required"),
        ({"source": TEMP, "min_interval_us": "1ms"}, "policy min_interval_us must be int, got str '1ms'"),
        ({"source": TEMP, "min_interval_us": 5, "speed": 3}, "unknown policy speed (its policies: min_interval_us)"),
        ({"min_interval_us": 5}, "needs a route for its source port: pass source=<route>"),
    ],
)
def test_install_refuses_bad_policies_in_one_sentence(kwargs, words):
    """A missing, mistyped or unknown policy, or a missing input route, is a one-sentence PrimitiveError naming the instance."""
    with pytest.raises(PrimitiveError) as info:
        catalog.get("Resistor").install(graph(), "slow", **kwargs)
    assert str(info.value).startswith("Resistor slow") and words in str(info.value) and "\n" not in str(info.value)


def test_a_choice_policy_refuses_other_values():
    """An enum-typed policy takes its words only."""
    with pytest.raises(PrimitiveError, match="policy overflow must be one of block, drop_oldest, drop_newest, reject, got 'spill'"):
        catalog.get("Mailbox").install(graph(), "buffer", source=TEMP, sink=COPY, capacity=2, overflow="spill")


def test_a_named_only_primitive_has_nothing_to_install():
    """Installing a named-only primitive is refused with the contract's sentence."""
    with pytest.raises(PrimitiveError, match="^Lease is named only in this version: nothing to install$"):
        catalog.get("Lease").install(graph(), "owner")


def test_two_instances_cannot_share_a_name():
    """A second instance with a taken name is refused, naming the first one's contract."""
    g = graph()
    catalog.get("Resistor").install(g, "slow", source=TEMP, min_interval_us=1000)
    with pytest.raises(PrimitiveError, match="already has a primitive instance called slow \\(Resistor\\)"):
        catalog.get("Sample").install(g, "slow", source=TEMP, period_us=1000)


def test_instance_names_are_lower_snake_case():
    """An instance name that cannot be a node name is refused before anything is built."""
    g = graph()
    with pytest.raises(PrimitiveError, match="lower snake case"):
        catalog.get("Resistor").install(g, "Slow Temp", source=TEMP, min_interval_us=1000)
    assert g.nodes == {} and g.primitives == {}


def test_installed_exposes_ports_by_name_and_attribute():
    """installed.port(name) and installed.<name> give the port's route; an unknown port is a sentence."""
    g = graph()
    slow = catalog.get("Resistor").install(g, "slow", source=TEMP, min_interval_us=1000)
    assert slow.source == Route.parse(TEMP) == slow.port("source")
    with pytest.raises(PrimitiveError, match="slow has no port 'egress'; its ports are output, source"):
        slow.port("egress")
    with pytest.raises(AttributeError):
        slow.egress


def test_one_contract_installs_into_many_graphs_with_different_policies():
    """The same contract object installs into two graphs with different policies; each records its own."""
    contract = catalog.get("RateLimiter")
    a, b = graph(), graph()
    contract.install(a, "limit", source=TEMP, max_events=1, interval_us=1000)
    contract.install(b, "limit", source=TEMP, max_events=5, interval_us=10)
    assert a.primitives["limit"].policies == {"interval_us": 1000, "max_events": 1}
    assert b.primitives["limit"].policies == {"interval_us": 10, "max_events": 5}


def test_policies_are_recorded_as_plain_data():
    """Enum, schema and taint policies appear in the manifest as words (the record's JSON round-trips)."""
    g = graph()
    catalog.get("WriteBinding").install(g, "heater", **example_kwargs("WriteBinding"))
    catalog.get("Repair").install(g, "fix", **example_kwargs("Repair"))
    m = manifest.compile(g)
    assert m.primitive("heater").policies["schema"] == "float@1" and m.primitive("heater").policies["idempotency"] == "absolute_value"
    assert m.primitive("fix").policies["clears"] == ["delivery_dropped"]
    assert manifest.Manifest.from_json(m.to_json()) == m


def test_an_installer_returning_an_undeclared_port_is_refused():
    """An installer may only expose ports its contract declares."""
    from manyfold.primitives import Family, Layer, Port, Primitive

    def install(ctx, **policies):
        node = ctx.graph.resistor(ctx.input("source"), min_interval_us=10, name=ctx.name())
        ctx.add_node(node)
        return Installed({"source": ctx.input("source"), "egress": node.output})

    bad = Primitive.define(name="Bad", version=1, family=Family.FLOW, layer=Layer.LOCAL, summary="Bad.", inputs=(Port("source", "T"),),
                           maturity="installable", installer=install)
    g = graph()
    with pytest.raises(PrimitiveError, match="returned port egress, which the contract does not declare"):
        bad.install(g, "bad", source=TEMP)
    assert "bad" not in g.primitives
