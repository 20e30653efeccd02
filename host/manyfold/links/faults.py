"""Seeded fault injection for byte streams.

A :class:`FaultInjector` sits between a sender and a receiver and damages the bytes that pass,
at rates set by a :class:`FaultConfig` and a seed, so every run with the same seed damages the
same bytes. It counts what it did, so a test or report can compare the damage done with what
the receiver detected. It wraps any transport: the in-memory link of the demo today, and the TCP
proxy in front of an emulated board's UART later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaultConfig:
    """Per-byte fault rates, each in [0, 1]."""

    drop_rate: float = 0.0
    """Probability that a byte is lost."""
    flip_rate: float = 0.0
    """Probability that one bit of a byte is flipped."""
    insert_rate: float = 0.0
    """Probability that a random byte is inserted before a byte (line noise)."""

    def __post_init__(self) -> None:
        for name in ("drop_rate", "flip_rate", "insert_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")


@dataclass
class FaultCounts:
    """What an injector did so far."""

    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0
    flipped: int = 0
    inserted: int = 0
    damaged_chunks: list[int] = field(default_factory=list)
    """Indexes of the chunks (calls to ``apply``) that were damaged in any way."""


class FaultInjector:
    """Damages bytes at seeded rates. ``apply(chunk) -> chunk`` is the whole interface."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.counts = FaultCounts()
        self._rng = random.Random(seed)
        self._chunk_index = 0

    def apply(self, chunk: bytes) -> bytes:
        """Return ``chunk`` after this injector's faults; the same seed gives the same output."""
        cfg, rng, counts = self.config, self._rng, self.counts
        out = bytearray()
        damaged = False
        for byte in chunk:  # bounded by len(chunk)
            if cfg.insert_rate and rng.random() < cfg.insert_rate:
                out.append(rng.randrange(256))
                counts.inserted += 1
                damaged = True
            if cfg.drop_rate and rng.random() < cfg.drop_rate:
                counts.dropped += 1
                damaged = True
                continue
            if cfg.flip_rate and rng.random() < cfg.flip_rate:
                byte ^= 1 << rng.randrange(8)
                counts.flipped += 1
                damaged = True
            out.append(byte)
        counts.bytes_in += len(chunk)
        counts.bytes_out += len(out)
        if damaged:
            counts.damaged_chunks.append(self._chunk_index)
        self._chunk_index += 1
        return bytes(out)
