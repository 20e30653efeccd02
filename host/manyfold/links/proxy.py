"""A fault proxy: a TCP relay between a host and a board's UART that damages the bytes.

The proxy listens on a local port and relays each connection to a target (an emulated board's
UART socket). Bytes crossing it in each direction go through a seeded :class:`FaultInjector`
(drops, bit flips, inserted noise), ``truncate_next_frame()`` cuts the next frame short, and
``cut()`` drops both sides of the connection as if the cable were pulled; the host may then
reconnect through the proxy and the proxy reconnects to the target. Every fault it makes is
counted, so tests compare what was damaged with what the link noticed.
"""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass

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
        self._truncate_next = False
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

    def cut(self) -> None:
        """Pull the cable: close the host and target sides of the current connection."""
        with self._lock:
            self._cut_requested = True

    def truncate_next_frame(self) -> None:
        """Drop everything from the middle of the next host-to-target frame to its delimiter."""
        with self._lock:
            self._truncate_next = True

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
                    if truncate:
                        data = self._truncate(data)
                    data = self.inject_to_target.apply(data)
                    self.counts.to_target_bytes += len(data)
                else:
                    data = self.inject_to_host.apply(data)
                    self.counts.to_host_bytes += len(data)
                try:
                    sink.sendall(data)
                except OSError:
                    for s in self._pair:
                        sel.unregister(s)
                    self._drop_pair()
        sel.close()
