"""Board descriptors: what boards there are, their memory maps, UARTs and partition regions.

Descriptors are the ``boards/<name>/board.toml`` files. The package carries them, with the
firmware's sources, in ``manyfold/_sources/boards`` (in a checkout, a symlink to the repository's
``boards/``), so they are found from any directory; ``MANYFOLD_BOARDS`` names another directory
of descriptors. :mod:`manyfold.devices.firmware` builds the firmware from the same place.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from manyfold.graph.errors import GraphError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib


class BoardError(GraphError):
    """A board is unknown, its descriptor is malformed, or a tool it needs is missing."""

    kind = "board"


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class QemuStandIn:
    """A QEMU machine close enough to a real board to boot its firmware (``[qemu_stand_in]``)."""

    machine: str
    serial_index: int
    """Which of the machine's serial ports (``-serial`` options, in order) is the board's UART."""


@dataclass(frozen=True)
class Ethernet:
    """A board's Ethernet controller and its UDP link (``[ethernet]``): the firmware's
    ``link-udp`` build listens on ``udp_port`` of ``ip`` (docs/embedded.md, "UDP boards")."""

    kind: str
    base: int
    ip: str
    prefix: int
    udp_port: int


LINKS = ("serial", "udp")
"""The links a board's firmware can be built for: its UART, or UDP over its Ethernet controller."""


@dataclass(frozen=True)
class Board:
    """A board descriptor."""

    name: str
    cpu: str
    target: str
    max_message: int
    clock_hz: int
    flash: Region
    ram: Region
    partition: Region
    uart_kind: str
    uart_base: int
    baud: int
    qemu_machine: str | None
    platformio: dict | None
    directory: Path
    qemu_stand_in: QemuStandIn | None = None
    """For a real board QEMU does not model: a sibling machine that runs its firmware, used by
    the tests as a smoke test (``flash`` still treats the board as real hardware)."""
    ethernet: Ethernet | None = None
    """The Ethernet controller, for boards whose firmware has a UDP link."""

    @property
    def links(self) -> tuple[str, ...]:
        """The links this board's firmware is built for: ``serial``, and ``udp`` with Ethernet."""
        return LINKS if self.ethernet is not None else ("serial",)

    def check_link(self, link: str) -> None:
        """Raises a :class:`BoardError` unless the board's firmware has ``link``."""
        if link not in LINKS:
            raise BoardError(f"unknown link {link!r}: serial or udp")
        if link not in self.links:
            others = ", ".join(b.name for b in all_boards() if link in b.links)
            raise BoardError(f"board {self.name} has no {link} link (no [ethernet] in its board.toml); boards with one: {others}")

    @property
    def qemu_target(self) -> tuple[str, int] | None:
        """The QEMU machine that can boot this board's firmware and the index of the serial
        port that is the board's UART: the board's own machine, else its stand-in, else None."""
        if self.qemu_machine is not None:
            return self.qemu_machine, 0
        if self.qemu_stand_in is not None:
            return self.qemu_stand_in.machine, self.qemu_stand_in.serial_index
        return None

    @property
    def emulated(self) -> bool:
        """True for boards QEMU runs (the ones CI flashes)."""
        return self.qemu_machine is not None

    @property
    def flashing(self) -> str:
        return "qemu" if self.emulated else "platformio" if self.platformio else "none"


PACKAGE_SOURCES = Path(__file__).resolve().parent.parent / "_sources"
"""The firmware's sources the package carries (``boards/``, the crates it builds from); in a
checkout its entries are symlinks into the repository."""


def boards_dir() -> Path:
    """The directory holding ``<board>/board.toml`` descriptors: ``MANYFOLD_BOARDS``, else the
    package's own (in a checkout, the repository's ``boards/``)."""
    env = os.environ.get("MANYFOLD_BOARDS")
    if env:
        return Path(env)
    packaged = (PACKAGE_SOURCES / "boards").resolve()
    if not any(packaged.glob("*/board.toml")):
        raise BoardError(f"the manyfold package has no board descriptors in {packaged}: reinstall it, or set MANYFOLD_BOARDS")
    return packaged


def _region(data: dict, key: str, where: Path) -> Region:
    try:
        table = data[key]
        return Region(int(table["origin"]), int(table["size"]))
    except (KeyError, TypeError, ValueError):
        raise BoardError(f"{where}: [{key}] needs integer origin and size") from None


def _stand_in(data: dict, where: Path) -> QemuStandIn | None:
    table = data.get("qemu_stand_in")
    if table is None:
        return None
    try:
        return QemuStandIn(str(table["machine"]), int(table.get("serial_index", 0)))
    except (KeyError, TypeError, ValueError):
        raise BoardError(f"{where}: [qemu_stand_in] needs machine = \"...\" and an integer serial_index") from None


def _ethernet(data: dict, where: Path) -> Ethernet | None:
    table = data.get("ethernet")
    if table is None:
        return None
    try:
        return Ethernet(str(table["kind"]), int(table["base"]), str(table["ip"]), int(table["prefix"]), int(table["udp_port"]))
    except (KeyError, TypeError, ValueError):
        raise BoardError(f"{where}: [ethernet] needs kind, base, ip, prefix and udp_port") from None


def load_board(path: Path) -> Board:
    """Read one descriptor."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise BoardError(f"{path}: {error}") from None
    try:
        uart = data["uart"]
        return Board(
            name=data["name"], cpu=data["cpu"], target=data["target"], max_message=int(data["max_message"]),
            clock_hz=int(data["clock_hz"]), flash=_region(data, "flash", path), ram=_region(data, "ram", path),
            partition=_region(data, "partition", path), uart_kind=uart["kind"], uart_base=int(uart["base"]),
            baud=int(uart["baud"]), qemu_machine=data.get("qemu_machine"), platformio=data.get("platformio"),
            directory=path.parent, qemu_stand_in=_stand_in(data, path), ethernet=_ethernet(data, path),
        )
    except KeyError as missing:
        raise BoardError(f"{path}: missing {missing}") from None


def all_boards() -> list[Board]:
    """Every board descriptor, by name."""
    return sorted((load_board(p) for p in boards_dir().glob("*/board.toml")), key=lambda b: b.name)


def board(name: str) -> Board:
    """The board called ``name``."""
    boards = {b.name: b for b in all_boards()}
    if name not in boards:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(sorted(boards))}")
    return boards[name]
