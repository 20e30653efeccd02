"""Helpers for terminal-layout tests: run the CLI in a terminal of a given width, and read the
tables it printed back into their columns.

A table cell that wraps puts the pieces of its text on consecutive lines of the same column;
:func:`wrapped_names` joins each column's pieces again, finds the given names in them, and
reports every line break that fell between two letters or digits of a name (a name broken
inside a word).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_terminal(*args: str, columns: int) -> subprocess.CompletedProcess:
    """``manyfold ARGS`` as rich sees it in a ``columns``-wide terminal (not interactive, no
    colour), with the escape codes taken out of its output."""
    env = dict(os.environ, TTY_COMPATIBLE="1", TTY_INTERACTIVE="0", NO_COLOR="1", COLUMNS=str(columns))
    result = subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=300, env=env)
    result.stdout = ANSI.sub("", result.stdout)
    return result


def run_in_pipe(*args: str, columns: int) -> subprocess.CompletedProcess:
    """``manyfold ARGS`` writing to a pipe, with ``COLUMNS`` set as a terminal would have it."""
    env = dict(os.environ, COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=300, env=env)


def widest_line(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


@dataclass
class Layout:
    found: set[str] = field(default_factory=set)
    """The names found whole (after joining each column's lines)."""
    broken: list[str] = field(default_factory=list)
    """Each name broken between two letters or digits, shown with a ``|`` where it broke."""


def _tables(text: str) -> list[list[list[str]]]:
    """The body rows of each table: per line, the text of each cell (rich's ``│`` borders)."""
    tables, rows = [], []
    for line in text.splitlines():
        if line.startswith("│") and line.rstrip().endswith("│"):
            rows.append(line.rstrip()[1:-1].split("│"))
        elif rows:
            tables.append(rows)
            rows = []
    if rows:
        tables.append(rows)
    return tables


def wrapped_names(text: str, names: Iterable[str]) -> Layout:
    """Where ``names`` sit in the tables of ``text``, and which of them a line break split
    inside a word."""
    names = sorted(set(names), key=len, reverse=True)
    layout = Layout()
    for rows in _tables(text):
        for column in zip(*rows):
            joined, breaks = "", set()
            for piece in column:
                piece = piece.strip()
                if piece:
                    joined += piece
                    breaks.add(len(joined))
            for name in names:
                start = joined.find(name)
                while start >= 0:
                    layout.found.add(name)
                    for b in sorted(breaks):
                        inside = b - start
                        if 0 < inside < len(name) and name[inside - 1].isalnum() and name[inside].isalnum():
                            layout.broken.append(name[:inside] + "|" + name[inside:])
                    start = joined.find(name, start + 1)
    return layout
