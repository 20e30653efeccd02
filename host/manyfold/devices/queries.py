"""Ask a device about its partition: one query over a connected link, one typed answer.

Each function takes a :class:`~manyfold.devices.link.LinkClient` that has done the handshake
(``manyfold.devices.ports.open_board``) and returns an answer of ``manyfold.query.device``, with
the describe's facts in front (``port`` is the URL they name):

- :func:`topology`: routes (index, id, name when known, schema, kind, direction, last seq),
  nodes (operator, input and output routes, mailbox) and synthetic sources;
- :func:`flow`: each node's input mailbox; :func:`taints`: per route, by name;
- :func:`latest`: a route's last event; :func:`counters`: the device's counters;
  :func:`board_facts`: uptime, stack peak, receive losses, mode, time and capacities;
- :func:`ask`: one of them by name (``QUERIES``).

Devices know routes by a 32-bit id; the printed names come from ``names`` (route id to name):
:func:`known_route_names` has the greenhouse reference partition's and those of an image,
:func:`route_names_from_file` those of an image file, :func:`route_names_from_flashed` those of
the image ``manyfold flash`` wrote for the device's manifest and partition.

A query that cannot be asked or answered (an unknown query or route, a device that stopped
answering or refused) raises :class:`QueryError`; a names file that cannot be read raises
:class:`RouteNamesError`. Both messages are one sentence naming the object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from manyfold.devices import protocol as p
from manyfold.devices.image import ImageSpecError, Op, Overflow, ValueKind, Waveform, read_image, route_id
from manyfold.devices.link import LinkClient, LinkError, LinkTimeout, NackError
from manyfold.devices.ports import port_reason
from manyfold.graph.taints import taints_from_bits
from manyfold.query import device as a  # the typed answers

QUERIES = ("topology", "flow", "taints", "latest", "counters", "board")
QUERY_TIMEOUT_S = 5.0

FLASHED_IMAGES = ".manyfold/flash/*/*.bin"
"""Where ``manyfold flash`` writes partition images by default (relative to its directory)."""
FLASHED_IMAGES_MAX = 64
"""Images looked at, at most: the directory grows by one per board and partition flashed."""

RouteNames = dict[int, str]
"""Printed route names by route id."""


class QueryError(LinkError):
    """A device query that cannot be asked or answered; the message is one sentence naming the
    query, the route or the port."""


class RouteNamesError(ValueError):
    """A file of route names (a partition image) that cannot be read; the message names it."""


# --- route names ---------------------------------------------------------------------------------


def known_route_names(image: bytes | None = None) -> RouteNames:
    """Printed route names by route id: the greenhouse reference partition's, and those in
    ``image``'s names table."""
    from manyfold.devices.greenhouse import greenhouse_spec

    names = [r.name for r in greenhouse_spec().routes]
    if image is not None:
        names += read_image(image).route_names or []
    return {route_id(name): name for name in names}


def route_names_from_file(path: str | Path) -> RouteNames:
    """The route names of the partition image in ``path`` (and the reference partition's)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise RouteNamesError(f"cannot read {path}: {port_reason(error)}") from None
    try:
        return known_route_names(data)
    except (ImageSpecError, ValueError, IndexError, TypeError) as error:
        raise RouteNamesError(f"{path} is not a partition image: {error}") from None


def route_names_from_flashed(describe: p.Describe | None, directory: Path | None = None) -> RouteNames | None:
    """Route names from the image ``manyfold flash`` wrote for the device's manifest and
    partition under ``directory`` (the current one by default); None when none matches."""
    if describe is None or not describe.manifest_id:
        return None
    for path in sorted((directory or Path.cwd()).glob(FLASHED_IMAGES))[:FLASHED_IMAGES_MAX]:
        try:
            data = path.read_bytes()
            info = read_image(data)
        except (OSError, ImageSpecError, ValueError, IndexError, KeyError, TypeError):
            continue  # not an image of ours (or unreadable): the next one may be
        if info.manifest_id == describe.manifest_id and info.partition == describe.partition:
            return known_route_names(data)
    return None


# --- queries -------------------------------------------------------------------------------------


def _code(enum_type, value: int):
    """``value`` as a member of ``enum_type``, or the bare number when this host does not know it."""
    try:
        return enum_type(value)
    except ValueError:
        return value


def facts(client: LinkClient, port: str = "") -> a.DeviceFacts:
    """The facts of the client's last describe, answered on ``port``."""
    d = client.describe
    if d is None:
        raise QueryError(f"{port or 'the device'}: no handshake yet (connect first)")
    return a.DeviceFacts(port, d.board, d.partition, d.manifest_id or None, d.protocol, d.image_status_name)


def topology(client: LinkClient, *, port: str = "", names: RouteNames | None = None) -> a.DeviceTopology:
    """The device's routes, nodes and synthetic sources."""
    names = known_route_names() if names is None else names
    routes = tuple(
        a.DeviceRoute(i, r.id, names.get(r.id), r.schema, _code(ValueKind, r.kind), a.RouteDirection.of(r.link), r.seq)
        for i, r in enumerate(client.routes())
    )
    nodes = tuple(
        a.DeviceNode(i, _code(Op, n.op), n.input, n.output, n.output2, n.capacity, _code(Overflow, n.overflow))
        for i, n in enumerate(client.nodes())
    )
    sources = tuple(a.DeviceSource(s.route, _code(Waveform, s.waveform), s.period_us, s.phase_us) for s in client.sources())
    return a.DeviceTopology(facts(client, port), routes, nodes, sources)


def flow(client: LinkClient, *, port: str = "") -> a.DeviceFlow:
    """Each node's input mailbox: depth, capacity, accepted, delivered, dropped, refused, and
    its deepest."""
    ops = [n.op for n in client.nodes()]
    rows = tuple(
        a.DeviceMailboxFlow(
            f.node, _code(Op, ops[f.node]) if f.node < len(ops) else None,
            f.depth, f.capacity, f.accepted, f.delivered, f.dropped, f.refused, f.depth_max,
        )  # fmt: skip
        for f in client.flow()
    )
    return a.DeviceFlow(facts(client, port), rows)


def taints(client: LinkClient, *, port: str = "", names: RouteNames | None = None) -> a.DeviceTaints:
    """Per route, the taints its events carried and those waiting to mark its next event."""
    names = known_route_names() if names is None else names
    ids = [r.id for r in client.routes()]
    rows = tuple(
        a.DeviceRouteTaints(t.route, names.get(ids[t.route]) if t.route < len(ids) else None, taints_from_bits(t.seen), taints_from_bits(t.pending))
        for t in client.taints()
    )
    return a.DeviceTaints(facts(client, port), rows)


def latest(client: LinkClient, route: str | int, *, port: str = "", names: RouteNames | None = None) -> a.DeviceLatest:
    """The last event of ``route`` (an index, or a printed route name), or None before its
    first; an unknown route is a :class:`QueryError` saying what the device has."""
    names = known_route_names() if names is None else names
    routes = client.routes()
    if isinstance(route, int) or route.isdigit():
        index = int(route)
        if index >= len(routes):
            raise QueryError(f"unknown route {index}: the device has {len(routes)} routes" + (f" (0 to {len(routes) - 1})" if routes else ""))
    else:
        try:
            index = client.route_index(route)
        except LinkError:
            raise QueryError(f"unknown route {route!r}: the device has no route of that name (`query topology` lists its {len(routes)} routes)") from None
    return a.DeviceLatest(facts(client, port), index, names.get(routes[index].id), client.latest(index))


def counters(client: LinkClient, *, port: str = "") -> a.DeviceCounterReport:
    """The device's counters (docs/wire.md 2.8)."""
    return a.DeviceCounterReport(facts(client, port), client.counters_device())


def board_facts(client: LinkClient, *, port: str = "") -> a.DeviceBoardReport:
    """Uptime, stack peak, receive losses, mode, time and capacities (the board's own)."""
    return a.DeviceBoardReport(facts(client, port), client.board())


def check(what: str, route: str | int | None = None) -> None:
    """Raises :class:`QueryError` unless ``what`` is a query of ``QUERIES`` with a ``route``
    exactly when it needs one (``latest``)."""
    if what not in QUERIES:
        raise QueryError(f"unknown query {what!r}; one of: {', '.join(QUERIES)}")
    if what == "latest" and route is None:
        raise QueryError("`latest` needs a ROUTE: a route index or a printed route name")
    if what != "latest" and route is not None:
        raise QueryError(f"ROUTE is only for `latest`, not `{what}`")


def ask(client: LinkClient, what: str, *, port: str = "", route: str | int | None = None, names: RouteNames | None = None) -> a.DeviceAnswer:
    """One query by name (``QUERIES``; ``latest`` needs ``route``, the others take none). A
    device that stops answering or refuses is a :class:`QueryError` naming ``port``."""
    asks: dict[str, Callable[[], a.DeviceAnswer]] = {
        "topology": lambda: topology(client, port=port, names=names),
        "flow": lambda: flow(client, port=port),
        "taints": lambda: taints(client, port=port, names=names),
        "latest": lambda: latest(client, route, port=port, names=names),  # type: ignore[arg-type]
        "counters": lambda: counters(client, port=port),
        "board": lambda: board_facts(client, port=port),
    }
    check(what, route)
    try:
        return asks[what]()
    except LinkTimeout:
        raise QueryError(f"{port or 'the device'} stopped answering (no reply within {client.timers.reply_timeout_s:g} s)") from None
    except NackError as error:
        raise QueryError(f"{port or 'the device'}: {error}") from None


__all__ = [
    "FLASHED_IMAGES", "QUERIES", "QUERY_TIMEOUT_S", "QueryError", "RouteNames", "RouteNamesError",
    "ask", "board_facts", "check", "counters", "facts", "flow", "known_route_names", "latest", "route_names_from_file",
    "route_names_from_flashed", "taints", "topology",
]  # fmt: skip
