"""Helpers for the discovery tests: start a runtime node (``manyfold-node`` or ``manyfold node``)
on loopback ports the OS chooses, read its ready line within a deadline, ask its admin endpoint,
stop it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.launch import find_native

HERE = Path(__file__).resolve().parent


def node_argv(program: str) -> list[str]:
    """``manyfold-node`` (the built binary) or ``manyfold node`` (this interpreter)."""
    if program == "manyfold-node":
        binary = find_native()
        assert binary is not None, "manyfold-node is not built (cargo build --release -p manyfold-runtime --bin manyfold-node)"
        return [str(binary)]
    return [sys.executable, "-m", "manyfold", "node"]


def env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(HERE) + (os.pathsep + path if path else "")}


class NodeProc:
    """One node process, started and ready."""

    def __init__(self, program: str, manifest: Path, name: str, node_id: int, partition: str, *extra: str,
                 listen: str = "127.0.0.1:0", admin: str = "127.0.0.1:0", timeout_s: float = 20.0) -> None:  # fmt: skip
        argv = [*node_argv(program), "--manifest", str(manifest), "--node", name, "--node-id", str(node_id),
                "--partition", partition, "--listen", listen, "--admin", admin, *extra]  # fmt: skip
        self.name = name
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        # Bounded by the deadline.
        while not select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"node {name} printed no ready line within {timeout_s} s")
        line = self.process.stdout.readline()
        if not line:
            err = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"node {name} exited before it was ready: {err}")
        self.ready = json.loads(line)
        self.admin = Address.parse(self.ready["admin"])

    def ask(self, request: dict) -> dict:
        with AdminClient(self.admin, timeout_s=5) as client:
            return client.ask(request)

    def peers(self) -> dict[str, dict]:
        """The node's ``peers`` list, by peer name (entries never heard have no name)."""
        return {p["name"]: p for p in self.ask({"q": "peers"})["peers"] if p["name"]}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def run_nodes_cli(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    """``manyfold nodes ARGS`` as a process."""
    return subprocess.run([sys.executable, "-m", "manyfold", "nodes", *args], capture_output=True, text=True, timeout=timeout_s, env=env())
