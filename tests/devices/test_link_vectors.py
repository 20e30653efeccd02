"""The shared link and image vectors (runtime_nostd/vectors/) against the independent Python
oracles (``oracle`` for v1, ``oracle_v11`` for v1.1) and, through the extension, against the
device code the boards run. (The Rust codecs are held to the same vectors by
runtime_nostd/tests/vectors.rs.)"""

from __future__ import annotations

import importlib.util
import json

import pytest
from devkit import VECTORS, fields_json, load_vectors
from hypothesis import given
from hypothesis import strategies as st

import oracle as m
import oracle_v11

from manyfold._native import SimDevice
from manyfold.devices import protocol


def _generator():
    spec = importlib.util.spec_from_file_location("vectors_generate", VECTORS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_vectors():
    """The committed vector files are exactly what generate.py writes (cbor2 + the image encoder)."""
    gen = _generator()
    for name, data in (("link.json", gen.link_vectors()), ("link_v11.json", gen.link_v11_vectors()), ("images.json", gen.image_vectors())):
        assert json.dumps(data, indent=1) + "\n" == (VECTORS / name).read_text(), name


@pytest.mark.parametrize("case", load_vectors("link.json")["messages"], ids=lambda c: c["name"])
def test_valid_message_decodes_and_reencodes(case):
    """A valid vector decodes to its kind, id and fields, and re-encodes to its canonical bytes."""
    message = m.decode(bytes.fromhex(case["hex"]))
    assert message.kind.name.lower() == case["kind"]
    assert message.id == case["id"]
    assert fields_json(message.body) == case["fields"]
    assert m.encode(message).hex() == case.get("canonical_hex", case["hex"])


@pytest.mark.parametrize("case", load_vectors("link.json")["invalid"], ids=lambda c: c["name"])
def test_invalid_message_fails_with_its_error(case):
    """An invalid vector raises LinkDecodeError with the spec's error name."""
    with pytest.raises(m.LinkDecodeError) as error:
        m.decode(bytes.fromhex(case["hex"]))
    assert error.value.kind == case["error"]


def test_names_match_the_vectors():
    """Taint names, nack reasons, counters and image errors of the vectors are the ones of the
    oracle and of the Rust core (through the extension's tables)."""
    v = load_vectors("link.json")
    assert list(m.TAINT_NAMES) == v["taint_names"] == list(protocol.TAINT_NAMES)
    assert [r.name.lower() for r in m.NackReason] == v["nack_reasons"] == [r.name.lower() for r in protocol.NackReason]
    assert list(m.COUNTER_NAMES) == v["counters"] == list(protocol.DeviceCounters().to_dict())
    assert list(m.IMAGE_ERRORS) == load_vectors("images.json")["image_errors"]
    assert [protocol.image_status_name(i + 1) for i in range(len(m.IMAGE_ERRORS))] == list(m.IMAGE_ERRORS)


@pytest.mark.parametrize("case", load_vectors("link_v11.json")["host"], ids=lambda c: c["name"])
def test_v11_host_message_round_trips_in_the_oracle(case):
    """A v1.1 host vector decodes (as a device reads it) and re-encodes to its bytes."""
    message = oracle_v11.decode_host(bytes.fromhex(case["hex"]))
    assert message.kind.name.lower() == case["kind"] and message.id == case["id"]
    assert oracle_v11.encode_host(message.id, message.body).hex() == case["hex"]


@pytest.mark.parametrize("case", load_vectors("link_v11.json")["forms"], ids=lambda c: c["name"])
def test_v11_short_forms_expand_to_the_event(case):
    """A form vector, read by a host holding the references the sender assumed (its route's
    seq and declared taints, and any time between acked and sent), is the vector's event."""
    data = bytes.fromhex(case["hex"])
    e = case["event"]
    for x in {case["acked_us"], case["sent_us"], (case["acked_us"] + case["sent_us"]) // 2}:
        refs = oracle_v11.Refs(time_us=x)
        refs.routes[e["route"]] = oracle_v11.RouteRef(e["seq"] - 1, case["declared"] if case["announced"] else None)
        (got,) = oracle_v11.decode_device(data, refs)
        assert (got.body.seq, got.body.time_us, got.body.taints) == (e["seq"], e["time_us"], e["taints"]), x


@pytest.mark.parametrize("case", load_vectors("images.json")["invalid"], ids=lambda c: c["name"])
def test_broken_image_is_refused_by_the_device(case):
    """A simulated board (the firmware's code) refuses each broken image with its error."""
    device = SimDevice("lm3s6965evb", bytes.fromhex(case["hex"]))
    assert m.image_status_name(device.image_status) == case["error"]


def test_greenhouse_image_loads_on_a_board():
    """The greenhouse vector loads on a simulated board with the board's capacities."""
    g = load_vectors("images.json")["greenhouse"]
    assert SimDevice("mps2-an386", bytes.fromhex(g["hex"])).image_status == 0


_u32 = st.integers(0, 2**32 - 1)
_i64 = st.integers(-(2**63), 2**63 - 1)
_values = st.one_of(st.booleans(), _i64, st.floats(allow_nan=False))
_events = st.builds(
    m.Event, st.integers(0, 65535), _u32, _i64, _u32, st.integers(0, 2**24 - 1),
    st.builds(m.Lineage, st.integers(0, 65535), _u32, _u32), _values,
)  # fmt: skip
_bodies = st.one_of(
    st.builds(m.Hello, _u32, _u32, _u32, st.integers(0, 255), _i64),
    _events,
    st.builds(m.Ack, _u32, _i64),
    st.builds(m.Nack, st.one_of(st.none(), _u32), st.sampled_from(list(m.NackReason)), _u32),
    st.builds(m.Query, st.integers(0, 255), _u32),
    st.builds(m.Step, _i64, _u32),
    st.builds(m.UploadChunk, _u32, st.binary(max_size=64)),
    st.just(m.Resume()),
)


@given(_u32, _bodies)
def test_messages_round_trip(msg_id, body):
    """Any message the host can build encodes and decodes back to itself."""
    message = m.Message(msg_id, body)
    assert m.decode(m.encode(message)) == message
