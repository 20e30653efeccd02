"""The examples in module docstrings run and print what they claim."""

import doctest

import manyfold.framing


def test_framing_docstring_examples():
    """The usage example at the top of manyfold.framing is true."""
    result = doctest.testmod(manyfold.framing)
    assert result.attempted > 0 and result.failed == 0
