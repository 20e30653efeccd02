"""A simulated board behind a real TCP socket, like an emulated board's UART: tests of tools
that take a pyserial URL (``socket://127.0.0.1:PORT``) run against it without QEMU."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

import manyfold.sim as sim


@contextlib.contextmanager
def serve_sim(image: bytes | None, board: str = "lm3s6965evb"):
    """Serves ``manyfold.sim`` running ``image`` (real time) on a local TCP port, one client at
    a time; yields its ``socket://`` URL. ``image=None`` serves a silent socket: it accepts and
    never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        # Made here: the simulated device belongs to the thread that created it.
        port = sim.SimPort(image, board, realtime=True, timeout=0) if image is not None else None
        while not stop.is_set():  # bounded by the stop flag: each accept waits at most 0.1 s
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.setblocking(False)
                while not stop.is_set():
                    ready, _, _ = select.select([conn], [], [], 0.005)
                    if ready:
                        try:
                            data = conn.recv(4096)
                        except OSError:
                            break
                        if not data:
                            break
                        if port is not None:
                            port.write(data)
                    if port is not None:
                        out = port.read(4096)
                        if out:
                            try:
                                conn.sendall(out)
                            except OSError:
                                break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
