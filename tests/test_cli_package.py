"""The CLI is a package (manyfold.cli) on top of the library, never under it: the library
imports without it, the console script and `python -m` reach the same main(), and library
errors become one sentence with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import manyfold
from manyfold.cli import errors, main

if sys.version_info >= (3, 11):
    import tomllib
else:  # the package depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(manyfold.__file__).resolve().parent
LIBRARY = ("devices", "framing.py", "graph", "links", "manifest", "query", "sim.py")
"""The library: the parts of the package below the CLI (examples and demos are the CLI's)."""


def test_the_library_imports_without_the_cli():
    """Every library module imports in a fresh interpreter without pulling in manyfold.cli, and
    none of their sources names it (lazy imports included): there is no import cycle."""
    modules = sorted(
        "manyfold." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for part in LIBRARY
        for path in ([PACKAGE / part] if part.endswith(".py") else (PACKAGE / part).rglob("*.py"))
    )
    assert "manyfold.devices.queries" in modules and "manyfold.devices.ports" in modules
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(sorted(m for m in sys.modules if m.startswith('manyfold.cli')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for part in LIBRARY:
        for path in [PACKAGE / part] if part.endswith(".py") else (PACKAGE / part).rglob("*.py"):
            text = path.read_text()
            assert "manyfold.cli" not in text and "from manyfold import cli" not in text, path


def test_the_console_script_and_python_m_run_the_same_main(capsys):
    """pyproject's `manyfold` script names manyfold.cli:main, which runs a command in-process;
    `python -m manyfold.cli` runs it too."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["manyfold"]
    module, name = target.split(":")
    assert getattr(import_module(module), name) is main
    assert main(["boards", "--json"]) == 0
    assert "lm3s6965evb" in [b["name"] for b in json.loads(capsys.readouterr().out)]
    result = subprocess.run([sys.executable, "-m", "manyfold.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("manyfold ")


def test_library_errors_are_one_sentence_and_exit_2(tmp_path, capsys):
    """A manifest that is not one (ManifestError), a socket URL without a port (PortError) and a
    route image that is not one (RouteNamesError) each print `manyfold COMMAND: sentence` and
    exit 2; a CliError raised by a command does the same."""
    (tmp_path / "bad.json").write_text("{}")
    (tmp_path / "bad.bin").write_bytes(b"junk")
    cases = [
        (["show", str(tmp_path / "bad.json")], "manyfold show: "),
        (["query", "--port", "socket://127.0.0.1", "flow"], "manyfold query: cannot open socket://127.0.0.1: a socket URL needs a host and a port"),
        (["query", "--port", "socket://127.0.0.1:9", "flow", "--image", str(tmp_path / "bad.bin")], f"manyfold query: {tmp_path / 'bad.bin'} is not a partition image"),
        (["query", "--port", "socket://127.0.0.1:9", "latest"], "manyfold query: `latest` needs a ROUTE"),
    ]  # fmt: skip
    for argv, start in cases:
        assert main(argv) == errors.EXIT_USAGE, argv
        err = capsys.readouterr().err
        assert err.startswith(start) and err.count("\n") == 1, (argv, err)
