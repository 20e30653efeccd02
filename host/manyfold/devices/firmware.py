"""The board firmware: where its sources are, what builds it, and where the built ELF goes.

One binary serves every partition (it reads the partition image from its partition region), so
each board needs its firmware built once. The sources come from one of two places:

- **a checkout** of the repository (``manyfold/_sources/boards`` is a symlink into it, as in an
  editable install), or the directory ``MANYFOLD_BOARDS`` names: ``boards/build.sh BOARD`` runs
  in place, each time (cargo rebuilds only what changed), into ``boards/out/BOARD/firmware.elf``;
- **an installed package** (a wheel): the sources travel in the package as
  ``manyfold/_sources/`` (board descriptors, linker scripts, ``build.sh``, the firmware crate and
  the ``no_std`` crates it depends on, in the repository's layout). The firmware is built once
  per board, package version and hash of those sources into the user's cache,
  ``$XDG_CACHE_HOME/manyfold/firmware/VERSION-HASH/BOARD/firmware.elf`` (``~/.cache`` without
  ``XDG_CACHE_HOME``): the sources are copied next to it and built there with the same
  ``build.sh``. The hash keeps a development build from reusing firmware of other sources.

Building needs Debian's Rust toolchain with its library source and the ARM binutils
(:data:`APT_PACKAGES`, with QEMU to run it); :func:`missing_tools` names what is not installed,
and every failure is a :class:`~manyfold.devices.boards.BoardError` of one sentence.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from manyfold.devices.boards import PACKAGE_SOURCES, Board, BoardError, board as find_board, boards_dir

APT_PACKAGES = "qemu-system-arm gcc-arm-none-eabi rustc-web cargo-web rust-web-src"
"""The Debian packages that build and run the firmware."""
BUILD_TIMEOUT_S = 900.0
"""A cold build compiles ``core`` from source (about 45 s per board; slow machines take longer)."""
QEMU = "qemu-system-arm"
BINUTILS = ("arm-none-eabi-ld", "arm-none-eabi-nm", "arm-none-eabi-readelf", "arm-none-eabi-size")
SOURCES = PACKAGE_SOURCES
"""The firmware's sources as the package carries them (symlinks into a checkout)."""
SOURCE_FILES_MAX = 4096
"""The most files the shipped sources may have (a bound on the hash walk; they have about 60)."""


def missing_tools(*, build: bool = True, run: bool = True) -> list[str]:
    """The tools that are not installed: for building the firmware (``build``: Debian's rustc
    and cargo, the Rust library source, the ARM binutils) and for running it (``run``: QEMU).
    An empty list means all are there."""
    missing: list[str] = []
    if run and shutil.which(QEMU) is None:
        missing.append(QEMU)
    if build:
        missing += [tool for tool in BINUTILS if shutil.which(tool) is None]
        rustc = os.environ.get("MANYFOLD_RUSTC", "/usr/bin/rustc")
        cargo = os.environ.get("MANYFOLD_CARGO", "/usr/bin/cargo")
        missing += [path for path in (rustc, cargo) if not os.access(path, os.X_OK)]
        if os.access(rustc, os.X_OK):
            try:
                sysroot = subprocess.run(
                    [rustc, "--print", "sysroot"], capture_output=True, text=True, timeout=60
                ).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                sysroot = ""
            if not sysroot or not (Path(sysroot) / "lib/rustlib/src/rust/library/core").is_dir():
                missing.append(f"the Rust library source in {sysroot or 'the rustc sysroot'}")
    return missing


def missing_sentence(missing: list[str], what: str) -> str:
    """``what`` needs the ``missing`` tools, and the Debian packages that bring them."""
    return f"{what} needs {', '.join(missing)} (Debian: apt-get install {APT_PACKAGES})"


@dataclass(frozen=True)
class FirmwareHome:
    """Where one board's firmware is built: ``boards`` holds ``build.sh`` and ``firmware/``,
    ``elf`` is the built ELF, and ``cached`` says the build is the user cache's (once, from the
    sources an installed package carries) rather than a checkout's (in place, every time)."""

    boards: Path
    elf: Path
    cached: bool


def _installed() -> bool:
    """True when the package carries its own copy of the sources (a wheel install), False in a
    checkout (its ``_sources`` entries are symlinks) or with ``MANYFOLD_BOARDS`` set."""
    if os.environ.get("MANYFOLD_BOARDS"):
        return False
    boards = SOURCES / "boards"
    return boards.is_dir() and not boards.is_symlink()


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/manyfold/firmware`` (``~/.cache`` when unset or not absolute)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "manyfold" / "firmware"


@lru_cache(maxsize=1)
def sources_hash() -> str:
    """SHA-256 over the shipped sources' relative paths and contents, in path order."""
    digest = hashlib.sha256()
    files = sorted(p for p in SOURCES.rglob("*") if p.is_file())
    if len(files) > SOURCE_FILES_MAX:
        raise BoardError(f"{SOURCES} holds {len(files)} files, more than the {SOURCE_FILES_MAX} firmware sources expected")
    for path in files:
        digest.update(path.relative_to(SOURCES).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _cache_key_dir() -> Path:
    from manyfold import __version__

    return cache_dir() / f"{__version__}-{sources_hash()[:16]}"


def out_name(board: str | Board, link: str = "serial") -> str:
    """The build's directory name: the board's, with ``-udp`` for its UDP-link build."""
    name = board.name if isinstance(board, Board) else board
    return name if link == "serial" else f"{name}-{link}"


def home(board: str | Board, link: str = "serial") -> FirmwareHome:
    """Where ``board``'s firmware (for ``link``: ``serial`` or ``udp``) is built and found (see
    the module docs)."""
    name = out_name(board, link)
    if _installed():
        key = _cache_key_dir()
        return FirmwareHome(key / "source" / "boards", key / name / "firmware.elf", cached=True)
    boards = boards_dir()
    return FirmwareHome(boards, boards / "out" / name / "firmware.elf", cached=False)


def firmware_path(board: str | Board, link: str = "serial") -> Path:
    """Where the board's ELF is: ``boards/out/<board>/firmware.elf`` in a checkout
    (``<board>-udp`` for the UDP build), the user cache for an installed package."""
    return home(board, link).elf


@contextmanager
def _locked(path: Path):
    """Holds an exclusive lock on ``path`` (POSIX; elsewhere, no lock), so that two commands
    filling the same cache entry build it once."""
    try:
        import fcntl
    except ImportError:  # Windows: no build tools for the boards there anyway
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_build_sh(boards: Path, name: str, timeout_s: float, link: str = "serial") -> Path:
    """Runs ``boards/build.sh name [link]`` and returns the ELF it wrote under ``boards/out``."""
    args = [name] if link == "serial" else [name, link]
    shown = " ".join(args)
    try:
        result = subprocess.run(["bash", str(boards / "build.sh"), *args], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BoardError(f"boards/build.sh {shown} took longer than {timeout_s:g} s") from None
    if result.returncode != 0:
        raise BoardError(f"boards/build.sh {shown} failed:\n{result.stderr[-4000:]}")
    elf = boards / "out" / out_name(name, link) / "firmware.elf"
    if not elf.is_file():
        raise BoardError(f"boards/build.sh {shown} did not produce {elf}")
    return elf


def _build_cached(where: FirmwareHome, name: str, timeout_s: float, link: str = "serial") -> Path:
    """Fills the cache entry: copies the shipped sources next to it once, builds there, and
    moves the ELF into place (a reader sees the whole file or none)."""
    key = where.elf.parent.parent
    key.mkdir(parents=True, exist_ok=True)
    with _locked(key / ".lock"):
        if where.elf.is_file():
            return where.elf  # another command built it while this one waited
        tree = key / "source"
        done = key / "source.copied"
        if not done.is_file():
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(SOURCES, tree, copy_function=shutil.copyfile)  # writable copies
            done.touch()
        built = _run_build_sh(where.boards, name, timeout_s, link)
        where.elf.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=where.elf.parent, prefix=".firmware-", delete=False) as tmp:
            tmp.write(built.read_bytes())
        os.replace(tmp.name, where.elf)
    return where.elf


def build_firmware(board: str | Board, *, timeout_s: float = BUILD_TIMEOUT_S, link: str = "serial") -> Path:
    """Builds the firmware for ``board`` (emulated or real) and ``link`` (``serial``, or ``udp``
    for a board with Ethernet) and returns the ELF's path: in a checkout with
    ``boards/build.sh`` (incremental: a few seconds when nothing changed); for an installed
    package into the user cache, once (a cached ELF is returned as it is)."""
    b = board if isinstance(board, Board) else find_board(board)
    b.check_link(link)
    where = home(b, link)
    if where.cached and where.elf.is_file():
        return where.elf
    missing = missing_tools(build=True, run=False)
    if missing:
        raise BoardError(missing_sentence(missing, f"building the firmware for {b.name}"))
    return _build(where, b.name, timeout_s, link)


def _build(where: FirmwareHome, name: str, timeout_s: float, link: str = "serial") -> Path:
    """Builds into the user cache (installed package) or ``boards/out`` (checkout); the build
    tools were checked by the caller."""
    if where.cached:
        return _build_cached(where, name, timeout_s, link)
    return _run_build_sh(where.boards, name, timeout_s, link)


def firmware(board: str | Board, *, build: bool = True, hint: str = "", link: str = "serial") -> Path:
    """The firmware ELF for ``board``: built with :func:`build_firmware` when ``build`` and the
    build tools are there (or already in the user cache), else the one built before. Without
    either, a :class:`BoardError` names the missing tools, followed by ``hint``."""
    b = board if isinstance(board, Board) else find_board(board)
    b.check_link(link)
    where = home(b, link)
    if where.elf.is_file() and (where.cached or not build):
        return where.elf
    missing = missing_tools(build=True, run=False)
    if build and not missing:
        return _build(where, b.name, BUILD_TIMEOUT_S, link)
    if where.elf.is_file():
        return where.elf
    if missing:
        raise BoardError(missing_sentence(missing, f"building the firmware for {b.name}") + hint)
    udp = "" if link == "serial" else f" {link}"
    raise BoardError(f"no firmware for {b.name} at {where.elf}: build it with boards/build.sh {b.name}{udp}{hint}")


__all__ = [
    "APT_PACKAGES",
    "BUILD_TIMEOUT_S",
    "FirmwareHome",
    "build_firmware",
    "cache_dir",
    "firmware",
    "firmware_path",
    "home",
    "missing_tools",
    "out_name",
    "sources_hash",
]
