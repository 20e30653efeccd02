"""Typed answers of the query plane. Serialization lives only in :class:`Serializable`."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

import cbor2

from manyfold.graph import EnvelopeId, Route
from manyfold.graph.taints import Taint
from manyfold.query.from_dict import AnswerShapeError, from_dict


def _plain(value: Any) -> Any:
    """Turn typed objects into JSON/CBOR-ready values: routes and ids as strings, named enums
    as their values and coded (int) enums by name, sets sorted, answers by their own
    ``to_dict()``, other dataclasses as dicts, the extension's typed objects by their
    ``to_dict()``."""
    if isinstance(value, Serializable):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, (Route, EnvelopeId)):
        return str(value)
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()
    return value


def _fields(obj: Any) -> dict:
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}


class Serializable:
    """``to_dict()`` for people and tools, ``to_json()`` for logs, ``to_cbor()`` for links."""

    def to_dict(self) -> dict:
        return _fields(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kwargs)

    def to_cbor(self) -> bytes:
        return cbor2.dumps(self.to_dict(), canonical=True)

    @classmethod
    def from_dict(cls, data: dict, where: str = "answer"):
        """The typed object back from its ``to_dict()`` (:func:`~manyfold.query.from_dict.from_dict`)."""
        return from_dict(cls, data, where)


# ------------------------------------------------------------------ topology


@dataclass(frozen=True)
class RouteInfo(Serializable):
    """A route: who owns and produces it, its schema, and who consumes it."""

    route: Route
    owner: str
    schema: str
    schema_hash: str
    producer_kind: str
    """``external`` (published by producers named like the owner, or granted) or ``node``."""
    producer: str
    consumers: tuple[str, ...]
    envelopes: int
    """Envelopes published so far (the last sequence number)."""


@dataclass(frozen=True)
class NodeInfo(Serializable):
    """A node: its operator, inputs, outputs and parameters."""

    name: str
    kind: str
    inputs: tuple[Route, ...]
    outputs: tuple[Route, ...]
    params: dict
    deterministic: bool
    buffered: int | None
    """Items the operator holds now (windows, joins, capacitors), if it buffers."""
    buffered_max: int | None
    primitive: str | None = None
    """The primitive instance this node is a part of (``graph.primitives``), if any."""


@dataclass(frozen=True)
class EdgeInfo(Serializable):
    """An edge and its delivery policy."""

    name: str
    source: Route
    target_kind: str
    target: str
    port: int
    policy: str
    """``inline``, ``mailbox`` or ``epoch_boundary``."""
    mailbox_capacity: int | None
    overflow: str | None


@dataclass(frozen=True)
class StoreInfo(Serializable):
    """A store a primitive instance uses: its name, kind (``EventLog`` ...) and sync policy."""

    name: str
    kind: str
    sync: str


@dataclass(frozen=True)
class PrimitiveInfo(Serializable):
    """An installed primitive instance and the parts it is made of."""

    instance: str
    contract: str
    version: int
    nodes: tuple[str, ...]
    routes: tuple[Route, ...]
    stores: tuple[StoreInfo, ...]


@dataclass(frozen=True)
class Topology(Serializable):
    """Routes, nodes and edges, in creation order; the primitive instances, by name, with the
    parts each is made of (each part node names its instance in ``NodeInfo.primitive``)."""

    routes: tuple[RouteInfo, ...]
    nodes: tuple[NodeInfo, ...]
    edges: tuple[EdgeInfo, ...]
    primitives: tuple[PrimitiveInfo, ...] = ()

    def route(self, route: Route) -> RouteInfo:
        return next(r for r in self.routes if r.route == route)

    def node(self, name: str) -> NodeInfo:
        return next(n for n in self.nodes if n.name == name)

    def primitive(self, instance: str) -> PrimitiveInfo:
        return next(p for p in self.primitives if p.instance == instance)

    def parts_of(self, instance: str) -> tuple[NodeInfo, ...]:
        """The nodes of ``instance`` (in creation order)."""
        return tuple(n for n in self.nodes if n.primitive == instance)


# ------------------------------------------------------------------ health


class HealthState(enum.Enum):
    """How a primitive instance (or one of its parts) is doing: ``healthy``; ``degraded`` (it
    works, but lost, dropped or forced something); ``blocked`` (it refuses new work until
    something changes). Ordered by badness: :meth:`worst` picks the worst."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        return _HEALTH_RANK[self]

    @staticmethod
    def worst(states) -> "HealthState":
        """The worst of ``states`` (``healthy`` when there are none)."""
        return max(states, key=lambda s: s.rank, default=HealthState.HEALTHY)


_HEALTH_RANK = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.BLOCKED: 2}


@dataclass(frozen=True)
class PartHealth(Serializable):
    """One part (graph node) of a primitive instance: its operator's health joined with its
    input mailboxes'."""

    node: str
    state: HealthState
    why: tuple[str, ...]


@dataclass(frozen=True)
class InstanceHealth(Serializable):
    """A primitive instance's health: the worst of its parts', and why (each part's reasons,
    prefixed by the part; across nodes, prefixed by the runtime node too)."""

    instance: str
    contract: str
    version: int
    state: HealthState
    why: tuple[str, ...]
    parts: tuple[PartHealth, ...]


@dataclass(frozen=True)
class HealthReport(Serializable):
    """The ``health`` answer: every primitive instance with a part here, by name."""

    instances: tuple[InstanceHealth, ...]
    kind: str = "health"

    def instance(self, name: str) -> InstanceHealth:
        return next(i for i in self.instances if i.instance == name)


# ------------------------------------------------------------------ flow


@dataclass(frozen=True)
class MailboxFlow(Serializable):
    """A mailbox's depth, losses and pressure. Rates are per second of graph time since the
    mailbox was made: ``blocked`` is time spent full (refusing or dropping), ``busy`` is wall
    time spent running its consumer (0 on a virtual clock, where processing takes no time),
    ``idle`` the rest."""

    name: str
    edge: str
    depth: int
    capacity: int
    overflow: str
    accepted: int
    delivered: int
    dropped: int
    rejected: int
    blocked: int
    depth_max: int
    busy_ms_per_s: float
    blocked_ms_per_s: float
    idle_ms_per_s: float


@dataclass(frozen=True)
class EdgeFlow(Serializable):
    """Deliveries through an edge, and items held for the next epoch."""

    name: str
    delivered: int
    held: int
    held_dropped: int


@dataclass(frozen=True)
class Flow(Serializable):
    mailboxes: tuple[MailboxFlow, ...]
    edges: tuple[EdgeFlow, ...]

    def mailbox(self, name: str) -> MailboxFlow:
        return next(m for m in self.mailboxes if m.name == name)


@dataclass(frozen=True)
class Watermark(Serializable):
    """A window's, join's or resequencer's watermark and its time-related counters."""

    node: str
    kind: str
    watermark_us: int | None
    late: int
    forced: int


# ------------------------------------------------------------------ scheduler


@dataclass(frozen=True)
class GatedWork(Serializable):
    guard_id: int
    route: Route
    not_before_epoch: int | None
    not_before_us: int | None
    expires_at_us: int | None
    submitted_us: int


@dataclass(frozen=True)
class ExpiredWork(Serializable):
    guard_id: int
    route: Route
    expired_at_us: int


@dataclass(frozen=True)
class SchedulerState(Serializable):
    now_us: int
    epoch: int
    ready: int
    timers: int
    gated: tuple[GatedWork, ...]
    expired: tuple[ExpiredWork, ...]
    expired_total: int
    gated_max: int
    """How many guarded publishes may wait at once."""
    gated_refused: int
    """Guarded publishes refused because ``gated_max`` already waited."""


# ------------------------------------------------------------------ taints


@dataclass(frozen=True)
class TaintOrigin(Serializable):
    """Where a taint comes from (or is repaired): a node, a mailbox, a link or a producer."""

    taint: Taint
    kind: str
    """``node``, ``mailbox``, ``epoch_hold`` (a full hold on an epoch-boundary edge), ``link``,
    ``producer`` or ``route`` (ephemeral layer)."""
    name: str
    proof: str | None = None
    """For repairs: the proof the repairing node declared."""


@dataclass(frozen=True)
class RouteTaints(Serializable):
    """Taints seen on a route (the union over its envelopes: an upper bound), where each was
    added upstream, and where upstream taints were repaired."""

    route: Route
    taints: frozenset[Taint]
    added: tuple[TaintOrigin, ...]
    repaired: tuple[TaintOrigin, ...]


# ------------------------------------------------------------------ lineage and payloads


@dataclass(frozen=True)
class PayloadOpen(Serializable):
    consumer: str
    bytes: int
    cache_hit: bool
    time_us: int


@dataclass(frozen=True)
class LineageStep(Serializable):
    """One envelope in a lineage walk."""

    id: EnvelopeId
    route: Route
    producer: str
    value: Any
    event_time_us: int
    control_epoch: int | None
    taints: frozenset[Taint]
    parents: tuple[EnvelopeId, ...]
    payload: str
    """``inline`` or ``lazy``."""
    opens: tuple[PayloadOpen, ...]


@dataclass(frozen=True)
class Lineage(Serializable):
    """What explains an envelope: every retained ancestor, the source inputs among them, the
    lazy payloads opened along the way, and the control epochs involved."""

    root: EnvelopeId
    steps: tuple[LineageStep, ...]
    inputs: tuple[EnvelopeId, ...]
    """Ancestors with no parents: the inputs from outside the graph."""
    payloads_opened: tuple[EnvelopeId, ...]
    epochs: tuple[int, ...]
    missing: tuple[EnvelopeId, ...]
    """Ancestors no longer retained (raise ``retain`` on their routes to keep them)."""

    def step(self, id: EnvelopeId | str) -> LineageStep:
        return next(s for s in self.steps if str(s.id) == str(id))


@dataclass(frozen=True)
class PayloadDemand(Serializable):
    route: Route
    metadata_events: int
    opens: int
    cache_hits: int
    bytes_materialized: int
    failures: int
    by_consumer: dict


# ------------------------------------------------------------------ audit


@dataclass(frozen=True)
class AuditRecord(Serializable):
    order: int
    time_us: int
    seq: int
    kind: str
    """``published``, ``delivered``, ``opened``, ``dropped`` or ``refused``."""
    who: str
    detail: str


@dataclass(frozen=True)
class RouteAudit(Serializable):
    route: Route
    entries: tuple[AuditRecord, ...]

    def of_kind(self, kind: str) -> tuple[AuditRecord, ...]:
        return tuple(e for e in self.entries if e.kind == kind)
