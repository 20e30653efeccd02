"""`manyfold demo fleet`: the greenhouse sensor partition on a fleet of simulated boards feeding
one host graph, run as a real process; and its --faults parsing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from manyfold.demos.fleet import parse_faults


def demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", "demo", "fleet", *args], capture_output=True, text=True, timeout=120)


def test_faults_parse_into_typed_values():
    """drop, corrupt and resets_per_hour are numbers, skew_ppm and seed integers; empty is none."""
    assert parse_faults("drop=0.001, corrupt=0.0005,resets_per_hour=2,skew_ppm=-50,seed=3") == {
        "drop": 0.001, "corrupt": 0.0005, "resets_per_hour": 2.0, "skew_ppm": -50, "seed": 3,
    }  # fmt: skip
    assert parse_faults("") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [("bogus=1", "--faults takes drop=N"), ("drop", "--faults takes drop=N"), ("drop=2", "between 0 and 1"),
     ("skew_ppm=1.5", "skew_ppm must be an integer"), ("resets_per_hour=-1", "cannot be negative")],
)  # fmt: skip
def test_bad_faults_are_one_sentence_errors(text, says):
    """A bad --faults item exits 2 with one sentence naming it, and no traceback."""
    result = demo("--faults", text, "--boards", "2", "--seconds", "1")
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr


def test_fleet_demo_json_reports_time_events_and_taints():
    """A 20-board, 10 s fleet with faults reports its simulated time, the events each host route
    received (about 7 per board-second), injected losses, taints and skew within the bound."""
    result = demo("--boards", "20", "--seconds", "10", "--faults", "drop=0.0005,corrupt=0.0005,skew_ppm=100,seed=5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["boards"] == 20 and report["sim_s"] == 10.0 and report["x_real_time"] > 0
    uplinks = {route: n for route, n in report["events_by_route"].items() if ".uplink." in route}
    assert len(uplinks) == 5 and 20 * 10 * 5 <= sum(uplinks.values()) <= report["events"] <= 20 * 10 * 9
    assert report["drops"]["bytes_dropped_injected"] > 0 and report["drops"]["bytes_corrupted_injected"] > 0
    assert "det_seeded_entropy" in report["taints_by_boards"]
    assert -100 <= report["skew_ppm"][0] <= report["skew_ppm"][1] <= 100
    assert report["sample"]["board"] == 1


def test_fleet_demo_is_deterministic_and_prints_its_report():
    """The same seed and faults print the same report, but for wall-clock figures."""

    def stable(text: str) -> list[str]:
        return [line for line in text.splitlines() if "wall" not in line and "real time" not in line]

    first = demo("--boards", "5", "--seconds", "3", "--faults", "drop=0.001,seed=2")
    assert first.returncode == 0, first.stderr
    assert "Events by host route" in first.stdout and "What was lost, and where" in first.stdout
    assert stable(first.stdout) == stable(demo("--boards", "5", "--seconds", "3", "--faults", "drop=0.001,seed=2").stdout)
