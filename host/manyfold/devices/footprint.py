"""The firmware's flash and RAM footprint on an emulated board, with the greenhouse partition.

What is counted (the same numbers ``tests/boards/test_firmware.py`` holds to the budgets):

- **flash** = ``.text + .data`` of the firmware ELF (``arm-none-eabi-size``): the code and the
  initial values of static data, both stored in flash. The partition image is not counted: it
  lives in its own reserved region (8 KiB, boards/README.md).
- **RAM** = ``.data + .bss`` (static RAM) plus the **stack peak** the board itself measured
  (the ``board`` query's ``stack_peak``) after running the greenhouse partition under QEMU:
  lockstep steps over 12 s, a fan write, every query, and a reset hello (its image reload is the
  deepest stack). The firmware keeps its device (the executor's tables, the link buffers) on the
  stack and has no heap, so this is all the RAM it uses.

The UDP build of a board with Ethernet (``link="udp"``: smoltcp, the NIC driver, their buffers)
has its own budgets, :data:`FLASH_BUDGET_UDP` and :data:`RAM_BUDGET_UDP`, and is measured the
same way with the workload over UDP.

The board scans its stack every 250 ms of its clock; the measurement waits for a scan after the
workload before it reads the peak.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from manyfold.devices.boards import BoardError

FLASH_BUDGET = 32 * 1024
"""Bytes of flash the firmware may use (text + data)."""
RAM_BUDGET = 8 * 1024
"""Bytes of RAM the firmware may use (data + bss + stack peak)."""
FLASH_BUDGET_UDP = 64 * 1024
"""Bytes of flash the UDP build may use (smoltcp and the NIC driver on top of the serial build)."""
RAM_BUDGET_UDP = 16 * 1024
"""Bytes of RAM the UDP build may use (the socket's and the NIC's buffers on top)."""
STACK_SCAN_MS = 250
"""How often the firmware measures its stack (``boards/firmware/src/main.rs``)."""


@dataclass(frozen=True)
class Footprint:
    """Sizes of one board's firmware, in bytes."""

    board: str
    elf: Path
    text: int
    data: int
    bss: int
    stack_peak: int
    link: str = "serial"

    @property
    def budgets(self) -> tuple[int, int]:
        """Flash and RAM budgets of this build."""
        return budgets(self.link)

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss + self.stack_peak

    def to_json(self) -> dict:
        """``flash_bytes``, ``ram_bytes`` and ``elf`` first, then the parts and the budgets."""
        parts = asdict(self)
        parts.pop("board"), parts.pop("elf"), parts.pop("link")
        flash_budget, ram_budget = self.budgets
        return {
            "board": self.board,
            "link": self.link,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "elf": str(self.elf),
            **{("stack_peak_bytes" if k == "stack_peak" else f"{k}_bytes"): v for k, v in parts.items()},
            "flash_budget": flash_budget,
            "ram_budget": ram_budget,
        }


def budgets(link: str = "serial") -> tuple[int, int]:
    """The flash and RAM budgets of a build for ``link``."""
    return (FLASH_BUDGET_UDP, RAM_BUDGET_UDP) if link == "udp" else (FLASH_BUDGET, RAM_BUDGET)


def section_sizes(elf: str | Path) -> dict[str, int]:
    """``text``, ``data`` and ``bss`` of an ELF, from ``arm-none-eabi-size`` (Berkeley format)."""
    if shutil.which("arm-none-eabi-size") is None:
        raise BoardError("measuring the firmware needs arm-none-eabi-size (Debian: apt-get install gcc-arm-none-eabi)")
    result = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise BoardError(f"arm-none-eabi-size {elf} failed: {result.stderr.strip()}")
    text, data, bss = (int(x) for x in result.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def stack_peak(board: str, elf: str | Path, *, timeout_s: float = 60.0, link: str = "serial") -> int:
    """The stack peak the board reports after the greenhouse workload (see the module docs),
    run in QEMU (over ``link``)."""
    from manyfold.devices import qemu
    from manyfold.devices.greenhouse import FAN_DESIRED, greenhouse_spec

    with qemu.start_board(board, elf, greenhouse_spec().encode(), link=link) as running:
        c = running.client(session=1)
        c.connect(lockstep=True, reset=True)
        c.step(10_000_000)
        c.send_event(FAN_DESIRED, 40.0, time_us=10_000_000)
        c.step(12_000_000)
        c.routes(), c.nodes(), c.sources(), c.flow(), c.taints(), c.counters_device(), c.latest(2)
        c.connect(lockstep=True, reset=True)  # a reset reloads the image: the deepest stack
        # The board scans its stack every STACK_SCAN_MS of its clock: wait for a scan after the
        # workload (its uptime moving on by two scan periods), then read the peak.
        first = c.board()
        deadline = time.monotonic() + timeout_s
        while True:
            facts = c.board()
            if facts.uptime_ms >= first.uptime_ms + 2 * STACK_SCAN_MS:
                return facts.stack_peak
            if time.monotonic() > deadline:
                raise BoardError(f"{board}: its uptime did not move on within {timeout_s:g} s")
            c.poll(0.05)  # the board's clock is real time: let it run


def measure(board: str, elf: str | Path | None = None, *, build: bool = True, link: str = "serial") -> Footprint:
    """Measures the firmware of ``board`` (emulated, or run on its QEMU stand-in) for ``link``
    (``serial``, or ``udp`` for a board with Ethernet): ``elf`` (default:
    :func:`manyfold.devices.qemu.firmware`, built first with ``boards/build.sh`` when ``build``
    and the build tools are there; cargo rebuilds only what changed)."""
    from manyfold.devices import qemu

    qemu.bootable(board).check_link(link)
    if elf is None:
        elf = qemu.firmware(board, build=build, link=link)
    missing = qemu.missing_tools(build=False, run=True) + [t for t in ("arm-none-eabi-size",) if shutil.which(t) is None]
    if missing:
        raise BoardError(f"measuring {board}'s footprint needs {', '.join(missing)} (Debian: apt-get install {qemu.APT_PACKAGES})")
    sizes = section_sizes(elf)
    peak = stack_peak(board, elf, link=link)
    return Footprint(board, Path(elf), sizes["text"], sizes["data"], sizes["bss"], peak, link)


__all__ = [
    "FLASH_BUDGET",
    "FLASH_BUDGET_UDP",
    "RAM_BUDGET",
    "RAM_BUDGET_UDP",
    "Footprint",
    "budgets",
    "measure",
    "section_sizes",
    "stack_peak",
]
