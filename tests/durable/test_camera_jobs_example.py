"""The camera jobs example runs and tells its story: dedup of a re-sent frame, a stalled job
redelivered, a corrupt frame dead-lettered, unacked jobs replayed after the restart, the view rebuilt."""

from __future__ import annotations

import re
import subprocess
import sys

from manyfold.examples.camera_jobs import run


def test_camera_jobs_story(tmp_path):
    """Every frame is analysed once acked, except the corrupt one, which is dead-lettered after 3 attempts."""
    station, log = run(tmp_path)
    text = "\n".join(log)
    assert "the camera re-sends south-6: the queue keeps one job" in text
    assert "job 4 south-4 attempt 2: fan 84.5%, ack (redelivery)" in text
    assert "dead letter: job 7 north-7 after 3 attempts" in text
    assert "crash with 2 job(s) delivered but not acked" in text
    assert "job 13 north-13 attempt 1: fan 66.6%, ack (redelivery)" in text, "a job delivered before the crash comes again, marked"
    acked = {m[1] for line in log if (m := re.match(r"^job \d+ (\S+) attempt \d+: fan .*%, ack", line))}
    assert acked == {f"{z}-{f}" for f, z in zip(range(1, 25), ["north", "south"] * 12)} - {"north-7"}
    c = next(s for s in station.graph.node_stats() if s.name == "image_jobs").counters
    assert (c["replayed"], c["unacked"], c["store_losses"]) == (2, 0, 0)
    view = station.graph.view("zone_state")
    assert (view.rows["north"].frame, view.rows["south"].frame) == (23, 24)


def test_camera_jobs_runs_as_a_module(tmp_path):
    """`python -m manyfold.examples.camera_jobs --store DIR` prints the summary and exits 0."""
    out = subprocess.run([sys.executable, "-m", "manyfold.examples.camera_jobs", "--store", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "zone_state north: frame 23" in out.stdout and (tmp_path / "image_jobs.sqlite").exists()
