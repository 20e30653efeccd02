"""Emulated boards: build the firmware and boot it in QEMU with a partition image.

:func:`start_board` runs ``qemu-system-arm`` for an emulated board (one whose descriptor has a
``qemu_machine``) with the firmware ELF and, optionally, a partition image in the board's
partition region (QEMU's generic loader). UART0 is a TCP server on a free local port: the
returned :class:`RunningBoard` gives its pyserial URL (``socket://127.0.0.1:PORT``), the QEMU
process and the port. By the time it returns, the firmware has booted (its boot 0x00 was
received), so any client may connect to the URL, one at a time::

    from manyfold.devices import qemu
    from manyfold.devices.greenhouse import greenhouse_spec

    elf = qemu.build_firmware("lm3s6965evb")
    with qemu.start_board("lm3s6965evb", elf, greenhouse_spec().encode()) as board:
        client = board.client()          # a LinkClient on board.url
        print(client.connect())

The firmware comes from :mod:`manyfold.devices.firmware` (:func:`build_firmware`,
:func:`firmware`, :func:`missing_tools`; re-exported here): built in a checkout with
``boards/build.sh``, or once into the user cache for an installed package. Every failure is a
:class:`~manyfold.devices.boards.BoardError` with one sentence (and the tail of the build or
QEMU output where that helps).
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.devices.boards import Board, BoardError, board as find_board
from manyfold.devices.firmware import (
    APT_PACKAGES,
    BUILD_TIMEOUT_S,
    QEMU,
    build_firmware,
    firmware,
    firmware_path,
    missing_sentence,
    missing_tools,
)
from manyfold.devices.link import LinkClient, Timers, open_serial

BOOT_TIMEOUT_S = 15.0
"""QEMU listening, connected, and the firmware's boot 0x00 received."""
REPLY_TIMEOUT_S = 10.0
"""The reply timeout of the clients :meth:`RunningBoard.client` makes (an emulated CPU on a
busy machine can be slow)."""


def bootable(board: str | Board) -> Board:
    """The board ``board`` names, if QEMU can boot it (an emulated board, or a real one with a
    ``[qemu_stand_in]``); else a :class:`BoardError` naming the emulated boards."""
    b = board if isinstance(board, Board) else find_board(board)
    if b.qemu_target is None:
        emulated = ", ".join(x.name for x in _all_emulated())
        raise BoardError(
            f"QEMU cannot run board {b.name} (no qemu_machine or [qemu_stand_in] in its board.toml); "
            f"emulated boards: {emulated}"
        )
    return b


def _all_emulated() -> list[Board]:
    from manyfold.devices.boards import all_boards

    return [b for b in all_boards() if b.emulated]


UART_HOST = "127.0.0.1"
"""Where QEMU serves a board's UART: local connections only."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((UART_HOST, 0))
        return s.getsockname()[1]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((UART_HOST, 0))
        return s.getsockname()[1]


def check_udp_port(port: int) -> None:
    """Raises a :class:`BoardError` unless QEMU can forward UDP ``port`` of 127.0.0.1 to a
    board: 1..65535 and free."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BoardError(f"UDP port {port!r} is not a UDP port (1 to 65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((UART_HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise BoardError(f"UDP port {port} is taken (another program holds {UART_HOST}:{port}): choose another, or leave the port out for a free one") from None
            raise BoardError(f"cannot forward UDP port {UART_HOST}:{port}: {error.strerror or error}") from None


def check_uart_port(port: int) -> None:
    """Raises a :class:`BoardError` unless QEMU can serve a UART on TCP ``port`` of
    127.0.0.1: the port must be 1..65535 and free (nothing listens on it) and this user must be
    allowed to listen on it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise BoardError(f"UART port {port!r} is not a TCP port (1 to 65535)")
    with socket.socket() as probe:
        # As QEMU does: SO_REUSEADDR lets a port whose last connection is closing be reused.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((UART_HOST, port))
            probe.listen(1)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise BoardError(
                    f"UART port {port} is taken (another program holds {UART_HOST}:{port}): choose another, "
                    "or leave the port out for a free one"
                ) from None
            raise BoardError(f"cannot serve the UART on {UART_HOST}:{port}: {error.strerror or error}") from None


@dataclass
class RunningBoard:
    """An emulated board running in QEMU, with UART0 on ``url`` (``socket://127.0.0.1:PORT``).

    ``process`` is the QEMU process and ``port`` the TCP port. The board has booted; connect
    with :meth:`client` (or any pyserial client: QEMU serves one connection at a time, and
    drops what the board sends while none is connected). :meth:`stop` (or leaving the
    ``with`` block) closes the clients made here and kills QEMU.
    """

    board: str
    url: str
    process: subprocess.Popen
    port: int
    log: Path
    reply_timeout_s: float = REPLY_TIMEOUT_S
    link: str = "serial"
    """``serial`` (``url`` is the UART's socket) or ``udp`` (``url`` is ``udp://127.0.0.1:PORT``,
    QEMU's user network forwarding that loopback port to the board's UDP port; the UART only
    carried the boot byte)."""
    uart_url: str = ""
    """The UART's ``socket://`` URL (the same as ``url`` on a serial link)."""
    _clients: list[LinkClient] = field(default_factory=list, repr=False)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def client(self, *, connect_timeout_s: float = BOOT_TIMEOUT_S, **kwargs) -> LinkClient:
        """A :class:`LinkClient` on the board's UART (``kwargs`` go to it; its reply timeout is
        ``reply_timeout_s`` unless ``timers`` are given). Waits up to ``connect_timeout_s``
        for QEMU to take the connection (it serves one client at a time: the last may still
        be closing)."""
        import serial

        kwargs.setdefault("timers", Timers(reply_timeout_s=self.reply_timeout_s))
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                client = LinkClient.open(self.url, **kwargs)
                break
            except serial.SerialException as error:
                if not self.running:
                    raise BoardError(f"{self.board}: QEMU exited ({self.process.returncode}):\n{self.log_text()}") from None
                if time.monotonic() > deadline:
                    raise BoardError(f"{self.board}: cannot connect to {self.url}: {error}") from None
                time.sleep(0.05)  # QEMU is taking the previous client's close
        self._clients.append(client)
        return client

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        """The end of QEMU's output (it is empty unless QEMU complained)."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        """Closes the clients made by :meth:`client` and kills QEMU."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    close = stop

    def __enter__(self) -> "RunningBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_board(
    board: str | Board,
    firmware: str | Path,
    image: bytes | str | Path | None = None,
    *,
    log: str | Path | None = None,
    boot_timeout_s: float = BOOT_TIMEOUT_S,
    reply_timeout_s: float = REPLY_TIMEOUT_S,
    uart_port: int | None = None,
    link: str = "serial",
    udp_port: int | None = None,
) -> RunningBoard:
    """Boots ``firmware`` on ``board`` in QEMU (its own machine, or for a real board its
    ``[qemu_stand_in]``), with ``image`` (bytes, or the path of a file) in the board's partition
    region, or the region empty (None). ``firmware`` is an ELF, or an Intel HEX file such as the
    one a PlatformIO upload writes (firmware and partition image together; pass no ``image``
    then). Returns once the firmware has booted. ``log`` is where QEMU's output goes (default: a
    temporary file, removed by :meth:`RunningBoard.stop`). The UART is served on TCP port
    ``uart_port`` of 127.0.0.1 (a :class:`BoardError` when it is taken or invalid), or on a
    free port.

    With ``link="udp"`` (a board with Ethernet, running its ``udp`` build), QEMU's user
    networking forwards UDP port ``udp_port`` of 127.0.0.1 (a free one when None) to the board's
    UDP port, and the returned board's ``url`` is ``udp://127.0.0.1:PORT``."""
    b = bootable(board)
    b.check_link(link)
    if uart_port is not None:
        check_uart_port(uart_port)
    if udp_port is not None:
        check_udp_port(udp_port)
    if shutil.which(QEMU) is None:
        raise BoardError(missing_sentence([QEMU], f"running {b.name}"))
    firmware = Path(firmware)
    if not firmware.is_file():
        raise BoardError(f"no firmware at {firmware}: build it with boards/build.sh {b.name}")
    tmp = tempfile.TemporaryDirectory(prefix=f"manyfold-{b.name}-")
    try:
        image_path: Path | None = None
        if image is not None:
            if isinstance(image, (bytes, bytearray)):
                image_path = Path(tmp.name) / "partition.bin"
                image_path.write_bytes(bytes(image))
            else:
                image_path = Path(image)
                if not image_path.is_file():
                    raise BoardError(f"no partition image at {image_path}")
            size = image_path.stat().st_size
            if size > b.partition.size:
                raise BoardError(f"the partition image has {size} bytes; {b.name}'s partition region holds {b.partition.size}")
        log_path = Path(log) if log is not None else Path(tmp.name) / "qemu.log"
        # A free port can be taken between probing and QEMU's bind: try a few (a chosen one once).
        for _ in range(3 if uart_port is None else 1):
            port = _free_port() if uart_port is None else uart_port
            forward = None if link == "serial" else (_free_udp_port() if udp_port is None else udp_port)
            running = _launch(b, firmware, image_path, log_path, boot_timeout_s, reply_timeout_s, tmp, port, forward)
            if running is not None:
                return running
        tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
        where = "" if uart_port is None else f" with its UART on port {uart_port}"
        raise BoardError(f"QEMU did not start {b.name}{where}:\n{tail}")
    except BaseException:
        tmp.cleanup()
        raise


def _launch(
    b: Board, firmware: Path, image: Path | None, log: Path, boot_timeout_s: float, reply_timeout_s: float, tmp, tcp_port: int,
    udp_port: int | None = None,
) -> RunningBoard | None:
    """One attempt on ``tcp_port`` (and with ``udp_port``, the UDP link forwarded from it);
    None when QEMU exited at once (a port was taken)."""
    import serial

    # nodelay=on: QEMU writes the UART's bytes to the socket one by one; with Nagle's algorithm
    # each reply then waits for the host's delayed ACK (about 40 ms on Linux) before its rest.
    machine, serial_index = b.qemu_target
    command = [QEMU, "-machine", machine, "-nographic", "-monitor", "none"]
    # The board's UART is the machine's serial port `serial_index`: the ones before it go nowhere.
    command += ["-serial", "null"] * serial_index
    command += ["-serial", f"tcp:{UART_HOST}:{tcp_port},server=on,wait=on,nodelay=on"]
    if firmware.suffix.lower() == ".hex":
        # Intel HEX carries its addresses; the core reads its vector table from them at reset.
        command += ["-device", f"loader,file={firmware}"]
    else:
        command += ["-kernel", str(firmware)]
    if image is not None:
        command += ["-device", f"loader,file={image},addr={b.partition.origin:#x},force-raw=on"]
    if udp_port is not None and b.ethernet is not None:
        # User networking (no privileges): the board is b.ethernet.ip behind QEMU's NAT, and the
        # host reaches its UDP port through the forward. (Not `restrict=on`: QEMU 7.2 then drops
        # the board's replies to the forwarded port. The firmware only ever answers the address
        # that said hello, here the forward, so nothing leaves this machine.)
        forward = f"hostfwd=udp:{UART_HOST}:{udp_port}-:{b.ethernet.udp_port}"
        command += ["-nic", f"user,model={b.ethernet.kind},{forward}"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent()
        )
    uart_url = f"socket://{UART_HOST}:{tcp_port}"
    url = uart_url if udp_port is None else f"udp://{UART_HOST}:{udp_port}"
    link = "serial" if udp_port is None else "udp"
    running = RunningBoard(b.name, url, process, tcp_port, log, reply_timeout_s, link=link, uart_url=uart_url, _tmp=tmp)
    deadline = time.monotonic() + boot_timeout_s
    try:
        # QEMU (wait=on) starts the CPU when the first client connects. That client waits for
        # the firmware's boot 0x00 (bytes sent before it may be lost: the UART drops what
        # arrives before its init), then lets go, so that any client can connect.
        while True:
            if process.poll() is not None:
                return None  # exited early (port taken, bad arguments): the log says why
            try:
                boot = open_serial(uart_url)
                break
            except serial.SerialException:
                if time.monotonic() > deadline:
                    raise BoardError(f"no connection to QEMU on port {tcp_port} within {boot_timeout_s:g} s:\n{running.log_text()}") from None
                time.sleep(0.02)  # poll interval while QEMU starts listening
        try:
            while b"\x00" not in _read_boot(boot, running):
                if time.monotonic() > deadline:
                    raise BoardError(f"{b.name} sent no boot byte within {boot_timeout_s:g} s:\n{running.log_text()}")
                if process.poll() is not None:
                    raise BoardError(f"QEMU exited while {b.name} booted:\n{running.log_text()}")
        finally:
            boot.close()
    except BaseException:
        running._tmp = None  # the caller cleans the directory up
        running.stop()
        raise
    return running


def _die_with_parent():
    """On Linux, from the main thread: a preexec function that makes QEMU get SIGKILL when this
    process dies, so a killed host leaves no emulator spinning. (The kernel ties this to the
    thread that started QEMU, so other threads do not set it.)"""
    import sys
    import threading

    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig, sigkill = 1, 9

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return preexec


def _read_boot(port, running: RunningBoard) -> bytes:
    import serial

    try:
        return port.read(64) or b""
    except serial.SerialException as error:
        raise BoardError(f"QEMU closed {running.board}'s UART while it booted ({error}):\n{running.log_text()}") from None


__all__ = [
    "APT_PACKAGES",
    "BOOT_TIMEOUT_S",
    "BUILD_TIMEOUT_S",
    "QEMU",
    "REPLY_TIMEOUT_S",
    "RunningBoard",
    "bootable",
    "build_firmware",
    "check_uart_port",
    "check_udp_port",
    "firmware",
    "firmware_path",
    "missing_tools",
    "start_board",
]
