"""Loading manifests into the Rust runtime: round trips, behaviour, and clear errors."""

from __future__ import annotations

import dataclasses
import json

import cbor2
import pytest
from manifestkit import r, small_graph

from manyfold import manifest
from manyfold.examples import greenhouse
from manyfold._native import RETAIN_DEFAULT
from manyfold.graph import FLOAT, Graph, ManifestError


def run_small(g) -> list[float]:
    p = g.producer("sensor")
    for v in (10.0, 35.0, 50.0, 60.0, 20.0):
        p.publish(r("sensor", "temp"), v)
    g.run_until_idle()
    return [e.value for e in g.replay(g.nodes["hot"].output)]


def test_compile_load_compile_is_byte_identical():
    """compile -> load (Rust) -> compile gives the same bytes, for both examples."""
    for g in (small_graph(), greenhouse.build().graph):
        m = manifest.compile(g)
        again = manifest.compile(manifest.load(m, callables=g._callables))
        assert again.to_cbor() == m.to_cbor()


def test_gated_max_travels_with_the_manifest():
    """A graph's gated_max is in its manifest's settings, and both loaders give it back."""
    g = Graph(gated_max=7)
    g.route(r("sensor", "temp"), FLOAT)
    m = manifest.compile(g)
    assert m.settings.gated_max == 7
    assert manifest.load(m).gated_max == 7
    bare = Graph()
    bare._native.load_manifest(m.to_cbor(), {}, None)
    assert bare.gated_max == 7


def test_a_manifest_route_without_retain_gets_the_graph_default():
    """A hand-written route with history 300 and no retain loads, retaining 300 as Graph.route(history=300) does; without either it takes the defaults (8 and RETAIN_DEFAULT)."""
    g = Graph()
    g.route(r("sensor", "temp"), FLOAT, history=300)
    g.route(r("sensor", "hum"), FLOAT)
    data = manifest.compile(g).to_data()
    expected = {str(x.route): (x.history, x.retain) for x in g._native.routes()}
    assert expected == {str(r("sensor", "temp")): (300, 300), str(r("sensor", "hum")): (8, RETAIN_DEFAULT)}
    for route in data["routes"]:
        del route["retain"]
        if route["history"] == 8:
            del route["history"]
    bare = Graph()
    bare._native.load_manifest(cbor2.dumps(data), {}, None)
    assert {str(x.route): (x.history, x.retain) for x in bare._native.routes()} == expected


def test_loaded_graph_behaves_like_the_original():
    """The loaded graph produces the same outputs for the same inputs."""
    original = small_graph()
    loaded = manifest.load(manifest.compile(original).to_cbor())
    assert run_small(loaded) == run_small(original) == [31.666666666666668, 48.333333333333336, 43.333333333333336]


def test_loaded_greenhouse_answers_the_same():
    """The greenhouse loaded from its manifest runs the same scenario to the same last command."""
    gh = greenhouse.build()
    loaded_graph = manifest.load(manifest.compile(gh.graph), callables=gh.graph._callables)
    twin = dataclasses.replace(gh, graph=loaded_graph, fan_commands=[])
    commands = []
    loaded_graph.subscribe(gh.fan.desired, lambda e: commands.append(e.value), name="twin_inbox")
    greenhouse.run(twin)
    original = greenhouse.run(greenhouse.build())
    assert loaded_graph.latest(gh.fan.desired).value == original.graph.latest(original.fan.desired).value
    assert commands[-1] == loaded_graph.latest(gh.fan.desired).value


def test_missing_functions_are_named():
    """Loading without the functions a node needs names each missing one and its node."""
    m = manifest.compile(greenhouse.build().graph)
    with pytest.raises(ManifestError, match=r"'hot_frames.fn' \(used by hot_frames\).*fan_speed_from_frame"):
        manifest.load(m)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="manyfold.graph.v9"), "unknown manifest format 'manyfold.graph.v9'"),
        (lambda d: d["routes"][0].pop("schema"), "has no field 'schema'"),
        (lambda d: d["routes"][0].update(history="many"), "field 'history' must be int"),
        (lambda d: d["routes"][0].update(route="read.logical.BAD.x.y.meta.v1"), "owner"),
        (lambda d: d["schemas"][0].update(type="double"), "does not hash|invalid type descriptor"),
        (lambda d: d["nodes"][1].update(kind="teleport"), "unknown operator kind"),
        (lambda d: d["edges"][0]["policy"].update(kind="pigeon"), "policy kind must be"),
        (lambda d: d["nodes"][0].update(inputs=["nowhere"]), "not in the manifest's edges"),
    ],
)
def test_hand_edited_manifests_give_clear_errors(edit, message):
    """Edited or broken manifests fail with a ManifestError naming the problem, not a traceback."""
    data = json.loads(manifest.compile(small_graph()).to_json())
    edit(data)
    with pytest.raises(ManifestError, match=message):
        manifest.load(json.dumps(data))


def test_truncated_and_garbage_files(tmp_path):
    """Truncated JSON, truncated CBOR and random bytes are refused with a sentence."""
    m = manifest.compile(small_graph())
    cases = {
        "trunc.json": m.to_json()[:200].encode(),
        "trunc.cbor": m.to_cbor()[:100],
        "noise.bin": bytes(range(7, 255, 3)),
        "empty.json": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ManifestError, match="not valid|empty|must be a map"):
            manifest.Manifest.read(path)
