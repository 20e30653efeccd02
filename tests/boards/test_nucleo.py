"""The NUCLEO-F401RE, a real board: its firmware builds with the STM32 USART driver, keeps the
partition sector to itself, and the file its PlatformIO upload programs boots on the board's
QEMU stand-in (netduinoplus2, an STM32F405 with the same USART2 and memory map) and runs the
flashed partition; PlatformIO itself accepts the project `manyfold flash --dry-run` writes. (The
lockstep trace on the stand-in, byte-identical to manyfold.sim, is in test_qemu_link.py, its
flash and RAM budget in test_firmware.py.)

The stand-in is a smoke test of the driver, the memory map and the upload file, not of the
STM32F401 itself: no real board is reachable here (docs/embedded.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import elf_symbols, load_segments

from manyfold import manifest
from manyfold.devices import qemu
from manyfold.devices.boards import BoardError
from manyfold.devices.flash import verify
from manyfold.examples import greenhouse

BOARD = "nucleo-f401re"
SECTOR_7 = (0x0806_0000, 0x0808_0000)  # RM0368: the last flash sector, 128 KiB


@pytest.fixture
def board() -> str:
    return BOARD


def test_partition_sector_holds_nothing_else(elf, descriptor):
    """The vector table starts flash, the partition region starts sector 7 as board.toml says,
    and no loadable byte of the firmware lies in sector 7 (erasing it for an upload keeps the
    firmware)."""
    symbols = elf_symbols(elf)
    assert symbols["__partition_start"] == descriptor["partition"]["origin"] == SECTOR_7[0]
    assert symbols["__partition_end"] - symbols["__partition_start"] == descriptor["partition"]["size"]
    assert symbols["__stack_top"] == descriptor["ram"]["origin"] + descriptor["ram"]["size"]
    segments = [(phys, size) for phys, size in load_segments(elf) if size]
    assert min(phys for phys, _ in segments) == descriptor["flash"]["origin"]
    assert all(phys + size <= SECTOR_7[0] for phys, size in segments), segments


def test_upload_file_boots_and_runs_the_flashed_partition(elf, tmp_path):
    """`manyfold flash --board nucleo-f401re --dry-run` builds the firmware and writes one Intel
    HEX file with firmware and partition image; booted alone (no -kernel, no loader for the
    image) on the stand-in, it runs that manifest's partition, as the handshake verifies."""
    compiled = manifest.compile(greenhouse.build(device=True).graph)
    path = tmp_path / "greenhouse.json"
    compiled.write(path)
    out = tmp_path / "flash"
    result = subprocess.run(
        [sys.executable, "-m", "manyfold", "flash", str(path), "--board", BOARD, "--partition", greenhouse.DEVICE,
         "--out", str(out), "--dry-run"],
        capture_output=True, text=True, timeout=qemu.BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    hex_file = out / "platformio" / "firmware-and-partition.hex"
    assert f"programs: {hex_file}" in result.stdout
    ini = (out / "platformio" / "platformio.ini").read_text()
    assert f'-c "program {{{hex_file}}} verify reset exit"' in ini
    try:
        running = qemu.start_board(BOARD, hex_file, None, log=tmp_path / "qemu.log")
    except BoardError as error:
        pytest.fail(str(error), pytrace=False)
    with running:
        client = running.client()
        try:
            describe = client.connect()
        finally:
            client.close()
    assert describe.board == BOARD
    verify(describe, compiled, greenhouse.DEVICE)


PIO_TIMEOUT_S = 120


def _pio(*args: str, core_dir) -> subprocess.CompletedProcess:
    """PlatformIO's CLI (the `platformio` test dependency) with its home in ``core_dir``."""
    pytest.importorskip("platformio", reason="the PlatformIO checks need `pip install platformio` (the test extra)")
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(core_dir), PLATFORMIO_SETTING_ENABLE_TELEMETRY="No")
    return subprocess.run(
        [sys.executable, "-m", "platformio", *args], capture_output=True, text=True, timeout=PIO_TIMEOUT_S, env=env
    )


@pytest.mark.parametrize("partition_only", [False, True], ids=["firmware-and-partition", "partition-only"])
def test_platformio_accepts_the_generated_project(elf, tmp_path, partition_only):
    """PlatformIO itself (`pio project config --lint`, offline) finds no error or warning in the
    project `manyfold flash --dry-run` writes, computes the environment flash meant (board,
    custom upload, OpenOCD programming the right file), and downloads no platform for it."""
    compiled = manifest.compile(greenhouse.build(device=True).graph)
    path = tmp_path / "greenhouse.json"
    compiled.write(path)
    out = tmp_path / "flash"
    extra = ["--partition-only"] if partition_only else []
    result = subprocess.run(
        [sys.executable, "-m", "manyfold", "flash", str(path), "--board", BOARD, "--partition", greenhouse.DEVICE,
         "--out", str(out), "--dry-run", *extra],
        capture_output=True, text=True, timeout=qemu.BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    project, core = out / "platformio", tmp_path / "pio-core"
    lint = _pio("project", "config", "--lint", "-d", str(project), core_dir=core)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert 'The "platformio.ini" configuration file is free from linting errors.' in lint.stdout, lint.stdout

    computed = _pio("project", "config", "--json-output", "-d", str(project), core_dir=core)
    assert computed.returncode == 0, computed.stderr
    sections = {name: dict(options) for name, options in json.loads(computed.stdout)}
    env = sections["env:nucleo_f401re"]
    assert (env["platform"], env["board"], env["upload_protocol"]) == ("ststm32", "nucleo_f401re", "custom")
    assert env["platform_packages"] == ["tool-openocd"]
    program = out / f"{greenhouse.DEVICE}.bin" if partition_only else project / "firmware-and-partition.hex"
    where = f" {0x0806_0000:#010x}" if partition_only else ""
    openocd = core / "packages" / "tool-openocd"
    assert env["upload_command"] == (
        f"{openocd}/bin/openocd -s {openocd}/openocd/scripts -f interface/stlink.cfg -f target/stm32f4x.cfg"
        f' -c "program {{{program.resolve()}}}{where} verify reset exit"'
    )
    assert not (core / "platforms").exists() and not (core / "packages").exists(), "PlatformIO installed something"
