"""The firmware build: board selection, the memory map and the partition region, and the flash
and RAM budgets with the greenhouse partition."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import BOARDS_DIR, BUILD_SCRIPT, BUILD_TIMEOUT_S, FLASH_BUDGET, RAM_BUDGET, elf_symbols

from manyfold.devices.greenhouse import greenhouse_spec


def size_of(elf) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True, timeout=60).stdout
    text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


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
    segments = subprocess.run(
        ["arm-none-eabi-readelf", "-lW", str(elf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for line in segments.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"]:
            phys, filesz = int(fields[3], 16), int(fields[4], 16)
            assert filesz == 0 or phys + filesz <= start or phys >= end, line


def test_flash_and_ram_fit_the_budget(board, elf, run_board):
    """With the greenhouse partition running (lockstep steps, a write, every query), the firmware
    uses at most 32 KiB of flash and 8 KiB of RAM: static data plus the measured stack peak."""
    size = size_of(elf)
    assert size["text"] + size["data"] <= FLASH_BUDGET, size
    with run_board(greenhouse_spec().encode()) as b:
        c = b.client(session=1)
        c.connect(lockstep=True, reset=True)
        c.step(10_000_000)
        c.send_event("write.shadow.greenhouse.fan.setpoint.desired.v1", 40.0, time_us=10_000_000)
        c.step(12_000_000)
        c.routes(), c.nodes(), c.sources(), c.flow(), c.taints(), c.counters_device(), c.latest(2)
        c.connect(lockstep=True, reset=True)  # a reset reloads the image: the deepest stack
        stack_peak = c.board().stack_peak
    ram = size["data"] + size["bss"] + stack_peak
    print(f"{board}: flash {size['text'] + size['data']} B, static RAM {size['data'] + size['bss']} B, stack peak {stack_peak} B")
    assert 0 < stack_peak and ram <= RAM_BUDGET, (size, stack_peak)


def test_board_feature_is_required(toolchain):
    """Building without a board feature, or with two, stops at the crate's compile_error!."""
    firmware = BOARDS_DIR / "firmware"
    env = dict(os.environ, RUSTC="/usr/bin/rustc", RUSTC_BOOTSTRAP="1")
    base = ["/usr/bin/cargo", "build", "--release", "-Zbuild-std=core", "--target", "thumbv7m-none-eabi",
            "--target-dir", str(firmware / "target")]  # fmt: skip
    for features, expected in (
        ([], "select a board"),
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
