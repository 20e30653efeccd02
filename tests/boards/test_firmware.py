"""The firmware build: board selection, the memory map and the partition region, and the flash
and RAM budgets with the greenhouse partition."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import BOARDS, BOARDS_DIR, BUILD_SCRIPT, BUILD_TIMEOUT_S, FLASH_BUDGET, RAM_BUDGET, elf_symbols, load_segments

from manyfold.devices import footprint


def test_partition_region_is_reserved(elf, descriptor):
    """The ELF's partition symbols match board.toml, the region ends the code memory, and no
    loadable segment overlaps it (flashing the firmware leaves a stored image alone)."""
    symbols = elf_symbols(elf)
    start, end = symbols["__partition_start"], symbols["__partition_end"]
    assert start == descriptor["partition"]["origin"]
    assert end - start == descriptor["partition"]["size"] == 8192
    flash = descriptor["flash"]
    assert end == flash["origin"] + flash["size"]
    assert symbols["__stack_top"] == descriptor["ram"]["origin"] + descriptor["ram"]["size"]
    for phys, filesz in load_segments(elf):
        assert filesz == 0 or phys + filesz <= start or phys >= end, (phys, filesz)


@pytest.mark.parametrize("board", [*BOARDS, "nucleo-f401re"])
def test_flash_and_ram_fit_the_budget(board, elf):
    """With the greenhouse partition running (lockstep steps, a write, every query, a reset), the
    firmware uses at most 32 KiB of flash and 8 KiB of RAM: static data plus the measured stack
    peak (manyfold.devices.footprint, the measurement `manyfold footprint` prints; the Nucleo's
    STM32 build runs on its QEMU stand-in)."""
    fp = footprint.measure(board, elf)
    print(f"{board}: flash {fp.flash_bytes} B, static RAM {fp.data + fp.bss} B, stack peak {fp.stack_peak} B")
    assert fp.flash_bytes <= FLASH_BUDGET, fp
    assert 0 < fp.stack_peak and fp.ram_bytes <= RAM_BUDGET, fp


def test_board_feature_is_required(toolchain):
    """Building without a board feature, or with two, stops at the crate's compile_error!."""
    firmware = BOARDS_DIR / "firmware"
    env = dict(os.environ, RUSTC="/usr/bin/rustc", RUSTC_BOOTSTRAP="1")
    base = ["/usr/bin/cargo", "build", "--release", "-Zbuild-std=core", "--target", "thumbv7m-none-eabi",
            "--target-dir", str(firmware / "target")]  # fmt: skip
    for features, expected in (
        ([], "select exactly one board"),
        (["--features", "board-lm3s6965evb,board-mps2-an386"], "select exactly one board"),
    ):
        result = subprocess.run(
            base + features, cwd=firmware, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
        )
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr[-3000:]


def test_build_script_rejects_unknown_board():
    """build.sh names the known boards when given an unknown one."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT), "no-such-board"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no board 'no-such-board'" in result.stderr
    assert re.search(r"lm3s6965evb.*mps2-an386", result.stderr)
