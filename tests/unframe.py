"""Frames as the link tests read them (one job: frame to message; the tests decode messages with
the oracles in ``runtime_nostd/vectors``)."""

from __future__ import annotations

from manyfold.framing import FrameDecoder


def unframe(frame: bytes, max_message: int = 256) -> bytes:
    """The message carried by one whole frame (its CRC checked), as the transcript holds frames."""
    return FrameDecoder(max_message).feed(frame)[0]
