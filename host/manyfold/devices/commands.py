"""The board commands of the ``manyfold`` CLI: ``query``, ``ports`` and ``footprint``.

``register(subparsers)`` adds them to the CLI's argparse subparsers; each sets ``func`` to a
function taking the parsed arguments and returning an exit code, and reports problems the user
can fix as :class:`manyfold.cli.CliError` (one sentence, exit 2). The logic under them is
importable on its own:

- :func:`probe` opens a port (any pyserial URL), does the describe handshake and says what
  answered; :func:`serial_ports` lists the machine's serial ports;
- :func:`open_board` connects a :class:`~manyfold.devices.link.LinkClient` and handshakes, with
  errors as sentences; :func:`topology`, :func:`flow`, :func:`taints`, :func:`latest`,
  :func:`counters` and :func:`board_facts` ask one query each and return JSON-ready dicts;
- ``manyfold.devices.footprint.measure`` measures the firmware (``footprint``).


A handshake opens a new session on the device: a board in lockstep goes back to free-running
(its clock is its own again), and events it sends meanwhile are read and dropped.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass

from manyfold.cli import CliError
from manyfold.devices import protocol as m
from manyfold.devices.link import LinkClient, LinkError, LinkTimeout, NackError, Timers

QUERIES = ("topology", "flow", "taints", "latest", "counters", "board")
QUERY_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 1.0
BAUD = 115_200


# --- connecting ----------------------------------------------------------------------------------


def _port_reason(error: BaseException) -> str:
    """The reason a port did not open, without pyserial's repetition of the port name."""
    for e in (error.__context__, error):
        strerror = getattr(e, "strerror", None)
        if isinstance(e, OSError) and isinstance(strerror, str) and strerror and not strerror.lower().startswith("could not open"):
            return strerror[0].lower() + strerror[1:]
    text = str(error).strip() or type(error).__name__
    if text.lower().startswith("could not open port ") and ": " in text:
        text = text.split(": ", 1)[1]
    return text


def _timers(timeout_s: float) -> Timers:
    return Timers(reply_timeout_s=timeout_s, reconnect_timeout_s=timeout_s, retries=1)


def open_port(url: str, timeout_s: float, **client_args) -> LinkClient:
    """A client on ``url`` (not yet connected); :class:`CliError` when the port does not open."""
    import serial

    if url.startswith("socket://"):
        from urllib.parse import urlsplit

        try:
            port = urlsplit(url).port
        except ValueError:
            port = None
        if port is None:
            raise CliError(f"cannot open {url}: a socket URL needs a host and a port (socket://HOST:PORT)")
    try:
        return LinkClient.open(url, baudrate=BAUD, timers=_timers(timeout_s), **client_args)
    except (serial.SerialException, OSError, ValueError) as error:
        raise CliError(f"cannot open {url}: {_port_reason(error)}") from None


def open_board(url: str, timeout_s: float = QUERY_TIMEOUT_S) -> LinkClient:
    """A client on ``url`` that has done the describe handshake (``client.describe``); errors
    (no such port, nothing answering in ``timeout_s``, a refusal) are :class:`CliError`."""
    client = open_port(url, timeout_s)
    try:
        client.connect(timeout_s=timeout_s)
    except LinkTimeout:
        client.close()
        raise CliError(f"no answer from {url} within {timeout_s:g} s: is a Manyfold board on it (UART 8N1 at {BAUD} baud)?") from None
    except NackError as error:
        client.close()
        raise CliError(f"{url}: {error}") from None
    return client


# --- probing -------------------------------------------------------------------------------------


@dataclass
class PortInfo:
    """A serial port of this machine (from ``serial.tools.list_ports``)."""

    device: str
    description: str
    hwid: str


def serial_ports() -> list[PortInfo]:
    """The machine's serial ports, by device name."""
    from serial.tools import list_ports

    ports = [PortInfo(p.device, p.description or "", p.hwid or "") for p in list_ports.comports()]
    return sorted(ports, key=lambda p: p.device)


@dataclass
class Probe:
    """What answered on a port: ``describe`` when a Manyfold device did, else ``error`` says
    why not (``"no answer"``, or why the port did not open)."""

    port: str
    description: str = ""
    describe: m.Describe | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return "answered" if self.describe is not None else self.error or "no answer"

    def to_json(self) -> dict:
        d = self.describe
        answer = None
        if d is not None:
            answer = {
                "board": d.board,
                "partition": d.partition,
                "manifest_id": d.manifest_id.hex() if d.manifest_id else None,
                "protocol": d.protocol,
                "image_status": d.image_status_name,
                "max_message": d.max_message,
                "capabilities": _capabilities(d.capabilities),
                "lockstep": d.lockstep,
            }
        return {"port": self.port, "description": self.description, "status": self.status, "answer": answer}


def probe(url: str, *, timeout_s: float = PROBE_TIMEOUT_S, description: str = "") -> Probe:
    """Opens ``url`` and tries the describe handshake for ``timeout_s``; never raises for what
    is on the port (the result says what answered, or why nothing did)."""
    try:
        client = open_port(url, timeout_s)
    except CliError as error:
        return Probe(url, description, error=str(error).replace(f"cannot open {url}: ", "cannot open: "))
    try:
        return Probe(url, description, describe=client.connect(timeout_s=timeout_s))
    except LinkTimeout:
        return Probe(url, description, error="no answer")
    except LinkError as error:
        return Probe(url, description, error=f"refused the handshake: {error}")
    finally:
        client.close()


_CAPABILITIES = ("events", "queries", "lockstep", "upload", "sources", "heartbeats")


def _capabilities(bits: int) -> list[str]:
    return [name for i, name in enumerate(_CAPABILITIES) if bits & (1 << i)]


# --- queries -------------------------------------------------------------------------------------


def known_route_names(image: bytes | None = None) -> dict[int, str]:
    """Printed route names by route id: the greenhouse reference partition's, and those in
    ``image``'s names table (devices know routes only by id)."""
    from manyfold.devices.greenhouse import greenhouse_spec
    from manyfold.devices.image import read_image, route_id

    names = [r.name for r in greenhouse_spec().routes]
    if image is not None:
        names += read_image(image).route_names or []
    return {route_id(name): name for name in names}


def _enum_name(enum_type, value: int) -> str:
    try:
        return enum_type(value).name.lower()
    except ValueError:
        return str(value)


def _direction(link: int) -> str:
    return {0: "local", 1: "to host", 2: "from host", 3: "both"}.get(link, str(link))


def _header(client: LinkClient, url: str) -> dict:
    d = client.describe
    assert d is not None
    return {
        "port": url,
        "board": d.board,
        "partition": d.partition,
        "manifest_id": d.manifest_id.hex() if d.manifest_id else None,
        "protocol": d.protocol,
        "image_status": d.image_status_name,
    }


def _routes(client: LinkClient, names: dict[int, str]) -> list[dict]:
    from manyfold.devices.image import ValueKind

    return [
        {
            "index": i, "id": f"{r.id:08x}", "name": names.get(r.id), "schema": r.schema.hex(),
            "kind": _enum_name(ValueKind, r.kind), "direction": _direction(r.link), "seq": r.seq,
        }  # fmt: skip
        for i, r in enumerate(client.routes())
    ]


def topology(client: LinkClient, names: dict[int, str] | None = None) -> dict:
    """Routes (index, id, name when known, schema, kind, direction to or from the host, last
    seq), nodes (operator, input and output routes, mailbox) and synthetic sources."""
    from manyfold.devices.image import Op, Overflow, Waveform

    names = known_route_names() if names is None else names
    nodes = [
        {
            "index": i, "op": _enum_name(Op, n.op), "input": n.input, "output": n.output, "output2": n.output2,
            "mailbox_capacity": n.capacity, "overflow": _enum_name(Overflow, n.overflow),
        }  # fmt: skip
        for i, n in enumerate(client.nodes())
    ]
    sources = [
        {"route": s.route, "waveform": _enum_name(Waveform, s.waveform), "period_us": s.period_us, "phase_us": s.phase_us}
        for s in client.sources()
    ]
    return {"routes": _routes(client, names), "nodes": nodes, "sources": sources}


def flow(client: LinkClient) -> dict:
    """Each node's input mailbox: depth, capacity, accepted, delivered, dropped, refused, and
    its deepest."""
    from manyfold.devices.image import Op

    ops = [n.op for n in client.nodes()]
    return {
        "flow": [
            {"node": f.node, "op": _enum_name(Op, ops[f.node]) if f.node < len(ops) else None, **_fields(f, skip=("node",))}
            for f in client.flow()
        ]
    }


def _fields(obj, skip: Sequence[str] = ()) -> dict:
    return {k: v for k, v in obj.to_dict().items() if k not in skip}


def taints(client: LinkClient, names: dict[int, str] | None = None) -> dict:
    """Per route, the taints its events carried (``seen``) and those waiting to mark its next
    event (``pending``), by name."""
    names = known_route_names() if names is None else names
    ids = [r.id for r in client.routes()]
    return {
        "taints": [
            {
                "route": t.route,
                "name": names.get(ids[t.route]) if t.route < len(ids) else None,
                "seen": m.taint_names(t.seen),
                "pending": m.taint_names(t.pending),
            }
            for t in client.taints()
        ]
    }


def _event_json(e: m.Event) -> dict:
    return e.to_dict()


def latest(client: LinkClient, route: str, names: dict[int, str] | None = None) -> dict:
    """The last event of ``route`` (an index or a printed route name), or None; an unknown
    route is a :class:`CliError` naming what the device has."""
    names = known_route_names() if names is None else names
    routes = client.routes()
    if route.isdigit():
        index = int(route)
        if index >= len(routes):
            raise CliError(f"unknown route {index}: the device has {len(routes)} routes" + (f" (0 to {len(routes) - 1})" if routes else ""))
    else:
        try:
            index = client.route_index(route)
        except LinkError:
            raise CliError(f"unknown route {route!r}: the device has no route of that name (`query topology` lists its {len(routes)} routes)") from None
    event = client.latest(index)
    return {
        "route": index,
        "name": names.get(routes[index].id),
        "event": None if event is None else _event_json(event),
    }


def counters(client: LinkClient) -> dict:
    """The device's counters (docs/wire.md 2.8), by name."""
    return {"device": client.counters_device().to_dict()}


def board_facts(client: LinkClient) -> dict:
    """Uptime, stack peak, receive losses, mode, time and capacities (the board's own)."""
    return {"board_facts": client.board().to_dict()}


def run_query(client: LinkClient, url: str, what: str, route: str | None = None, names: dict[int, str] | None = None) -> dict:
    """One query by name (``QUERIES``), with the describe's facts in front."""
    result = _header(client, url)
    if what == "topology":
        result.update(topology(client, names))
    elif what == "flow":
        result.update(flow(client))
    elif what == "taints":
        result.update(taints(client, names))
    elif what == "latest":
        assert route is not None
        result.update(latest(client, route, names))
    elif what == "counters":
        result.update(counters(client))
    elif what == "board":
        result.update(board_facts(client))
    else:
        raise CliError(f"unknown query {what!r}; one of: {', '.join(QUERIES)}")
    return result


# --- commands ------------------------------------------------------------------------------------


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # files and pipes get full route names on one line
        console = Console(width=200)
    return console


def _table(title: str, rows: list[dict], columns: Sequence[str] | None = None):
    from rich.table import Table

    columns = list(columns or (rows[0].keys() if rows else []))
    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns))
    return t


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "-"
    return str(v)


def _print_header(console, r: dict) -> None:
    manifest = r["manifest_id"][:16] if r["manifest_id"] else "-"
    status = "" if r["image_status"] == "loaded" else f", no partition loaded ({r['image_status']})"
    console.print(
        f"[bold]{r['board']}[/] on {r['port']}: partition {r['partition'] or '-'}, manifest {manifest}, protocol v{r['protocol']}{status}"
    )


def _render_query(console, what: str, r: dict) -> None:
    _print_header(console, r)
    if what == "topology":
        console.print(_table("routes", r["routes"], ("index", "name", "id", "kind", "direction", "seq", "schema")))
        console.print(_table("nodes", r["nodes"], ("index", "op", "input", "output", "output2", "mailbox_capacity", "overflow")))
        console.print(_table("sources", r["sources"], ("route", "waveform", "period_us", "phase_us")))
    elif what == "flow":
        console.print(_table("mailbox flow", r["flow"]))
    elif what == "taints":
        console.print(_table("taints", r["taints"], ("route", "name", "seen", "pending")))
    elif what == "latest":
        name = r["name"] or f"route {r['route']}"
        if r["event"] is None:
            console.print(f"{name}: no event yet")
        else:
            e = r["event"]
            row = {**e, "lineage": f"{e['lineage']['count']} of route {e['lineage']['route']} from seq {e['lineage']['first_seq']}" if e["lineage"]["count"] else "source"}
            console.print(_table(f"latest event of {name}", [row], ("route", "seq", "time_us", "epoch", "value", "taints", "lineage")))
    elif what == "counters":
        console.print(_table("device counters", [{"counter": k, "value": v} for k, v in r["device"].items()]))
    elif what == "board":
        facts = dict(r["board_facts"])
        caps = facts.pop("capacities")
        rows = [{"fact": k, "value": v} for k, v in facts.items()] + [{"fact": f"capacity: {k}", "value": v} for k, v in caps.items()]
        console.print(_table("board", rows))


def cmd_query(args: argparse.Namespace) -> int:
    if args.what == "latest" and args.route is None:
        raise CliError("`latest` needs a ROUTE: a route index or a printed route name")
    if args.what != "latest" and args.route is not None:
        raise CliError(f"ROUTE is only for `latest`, not `{args.what}`")
    names = None
    if args.image:
        names = _names_from_image(args.image)
    client = open_board(args.port, args.timeout)
    if names is None:
        names = _names_from_flashed(client.describe)
    try:
        result = run_query(client, args.port, args.what, args.route, names)
    except LinkTimeout:
        raise CliError(f"{args.port} stopped answering (no reply within {args.timeout:g} s)") from None
    except NackError as error:
        raise CliError(f"{args.port}: {error}") from None
    finally:
        client.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _render_query(_console(), args.what, result)
    return 0


FLASHED_IMAGES = ".manyfold/flash/*/*.bin"
"""Where ``manyfold flash`` writes partition images by default (relative to the current directory)."""
FLASHED_IMAGES_MAX = 64
"""Images looked at, at most: the directory grows by one per board and partition flashed."""


def _names_from_flashed(describe) -> dict[int, str] | None:
    """Route names from the image ``manyfold flash`` wrote for the board's manifest and
    partition, when one is under ``.manyfold/flash/`` here; None when none matches."""
    from pathlib import Path

    from manyfold.devices.image import ImageSpecError, read_image

    if describe is None or not describe.manifest_id:
        return None
    for path in sorted(Path.cwd().glob(FLASHED_IMAGES))[:FLASHED_IMAGES_MAX]:
        try:
            data = path.read_bytes()
            info = read_image(data)
        except (OSError, ImageSpecError, ValueError, IndexError, KeyError, TypeError):
            continue  # not an image of ours (or unreadable): the next one may be
        if info.manifest_id == describe.manifest_id and info.partition == describe.partition:
            return known_route_names(data)
    return None


def _names_from_image(path: str) -> dict[int, str]:
    from pathlib import Path

    from manyfold.devices.image import ImageSpecError

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {_port_reason(error)}") from None
    try:
        return known_route_names(data)
    except (ImageSpecError, ValueError, IndexError, TypeError) as error:
        raise CliError(f"{path} is not a partition image: {error}") from None


def cmd_ports(args: argparse.Namespace) -> int:
    targets: list[tuple[str, str]] = []
    if not args.no_scan:
        targets += [(p.device, p.description) for p in serial_ports()]
    targets += [(url, "given with --probe") for url in args.probe]
    results = [probe(url, timeout_s=args.timeout, description=desc) for url, desc in targets]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
        return 0
    console = _console()
    if not results:
        console.print("no serial ports found (give a URL to probe with --probe socket://HOST:PORT)")
        return 0
    rows = []
    for r in results:
        j = r.to_json()
        a = j["answer"] or {}
        rows.append({
            "port": r.port, "description": r.description, "answer": r.status if r.describe is None else "answered",
            "board": a.get("board"), "partition": a.get("partition") or None,
            "manifest id": (a.get("manifest_id") or "")[:16] or None, "protocol": a.get("protocol"),
            "image": a.get("image_status"),
        })  # fmt: skip
    console.print(_table("serial ports", rows))
    return 0


def cmd_footprint(args: argparse.Namespace) -> int:
    from manyfold.devices import footprint
    from manyfold.devices.boards import BoardError, board

    try:
        board(args.board)  # unknown boards are named before anything is built
        fp = footprint.measure(args.board, args.elf)
    except BoardError as error:
        raise CliError(str(error)) from None
    except LinkError as error:
        raise CliError(f"measuring {args.board} under QEMU failed: {error}") from None
    if args.json:
        print(json.dumps(fp.to_json(), indent=2))
        return 0
    console = _console()
    rows = [
        {"what": "flash (text + data)", "bytes": fp.flash_bytes, "budget": footprint.FLASH_BUDGET, "parts": f"text {fp.text}, data {fp.data}"},
        {"what": "RAM (data + bss + stack peak)", "bytes": fp.ram_bytes, "budget": footprint.RAM_BUDGET, "parts": f"data {fp.data}, bss {fp.bss}, stack peak {fp.stack_peak}"},
    ]  # fmt: skip
    console.print(_table(f"{fp.board} firmware with the greenhouse partition", rows))
    console.print(f"ELF: {fp.elf}")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def register(subparsers) -> None:
    """Adds ``query``, ``ports`` and ``footprint`` to the CLI's argparse subparsers."""
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
    query.add_argument("--port", required=True, metavar="URL", help="/dev/ttyACM0, socket://127.0.0.1:4444, ... (UART 8N1 at 115200 baud)")
    query.add_argument("what", choices=QUERIES, help="what to ask")
    query.add_argument("route", nargs="?", metavar="ROUTE", help="for latest: a route index or a printed route name")
    query.add_argument("--json", action="store_true", help="print JSON instead of tables")
    query.add_argument("--timeout", type=_positive_float, default=QUERY_TIMEOUT_S, metavar="S", help=f"seconds to wait for each answer (default {QUERY_TIMEOUT_S:g})")
    query.add_argument(
        "--image", metavar="FILE",
        help="a partition image whose route names label the device's routes (default: the image "
        "`manyfold flash` wrote under .manyfold/flash/ for the board's manifest and partition, if any)",
    )
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
    ports.add_argument("--timeout", type=_positive_float, default=PROBE_TIMEOUT_S, metavar="S", help=f"seconds to wait for each port's answer (default {PROBE_TIMEOUT_S:g})")
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
    fp.add_argument("--elf", metavar="PATH", help="measure this firmware ELF instead of building the board's own")
    fp.add_argument("--json", action="store_true", help='print {"flash_bytes": ..., "ram_bytes": ..., "elf": ...} and the parts')
    fp.set_defaults(func=cmd_footprint)


__all__ = [
    "QUERIES",
    "PortInfo",
    "Probe",
    "board_facts",
    "counters",
    "flow",
    "known_route_names",
    "latest",
    "open_board",
    "open_port",
    "probe",
    "register",
    "run_query",
    "serial_ports",
    "taints",
    "topology",
]
