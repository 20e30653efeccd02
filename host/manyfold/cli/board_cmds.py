"""The board commands: list the ``boards`` manyfold can flash, and ``flash`` a manifest
partition to one (an emulated board runs in QEMU until Ctrl-C)."""

from __future__ import annotations

import argparse

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_OK, CliError


def cmd_boards(args: argparse.Namespace) -> int:
    from manyfold.devices.boards import all_boards

    boards = all_boards()
    if args.json:
        import json

        rows = [
            {"name": b.name, "cpu": b.cpu, "target": b.target, "flashing": b.flashing, "qemu_machine": b.qemu_machine,
             "flash_bytes": b.flash.size, "ram_bytes": b.ram.size, "partition_origin": b.partition.origin,
             "partition_bytes": b.partition.size, "uart": b.uart_kind, "baud": b.baud,
             "qemu_stand_in": b.qemu_stand_in.machine if b.qemu_stand_in else None}
            for b in boards
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from manyfold.cli import render

    def flashed_by(b) -> str:
        how = f"QEMU ({b.qemu_machine})" if b.emulated else f"PlatformIO ({b.platformio['board']})" if b.platformio else "-"
        return how + (f"; tested on QEMU {b.qemu_stand_in.machine}" if b.qemu_stand_in else "")

    rows = (
        (b.name, b.cpu, f"{b.flash.size // 1024} KiB / {b.ram.size // 1024} KiB", f"{b.partition.origin:#010x}, {b.partition.size // 1024} KiB",
         f"{b.uart_kind} {b.baud} baud", flashed_by(b))
        for b in boards
    )  # fmt: skip
    render.console().print(render.table("boards", ("board", "cpu", "flash / RAM", "partition region", "UART", "flashed by"), rows, priority=("board",)))
    return EXIT_OK


def cmd_flash(args: argparse.Namespace) -> int:
    from pathlib import Path

    from manyfold.cli import render
    from manyfold.cli.manifest_cmds import read_manifest
    from manyfold.devices.flash import flash

    console = render.console(stderr=True)
    m = read_manifest(args.manifest)
    out_dir = Path(args.out or Path(".manyfold") / "flash" / args.board)
    status = console.status("")

    def progress(step: str) -> None:
        status.update(step + " ...")
        console.print(f"[green]-[/] {step}")

    try:
        with status:
            done = flash(m, args.board, args.partition, out_dir=out_dir, dry_run=args.dry_run, port=args.port,
                         partition_only=args.partition_only, uart_port=args.uart_port, link=args.link,
                         udp_port=args.udp_port, progress=progress)  # fmt: skip
    except OSError as error:  # board and manifest errors are sentences already
        raise CliError(str(error)) from None
    if done.plan is not None:
        print(f"PlatformIO project: {done.plan.project}")
        print(f"programs: {done.plan.program}")
        print(("would run: " if args.dry_run else "ran: ") + done.plan.command_line)
        return EXIT_OK
    if done.running is None:
        print(f"dry run: {done.image} is ready for the partition region of {done.board.name}")
        return EXIT_OK
    d = done.describe
    print(f"{d.board} runs partition {d.partition} of manifest {done.manifest_id} (verified by its describe)")
    where = "UDP" if done.running.link == "udp" else "UART"
    print(f"{where}: {done.url}    try: manyfold query --port {done.url} topology", flush=True)
    try:
        if args.verify_only:
            return EXIT_OK
        import signal

        def stop_on_term(_signum, _frame):
            raise KeyboardInterrupt  # `kill` stops the board as Ctrl-C does

        signal.signal(signal.SIGTERM, stop_on_term)
        console.print("the board runs until you press Ctrl-C")
        done.running.process.wait()
        raise CliError(f"QEMU exited ({done.running.process.returncode}): {done.running.log_text()[-300:]}")
    except KeyboardInterrupt:
        console.print(f"stopped {d.board}")
        return EXIT_OK
    finally:
        done.running.stop()


def register(subparsers) -> None:
    """Adds ``boards`` and ``flash``."""
    boards = subparsers.add_parser("boards", help="list the boards manyfold can flash")
    boards.add_argument("--json", action="store_true", help="print JSON instead of a table")
    boards.set_defaults(func=cmd_boards)

    flash = subparsers.add_parser(
        "flash", help="put a manifest partition on a board (an emulated board runs in QEMU until Ctrl-C)",
        description="Lower a partition of MANIFEST to a partition image and put it in the board's partition region "
        "(no Rust is recompiled). Emulated boards boot in QEMU with their UART on a local TCP port, and the "
        "handshake checks they run this manifest's partition; PlatformIO boards get a generated project and its upload.",
    )  # fmt: skip
    flash.add_argument("manifest", help="a compiled manifest (manyfold compile -o graph.json)")
    flash.add_argument("--board", required=True, help="a board name (manyfold boards)")
    flash.add_argument("--partition", required=True, help="the embedded-lite partition to flash")
    flash.add_argument("--out", help="where the image (and PlatformIO project) go (default .manyfold/flash/BOARD)")
    flash.add_argument("--dry-run", action="store_true", help="write the image (and the PlatformIO project) but do not run or upload")
    flash.add_argument("--port", help="PlatformIO boards: the upload port")
    flash.add_argument(
        "--partition-only", action="store_true",
        help="PlatformIO boards: upload only the partition image (the board already runs the firmware)",
    )  # fmt: skip
    flash.add_argument("--verify-only", action="store_true", help="emulated boards: stop the board after the handshake check")
    flash.add_argument(
        "--uart-port", type=arguments.tcp_port, metavar="N",
        help="emulated boards: serve the UART on TCP port N of 127.0.0.1 (default: a free port)",
    )  # fmt: skip
    flash.add_argument(
        "--link", choices=("serial", "udp"), default="serial",
        help="emulated boards: the board's link: serial (its UART, default) or udp (a board with Ethernet, mps2-an386: "
        "QEMU forwards a UDP port of 127.0.0.1 to it; the address to use is printed)",
    )  # fmt: skip
    flash.add_argument(
        "--udp-port", type=lambda text: arguments.int_within(text, 1, 65535, "a UDP port (1 to 65535)"), metavar="N",
        help="with --link udp: forward UDP port N of 127.0.0.1 to the board (default: a free port)",
    )  # fmt: skip
    flash.set_defaults(func=cmd_flash)


__all__ = ["cmd_boards", "cmd_flash", "register"]
