"""The rule CI holds every board test to: with ``MANYFOLD_REQUIRE_QEMU=1`` (``.ci/run`` sets it),
a test under ``tests/boards/`` that skipped, for whatever reason (a missing tool, a missing
Python package, an ``importorskip``, a skip marker), fails the run. The Zenoh tests with a real
router (``tests/cluster/test_zenoh_link.py``: eclipse-zenoh's router, ``_native.ZENOH``, the
``manyfold-node`` binary) are held to the same rule.

The fixtures in ``tests/boards/conftest.py`` already turn a missing QEMU or cross toolchain into
a failure there; this hook catches every other way a board test could skip silently. Each
skipped board test is listed in the summary with its reason, and the exit status is 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BOARD_TESTS = Path(__file__).resolve().parent / "boards"
"""The tests CI must run, never skip."""
ZENOH_TESTS = Path(__file__).resolve().parent / "cluster" / "test_zenoh_link.py"
"""The Zenoh tests with a real router: CI must run them too."""


def _require_board_tests() -> bool:
    return os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1"


def _is_board_test(report) -> bool:
    path = Path(str(report.fspath)).resolve()
    return path == BOARD_TESTS or BOARD_TESTS in path.parents or path == ZENOH_TESTS


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


_skipped: list[str] = []
"""The board tests that skipped in this session, with their reasons."""


def pytest_sessionstart(session) -> None:
    _skipped.clear()


def _record(report) -> None:
    if report.skipped and _require_board_tests() and _is_board_test(report) and not hasattr(report, "wasxfail"):
        _skipped.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_runtest_logreport(report) -> None:
    _record(report)


def pytest_collectreport(report) -> None:
    _record(report)  # a whole module skipped at import (pytest.importorskip, a module-level skip)


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.section("board tests skipped: MANYFOLD_REQUIRE_QEMU=1 forbids it", red=True)  # the Zenoh tests too
        for line in _skipped:
            terminalreporter.line(line)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

# --- the protocol oracles ---------------------------------------------------------------------------
# The independent protocol oracles (runtime_nostd/vectors/oracle.py for link v1, oracle_v11.py for
# v1.1) sit next to the vector generator, outside the package; the tests import them as `oracle`
# and `oracle_v11`.

import sys as _sys
from pathlib import Path as _Path

_VECTORS = _Path(__file__).resolve().parents[1] / "runtime_nostd" / "vectors"
if str(_VECTORS) not in _sys.path:
    _sys.path.insert(0, str(_VECTORS))
