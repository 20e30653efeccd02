"""The device commands: ``query`` a device on any pyserial URL, list the serial ``ports`` and
what answers on each, and measure a board's firmware ``footprint``.

The work is the library's (``manyfold.devices.ports``, ``manyfold.devices.queries``,
``manyfold.devices.footprint``): a query returns a typed answer (``manyfold.query.device``),
printed here as tables, or as its ``to_dict()`` with ``--json``.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from manyfold.cli import arguments
from manyfold.cli.errors import EXIT_OK, CliError

if TYPE_CHECKING:
    from rich.console import Console

    from manyfold.query import device as answers

# --- query ---------------------------------------------------------------------------------------


def cmd_query(args: argparse.Namespace) -> int:
    from manyfold.devices import queries
    from manyfold.devices.ports import open_board

    if sum(x is not None for x in (args.port, args.cluster, args.graph)) != 1:
        raise CliError("give either --port URL (one device), --cluster PLAN_OR_ADDRESS (every runtime node) or --graph FILE (a local graph)")
    if args.graph is not None:
        from manyfold.cli.local_query import cmd_local_query

        return cmd_local_query(args)
    if args.cluster is not None:
        from manyfold.cli.federated_query import cmd_cluster_query

        return cmd_cluster_query(args)
    if len(args.route) > 1:
        raise CliError(f"{args.what} takes at most one ROUTE (got {' '.join(args.route)})")
    if args.what not in queries.QUERIES:
        raise CliError(f"with --port, WHAT is one of {', '.join(queries.QUERIES)}; got {args.what!r}")
    args.route = args.route[0] if args.route else None
    queries.check(args.what, args.route)  # before the port is opened
    names = queries.route_names_from_file(args.image) if args.image else None
    with open_board(args.port, args.timeout) as client:
        if names is None:
            names = queries.route_names_from_flashed(client.describe)
        answer = queries.ask(client, args.what, port=args.port, route=args.route, names=names)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
    else:
        from manyfold.cli import render

        render_answer(render.console(), answer)
    return EXIT_OK


def render_answer(console: Console, answer: answers.DeviceAnswer) -> None:
    """Prints ``answer`` as tables under a line naming the device that gave it."""
    from manyfold.cli.render import table
    from manyfold.query import device as a

    f = answer.facts
    manifest = f.manifest_id.hex()[:16] if f.manifest_id else "-"
    status = "" if f.image_status == "loaded" else f", no partition loaded ({f.image_status})"
    console.print(f"[bold]{f.board}[/] on {f.port}: partition {f.partition or '-'}, manifest {manifest}, protocol v{f.protocol}{status}")
    if isinstance(answer, a.DeviceTopology):
        console.print(table("routes", ("index", "name", "id", "kind", "direction", "seq", "schema"),
                            ((r.index, r.name, f"{r.id:08x}", r.kind, r.direction, r.seq, r.schema) for r in answer.routes), optional=("schema",), priority=("name",)))  # fmt: skip
        console.print(table("nodes", ("index", "op", "input", "output", "output2", "mailbox_capacity", "overflow"),
                            ((n.index, n.op, n.input, n.output, n.output2, n.mailbox_capacity, n.overflow) for n in answer.nodes)))  # fmt: skip
        console.print(table("sources", ("route", "waveform", "period_us", "phase_us"),
                            ((s.route, s.waveform, s.period_us, s.phase_us) for s in answer.sources)))  # fmt: skip
    elif isinstance(answer, a.DeviceFlow):
        columns = ("node", "op", "depth", "capacity", "accepted", "delivered", "dropped", "refused", "depth_max")
        console.print(table("mailbox flow", columns, ([getattr(row, c) for c in columns] for row in answer.flow)))
    elif isinstance(answer, a.DeviceTaints):
        console.print(table("taints", ("route", "name", "seen", "pending"), ((t.route, t.name, t.seen, t.pending) for t in answer.taints), priority=("name",)))
    elif isinstance(answer, a.DeviceLatest):
        name = answer.name or f"route {answer.route}"
        e = answer.event
        if e is None:
            console.print(f"{name}: no event yet")
            return
        lineage = f"{e.lineage.count} of route {e.lineage.route} from seq {e.lineage.first_seq}" if e.lineage.count else "source"
        console.print(table(f"latest event of {name}", ("route", "seq", "time_us", "epoch", "value", "taints", "lineage"),
                            [(e.route, e.seq, e.time_us, e.epoch, e.value, e.taint_names, lineage)]))  # fmt: skip
    elif isinstance(answer, a.DeviceCounterReport):
        console.print(table("device counters", ("counter", "value"), answer.device.to_dict().items()))
    elif isinstance(answer, a.DeviceBoardReport):
        b = answer.board_facts
        rows = [("uptime_ms", b.uptime_ms), ("stack_peak", b.stack_peak), ("rx_dropped", b.rx_dropped), ("lockstep", b.lockstep), ("time_us", b.time_us)]
        rows += [(f"capacity: {k}", v) for k, v in b.capacities.to_dict().items()]
        console.print(table("board", ("fact", "value"), rows))


# --- ports ---------------------------------------------------------------------------------------


def cmd_ports(args: argparse.Namespace) -> int:
    from manyfold.devices.ports import probe, serial_ports

    targets: list[tuple[str, str]] = []
    if not args.no_scan:
        targets += [(p.device, p.description) for p in serial_ports()]
    targets += [(url, "given with --probe") for url in args.probe]
    results = [probe(url, timeout_s=args.timeout, description=desc) for url, desc in targets]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return EXIT_OK
    from manyfold.cli import render

    console = render.console()
    if not results:
        console.print("no serial ports found (give a URL to probe with --probe socket://HOST:PORT)")
        return EXIT_OK
    rows = []
    for r in results:
        d = r.describe
        if d is None:
            rows.append((r.port, r.description, r.status, None, None, None, None, None))
        else:
            manifest = d.manifest_id.hex()[:16] if d.manifest_id else None
            rows.append((r.port, r.description, r.status, d.board, d.partition or None, manifest, d.protocol, d.image_status_name))
    columns = ("port", "description", "answer", "board", "partition", "manifest id", "protocol", "image")
    console.print(render.table("serial ports", columns, rows, optional=("description", "protocol"), priority=("port",)))
    return EXIT_OK


# --- footprint -----------------------------------------------------------------------------------


def cmd_footprint(args: argparse.Namespace) -> int:
    from manyfold.devices import footprint
    from manyfold.devices.boards import board
    from manyfold.devices.link import LinkError

    board(args.board).check_link(args.link)  # unknown boards and links are named before anything is built
    try:
        fp = footprint.measure(args.board, args.elf, link=args.link)
    except LinkError as error:
        raise CliError(f"measuring {args.board} under QEMU failed: {error}") from None
    if args.json:
        print(json.dumps(fp.to_json(), indent=2))
        return EXIT_OK
    from manyfold.cli import render

    flash_budget, ram_budget = fp.budgets
    rows = (
        ("flash (text + data)", fp.flash_bytes, flash_budget, f"text {fp.text}, data {fp.data}"),
        ("RAM (data + bss + stack peak)", fp.ram_bytes, ram_budget, f"data {fp.data}, bss {fp.bss}, stack peak {fp.stack_peak}"),
    )  # fmt: skip
    console = render.console()
    build = "" if fp.link == "serial" else f" ({fp.link} link)"
    console.print(render.table(f"{fp.board} firmware{build} with the greenhouse partition", ("what", "bytes", "budget", "parts"), rows))
    console.print(f"ELF: {fp.elf}")
    return EXIT_OK


# --- the parsers ---------------------------------------------------------------------------------


def register(subparsers) -> None:
    """Adds ``query``, ``ports`` and ``footprint``."""
    from manyfold.devices.ports import PROBE_TIMEOUT_S
    from manyfold.devices.queries import QUERIES, QUERY_TIMEOUT_S

    query = subparsers.add_parser(
        "query",
        help="ask a board (or any device on a pyserial URL) about its partition",
        description=(
            "Connect to a device, do the describe handshake (a new session: a board in lockstep "
            "returns to free-running), ask one query and print the answer. topology: routes, "
            "nodes and sources; flow: each node's mailbox; taints: per route; latest ROUTE: a "
            "route's last event; counters: the link and executor counters; board: uptime, stack "
            "peak and capacities."
        ),
    )
    from manyfold.cli.federated_query import CLUSTER_WHATS
    from manyfold.federation.cluster_answer import DEFAULT_PRINCIPAL

    query.add_argument("--port", metavar="URL", help="/dev/ttyACM0, socket://127.0.0.1:4444, ... (UART 8N1 at 115200 baud), or udp://HOST:PORT (a board on the LAN)")
    query.add_argument(
        "--cluster", metavar="PLAN_OR_ADDRESS",
        help="ask every runtime node of a plan file (or the node at an admin HOST:PORT, or every node present at a Zenoh "
        "router: zenoh:tcp/HOST:PORT) instead of one device; "
        "nodes that do not answer are listed as unknown; exit code 0 when at least one node answered, 1 when none did "
        "(docs/observability.md, Federated queries)",
    )  # fmt: skip
    from manyfold.cli.local_query import LOCAL_WHATS

    query.add_argument("--graph", metavar="FILE", help="ask the graph a Python file builds (`graph` or `build_graph()`), locally, after the file ran")
    query.add_argument("what", choices=tuple(dict.fromkeys((*QUERIES, *CLUSTER_WHATS, *LOCAL_WHATS))), metavar="WHAT",
                       help=f"with --port: {', '.join(QUERIES)}; with --cluster: {', '.join(CLUSTER_WHATS)}; with --graph: {', '.join(LOCAL_WHATS)}")  # fmt: skip
    query.add_argument("route", nargs="*", metavar="ARG",
                       help="--port latest: a route index or name; --cluster: lineage ROUTE[@SEQ NODE], taints [ROUTE], device PARTITION [WHAT [ROUTE]]")  # fmt: skip
    query.add_argument("--zenoh-prefix", metavar="P", help="--cluster zenoh:...: the deployment's key prefix (default manyfold)")
    query.add_argument("--principal", default=DEFAULT_PRINCIPAL, metavar="P", help=f"--cluster: who asks (default {DEFAULT_PRINCIPAL})")
    query.add_argument("--json", action="store_true", help="print JSON instead of tables")
    arguments.timeout(query, QUERY_TIMEOUT_S, "each answer")
    query.add_argument(
        "--image", metavar="FILE",
        help="a partition image whose route names label the device's routes (default: the image "
        "`manyfold flash` wrote under .manyfold/flash/ for the board's manifest and partition, if any)",
    )  # fmt: skip
    query.set_defaults(func=cmd_query)

    ports = subparsers.add_parser(
        "ports",
        help="list serial ports and what answers on each",
        description=(
            "List this machine's serial ports and try the describe handshake on each (it sends a "
            "hello; a device that answers is shown with its board, partition, manifest id and "
            "protocol version, others as 'no answer'). --probe adds URLs such as an emulated "
            "board's socket://127.0.0.1:PORT."
        ),
    )
    ports.add_argument("--probe", action="append", default=[], metavar="URL", help="also probe this pyserial URL (repeatable)")
    ports.add_argument("--no-scan", action="store_true", help="probe only the --probe URLs, not this machine's serial ports")
    ports.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments.timeout(ports, PROBE_TIMEOUT_S, "each port's answer")
    ports.set_defaults(func=cmd_ports)

    fp = subparsers.add_parser(
        "footprint",
        help="flash and RAM the firmware uses on a board QEMU can run",
        description=(
            "Build the firmware for BOARD if needed (in a checkout boards/build.sh, where cargo "
            "rebuilds only what changed; installed, once into ~/.cache/manyfold/firmware), run the greenhouse sensor partition on it under QEMU, and print the bytes "
            "used. Flash = .text + .data of the ELF (arm-none-eabi-size); the partition image has "
            "its own region and is not counted. RAM = .data + .bss + the stack peak the board "
            "measured after lockstep steps, a fan write, every query and a reset hello (the "
            "firmware has no heap: its device lives on the stack). Needs qemu-system-arm and the "
            "ARM binutils, and Debian's rustc/cargo with the Rust library source to build."
        ),
    )
    fp.add_argument("--board", required=True, metavar="NAME", help="lm3s6965evb, mps2-an386, or nucleo-f401re (run on its QEMU stand-in, netduinoplus2)")
    fp.add_argument("--link", choices=("serial", "udp"), default="serial",
                    help="the firmware build to measure: serial (default) or udp (a board with Ethernet: mps2-an386)")  # fmt: skip
    fp.add_argument("--elf", metavar="PATH", help="measure this firmware ELF instead of building the board's own")
    fp.add_argument("--json", action="store_true", help='print {"flash_bytes": ..., "ram_bytes": ..., "elf": ...} and the parts')
    fp.set_defaults(func=cmd_footprint)


__all__ = ["cmd_footprint", "cmd_ports", "cmd_query", "register", "render_answer"]
