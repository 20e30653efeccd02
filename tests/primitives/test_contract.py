"""Primitive.define: a contract is checked as a whole, and its parts are typed data."""

from __future__ import annotations

import pytest

from manyfold.primitives import (
    Failure, Family, Handled, Layer, Maturity, OutsideProfile, Policy, Port, Primitive, PrimitiveError, State, StateKind,
    handled, outside_profile,
)


def _installer(ctx, **policies):
    raise AssertionError("not called")


def _define(**overrides):
    fields = dict(name="Thing", version=1, family=Family.FLOW, layer=Layer.LOCAL, summary="A thing.")
    fields.update(overrides)
    return Primitive.define(**fields)


ALL_SIX = {f: outside_profile("no state to lose") for f in Failure}


def test_enums_are_lower_snake_case_words():
    """The enums' values are the contract's words, so manifests and JSON use them as written."""
    assert [f.value for f in Family] == ["flow", "handoff", "state", "coordination", "partitioning", "replication", "operations"]
    assert [m.value for m in Maturity] == ["named", "installable", "validated", "executable", "fault_tested", "stable"]
    assert [f.value for f in Failure] == ["crash", "retry", "timeout", "duplicate", "stale_owner", "partition"]
    assert [k.value for k in StateKind] == ["volatile", "durable", "replicated", "external"]
    assert "durable" in [layer.value for layer in Layer] and len(Layer) == 8


def test_maturity_is_ordered():
    """Maturity compares by level, not alphabetically (executable < fault_tested < stable)."""
    assert Maturity.NAMED < Maturity.INSTALLABLE < Maturity.VALIDATED < Maturity.EXECUTABLE < Maturity.FAULT_TESTED < Maturity.STABLE
    assert Maturity.STABLE >= Maturity.FAULT_TESTED and not Maturity.EXECUTABLE >= Maturity.FAULT_TESTED
    assert sorted([Maturity.STABLE, Maturity.NAMED, Maturity.EXECUTABLE]) == [Maturity.NAMED, Maturity.EXECUTABLE, Maturity.STABLE]


def test_define_takes_strings_for_enums_and_keeps_fields_public():
    """Family, layer and maturity may be given as words; the contract keeps typed fields."""
    c = _define(family="handoff", layer="durable", maturity="installable", installer=_installer,
                inputs=(Port("ingress", "T", "in"),), policies=(Policy("capacity", int, required=True),),
                state=(State("log", StateKind.DURABLE, store="EventLog"),))
    assert (c.family, c.layer, c.maturity) == (Family.HANDOFF, Layer.DURABLE, Maturity.INSTALLABLE)
    assert c.port("ingress").type == "T" and c.policy("capacity").required and c.durable_stores() == ["EventLog"]


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"name": "durable_queue"}, "CamelCase"),
        ({"version": 0}, "version must be an integer from 1"),
        ({"summary": ""}, "one-sentence summary"),
        ({"family": "plumbing"}, "family must be one of"),
        ({"maturity": "executable"}, "has no installer; without one it is named only"),
        ({"installer": _installer}, "at least installable"),
        ({"maturity": "fault_tested", "installer": _installer, "failures": {Failure.CRASH: outside_profile("x")}},
         "says nothing about retry, timeout, duplicate, stale_owner, partition"),
        ({"maturity": "fault_tested", "installer": _installer, "failures": {**ALL_SIX, Failure.CRASH: handled("replays")}},
         "handles crash without naming a test"),
        ({"failures": {"crash": "replays"}}, "must be handled(...) or outside_profile(...)"),
        ({"inputs": (Port("a", "T"),), "outputs": (Port("a", "T"),)}, "name a twice"),
        ({"inputs": (Port("capacity", "int"),), "policies": (Policy("capacity", int),)}, "both a port and a policy"),
    ],
)
def test_define_refuses_a_malformed_contract_in_one_sentence(overrides, words):
    """Each way a contract can be wrong is refused with a PrimitiveError saying what is wrong."""
    with pytest.raises(PrimitiveError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")) as info:
        _define(**overrides)
    assert "\n" not in str(info.value)


def test_a_durable_state_names_its_store():
    """Durable state without the kind of store that keeps it is refused."""
    with pytest.raises(PrimitiveError, match="name the kind of store"):
        State("log", StateKind.DURABLE)


def test_coverage_lists_all_six_failures_in_order():
    """coverage() has one entry per failure, None where the contract is silent."""
    c = _define(failures={Failure.DUPLICATE: handled("dedup by key", tests=("tests/x.py::test_y",)), Failure.PARTITION: outside_profile("one node")})
    coverage = dict(c.coverage())
    assert list(coverage) == list(Failure)
    assert isinstance(coverage[Failure.DUPLICATE], Handled) and coverage[Failure.DUPLICATE].tests == ("tests/x.py::test_y",)
    assert isinstance(coverage[Failure.PARTITION], OutsideProfile) and coverage[Failure.CRASH] is None


def test_a_fault_tested_contract_with_all_six_is_accepted():
    """fault_tested is accepted once every failure is handled with tests or declared outside."""
    c = _define(maturity=Maturity.FAULT_TESTED, installer=_installer, failures={**ALL_SIX, Failure.CRASH: handled("replays", tests=("tests/x.py::test_y",))})
    assert c.maturity == Maturity.FAULT_TESTED and not c.named_only


def test_policy_checks_values():
    """A policy converts enums to their words and ints to floats, and refuses wrong types and choices."""
    from manyfold.graph import Overflow

    assert Policy("overflow", Overflow).check(Overflow.REJECT, "q") == "reject"
    assert Policy("band", float).check(2, "q") == 2.0
    with pytest.raises(PrimitiveError, match="policy capacity must be int, got bool True"):
        Policy("capacity", int).check(True, "q")
    with pytest.raises(PrimitiveError, match="policy mode must be one of a, b, got 'c'"):
        Policy("mode", str, choices=("a", "b")).check("c", "q")
    with pytest.raises(PrimitiveError, match="required, so it cannot have a default"):
        Policy("capacity", int, required=True, default=3)
