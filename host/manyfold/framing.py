"""The v1 wire frame layer: COBS + CRC-32C frames for stream links, datagrams for UDP.

The encoding (normative text in ``docs/wire.md``)::

    body     = message || crc32c(message)   (4 bytes, little-endian)
    frame    = COBS(body) || 0x00            stream links: serial, TCP
    datagram = body                          datagram links: UDP

A message has 1..=max_message bytes (default 4096). The work is done by the Rust crate
``manyfold-framing`` through the extension module; this module adds the Python error type.

>>> frame = encode_frame(b"hello")
>>> decoder = FrameDecoder()
>>> decoder.feed(frame[:3]), decoder.feed(frame[3:])
([], [b'hello'])
>>> decoder.stats.frames
1
"""

from __future__ import annotations

import enum

from manyfold._native import (
    DecoderStats,
    FrameDecoder,
    crc32c,
    decode_datagram,
    encode_datagram,
    encode_frame,
)

MAX_MESSAGE_DEFAULT = 4096
"""The default largest message, in bytes. A board declares its own (smaller) one."""


class FrameErrorKind(str, enum.Enum):
    """Why a frame or datagram was refused. Values are stable and appear in logs and reports."""

    EMPTY_MESSAGE = "empty_message"
    MESSAGE_TOO_LONG = "message_too_long"
    BUFFER_TOO_SMALL = "buffer_too_small"
    BAD_COBS = "bad_cobs"
    SHORT_BODY = "short_body"
    OVERSIZE = "oversize"
    BAD_CRC = "bad_crc"
    INVALID_CONFIG = "invalid_config"


class FrameError(ValueError):
    """A message could not be encoded, or a frame or datagram could not be decoded.

    ``str(error)`` is a sentence for people; ``error.kind`` is a :class:`FrameErrorKind` for code.
    ``FrameDecoder.feed_outcomes`` returns (does not raise) one of these per rejected frame.
    """

    def __init__(self, message: str, kind: FrameErrorKind | str) -> None:
        super().__init__(message)
        self.kind = FrameErrorKind(kind)

    def __reduce__(self):  # keep kind when pickled, e.g. across processes
        return (type(self), (str(self), self.kind.value))


__all__ = [
    "MAX_MESSAGE_DEFAULT",
    "DecoderStats",
    "FrameDecoder",
    "FrameError",
    "FrameErrorKind",
    "crc32c",
    "decode_datagram",
    "encode_datagram",
    "encode_frame",
]
