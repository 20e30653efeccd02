"""A Zenoh router from eclipse-zenoh (the test extra), as a child process the Zenoh tests kill -9
and restart on the same port: an independent build of Zenoh, so the tests also check the wire
between builds.

Run as a script: ``python zenoh_router.py PORT`` opens ``mode: "router"`` on
``tcp/127.0.0.1:PORT`` (multicast scouting off), prints ``{"ready": true, ...}`` and runs until
its stdin closes. Imported: :class:`EclipseRouter` starts, kills and restarts it, every wait bounded.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EclipseRouter:
    """The router script on ``port`` (a free one by default), ready when constructed."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"tcp/127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, str(self.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert self.process.stdout is not None
        # Bounded by the deadline; a port still held right after a kill is retried by the script.
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.process.stdout], [], [], left)[0]:
                break
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"the eclipse-zenoh router exited before it was ready: {self.process.stderr.read()[-500:]}")
            if json.loads(line).get("ready") is True:
                return
        self.kill()
        raise AssertionError(f"the eclipse-zenoh router on port {self.port} was not ready within {READY_TIMEOUT_S} s")

    def kill(self) -> None:
        """kill -9: no goodbye to anyone."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._close_pipes()

    def restart(self) -> None:
        """kill -9, then a new router on the same port."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        assert self.process is not None
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> "EclipseRouter":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def main(port: str) -> None:
    import zenoh

    config = zenoh.Config()
    config.insert_json5("mode", '"router"')
    config.insert_json5("listen/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    config.insert_json5("scouting/multicast/enabled", "false")
    deadline = time.monotonic() + 5.0
    while True:  # bounded: the port of a router killed a moment ago may take a moment to free
        try:
            session = zenoh.open(config)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    print(json.dumps({"ready": True, "zid": str(session.zid()), "listen": [f"tcp/127.0.0.1:{port}"]}), flush=True)
    try:
        sys.stdin.read()
    finally:
        session.close()


if __name__ == "__main__":
    main(sys.argv[1])
