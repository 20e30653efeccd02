"""The fleet simulation benchmark in a tiny configuration, so the script cannot rot: each
implementation runs 3 boards for a couple of simulated seconds and prints its line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "fleet_sim.py"


@pytest.mark.parametrize("fleet", ["core", "sim.open"])
def test_fleet_sim_benchmark_smoke(fleet):
    """The script prints its header and one line per size with positive rates and ~7 events per board-second."""
    cmd = [sys.executable, str(SCRIPT), "--fleets", fleet, "--boards", "3", "--runs", "1", "--seconds", "2", "--peer-seconds", "2", "--warmup-s", "1"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    header, *lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert header["benchmark"] == "fleet_sim" and header["fleets"] == [fleet] and header["cpus"] >= 1
    (result,) = lines
    assert result["boards"] == 3 and result["fleet"] == fleet and result["runs"] == 1
    assert result["sim_s_per_wall_s"] > 0 and result["events_per_s"] > 0
    # The greenhouse partition sends about 7 host-bound events per board per simulated second.
    assert 3 * 2 * 5 <= result["events"] <= 3 * 2 * 9
