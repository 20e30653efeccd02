"""A client of a runtime node's admin endpoint: one JSON object per line each way (TCP), answers
as typed objects. The endpoint is the same for ``manyfold-node`` and ``manyfold node``
(docs/edge.md):

- ``status()`` -> :class:`NodeStatus` (the node, its incarnation, partitions, and every link's
  state, capabilities and counters);
- ``latest(route)`` -> :class:`HeldEnvelope` or None;
- ``lineage(route, seq)`` -> :class:`Lineage`;
- ``history(route)`` -> every envelope the route retains there, oldest first;
- ``publish(route, values)``: publishes values as the route's owner (tests, demos);
- ``query(kind, principal, ...)``: the query plane (checked against the manifest's query
  exposure): the raw answer object, ``{"node", ..., "kind", "answer"}`` or ``{..., "refused"}``
  (``manyfold.federation`` builds typed objects from it);
- ``stop()``: a clean stop, as SIGTERM.

Every wait is bounded by the client's timeout; a node that does not answer, or answers with
``{"error": ...}``, raises :class:`AdminError` naming the node's address.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.graph import Route
from manyfold.graph.errors import RouteError
from manyfold.graph.taints import Taint

LINE_MAX = 16 * 1024 * 1024
"""The longest answer line read (a lineage of many envelopes is long, never unbounded)."""


class AdminError(ClusterError):
    """The admin endpoint could not be reached, did not answer in time, or refused the request."""


class AdminRejected(AdminError):
    """The node answered ``{"error": ...}``: it read the request and rejected it (a route its
    manifest does not have, a missing field), so asking again will not help."""


RouteRef = Route | int
"""A route as the node names it: by its text, or by its index in the manifest."""


@dataclass(frozen=True)
class LineageRef:
    """A parent envelope: the node that holds it (its id; None when the asked node has no link
    towards it), its route and sequence number."""

    node: int | None
    route: RouteRef
    seq: int


@dataclass(frozen=True)
class LinkStatus:
    """One link of a node, as the node sees it."""

    name: str
    peer: str | None
    peer_id: int | None
    transport: str
    state: str
    requested: tuple[str, ...]
    provided: tuple[str, ...]
    missing: tuple[str, ...]
    events_tx: int
    events_rx: int
    dropped: int
    retransmits: int
    duplicates: int
    gaps: int
    refused: dict[str, int]
    refusal: str | None
    """Why the handshake was refused (both ends show it), or None."""
    down_reason: str | None = None
    bad_frames: int = 0
    rejected: int = 0
    queued: int = 0
    """Events waiting in the link's queues now."""
    unacked: int = 0
    """Events sent and not yet acknowledged."""
    note: str | None = None
    """What the link waits for, if anything (a zenoh link: "waiting for the Zenoh router at ...")."""


@dataclass(frozen=True)
class NodeDevice:
    """A device partition behind a node (``manyfold node --device``), and where it runs."""

    partition: str
    port: str
    """The port given with ``--device`` (a pyserial URL, or ``sim:BOARD``)."""
    where: str
    """``host simulation of BOARD``, or the port."""
    state: str
    """``running``, or ``closed`` once the node let it go."""


@dataclass(frozen=True)
class NodeStatus:
    node: str
    id: int
    incarnation: int
    pid: int
    partitions: tuple[str, ...]
    links: tuple[LinkStatus, ...]
    manifest_id: str | None = None
    devices: tuple[NodeDevice, ...] | None = None
    """The devices behind the node (none for ``manyfold-node``); None when the status does not
    say (a node older than the query plane)."""

    def link(self, name: str) -> LinkStatus:
        for link in self.links:
            if link.name == name:
                return link
        raise AdminError(f"node {self.node} has no link {name!r} (it has {', '.join(k.name for k in self.links) or 'none'})")


@dataclass(frozen=True)
class HeldEnvelope:
    """An envelope a node holds: identity, event time, taints, parents and (for latest) value."""

    route: RouteRef
    seq: int
    time_us: int | None
    taints: frozenset[Taint]
    parents: tuple[LineageRef, ...]
    value: Any = None
    node: int | None = None
    """The id of the node holding it."""

    @property
    def ref(self) -> tuple[RouteRef, int]:
        return (self.route, self.seq)


@dataclass(frozen=True)
class Lineage:
    """An envelope and the ancestors the asked node holds (``envelopes``, the asked one first),
    and the ancestors it does not hold, each named by the node that does (``elsewhere``)."""

    envelopes: tuple[HeldEnvelope, ...]
    elsewhere: tuple[LineageRef, ...]

    @property
    def envelope(self) -> HeldEnvelope:
        return self.envelopes[0]


class _Reader:
    """Typed fields of one answer object, with a sentence naming the node for what is wrong."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise AdminError(f"{where}: expected a JSON object, got {type(data).__name__}")
        self.data, self.where = data, where

    def get(self, key: str, kind: type | tuple, default: object = ...) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise AdminError(f"{self.where}: the answer has no {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise AdminError(f"{self.where}: {key!r} has an unexpected type ({type(value).__name__})")
        return value

    def names(self, key: str) -> tuple[str, ...]:
        return tuple(str(x) for x in self.get(key, list, []))

    def count(self, key: str) -> int:
        return self.get(key, int, 0)


def _route(value: object, where: str) -> RouteRef:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return Route.parse(value)
        except RouteError as error:
            raise AdminError(f"{where}: {error}") from None
    raise AdminError(f"{where}: a route must be a name or an index, got {value!r}")


def _taints(names: tuple[str, ...], where: str) -> frozenset[Taint]:
    try:
        return frozenset(Taint(n) for n in names)
    except ValueError:
        raise AdminError(f"{where}: unknown taint in {list(names)}") from None


def _parents(items: list, where: str) -> tuple[LineageRef, ...]:
    out = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], (int, type(None))) and isinstance(item[2], int)):
            raise AdminError(f"{where}: a parent must be [node, route, seq], got {item!r}")
        out.append(LineageRef(item[0], _route(item[1], where), item[2]))
    return tuple(out)


def _envelope(data: object, where: str) -> HeldEnvelope:
    f = _Reader(data, where)
    return HeldEnvelope(
        _route(f.get("route", (str, int)), where), f.get("seq", int), f.get("time_us", int, None),
        _taints(f.names("taints"), where), _parents(f.get("parents", list, []), where), f.data.get("value"),
        f.get("node", int, None),
    )  # fmt: skip


def _link(data: object, where: str) -> LinkStatus:
    f = _Reader(data, where)
    name = f.get("name", str)
    f.where = f"{where}: link {name}"
    refused = f.get("refused", dict, {})
    return LinkStatus(
        name, f.get("peer", str, None), f.get("peer_id", int, None), f.get("transport", str, ""), f.get("state", str, ""),
        f.names("requested"), f.names("provided"), f.names("missing"), f.count("events_tx"), f.count("events_rx"),
        f.count("dropped"), f.count("retransmits"), f.count("duplicates"), f.count("gaps"),
        {str(k): int(v) for k, v in refused.items() if isinstance(v, int)}, f.get("refusal", str, None),
        f.get("down_reason", str, None), f.count("bad_frames"), f.count("rejected"), f.count("queued"), f.count("unacked"),
        f.get("note", str, None),
    )  # fmt: skip


def _device(data: object, where: str) -> NodeDevice:
    f = _Reader(data, where)
    return NodeDevice(f.get("partition", str), f.get("port", str, ""), f.get("where", str, ""), f.get("state", str, ""))


def parse_status(data: object, where: str) -> NodeStatus:
    f = _Reader(data, where)
    return NodeStatus(
        f.get("node", str), f.get("id", int), f.get("incarnation", int), f.get("pid", int), f.names("partitions"),
        tuple(_link(item, where) for item in f.get("links", list, [])), f.get("manifest_id", str, None),
        None if f.get("devices", list, None) is None else tuple(_device(item, where) for item in f.get("devices", list)),
    )  # fmt: skip


def parse_lineage(data: object, where: str) -> Lineage:
    """A lineage answer (``{"lineage": [...], "elsewhere": [...]}``) as a :class:`Lineage`; a
    node that holds none of it names, in ``elsewhere``, the node that does."""
    f = _Reader(data, where)
    envelopes = tuple(_envelope(e, where) for e in f.get("lineage", list, []))
    elsewhere = []
    for item in f.get("elsewhere", list, []):
        e = _Reader(item, where)
        elsewhere.append(LineageRef(e.get("node", int, None), _route(e.get("route", (str, int)), where), e.get("seq", int)))
    if not envelopes and not elsewhere:
        raise AdminError(f"{where}: the lineage came back empty")
    return Lineage(envelopes, tuple(elsewhere))


class AdminClient:
    """A connection to one node's admin endpoint (a context manager; reconnects when asked
    after the node closed it)."""

    def __init__(self, address: Address, *, timeout_s: float = 5.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    @property
    def where(self) -> str:
        return f"admin {self.address}"

    def ask(self, request: dict) -> dict:
        """One request, one answer object (``{"error": ...}`` raises :class:`AdminError`)."""
        try:
            if self._sock is None:
                self._sock = socket.create_connection((self.address.host, self.address.port), timeout=self.timeout_s)
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            line = self._read_line()
        except OSError as error:
            self.close()
            reason = "no answer in time" if isinstance(error, TimeoutError) else error.strerror or str(error)
            raise AdminError(f"{self.where}: {reason}") from None
        except UnicodeError:  # the resolver's IDNA encoding: a label over 63 characters, say
            self.close()
            raise AdminError(f"{self.where}: {self.address.host!r} is not a valid host name") from None
        try:
            answer = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AdminError(f"{self.where}: the answer is not one JSON object: {line[:80]!r}") from None
        if isinstance(answer, dict) and "error" in answer:
            raise AdminRejected(f"{self.where}: {answer['error']}")
        if not isinstance(answer, dict):
            raise AdminError(f"{self.where}: expected a JSON object, got {line[:80]!r}")
        return answer

    def _read_line(self) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError(0, "the node closed the connection")
            self._buffer += chunk
            if len(self._buffer) > LINE_MAX:
                raise ConnectionResetError(0, f"an answer longer than {LINE_MAX} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def status(self) -> NodeStatus:
        return parse_status(self.ask({"q": "status"}), self.where)

    def latest(self, route: Route | str) -> HeldEnvelope | None:
        answer = self.ask({"q": "latest", "route": str(route)})
        if answer.get("seq") is None:
            return None
        return _envelope(answer, self.where)

    def lineage(self, route: Route | str, seq: int) -> Lineage:
        lineage = parse_lineage(self.ask({"q": "lineage", "route": str(route), "seq": seq}), self.where)
        if not lineage.envelopes:
            raise AdminError(f"{self.where}: the lineage of {route}@{seq} came back empty")
        return lineage

    def history(self, route: Route | str) -> tuple[HeldEnvelope, ...]:
        answer = self.ask({"q": "history", "route": str(route)})
        return tuple(_envelope(e, self.where) for e in _Reader(answer, self.where).get("envelopes", list, []))

    def publish(self, route: Route | str, values: list) -> int:
        """Publishes ``values`` on ``route`` as its owner; returns how many were published."""
        return _Reader(self.ask({"q": "publish", "route": str(route), "values": list(values)}), self.where).get("published", int)

    def query(
        self, kind: str, principal: str, route: Route | str | None = None, seq: int | None = None,
        partition: str | None = None, what: str | None = None,
    ) -> dict:
        """One query of the node's query plane as ``principal``; returns the answer object as
        the node sent it (``"answer"``, or ``"refused"`` with a sentence). A malformed request or
        a device that could not answer raises :class:`AdminError`."""
        request: dict[str, Any] = {"q": "query", "kind": kind, "principal": principal}
        for key, value in (("route", None if route is None else str(route)), ("seq", seq), ("partition", partition), ("what", what)):
            if value is not None:
                request[key] = value
        return self.ask(request)

    def stop(self) -> None:
        try:
            self.ask({"q": "stop"})
        except AdminError as error:
            if "closed the connection" not in str(error):
                raise
        finally:
            self.close()


__all__ = ["AdminClient", "AdminError", "HeldEnvelope", "Lineage", "LineageRef", "LinkStatus", "NodeDevice", "NodeStatus", "RouteRef", "parse_lineage", "parse_status"]
