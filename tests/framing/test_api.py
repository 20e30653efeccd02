"""The Python frame API's contract: names, errors, stats and decoder behaviour."""

from __future__ import annotations

import pickle
import random

import pytest

from manyfold import framing
from manyfold.framing import FrameDecoder, FrameError, FrameErrorKind, decode_datagram, encode_frame


def test_public_names():
    """The names the project and its users rely on exist with these exact spellings."""
    for name in ("encode_frame", "encode_datagram", "decode_datagram", "FrameDecoder", "FrameError"):
        assert hasattr(framing, name)
    stats = FrameDecoder().stats
    for field in ("frames", "cobs_errors", "crc_errors", "short_frames", "oversize_frames"):
        assert getattr(stats, field) == 0


def test_encode_refuses_empty_and_too_long():
    """An empty message, or one longer than max_message, raises FrameError with its kind."""
    with pytest.raises(FrameError, match="empty") as empty:
        encode_frame(b"")
    assert empty.value.kind is FrameErrorKind.EMPTY_MESSAGE
    with pytest.raises(FrameError, match="4097-byte") as long:
        encode_frame(bytes(4097))
    assert long.value.kind is FrameErrorKind.MESSAGE_TOO_LONG
    assert len(encode_frame(bytes(4097), max_message=5000)) > 4097


def test_frame_error_is_a_value_error_and_pickles():
    """FrameError is a ValueError and survives pickling with its kind (for worker processes)."""
    with pytest.raises(ValueError):
        decode_datagram(b"abc")
    error = FrameError("bad thing", "bad_crc")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.kind is FrameErrorKind.BAD_CRC and str(copy) == "bad thing"


@pytest.mark.parametrize("bad", [0, -1, 1 << 30])
def test_decoder_rejects_bad_max_message(bad):
    """A nonsensical max_message is refused with a sentence, not an allocation or a crash."""
    with pytest.raises((ValueError, OverflowError), match="max_message|negative|overflow"):
        FrameDecoder(max_message=bad)


def test_feed_outcomes_names_each_rejection():
    """feed_outcomes returns messages and, in place of each refused frame, its FrameError."""
    good = encode_frame(b"fine")
    bad = bytearray(encode_frame(b"broken"))
    bad[2] ^= 0x10
    outcomes = FrameDecoder().feed_outcomes(bytes(bad) + good + b"\x01\x00")
    assert outcomes[1] == b"fine"
    assert [o.kind for o in outcomes if isinstance(o, FrameError)] == [FrameErrorKind.BAD_CRC, FrameErrorKind.SHORT_BODY]


def test_reset_forgets_partial_frame():
    """After reset, bytes of a half-received frame no longer spoil the next frame."""
    decoder = FrameDecoder()
    frame = encode_frame(b"second")
    decoder.feed(encode_frame(b"first")[:4])
    assert decoder.pending_len == 4
    decoder.reset()
    assert decoder.pending_len == 0
    assert decoder.feed(frame) == [b"second"]
    assert decoder.stats.rejected == 0


def test_oversize_frame_is_dropped_as_it_arrives():
    """A huge frame without delimiter never grows the decoder past its bound, and is counted."""
    decoder = FrameDecoder(max_message=64)
    for _ in range(1000):
        decoder.feed(b"\x55" * 1000)
    assert decoder.pending_len == 1000 * 1000  # bytes seen, not bytes held
    assert decoder.feed(b"\x00" + encode_frame(b"after")) == [b"after"]
    assert decoder.stats.oversize_frames == 1


def test_random_corruption_is_detected_or_harmless():
    """Thousands of unseen messages with random single-bit flips: none is accepted altered."""
    rng = random.Random(1234)
    decoder = FrameDecoder()
    sent = [rng.randbytes(rng.randrange(1, 300)) for _ in range(3000)]
    wire = bytearray(b"".join(encode_frame(m) for m in sent))
    for _ in range(300):
        at = rng.randrange(len(wire))
        wire[at] ^= 1 << rng.randrange(8)
    got = decoder.feed(bytes(wire))
    sent_set = set(sent)
    assert all(m in sent_set for m in got)
    stats = decoder.stats
    assert stats.frames == len(got)
    assert stats.rejected > 0 and stats.frames + stats.rejected >= len(sent) - 300
