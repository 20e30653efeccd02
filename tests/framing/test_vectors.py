"""The shared frame vectors against the Python API (which runs the Rust codec)."""

from __future__ import annotations

import pytest

from manyfold.framing import (
    FrameDecoder,
    FrameError,
    FrameErrorKind,
    crc32c,
    decode_datagram,
    encode_datagram,
    encode_frame,
)

READ_LENS = [1, 2, 5, 64, 4096, None]


def test_generator_reproduces_committed_vectors(reference):
    """The committed vectors are exactly what the third-party-codec generator produces."""
    from framekit import ROOT

    committed = (ROOT / "framing" / "vectors" / "vectors.json").read_text()
    assert reference.render() == committed


def test_crc_check_value(vectors):
    """CRC-32C parameters match the catalogue check value 0xE3069283."""
    check = vectors["crc32c_check"]
    assert f"{crc32c(bytes.fromhex(check['input'])):08x}" == check["crc"] == "e3069283"


def test_frames_and_datagrams_byte_exact(vectors):
    """Every vector message encodes to the reference frame and datagram and decodes back."""
    for case in vectors["frames"]:
        message = bytes.fromhex(case["message"])
        assert encode_frame(message).hex() == case["frame"], case["name"]
        assert encode_datagram(message).hex() == case["datagram"], case["name"]
        assert decode_datagram(bytes.fromhex(case["datagram"])) == message, case["name"]
        assert FrameDecoder().feed(bytes.fromhex(case["frame"])) == [message], case["name"]


def test_vectors_cover_the_edges(vectors):
    """The vector set has the cases the spec calls out: zeros, COBS block edges, max size."""
    names = {case["name"] for case in vectors["frames"]}
    assert {"zero_1", "zeros_max", "nonzero_max", "random_max"} <= names
    assert {f"nonzero_run_{n}" for n in (253, 254, 255, 256)} <= names
    sizes = {len(bytes.fromhex(case["message"])) for case in vectors["frames"]}
    assert max(sizes) == vectors["max_message_default"] == 4096


@pytest.mark.parametrize("read_len", READ_LENS)
def test_corrupt_streams(vectors, read_len):
    """Each corrupt stream gives the reference messages and counts, whatever the read size."""
    for case in vectors["streams"]:
        stream = bytes.fromhex(case["stream"])
        step = read_len or max(len(stream), 1)
        decoder = FrameDecoder(max_message=case["max_message"])
        got = []
        for start in range(0, len(stream), step):
            got.extend(decoder.feed(stream[start : start + step]))
        assert [m.hex() for m in got] == case["messages"], case["name"]
        stats = decoder.stats
        assert {k: getattr(stats, k) for k in case["stats"]} == case["stats"], case["name"]


def test_corrupt_datagrams(vectors):
    """Corrupt datagrams raise FrameError with the expected kind; a valid one decodes."""
    for case in vectors["datagrams"]:
        datagram = bytes.fromhex(case["datagram"])
        if case["error"] is None:
            assert decode_datagram(datagram, max_message=case["max_message"]) == datagram[:-4]
            continue
        with pytest.raises(FrameError) as raised:
            decode_datagram(datagram, max_message=case["max_message"])
        assert raised.value.kind is FrameErrorKind(case["error"]), case["name"]
