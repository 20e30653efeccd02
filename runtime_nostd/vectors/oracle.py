"""An independent codec of link protocol v1 (``docs/wire.md`` section 2), written from the spec
in Python: the test oracle of the Rust core's v1 codec (``oracle_v11`` builds on it for v1.1).
It is not part of the ``manyfold`` package, whose host end runs the Rust core.

Every message is a CBOR array ``[kind, id, fields...]``. This module encodes with a small
deterministic CBOR writer (integers in their shortest form, floats always as 64-bit), and
decodes with ``cbor2`` plus the shape checks of the spec (the shared vectors in
``runtime_nostd/vectors/link.json`` hold both codecs to the same bytes).

>>> m = Message(7, Query(QueryKind.COUNTERS, 0))
>>> encode(m).hex()
'8406070300'
>>> decode(encode(m)) == m
True
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Union

import cbor2

from manyfold.graph.taints import Taint

VERSION = 1
MAX_MESSAGE_MIN = 64
NAME_LEN_MAX = 32
PAGE_LEN_MAX = 16

HELLO_LOCKSTEP = 1 << 0
HELLO_RESET = 1 << 1

CAP_EVENTS = 1 << 0
CAP_QUERIES = 1 << 1
CAP_LOCKSTEP = 1 << 2
CAP_UPLOAD = 1 << 3
CAP_SOURCES = 1 << 4
CAP_HEARTBEAT = 1 << 5

TAINT_NAMES = tuple(t.value for t in Taint)
"""Taint names by bit: bit ``i`` of an event's ``taints`` is ``TAINT_NAMES[i]`` (the bit order of
:class:`~manyfold.graph.taints.Taint`, the same on the host graph and on the wire)."""

DELIVERY_DROPPED = 1 << TAINT_NAMES.index("delivery_dropped")


def taint_names(bits: int) -> list[str]:
    """The names of the taints set in ``bits``."""
    return [name for i, name in enumerate(TAINT_NAMES) if bits >> i & 1]


class Kind(enum.IntEnum):
    HELLO = 1
    DESCRIBE = 2
    EVENT = 3
    ACK = 4
    NACK = 5
    QUERY = 6
    REPLY = 7
    HEARTBEAT = 8
    STEP = 9
    UPLOAD_BEGIN = 10
    UPLOAD_CHUNK = 11
    UPLOAD_COMMIT = 12
    UPLOAD_ABORT = 13
    RESUME = 14


class NackReason(enum.IntEnum):
    """Why a device refused a message; ``name.lower()`` is the spec's name."""

    DECODE_BAD_CBOR = 1
    DECODE_NOT_ARRAY = 2
    DECODE_UNKNOWN_KIND = 3
    DECODE_BAD_ARITY = 4
    DECODE_BAD_FIELD = 5
    DECODE_TOO_LONG = 6
    DECODE_TRAILING_BYTES = 7
    FRAME_BAD_CRC = 8
    FRAME_BAD_COBS = 9
    FRAME_SHORT = 10
    FRAME_OVERSIZE = 11
    KIND_UNEXPECTED = 12
    NO_SESSION = 13
    VERSION_UNSUPPORTED = 14
    MAX_MESSAGE_TOO_SMALL = 15
    ROUTE_UNKNOWN = 16
    ROUTE_NOT_INBOUND = 17
    VALUE_KIND_MISMATCH = 18
    SEQ_NOT_INCREASING = 19
    BUSY = 20
    STEP_BACKWARDS = 21
    NOT_LOCKSTEP = 22
    QUERY_UNKNOWN = 23
    QUERY_BAD_ARG = 24
    UPLOAD_UNSUPPORTED = 25
    UPLOAD_NOT_BEGUN = 26
    UPLOAD_BAD_OFFSET = 27
    UPLOAD_TOO_LARGE = 28
    UPLOAD_DIGEST_MISMATCH = 29
    IMAGE_INVALID = 30
    NO_IMAGE = 31


class QueryKind(enum.IntEnum):
    ROUTES = 0
    NODES = 1
    SOURCES = 2
    COUNTERS = 3
    FLOW = 4
    TAINTS = 5
    LATEST = 6
    BOARD = 7


IMAGE_ERRORS = (
    "header_empty", "header_bad_magic", "header_bad_version", "header_bad_length", "header_bad_crc",
    "decode_bad_cbor", "decode_bad_shape", "decode_bad_value", "decode_bad_name", "decode_trailing_bytes",
    "load_too_many_routes", "load_too_many_sources", "load_too_many_nodes", "load_too_many_windows",
    "load_mailbox_too_deep", "load_window_too_large",
    "check_missing_route", "check_missing_node", "check_missing_mailbox", "check_node_inputs",
    "check_mailbox_shared", "check_two_producers", "check_not_topological", "check_kind_mismatch",
    "check_bad_param",
)  # fmt: skip
"""Image error names by code - 1 (a describe's ``image_status``; 0 means loaded)."""


def image_status_name(code: int) -> str:
    """``"loaded"`` for 0, else the image error's name."""
    if code == 0:
        return "loaded"
    return IMAGE_ERRORS[code - 1] if 0 < code <= len(IMAGE_ERRORS) else f"unknown_{code}"


class LinkDecodeError(ValueError):
    """Bytes that are not a valid link message. ``kind`` is the spec's error name
    (``decode_bad_cbor``, ``decode_unknown_kind``, ...), the same as the Rust ``LinkError``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# --- message bodies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lineage:
    """``count`` consecutive events of ``route`` from ``first_seq``; ``count == 0``: a source event."""

    route: int = 0
    first_seq: int = 0
    count: int = 0


Value = Union[float, int, bool]


@dataclass(frozen=True)
class Hello:
    version: int = VERSION
    max_message: int = 256
    session: int = 0
    flags: int = 0
    time_us: int = 0


@dataclass(frozen=True)
class Describe:
    version: int
    max_message: int
    capabilities: int
    board: str
    image_status: int
    manifest_id: bytes | None
    partition: str
    session: int
    flags: int
    ref: int | None = None
    """(v1.1) The hello it answers."""
    time_us: int = 0
    """(v1.1) The device's time."""
    epoch: int = 0
    """(v1.1) The control epoch in force."""

    @property
    def image_status_name(self) -> str:
        return image_status_name(self.image_status)

    @property
    def lockstep(self) -> bool:
        return bool(self.flags & HELLO_LOCKSTEP)


@dataclass(frozen=True)
class Event:
    route: int
    seq: int
    time_us: int
    epoch: int
    taints: int
    lineage: Lineage
    value: Value

    @property
    def taint_names(self) -> list[str]:
        return taint_names(self.taints)


@dataclass(frozen=True)
class Ack:
    ref: int
    info: int = 0


@dataclass(frozen=True)
class Nack:
    ref: int | None
    reason: NackReason
    detail: int = 0


@dataclass(frozen=True)
class Query:
    what: int
    arg: int = 0


@dataclass(frozen=True)
class RouteInfo:
    id: int
    schema: bytes
    kind: int
    link: int
    seq: int
    taints: int | None = None
    """(v1.1) The route's declared taints."""


@dataclass(frozen=True)
class NodeInfo:
    op: int
    input: int
    output: int
    output2: int | None
    capacity: int
    overflow: int


@dataclass(frozen=True)
class SourceInfo:
    route: int
    waveform: int
    period_us: int
    phase_us: int


@dataclass(frozen=True)
class FlowInfo:
    node: int
    depth: int
    capacity: int
    accepted: int
    delivered: int
    dropped: int
    refused: int
    depth_max: int


@dataclass(frozen=True)
class TaintInfo:
    route: int
    seen: int
    pending: int


COUNTER_NAMES = (
    "frames", "frame_crc_errors", "frame_cobs_errors", "frame_short", "frame_oversize",
    "messages_rx", "messages_tx", "nacks_tx", "rx_gaps", "sessions", "resumes", "stale",
    "events_in", "events_out", "events_unsent", "mailbox_dropped", "late", "sampled", "steps",
    "source_events",
)  # fmt: skip
"""The fields of a counters reply, in wire order."""


@dataclass(frozen=True)
class Page:
    what: QueryKind
    total: int
    start: int
    items: tuple


@dataclass(frozen=True)
class Capacities:
    routes: int
    nodes: int
    sources: int
    windows: int
    mailbox_depth: int
    window_slots: int


@dataclass(frozen=True)
class BoardInfo:
    uptime_ms: int
    stack_peak: int
    rx_dropped: int
    lockstep: bool
    time_us: int
    capacities: Capacities


@dataclass(frozen=True)
class Reply:
    ref: int
    what: QueryKind
    body: object
    """A :class:`Page`, a dict of counters, an :class:`Event` or None (latest), or :class:`BoardInfo`."""


@dataclass(frozen=True)
class Heartbeat:
    time_us: int = 0


@dataclass(frozen=True)
class Step:
    to_us: int
    epoch: int = 0
    seen_us: int = 0
    """(v1.1) The largest device time the host received."""


@dataclass(frozen=True)
class UploadBegin:
    total_len: int
    sha256: bytes


@dataclass(frozen=True)
class UploadChunk:
    offset: int
    data: bytes


@dataclass(frozen=True)
class UploadCommit:
    pass


@dataclass(frozen=True)
class UploadAbort:
    pass


@dataclass(frozen=True)
class Resume:
    pass


Body = Union[
    Hello, Describe, Event, Ack, Nack, Query, Reply, Heartbeat, Step, UploadBegin, UploadChunk,
    UploadCommit, UploadAbort, Resume,
]  # fmt: skip

_KIND_OF = {
    Hello: Kind.HELLO, Describe: Kind.DESCRIBE, Event: Kind.EVENT, Ack: Kind.ACK, Nack: Kind.NACK,
    Query: Kind.QUERY, Reply: Kind.REPLY, Heartbeat: Kind.HEARTBEAT, Step: Kind.STEP,
    UploadBegin: Kind.UPLOAD_BEGIN, UploadChunk: Kind.UPLOAD_CHUNK, UploadCommit: Kind.UPLOAD_COMMIT,
    UploadAbort: Kind.UPLOAD_ABORT, Resume: Kind.RESUME,
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One message: the sender's link id and the body."""

    id: int
    body: Body = field()

    @property
    def kind(self) -> Kind:
        return _KIND_OF[type(self.body)]


# --- encoding ------------------------------------------------------------------------------------


def _head(out: bytearray, major: int, n: int) -> None:
    m = major << 5
    if n < 24:
        out.append(m | n)
    elif n <= 0xFF:
        out += bytes((m | 24, n))
    elif n <= 0xFFFF:
        out.append(m | 25)
        out += n.to_bytes(2, "big")
    elif n <= 0xFFFF_FFFF:
        out.append(m | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(m | 27)
        out += n.to_bytes(8, "big")


def cbor(value: object) -> bytes:
    """The deterministic encoding of the subset: shortest integers, 64-bit floats (NaN too),
    definite lengths, no maps."""
    out = bytearray()
    _write(out, value)
    return bytes(out)


def _write(out: bytearray, v: object) -> None:
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if not -(2**64) <= v < 2**64:
            raise ValueError(f"integer {v} does not fit CBOR's 64-bit arguments")
        if v >= 0:
            _head(out, 0, v)
        else:
            _head(out, 1, -1 - v)
    elif isinstance(v, float):
        out.append(0xFB)
        out += struct.pack(">d", v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        _head(out, 2, len(b))
        out += b
    elif isinstance(v, str):
        b = v.encode("utf-8")
        _head(out, 3, len(b))
        out += b
    elif isinstance(v, (list, tuple)):
        _head(out, 4, len(v))
        for item in v:
            _write(out, item)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} in the link's CBOR subset")


def _event_fields(e: Event) -> list:
    value = e.value
    if not isinstance(value, (bool, int, float)):
        raise TypeError(f"an event value is a float, int or bool, not {type(value).__name__}")
    lin = e.lineage
    return [e.route, e.seq, e.time_us, e.epoch, e.taints, [lin.route, lin.first_seq, lin.count], value]


def _page_item(item: object) -> list:
    if isinstance(item, RouteInfo):
        extra = [] if item.taints is None else [item.taints]
        return [item.id, item.schema, item.kind, item.link, item.seq, *extra]
    if isinstance(item, NodeInfo):
        return [item.op, item.input, item.output, item.output2, item.capacity, item.overflow]
    if isinstance(item, SourceInfo):
        return [item.route, item.waveform, item.period_us, item.phase_us]
    if isinstance(item, FlowInfo):
        return [item.node, item.depth, item.capacity, item.accepted, item.delivered, item.dropped, item.refused, item.depth_max]
    if isinstance(item, TaintInfo):
        return [item.route, item.seen, item.pending]
    raise TypeError(f"not a page item: {item!r}")


def to_list(message: Message) -> list:
    """The message as the CBOR array it is on the wire."""
    b, head = message.body, [int(message.kind), message.id]
    if isinstance(b, Hello):
        return head + [b.version, b.max_message, b.session, b.flags, b.time_us]
    if isinstance(b, Describe):
        return head + [b.version, b.max_message, b.capabilities, b.board, b.image_status,
                       b.manifest_id or b"", b.partition, b.session, b.flags]  # fmt: skip
    if isinstance(b, Event):
        return head + _event_fields(b)
    if isinstance(b, Ack):
        return head + [b.ref, b.info]
    if isinstance(b, Nack):
        return head + [b.ref, int(b.reason), b.detail]
    if isinstance(b, Query):
        return head + [int(b.what), b.arg]
    if isinstance(b, Reply):
        head += [b.ref, int(b.what)]
        body = b.body
        if isinstance(body, Page):
            return head + [body.total, body.start, [_page_item(i) for i in body.items]]
        if b.what == QueryKind.COUNTERS:
            return head + [body[name] for name in COUNTER_NAMES]
        if b.what == QueryKind.LATEST:
            return head + [None if body is None else _event_fields(body)]
        if isinstance(body, BoardInfo):
            c = body.capacities
            caps = [c.routes, c.nodes, c.sources, c.windows, c.mailbox_depth, c.window_slots]
            return head + [body.uptime_ms, body.stack_peak, body.rx_dropped, body.lockstep, body.time_us, caps]
        raise TypeError(f"reply body {body!r} does not match {b.what!r}")
    if isinstance(b, Heartbeat):
        return head + [b.time_us]
    if isinstance(b, Step):
        return head + [b.to_us, b.epoch]
    if isinstance(b, UploadBegin):
        return head + [b.total_len, b.sha256]
    if isinstance(b, UploadChunk):
        return head + [b.offset, b.data]
    return head  # commit, abort, resume


def encode(message: Message) -> bytes:
    """The message's one encoding."""
    return cbor(to_list(message))


# --- decoding ------------------------------------------------------------------------------------


def _fail(kind: str, why: str):
    raise LinkDecodeError(kind, why)


def _uint(v: object, bits: int = 64, what: str = "field") -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**bits:
        _fail("decode_bad_field", f"{what} must be an unsigned {bits}-bit integer, got {v!r}")
    return v


def _int(v: object, what: str = "field") -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not -(2**63) <= v < 2**63:
        _fail("decode_bad_field", f"{what} must be a signed 64-bit integer, got {v!r}")
    return v


def _array(v: object, n: int, what: str) -> list:
    if not isinstance(v, list) or len(v) != n:
        _fail("decode_bad_field", f"{what} must be an array of {n}, got {v!r}")
    return v


def _name(v: object, what: str) -> str:
    if not isinstance(v, str):
        _fail("decode_bad_field", f"{what} must be text, got {v!r}")
    if len(v.encode()) > NAME_LEN_MAX:
        _fail("decode_too_long", f"{what} is longer than {NAME_LEN_MAX} bytes")
    return v


def _value(v: object) -> Value:
    if isinstance(v, (bool, float)):
        return v
    return _int(v, "value")


def _event(f: list) -> Event:
    lin = _array(f[5], 3, "lineage")
    return Event(
        route=_uint(f[0], 16, "route"), seq=_uint(f[1], 32, "seq"), time_us=_int(f[2], "time_us"),
        epoch=_uint(f[3], 32, "epoch"), taints=_uint(f[4], 32, "taints"),
        lineage=Lineage(_uint(lin[0], 16), _uint(lin[1], 32), _uint(lin[2], 32)), value=_value(f[6]),
    )  # fmt: skip


def _page(what: QueryKind, f: list) -> Page:
    items = f[2]
    if not isinstance(items, list):
        _fail("decode_bad_field", "page items must be an array")
    if len(items) > PAGE_LEN_MAX:
        _fail("decode_too_long", f"a page holds at most {PAGE_LEN_MAX} items")
    parsed = []
    for raw in items:
        if what == QueryKind.ROUTES:
            r = _array(raw, 6 if isinstance(raw, list) and len(raw) == 6 else 5, "route item")
            if not isinstance(r[1], bytes) or len(r[1]) != 8:
                _fail("decode_bad_field", "a route's schema is 8 bytes")
            taints = _uint(r[5], 32) if len(r) == 6 else None
            parsed.append(RouteInfo(_uint(r[0], 32), r[1], _uint(r[2], 8), _uint(r[3], 8), _uint(r[4], 32), taints))
        elif what == QueryKind.NODES:
            r = _array(raw, 6, "node item")
            out2 = None if r[3] is None else _uint(r[3], 16)
            parsed.append(NodeInfo(_uint(r[0], 8), _uint(r[1], 16), _uint(r[2], 16), out2, _uint(r[4], 16), _uint(r[5], 8)))
        elif what == QueryKind.SOURCES:
            r = _array(raw, 4, "source item")
            parsed.append(SourceInfo(_uint(r[0], 16), _uint(r[1], 8), _uint(r[2], 32), _uint(r[3], 32)))
        elif what == QueryKind.FLOW:
            r = _array(raw, 8, "flow item")
            parsed.append(FlowInfo(*(_uint(x, 32) for x in r)))
        else:
            r = _array(raw, 3, "taint item")
            parsed.append(TaintInfo(_uint(r[0], 16), _uint(r[1], 32), _uint(r[2], 32)))
    return Page(what, _uint(f[0], 16, "total"), _uint(f[1], 16, "start"), tuple(parsed))


_ARITY = {
    Kind.HELLO: 5, Kind.DESCRIBE: 9, Kind.EVENT: 7, Kind.ACK: 2, Kind.NACK: 3, Kind.QUERY: 2,
    Kind.HEARTBEAT: 1, Kind.STEP: 2, Kind.UPLOAD_BEGIN: 2, Kind.UPLOAD_CHUNK: 2,
    Kind.UPLOAD_COMMIT: 0, Kind.UPLOAD_ABORT: 0, Kind.RESUME: 0,
}  # fmt: skip
_REPLY_ARITY = {QueryKind.COUNTERS: len(COUNTER_NAMES), QueryKind.LATEST: 1, QueryKind.BOARD: 6}


def _scan(data: bytes, at: int, depth: int = 0) -> tuple[int, bool]:
    """Checks that one CBOR item starts at ``at`` and is well-formed; returns where it ends and
    whether it stays in the link's subset (no maps, tags, indefinite lengths or other simple
    values). Raises ``decode_bad_cbor`` when the bytes are cut short or malformed."""
    if depth > 16:
        _fail("decode_bad_field", "nested deeper than the protocol allows")
    if at >= len(data):
        _fail("decode_bad_cbor", "cut short")
    first = data[at]
    major, info = first >> 5, first & 0x1F
    at += 1
    if info < 24:
        arg = info
    elif info <= 27:
        n = 1 << (info - 24)
        if at + n > len(data):
            _fail("decode_bad_cbor", "cut short")
        arg = int.from_bytes(data[at : at + n], "big")
        at += n
    elif info == 31 and major in (2, 3, 4, 5):
        # Indefinite length: well-formed CBOR, but not in the subset. Walk it to find its end.
        while True:
            if at >= len(data):
                _fail("decode_bad_cbor", "cut short")
            if data[at] == 0xFF:
                return at + 1, False
            at, _ = _scan(data, at, depth + 1)
            if major == 5:
                at, _ = _scan(data, at, depth + 1)
    else:
        _fail("decode_bad_cbor", f"reserved additional information {info}")
    if major in (2, 3):
        if at + arg > len(data):
            _fail("decode_bad_cbor", "cut short")
        if major == 3:
            try:
                data[at : at + arg].decode("utf-8")
            except UnicodeDecodeError:
                _fail("decode_bad_cbor", "text is not UTF-8")
        return at + arg, True
    if major in (4, 5):
        subset = major == 4
        for _ in range(arg * (2 if major == 5 else 1)):
            at, ok = _scan(data, at, depth + 1)
            subset = subset and ok
        return at, subset
    if major == 6:
        at, _ = _scan(data, at, depth + 1)
        return at, False
    if major == 7:
        return at, info in (20, 21, 22, 25, 26, 27)
    return at, True  # integers


def decode(data: bytes) -> Message:
    """Decodes one message; raises :class:`LinkDecodeError` with the spec's error name."""
    data = bytes(data)
    end, subset = _scan(data, 0)
    if data[0] >> 5 != 4 or data[0] & 0x1F > 27:
        _fail("decode_not_array", "a message is a definite-length array [kind, id, ...]")
    try:
        item = cbor2.loads(data[:end])
    except Exception as error:  # cbor2 raises several types on values outside the subset
        _fail("decode_bad_field", str(error))
    if not isinstance(item, list) or len(item) < 2:
        _fail("decode_not_array", "a message is an array [kind, id, ...]")
    kind_code, msg_id, *f = item
    if isinstance(kind_code, bool) or not isinstance(kind_code, int) or kind_code < 0:
        _fail("decode_not_array", "the first item is the kind, an unsigned integer")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int) or not 0 <= msg_id < 2**32:
        _fail("decode_not_array", "the second item is the id, an unsigned 32-bit integer")
    try:
        kind = Kind(kind_code)
    except ValueError:
        _fail("decode_unknown_kind", f"kind {kind_code}")
    if kind in _ARITY and len(f) != _ARITY[kind]:
        _fail("decode_bad_arity", f"{kind.name.lower()} has {_ARITY[kind]} fields, got {len(f)}")
    if not subset:
        _fail("decode_bad_field", "a field uses CBOR outside the protocol's subset")
    message = _decode_fields(kind, msg_id, f)
    if end != len(data):
        _fail("decode_trailing_bytes", f"{len(data) - end} bytes after the message")
    return message


def _decode_fields(kind: Kind, msg_id: int, f: list) -> Message:
    body: Body
    if kind == Kind.HELLO:
        body = Hello(_uint(f[0], 32), _uint(f[1], 32), _uint(f[2], 32), _uint(f[3], 8), _int(f[4]))
    elif kind == Kind.DESCRIBE:
        manifest = f[5]
        if not isinstance(manifest, bytes) or len(manifest) not in (0, 32):
            _fail("decode_bad_field", "manifest_id is 32 bytes, or empty")
        body = Describe(
            _uint(f[0], 32), _uint(f[1], 32), _uint(f[2], 32), _name(f[3], "board"), _uint(f[4], 8),
            manifest or None, _name(f[6], "partition"), _uint(f[7], 32), _uint(f[8], 8),
        )  # fmt: skip
    elif kind == Kind.EVENT:
        body = _event(f)
    elif kind == Kind.ACK:
        body = Ack(_uint(f[0], 32), _int(f[1]))
    elif kind == Kind.NACK:
        try:
            reason = NackReason(_uint(f[1], 8))
        except ValueError:
            _fail("decode_bad_field", f"unknown nack reason {f[1]}")
        body = Nack(None if f[0] is None else _uint(f[0], 32), reason, _uint(f[2], 32))
    elif kind == Kind.QUERY:
        body = Query(_uint(f[0], 8), _uint(f[1], 32))
    elif kind == Kind.REPLY:
        if len(f) < 2:
            _fail("decode_bad_arity", "a reply has ref and what")
        try:
            what = QueryKind(_uint(f[1], 8))
        except ValueError:
            _fail("decode_bad_field", f"unknown query kind {f[1]}")
        rest = f[2:]
        if len(rest) != _REPLY_ARITY.get(what, 3):
            _fail("decode_bad_arity", f"a {what.name.lower()} reply has {_REPLY_ARITY.get(what, 3)} fields")
        if what == QueryKind.COUNTERS:
            reply_body: object = {name: _uint(v, 32) for name, v in zip(COUNTER_NAMES, rest)}
        elif what == QueryKind.LATEST:
            reply_body = None if rest[0] is None else _event(_array(rest[0], 7, "event"))
        elif what == QueryKind.BOARD:
            c = _array(rest[5], 6, "capacities")
            if not isinstance(rest[3], bool):
                _fail("decode_bad_field", "lockstep is a bool")
            reply_body = BoardInfo(
                _uint(rest[0], 32), _uint(rest[1], 32), _uint(rest[2], 32), rest[3], _int(rest[4]),
                Capacities(*(_uint(x, 16) for x in c)),
            )
        else:
            reply_body = _page(what, rest)
        body = Reply(_uint(f[0], 32), what, reply_body)
    elif kind == Kind.HEARTBEAT:
        body = Heartbeat(_int(f[0]))
    elif kind == Kind.STEP:
        body = Step(_int(f[0]), _uint(f[1], 32))
    elif kind == Kind.UPLOAD_BEGIN:
        if not isinstance(f[1], bytes) or len(f[1]) != 32:
            _fail("decode_bad_field", "sha256 is 32 bytes")
        body = UploadBegin(_uint(f[0], 32), f[1])
    elif kind == Kind.UPLOAD_CHUNK:
        if not isinstance(f[1], bytes):
            _fail("decode_bad_field", "chunk data is a byte string")
        body = UploadChunk(_uint(f[0], 32), f[1])
    elif kind == Kind.UPLOAD_COMMIT:
        body = UploadCommit()
    elif kind == Kind.UPLOAD_ABORT:
        body = UploadAbort()
    else:
        body = Resume()
    return Message(msg_id, body)
