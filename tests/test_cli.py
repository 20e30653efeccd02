"""The manyfold command, run as a real process."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120)


def test_demo_reports_arrivals_and_rejections():
    """`manyfold demo` runs, accounts for every reading, and accepts nothing corrupted."""
    result = run("demo", "--messages", "120", "--seed", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Accounting" in out and "arrived intact" in out
    assert "corrupted readings accepted" in out
    assert "bad_crc" in out or "bad_cobs" in out


def test_demo_is_deterministic():
    """The same seed prints the same report."""
    assert run("demo", "--seed", "11").stdout == run("demo", "--seed", "11").stdout


def test_bad_arguments_are_sentences_not_tracebacks():
    """An invalid rate exits 2 with a message naming the problem."""
    result = run("demo", "--drop-rate", "2")
    assert result.returncode == 2
    assert "between 0 and 1" in result.stderr
    assert "Traceback" not in result.stderr
