"""A manyfold-node process loads a manifest with primitive instances and runs their parts."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from primkit import TEMP, example_kwargs, graph

from manyfold import catalog, manifest
from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminClient
from manyfold.cluster.launch import find_native
from manyfold.graph import Graph, Route
from manyfold.primitives import Maturity

READY_S = 30.0


@contextlib.contextmanager
def native_node(g: Graph, tmp_path: Path) -> Iterator[AdminClient]:
    """A manyfold-node process running ``g``'s manifest, and an admin client to it."""
    native = find_native()
    if native is None:
        pytest.fail("manyfold-node is not built: cargo build --release -p manyfold-runtime --bin manyfold-node")
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
            yield admin
        finally:
            admin.close()
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        finally:
            process.kill()


def wait_latest(admin: AdminClient, route: Route):
    """The latest value on ``route``, waiting up to READY_S for one."""
    deadline = time.monotonic() + READY_S
    while admin.latest(route) is None:
        assert time.monotonic() < deadline, f"nothing reached {route} within {READY_S} s"
        time.sleep(0.05)
    return admin.latest(route)


def test_native_node_runs_an_installed_resistor(tmp_path: Path):
    """The Rust node accepts the `primitives` key, builds the instance's node, and it shapes values as installed."""
    g = graph()
    slow = catalog.get("Resistor").install(g, "slow_temp", source=TEMP, min_interval_us=60_000_000)
    with native_node(g, tmp_path) as admin:
        assert admin.publish(TEMP, [20.0, 21.0, 22.0]) == 3
        assert wait_latest(admin, slow.output).value == 20.0
        assert len(admin.history(slow.output)) == 1  # the other two wait out the interval


def test_native_node_builds_every_executable_contract(tmp_path: Path):
    """One manifest with an instance of every executable contract starts on manyfold-node, and values flow through one of them."""
    g = graph()
    installed = {
        c.name: c.install(g, c.name.lower(), **example_kwargs(c.name))
        for c in catalog.all() if c.maturity >= Maturity.EXECUTABLE and c.name not in ("DurableQueue", "MaterializedView")
    }
    assert {"Capacitor", "Join", "Mailbox", "Repair", "WriteBinding"} <= set(installed)
    with native_node(g, tmp_path) as admin:
        assert admin.publish(TEMP, [20.0]) == 1
        assert wait_latest(admin, installed["Scale"].output).value == 41.0  # 20 * 2 + 1, as example_kwargs installs it
