"""Terminal output: consoles take the terminal's width (files and pipes a stable one), and table
cells wrap between words, never inside one (manyfold.cli.render)."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from termkit import widest_line, wrapped_names

from manyfold.cli import render

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=14)
NAME = st.lists(st.tuples(WORD, st.sampled_from(".._@,-[]")), min_size=1, max_size=10).map(
    lambda parts: "".join(w + sep for w, sep in parts[:-1]) + parts[-1][0]
)


def _may_break(name: str, i: int) -> bool:
    """The rule of docs (independent of ``render.pieces``): a name may break before a letter
    that follows a separator other than an opening bracket."""
    return name[i].isalpha() and not name[i - 1].isalnum() and name[i - 1] not in "([{"


@given(NAME, st.integers(min_value=1, max_value=70))
def test_wrap_breaks_only_between_words(name, width):
    """Wrapped to any width, a name (no spaces) keeps every character, breaks only where one of
    its pieces ends (never between two letters or digits), and each line fits unless it is one
    piece wider than the width."""
    lines = render.wrap(name, width)
    pieces = render.pieces(name)
    assert "".join(pieces) == name and "".join(lines) == name
    ends = {len("".join(pieces[: i + 1])) for i in range(len(pieces))}
    at = 0
    for line in lines:
        at += len(line)
        assert at in ends
        assert not (0 < at < len(name) and name[at - 1].isalnum() and name[at].isalnum())
        assert len(line) <= width or line in pieces
        assert at == len(name) or _may_break(name, at)
        # A line over the width could not have broken anywhere inside it.
        assert len(line) <= width or not any(_may_break(line, i) for i in range(1, len(line)))


def test_wrap_drops_the_space_at_a_break():
    """Prose breaks at spaces, which do not start or end a line; its own line breaks stay."""
    assert render.wrap("delivery_dropped, det_seeded_entropy\n-> read.x", 20) == ["delivery_dropped,", "det_seeded_entropy", "-> read.x"]


def test_render_table_shares_width_by_need():
    """A table wider than the console gives each column at least its widest word and the room
    left to the columns that want it most: the long route names get the most."""
    names = [f"read.logical.greenhouse.zone{i}.temperature_avg.meta.v1" for i in range(1, 4)]
    t = render.table("routes", ("route", "seq", "kind"), [(name, 12, "float") for name in names])
    out = io.StringIO()
    Console(file=out, width=40).print(t)
    text = out.getvalue()
    layout = wrapped_names(text, names)
    assert widest_line(text) <= 40
    assert layout.found == set(names) and layout.broken == []
    first_row = next(line for line in text.splitlines() if line.startswith("│"))
    cells = first_row.strip("│").split("│")
    # 40 columns less 4 borders and 6 of padding: seq and kind at their widest (3 and 5), the
    # route name the 22 left, broken after a dot.
    assert [len(c) - 2 for c in cells] == [22, 3, 5]
    assert [c.strip() for c in cells] == ["read.logical.", "12", "float"]
    assert render.share([5, 2, 4], [50, 3, 6], 30) == [23, 2, 5]
    assert render.share([5, 2, 4], [50, 3, 6], 30, priority=[2]) == [22, 2, 6]  # column 2 first
    assert render.share([5, 2, 4], [50, 3, 6], 80) is None  # everything fits


def test_the_checker_sees_a_name_folded_mid_word():
    """rich's own fold of a name without spaces is reported as broken (the check can fail)."""
    name = "read.logical.greenhouse.zone1.temperature_avg.meta.v1"
    t = Table()
    t.add_column("route", overflow="fold")
    t.add_column("taints", overflow="fold")
    t.add_row(name, "det_seeded_entropy, delivery_dropped")
    out = io.StringIO()
    Console(file=out, width=30).print(t)
    assert wrapped_names(out.getvalue(), [name]).broken


def test_console_is_as_wide_as_its_terminal(monkeypatch):
    """In a terminal the console takes its width (COLUMNS here); a file or pipe gets the stable
    width whatever COLUMNS says."""
    monkeypatch.setenv("COLUMNS", "93")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert render.console().width == 93
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert render.console().width == render.STABLE_WIDTH
