"""The NUCLEO-F401RE, a real board: its firmware builds with the STM32 USART driver, keeps the
partition sector to itself, and the file its PlatformIO upload programs boots on the board's
QEMU stand-in (netduinoplus2, an STM32F405 with the same USART2 and memory map) and runs the
flashed partition. (The lockstep trace on the stand-in, byte-identical to
manyfold.sim, is in test_qemu_link.py, its flash and RAM budget in test_firmware.py.)

The stand-in is a smoke test of the driver, the memory map and the upload file, not of the
STM32F401 itself: no real board is reachable here (docs/embedded.md)."""

from __future__ import annotations

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
