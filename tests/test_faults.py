"""The seeded fault injector used by demos and link tests."""

from __future__ import annotations

import pytest

from manyfold.links.faults import FaultConfig, FaultInjector


def test_same_seed_same_damage():
    """Two injectors with one seed damage the same bytes; another seed differs."""
    data = bytes(range(256)) * 40
    config = FaultConfig(drop_rate=0.01, flip_rate=0.01, insert_rate=0.005)
    a, b, c = (FaultInjector(config, seed=s).apply(data) for s in (5, 5, 6))
    assert a == b != c


def test_counts_match_the_damage():
    """Counts add up: bytes out = in - dropped + inserted."""
    injector = FaultInjector(FaultConfig(drop_rate=0.05, insert_rate=0.02, flip_rate=0.02), seed=1)
    out = injector.apply(bytes(10_000))
    counts = injector.counts
    assert len(out) == counts.bytes_out == counts.bytes_in - counts.dropped + counts.inserted
    assert counts.dropped > 0 and counts.flipped > 0 and counts.inserted > 0
    assert counts.damaged_chunks == [0]


def test_zero_rates_pass_through():
    """With no faults configured the bytes pass unchanged."""
    assert FaultInjector(FaultConfig(), seed=3).apply(b"abc\x00") == b"abc\x00"


@pytest.mark.parametrize("field", ["drop_rate", "flip_rate", "insert_rate"])
def test_rates_are_validated(field):
    """Rates outside [0, 1] are refused with the field named."""
    with pytest.raises(ValueError, match=field):
        FaultConfig(**{field: 1.5})
