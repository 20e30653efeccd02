"""The examples in the docstrings of manyfold.devices and manyfold.sim run and print what they claim."""

from __future__ import annotations

import doctest

import pytest

import manyfold.devices.greenhouse
import manyfold.devices.image
import manyfold.devices.protocol
import manyfold.sim


@pytest.mark.parametrize(
    "module",
    [manyfold.devices.protocol, manyfold.devices.image, manyfold.devices.greenhouse, manyfold.sim],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    """Each module's examples are true."""
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
