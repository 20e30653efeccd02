"""Argument types for argparse: each parses one value or raises ``ArgumentTypeError`` with the
expected form and what was given (argparse prints it as one sentence, exit code 2)."""

from __future__ import annotations

import argparse


def rate(text: str) -> float:
    """A probability: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def int_within(text: str, low: int, high: int | None, what: str) -> int:
    """``text`` as an integer in ``low..high`` (no upper bound when ``high`` is None)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return int_within(text, 1, None, "a positive integer")


def tcp_port(text: str) -> int:
    return int_within(text, 1, 65535, "a TCP port (1 to 65535)")


SECONDS_MAX = 100_000_000.0
"""The most seconds a flag takes (about three years): sockets, locks and clocks take it, where
``inf`` or ``1e300`` would overflow them."""


def seconds(text: str) -> float:
    """A positive number of seconds, at most :data:`SECONDS_MAX`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    if not value <= SECONDS_MAX:
        raise argparse.ArgumentTypeError(f"expected at most {SECONDS_MAX:.0f} seconds, got {text}")
    return value


def timeout(parser: argparse.ArgumentParser, default_s: float, what: str) -> None:
    """Adds ``--timeout S``: the seconds to wait for ``what``."""
    parser.add_argument("--timeout", type=seconds, default=default_s, metavar="S", help=f"seconds to wait for {what} (default {default_s:g})")


__all__ = ["SECONDS_MAX", "int_within", "positive_int", "rate", "seconds", "tcp_port", "timeout"]
