"""The manyfold command, run as a real process."""

from __future__ import annotations

import subprocess
import sys

from termkit import run_in_pipe, run_in_terminal, widest_line, wrapped_names


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120)


def test_frames_demo_reports_arrivals_and_rejections():
    """`manyfold demo frames` runs, accounts for every reading, and accepts nothing corrupted."""
    result = run("demo", "frames", "--messages", "120", "--seed", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Accounting" in out and "arrived intact" in out
    assert "corrupted readings accepted" in out
    assert "bad_crc" in out or "bad_cobs" in out


def test_demo_is_deterministic():
    """The same seed prints the same report (frames and greenhouse)."""
    assert run("demo", "frames", "--seed", "11").stdout == run("demo", "frames", "--seed", "11").stdout
    first = run("demo", "--seed", "5")
    assert first.returncode == 0, first.stderr
    assert first.stdout == run("demo", "--seed", "5").stdout


def test_greenhouse_demo_answers_the_five_questions():
    """`manyfold demo` prints the greenhouse report with all five answers, and the board's."""
    result = run("demo")
    assert result.returncode == 0, result.stderr
    for heading in (
        "1. Which routes exist", "2. Where the buffers, windows and guards are", "3. What explains the last fan command",
        "4. Which taints were added or repaired", "5. Which payloads were opened, and why",
    ):
        assert heading in result.stdout
    assert "Last command: fan speed" in result.stdout
    # The sensor partition ran on the host simulation, linked over the framed link.
    assert "6. The sensor board: partition greenhouse-sensors on lm3s6965evb (host simulation)" in result.stdout
    assert "(the host manifest), image loaded" in result.stdout
    assert "0 CRC errors" in result.stdout


def test_demo_on_an_unknown_board_is_a_sentence():
    """`manyfold demo --board nope` names the boards there are."""
    result = run("demo", "--board", "nope")
    assert result.returncode == 2
    assert "unknown board 'nope'; known boards: lm3s6965evb" in result.stderr and "Traceback" not in result.stderr


def test_bad_arguments_are_sentences_not_tracebacks():
    """An invalid rate exits 2 with a message naming the problem."""
    result = run("demo", "frames", "--drop-rate", "2")
    assert result.returncode == 2
    assert "between 0 and 1" in result.stderr
    assert "Traceback" not in result.stderr


def _demo_names() -> tuple[set[str], set[str]]:
    """The names the demo's tables hold (host and board routes, taints), and those it must show."""
    from manyfold import query
    from manyfold.examples import greenhouse
    from manyfold.graph import Plane
    from manyfold.graph.taints import Taint

    gh, bridge, stop = greenhouse.with_board(7)
    stop()
    routes = {str(r.route) for r in query.topology(gh.graph).routes if r.route.plane != Plane.QUERY}
    shown = routes | set(bridge.route_names)
    return shown | {t.value for t in Taint}, shown


def test_demo_fits_80_and_100_column_terminals():
    """In an 80- or a 100-column terminal no line of the demo is wider than the terminal, every
    route appears whole, and route and taint names wrap only between words; written to a pipe it
    keeps its stable width (160) whatever COLUMNS says."""
    from manyfold.cli.render import STABLE_WIDTH

    names, shown = _demo_names()
    for columns in (80, 100):
        result = run_in_terminal("demo", columns=columns)
        assert result.returncode == 0, result.stderr
        assert widest_line(result.stdout) <= columns
        layout = wrapped_names(result.stdout, names)
        assert layout.broken == [], layout.broken
        assert shown <= layout.found, shown - layout.found
        assert "6. The sensor board: partition greenhouse-sensors on lm3s6965evb" in " ".join(result.stdout.split())
    piped = run_in_pipe("demo", columns=80)
    assert widest_line(piped.stdout) == STABLE_WIDTH


def test_board_table_fits_an_80_column_terminal():
    """`manyfold boards` in an 80-column terminal: every board, no line wider than 80."""
    from manyfold.devices.boards import all_boards

    result = run_in_terminal("boards", columns=80)
    assert result.returncode == 0, result.stderr
    assert widest_line(result.stdout) <= 80
    layout = wrapped_names(result.stdout, [b.name for b in all_boards()])
    assert layout.found == {b.name for b in all_boards()} and layout.broken == []
