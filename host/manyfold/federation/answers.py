"""A runtime node's typed answers to the query plane's kinds (the node ``query`` admin request,
docs/observability.md "Federated queries").

Where a local query has a typed answer, a node's answer is built from the same objects
(:class:`~manyfold.query.model.RouteInfo`, :class:`~manyfold.query.model.MailboxFlow`,
:class:`~manyfold.query.model.Watermark`, :class:`~manyfold.query.model.RouteTaints`, ...), and
:func:`parse_answer` makes them with :func:`~manyfold.query.from_dict.from_dict`. The objects here
hold only what a node says beyond a local graph: the partitions and devices it hosts, retained
latest values, link queues, link reports and counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manyfold.cluster.admin import AdminError, Lineage, parse_lineage
from manyfold.graph import Route
from manyfold.graph.taints import Taint
from manyfold.query.from_dict import AnswerShapeError, from_dict
from manyfold.query.model import (
    EdgeFlow, EdgeInfo, Flow, HealthReport, MailboxFlow, NodeInfo, PrimitiveInfo, RouteInfo, RouteTaints, Serializable, Topology, Watermark,
)  # fmt: skip

KINDS = ("topology", "routes", "flow", "watermarks", "taints", "links", "counters", "lineage", "device", "health")
"""The kinds a node answers (``device`` asks a device behind the node)."""
DEVICE_WHATS = ("topology", "flow", "taints", "latest", "counters")
"""What a ``device`` query may ask the device."""


@dataclass(frozen=True)
class NodeTopology(Serializable):
    """A node's topology: the manifest it runs, the partitions it hosts, the device partitions
    behind it, and its routes, nodes and edges (the local :class:`Topology`'s rows), and the
    primitive instances with a part on it (each with all its parts)."""

    manifest_id: str | None
    partitions: tuple[str, ...]
    devices: tuple[str, ...]
    routes: tuple[RouteInfo, ...]
    nodes: tuple[NodeInfo, ...]
    edges: tuple[EdgeInfo, ...]
    primitives: tuple[PrimitiveInfo, ...] = ()

    @property
    def topology(self) -> Topology:
        return Topology(self.routes, self.nodes, self.edges, self.primitives)


@dataclass(frozen=True)
class Latest(Serializable):
    """A route's retained latest envelope on a node."""

    seq: int
    time_us: int | None
    taints: frozenset[Taint]
    value: Any = None


@dataclass(frozen=True)
class RouteState(Serializable):
    """A route a node's partitions produce or consume: owner, producer, consumers, envelopes so
    far and the latest it retains (None before the first)."""

    route: Route
    owner: str
    producer: str
    consumers: tuple[str, ...]
    envelopes: int
    latest: Latest | None = None


@dataclass(frozen=True)
class LinkQueue(Serializable):
    """A link's send queue for one route: depth now, capacity, and drops."""

    link: str
    route: str
    depth: int
    capacity: int
    dropped: int


@dataclass(frozen=True)
class RateLimiter(Serializable):
    """A rate limiter (resistor, sampler...): what it passed and what it held back."""

    node: str
    kind: str
    passed: int
    dropped: int


@dataclass(frozen=True)
class NodeFlow(Serializable):
    """A node's flow: the local :class:`Flow`'s mailboxes and edges, its link queues and rate limiters."""

    mailboxes: tuple[MailboxFlow, ...]
    edges: tuple[EdgeFlow, ...]
    link_queues: tuple[LinkQueue, ...] = ()
    rate_limiters: tuple[RateLimiter, ...] = ()

    @property
    def flow(self) -> Flow:
        return Flow(self.mailboxes, self.edges)


@dataclass(frozen=True)
class EpochHold(Serializable):
    edge: str
    held: int
    held_dropped: int


@dataclass(frozen=True)
class Epochs(Serializable):
    """The control epoch a node is at and the epoch-boundary edges holding work for the next."""

    epoch: int
    holding: tuple[EpochHold, ...] = ()


@dataclass(frozen=True)
class NodeWatermarks(Serializable):
    watermarks: tuple[Watermark, ...]
    epochs: Epochs | None = None


@dataclass(frozen=True)
class LinkReport(Serializable):
    """A link as one end sees it: capabilities requested, provided and missing (tainted), state
    and counters (the admin ``status``'s link)."""

    name: str
    peer: str | None = None
    peer_id: int | None = None
    transport: str = ""
    state: str = ""
    requested: tuple[str, ...] = ()
    provided: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    events_tx: int = 0
    events_rx: int = 0
    dropped: int = 0
    retransmits: int = 0
    duplicates: int = 0
    gaps: int = 0
    refused: dict = field(default_factory=dict)
    refusal: str | None = None
    down_reason: str | None = None


@dataclass(frozen=True)
class Counters(Serializable):
    """A node's counters: events published and received, drops, queries answered and refused,
    and each link's own counters (by link name)."""

    published: int = 0
    received: int = 0
    mailbox_dropped: int = 0
    link_dropped: int = 0
    queries_answered: int = 0
    queries_refused: int = 0
    links: dict = field(default_factory=dict)

    SUMMED = ("published", "received", "mailbox_dropped", "link_dropped", "queries_answered", "queries_refused")


@dataclass(frozen=True)
class DeviceReport(Serializable):
    """A device's answer relayed by the node that owns it: the partition, what was asked, and the
    device's answer as it sent it (``manyfold.query.device``'s ``to_dict()``: the device's
    facts, flat, then the rows)."""

    partition: str
    what: str
    answer: dict

    @property
    def facts(self) -> dict:
        keys = ("port", "board", "partition", "manifest_id", "protocol", "image_status")
        return {k: self.answer[k] for k in keys if k in self.answer}


def parse_answer(kind: str, answer: Any, where: str, *, partition: str | None = None, what: str | None = None) -> Any:
    """A node's answer ``A`` to ``kind`` as its typed object (a tuple of them for routes, taints
    and links). Raises :class:`AnswerShapeError` (one sentence naming ``where``)."""
    try:
        if kind == "topology":
            return from_dict(NodeTopology, answer, where)
        if kind == "routes":
            return from_dict(tuple[RouteState, ...], answer, where)
        if kind == "flow":
            return from_dict(NodeFlow, answer, where)
        if kind == "watermarks":
            return from_dict(NodeWatermarks, answer, where)
        if kind == "taints":
            return from_dict(tuple[RouteTaints, ...], answer, where)
        if kind == "links":
            return from_dict(tuple[LinkReport, ...], answer, where)
        if kind == "counters":
            return from_dict(Counters, answer, where)
        if kind == "health":
            return from_dict(HealthReport, answer, where)
        if kind == "lineage":
            return parse_lineage(answer, where)
        if kind == "device":
            if not isinstance(answer, dict):
                raise AnswerShapeError(f"{where}: a device answer is an object, got {type(answer).__name__}")
            return DeviceReport(partition or str(answer.get("partition", "")), what or "", answer)
    except AdminError as error:
        raise AnswerShapeError(str(error)) from None
    raise AnswerShapeError(f"{where}: unknown query kind {kind!r}; expected one of {', '.join(KINDS)}")


__all__ = [
    "DEVICE_WHATS", "KINDS", "Counters", "DeviceReport", "EpochHold", "Epochs", "Latest", "Lineage", "LinkQueue",
    "LinkReport", "NodeFlow", "NodeTopology", "NodeWatermarks", "RateLimiter", "RouteState", "parse_answer",
]  # fmt: skip
