"""`manyfold flash` on the emulated boards: the partition image goes into the partition region,
the board boots it, the handshake verifies it, and `manyfold query` talks to it over its UART."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from manyfold import manifest
from manyfold.examples import greenhouse

FLASH_TIMEOUT_S = 300  # includes an incremental firmware build


def manyfold(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=timeout_s)


def _read_until(proc: subprocess.Popen, marker: str, timeout_s: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the one containing ``marker`` (a thread reads them, so
    lines already buffered are not missed)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if marker in line:
            return seen
    proc.terminate()
    pytest.fail(f"no {marker!r} from manyfold flash; stdout {seen}, stderr {proc.stderr.read()[-3000:]}", pytrace=False)


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory) -> tuple[Path, str]:
    m = manifest.compile(greenhouse.build(device=True).graph)
    path = tmp_path_factory.mktemp("flash") / "greenhouse.json"
    m.write(path)
    return path, m.id


def test_flash_boots_verifies_and_answers_queries(board, elf, manifest_file, tmp_path):
    """flash puts the greenhouse partition on the board, the describe check passes, the board
    answers `manyfold query` over its UART while it runs, and Ctrl-C stops it."""
    path, manifest_id = manifest_file
    proc = subprocess.Popen(
        [sys.executable, "-m", "manyfold", "flash", str(path), "--board", board, "--partition", greenhouse.DEVICE, "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = _read_until(proc, "UART: socket://", FLASH_TIMEOUT_S)
        assert f"{board} runs partition {greenhouse.DEVICE} of manifest {manifest_id}" in "".join(lines)
        url = lines[-1].split()[1]
        topology = manyfold("query", "--port", url, "topology")
        assert topology.returncode == 0, topology.stderr
        assert greenhouse.DEVICE in topology.stdout
        latest = manyfold("query", "--port", url, "latest", "read.logical.greenhouse.zone1.temperature_avg.meta.v1")
        assert latest.returncode == 0, latest.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert f"stopped {board}" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.terminate()  # flash stops its board on SIGTERM too
            proc.wait(timeout=30)
    assert (tmp_path / f"{greenhouse.DEVICE}.bin").stat().st_size > 0


def test_flash_verify_only_exits_after_the_check(board, elf, manifest_file, tmp_path):
    """--verify-only boots, checks the manifest id through the handshake, and stops the board."""
    path, manifest_id = manifest_file
    result = manyfold("flash", str(path), "--board", board, "--partition", greenhouse.DEVICE, "--out", str(tmp_path), "--verify-only", timeout_s=FLASH_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert f"of manifest {manifest_id} (verified by its describe)" in result.stdout
    for step in ("lowering partition", "booting", "handshake"):
        assert step in result.stderr
