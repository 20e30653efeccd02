"""The node-link vectors (runtime_nostd/vectors/mesh.json) against the independent Python oracle
``oracle_mesh`` (docs/wire.md section 4). The Rust codec is held to the same vectors by
runtime_nostd/tests/mesh_vectors.rs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import oracle_mesh as o

VECTORS = Path(__file__).resolve().parents[2] / "runtime_nostd" / "vectors"


def _vectors() -> dict:
    return json.loads((VECTORS / "mesh.json").read_text())


def test_generator_reproduces_committed_vectors():
    """The committed mesh.json is exactly what generate_mesh.py writes."""
    spec = importlib.util.spec_from_file_location("generate_mesh", VECTORS / "generate_mesh.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert json.dumps(gen.mesh_vectors(), indent=1) + "\n" == (VECTORS / "mesh.json").read_text()


@pytest.mark.parametrize("case", _vectors()["messages"], ids=lambda c: c["name"])
def test_valid_message_decodes_and_encodes(case):
    """A valid vector decodes to its fields and encodes to its bytes; its first byte is a kind
    byte in 0xc0..0xcf (never 0xff: docs/wire.md 1.5)."""
    data = bytes.fromhex(case["hex"])
    assert 0xC0 <= data[0] <= 0xCF
    assert o.decode(data) == case["fields"]
    assert o.encode(case["fields"]) == data


@pytest.mark.parametrize("case", _vectors()["invalid"], ids=lambda c: c["name"])
def test_invalid_message_fails_with_its_error(case):
    """An invalid vector raises MeshDecodeError with the spec's error name."""
    with pytest.raises(o.MeshDecodeError) as error:
        o.decode(bytes.fromhex(case["hex"]))
    assert error.value.kind == case["error"]


def test_sealed_frames():
    """Sealed vectors open to their counter and message and seal to their bytes; forged ones fail."""
    v = _vectors()
    for case in v["sealed"]:
        key, body = bytes.fromhex(case["key"]), bytes.fromhex(case["hex"])
        assert o.unseal(key, case["direction"], body) == (case["counter"], bytes.fromhex(case["message_hex"]))
        assert o.seal(key, case["direction"], case["counter"], bytes.fromhex(case["message_hex"])) == body
    for case in v["sealed_invalid"]:
        with pytest.raises(o.MeshDecodeError) as error:
            o.unseal(bytes.fromhex(case["key"]), case["direction"], bytes.fromhex(case["hex"]))
        assert error.value.kind == case["error"], case["name"]


def test_capability_tables():
    """Provided = requested ∩ (transport ∪ ordered ∪ reliable ∪ authenticated when keyed ∪ lazy),
    never durable; each missing capability's taint is the table's."""
    v = _vectors()
    assert v["caps"] == [[bit, name, o.MISSING_TAINT[name]] for bit, name in o.CAPS]
    for case in v["provided"]:
        assert o.provided(case["requested"], case["transport"], case["keyed"]) == case["provided"]
        assert case["missing"] == case["requested"] & ~case["provided"]
        assert not case["provided"] & 4


@given(st.binary(max_size=80), st.integers(0xC0, 0xCF))
@example(bytes(8), 0xC2)  # a refuse with a reason code the oracle has no name for
def test_oracle_decodes_or_refuses_any_bytes(rest, kind):
    """The oracle never fails otherwise than with MeshDecodeError, and what it decodes re-encodes
    to the same bytes."""
    data = bytes([kind]) + rest
    try:
        m = o.decode(data)
    except o.MeshDecodeError:
        return
    assert o.encode(m) == data


def test_lazy_event_carries_its_metadata_and_fetch_replies_name_refusals():
    """A lazy event carries its metadata value (as an inline payload is), then the payload's
    length and SHA-256; a fetch_reply carries a piece of the payload or names why not
    (docs/wire.md 4.10)."""
    (case,) = [c for c in _vectors()["messages"] if c["name"] == "events_every_field"]
    lazy = case["fields"]["events"][1]["payload"]["lazy"]
    assert lazy == {"meta": "a1646b696e6401", "len": 1 << 40, "digest": bytes(range(100, 132)).hex()}
    meta = bytes.fromhex(lazy["meta"])
    event = {"link_seq": 1, "route": 0, "seq": 1, "time_us": 0, "domain": 0, "taints": 0, "parents": [], "payload": {"lazy": lazy}}
    body = o.encode_event(event)
    assert body[0] == o.LAZY and body[4] == len(meta) and body[5 : 5 + len(meta)] == meta
    assert body[5 + len(meta) :] == o.uvarint(1 << 40) + bytes(range(100, 132))
    assert o.decode(o.encode({"kind": "events", "session": 1, "base": 0, "events": [event]}))["events"] == [event]
    for refused, byte in (("not_held", 0), ("too_large", 2)):
        m = {"kind": "fetch_reply", "session": 1, "route": 0, "seq": 1, "offset": 0, "total": None, "payload": None, "refused": refused}
        assert o.encode(m)[-1] == byte and o.decode(o.encode(m)) == m
    # A payload larger than a message comes in pieces: each reply says where it starts and the
    # payload's whole length.
    (piece,) = [c for c in _vectors()["messages"] if c["name"] == "fetch_reply_last_piece"]
    f = piece["fields"]
    assert (f["offset"], f["total"], len(bytes.fromhex(f["payload"]))) == (16_000, 16_384, 384)
