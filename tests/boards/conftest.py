"""Fixtures for the board tests: build the firmware, boot it in QEMU, talk to it.

For each emulated board (boards/<board>/), the firmware is cross-built once per session with
``boards/build.sh`` and booted in ``qemu-system-arm`` with UART0 on a local TCP socket and,
when a test asks, a partition image in the board's partition region (QEMU's generic loader).
The tests talk to it with ``manyfold.devices.link.LinkClient`` over pyserial ``socket://``:
host client -> QEMU UART -> the firmware's device (manyfold-core) -> frames back. Building and
booting are ``manyfold.devices.qemu`` (``build_firmware``, ``start_board``), which
``manyfold footprint`` and ``manyfold flash`` use too.

The tests skip, with the reason, when the cross toolchain or QEMU is missing, unless the
environment sets ``MANYFOLD_REQUIRE_QEMU=1``: then a missing tool fails them, and any other
skip here fails the run (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from manyfold.devices import qemu
from manyfold.devices.boards import BoardError
from manyfold.devices.footprint import FLASH_BUDGET, RAM_BUDGET  # noqa: F401 (the tests' budgets)

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "boards"
BUILD_SCRIPT = BOARDS_DIR / "build.sh"
BOARDS = ["lm3s6965evb", "mps2-an386"]

MAX_MESSAGE = 256

BUILD_TIMEOUT_S = qemu.BUILD_TIMEOUT_S  # a cold build compiles `core` from source
BOOT_TIMEOUT_S = qemu.BOOT_TIMEOUT_S  # QEMU listening, connected, and the firmware's boot 0x00 received
REPLY_TIMEOUT_S = qemu.REPLY_TIMEOUT_S
# FLASH_BUDGET and RAM_BUDGET come from manyfold.devices.footprint (flash: .text + .data; RAM:
# .data + .bss plus the measured stack peak, with the greenhouse partition); boards/README.md
# records the numbers.


# --- prerequisites -------------------------------------------------------------------------------


def require_tools(*, build: bool = True, run: bool = True) -> None:
    """Skips (or, with MANYFOLD_REQUIRE_QEMU=1, fails) when a tool the board tests need is missing."""
    missing = qemu.missing_tools(build=build, run=run)
    if not missing:
        return
    reason = f"board tests need {', '.join(missing)} (Debian: apt-get install {qemu.APT_PACKAGES})"
    if os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1":
        pytest.fail(f"{reason} (MANYFOLD_REQUIRE_QEMU=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def toolchain() -> None:
    """Skips (or, with MANYFOLD_REQUIRE_QEMU=1, fails) when a tool the board tests need is missing."""
    require_tools()


@pytest.fixture(scope="session")
def firmware_builds(toolchain) -> dict[str, Path]:
    """Built ELFs by board, filled on first use: each board is built once per session."""
    return {}


def _build(board: str, cache: dict[str, Path]) -> Path:
    if board not in cache:
        try:
            cache[board] = qemu.build_firmware(board, timeout_s=BUILD_TIMEOUT_S)
        except BoardError as error:
            pytest.fail(str(error), pytrace=False)
    return cache[board]


@pytest.fixture(params=BOARDS)
def board(request) -> str:
    return request.param


@pytest.fixture
def elf(board, firmware_builds) -> Path:
    return _build(board, firmware_builds)


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(path.read_text())


@pytest.fixture
def descriptor(board) -> dict:
    return _load_toml(BOARDS_DIR / board / "board.toml")


def elf_symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return symbols


def load_segments(elf: Path) -> list[tuple[int, int]]:
    """The ELF's loadable segments as (physical address, file size)."""
    out = subprocess.run(
        ["arm-none-eabi-readelf", "-lW", str(elf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [(int(f[3], 16), int(f[4], 16)) for f in (line.split() for line in out.splitlines()) if f[:1] == ["LOAD"]]


# --- running a board -----------------------------------------------------------------------------


class BoardRun:
    """``with run_board(image) as b:`` boots the board in QEMU (``manyfold.devices.qemu``) and
    gives the :class:`~manyfold.devices.qemu.RunningBoard`; leaving the block kills QEMU.
    Errors starting it fail the test with QEMU's output."""

    def __init__(self, board: str, elf: Path, log: Path, image: bytes | None):
        self._args = (board, elf, image)
        self._log = log
        self.running: qemu.RunningBoard | None = None

    def __enter__(self) -> qemu.RunningBoard:
        board, elf, image = self._args
        try:
            self.running = qemu.start_board(
                board, elf, image, log=self._log, boot_timeout_s=BOOT_TIMEOUT_S, reply_timeout_s=REPLY_TIMEOUT_S
            )
        except BoardError as error:
            pytest.fail(str(error), pytrace=False)
        return self.running

    def __exit__(self, *exc) -> None:
        if self.running is not None:
            self.running.stop()


@pytest.fixture
def run_board(board, elf, tmp_path):
    """Starts the board in QEMU: ``with run_board(image_bytes_or_None) as b: ...``."""

    def start(image: bytes | None = None) -> BoardRun:
        return BoardRun(board, elf, tmp_path / f"qemu-{board}.log", image)

    return start
