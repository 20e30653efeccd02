"""`manyfold demo edge --board`: the edge greenhouse's sensor partition on an emulated board in
QEMU, owned by edge node A over its UART; its events reach node A's graph with the board's and
the serial link's taints, and the rest of the demo runs as in the host simulation."""

from __future__ import annotations

import json
import subprocess
import sys

DEMO_TIMEOUT_S = 300


def test_edge_demo_with_the_board_in_qemu(firmware_builds):
    result = subprocess.run([sys.executable, "-m", "manyfold", "demo", "edge", "--board", "lm3s6965evb", "--json"],
                            capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (device,) = report["devices"]
    assert device["node"] == "edge-a" and device["port"].startswith("socket://127.0.0.1:")
    assert device["uplinks"] and all(u["seq"] > 0 for u in device["uplinks"])
    assert all({"trust_unverified", "det_nonreplayable"} <= set(u["taints"]) for u in device["uplinks"])
    assert report["fan_command"] is not None and report["stopped"] == {"edge-a": 0, "edge-b": 0, "host": 0}
