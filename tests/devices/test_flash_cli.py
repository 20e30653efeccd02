"""`manyfold boards` and `manyfold flash` without a board: listing, PlatformIO dry runs, and
the sentences bad input gets. (Flashing the emulated boards is in tests/boards/test_flash.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from manyfold import manifest
from manyfold.examples import greenhouse

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120, cwd=cwd or ROOT)


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flash") / "greenhouse.json"
    manifest.compile(greenhouse.build(device=True).graph).write(path)
    return path


def test_boards_lists_emulated_and_real_boards():
    """`manyfold boards --json` lists both QEMU boards and the PlatformIO board with their regions."""
    result = run("boards", "--json")
    assert result.returncode == 0, result.stderr
    boards = {b["name"]: b for b in json.loads(result.stdout)}
    assert boards["lm3s6965evb"]["flashing"] == "qemu" and boards["mps2-an386"]["flashing"] == "qemu"
    assert boards["nucleo-f401re"]["flashing"] == "platformio"
    assert boards["nucleo-f401re"]["partition_origin"] == 0x0806_0000
    assert boards["nucleo-f401re"]["qemu_stand_in"] == "netduinoplus2" and boards["lm3s6965evb"]["qemu_stand_in"] is None
    table = run("boards")
    assert table.returncode == 0 and "PlatformIO (nucleo_f401re)" in table.stdout


def test_platformio_partition_only_dry_run_writes_the_project_and_command(manifest_file, tmp_path):
    """Flashing only the partition to the Nucleo, as a dry run, writes the image and a PlatformIO
    project whose OpenOCD command programs it at the partition sector, and prints the upload
    command without running it. (The firmware-and-partition upload, which needs the cross
    toolchain, is in tests/boards/test_nucleo.py.)"""
    out = tmp_path / "nucleo"
    result = run("flash", str(manifest_file), "--board", "nucleo-f401re", "--partition", greenhouse.DEVICE,
                 "--out", str(out), "--dry-run", "--partition-only", "--port", "/dev/ttyACM0")
    assert result.returncode == 0, result.stderr
    image = out / f"{greenhouse.DEVICE}.bin"
    from manyfold.devices.lower import partition_image

    assert image.read_bytes() == partition_image(manifest.Manifest.read(manifest_file), greenhouse.DEVICE)
    ini = (out / "platformio" / "platformio.ini").read_text().splitlines()
    for line in ("[env:nucleo_f401re]", "platform = ststm32", "board = nucleo_f401re", "upload_protocol = custom",
                 "platform_packages = tool-openocd", "upload_port = /dev/ttyACM0"):
        assert line in ini, line
    command = next(line for line in ini if line.startswith("upload_command = "))
    assert "-f interface/stlink.cfg -f target/stm32f4x.cfg" in command
    assert command.endswith(f'-c "program {{{image.resolve()}}} 0x08060000 verify reset exit"'), command
    expected = f"would run: pio run -d {out / 'platformio'} -e nucleo_f401re -t nobuild -t upload --upload-port /dev/ttyACM0"
    assert expected in result.stdout


def test_upload_without_platformio_is_a_sentence(manifest_file, tmp_path):
    """Without `pio` on PATH, a real upload is refused with the way to install it."""
    import os

    result = subprocess.run(
        [sys.executable, "-m", "manyfold", "flash", str(manifest_file), "--board", "nucleo-f401re", "--partition",
         greenhouse.DEVICE, "--out", str(tmp_path / "out"), "--partition-only"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PATH=str(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 2
    assert "pip install platformio" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--board", "nope", "--partition", greenhouse.DEVICE), "unknown board 'nope'; known boards: lm3s6965evb"),
        (("--board", "lm3s6965evb", "--partition", "attic"), "no partition 'attic'; it has greenhouse-sensors, main"),
        (("--board", "lm3s6965evb", "--partition", "main"), "partition main has the local profile"),
    ],
)
def test_bad_flash_requests_are_sentences(manifest_file, tmp_path, args, message):
    """Unknown boards and partitions, and host partitions, exit 2 with one sentence."""
    result = run("flash", str(manifest_file), *args, "--out", str(tmp_path), "--dry-run")
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_flash_of_a_missing_manifest_is_a_sentence(tmp_path):
    """A manifest path that does not exist is named."""
    result = run("flash", str(tmp_path / "none.json"), "--board", "lm3s6965evb", "--partition", "x")
    assert result.returncode == 2 and "none.json" in result.stderr and "Traceback" not in result.stderr


def test_verify_refuses_a_board_running_another_manifest():
    """The handshake check fails when the board's image came from another manifest."""
    from manyfold import sim
    from manyfold.devices.flash import FlashError, verify
    from manyfold.devices.lower import partition_image

    ours = manifest.compile(greenhouse.build(7, device=True).graph)
    g = greenhouse.build(7, device=True).graph
    g.route(greenhouse.Route.parse("read.raw.extra.x.y.meta.v1"), greenhouse.FLOAT)  # another manifest
    theirs = manifest.compile(g)
    describe = sim.open(partition_image(theirs, greenhouse.DEVICE)).connect()
    verify(describe, theirs, greenhouse.DEVICE)
    with pytest.raises(FlashError, match=f"runs manifest {theirs.id}, not {ours.id}"):
        verify(describe, ours, greenhouse.DEVICE)
    with pytest.raises(FlashError, match="runs partition 'greenhouse-sensors', not 'other'"):
        verify(describe, theirs, "other")


def test_firmware_upload_without_the_cross_tools_is_a_sentence(manifest_file, tmp_path):
    """Without the cross toolchain and no firmware built before, flashing the Nucleo names the
    missing tools and points at --partition-only."""
    boards = tmp_path / "boards"
    (boards / "nucleo-f401re").mkdir(parents=True)
    shutil.copy(ROOT / "boards" / "nucleo-f401re" / "board.toml", boards / "nucleo-f401re" / "board.toml")
    env = {"PATH": str(tmp_path), "MANYFOLD_BOARDS": str(boards), "MANYFOLD_RUSTC": str(tmp_path / "rustc"),
           "MANYFOLD_CARGO": str(tmp_path / "cargo"), "HOME": str(tmp_path)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "manyfold", "flash", str(manifest_file), "--board", "nucleo-f401re",
         "--partition", greenhouse.DEVICE, "--out", str(tmp_path / "out"), "--dry-run"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert "building the firmware for nucleo-f401re needs" in result.stderr and "apt-get install" in result.stderr
    assert "--partition-only" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "65536", "uart"])
def test_uart_port_outside_the_tcp_range_is_refused(manifest_file, value):
    """`--uart-port` takes a TCP port 1..65535; anything else is a usage error naming the value."""
    result = run("flash", str(manifest_file), "--board", "lm3s6965evb", "--partition", greenhouse.DEVICE, "--uart-port", value)
    assert result.returncode == 2
    assert f"argument --uart-port: expected a TCP port (1 to 65535), got {value if value == 'uart' else int(value)}" in result.stderr.replace("'", "")


def test_a_taken_uart_port_is_refused_before_anything_is_built(manifest_file, tmp_path):
    """A `--uart-port` another program listens on is refused with one sentence, before the
    firmware build (here the cross tools are hidden, so reaching the build would say so)."""
    import os
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        env = dict(os.environ, PATH=str(tmp_path), MANYFOLD_RUSTC=str(tmp_path / "rustc"), MANYFOLD_CARGO=str(tmp_path / "cargo"))
        result = subprocess.run(
            [sys.executable, "-m", "manyfold", "flash", str(manifest_file), "--board", "lm3s6965evb", "--partition",
             greenhouse.DEVICE, "--out", str(tmp_path / "out"), "--uart-port", str(port)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"manyfold flash: UART port {port} is taken (another program holds 127.0.0.1:{port})" in result.stderr
    assert "needs" not in result.stderr and "Traceback" not in result.stderr


def test_uart_port_on_a_real_board_is_refused(manifest_file, tmp_path):
    """A real board's UART is its serial port: `--uart-port` with the Nucleo is refused."""
    result = run("flash", str(manifest_file), "--board", "nucleo-f401re", "--partition", greenhouse.DEVICE,
                 "--out", str(tmp_path), "--dry-run", "--partition-only", "--uart-port", "4444")  # fmt: skip
    assert result.returncode == 2
    assert "board nucleo-f401re is real hardware: a UART port applies only to emulated boards" in result.stderr
