"""Partition images (``docs/wire.md`` section 3) from a typed spec.

A :class:`PartitionSpec` lists a partition's routes, synthetic sources, operators and link
routes by name; :meth:`PartitionSpec.encode` checks it and returns the image a device loads::

    header = b"MFPI" | 0x01 | 3 reserved zero bytes | body length (u32 LE) | crc32c(body) (u32 LE)
    body   = [format, manifest_id, partition, routes, sources, nodes, mailboxes, edges, links, names]

The encoding is deterministic: the same spec gives the same bytes, on any machine. Operators are
written in a topological order (each after the operators that feed it, otherwise in the order
given), and a spec the device would refuse is refused here first, with a sentence naming the
route or operator at fault.

>>> spec = PartitionSpec(
...     name="demo",
...     routes=[RouteSpec("read.logical.demo.probe.raw.meta.v1"), RouteSpec("read.logical.demo.probe.celsius.meta.v1")],
...     sources=[Source("read.logical.demo.probe.raw.meta.v1", period_us=100_000, center=20.0)],
...     operators=[Scale("read.logical.demo.probe.raw.meta.v1", "read.logical.demo.probe.celsius.meta.v1", 0.5, 1.0)],
...     to_host=["read.logical.demo.probe.celsius.meta.v1"],
... )
>>> image = spec.encode()
>>> image[:4], len(image) == 16 + int.from_bytes(image[8:12], "little")
(b'MFPI', True)
>>> spec.encode() == image
True
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Union

import cbor2

from manyfold.framing import crc32c

MAGIC = b"MFPI"
FORMAT = 1
HEADER_LEN = 16
PARTITION_NAME_MAX = 32


class ImageSpecError(ValueError):
    """A partition spec that cannot become an image (or that a device would refuse)."""


class ValueKind(enum.IntEnum):
    FLOAT = 0
    INT = 1
    BOOL = 2


class Overflow(enum.IntEnum):
    BLOCK = 0
    DROP_OLDEST = 1
    DROP_NEWEST = 2
    REJECT = 3


class Aggregate(enum.IntEnum):
    COUNT = 0
    SUM = 1
    MEAN = 2
    MIN = 3
    MAX = 4


class Waveform(enum.IntEnum):
    CONSTANT = 0
    TRIANGLE = 1
    RANDOM_WALK = 2


class Direction(enum.IntEnum):
    TO_HOST = 1
    FROM_HOST = 2


class Op(enum.IntEnum):
    THRESHOLD = 0
    DEADBAND = 1
    SCALE = 2
    COUNT_WINDOW = 3
    TIME_WINDOW = 4
    RATE_LIMIT = 5
    LATEST = 6
    WRITE_BINDING = 7


def route_id(name: str) -> int:
    """A route's id on a device: the first 4 bytes of SHA-256 over its printed name, big-endian."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _scalar_schema_hash(kind: ValueKind) -> bytes:
    from manyfold.graph.schema import BOOL, FLOAT, INT

    return {ValueKind.FLOAT: FLOAT, ValueKind.INT: INT, ValueKind.BOOL: BOOL}[kind].hash


@dataclass(frozen=True)
class RouteSpec:
    """A route of the partition. ``name`` is its printed route; ``schema_hash`` defaults to the
    hash of the scalar schema of ``kind`` (``manyfold.graph``'s ``FLOAT``, ``INT`` or ``BOOL``);
    the image keeps its first 8 bytes."""

    name: str
    kind: ValueKind = ValueKind.FLOAT
    schema_hash: bytes | None = None

    @property
    def id(self) -> int:
        return route_id(self.name)

    def schema8(self) -> bytes:
        full = self.schema_hash if self.schema_hash is not None else _scalar_schema_hash(self.kind)
        if len(full) < 8:
            raise ImageSpecError(f"route {self.name}: a schema hash has at least 8 bytes, got {len(full)}")
        return bytes(full[:8])


@dataclass(frozen=True)
class Mailbox:
    """The bounded queue in front of an operator."""

    capacity: int = 2
    overflow: Overflow = Overflow.DROP_OLDEST


@dataclass(frozen=True)
class Source:
    """A synthetic seeded source (emulated boards): a value every ``period_us`` from
    ``phase_us`` on. ``TRIANGLE`` goes between ``center - amplitude`` and ``center + amplitude``
    over ``cycle`` values; ``noise`` adds uniform noise in ``[-noise, noise)`` (and marks events
    ``det_seeded_entropy``); ``RANDOM_WALK`` steps by up to ``noise`` within ``center ± amplitude``."""

    route: str
    period_us: int
    waveform: Waveform = Waveform.CONSTANT
    center: float = 0.0
    amplitude: float = 0.0
    cycle: int = 1
    noise: float = 0.0
    seed: int = 0
    phase_us: int = 0


@dataclass(frozen=True)
class Threshold:
    """Passes values ``above`` a limit, ``below`` one, ``inside`` or ``outside`` a ``(low, high)``
    range (exactly one of the four)."""

    input: str
    output: str
    above: float | None = None
    below: float | None = None
    inside: tuple[float, float] | None = None
    outside: tuple[float, float] | None = None
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class Deadband:
    input: str
    output: str
    band: float
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class Scale:
    """``value * scale + offset``."""

    input: str
    output: str
    scale: float = 1.0
    offset: float = 0.0
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class CountWindow:
    """The last ``size`` values, every ``step`` values, as an aggregate."""

    input: str
    output: str
    size: int
    step: int = 1
    aggregate: Aggregate = Aggregate.MEAN
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class TimeWindow:
    """Windows of ``width_us`` every ``slide_us`` (tumbling when equal) on event time, closed by
    the watermark (the largest event time seen), not by the device's clock."""

    input: str
    output: str
    width_us: int
    slide_us: int | None = None
    aggregate: Aggregate = Aggregate.MEAN
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_events`` per ``interval_us`` (token bucket on event time)."""

    input: str
    output: str
    max_events: int
    interval_us: int
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class Latest:
    """At most one value per ``period_us``: the latest (coalescing is counted and tainted)."""

    input: str
    output: str
    period_us: int
    mailbox: Mailbox = Mailbox()


@dataclass(frozen=True)
class WriteBinding:
    """A setting written by the host (``desired``), applied by the device's actuator
    ``apply_us`` after the first desired value of a pending write (newer ones replace it:
    ``delivery_coalesced``), reported on ``reported`` then ``effective``; while a write is on
    its way, each desired value re-emits the setting in effect marked
    ``coherence_write_pending`` (docs/wire.md 3.3)."""

    desired: str
    effective: str
    reported: str
    apply_us: int = 0
    mailbox: Mailbox = Mailbox()

    @property
    def input(self) -> str:
        return self.desired

    @property
    def output(self) -> str:
        return self.effective


Operator = Union[Threshold, Deadband, Scale, CountWindow, TimeWindow, RateLimit, Latest, WriteBinding]


def _outputs(op: Operator) -> list[str]:
    return [op.effective, op.reported] if isinstance(op, WriteBinding) else [op.output]


def _params(op: Operator, index: dict[str, int]) -> list:
    """``[op, out, params...]`` of docs/wire.md 3.4."""
    out = index[op.output]
    if isinstance(op, Threshold):
        given = [(m, v) for m, v in (("above", op.above), ("below", op.below), ("inside", op.inside), ("outside", op.outside)) if v is not None]
        if len(given) != 1:
            raise ImageSpecError(f"threshold {op.input} -> {op.output}: give exactly one of above, below, inside, outside")
        mode, v = given[0]
        a, b = (float(v), 0.0) if mode in ("above", "below") else (float(v[0]), float(v[1]))
        return [Op.THRESHOLD, out, ("above", "below", "inside", "outside").index(mode), a, b]
    if isinstance(op, Deadband):
        return [Op.DEADBAND, out, float(op.band)]
    if isinstance(op, Scale):
        return [Op.SCALE, out, float(op.scale), float(op.offset)]
    if isinstance(op, CountWindow):
        return [Op.COUNT_WINDOW, out, op.size, op.step, int(op.aggregate)]
    if isinstance(op, TimeWindow):
        return [Op.TIME_WINDOW, out, op.width_us, op.slide_us or op.width_us, int(op.aggregate)]
    if isinstance(op, RateLimit):
        return [Op.RATE_LIMIT, out, op.max_events, op.interval_us]
    if isinstance(op, Latest):
        return [Op.LATEST, out, op.period_us]
    if isinstance(op, WriteBinding):
        return [Op.WRITE_BINDING, out, index[op.reported], op.apply_us]
    raise ImageSpecError(f"not an operator: {op!r}")


@dataclass
class PartitionSpec:
    """One partition of a manifest, as a device runs it.

    ``manifest_id`` is the manifest's SHA-256 id; without one, the image's own id is used: the
    SHA-256 of its body with an all-zero manifest id (so it still names the partition's content).
    ``names=True`` keeps the printed route names in the image (devices skip them; tools read them).
    """

    name: str
    routes: list[RouteSpec]
    sources: list[Source] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    to_host: list[str] = field(default_factory=list)
    from_host: list[str] = field(default_factory=list)
    manifest_id: bytes | None = None
    names: bool = True

    def route_index(self, name: str) -> int:
        """The index of route ``name`` in the image's route table (its index on the link)."""
        for i, r in enumerate(self.routes):
            if r.name == name:
                return i
        raise ImageSpecError(f"partition {self.name}: no route named {name}")

    def route(self, name: str) -> RouteSpec:
        return self.routes[self.route_index(name)]

    def ordered_operators(self) -> list[Operator]:
        """The operators in the order the image lists them: each after those that feed it,
        otherwise in the order given. Raises on a cycle."""
        producer: dict[str, int] = {}
        for i, op in enumerate(self.operators):
            for out in _outputs(op):
                producer[out] = i
        done: list[int] = []
        placed: set[int] = set()
        for _ in range(len(self.operators)):
            for i, op in enumerate(self.operators):
                if i in placed:
                    continue
                feeder = producer.get(op.input)
                if feeder is None or feeder in placed:
                    done.append(i)
                    placed.add(i)
                    break
            else:
                stuck = [f"{op.input} -> {op.output}" for i, op in enumerate(self.operators) if i not in placed]
                raise ImageSpecError(f"partition {self.name}: the operators form a cycle: {', '.join(stuck)}")
        return [self.operators[i] for i in done]

    def _check(self) -> None:
        if not 1 <= len(self.name.encode()) <= PARTITION_NAME_MAX:
            raise ImageSpecError(f"partition name {self.name!r} must have 1 to {PARTITION_NAME_MAX} bytes")
        names = [r.name for r in self.routes]
        for n in names:
            if names.count(n) > 1:
                raise ImageSpecError(f"partition {self.name}: route {n} is declared twice")
        ids = {}
        for r in self.routes:
            if r.id in ids:
                raise ImageSpecError(f"routes {ids[r.id]} and {r.name} have the same 32-bit id; rename one")
            ids[r.id] = r.name
        producers: dict[str, str] = {}

        def produce(route: str, by: str) -> None:
            self.route_index(route)
            if route in producers:
                raise ImageSpecError(f"route {route} has two producers: {producers[route]} and {by}")
            producers[route] = by

        for s in self.sources:
            produce(s.route, f"source {s.route}")
            if self.route(s.route).kind != ValueKind.FLOAT:
                raise ImageSpecError(f"source {s.route}: sources publish floats; the route is {self.route(s.route).kind.name.lower()}")
            if s.period_us <= 0:
                raise ImageSpecError(f"source {s.route}: period_us must be positive")
        for op in self.operators:
            self.route_index(op.input)
            for out in _outputs(op):
                produce(out, f"{type(op).__name__} {op.input} -> {out}")
            if op.mailbox.capacity < 1:
                raise ImageSpecError(f"{type(op).__name__} {op.input} -> {op.output}: a mailbox holds at least 1 item")
        for r in self.from_host:
            produce(r, "the host")
        for r in self.to_host:
            self.route_index(r)

    def body(self, manifest_id: bytes | None = None) -> bytes:
        """The CBOR body (without header)."""
        self._check()
        index = {r.name: i for i, r in enumerate(self.routes)}
        ops = self.ordered_operators()
        routes = [[r.id, r.schema8(), int(r.kind)] for r in self.routes]
        sources = [
            [index[s.route], int(s.waveform), s.period_us, s.phase_us, s.seed, float(s.center), float(s.amplitude), s.cycle, float(s.noise)]
            for s in self.sources
        ]
        nodes = [_params(op, index) for op in ops]
        mailboxes = [[op.mailbox.capacity, int(op.mailbox.overflow)] for op in ops]
        edges = [[index[op.input], i, i] for i, op in enumerate(ops)]
        links = [[index[r], int(Direction.TO_HOST)] for r in self.to_host]
        links += [[index[r], int(Direction.FROM_HOST)] for r in self.from_host]
        names = [r.name for r in self.routes] if self.names else None
        mid = manifest_id if manifest_id is not None else self.manifest_id
        if mid is None:
            mid = self.image_id()
        if len(mid) != 32:
            raise ImageSpecError(f"a manifest id is 32 bytes (SHA-256), got {len(mid)}")
        # cbor2's default encoding is the image subset's: shortest integers, 64-bit floats,
        # definite lengths (docs/wire.md 3.2).
        return cbor2.dumps([FORMAT, bytes(mid), self.name, routes, sources, nodes, mailboxes, edges, links, names])

    def image_id(self) -> bytes:
        """SHA-256 of the body with an all-zero manifest id: the id used when none is given."""
        return hashlib.sha256(self.body(manifest_id=bytes(32))).digest()

    def encode(self) -> bytes:
        """The image: header and body."""
        return with_header(self.body())


def with_header(body: bytes) -> bytes:
    """``body`` behind the 16-byte image header."""
    return MAGIC + bytes([FORMAT, 0, 0, 0]) + len(body).to_bytes(4, "little") + crc32c(body).to_bytes(4, "little") + body


@dataclass(frozen=True)
class ImageInfo:
    """What an image says about itself (read back with :func:`read_image`)."""

    manifest_id: bytes
    partition: str
    routes: int
    sources: int
    nodes: int
    route_names: list[str] | None
    body_len: int


def read_image(image: bytes) -> ImageInfo:
    """Reads an image's header and body (for tools and tests; devices use the Rust decoder)."""
    if image[:4] != MAGIC or len(image) < HEADER_LEN or image[4] != FORMAT:
        raise ImageSpecError("not a v1 partition image (no MFPI header)")
    n = int.from_bytes(image[8:12], "little")
    body = image[HEADER_LEN : HEADER_LEN + n]
    if len(body) != n or crc32c(body) != int.from_bytes(image[12:16], "little"):
        raise ImageSpecError("the image body is cut short or fails its CRC")
    fields = cbor2.loads(body)
    return ImageInfo(fields[1], fields[2], len(fields[3]), len(fields[4]), len(fields[5]), fields[9], n)
