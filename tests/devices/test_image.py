"""Partition images from typed specs: deterministic bytes, early refusal of bad specs with a
sentence, and agreement with the device's decoder (run through the extension)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manyfold._native import SimDevice
from manyfold.devices import image as im
from manyfold.devices.greenhouse import greenhouse_spec
from manyfold.devices.protocol import image_status_name


def test_greenhouse_image_is_deterministic_and_loads():
    """The same spec gives the same bytes; a board loads them; the header and body read back."""
    image = greenhouse_spec().encode()
    assert image == greenhouse_spec().encode()
    assert image != greenhouse_spec(seed=2).encode()
    info = im.read_image(image)
    assert (info.partition, info.routes, info.nodes, info.sources) == ("greenhouse-sensors", 14, 8, 4)
    assert info.manifest_id == greenhouse_spec().image_id()
    assert info.route_names[0] == "read.raw.greenhouse.zone1.temperature.meta.v1"
    assert SimDevice("lm3s6965evb", image).image_status == 0


def test_manifest_id_is_kept_when_given():
    """A manifest id from the compiler goes into the image as is."""
    mid = bytes(range(32))
    assert im.read_image(greenhouse_spec(manifest_id=mid).encode()).manifest_id == mid


def test_operators_are_written_in_topological_order():
    """Operators given out of order are written after those that feed them."""
    spec = greenhouse_spec()
    spec.operators.reverse()
    order = [type(op).__name__ for op in spec.ordered_operators()]
    assert order.index("Scale") < order.index("CountWindow") < order.index("Threshold")
    assert SimDevice("sim", spec.encode()).image_status == 0


def _route(n: str) -> im.RouteSpec:
    return im.RouteSpec(f"read.logical.t.t.{n}.meta.v1")


def test_bad_specs_are_refused_with_a_sentence():
    """Cycles, two producers, unknown routes and non-float sources are refused before encoding,
    naming what is wrong."""
    a, b = _route("a"), _route("b")
    cycle = im.PartitionSpec("p", [a, b], operators=[im.Scale(a.name, b.name), im.Scale(b.name, a.name)])
    with pytest.raises(im.ImageSpecError, match="cycle"):
        cycle.encode()
    twice = im.PartitionSpec("p", [a, b], sources=[im.Source(b.name, 1000)], operators=[im.Scale(a.name, b.name)])
    with pytest.raises(im.ImageSpecError, match=f"route {b.name} has two producers"):
        twice.encode()
    unknown = im.PartitionSpec("p", [a], to_host=["read.logical.t.t.nope.meta.v1"])
    with pytest.raises(im.ImageSpecError, match="no route named read.logical.t.t.nope.meta.v1"):
        unknown.encode()
    ints = im.PartitionSpec("p", [im.RouteSpec(a.name, im.ValueKind.INT)], sources=[im.Source(a.name, 1000)])
    with pytest.raises(im.ImageSpecError, match="sources publish floats"):
        ints.encode()
    with pytest.raises(im.ImageSpecError, match="1 to 32 bytes"):
        im.PartitionSpec("x" * 33, [a]).encode()
    threshold = im.PartitionSpec("p", [a, b], operators=[im.Threshold(a.name, b.name, above=1.0, below=2.0)])
    with pytest.raises(im.ImageSpecError, match="exactly one of above, below, inside, outside"):
        threshold.encode()


def test_device_refuses_what_exceeds_its_capacities():
    """A spec the encoder accepts but a board cannot hold is refused by the board with the
    capacity named (here: 17 routes for 16)."""
    spec = im.PartitionSpec("big", [_route(f"r{i}") for i in range(17)])
    assert image_status_name(SimDevice("lm3s6965evb", spec.encode()).image_status) == "load_too_many_routes"


_OPS = [
    lambda i, o: im.Scale(i, o, 2.0, 1.0),
    lambda i, o: im.Deadband(i, o, 0.5),
    lambda i, o: im.Threshold(i, o, inside=(0.0, 10.0)),
    lambda i, o: im.CountWindow(i, o, size=3, aggregate=im.Aggregate.MAX),
    lambda i, o: im.TimeWindow(i, o, width_us=3000, slide_us=1000, aggregate=im.Aggregate.SUM),
    lambda i, o: im.RateLimit(i, o, max_events=2, interval_us=5000),
    lambda i, o: im.Latest(i, o, period_us=2000),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(_OPS))), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_every_spec_that_fits_a_board_loads_on_it(chain, seed):
    """Any chain of operators (at most two windows) that the encoder accepts, a board accepts."""
    windows = sum(1 for k in chain if k in (3, 4))
    routes = [_route(f"r{i}") for i in range(len(chain) + 1)]
    ops = [_OPS[k](routes[i].name, routes[i + 1].name) for i, k in enumerate(chain)]
    spec = im.PartitionSpec(
        "chain", routes, sources=[im.Source(routes[0].name, 1000, im.Waveform.TRIANGLE, 5.0, 5.0, 10, 0.5, seed)],
        operators=ops, to_host=[routes[-1].name],
    )  # fmt: skip
    status = image_status_name(SimDevice("lm3s6965evb", spec.encode()).image_status)
    assert status == ("loaded" if windows <= 2 else "load_too_many_windows")
