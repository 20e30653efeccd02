"""Schemas from dataclasses: types, hashes and checks on publish."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

import cbor2
import pytest

from manyfold._native import schema_descriptor_cbor
from manyfold.graph import (
    FLOAT,
    INT,
    Graph,
    Layer,
    Plane,
    Route,
    Schema,
    SchemaCheckError,
    SchemaDefinitionError,
    schema,
)


@dataclass(frozen=True)
class Position:
    x: float
    y: float


@schema(version=3)
@dataclass(frozen=True)
class Reading:
    zone: str
    celsius: float
    ok: bool
    raw: bytes
    samples: list[int]
    where: Position
    note: Optional[str] = None


def strip_classes(d):
    """The descriptor without Python classes: what the hash covers."""
    if d[0] == "record":
        return ["record", d[1], [[name, strip_classes(t)] for name, t in d[2]]]
    if d[0] in ("list", "optional"):
        return [d[0], strip_classes(d[1])]
    return d[0]


def test_dataclass_fields_become_types():
    """Every supported field type maps to its schema type, nested records included."""
    s = Reading.__manyfold_schema__
    assert s.label == "Reading@3"
    assert strip_classes(s.descriptor) == [
        "record", "Reading",
        [["zone", "text"], ["celsius", "float"], ["ok", "bool"], ["raw", "bytes"], ["samples", ["list", "int"]],
         ["where", ["record", "Position", [["x", "float"], ["y", "float"]]]], ["note", ["optional", "text"]]],
    ]


def test_hash_is_sha256_of_canonical_cbor():
    """The hash is SHA-256 over canonical CBOR of [name, version, type], matching cbor2."""
    s = Reading.__manyfold_schema__
    expected = cbor2.dumps([s.name, s.version, strip_classes(s.descriptor)], canonical=True)
    assert schema_descriptor_cbor(s.name, s.version, s.descriptor) == expected
    assert s.hash == hashlib.sha256(expected).digest()


def test_hash_is_pinned():
    """The hash of float@1 is fixed forever: changing the algorithm breaks compatibility."""
    assert FLOAT.hash_hex == hashlib.sha256(bytes.fromhex("8365666c6f6174016566") + b"loat").hexdigest()
    assert FLOAT.hash_hex.startswith("355d39b4e008c31c")


def test_hash_is_stable_across_processes():
    """Other processes with other hash seeds compute the same schema hash."""
    code = (
        "from dataclasses import dataclass\n"
        "from manyfold.graph import schema\n"
        "@schema(version=3)\n@dataclass\nclass R:\n    a: int\n    b: list[float]\n"
        "print(R.__manyfold_schema__.hash_hex)"
    )
    hashes = {
        subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PATH": ""}, capture_output=True, text=True, check=True).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(hashes) == 1


def test_versions_and_names_change_the_hash():
    """A new version or name is a different schema."""
    assert Schema.of(float, version=2).hash != FLOAT.hash
    assert Schema.of(float, name="celsius").hash != FLOAT.hash
    assert Schema.of(int).hash == INT.hash


def test_unsupported_fields_are_refused():
    """A field of an unsupported type is refused with the field named."""

    @dataclass
    class Bad:
        when: complex

    with pytest.raises(SchemaDefinitionError, match="Bad.when"):
        Schema.of(Bad)
    with pytest.raises(SchemaDefinitionError, match="dataclass"):
        schema(int)


def test_publishing_the_wrong_type_is_refused():
    """A value of the wrong type never enters the graph; the error gives the path."""
    g = Graph()
    r = g.route(Route(Plane.READ, Layer.LOGICAL, "probe", "climate", "reading"), Reading)
    p = g.producer("probe")
    good = Reading("z1", 21.5, True, b"\x00", [1, 2], Position(0.0, 1.0))
    assert p.publish(r, good).seq == 1
    cases = [
        (Reading("z1", "hot", True, b"", [], Position(0, 0)), "Reading.celsius: expected float, got str"),
        (Reading("z1", 1.0, 1, b"", [], Position(0, 0)), "Reading.ok: expected bool, got int"),
        (Reading("z1", 1.0, True, b"", [1, "2"], Position(0, 0)), r"Reading.samples\[1\]: expected int"),
        (Reading("z1", 1.0, True, b"", [], Position(0, None)), "Reading.where.y: expected float"),
        (Position(1.0, 2.0), "Reading: expected Reading, got Position"),
    ]
    for value, message in cases:
        with pytest.raises(SchemaCheckError, match=message):
            p.publish(r, value)
    assert g.latest(r).seq == 1
    assert g.latest(r).value == good


def test_scalar_routes_check_types():
    """Float routes take floats and ints (not bools); int routes refuse floats."""
    g = Graph()
    f = g.route(Route.parse("read.logical.s.x.f.meta.v1"), FLOAT)
    i = g.route(Route.parse("read.logical.s.x.i.meta.v1"), INT)
    p = g.producer("s")
    p.publish(f, 3)
    assert g.latest(f).value == 3.0
    for bad in (True, "1.0", None):
        with pytest.raises(SchemaCheckError):
            p.publish(f, bad)
    with pytest.raises(SchemaCheckError, match="expected int, got float"):
        p.publish(i, 1.5)
