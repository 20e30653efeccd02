"""A fault proxy: a TCP relay between a host and a board's UART that damages the bytes.

The proxy listens on a local port and relays each connection to a target (an emulated board's
UART socket). Bytes crossing it in each direction go through a seeded :class:`FaultInjector`
(drops, bit flips, inserted noise), ``truncate_next_frame()`` cuts the next frame short, and
``cut()`` drops both sides of the connection as if the cable were pulled (``cut(hold_s=5)``
keeps it out for 5 s: connections meanwhile are closed at once); the host may then reconnect
through the proxy and the proxy reconnects to the target. Every fault it makes is counted, so
tests compare what was damaged with what the link noticed. With ``record=True`` it also keeps
the bytes of each direction before and after the damage (:meth:`FaultProxy.recording`), so a
test can decode both and account for every frame.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from manyfold.links.faults import FaultConfig, FaultInjector

READ_LEN = 4096
POLL_S = 0.05


@dataclass
class ProxyCounts:
    """What the proxy did, per direction and in total."""

    to_target_bytes: int = 0
    to_host_bytes: int = 0
    connections: int = 0
    cuts: int = 0
    truncations: int = 0
    refused: int = 0
    """Host connections closed at once because the cable was out (``cut(hold_s=...)``)."""


@dataclass
class ProxyRecording:
    """The bytes that crossed the proxy in each direction, before (``_in``) and after
    (``_out``) the faults, over all connections."""

    to_target_in: bytearray = field(default_factory=bytearray)
    to_target_out: bytearray = field(default_factory=bytearray)
    to_host_in: bytearray = field(default_factory=bytearray)
    to_host_out: bytearray = field(default_factory=bytearray)


class FaultProxy:
    """A seeded fault-injecting TCP relay. Use as a context manager, or call ``start``/``close``."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        to_target: FaultConfig = FaultConfig(),
        to_host: FaultConfig = FaultConfig(),
        seed: int = 0,
        listen_host: str = "127.0.0.1",
        record: bool = False,
    ) -> None:
        self.target = target
        self.inject_to_target = FaultInjector(to_target, seed=seed)
        self.inject_to_host = FaultInjector(to_host, seed=seed + 1)
        self.counts = ProxyCounts()
        self._listener = socket.create_server((listen_host, 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pair: tuple[socket.socket, socket.socket] | None = None
        self._cut_requested = False
        self._refuse_until = 0.0
        self._truncate_next = False
        self._recording = ProxyRecording() if record else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fault-proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The pyserial URL to connect through the proxy."""
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drop_pair()
        self._listener.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def cut(self, hold_s: float = 0.0) -> None:
        """Pull the cable: close the host and target sides of the current connection. For
        ``hold_s`` seconds after, the cable stays out: host connections are closed at once."""
        with self._lock:
            self._cut_requested = True
            self._refuse_until = time.monotonic() + hold_s

    def recording(self) -> ProxyRecording:
        """A copy of the bytes recorded so far (needs ``record=True``)."""
        if self._recording is None:
            raise RuntimeError("this proxy records nothing: create it with record=True")
        with self._lock:
            r = self._recording
            return ProxyRecording(*(bytearray(b) for b in (r.to_target_in, r.to_target_out, r.to_host_in, r.to_host_out)))

    def truncate_next_frame(self) -> None:
        """Drop everything from the middle of the next host-to-target frame to its delimiter."""
        with self._lock:
            self._truncate_next = True

    def _record(self, direction: str, clean: bytes, damaged: bytes) -> None:
        if self._recording is not None:
            with self._lock:
                getattr(self._recording, f"{direction}_in").extend(clean)
                getattr(self._recording, f"{direction}_out").extend(damaged)

    def _drop_pair(self) -> None:
        pair, self._pair = self._pair, None
        if pair:
            for s in pair:
                try:
                    s.close()
                except OSError:
                    pass

    def _truncate(self, data: bytes) -> bytes:
        end = data.find(b"\x00")
        if end <= 1:
            return data
        self.counts.truncations += 1
        return data[: end // 2] + data[end:]

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        # Bounded by the stop flag: each pass waits at most POLL_S.
        while not self._stop.is_set():
            with self._lock:
                cut, self._cut_requested = self._cut_requested, False
            if cut and self._pair:
                for s in self._pair:
                    sel.unregister(s)
                self._drop_pair()
                self.counts.cuts += 1
            for key, _ in sel.select(timeout=POLL_S):
                if key.data == "accept":
                    try:
                        host, _addr = self._listener.accept()
                    except OSError:
                        continue
                    with self._lock:
                        refuse = time.monotonic() < self._refuse_until
                    if refuse:  # the cable is out
                        host.close()
                        self.counts.refused += 1
                        continue
                    if self._pair:  # one connection at a time: a new host replaces the old one
                        for s in self._pair:
                            sel.unregister(s)
                        self._drop_pair()
                    try:
                        board = socket.create_connection(self.target, timeout=5)
                    except OSError:
                        host.close()
                        continue
                    # Reads happen only after select says readable; writes may wait briefly.
                    host.settimeout(5)
                    board.settimeout(5)
                    for s in (host, board):  # relay small chunks at once (no Nagle delay)
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._pair = (host, board)
                    self.counts.connections += 1
                    sel.register(host, selectors.EVENT_READ, "host")
                    sel.register(board, selectors.EVENT_READ, "board")
                    continue
                if not self._pair:
                    continue
                host, board = self._pair
                source, sink = (host, board) if key.data == "host" else (board, host)
                try:
                    data = source.recv(READ_LEN)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    for s in self._pair:
                        sel.unregister(s)
                    self._drop_pair()
                    continue
                if key.data == "host":
                    with self._lock:
                        truncate, self._truncate_next = self._truncate_next, False
                    damaged = self.inject_to_target.apply(self._truncate(data) if truncate else data)
                    self.counts.to_target_bytes += len(damaged)
                    self._record("to_target", data, damaged)
                else:
                    damaged = self.inject_to_host.apply(data)
                    self.counts.to_host_bytes += len(damaged)
                    self._record("to_host", data, damaged)
                data = damaged
                try:
                    sink.sendall(data)
                except OSError:
                    for s in self._pair:
                        sel.unregister(s)
                    self._drop_pair()
        sel.close()
