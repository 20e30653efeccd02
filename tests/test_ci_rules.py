"""CI's rule for board tests (tests/conftest.py): under MANYFOLD_REQUIRE_QEMU=1 a skipped board
test (or Zenoh router test) fails the run; elsewhere, and for other tests, a skip stays a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SKIPPING_TEST = "import pytest\n\n\ndef test_needs_a_tool():\n    pytest.skip('no_such_tool here')\n"
SKIPPING_MODULE = "import pytest\n\npytest.importorskip('no_such_module_here')\n\n\ndef test_never_runs():\n    pass\n"


def run_pytest(tree: Path, require: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MANYFOLD_REQUIRE_QEMU"}
    if require:
        env["MANYFOLD_REQUIRE_QEMU"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tree / "tests")],
        capture_output=True, text=True, timeout=120, cwd=tree, env=env,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path) -> Path:
    """A test tree with this suite's top-level conftest and nothing else."""
    (tmp_path / "tests" / "boards").mkdir(parents=True)
    (tmp_path / "tests" / "graph").mkdir()
    (tmp_path / "tests" / "cluster").mkdir()
    shutil.copy(TESTS / "conftest.py", tmp_path / "tests" / "conftest.py")
    return tmp_path


@pytest.mark.parametrize("source", [SKIPPING_TEST, SKIPPING_MODULE], ids=["test-skip", "module-importorskip"])
def test_a_skipped_board_test_fails_the_run_under_require_qemu(tree, source):
    """A board test that skips (inside the test, or its whole module at import) fails the run
    with its reason when MANYFOLD_REQUIRE_QEMU=1, and stays a skip without it."""
    (tree / "tests" / "boards" / "test_skips.py").write_text(source)
    required = run_pytest(tree, require=True)
    assert required.returncode == 1, required.stdout
    assert "board tests skipped: MANYFOLD_REQUIRE_QEMU=1 forbids it" in required.stdout
    assert "tests/boards/test_skips.py" in required.stdout and "no_such" in required.stdout
    relaxed = run_pytest(tree, require=False)
    assert relaxed.returncode in (0, 5), relaxed.stdout  # 5: nothing collected (the module skipped)
    assert "forbids it" not in relaxed.stdout


def test_skips_outside_the_board_tests_stay_skips(tree):
    """A skip outside tests/boards/ does not fail the run, even under MANYFOLD_REQUIRE_QEMU=1."""
    (tree / "tests" / "graph" / "test_skips.py").write_text(SKIPPING_TEST)
    (tree / "tests" / "boards" / "test_passes.py").write_text("def test_ok():\n    pass\n")
    result = run_pytest(tree, require=True)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_a_skipped_zenoh_router_test_fails_the_run_under_require_qemu(tree):
    """tests/cluster/test_zenoh_link.py skipping (no eclipse-zenoh, no _native.ZENOH) fails the run
    under MANYFOLD_REQUIRE_QEMU=1, and stays a skip without it; its neighbours may still skip."""
    (tree / "tests" / "cluster" / "test_zenoh_link.py").write_text(SKIPPING_MODULE)
    (tree / "tests" / "cluster" / "test_other.py").write_text(SKIPPING_TEST)
    required = run_pytest(tree, require=True)
    assert required.returncode == 1, required.stdout
    assert "tests/cluster/test_zenoh_link.py" in required.stdout and "test_other" not in required.stdout.split("forbids it")[1]
    relaxed = run_pytest(tree, require=False)
    assert relaxed.returncode == 0 and "forbids it" not in relaxed.stdout, relaxed.stdout
