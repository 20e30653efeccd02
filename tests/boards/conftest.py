"""Fixtures for the board tests: build the firmware, boot it in QEMU, talk to it.

For each emulated board (boards/<board>/), the firmware is cross-built once per session with
``boards/build.sh`` and booted in ``qemu-system-arm`` with UART0 on a local TCP socket and,
when a test asks, a partition image in the board's partition region (QEMU's generic loader).
The tests talk to it with ``manyfold.devices.link.LinkClient`` over pyserial ``socket://``:
host client -> QEMU UART -> the firmware's device (manyfold-core) -> frames back.

The tests skip, with the reason, when the cross toolchain or QEMU is missing, unless the
environment sets ``MANYFOLD_REQUIRE_QEMU=1``: then a missing tool fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import serial

from manyfold.devices.link import LinkClient, Timers

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "boards"
BUILD_SCRIPT = BOARDS_DIR / "build.sh"
BOARDS = ["lm3s6965evb", "mps2-an386"]

MAX_MESSAGE = 256

BUILD_TIMEOUT_S = 900  # a cold build compiles `core` from source
BOOT_TIMEOUT_S = 15  # QEMU listening, connected, and the firmware's boot 0x00 received
REPLY_TIMEOUT_S = 10
# Static RAM (.data + .bss) plus the measured stack peak, with the greenhouse partition: the
# firmware keeps its device (the executor's tables and the link buffers) on the stack, so the
# stack peak is most of it. boards/README.md records the numbers.
RAM_BUDGET = 8 * 1024
FLASH_BUDGET = 32 * 1024


# --- prerequisites -------------------------------------------------------------------------------


APT_PACKAGES = "qemu-system-arm gcc-arm-none-eabi rustc-web cargo-web rust-web-src"


def _missing_tools() -> list[str]:
    missing = [
        tool
        for tool in ("qemu-system-arm", "arm-none-eabi-ld", "arm-none-eabi-nm", "arm-none-eabi-readelf", "arm-none-eabi-size")
        if shutil.which(tool) is None
    ]
    missing += [path for path in ("/usr/bin/rustc", "/usr/bin/cargo") if not os.access(path, os.X_OK)]
    if os.access("/usr/bin/rustc", os.X_OK):
        sysroot = subprocess.run(
            ["/usr/bin/rustc", "--print", "sysroot"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        if not (Path(sysroot) / "lib/rustlib/src/rust/library/core").is_dir():
            missing.append(f"the Rust library source in {sysroot}")
    return missing


@pytest.fixture(scope="session")
def toolchain() -> None:
    """Skips (or, with MANYFOLD_REQUIRE_QEMU=1, fails) when a tool the board tests need is missing."""
    missing = _missing_tools()
    if not missing:
        return
    reason = f"board tests need {', '.join(missing)} (Debian: apt-get install {APT_PACKAGES})"
    if os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1":
        pytest.fail(f"{reason} (MANYFOLD_REQUIRE_QEMU=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def firmware_builds(toolchain) -> dict[str, Path]:
    """Built ELFs by board, filled on first use: each board is built once per session."""
    return {}


def _build(board: str, cache: dict[str, Path]) -> Path:
    if board not in cache:
        try:
            result = subprocess.run(
                ["bash", str(BUILD_SCRIPT), board],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"boards/build.sh {board} took longer than {BUILD_TIMEOUT_S} s")
        if result.returncode != 0:
            pytest.fail(f"boards/build.sh {board} failed:\n{result.stderr[-4000:]}", pytrace=False)
        elf = BOARDS_DIR / "out" / board / "firmware.elf"
        assert elf.is_file(), f"build.sh did not produce {elf}"
        cache[board] = elf
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


@pytest.fixture
def partition_origin(descriptor) -> int:
    return descriptor["partition"]["origin"]


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


# --- running a board -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningBoard:
    """One QEMU process running the firmware, with UART0 on a local TCP socket (``url``).
    ``client()`` connects a LinkClient to it. Use as a context manager; leaving it kills QEMU."""

    def __init__(self, board: str, elf: Path, log: Path, image: Path | None, origin: int):
        self.board = board
        self._elf = elf
        self._log = log
        self._image = image
        self._origin = origin
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self._first: LinkClient | None = None
        self._clients: list[LinkClient] = []

    def __enter__(self) -> "RunningBoard":
        try:
            # A free port can be taken between probing and QEMU's bind: try a few.
            for _ in range(3):
                if self._start(_free_port()):
                    break
            else:
                pytest.fail(f"QEMU did not start:\n{self.log_text()}", pytrace=False)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log_text(self) -> str:
        return self._log.read_text(errors="replace")[-4000:] if self._log.exists() else ""

    def _start(self, tcp_port: int) -> bool:
        machine = _load_toml(BOARDS_DIR / self.board / "board.toml")["qemu_machine"]
        command = [
            "qemu-system-arm",
            "-machine", machine,
            "-nographic",
            "-monitor", "none",
            "-serial", f"tcp:127.0.0.1:{tcp_port},server=on,wait=on",
            "-kernel", str(self._elf),
        ]  # fmt: skip
        if self._image is not None:
            command += ["-device", f"loader,file={self._image},addr={self._origin:#x},force-raw=on"]
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"socket://127.0.0.1:{tcp_port}"
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited early (port taken, bad arguments): the log says why
            try:
                # QEMU (wait=on) starts the CPU when this first client connects, so it is kept
                # for the first `client()` call: it is the one that sees the boot 0x00.
                self._first = LinkClient.open(self.url, timers=Timers(reply_timeout_s=REPLY_TIMEOUT_S))
                return True
            except serial.SerialException:
                time.sleep(0.02)  # poll interval while QEMU starts listening
        pytest.fail(f"no connection to QEMU on port {tcp_port}:\n{self.log_text()}", pytrace=False)

    def client(self, **kwargs) -> LinkClient:
        """A LinkClient on the board's UART. The first one waits for the firmware's boot 0x00
        (bytes sent before it may be lost: the UART drops what arrives before its init); later
        ones reconnect to a board that is already running."""
        kwargs.setdefault("timers", Timers(reply_timeout_s=REPLY_TIMEOUT_S))
        first, self._first = self._first, None
        if first is not None:
            client = LinkClient(first.port, reopen=first._reopen, **kwargs)
            client.wait_for_boot(BOOT_TIMEOUT_S)
        else:
            deadline = time.monotonic() + BOOT_TIMEOUT_S
            while True:
                try:
                    client = LinkClient.open(self.url, **kwargs)
                    break
                except serial.SerialException:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{self.board}: cannot connect to {self.url}\n{self.log_text()}", pytrace=False)
                    time.sleep(0.05)  # QEMU takes one client at a time; the last one is closing
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients + ([self._first] if self._first else []):
            client.close()
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


@pytest.fixture
def run_board(board, elf, tmp_path, partition_origin):
    """Starts the board in QEMU: ``with run_board(image_bytes_or_None) as b: ...``."""

    def start(image: bytes | None = None) -> RunningBoard:
        path = None
        if image is not None:
            path = tmp_path / f"partition-{board}.bin"
            path.write_bytes(image)
        return RunningBoard(board, elf, tmp_path / f"qemu-{board}.log", path, partition_origin)

    return start
