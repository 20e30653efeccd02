"""Terminal output: consoles as wide as the terminal, and tables whose names wrap between words.

- :func:`console`: a rich console as wide as the terminal it writes to; a file or pipe gets
  :data:`STABLE_WIDTH` (the same on every machine, so that a report written to a file is the
  same for the same run);
- :class:`Wrapped`: text that wraps only between words, after a dot, underscore, comma, space
  or other punctuation, and never inside a run of letters and digits (a route name such as
  ``read.logical.greenhouse.zone1.temperature_avg.meta.v1`` breaks after a dot or an
  underscore). rich's own wrapping breaks only at spaces, and folds a name without spaces
  mid-word;
- :func:`heading`: a section rule with its title, or the title under the rule when the title
  is wider than the terminal (a rule would cut it);
- :func:`table` makes a :class:`CellTable`: a rich table of :func:`cell` values (None as
  ``-``, coded enums by name, taint sets by name, bytes as hex, all :class:`Wrapped`) that
  lays itself out for its width: natural, else without its optional columns, else each
  column at least as wide as its widest word with the rest shared by need (:func:`share`),
  else one small table per row.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

STABLE_WIDTH = 160
"""Columns of output to a file or pipe: wide enough for the reports' route names on one line,
and the same everywhere."""

def console(*, stderr: bool = False) -> Console:
    """A console as wide as its terminal (rich asks the terminal, or takes ``COLUMNS``); for a
    file or pipe, :data:`STABLE_WIDTH` wide whatever ``COLUMNS`` says, so that the same run
    prints the same bytes everywhere."""
    detected = Console(stderr=stderr)
    return detected if detected.is_terminal else Console(stderr=stderr, width=STABLE_WIDTH)


def pieces(line: str) -> list[str]:
    """``line`` cut where it may break: before a letter or digit that follows a space, or
    before a letter that follows another separator (``.``, ``_``, ``,``, ``@``, ``-``, ...) but
    an opening bracket; never inside a run of letters and digits (and ``28.5``, ``v1@23``,
    ``140-200`` and ``(lm3s6965evb)`` stay whole). Joined, the pieces are ``line`` again."""
    out: list[str] = []
    start = 0
    for i in range(1, len(line)):
        before, here = line[i - 1], line[i]
        if here.isalnum() and not before.isalnum() and before not in "([{" and (before.isspace() or not here.isdigit()):
            out.append(line[start:i])
            start = i
    if line:
        out.append(line[start:])
    return out


def wrap(text: str, width: int) -> list[str]:
    """The lines of ``text`` (its own line breaks kept) packed into ``width`` columns, broken
    only between :func:`pieces`; a single piece wider than ``width`` is left whole (the caller
    folds it). Trailing spaces are dropped."""
    lines: list[str] = []
    for line in text.split("\n"):
        current = ""
        for piece in pieces(line):
            if current and cell_len(current + piece.rstrip()) > width:
                lines.append(current.rstrip())
                current = piece
            else:
                current += piece
        lines.append(current.rstrip())
    return lines


class Wrapped:
    """A rich renderable: ``text`` wrapped between words to the width it is given (see the
    module docs). Its minimum width is its widest word, so tables shrink it only that far
    before they shrink their other columns."""

    def __init__(self, text: str, style: str = "") -> None:
        self.text = text
        self.style = style

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        lines = self.text.split("\n")
        widest_piece = max((cell_len(piece.rstrip()) for line in lines for piece in pieces(line)), default=0)
        widest_line = max(cell_len(line) for line in lines)
        return Measurement(widest_piece, widest_line).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n".join(wrap(self.text, options.max_width)), style=self.style, no_wrap=False, overflow="fold")

    def __str__(self) -> str:
        return self.text


def cell(value: object) -> Wrapped:
    """One table cell: None as ``-``, coded (int) enums by lowercase name, named enums by value,
    taint sets sorted by name, lists and sets joined with commas (``-`` when empty), bytes as
    hex, anything else as ``str``."""
    if isinstance(value, Wrapped):
        return value
    return Wrapped(_text(value))


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (frozenset, set)):
        return ", ".join(sorted(_text(v) for v in value)) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) or "-"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def heading(console: Console, title: str) -> None:
    """A rule titled ``title`` (rich markup), or a plain rule and the title under it when the
    title does not fit on the rule."""
    if Text.from_markup(title).cell_len + 6 <= console.width:
        console.rule(title)
    else:
        console.rule()
        console.print(title)


def share(minimums: Sequence[int], maximums: Sequence[int], available: int, priority: Iterable[int] = ()) -> list[int] | None:
    """Column widths for ``available`` columns of text: None when every column fits at its
    maximum. Else each column gets its minimum (its widest word); the columns in ``priority``
    (indexes, in order) then get the room they want (``maximum - minimum``) while there is some,
    and the others share what is left in proportion to what each wants. The caller makes sure
    the minimums fit."""
    if sum(maximums) <= available:
        return None
    widths = list(minimums)
    spare = max(0, available - sum(widths))
    for i in priority:
        grant = min(spare, maximums[i] - widths[i])
        widths[i] += grant
        spare -= grant
    wants = [high - width for width, high in zip(widths, maximums)]
    total = sum(wants)
    if not spare or not total:
        return widths
    grants = [spare * want // total for want in wants]
    # The last columns of the rounding go to the columns that lost the largest fractions.
    by_fraction = sorted(range(len(wants)), key=lambda i: -(spare * wants[i] % total))
    for i in by_fraction[: spare - sum(grants)]:
        grants[i] += 1
    return [width + grant for width, grant in zip(widths, grants)]


class CellTable(Table):
    """A rich table of :func:`cell` values that lays itself out for the width it is given:

    - at its natural width when that fits;
    - else without its ``optional`` columns (if it has any), laid out again;
    - else with every column at least as wide as its widest word, the room left shared by
      :func:`share`: first to the ``priority`` columns (names, which read best on one line),
      then to the others by need (rich alone would narrow the widest columns first, below
      their widest word);
    - else, when not even the widest words fit side by side, one small two-column table per row
      (column name, value), so that no word is cut.
    """

    def __init__(
        self, title: str | None, columns: Sequence[str], *, optional: Iterable[str] = (), priority: Iterable[str] = (), **table_options
    ) -> None:
        super().__init__(title=title, **table_options)
        self.optional = [c for c in columns if c in set(optional)]
        self.priority = [c for c in priority if c in columns]
        self.cell_rows: list[list[Wrapped]] = []
        for column in columns:
            self.add_column(column)

    def add_row(self, *values, **options) -> None:
        """Adds a row of values, each formatted by :func:`cell`."""
        cells = [cell(value) for value in values]
        super().add_row(*cells, **options)
        self.cell_rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        minimums, maximums = self._measure(console, options)
        available = options.max_width - self._frame_width(len(self.columns))
        if sum(maximums) <= available:
            yield from super().__rich_console__(console, options)
        elif self.optional:
            yield self._without(self.optional)
        elif sum(minimums) <= available or len(self.columns) <= 2:  # a record folds what it must
            names = [str(c.header) for c in self.columns]
            widths = share(minimums, maximums, available, [names.index(c) for c in self.priority]) or maximums
            for column, width in zip(self.columns, widths):
                column.width = width
            try:
                yield from super().__rich_console__(console, options)
            finally:
                for column in self.columns:
                    column.width = None
        else:
            yield from self._records()

    def _frame_width(self, columns: int) -> int:
        """Borders and padding of a row of ``columns`` cells."""
        _top, right, _bottom, left = self.padding
        borders = (columns + 1 if self.show_edge else columns - 1) if self.box else 0
        return borders + (left + right) * columns

    def _measure(self, console: Console, options: ConsoleOptions) -> tuple[list[int], list[int]]:
        """Each column's widest word and widest line, header included."""
        minimums, maximums = [], []
        for i, column in enumerate(self.columns):
            cells = [Text.from_markup(str(column.header)), *(row[i] for row in self.cell_rows if i < len(row))]
            measured = [Measurement.get(console, options, c) for c in cells]
            minimums.append(max(m.minimum for m in measured))
            maximums.append(max(m.maximum for m in measured))
        return minimums, maximums

    def _without(self, dropped: Sequence[str]) -> CellTable:
        names = [str(c.header) for c in self.columns]
        kept = [i for i, name in enumerate(names) if name not in dropped]
        narrower = CellTable(self.title if isinstance(self.title, str) else None, [names[i] for i in kept], priority=self.priority)
        for row in self.cell_rows:
            narrower.add_row(*(row[i] for i in kept if i < len(row)))
        return narrower

    def _records(self) -> Iterator[object]:
        names = [str(c.header) for c in self.columns]
        if self.title:
            yield Text(str(self.title), style="table.title", justify="center")
        for row in self.cell_rows:
            record = CellTable(None, ("field", "value"), show_header=False)
            for name, value in zip(names, row):
                record.add_row(name, value)
            yield record


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[object]] = (), *, optional: Iterable[str] = (), priority: Iterable[str] = ()
) -> CellTable:
    """A :class:`CellTable` titled ``title``: one column per name in ``columns`` (those in
    ``optional`` left out when the table does not fit; those in ``priority`` widened first when
    it is narrowed), one row per sequence of values in ``rows``; its ``add_row`` takes more."""
    t = CellTable(title, columns, optional=optional, priority=priority)
    for row in rows:
        t.add_row(*row)
    return t


__all__ = ["STABLE_WIDTH", "CellTable", "Wrapped", "cell", "console", "heading", "pieces", "share", "table", "wrap"]
