"""The ``manyfold`` command.

Each subcommand is a small function taking parsed arguments and returning an exit code. Errors
the user can fix are printed as one clear sentence with exit code 2; they never surface as a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class CliError(Exception):
    """A problem with the user's input, reported without a traceback."""


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def _int_within(text: str, low: int, high: int | None, what: str) -> int:
    """``text`` as an integer in ``low..high`` (no upper bound when ``high`` is None)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_within(text, 1, None, "a positive integer")


def _tcp_port(text: str) -> int:
    return _int_within(text, 1, 65535, "a TCP port (1 to 65535)")


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    if args.which == "frames":
        from manyfold.demos.frames import render_frame_demo, run_frame_demo

        result = run_frame_demo(messages=args.messages, seed=args.seed, drop_rate=args.drop_rate, flip_rate=args.flip_rate)
        render_frame_demo(result, console)
        return 0 if result.corrupted_but_accepted == 0 else 1
    from manyfold.examples import greenhouse

    if console.width < 140:  # the tables carry full route names
        console = Console(width=140)
    from manyfold.devices.boards import BoardError
    from manyfold.graph.errors import GraphError

    try:
        with console.status(f"starting the sensor board ({args.board})"):
            gh, bridge, stop = greenhouse.with_board(args.seed, board=args.board)
    except (BoardError, GraphError, OSError) as error:
        raise CliError(str(error)) from None
    try:
        with console.status("running six minutes of greenhouse life"):
            greenhouse.run(gh, bridge=bridge)
        greenhouse.report(gh, console, bridge=bridge)
    finally:
        stop()
    return 0


def _load_graph_file(path: str):
    """Run FILE.py and return the graph it builds: a module-level ``graph`` (a Graph), or a
    ``build_graph()`` function returning one."""
    import runpy
    from pathlib import Path

    from manyfold.graph import Graph

    file = Path(path)
    if not file.is_file():
        raise CliError(f"{path}: no such file")
    try:
        namespace = runpy.run_path(str(file), run_name="manyfold_compile")
    except Exception as error:  # the user's file failed: say where, not a traceback of ours
        raise CliError(f"{path} raised {type(error).__name__}: {error}") from None
    graph = namespace.get("graph")
    if graph is None and callable(namespace.get("build_graph")):
        graph = namespace["build_graph"]()
    if not isinstance(graph, Graph):
        raise CliError(f"{path} must define `graph` (a manyfold.graph.Graph) or a `build_graph()` function returning one")
    return graph


def _read_manifest(path: str):
    from manyfold.graph.errors import ManifestError
    from manyfold.manifest import Manifest

    try:
        return Manifest.read(path)
    except ManifestError as error:
        raise CliError(str(error)) from None


def cmd_compile(args: argparse.Namespace) -> int:
    from manyfold import manifest

    m = manifest.compile(_load_graph_file(args.file))
    if args.output:
        m.write(args.output, cbor=args.cbor)
        print(f"wrote {args.output} (manifest {m.id[:16]}, {len(m.routes)} routes, {len(m.nodes)} nodes, {len(m.edges)} edges)", file=sys.stderr)
    elif args.cbor:
        sys.stdout.buffer.write(m.to_cbor())
    else:
        sys.stdout.write(m.to_json())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from manyfold import manifest

    m = _read_manifest(args.manifest)
    violations = manifest.validate(m)
    for v in violations:
        print(v)
    if violations:
        print(f"{args.manifest}: {len(violations)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{args.manifest}: valid ({len(manifest.RULES)} checks, manifest {m.id[:16]})")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from manyfold import manifest

    d = manifest.diff(_read_manifest(args.old), _read_manifest(args.new))
    for change in d.changes:
        print(change)
    if d.empty:
        print("no differences")
    else:
        print("compatible" if d.compatible else "INCOMPATIBLE: consumers of the old manifest may break")
    return 0 if d.compatible else 1


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    m = _read_manifest(args.manifest)
    console = Console()
    if not console.is_terminal:  # files and pipes get full route names on one line
        console = Console(width=200)
    console.print(f"[bold]{m.format}[/] manifest {m.id} (loads with manyfold {m.compatible})")
    t = Table(title="routes")
    for c in ("route", "schema", "partition", "history/retain", "writers"):
        t.add_column(c, overflow="fold")
    for r in m.routes:
        s = m.schema(r.schema)
        t.add_row(str(r.route), f"{s.name}@{s.version}", r.partition, f"{r.history}/{r.retain}", ", ".join(r.writers))
    console.print(t)
    t = Table(title="nodes")
    for c in ("node", "kind", "partition", "inputs", "outputs", "params"):
        t.add_column(c, overflow="fold")
    edges = {e.name: e for e in m.edges}
    for n in m.nodes:
        ins = ", ".join(f"{edges[i].source}" + (f" [{edges[i].policy.kind} {edges[i].policy.capacity or ''}]" if edges[i].policy.kind != "inline" else "") for i in n.inputs)
        params = ", ".join(f"{k}={v['ref'] if isinstance(v, dict) else v}" for k, v in sorted(n.params.items()))
        t.add_row(n.name, n.kind, n.partition, ins, ", ".join(map(str, n.outputs)), params)
    console.print(t)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from manyfold import manifest
    from manyfold.graph.errors import ManifestError

    m = _read_manifest(args.manifest)
    if args.output.endswith(".dot"):
        with open(args.output, "w") as f:
            f.write(manifest.to_dot(m))
    else:
        try:
            manifest.render_svg(m, args.output)
        except ManifestError as error:
            raise CliError(str(error)) from None
    print(f"wrote {args.output}")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from manyfold.devices.boards import BoardError, all_boards

    try:
        boards = all_boards()
    except BoardError as error:
        raise CliError(str(error)) from None
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
        return 0
    t = Table(title="boards")
    for column in ("board", "cpu", "flash / RAM", "partition region", "UART", "flashed by"):
        t.add_column(column, no_wrap=True)
    for b in boards:
        how = f"QEMU ({b.qemu_machine})" if b.emulated else f"PlatformIO ({b.platformio['board']})" if b.platformio else "-"
        if b.qemu_stand_in:
            how += f"; tested on QEMU {b.qemu_stand_in.machine}"
        t.add_row(
            b.name, b.cpu, f"{b.flash.size // 1024} KiB / {b.ram.size // 1024} KiB",
            f"{b.partition.origin:#010x}, {b.partition.size // 1024} KiB", f"{b.uart_kind} {b.baud} baud", how,
        )  # fmt: skip
    console = Console()
    if not console.is_terminal or console.width < 180:  # one line per board
        console = Console(width=180)
    console.print(t)
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from manyfold.devices.boards import BoardError
    from manyfold.devices.flash import flash
    from manyfold.graph.errors import ManifestError

    console = Console(stderr=True)
    m = _read_manifest(args.manifest)
    out_dir = Path(args.out or Path(".manyfold") / "flash" / args.board)
    status = console.status("")

    def progress(step: str) -> None:
        status.update(step + " ...")
        console.print(f"[green]-[/] {step}")

    try:
        with status:
            done = flash(m, args.board, args.partition, out_dir=out_dir, dry_run=args.dry_run, port=args.port,
                         partition_only=args.partition_only, uart_port=args.uart_port, progress=progress)
    except (BoardError, ManifestError, OSError) as error:
        raise CliError(str(error)) from None
    if done.plan is not None:
        print(f"PlatformIO project: {done.plan.project}")
        print(f"programs: {done.plan.program}")
        print(("would run: " if args.dry_run else "ran: ") + done.plan.command_line)
        return 0
    if done.running is None:
        print(f"dry run: {done.image} is ready for the partition region of {done.board.name}")
        return 0
    d = done.describe
    print(f"{d.board} runs partition {d.partition} of manifest {done.manifest_id} (verified by its describe)")
    print(f"UART: {done.url}    try: manyfold query --port {done.url} topology", flush=True)
    try:
        if args.verify_only:
            return 0
        import signal

        def stop_on_term(_signum, _frame):
            raise KeyboardInterrupt  # `kill` stops the board as Ctrl-C does

        signal.signal(signal.SIGTERM, stop_on_term)
        console.print("the board runs until you press Ctrl-C")
        done.running.process.wait()
        raise CliError(f"QEMU exited ({done.running.process.returncode}): {done.running.log_text()[-300:]}")
    except KeyboardInterrupt:
        console.print(f"stopped {d.board}")
        return 0
    finally:
        done.running.stop()


def build_parser() -> argparse.ArgumentParser:
    from manyfold import __version__

    parser = argparse.ArgumentParser(prog="manyfold", description="Graph-shaped embedded and edge systems.")
    parser.add_argument("--version", action="version", version=f"manyfold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="run the demonstration and print its report")
    demo.add_argument(
        "which", nargs="?", choices=("greenhouse", "frames"), default="greenhouse",
        help="greenhouse (default): a local graph that explains itself; frames: the wire frame layer over a lossy link",
    )
    demo.add_argument("--messages", type=_positive_int, default=200, help="frames demo: readings to send (default 200)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the scenario (default 7)")
    demo.add_argument(
        "--board", default="sim",
        help="greenhouse demo: where the sensor partition runs: sim (default, the host simulation) or an emulated board (manyfold boards)",
    )
    demo.add_argument("--drop-rate", type=_rate, default=0.002, help="frames demo: probability a byte is lost (default 0.002)")
    demo.add_argument("--flip-rate", type=_rate, default=0.002, help="frames demo: probability a byte has a bit flipped (default 0.002)")
    demo.set_defaults(func=cmd_demo)

    compile_ = sub.add_parser("compile", help="compile FILE.py's graph into a manifest")
    compile_.add_argument("file", help="a Python file defining `graph` (a Graph) or `build_graph()`")
    compile_.add_argument("-o", "--output", help="write here (JSON, or CBOR for .cbor) instead of stdout")
    compile_.add_argument("--cbor", action="store_true", help="write deterministic CBOR instead of canonical JSON")
    compile_.set_defaults(func=cmd_compile)

    validate = sub.add_parser("validate", help="check a manifest against every validation rule")
    validate.add_argument("manifest")
    validate.set_defaults(func=cmd_validate)

    diff = sub.add_parser("diff", help="semantic diff of two manifests, and whether the change is compatible")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=cmd_diff)

    show = sub.add_parser("show", help="print a manifest's routes and nodes")
    show.add_argument("manifest")
    show.set_defaults(func=cmd_show)

    graph = sub.add_parser("graph", help="draw a manifest (SVG with Graphviz, or .dot)")
    graph.add_argument("manifest")
    graph.add_argument("-o", "--output", required=True, help="graph.svg (needs Graphviz's dot) or graph.dot")
    graph.set_defaults(func=cmd_graph)

    boards = sub.add_parser("boards", help="list the boards manyfold can flash")
    boards.add_argument("--json", action="store_true", help="print JSON instead of a table")
    boards.set_defaults(func=cmd_boards)

    flash = sub.add_parser(
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
    )
    flash.add_argument("--verify-only", action="store_true", help="emulated boards: stop the board after the handshake check")
    flash.add_argument(
        "--uart-port", type=_tcp_port, metavar="N",
        help="emulated boards: serve the UART on TCP port N of 127.0.0.1 (default: a free port)",
    )
    flash.set_defaults(func=cmd_flash)

    from manyfold.devices import commands as device_commands

    device_commands.register(sub)  # query, ports, footprint
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as error:
        print(f"manyfold {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`manyfold ... | head`): stop quietly, as other tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    # Through the package's module, so that the CliError the board commands raise is this one.
    from manyfold import cli

    sys.exit(cli.main())
