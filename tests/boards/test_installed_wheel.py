"""manyfold as pip users get it: a wheel built from this checkout (maturin), installed into a
fresh virtual environment, run from an empty directory far from any checkout. The board
descriptors and firmware sources travel in the package (``manyfold/_sources``); the firmware
is built once into the user cache (``XDG_CACHE_HOME``, a temporary directory here) and flashed,
queried and measured on QEMU.

One wheel serves the session (a release build of the extension: cargo reuses the checkout's
``target/``, so it takes about 30 s after ``pip install -e``). The wheel's own dependencies
(pyserial, cbor2, rich, ...) come from this test environment through a ``.pth`` line: the
``manyfold`` package itself is the wheel's, which each test checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from manyfold import manifest
from manyfold.examples import greenhouse

ROOT = Path(__file__).resolve().parents[2]
WHEEL_BUILD_TIMEOUT_S = 1200  # a cold release build of the extension on a busy 2-core machine
FLASH_TIMEOUT_S = 900  # the first flash builds the firmware into the empty cache (core from source)
COMMAND_TIMEOUT_S = 120
BOARD = "lm3s6965evb"
SOURCE_GLOBS = ("boards/firmware/src/**/*.rs", "framing/src/**/*.rs", "runtime_nostd/src/**/*.rs", "boards/*/board.toml", "boards/*/*.x")
"""Checkout files that must each be in the wheel, whatever they are when the wheel is built."""


@dataclass(frozen=True)
class Installed:
    """The wheel, the virtual environment it is installed in, and the directories its
    commands run with."""

    wheel: Path
    venv: Path
    workdir: Path
    """Where the commands run: empty but for what they write (.manyfold/)."""
    cache: Path
    """XDG_CACHE_HOME for the commands."""
    inputs: Path
    """The manifest the tests flash, outside the working directory."""

    @property
    def site_packages(self) -> Path:
        return Path(sysconfig.get_path("purelib", vars={"base": str(self.venv), "platbase": str(self.venv)}))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MANYFOLD_BOARDS")}
        env.update(XDG_CACHE_HOME=str(self.cache), PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
        env.update(extra)
        return env

    def manyfold(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "manyfold"), *args], capture_output=True, text=True, timeout=timeout_s,
            cwd=self.workdir, env=self.env(**env),
        )  # fmt: skip


def _run(command: list[str], timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{(result.stderr or result.stdout)[-4000:]}", pytrace=False)
    return result


@pytest.fixture(scope="session")
def installed(toolchain, tmp_path_factory) -> Installed:
    """Builds the wheel once, installs it into a fresh venv, and compiles the test manifest."""
    pytest.importorskip("maturin", reason="the installed-wheel tests build a wheel with maturin (the test extra)")
    base = tmp_path_factory.mktemp("wheel")
    dist, venv, workdir, cache, inputs = (base / d for d in ("dist", "venv", "empty", "cache", "inputs"))
    for d in (workdir, cache, inputs):
        d.mkdir()
    _run([sys.executable, "-m", "maturin", "build", "--release", "--out", str(dist)], WHEEL_BUILD_TIMEOUT_S, cwd=ROOT)
    (wheel,) = dist.glob("manyfold-*.whl")
    # Without pip in the venv (Debian's python3 needs python3-venv for that): this pip installs into it.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], COMMAND_TIMEOUT_S)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)], COMMAND_TIMEOUT_S)
    done = Installed(wheel, venv, workdir, cache, inputs)
    # The dependencies, from this environment (a plain path line: its .pth files, such as an
    # editable manyfold's, are not run, and the venv's own site-packages comes first).
    (done.site_packages / "_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    graph = inputs / "greenhouse_graph.py"
    graph.write_text("from manyfold.examples import greenhouse\n\ngraph = greenhouse.build(device=True).graph\n")
    _run([str(venv / "bin" / "manyfold"), "compile", str(graph), "-o", str(inputs / "greenhouse.json")], COMMAND_TIMEOUT_S,
         cwd=workdir, env=done.env())  # fmt: skip
    return done


def test_the_wheel_carries_every_firmware_source_inside_the_package(installed):
    """Every file of the wheel is under manyfold/ or its dist-info (nothing at site-packages top
    level), every firmware, framing and core source file and board descriptor of the checkout
    is in manyfold/_sources/ at its repository path, and no build output is."""
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert all(n.startswith(("manyfold/", "manyfold-")) for n in names), [n for n in names if not n.startswith("manyfold")]
    shipped = {n.removeprefix("manyfold/_sources/") for n in names if n.startswith("manyfold/_sources/")}
    expected = {p.relative_to(ROOT).as_posix() for pattern in SOURCE_GLOBS for p in ROOT.glob(pattern) if p.is_file()}
    expected |= {"Cargo.toml", "boards/build.sh", "boards/firmware/Cargo.toml", "boards/firmware/Cargo.lock",
                 "boards/firmware/build.rs", "boards/firmware/.cargo/config.toml", "framing/Cargo.toml", "runtime_nostd/Cargo.toml"}  # fmt: skip
    assert expected <= shipped, sorted(expected - shipped)
    assert not [n for n in shipped if "/out/" in n or "/target/" in n]


def test_the_wheel_carries_the_monitor_page(installed):
    """The web view's page, script and style (package data of manyfold.monitor) are in the wheel."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    page = {f"manyfold/monitor/static/{n}" for n in ("index.html", "monitor.js", "monitor.css")}
    assert page <= names, sorted(page - names)


def test_boards_from_an_empty_directory(installed):
    """`manyfold boards` lists every board from the installed package, run where no checkout is."""
    result = installed.manyfold("boards", "--json")
    assert result.returncode == 0, result.stderr
    in_checkout = sorted(tomllib.loads(p.read_text())["name"] for p in ROOT.glob("boards/*/board.toml"))
    assert sorted(b["name"] for b in json.loads(result.stdout)) == in_checkout and len(in_checkout) >= 3
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import manyfold; print(manyfold.__file__)"],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=installed.workdir, env=installed.env(),
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(installed.site_packages), where.stdout + where.stderr


def _cached_elf(installed: Installed) -> Path:
    (entry,) = (installed.cache / "manyfold" / "firmware").glob("*-*")
    return entry / BOARD / "firmware.elf"


def test_flash_verify_only_builds_the_firmware_once_into_the_user_cache(installed):
    """`manyfold flash --verify-only` from the wheel builds the firmware into
    XDG_CACHE_HOME/manyfold/firmware/VERSION-HASH/, boots it in QEMU and verifies the handshake;
    a second flash reuses that firmware without building."""
    manifest_file = installed.inputs / "greenhouse.json"
    args = ("flash", str(manifest_file), "--board", BOARD, "--partition", greenhouse.DEVICE, "--verify-only")
    first = installed.manyfold(*args, timeout_s=FLASH_TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    compiled = manifest.Manifest.read(manifest_file)
    assert f"{BOARD} runs partition {greenhouse.DEVICE} of manifest {compiled.id} (verified by its describe)" in first.stdout
    elf = _cached_elf(installed)
    assert elf.is_file() and "once, into" in first.stderr
    built_ns = elf.stat().st_mtime_ns
    second = installed.manyfold(*args, timeout_s=FLASH_TIMEOUT_S)
    assert second.returncode == 0, second.stderr
    assert elf.stat().st_mtime_ns == built_ns  # not rebuilt
    assert sorted(p.name for p in installed.workdir.iterdir()) == [".manyfold"]  # only the image it wrote


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_query_answers_from_a_board_flash_started_on_a_chosen_port(installed):
    """`manyfold flash --uart-port N` serves the board's UART on port N; the installed `manyfold
    query --port socket://127.0.0.1:N topology` gets the flashed partition's routes from it; a
    second flash on the same port is refused with a sentence; SIGTERM stops the board."""
    port = _free_port()
    manifest_file = installed.inputs / "greenhouse.json"
    args = ["flash", str(manifest_file), "--board", BOARD, "--partition", greenhouse.DEVICE]
    proc = subprocess.Popen(
        [str(installed.venv / "bin" / "manyfold"), *args, "--uart-port", str(port)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=installed.workdir, env=installed.env(),
    )  # fmt: skip
    try:
        url = f"socket://127.0.0.1:{port}"
        for line in proc.stdout:
            if line.startswith("UART: "):
                assert line.split()[1] == url
                break
        else:
            pytest.fail(f"manyfold flash stopped before serving the UART: {proc.stderr.read()[-3000:]}", pytrace=False)
        topology = installed.manyfold("query", "--port", url, "topology")
        assert topology.returncode == 0, topology.stderr
        assert greenhouse.DEVICE in topology.stdout and "read.logical.greenhouse.zone1.temperature_avg.meta.v1" in topology.stdout
        taken = installed.manyfold(*args, "--uart-port", str(port), "--verify-only")
        assert taken.returncode == 2
        assert f"UART port {port} is taken" in taken.stderr and "Traceback" not in taken.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert f"stopped {BOARD}" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_footprint_json_measures_the_cached_firmware(installed):
    """`manyfold footprint --board lm3s6965evb --json` from the wheel measures the firmware in the
    user cache, within the flash and RAM budgets."""
    from manyfold.devices.footprint import FLASH_BUDGET, RAM_BUDGET

    result = installed.manyfold("footprint", "--board", BOARD, "--json", timeout_s=FLASH_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert Path(measured["elf"]) == _cached_elf(installed)
    assert 0 < measured["flash_bytes"] <= FLASH_BUDGET and 0 < measured["ram_bytes"] <= RAM_BUDGET


def test_without_the_cross_tools_the_error_names_the_debian_packages(installed, tmp_path):
    """With an empty cache and no cross toolchain, flashing from the wheel fails with one
    sentence naming the missing tools and the Debian packages that bring them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("qemu-system-arm", "bash"):  # QEMU stays: only the build tools are missing
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = installed.manyfold(
        "flash", str(installed.inputs / "greenhouse.json"), "--board", BOARD, "--partition", greenhouse.DEVICE, "--verify-only",
        XDG_CACHE_HOME=str(tmp_path / "cache"), PATH=str(bin_dir), MANYFOLD_RUSTC=str(tmp_path / "rustc"),
        MANYFOLD_CARGO=str(tmp_path / "cargo"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert f"building the firmware for {BOARD} needs arm-none-eabi-ld" in result.stderr, result.stderr
    assert "apt-get install qemu-system-arm gcc-arm-none-eabi rustc-web cargo-web rust-web-src" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_edge_runs_from_the_wheel(installed):
    """`manyfold demo edge --json` from the wheel, in an empty directory: three node processes
    (all `manyfold node`: the wheel carries no manyfold-node binary, and up says so), the fan
    command, every node stopped cleanly."""
    result = installed.manyfold("demo", "edge", "--json", timeout_s=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(n["name"] for n in report["nodes"]) == ["edge-a", "edge-b", "host"]
    assert {n["program"] for n in report["nodes"]} == {"manyfold node"}
    assert report["fan_command"] is not None and report["stopped"] == {"edge-a": 0, "edge-b": 0, "host": 0}


def test_demo_fleet_runs_from_the_wheel(installed):
    """`manyfold demo fleet --json` from the wheel, in an empty directory: 50 boards for 10
    simulated seconds feed the host graph, about 7 events per board-second."""
    result = installed.manyfold("demo", "fleet", "--boards", "50", "--seconds", "10", "--json", timeout_s=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["boards"] == 50 and report["sim_s"] == 10.0
    assert 50 * 10 * 6 <= report["events"] <= 50 * 10 * 8
