"""Flashing a manifest partition to a board.

``flash(manifest, board, partition)`` lowers the partition to a partition image (no Rust is
recompiled: the firmware is the same for every partition and reads its partition region at
boot), writes the image file, and then:

- on an emulated board, builds the firmware if needed (:mod:`manyfold.devices.firmware`: in a
  checkout ``boards/build.sh``, incremental; installed, once into the user cache), boots it in
  QEMU with the image in the board's partition region and its UART on a local TCP port (a free
  one, or ``uart_port``), or with ``link="udp"`` (a board with Ethernet) its UDP build with
  QEMU's user network forwarding a loopback UDP port (a free one, or ``udp_port``) to the
  board's, and verifies through the describe handshake that the board runs this
  manifest's partition;
- on a real board flashed through PlatformIO, builds the firmware likewise and writes the
  PlatformIO project that uploads firmware and image together (one Intel HEX file), or with
  ``partition_only`` the image alone to the partition region, and runs its upload (or, with
  ``dry_run``, stops before it).

Each step is reported to ``progress`` as it starts, so a command line can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from manyfold.devices import protocol as m
from manyfold.devices.boards import Board, BoardError, board as find_board
from manyfold.devices.lower import partition_image
from manyfold.manifest.model import Manifest

Progress = Callable[[str], None]


class FlashError(BoardError):
    """The board does not run what was flashed (or could not be flashed)."""


@dataclass
class Flashed:
    """What :func:`flash` did."""

    board: Board
    partition: str
    manifest_id: str
    image: Path
    image_bytes: int
    running: object | None = None
    """The :class:`~manyfold.devices.qemu.RunningBoard` (emulated boards); stop it when done."""
    describe: m.Describe | None = None
    """The board's answer to the handshake (emulated boards)."""
    plan: object | None = None
    """The :class:`~manyfold.devices.platformio.UploadPlan` (PlatformIO boards)."""
    uploaded: bool = False

    @property
    def url(self) -> str | None:
        """Where the emulated board's link is: its UART's ``socket://`` URL, or ``udp://`` for
        its UDP link."""
        return self.running.url if self.running is not None else None


def _quiet(_: str) -> None:
    pass


def _where_built(b: Board, link: str = "serial") -> str:
    from manyfold.devices.firmware import home

    where = home(b, link)
    return f"once, into {where.elf.parent}" if where.cached else "boards/build.sh"


def verify(describe: m.Describe, manifest: Manifest, partition: str) -> None:
    """Raises :class:`FlashError` unless ``describe`` says the board runs ``partition`` of
    ``manifest``."""
    if describe.image_status_name != "loaded":
        raise FlashError(f"the board did not load the partition image: {describe.image_status_name}")
    got = describe.manifest_id.hex() if describe.manifest_id else None
    if got != manifest.id:
        raise FlashError(f"the board runs manifest {got}, not {manifest.id}")
    if describe.partition != partition:
        raise FlashError(f"the board runs partition {describe.partition!r}, not {partition!r}")


def flash(
    manifest: Manifest,
    board: str | Board,
    partition: str,
    *,
    out_dir: Path,
    dry_run: bool = False,
    port: str | None = None,
    partition_only: bool = False,
    uart_port: int | None = None,
    link: str = "serial",
    udp_port: int | None = None,
    progress: Progress = _quiet,
) -> Flashed:
    """Put ``partition`` of ``manifest`` on ``board``; see the module docs. An emulated board
    serves its UART on TCP port ``uart_port`` of 127.0.0.1 (default: a free port); with
    ``link="udp"`` its link is UDP port ``udp_port`` of 127.0.0.1 (default: a free port)."""
    b = board if isinstance(board, Board) else find_board(board)
    if b.flashing == "none":
        raise BoardError(f"board {b.name} is neither emulated nor flashed through PlatformIO")
    b.check_link(link)
    if link != "serial" and not b.emulated:
        raise BoardError(f"board {b.name} is real hardware: the {link} link is flashed to emulated boards only for now")
    if udp_port is not None:
        if link != "udp":
            raise BoardError("a UDP port applies only to the udp link (--link udp)")
        from manyfold.devices import qemu

        qemu.check_udp_port(udp_port)
    if uart_port is not None:
        if not b.emulated:
            raise BoardError(f"board {b.name} is real hardware: a UART port applies only to emulated boards")
        from manyfold.devices import qemu

        qemu.check_uart_port(uart_port)  # before the build, which can take a minute
    record = next((p for p in manifest.partitions if p.name == partition), None)
    if record is None:
        raise BoardError(f"the manifest has no partition {partition!r}; it has {', '.join(p.name for p in manifest.partitions)}")
    if record.profile != "embedded-lite":
        raise BoardError(f"partition {partition} has the {record.profile} profile; boards run embedded-lite partitions")

    progress(f"lowering partition {partition} of manifest {manifest.id[:16]}")
    image = partition_image(manifest, partition)
    if len(image) > b.partition.size:
        raise BoardError(f"the partition image has {len(image)} bytes; {b.name}'s partition region holds {b.partition.size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    image_path = out_dir / f"{partition}.bin"
    image_path.write_bytes(image)
    done = Flashed(b, partition, manifest.id, image_path, len(image))
    region = f"{b.partition.origin:#010x}..{b.partition.end:#010x}"
    progress(f"wrote {image_path} ({len(image)} of {b.partition.size} bytes of the partition region {region})")

    if b.emulated:
        if dry_run:
            return done
        from manyfold.devices import qemu

        build = "" if link == "serial" else f", {link} link"
        progress(f"building the firmware for {b.name}{build} ({_where_built(b, link)}; the first build takes about a minute)")
        elf = qemu.build_firmware(b, link=link)
        progress(f"booting {b.name} in QEMU with the image at {b.partition.origin:#x}")
        done.running = qemu.start_board(b, elf, image_path, log=out_dir / "qemu.log", uart_port=uart_port, link=link, udp_port=udp_port)
        try:
            progress("handshake: checking the board runs this manifest's partition")
            client = done.running.client()
            try:
                done.describe = client.connect()
            finally:
                client.close()  # QEMU serves one client at a time: leave the UART free
            verify(done.describe, manifest, partition)
        except BaseException:
            done.running.stop()
            raise
        return done

    from manyfold.devices import platformio, qemu

    firmware = None
    if not partition_only:
        progress(f"building the firmware for {b.name} ({_where_built(b)}, or the one built before without the build tools)")
        firmware = qemu.firmware(b, hint="; with the firmware already on the board, --partition-only uploads the image alone")
    what = "the partition image" if partition_only else "the firmware and the partition image"
    progress(f"writing the PlatformIO project for {b.name} ({b.platformio['board']}): OpenOCD programs {what}")
    done.plan = platformio.plan_upload(b, image_path, out_dir / "platformio", firmware=firmware, port=port)
    if not dry_run:
        progress(f"uploading with {done.plan.command_line}")
        platformio.upload(done.plan)
        done.uploaded = True
    return done


__all__ = ["FlashError", "Flashed", "flash", "verify"]
