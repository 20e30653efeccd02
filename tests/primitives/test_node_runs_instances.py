"""A manyfold-node process loads a manifest with primitive instances and runs their parts."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from primkit import TEMP, graph

from manyfold import catalog, manifest
from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.launch import find_native

READY_S = 30.0


def test_native_node_runs_an_installed_resistor(tmp_path: Path):
    """The Rust node accepts the `primitives` key, builds the instance's node, and it shapes values as installed."""
    native = find_native()
    if native is None:
        pytest.fail("manyfold-node is not built: cargo build --release -p manyfold-runtime --bin manyfold-node")
    g = graph()
    slow = catalog.get("Resistor").install(g, "slow_temp", source=TEMP, min_interval_us=60_000_000)
    path = tmp_path / "m.json"
    manifest.compile(g).write(path)
    argv = [str(native), "--manifest", str(path), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--node", "main", "--node-id", "1", "--partition", "main"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line, f"manyfold-node printed no ready line: {process.stderr.read()}"
        admin = AdminClient(Address.parse(json.loads(line)["admin"]), timeout_s=10.0)
        try:
            assert admin.publish(TEMP, [20.0, 21.0, 22.0]) == 3
            deadline = time.monotonic() + READY_S
            while admin.latest(slow.output) is None:
                assert time.monotonic() < deadline, f"nothing reached {slow.output} within {READY_S} s"
                time.sleep(0.05)
            assert admin.latest(slow.output).value == 20.0
            assert len(admin.history(slow.output)) == 1  # the other two wait out the interval
        finally:
            admin.close()
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        finally:
            process.kill()
