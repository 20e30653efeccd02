"""What a benchmark says about the machine it ran on (one job: the header of a run's JSON)."""

from __future__ import annotations

import os
import platform


def cpu() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def describe() -> dict:
    """Python version, architecture, CPU model and count: the fields every run line starts with."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpu": cpu(), "cpus": os.cpu_count()}
