"""The local graph: typed routes, operators, mailboxes and a deterministic scheduler.

The work runs in Rust (``manyfold-runtime`` over the ``manyfold-core`` kernels); this module is
the typed, object-shaped API over it. See ``docs/graph.md`` for a guided tour.

>>> g = Graph()
>>> temp = g.route(Route(Plane.READ, Layer.LOGICAL, "sensor", "env", "temperature"), FLOAT)
>>> avg = g.moving_average(temp, 3)
>>> sensor = g.producer("sensor")
>>> for v in (20.0, 21.0, 25.0):
...     _ = sensor.publish(temp, v)
>>> g.latest(avg.output).value
22.0
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manyfold._native import (
    CAPACITY_MAX,
    GATED_MAX_DEFAULT,
    RETAIN_DEFAULT,
    Counter,
    EdgeStats,
    Envelope,
    EnvelopeId,
    ExpiredPublish,
    GatedPublish,
    Layer,
    MailboxStats,
    NativeGraph,
    NodeStats,
    Plane,
    Producer,
    PublishReceipt,
    Route,
    SchedulerStats,
    Subscription,
    Variant,
)
from manyfold._native import as_route as _route
from manyfold.graph.errors import OperatorConfigError, SchemaMismatchError, TimeError

if TYPE_CHECKING:
    from manyfold.stores import ViewState
from manyfold.graph.taints import Taint
from manyfold.graph.schema import (
    BYTES,
    FLOAT,
    Schema,
    SchemaDefinitionError,
    as_schema,
    field_schema,
    delivery_schema,
    pair_schema,
    window_result_schema,
)


class Overflow(str, enum.Enum):
    """What a full mailbox does with a new item."""

    BLOCK = "block"
    """Refuse the publish and tell the producer to wait (real backpressure)."""
    DROP_OLDEST = "drop_oldest"
    """Evict the oldest queued item (counted, and the next delivered item is tainted)."""
    DROP_NEWEST = "drop_newest"
    """Discard the new item (counted and tainted)."""
    REJECT = "reject"
    """Refuse the publish with RejectedError."""


class Aggregate(str, enum.Enum):
    """What a window emits."""

    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"


class TimeSource(str, enum.Enum):
    """Which time a time window uses."""

    EVENT = "event"
    """The envelope's event time; windows close when the watermark passes their end."""
    PROCESSING = "processing"
    """The graph clock on arrival; outputs carry processing-time and determinism taints."""


class JoinClass(str, enum.Enum):
    """How a join executes, and therefore how it can be distributed."""

    LOCAL = "local"
    """Both sides keyed alike and co-located: per-key buffers on both sides."""
    LOOKUP = "lookup"
    """The right side is a table (latest per key) that each left value looks up."""
    BROADCAST_MIRROR = "broadcast_mirror"
    """The right side is small and mirrored whole; each left value pairs with the mirror."""
    REPARTITION = "repartition"
    """The sides are keyed differently; both are re-keyed into partitions by a stable hash."""


def _enum(cls: type[enum.Enum], value: Any, what: str) -> Any:
    """``cls(value)``, or OperatorConfigError naming ``what`` and the values it takes."""
    try:
        return cls(value)
    except (ValueError, TypeError):
        choices = ", ".join(m.value for m in cls)
        raise OperatorConfigError(f"{what} must be one of {choices}, got {value!r}") from None


def _count(value: Any, what: str, low: int = 1, high: int = CAPACITY_MAX) -> int:
    """An integer from ``low`` to ``high``, or OperatorConfigError naming ``what``."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise OperatorConfigError(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


@dataclass(frozen=True)
class Mailbox:
    """A bounded buffer on an edge: the consumer runs later, when the scheduler delivers.
    ``capacity`` is 1 to ``CAPACITY_MAX`` (1,048,576) items."""

    capacity: int
    overflow: Overflow = Overflow.BLOCK

    def __post_init__(self) -> None:
        _count(self.capacity, "a mailbox's capacity")
        object.__setattr__(self, "overflow", _enum(Overflow, self.overflow, "a mailbox's overflow"))


def _policy(mailbox: Mailbox | None, epoch_boundary: bool) -> tuple | None:
    if mailbox is None and not epoch_boundary:
        return None
    if mailbox is None:
        return (None, None, epoch_boundary)
    return (mailbox.capacity, mailbox.overflow.value, epoch_boundary)


class Idempotency(str, enum.Enum):
    """Where a retried write is safe to repeat (declared by a write binding)."""

    ABSOLUTE_VALUE = "absolute_value"
    """The desired value is absolute (a setpoint): applying it twice equals applying it once."""
    REQUEST_ID = "request_id"
    """The device deduplicates by request id."""
    UNKNOWN = "unknown"
    """Not known: such a binding may not retry."""


@dataclass(frozen=True)
class LinkCapabilities:
    """What a link crossing promises. Each missing property becomes a taint on every envelope
    that crosses: unordered -> ``order_possibly_out_of_order``, unreliable ->
    ``delivery_dropped``, unauthenticated -> ``trust_unverified``, not durable (no replay after
    a crash) -> ``det_nonreplayable``."""

    ordered: bool = True
    reliable: bool = True
    authenticated: bool = True
    durable: bool = True

    def taints(self) -> list[Taint]:
        missing = []
        if not self.ordered:
            missing.append(Taint.ORDER_POSSIBLY_OUT_OF_ORDER)
        if not self.reliable:
            missing.append(Taint.DELIVERY_DROPPED)
        if not self.authenticated:
            missing.append(Taint.TRUST_UNVERIFIED)
        if not self.durable:
            missing.append(Taint.DET_NONREPLAYABLE)
        return missing


@dataclass(frozen=True)
class SyntheticSource:
    """A seeded synthetic sensor on a board: where a route's values come from on an emulated
    board (``docs/wire.md`` section 3). The local runtime does not run sources; boards and
    ``manyfold.sim`` do, from the partition image."""

    period_us: int
    waveform: str = "constant"
    """``constant``, ``triangle`` or ``random_walk``."""
    center: float = 0.0
    amplitude: float = 0.0
    cycle: int = 1
    noise: float = 0.0
    seed: int = 0
    phase_us: int = 0

    def __post_init__(self) -> None:
        if self.waveform not in ("constant", "triangle", "random_walk"):
            raise OperatorConfigError(f"waveform must be constant, triangle or random_walk, got {self.waveform!r}")
        if self.period_us <= 0:
            raise OperatorConfigError(f"a source needs period_us >= 1, got {self.period_us}")

    def to_data(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Partition:
    """A named part of the graph, placed on one runtime (a board, an edge node, this process).
    ``with partition:`` puts the routes and nodes declared inside it into it."""

    name: str
    profile: str = "local"
    """embedded-lite, local, edge or service."""
    placement: tuple[tuple[str, str], ...] = ()
    """Placement constraints, e.g. (("board", "lm3s6965evb"),)."""
    _graph: "Graph | None" = field(default=None, repr=False, compare=False)

    def __enter__(self) -> "Partition":
        assert self._graph is not None
        self._graph._partition_stack.append(self.name)
        return self

    def __exit__(self, *exc) -> None:
        assert self._graph is not None
        self._graph._partition_stack.pop()


@dataclass(frozen=True)
class Link:
    """A declared link between two partitions and what it can keep."""

    name: str
    a: str
    b: str
    transport: str
    capabilities: LinkCapabilities


@dataclass(frozen=True)
class Node:
    """A graph node: a built-in operator (or a ``connect``) with its output routes."""

    name: str
    kind: str
    inputs: tuple[Route, ...]
    outputs: tuple[Route, ...]
    _graph: "Graph" = field(repr=False, compare=False)

    @property
    def output(self) -> Route:
        """The (first) output route."""
        return self.outputs[0]

    def discharge(self, count: int | None = None) -> None:
        """Release ``count`` buffered items (all when None). Capacitors only."""
        if self.kind != "capacitor":
            raise OperatorConfigError(f"node {self.name} is a {self.kind}; only capacitors discharge")
        if count is not None:
            _count(count, f"node {self.name}: the count to discharge", 0, 2**63 - 1)
        self._graph._native.demand(self.name, count)


@dataclass(frozen=True)
class QueueNode(Node):
    """A DurableQueue node: ``deliveries`` (``Delivery`` records to process and ack by id) and
    ``dead_letters`` (messages that spent their retries)."""

    @property
    def deliveries(self) -> Route:
        return self.outputs[0]

    @property
    def dead_letters(self) -> Route:
        return self.outputs[1]


ACKS_MAILBOX_DEFAULT = 1024
"""Acks and nacks reach a DurableQueue through a mailbox of this many items by default."""


@dataclass(frozen=True)
class WriteBinding:
    """The routes and node of a write binding."""

    request: Route
    desired: Route
    reported: Route
    effective: Route
    ack: Route
    node: Node


@dataclass(frozen=True)
class RunReport:
    """What a scheduler run did."""

    steps: int
    idle: bool
    """False when the step bound stopped the run with work left."""


class Graph:
    """A local graph. ``Graph()`` runs on a virtual clock that only moves when you advance it;
    ``Graph(realtime=True)`` runs against the monotonic wall clock. ``gated_max`` bounds the
    guarded publishes waiting at once (``publish_guarded``); one more is refused with
    :class:`RejectedError`."""

    def __init__(self, *, realtime: bool = False, gated_max: int = GATED_MAX_DEFAULT, store_dir: str | os.PathLike | None = None) -> None:
        self._native = NativeGraph(bool(realtime), _count(gated_max, "gated_max"))
        self.realtime = realtime
        self.store_dir: Path | None = None
        """Where durable operators (materialized views, durable queues) keep their store files."""
        if store_dir is not None:
            self.store_dir = Path(store_dir)
            self._native.set_store_dir(self.store_dir)
        self._schemas: dict[Route, Schema] = {}
        self._producers: dict[str, Producer] = {}
        self._names: set[str] = set()
        self._nodes: dict[str, Node] = {}
        # Structure the runtime does not need but manifests describe.
        self._callables: dict[str, Callable] = {}
        self._partitions: dict[str, Partition] = {"main": Partition("main", "local", (), self)}
        self._partition_stack: list[str] = ["main"]
        self._route_partition: dict[Route, str] = {}
        self._node_partition: dict[str, str] = {}
        self._links: dict[str, Link] = {}
        self._fences: dict[Route, str] = {}
        self._sources: dict[Route, SyntheticSource] = {}
        self.query_exposure: dict | None = None
        self.primitives: dict = {}
        """Installed primitive instances by name (``manyfold.primitives.PrimitiveInstance``)."""

    # -------------------------------------------------------------- partitions and links

    def partition(self, name: str, *, profile: str = "local", **placement: str) -> Partition:
        """Declare (or get) a partition; ``with g.partition("board_a", profile="embedded-lite",
        board="lm3s6965evb"):`` places what is declared inside it."""
        if name not in self._partitions:
            self._partitions[name] = Partition(name, profile, tuple(sorted((k, str(v)) for k, v in placement.items())), self)
        return self._partitions[name]

    def link(self, name: str, a: Partition | str, b: Partition | str, *, transport: str = "tcp", capabilities: LinkCapabilities = LinkCapabilities()) -> Link:
        """Declare a link between two partitions and what it can keep; ``transport`` is ``udp``,
        ``tcp`` or ``zenoh`` between runtime nodes, ``serial`` to a device (docs/edge.md)."""
        a_name = a.name if isinstance(a, Partition) else a
        b_name = b.name if isinstance(b, Partition) else b
        for p in (a_name, b_name):
            if p not in self._partitions:
                raise OperatorConfigError(f"link {name}: partition {p!r} is not declared")
        self._links[name] = Link(name, a_name, b_name, transport, capabilities)
        return self._links[name]

    @property
    def current_partition(self) -> str:
        return self._partition_stack[-1]

    # -------------------------------------------------------------- routes and producers

    def route(
        self,
        route: Route | str,
        schema: Schema | type,
        *,
        history: int = 8,
        retain: int | None = None,
        audit: bool = False,
        fence: str | None = None,
        source: SyntheticSource | None = None,
    ) -> Route:
        """Declare ``route`` carrying ``schema``. ``history`` envelopes are kept for replay,
        ``retain`` (at least ``history``; by default ``RETAIN_DEFAULT``, 256, or ``history`` if
        larger) for lineage queries; ``audit=True`` records every publish and delivery in the
        route audit (opens, drops and refusals are always recorded). ``fence`` (``"epoch"`` or ``"token"``)
        declares how writes to owned state on this route are fenced against stale owners.
        Declaring the same route again with the same schema returns it."""
        route = _route(route)
        schema = as_schema(schema)
        history = _count(history, f"route {route}: history")
        if retain is not None:
            retain = _count(retain, f"route {route}: retain", history)
        if fence not in (None, "epoch", "token"):
            raise OperatorConfigError(f"route {route}: fence must be 'epoch', 'token' or None, got {fence!r}")
        self._native.declare_route(route, schema.name, schema.version, schema.descriptor, history, retain, bool(audit))
        self._schemas.setdefault(route, schema)
        self._route_partition.setdefault(route, self.current_partition)
        if fence is not None:
            self._fences[route] = fence
        if source is not None:
            self._sources[route] = source
        return route

    def schema_of(self, route: Route) -> Schema:
        """The schema a declared route carries."""
        route = _route(route)
        try:
            return self._schemas[route]
        except KeyError:
            from manyfold.graph.errors import RouteError

            raise RouteError(f"route {route} is not declared in this graph") from None

    @property
    def routes(self) -> list[Route]:
        """Declared routes, in declaration order."""
        return list(self._schemas)

    def producer(self, name: str) -> Producer:
        """The producer called ``name``. It may publish on routes whose owner is ``name``."""
        if name not in self._producers:
            self._producers[name] = self._native.producer(name)
        return self._producers[name]

    def grant(self, producer: Producer, route: Route) -> None:
        """Let ``producer`` publish on ``route`` although it does not own it."""
        self._native.grant(producer, route)

    def publish(
        self,
        route: Route,
        value: Any,
        *,
        producer: Producer,
        event_time_us: int | None = None,
        timeout_s: float | None = None,
    ) -> PublishReceipt:
        """Publish ``value`` on ``route`` as ``producer`` (same as ``producer.publish``)."""
        return producer.publish(route, value, event_time_us=event_time_us, timeout_s=timeout_s)

    def publish_guarded(
        self,
        route: Route,
        value: Any,
        *,
        producer: Producer,
        not_before_epoch: int | None = None,
        not_before_us: int | None = None,
        expires_at_us: int | None = None,
    ) -> int:
        """Publish once the control epoch reaches ``not_before_epoch`` and the clock reaches
        ``not_before_us``; expire (counted, never published) if still held at ``expires_at_us``.
        Released envelopes carry the ``sched_gated`` taint. Returns the guard id. When
        ``gated_max`` guarded publishes already wait, raises :class:`RejectedError` (counted in
        the scheduler state's ``gated_refused``)."""
        return self._native.publish_guarded(producer, route, value, not_before_epoch, not_before_us, expires_at_us)

    # -------------------------------------------------------------- reading

    def subscribe(
        self,
        route: Route,
        callback: Callable[[Envelope], Any],
        *,
        mailbox: Mailbox | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Call ``callback(envelope)`` for each envelope on ``route`` (inline, or through a
        mailbox delivered by the scheduler)."""
        route = _route(route)
        name = self._name(name, f"sub_{route.stream}")
        try:
            return self._native.subscribe(route, callback, name, _policy(mailbox, False))
        except BaseException:
            self._names.discard(name)
            raise

    def count(self, route: Route, *, name: str | None = None) -> Counter:
        """A native counter of the envelopes on ``route`` (no Python call per envelope)."""
        route = _route(route)
        return self._native.count(route, self._name(name, f"count_{route.stream}"))

    def latest(self, route: Route) -> Envelope | None:
        """The most recent envelope on ``route``."""
        return self._native.latest(route)

    def envelope(self, route: Route, seq: int) -> Envelope | None:
        """The envelope ``route@seq`` if the route still retains it (see ``retain``)."""
        return self._native.envelope(route, seq)

    def replay(self, route: Route) -> list[Envelope]:
        """The retained envelopes of ``route`` (at most its ``history``), oldest first."""
        return self._native.replay(route)

    # -------------------------------------------------------------- wiring

    def _name(self, name: str | None, base: str) -> str:
        if name is not None:
            if name in self._names:
                raise OperatorConfigError(f"the name {name!r} is already used by a node or edge")
            self._names.add(name)
            return name
        for n in itertools.count(1):
            candidate = base if n == 1 else f"{base}_{n}"
            if candidate not in self._names:
                self._names.add(candidate)
                return candidate
        raise AssertionError("unreachable")

    def _add(
        self,
        kind: str,
        sources: Sequence[Route],
        output: Route | None,
        out_schema: Schema,
        name: str | None,
        params: dict,
        policies: Sequence[tuple | None] | None = None,
        extra_outputs: Sequence[tuple[Route, Schema]] = (),
    ) -> Node:
        sources = [_route(s) for s in sources]
        output = None if output is None else _route(output)
        extra_outputs = [(_route(r), schema) for r, schema in extra_outputs]
        for s in sources:
            self.schema_of(s)
        name = self._name(name, f"{kind}_{sources[0].stream}")
        try:
            if output is None:
                output = Route(Plane.READ, Layer.INTERNAL, name, sources[0].family, sources[0].stream, Variant.EVENT, 1)
            outputs = [(output, out_schema), *extra_outputs]
            plan = []
            for route, schema in outputs:
                declared = self._schemas.get(route)
                if declared is not None and declared.hash != schema.hash:
                    raise SchemaMismatchError(
                        f"node {name}: output {route} carries {declared.label} ({declared.type_name()}) "
                        f"but the operator emits {schema.label} ({schema.type_name()})"
                    )
                plan.append((route, None if declared is not None else (schema.name, schema.version, schema.descriptor)))
            policies = policies or [None] * len(sources)
            params, callables = self._function_refs(name, params)
            self._native.add_operator(kind, name, [(s, p) for s, p in zip(sources, policies)], plan, params, callables)
        except BaseException:
            self._names.discard(name)
            raise
        self._callables.update(callables)
        self._node_partition[name] = self.current_partition
        for route, schema in outputs:
            self._schemas.setdefault(route, schema)
            self._route_partition.setdefault(route, self.current_partition)
        node = Node(name, kind, tuple(sources), tuple(r for r, _ in outputs), self)
        self._nodes[name] = node
        return node

    def _function_refs(self, node: str, params: dict) -> tuple[dict, dict]:
        """Replace functions in ``params`` by ``{"ref": name}``: manifests refer to user code
        by name. The name is ``fn.__manyfold_name__``, or ``module.qualname`` for importable
        functions, or ``<node>.<parameter>`` for lambdas and local functions."""
        plain, callables = {}, {}
        for key, value in params.items():
            if callable(value):
                name = getattr(value, "__manyfold_name__", None)
                if name is None:
                    qualname = getattr(value, "__qualname__", "")
                    module = getattr(value, "__module__", None)
                    if module and qualname and "<" not in qualname and module != "__main__":
                        name = f"{module}.{qualname}"
                    else:
                        name = f"{node}.{key}"
                existing = self._callables.get(name)
                if existing is not None and existing is not value:
                    name = f"{node}.{key}"
                callables[name] = value
                plain[key] = {"ref": name}
            else:
                plain[key] = value
        return plain, callables

    def connect(
        self,
        source: Route,
        sink: Route,
        *,
        mailbox: Mailbox | None = None,
        epoch_boundary: bool = False,
        link: LinkCapabilities | None = None,
        name: str | None = None,
    ) -> Node:
        """Forward every envelope of ``source`` to ``sink`` (same schema), inline, through a
        mailbox, or held to the next control epoch. ``link`` declares what the crossing cannot
        promise; the forwarded envelopes carry the matching taints."""
        source, sink = _route(source), _route(sink)
        self.schema_of(source), self.schema_of(sink)
        name = self._name(name, f"forward_{source.stream}")
        link_taints = [t.value for t in link.taints()] if link is not None else []
        try:
            self._native.connect(name, source, sink, _policy(mailbox, epoch_boundary), link_taints)
        except BaseException:
            self._names.discard(name)
            raise
        node = Node(name, "forward", (source,), (sink,), self)
        self._nodes[name] = node
        self._node_partition[name] = self.current_partition
        self._route_partition.setdefault(sink, self.current_partition)
        return node

    @staticmethod
    def _input_policy(mailbox: Mailbox | None, epoch_boundary: bool) -> list:
        return [_policy(mailbox, epoch_boundary)]

    def map(
        self,
        source: Route,
        fn: Callable[[Any], Any],
        *,
        schema: Schema | type | None = None,
        output: Route | None = None,
        deterministic: bool = True,
        mailbox: Mailbox | None = None,
        name: str | None = None,
    ) -> Node:
        """Apply ``fn`` to each value. The output carries ``schema`` (the input's by default).
        Declare ``deterministic=False`` for functions that read clocks, randomness or the
        outside world; their outputs then carry a determinism taint."""
        output = None if output is None else _route(output)
        if schema is not None:
            out_schema = as_schema(schema)
        elif output is not None and output in self._schemas:
            out_schema = self._schemas[output]
        else:
            out_schema = self.schema_of(source)
        return self._add("map", [source], output, out_schema, name, {"fn": fn, "deterministic": deterministic}, self._input_policy(mailbox, False))

    def filter(
        self,
        source: Route,
        predicate: Callable[[Any], bool],
        *,
        output: Route | None = None,
        deterministic: bool = True,
        mailbox: Mailbox | None = None,
        name: str | None = None,
    ) -> Node:
        """Pass the values ``predicate`` accepts."""
        return self._add("filter", [source], output, self.schema_of(source), name, {"fn": predicate, "deterministic": deterministic}, self._input_policy(mailbox, False))

    def merge(self, sources: Sequence[Route], *, output: Route | None = None, name: str | None = None) -> Node:
        """Interleave several routes of one schema in arrival order."""
        if not sources:
            raise OperatorConfigError("merge needs at least one source")
        return self._add("merge", list(sources), output, self.schema_of(sources[0]), name, {})

    def _key_schema(self, source: Route, key: str | Callable | None) -> Schema | None:
        if isinstance(key, str):
            try:
                return field_schema(self.schema_of(source), key)
            except SchemaDefinitionError as error:
                raise SchemaMismatchError(f"key of a node on {source}: {error}") from None
        return None

    def count_window(
        self,
        source: Route,
        *,
        size: int,
        step: int = 1,
        aggregate: Aggregate = Aggregate.MEAN,
        value: str | Callable | None = None,
        key: str | Callable | None = None,
        records: bool | None = None,
        output: Route | None = None,
        mailbox: Mailbox | None = None,
        name: str | None = None,
    ) -> Node:
        """Aggregate the last ``size`` values (per ``key``), every ``step`` values. ``value``
        and ``key`` are a record field name or a function (the whole payload by default).
        Emits floats, or :class:`WindowResult` records when keyed (or ``records=True``)."""
        records = key is not None if records is None else records
        out_schema = window_result_schema(self._key_schema(source, key)) if records else FLOAT
        params = {"size": size, "step": step, "aggregate": _enum(Aggregate, aggregate, "aggregate").value, "value": value, "key": key, "emit": "record" if records else "value"}
        return self._add("count_window", [source], output, out_schema, name, params, self._input_policy(mailbox, False))

    def moving_average(self, source: Route, window: int, *, output: Route | None = None, name: str | None = None) -> Node:
        """The mean of the last ``window`` values, after each value (from the ``window``-th on)."""
        return self.count_window(source, size=window, step=1, aggregate=Aggregate.MEAN, output=output, name=name or None)

    def time_window(
        self,
        source: Route,
        *,
        width_us: int,
        slide_us: int | None = None,
        lateness_us: int = 0,
        aggregate: Aggregate = Aggregate.MEAN,
        value: str | Callable | None = None,
        key: str | Callable | None = None,
        time: TimeSource = TimeSource.EVENT,
        records: bool = True,
        output: Route | None = None,
        mailbox: Mailbox | None = None,
        name: str | None = None,
    ) -> Node:
        """Tumbling (``slide_us`` omitted) or sliding windows of ``width_us`` per ``key``,
        emitting :class:`WindowResult` records when the watermark (largest event time minus
        ``lateness_us``) passes a window's end. Values behind the watermark are late: dropped,
        counted, and the next result carries a delivery taint."""
        if not records and key is not None:
            raise OperatorConfigError("a keyed time window emits WindowResult records (records=True)")
        out_schema = window_result_schema(self._key_schema(source, key)) if records else FLOAT
        params = {
            "width_us": width_us,
            "slide_us": slide_us if slide_us is not None else width_us,
            "lateness_us": lateness_us,
            "aggregate": _enum(Aggregate, aggregate, "aggregate").value,
            "value": value,
            "key": key,
            "time": _enum(TimeSource, time, "time").value,
            "emit": "record" if records else "value",
        }
        return self._add("time_window", [source], output, out_schema, name, params, self._input_policy(mailbox, False))

    def join(
        self,
        left: Route,
        right: Route,
        *,
        join_class: JoinClass,
        key: str | Callable | None = None,
        left_key: str | Callable | None = None,
        right_key: str | Callable | None = None,
        within_us: int | None = None,
        capacity: int = 1024,
        partitions: int = 4,
        output: Route | None = None,
        name: str | None = None,
    ) -> Node:
        """Join two routes into :class:`Pair` records. The class says how: ``LOCAL`` (keyed
        buffers on both sides), ``LOOKUP`` (right side is a table), ``BROADCAST_MIRROR`` (right
        side mirrored whole) or ``REPARTITION`` (re-keyed into ``partitions``). A join without a
        key (other than a bounded broadcast mirror) pairs everything with everything and is
        refused with JoinRejectedError. With ``within_us``, an input more than ``within_us``
        behind the largest event time seen is late: dropped, counted and tainted, as are values
        evicted or refused while they could still pair (``docs/graph.md``)."""
        left_key = left_key if left_key is not None else key
        right_key = right_key if right_key is not None else key
        out_schema = pair_schema(self.schema_of(left), self.schema_of(right))
        params = {
            "class": _enum(JoinClass, join_class, "join_class").value,
            "left_key": left_key,
            "right_key": right_key,
            "within_us": within_us,
            "capacity": capacity,
            "partitions": partitions,
        }
        return self._add("join", [left, right], output, out_schema, name, params)

    def rate_limit(self, source: Route, *, max_events: int, interval_us: int, output: Route | None = None, name: str | None = None) -> Node:
        """A token bucket on event time: bursts of up to ``max_events``, refilled at
        ``max_events`` per ``interval_us``. Values without a token are dropped (counted, and in
        the publish receipt's ``dropped``); the next value through carries ``delivery_sampled``."""
        return self._add("rate_limit", [source], output, self.schema_of(source), name, {"max_events": max_events, "interval_us": interval_us})

    def sample(self, source: Route, *, period_us: int, output: Route | None = None, name: str | None = None) -> Node:
        """At most one value per ``period_us``, the latest winning: values within a period
        replace the held one, and at the period's end (the next multiple of ``period_us`` on
        the clock after the first of them) it goes out with its own event time and every value
        of the batch as parents, tainted ``delivery_coalesced`` when it replaced others. Runs
        on devices as their ``latest`` operator (the same kernel)."""
        return self._add("sample", [source], output, self.schema_of(source), name, {"period_us": period_us})

    def capacitor(
        self,
        source: Route,
        *,
        capacity: int,
        overflow: Overflow = Overflow.DROP_OLDEST,
        demand: Route | None = None,
        output: Route | None = None,
        name: str | None = None,
    ) -> Node:
        """Buffer up to ``capacity`` values and release them on demand: ``node.discharge(n)``,
        or a value on the ``demand`` route (an int count, anything else releases all). Full, it
        applies ``overflow`` as a mailbox does: drop policies lose a value (counted, the next
        release tainted); ``BLOCK`` and ``REJECT`` refuse the publish (BackpressureError,
        RejectedError) before anything is recorded."""
        sources = [source] + ([demand] if demand is not None else [])
        return self._add("capacitor", sources, output, self.schema_of(source), name, {"capacity": capacity, "overflow": _enum(Overflow, overflow, "a capacitor's overflow").value})

    def resistor(self, source: Route, *, min_interval_us: int, output: Route | None = None, name: str | None = None) -> Node:
        """At most one value per ``min_interval_us``: values arriving too soon are held, the
        latest replacing earlier ones (counted, ``delivery_coalesced`` taint), and released
        when the interval has passed."""
        return self._add("resistor", [source], output, self.schema_of(source), name, {"min_interval_us": min_interval_us})

    def deadband(self, source: Route, *, band: float, value: str | Callable | None = None, output: Route | None = None, name: str | None = None) -> Node:
        """Pass a value only when it moved at least ``band`` (0 or more; a move of exactly
        ``band`` passes) from the last value passed. A move to or from NaN passes."""
        return self._add("deadband", [source], output, self.schema_of(source), name, {"band": band, "value": value})

    def threshold(
        self,
        source: Route,
        *,
        above: float | None = None,
        below: float | None = None,
        inside: tuple[float, float] | None = None,
        outside: tuple[float, float] | None = None,
        value: str | Callable | None = None,
        output: Route | None = None,
        name: str | None = None,
    ) -> Node:
        """Pass values above, below (strict), inside (inclusive) or outside finite limits (give
        exactly one; ``low <= high``). NaN passes every mode."""
        given = [(m, v) for m, v in (("above", above), ("below", below), ("inside", inside), ("outside", outside)) if v is not None]
        if len(given) != 1:
            raise OperatorConfigError("threshold takes exactly one of above=, below=, inside=, outside=")
        mode, limit = given[0]
        low, high = (limit, None) if mode == "above" else (None, limit) if mode == "below" else limit
        return self._add("threshold", [source], output, self.schema_of(source), name, {"mode": mode, "low": low, "high": high, "value": value})

    def scale(self, source: Route, *, scale: float = 1.0, offset: float = 0.0, value: str | Callable | None = None, output: Route | None = None, name: str | None = None) -> Node:
        """Emit ``value * scale + offset`` as a float (raw counts to engineering units)."""
        return self._add("scale", [source], output, FLOAT, name, {"scale": scale, "offset": offset, "value": value})

    def repair(
        self,
        source: Route,
        *,
        clears: Iterable[Taint],
        proof: str,
        adds: Iterable[Taint] = (),
        output: Route | None = None,
        name: str | None = None,
    ) -> Node:
        """Clear taints the node can prove no longer hold (``proof`` says why, and is shown in
        queries), optionally adding the taints that describe the repair. Absorbing taints
        (``det_nonreplayable``) cannot be cleared."""
        params = {"clears": [_enum(Taint, t, "a taint").value for t in clears], "adds": [_enum(Taint, t, "a taint").value for t in adds], "proof": proof}
        return self._add("repair", [source], output, self.schema_of(source), name, params)

    def resequence(self, source: Route, *, delay_us: int, capacity: int = 1024, output: Route | None = None, name: str | None = None) -> Node:
        """Put events back in event-time order, waiting ``delay_us`` of event time for
        stragglers: clears ``order_possibly_out_of_order``, adds ``order_resequenced``. Events
        older than what was already emitted are late: dropped, counted and tainted."""
        return self._add("resequence", [source], output, self.schema_of(source), name, {"delay_us": delay_us, "capacity": capacity})

    def actuator(self, desired: Route, *, reported: Route, effective: Route, apply_us: int = 0, name: str | None = None) -> Node:
        """The device side of a setting: one pending write, applied ``apply_us`` after the first
        desired value of its batch (newer values replace it without moving that time; the report
        then says ``delivery_coalesced`` and names the batch), published on ``reported`` then
        ``effective`` at the time of application. While a setting is in effect, each desired
        value re-emits it on ``effective`` marked ``coherence_write_pending``. ``apply_us=0``
        applies at once. Boards run it as their write binding (the same kernel); locally it
        simulates one."""
        schema = self.schema_of(desired)
        return self._add("actuator", [desired], reported, schema, name, {"apply_us": apply_us}, extra_outputs=[(effective, schema)])

    def open_payloads(self, source: Route, *, output: Route | None = None, name: str | None = None) -> Node:
        """Open the lazy payload of every envelope reaching this node and emit its bytes. Put
        it after a filter so payloads are opened only on demand; each open is recorded
        against this node."""
        return self._add("open_payload", [source], output, BYTES, name, {})

    def materialized_view(
        self,
        source: Route,
        *,
        key: str,
        snapshot_every: int = 1000,
        sync: str = "full",
        store: str | None = None,
        output: Route | None = None,
        name: str | None = None,
    ) -> Node:
        """Keep the latest record of each ``key`` (a field of the source's records), durably:
        each record is committed to the view's event log before it is applied, the whole state
        is snapshotted every ``snapshot_every`` updates, and a restarted graph rebuilds it from
        the snapshot plus the log after it. Needs the graph's ``store_dir``; the store file is
        ``<store_dir>/<store or node name>.sqlite`` with fsync policy ``sync`` (``full``:
        survives power loss; ``normal``: survives kill -9). Emits each applied record on its
        output. Read it with :meth:`view`."""
        params = {"key": key, "snapshot_every": snapshot_every, "sync": str(getattr(sync, "value", sync)), "store": store}
        return self._add("materialized_view", [source], output, self.schema_of(source), name, params)

    def view(self, name: str) -> "ViewState":
        """The rows of materialized view node ``name`` and how it was rebuilt
        (:class:`manyfold.stores.ViewState`)."""
        from manyfold.stores import ViewState

        rows, info = self._native.view_read(name)
        return ViewState._from_native(name, rows, info)

    def open_payload(self, envelope: Envelope, *, consumer: str) -> bytes:
        """Open an envelope's lazy payload for ``consumer`` (cached, checked against its
        declared digest, recorded in payload demand and the route audit)."""
        return self._native.open_payload(envelope.route, envelope.seq, consumer)

    def write_binding(
        self,
        owner: str,
        family: str,
        stream: str,
        schema: Schema | type,
        *,
        retry_max: int = 0,
        retry_interval_us: int = 0,
        idempotency: Idempotency = Idempotency.UNKNOWN,
        writers: Sequence[Producer] = (),
        name: str | None = None,
    ) -> "WriteBinding":
        """Declare the routes of a device setting and the node that keeps them coherent:
        ``write.logical.<owner>.<family>.<stream>.request`` (written by ``writers``),
        ``write.shadow...desired`` and ``...effective`` (produced by the binding), and
        ``...reported`` and ``...ack`` (published by the device, producer ``owner``). Retries
        (``retry_max`` every ``retry_interval_us``) need a declared idempotency boundary."""
        schema = as_schema(schema)
        from manyfold.graph.schema import INT

        def r(layer: Layer, variant: Variant) -> Route:
            return Route(Plane.WRITE, layer, owner, family, stream, variant, schema.version)

        request = self.route(r(Layer.LOGICAL, Variant.REQUEST), schema, audit=True)
        reported = self.route(r(Layer.SHADOW, Variant.REPORTED), schema, audit=True)
        ack = self.route(r(Layer.SHADOW, Variant.ACK), INT, audit=True)
        desired, effective = r(Layer.SHADOW, Variant.DESIRED), r(Layer.SHADOW, Variant.EFFECTIVE)
        for route in (desired, effective):
            self.route(route, schema, audit=True)
        params = {"retry_max": retry_max, "retry_interval_us": retry_interval_us, "idempotency": _enum(Idempotency, idempotency, "idempotency").value}
        node = self._add(
            "write_binding", [request, reported, ack], desired, schema, name or f"{owner}_{stream}_binding", params,
            extra_outputs=[(effective, schema)],
        )
        for writer in writers:
            self.grant(writer, request)
        return WriteBinding(request, desired, reported, effective, ack, node)

    def durable_queue(
        self,
        source: Route,
        *,
        acks: Route,
        capacity: int,
        nacks: Route | None = None,
        overflow: Overflow = Overflow.REJECT,
        visibility_timeout_us: int = 30_000_000,
        retry_max: int = 3,
        dedup_key: str | None = None,
        dedup_window: int | None = None,
        inflight_max: int = 64,
        commit_every: int = 1,
        sync: str = "full",
        store: str | None = None,
        acks_mailbox: Mailbox | None = Mailbox(ACKS_MAILBOX_DEFAULT),
        deliveries: Route | None = None,
        dead_letters: Route | None = None,
        name: str | None = None,
    ) -> QueueNode:
        """An at-least-once work queue kept in the store ``<store_dir>/<store or name>.sqlite``:
        each message of ``source`` is appended (its id is its place in the log, from 1) and, once
        committed, delivered on ``.deliveries`` as ``Delivery(id, attempt, body)``. Publish the
        id on ``acks`` when done, or on ``nacks`` to have it delivered again. A delivery not acked
        within ``visibility_timeout_us`` of graph time is delivered again; after ``retry_max``
        retries it goes to ``.dead_letters``. Redeliveries, and messages replayed after a
        restart, carry the ``delivery_duplicated`` taint. At most ``inflight_max`` deliveries
        await acks; at most ``capacity`` messages are unacknowledged: a full queue refuses the
        publish (``REJECT``: RejectedError) or drops the message (``DROP_NEWEST``: the receipt
        says dropped). ``dedup_key`` (a field of the message) makes appends idempotent within
        the last ``dedup_window`` appends (default: ``capacity``). ``commit_every`` groups
        appends and acks per commit (the rest commit when the scheduler next runs); ``sync``
        is ``full`` (a commit survives power loss) or ``normal`` (survives a crash of the
        process). Acks and nacks arrive through ``acks_mailbox``, so a worker may map
        deliveries straight to the acks route; ``acks_mailbox=None`` takes them inline (acks
        must then come from a producer)."""
        overflow = _enum(Overflow, overflow, "a durable queue's overflow")
        if overflow not in (Overflow.REJECT, Overflow.DROP_NEWEST):
            raise OperatorConfigError("a durable queue's overflow must be REJECT or DROP_NEWEST: it never drops a message it already accepted")
        if sync not in ("full", "normal"):
            raise OperatorConfigError(f"a durable queue's sync must be full or normal, got {sync!r}")
        body = self.schema_of(source)
        if dedup_key is not None:
            field_schema(body, dedup_key)
        schema = delivery_schema(body)
        extra = [(dead_letters, schema)] if dead_letters is not None else []
        sources = [source, acks] + ([nacks] if nacks is not None else [])
        ack_policy = _policy(acks_mailbox, False)
        policies = [None, ack_policy] + ([ack_policy] if nacks is not None else [])
        params = {
            "capacity": capacity, "overflow": overflow.value, "visibility_timeout_us": visibility_timeout_us,
            "retry_max": retry_max, "dedup_key": dedup_key,
            "dedup_window": (capacity if dedup_window is None else dedup_window) if dedup_key is not None else None,
            "inflight_max": inflight_max, "commit_every": commit_every, "sync": sync, "store": store,
        }
        name = self._name(name, f"queue_{source.stream}")
        self._names.discard(name)
        if not extra:
            extra = [(Route(Plane.READ, Layer.INTERNAL, name, source.family, f"{source.stream}_dead", Variant.EVENT, 1), schema)]
        node = self._add("durable_queue", sources, deliveries, schema, name, params, policies, extra_outputs=extra)
        queue = QueueNode(node.name, node.kind, node.inputs, node.outputs, self)
        self._nodes[node.name] = queue
        return queue

    def lineage(self, envelope: Envelope, *, nodes_max: int = 10_000) -> tuple[list[Envelope], list[EnvelopeId]]:
        """Every ancestor of ``envelope`` still retained (breadth first, itself first), and the
        ids of ancestors no longer retained. ``manyfold.query.lineage`` gives the typed view."""
        return self._native.lineage(envelope.route, envelope.seq, nodes_max)

    # -------------------------------------------------------------- scheduling

    @property
    def now_us(self) -> int:
        """The graph clock, in microseconds."""
        return self._native.now_us

    @property
    def epoch(self) -> int:
        """The current control epoch."""
        return self._native.epoch

    @property
    def gated_max(self) -> int:
        """How many guarded publishes may wait at once."""
        return self._native.gated_max

    def run_until_idle(self, max_steps: int = 10_000_000) -> RunReport:
        """Deliver everything that is due now (mailboxes, due timers, released guards)."""
        return RunReport(*self._native.run_until_idle(_count(max_steps, "max_steps", 1, 2**64 - 1)))

    def advance(self, by_us: int) -> RunReport:
        """Move the virtual clock forward by ``by_us``, running everything due on the way."""
        if not isinstance(by_us, int) or isinstance(by_us, bool) or by_us < 0:
            raise TimeError(f"cannot advance the clock by {by_us!r}: advance takes an integer number of microseconds, 0 or more")
        return RunReport(*self._native.advance_to(self.now_us + by_us))

    def advance_to(self, time_us: int) -> RunReport:
        """Move the virtual clock to ``time_us``, running everything due on the way."""
        return RunReport(*self._native.advance_to(time_us))

    def advance_epoch(self) -> RunReport:
        """Start the next control epoch: release held edges and epoch-guarded work."""
        return RunReport(*self._native.advance_epoch())

    def run_realtime(self, seconds: float) -> int:
        """Run a real-time graph against the wall clock for ``seconds`` (other threads may
        publish meanwhile). Returns the scheduler steps taken."""
        return self._native.run_realtime(seconds)

    # -------------------------------------------------------------- looking

    @property
    def nodes(self) -> dict[str, Node]:
        """Nodes by name."""
        return dict(self._nodes)

    def node_stats(self) -> list[NodeStats]:
        """Per node: kind, inputs, outputs, parameters, counters and taints added or removed
        (``manyfold.query`` builds its answers from these)."""
        return self._native.nodes()

    def edge_stats(self) -> list[EdgeStats]:
        """Per edge: source, target, policy and counters."""
        return self._native.edges()

    def mailbox_stats(self) -> list[MailboxStats]:
        """Per mailbox: depth, capacity, overflow policy and counters."""
        return self._native.mailboxes()

    def scheduler_state(self) -> SchedulerStats:
        """Clock, epoch, ready work, timers, and the gated and expired guarded publishes."""
        return self._native.scheduler()


__all__ = [
    "CAPACITY_MAX",
    "SyntheticSource",
    "Link",
    "Partition",
    "Aggregate",
    "Idempotency",
    "LinkCapabilities",
    "WriteBinding",
    "Counter",
    "EdgeStats",
    "Envelope",
    "EnvelopeId",
    "ExpiredPublish",
    "GatedPublish",
    "MailboxStats",
    "NodeStats",
    "SchedulerStats",
    "Graph",
    "JoinClass",
    "Layer",
    "Mailbox",
    "Node",
    "Overflow",
    "Plane",
    "Producer",
    "PublishReceipt",
    "Route",
    "RunReport",
    "Subscription",
    "TimeSource",
    "Variant",
]
