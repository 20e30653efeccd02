"""Board firmware under QEMU: build it, boot it, and talk to it over its UART with the frame layer.

For each emulated board (boards/<board>/), the firmware is cross-built once per session with
``boards/build.sh`` and booted in ``qemu-system-arm`` with UART0 on a local TCP socket. The tests
then use the echo/describe service (boards/firmware/src/service.rs) to check the whole path:
pyserial ``socket://`` -> QEMU UART -> firmware frame decoder -> reply frame -> host decoder.

The tests skip, with the reason, when the cross toolchain or QEMU is missing, unless the
environment sets ``MANYFOLD_REQUIRE_QEMU=1``: then a missing tool fails them.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import serial

from manyfold.framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "boards"
BUILD_SCRIPT = BOARDS_DIR / "build.sh"
BOARDS = ["lm3s6965evb", "mps2-an386"]

MAX_MESSAGE = 256
DESCRIBE = b"\x01"
ECHO = b"\x02"
ERROR = b"\x03"

BUILD_TIMEOUT_S = 900  # a cold build compiles `core` from source
BOOT_TIMEOUT_S = 15  # QEMU listening, connected, and the firmware's boot 0x00 received
REPLY_TIMEOUT_S = 10
# The firmware keeps every buffer on the stack; its measured peak is about 2 KiB. A change that
# needs more than this should say so here (and in boards/README.md).
STACK_BUDGET = 4096


# --- prerequisites -------------------------------------------------------------------------------


APT_PACKAGES = "qemu-system-arm gcc-arm-none-eabi rustc-web cargo-web rust-web-src"


def _missing_tools() -> list[str]:
    missing = [
        tool
        for tool in ("qemu-system-arm", "arm-none-eabi-ld", "arm-none-eabi-nm", "arm-none-eabi-readelf")
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
    """One QEMU process running the firmware, with its UART0 on a TCP socket, and a pyserial
    connection to it. Use as a context manager; leaving it kills QEMU."""

    def __init__(self, board: str, elf: Path, log: Path, extra_args: list[str] = ()):
        self.board = board
        self.decoder = FrameDecoder(max_message=MAX_MESSAGE)
        self._pending: list[bytes] = []
        self._log = log
        self._extra_args = list(extra_args)
        self._elf = elf
        self.proc: subprocess.Popen | None = None
        self.port: serial.SerialBase | None = None

    def __enter__(self) -> "RunningBoard":
        try:
            # A free port can be taken between probing and QEMU's bind: try a few.
            for attempt in range(3):
                if self._start(_free_port()):
                    break
            else:
                pytest.fail(f"QEMU did not start:\n{self._log_text()}", pytrace=False)
            self._wait_for_boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _log_text(self) -> str:
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
            *self._extra_args,
        ]  # fmt: skip
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited early (port taken, bad arguments): the log says why
            try:
                self.port = serial.serial_for_url(f"socket://127.0.0.1:{tcp_port}", timeout=0.02)
                return True
            except serial.SerialException:
                time.sleep(0.02)  # poll interval while QEMU starts listening
        pytest.fail(f"no connection to QEMU on port {tcp_port}:\n{self._log_text()}", pytrace=False)

    def _wait_for_boot(self) -> None:
        """Waits for the 0x00 the firmware sends once its UART is up (docs/wire.md 1.3). Bytes
        sent before it may be lost: the UART drops what arrives before it is initialized."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            data = self.port.read(4096)
            if data:
                self._pending.extend(self.decoder.feed(data))
                if 0 in data:
                    return
        pytest.fail(f"{self.board}: no boot 0x00 from the firmware:\n{self._log_text()}", pytrace=False)

    def close(self) -> None:
        if self.port is not None:
            self.port.close()
            self.port = None
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None

    def send_raw(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def send(self, message: bytes) -> None:
        self.send_raw(encode_frame(message, MAX_MESSAGE))

    def receive(self, timeout: float = REPLY_TIMEOUT_S) -> bytes:
        """The next message from the board."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.board}: no reply within {timeout} s "
                    f"(host decoder: {self.decoder.stats}, {self.decoder.pending_len} bytes pending)\n"
                    f"{self._log_text()}",
                    pytrace=False,
                )
            if self.proc.poll() is not None:
                pytest.fail(f"{self.board}: QEMU exited:\n{self._log_text()}", pytrace=False)
            self._pending.extend(self.decoder.feed(self.port.read(4096)))
        return self._pending.pop(0)

    def request(self, message: bytes) -> bytes:
        self.send(message)
        return self.receive()

    def describe(self) -> dict[str, str]:
        reply = self.request(DESCRIBE)
        return parse_describe(reply)


def parse_describe(reply: bytes) -> dict[str, str]:
    text = reply.decode("ascii")
    first, *fields = text.split(" ")
    assert first == "manyfold-firmware", text
    info = dict(field.split("=", 1) for field in fields)
    return info


@pytest.fixture
def run_board(board, elf, tmp_path):
    """Starts the board in QEMU: ``with run_board(*extra_qemu_args) as b: ...``."""

    def start(*extra_args: str) -> RunningBoard:
        return RunningBoard(board, elf, tmp_path / f"qemu-{board}.log", list(extra_args))

    return start


def counters(info: dict[str, str]) -> dict[str, int]:
    keys = ("frames", "crc_errors", "cobs_errors", "short", "oversize", "rejected", "rx_dropped")
    return {key: int(info[key]) for key in keys}


# --- tests ---------------------------------------------------------------------------------------


def test_describe_reports_the_board(board, run_board, descriptor):
    with run_board() as b:
        info = b.describe()
        assert b.decoder.stats.frames == 1 and b.decoder.stats.crc_errors == 0
    assert info["board"] == board == descriptor["name"]
    assert int(info["max_message"]) == descriptor["max_message"] == MAX_MESSAGE
    assert int(info["partition_bytes"]) == descriptor["partition"]["size"] == 8192
    # Nothing loaded into the region: QEMU's memory starts zeroed.
    assert info["partition_head"] == "00" * 8
    assert counters(info) == dict(
        frames=1, crc_errors=0, cobs_errors=0, short=0, oversize=0, rejected=0, rx_dropped=0
    )
    assert int(info["uptime_ms"]) >= 0
    assert 0 < int(info["stack_peak"]) <= STACK_BUDGET


def _echo_cases() -> list[bytes]:
    rng = random.Random(20240)
    return [
        b"x",
        b"hello, board",
        b"\x00",
        b"\x00" * 16,
        b"a\x00b\x00\x00c\x00",
        b"\x01\x01",  # starts like describe but is not the single byte: echoed
        b"\x02",
        bytes(rng.randrange(256) for _ in range(200)),
        bytes(range(1, 256)),  # 255 bytes: the longest that can be echoed (reply = 256 bytes)
        bytes(rng.choice([0, 0, 0xFF, 7]) for _ in range(MAX_MESSAGE - 1)),
    ]


def test_echo_round_trips_messages(run_board):
    cases = _echo_cases()
    with run_board() as b:
        for message in cases:
            assert b.request(message) == ECHO + message
        # Several frames in one write: the replies come back in order.
        burst = [b"one", b"\x00two\x00", b"three" * 20]
        b.send_raw(b"".join(encode_frame(m, MAX_MESSAGE) for m in burst))
        assert [b.receive() for _ in burst] == [ECHO + m for m in burst]
        info = b.describe()
        assert b.decoder.stats.crc_errors == 0 and b.decoder.stats.cobs_errors == 0
    assert counters(info)["frames"] == len(cases) + len(burst) + 1
    assert counters(info)["rejected"] == 0
    assert 0 < int(info["stack_peak"]) <= STACK_BUDGET


def test_max_size_message_is_accepted_but_too_long_to_echo(run_board):
    """A 256-byte request is a valid message (max_message), but its echo would be 257 bytes,
    more than max_message allows on the link: the board answers with an error reply instead."""
    message = bytes(random.Random(7).randrange(256) for _ in range(MAX_MESSAGE))
    with run_board() as b:
        assert b.request(message) == ERROR + b"echo_too_long len=256 max=255"
        # The link is fine afterwards.
        assert b.request(b"after") == ECHO + b"after"
        info = b.describe()
    assert counters(info)["frames"] == 3
    assert counters(info)["rejected"] == 0


def test_corrupted_frame_is_counted_and_not_answered(run_board):
    with run_board() as b:
        frame = bytearray(encode_frame(b"hello world", MAX_MESSAGE))
        # Flip the low bit of a data byte (frame[0] is the COBS code byte); no byte becomes 0.
        assert frame[3] not in (0x00, 0x01)
        frame[3] ^= 0x01
        b.send_raw(bytes(frame))
        # The next reply is the describe's: the corrupted frame got none.
        info = b.describe()
        assert counters(info) == dict(
            frames=1, crc_errors=1, cobs_errors=0, short=0, oversize=0, rejected=1, rx_dropped=0
        )
        assert b.request(b"still here") == ECHO + b"still here"


def test_every_kind_of_rejected_frame_is_counted(run_board):
    with run_board() as b:
        b.send_raw(b"\x05\x01\x00")  # code byte 05 announces 4 bytes, 1 follows: bad COBS
        b.send_raw(b"\x02\x61\x00")  # body of 1 byte: short
        b.send_raw(encode_frame(bytes(MAX_MESSAGE + 1), MAX_MESSAGE + 1))  # 257 bytes: oversize
        b.send_raw(bytes(1000).replace(b"\x00", b"\x07") + b"\x00")  # 1000 bytes of COBS: oversize
        b.send_raw(b"\x00\x00\x00")  # idle line: not a frame, not an error
        info = b.describe()
    assert counters(info) == dict(
        frames=1, crc_errors=0, cobs_errors=1, short=1, oversize=2, rejected=4, rx_dropped=0
    )


def test_partition_region_is_read_from_the_reserved_address(board, elf, run_board, descriptor, tmp_path):
    symbols = elf_symbols(elf)
    start, end = symbols["__partition_start"], symbols["__partition_end"]
    assert start == descriptor["partition"]["origin"]
    assert end - start == descriptor["partition"]["size"]
    # The region is the end of the code memory, and the firmware image stays out of it.
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

    image = bytes([0x4D, 0x46, 0x50, 0x49, 0x01, 0x00, 0xA5, 0x5A]) + os.urandom(end - start - 8)
    image_file = tmp_path / "partition.bin"
    image_file.write_bytes(image)
    loader = f"loader,file={image_file},addr={start:#x},force-raw=on"
    with run_board("-device", loader) as b:
        info = b.describe()
    assert info["partition_head"] == image[:8].hex()
    assert int(info["partition_bytes"]) == end - start


def test_uptime_advances(run_board):
    with run_board() as b:
        first = int(b.describe()["uptime_ms"])
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while (now := int(b.describe()["uptime_ms"])) <= first:
            assert time.monotonic() < deadline, f"uptime_ms stuck at {first}"
    assert now > first


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
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "no-such-board"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no board 'no-such-board'" in result.stderr
    assert re.search(r"lm3s6965evb.*mps2-an386", result.stderr)
