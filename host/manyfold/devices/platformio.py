"""Flashing real boards through PlatformIO.

PlatformIO knows the boards and debug probes users own (ST-LINK, J-Link, CMSIS-DAP, ...) and
installs the tools that drive them. Manyfold compiles nothing for it: it writes a small PlatformIO
project whose upload programs a file it made beforehand, with OpenOCD from PlatformIO's
``tool-openocd`` package (``upload_protocol = custom``; ``pio run -t nobuild -t upload`` skips
the build):

- by default, **firmware and partition together**: one Intel HEX file
  (:func:`firmware_hex`) holding the prebuilt firmware (``boards/build.sh``, the same binary for
  every partition) and the partition image at the partition region, each at its own address;
- with ``partition_only``, the **partition image alone**, a raw binary written at the partition
  region, for a board that already runs the firmware. The region starts a flash sector that
  holds nothing else, so erasing it for the new image leaves the firmware alone.

:func:`plan_upload` writes the project and returns the command line; :func:`upload` runs it
(``dry_run`` returns the command without running it).

No real board or PlatformIO platform is reachable on the machines CI runs on, so the upload is
tested as a dry run (the generated project and command line), and the HEX file is booted on the
board's QEMU stand-in (docs/embedded.md).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from manyfold.devices.boards import Board, BoardError

UPLOAD_TIMEOUT_S = 600.0
"""A probe upload of a few KiB takes seconds; the first run also downloads the platform."""
OBJCOPY = "arm-none-eabi-objcopy"
OBJCOPY_TIMEOUT_S = 60.0
HEX_EOF = ":00000001FF"
"""The Intel HEX end-of-file record."""


@dataclass(frozen=True)
class UploadPlan:
    """A generated PlatformIO project and the command that uploads it."""

    project: Path
    files: dict[str, str]
    command: list[str]
    program: Path
    """The file OpenOCD programs: the firmware-and-partition HEX, or the partition image."""
    partition_only: bool

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)


def _objcopy(*args: str) -> None:
    if shutil.which(OBJCOPY) is None:
        raise BoardError(f"{OBJCOPY} is not installed (Debian: apt-get install binutils-arm-none-eabi)")
    try:
        result = subprocess.run([OBJCOPY, *args], capture_output=True, text=True, timeout=OBJCOPY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BoardError(f"{OBJCOPY} took longer than {OBJCOPY_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise BoardError(f"{OBJCOPY} {' '.join(args)} failed: {result.stderr.strip()[-500:]}")


def firmware_hex(board: Board, firmware: Path, image: Path, out: Path) -> Path:
    """Writes ``out``: an Intel HEX file with the ``firmware`` ELF's loadable segments and the
    partition ``image`` at ``board``'s partition region (binutils' objcopy converts both; the
    two record lists are joined under one end-of-file record). Returns ``out``."""
    size = image.stat().st_size
    if size > board.partition.size:
        raise BoardError(f"the partition image has {size} bytes; {board.name}'s partition region holds {board.partition.size}")
    with tempfile.TemporaryDirectory(prefix="manyfold-hex-") as tmp:
        firmware_part, image_part = Path(tmp) / "firmware.hex", Path(tmp) / "partition.hex"
        _objcopy("-O", "ihex", str(firmware), str(firmware_part))
        _objcopy("-I", "binary", "-O", "ihex", "--change-addresses", f"{board.partition.origin:#x}", str(image), str(image_part))
        # Every objcopy HEX file sets its own extended address before its data, so the records
        # of the second stay at their addresses after the first's.
        records = [line for part in (firmware_part, image_part) for line in part.read_text().split() if line != HEX_EOF]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([*records, HEX_EOF]) + "\n")
    return out


def plan_upload(
    board: Board,
    image: Path,
    project_dir: Path,
    *,
    firmware: Path | None = None,
    port: str | None = None,
) -> UploadPlan:
    """Write a PlatformIO project under ``project_dir`` that uploads the ``firmware`` ELF with the
    partition ``image`` to ``board`` (or, with ``firmware=None``, the image alone to the
    partition region)."""
    if not board.platformio:
        raise BoardError(f"board {board.name} has no [platformio] section: it is not flashed through PlatformIO")
    pio = board.platformio
    for key in ("platform", "board", "openocd_interface", "openocd_target"):
        if key not in pio:
            raise BoardError(f"{board.directory / 'board.toml'}: [platformio] needs {key} = \"...\"")
    size = image.stat().st_size
    if size > board.partition.size:
        raise BoardError(f"the partition image has {size} bytes; {board.name}'s partition region holds {board.partition.size}")
    project_dir.mkdir(parents=True, exist_ok=True)
    if firmware is not None:
        program = firmware_hex(board, firmware, image, project_dir / "firmware-and-partition.hex")
        # Intel HEX carries its addresses.
        where = ""
    else:
        program = image.resolve()
        where = f" {board.partition.origin:#010x}"
    openocd = "${platformio.packages_dir}/tool-openocd"
    env = board.name.replace("-", "_")
    lines = [
        "; Generated by manyfold: programs a prebuilt file with OpenOCD; nothing is compiled.",
        f"[env:{env}]",
        f"platform = {pio['platform']}",
        f"board = {pio['board']}",
        "platform_packages = tool-openocd",
        "upload_protocol = custom",
        (
            f"upload_command = {openocd}/bin/openocd -s {openocd}/openocd/scripts"
            f" -f {pio['openocd_interface']} -f {pio['openocd_target']}"
            f' -c "program {{{program}}}{where} verify reset exit"'
        ),
    ]
    if port:
        lines.append(f"upload_port = {port}")
    files = {"platformio.ini": "\n".join(lines) + "\n", "src/.keep": ""}
    for name, text in files.items():
        path = project_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    command = ["pio", "run", "-d", str(project_dir), "-e", env, "-t", "nobuild", "-t", "upload"]
    if port:
        command += ["--upload-port", port]
    return UploadPlan(project_dir, files, command, program, firmware is None)


def upload(plan: UploadPlan, *, dry_run: bool = False, timeout_s: float = UPLOAD_TIMEOUT_S) -> str:
    """Run the upload (or, with ``dry_run``, return the command line without running it)."""
    if dry_run:
        return plan.command_line
    if shutil.which("pio") is None:
        raise BoardError("PlatformIO's `pio` is not installed (pip install platformio); use --dry-run to see the command")
    try:
        result = subprocess.run(plan.command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BoardError(f"pio upload took longer than {timeout_s:g} s") from None
    if result.returncode != 0:
        raise BoardError(f"pio upload failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return plan.command_line
