"""The Rust codec (through the Python API) against an independent reference made of third-party
codecs: the `cobs` package and crcmod's predefined crc-32c. Hypothesis generates messages and
byte streams these tests have never seen."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from framekit import reference_codec
from manyfold.framing import FrameDecoder, crc32c, decode_datagram, encode_datagram, encode_frame

reference = reference_codec()

messages = st.one_of(
    st.binary(min_size=1, max_size=64),
    st.lists(st.sampled_from([0, 1, 0xFF]), min_size=1, max_size=700).map(bytes),
    st.binary(min_size=1000, max_size=4096),
)


@given(st.binary(max_size=2000))
def test_crc32c_matches_crcmod(data):
    """Our CRC-32C equals crcmod's predefined crc-32c on arbitrary data."""
    assert crc32c(data) == reference._crc32c(data)


@given(messages)
@settings(max_examples=300)
def test_encodings_match_reference(message):
    """Frames and datagrams are byte-identical to the reference encoder's."""
    assert encode_frame(message) == reference.frame(message)
    assert encode_datagram(message) == reference.body(message)
    assert decode_datagram(reference.body(message)) == message


@given(
    st.lists(st.one_of(messages.map(lambda m: ("frame", m)), st.binary(max_size=40).map(lambda g: ("raw", g))), max_size=12),
    st.integers(min_value=1, max_value=300),
    st.lists(st.integers(min_value=0, max_value=100_000), max_size=8),
)
@settings(max_examples=300)
def test_decoder_matches_reference_on_mixed_streams(parts, max_message, cuts):
    """Valid frames mixed with raw garbage: same messages and counts as the reference decoder."""
    stream = b"".join(reference.frame(p) if kind == "frame" else p for kind, p in parts)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    decoder = FrameDecoder(max_message=max_message)
    got = []
    for a, b in zip(points, points[1:]):
        got.extend(decoder.feed(stream[a:b]))
    want_messages, want_stats = reference.reference_decode(stream, max_message)
    assert got == want_messages
    assert {k: getattr(decoder.stats, k) for k in want_stats} == want_stats
