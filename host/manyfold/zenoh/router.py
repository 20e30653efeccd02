"""A Zenoh router: in this process (``_native.ZenohRouter``, what ``manyfold zenoh-router``
runs), or as a ``manyfold zenoh-router`` child process (what ``manyfold demo edge --transport
zenoh`` starts). Every wait is bounded."""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from typing import TextIO

from manyfold.cluster.errors import ClusterError
from manyfold.zenoh.native import native, sentence
from manyfold.zenoh.options import check_endpoint

DEFAULT_LISTEN = "tcp/127.0.0.1:7447"
READY_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0


def free_loopback_endpoint() -> str:
    """A TCP endpoint on a loopback port free now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp/127.0.0.1:{s.getsockname()[1]}"


class ZenohRouter:
    """A router in this process, listening on ``listen``; :meth:`close` ends it."""

    def __init__(self, listen: tuple[str, ...] = (DEFAULT_LISTEN,)) -> None:
        for e in listen:
            check_endpoint(e, "--listen")
        n = native()
        try:
            self._router = n.ZenohRouter(list(listen))
        except Exception as error:  # the binding's errors are sentences
            raise ClusterError(sentence(error)) from None

    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._router.endpoints())

    def close(self) -> None:
        router, self._router = getattr(self, "_router", None), None
        if router is not None:
            router.close()


def _stdin_is_pipe(stdin: TextIO) -> bool:
    try:
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def serve(listen: tuple[str, ...], stop: threading.Event, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> None:
    """Runs a router until ``stop`` is set, or until ``stdin`` closes when it is a pipe (so a
    parent that dies takes its router along; a terminal or /dev/null is not watched). Prints the
    ready line ``{"ready": true, "listen": [...]}`` once listening."""
    router = ZenohRouter(listen)
    try:
        print(json.dumps({"ready": True, "listen": list(router.endpoints() or listen), "pid": os.getpid()}), file=out, flush=True)
        if _stdin_is_pipe(stdin):
            def watch() -> None:
                try:
                    while stdin.buffer.read1(4096) if hasattr(stdin, "buffer") else stdin.read(4096):
                        pass
                except (OSError, ValueError):
                    pass
                stop.set()

            threading.Thread(target=watch, name="zenoh-router-stdin", daemon=True).start()
        # Bounded by the stop event: SIGTERM, SIGINT or stdin closing sets it.
        while not stop.wait(0.5):
            pass
    finally:
        router.close()


class RouterProcess:
    """``manyfold zenoh-router --listen ENDPOINT`` as a child process, ready when constructed.
    :meth:`stop` closes its stdin, then SIGTERM, then SIGKILL (each bounded)."""

    def __init__(self, listen: str | None = None, *, ready_timeout_s: float = READY_TIMEOUT_S, python: str = sys.executable) -> None:
        self.listen = listen or free_loopback_endpoint()
        check_endpoint(self.listen, "--listen")
        self.process = subprocess.Popen(
            [python, "-m", "manyfold", "zenoh-router", "--listen", self.listen],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            self.ready = self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, timeout_s: float) -> dict:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        # Bounded by the deadline: each select waits at most what is left of it.
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.process.stdout], [], [], left)
            if not readable:
                break
            line = self.process.stdout.readline()
            if not line:
                err = self.process.stderr.read().strip() if self.process.stderr else ""
                raise ClusterError(f"manyfold zenoh-router on {self.listen} exited before it was ready" + (f": {err.splitlines()[-1]}" if err else ""))
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("ready") is True:
                return data
        raise ClusterError(f"manyfold zenoh-router on {self.listen} was not ready within {timeout_s:g} s")

    def stop(self) -> int | None:
        """Stops the router; its exit code (None when it had to be killed)."""
        p = self.process
        if p.poll() is None and p.stdin is not None:
            try:
                p.stdin.close()
            except OSError:
                pass
        for step in (lambda: None, p.terminate, p.kill):
            if p.poll() is not None:
                break
            step()
            try:
                p.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                continue
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
        return p.returncode if p.returncode is not None and p.returncode >= 0 else None

    def __enter__(self) -> "RouterProcess":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


__all__ = ["DEFAULT_LISTEN", "RouterProcess", "ZenohRouter", "free_loopback_endpoint", "serve"]
