"""Route identity: typed parts, validation, printing and parsing."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manyfold.graph import Layer, Plane, Route, RouteError, Variant

segment = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
routes = st.builds(
    Route,
    st.sampled_from(Plane.members()),
    st.sampled_from(Layer.members()),
    segment,
    segment,
    segment,
    st.sampled_from(Variant.members()),
    st.integers(min_value=1, max_value=10_000),
)


def test_prints_seven_parts():
    """A route prints as plane.layer.owner.family.stream.variant.vN."""
    r = Route(Plane.WRITE, Layer.SHADOW, "fan", "climate", "setpoint", Variant.DESIRED, 2)
    assert str(r) == "write.shadow.fan.climate.setpoint.desired.v2"
    assert (r.plane, r.layer, r.owner, r.family, r.stream, r.variant, r.version) == (
        Plane.WRITE, Layer.SHADOW, "fan", "climate", "setpoint", Variant.DESIRED, 2,
    )


@given(routes)
def test_parse_print_round_trip(route):
    """Parsing a printed route gives the same route back."""
    assert Route.parse(str(route)) == route


@given(routes, routes)
def test_identity_is_injective(a, b):
    """Two different routes never print alike."""
    assert (a == b) == (str(a) == str(b))


@pytest.mark.parametrize("owner", ["o.x", "", "Upper", "9lives", "a-b", "a b", "x" * 49])
def test_ambiguous_segments_are_refused(owner):
    """Segments that could make two routes print alike are refused with the part named."""
    with pytest.raises(RouteError, match="owner"):
        Route(Plane.READ, Layer.RAW, owner, "f", "s")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("read.logical.a.b.c.meta", "expected 7"),
        ("read.fancy.a.b.c.meta.v1", "layer"),
        ("read.logical.a.b.c.wat.v1", "variant"),
        ("read.logical.a.b.c.meta.v0", "version"),
        ("read.logical.a.b.c.meta.v01", "leading zeros"),
        ("write.logical.A.b.c.meta.v1", "owner"),
    ],
)
def test_parse_errors_are_sentences(text, fragment):
    """Malformed text raises RouteError naming the bad part."""
    with pytest.raises(RouteError, match=fragment):
        Route.parse(text)


def test_routes_are_values():
    """Routes hash, compare, sort, pickle and derive like values."""
    a = Route.parse("read.logical.s.f.a.meta.v1")
    b = a.replace(stream="b")
    assert a != b and len({a, b, Route.parse(str(a))}) == 2
    assert sorted([b, a]) == [a, b]
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(Plane.QUERY)) == Plane.QUERY
    assert repr(a) == "Route.parse('read.logical.s.f.a.meta.v1')"
    with pytest.raises(RouteError):
        a.replace(owner="Bad")


def test_enum_words():
    """Planes, layers and variants have stable lowercase words."""
    assert [p.word for p in Plane.members()] == ["read", "write", "state", "query", "debug"]
    assert [l.word for l in Layer.members()] == ["raw", "logical", "shadow", "bulk", "internal", "ephemeral"]
    assert Variant.parse("query_response") == Variant.QUERY_RESPONSE
    with pytest.raises(RouteError, match="expected one of"):
        Plane.parse("writes")


def test_a_long_object_where_a_route_belongs_is_shown_cut():
    """A RouteError names a wrong argument by its repr cut to 60 characters, like every other argument error."""
    from manyfold.graph import Graph

    with pytest.raises(RouteError) as caught:
        Graph().latest(list(range(100)))
    shown = repr(list(range(100)))[:57] + "..."
    assert f"expected a route, got list {shown}: pass the Route" in str(caught.value)
