"""Helpers for the monitor tests: ``manyfold monitor`` as a process whose JSON lines are read
by a thread (so each wait has a deadline), and publishing into a running cluster."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time

from clusterkit import r

RAW = str(r("probe", "raw"))
"""The first route of the split graph (ingest's input): publishing there moves every link."""


class Monitor:
    """``manyfold monitor ARGS --json`` running (a context manager); :meth:`next` returns its
    next JSON line as a dict, within a deadline."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "manyfold", "monitor", *args, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        """Every line read so far."""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self, timeout_s: float = 10.0) -> dict:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"manyfold monitor printed nothing for {timeout_s} s") from None
        if line is None:
            raise AssertionError(f"manyfold monitor ended (code {self.proc.wait()}): {self.proc.stderr.read()}")
        self.seen.append(json.loads(line))
        return self.seen[-1]

    def until(self, condition, timeout_s: float, what: str) -> dict:
        """The first snapshot (or line) for which ``condition`` holds, within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} did not hold within {timeout_s} s")
            line = self.next(left)
            if condition(line):
                return line

    def interrupt(self, timeout_s: float = 10.0) -> int:
        """Ctrl-C: the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def states(snapshot: dict) -> dict[str, str]:
    return {n["name"]: n["state"] for n in snapshot["nodes"]}


def link(snapshot: dict, node: str, name: str) -> dict:
    return next(k for k in snapshot["links"] if k["node"] == node and k["name"] == name)


class Publishing:
    """While entered, a thread publishes a value at ``RAW`` through ``admin`` every ``period_s``
    (the split graph's links carry events all the time)."""

    def __init__(self, admin, period_s: float = 0.05) -> None:
        self.admin, self.period_s = admin, period_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.published = 0

    def _run(self) -> None:
        while not self.stop.wait(self.period_s):
            self.admin.publish(RAW, [float(self.published % 40)])
            self.published += 1

    def __enter__(self) -> "Publishing":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
