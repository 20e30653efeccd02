"""`manyfold demo --board`: the greenhouse's sensor partition on an emulated board reports what
it reports in the host simulation."""

from __future__ import annotations

import subprocess
import sys

import pytest

DEMO_TIMEOUT_S = 300  # six minutes of greenhouse time in lockstep on an emulated CPU


def _device_section(stdout: str) -> str:
    return stdout[stdout.index("6. The sensor board") :]


@pytest.mark.parametrize(("board", "where"), [("mps2-an386", "QEMU mps2-an386"), ("nucleo-f401re", "QEMU stand-in netduinoplus2")])
def test_demo_on_an_emulated_board_matches_the_simulation(board, where, firmware_builds):
    """The report's device section (routes, sequence numbers, taints, counters, the fan loop) is
    the same, line for line but the board's name, on the emulated board (or the Nucleo's
    stand-in) and in the simulation; its title says where the board ran."""
    def demo(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "manyfold", "demo", *args], capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
        assert result.returncode == 0, result.stderr
        return _device_section(result.stdout)

    on_board, simulated = demo("--board", board), demo()
    assert f"partition greenhouse-sensors on {board} ({where})" in on_board
    assert on_board.replace(board, "lm3s6965evb").splitlines()[1:] == simulated.splitlines()[1:]
