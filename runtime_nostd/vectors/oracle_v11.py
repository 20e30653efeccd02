"""An independent decoder and encoder of link protocol v1.1 (docs/wire.md section 2), written
from the spec in Python: the test oracle for the Rust core's v1.1 codec and reference rules.

It is not part of the ``manyfold`` package (the package never parses the wire; the Rust core
does). Tests use it to read what crossed a link and check it against what the host decoded;
``generate.py`` uses it to write the v1.1 vectors.

- :class:`Refs`: what a receiver holds to expand short-form events (per route: last seq and
  declared taints; the largest device time; the epoch in force).
- :func:`decode_device`: one message a device sent (a batch of events gives several), updating
  the references as a host does.
- :func:`encode_event` / :func:`encode_host` / :func:`decode_host`: the other directions.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field, replace

import cbor2

import oracle as v1
from oracle import (
    Ack, BoardInfo, Capacities, Describe, Event, Heartbeat, Hello, Kind, Lineage, LinkDecodeError, Message, Nack,
    NackReason, Page, Query, QueryKind, Reply, Resume, RouteInfo, Step, UploadAbort, UploadBegin, UploadChunk,
    UploadCommit,
)  # fmt: skip

VERSION = 2
KIND_BASE = 0xE0
FULL, TAINTS, LINEAGE, ROUTE = 0x40, 0x20, 0x10, 0x0F
ESCAPE = 15
HALF = 1 << 15


def fail(kind: str, why: str):
    raise LinkDecodeError(kind, why)


@dataclass
class RouteRef:
    seq: int | None = None
    declared: int | None = None


@dataclass
class Refs:
    """A receiver's references (docs/wire.md 2.5)."""

    routes: dict[int, RouteRef] = field(default_factory=dict)
    time_us: int | None = None
    epoch: int = 0

    def route(self, index: int) -> RouteRef:
        return self.routes.setdefault(index, RouteRef())

    def seen(self, t: int) -> None:
        self.time_us = t if self.time_us is None else max(self.time_us, t)


def nearest(reference: int, low: int) -> int:
    """The value nearest ``reference`` (within -32768 .. 32767) whose low 16 bits are ``low``."""
    delta = (low - reference) % 65536
    if delta >= HALF:
        delta -= 65536
    return reference + delta


# --- CBOR items one after another -----------------------------------------------------------------


class Stream:
    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data = data
        self.at = at

    def done(self) -> bool:
        return self.at >= len(self.data)

    def raw(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            fail("decode_bad_cbor", "cut short")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def item(self):
        if self.done():
            fail("decode_bad_cbor", "cut short")
        end, subset = v1._scan(self.data, self.at)
        if not subset:
            fail("decode_bad_field", "CBOR outside the protocol's subset")
        value = cbor2.load(io.BytesIO(self.data[self.at : end]))
        self.at = end
        return value

    def uint(self, bits: int = 64, what: str = "field") -> int:
        return v1._uint(self.item(), bits, what)

    def int(self, what: str = "field") -> int:
        return v1._int(self.item(), what)


# --- events -------------------------------------------------------------------------------------


def encode_value(value) -> bytes:
    """A value: floats in the shortest of 16, 32 and 64 bits that is exact (NaN: f9 7e 00)."""
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return v1.cbor(value)
    if value != value:
        return b"\xf9\x7e\x00"
    for fmt, head in (("e", 0xF9), ("f", 0xFA)):
        try:
            packed = struct.pack(">" + fmt, value)
        except OverflowError:
            continue
        if struct.unpack(">" + fmt, packed)[0] == value:
            return bytes([head]) + packed
    return b"\xfb" + struct.pack(">d", value)


def encode_event(e: Event, *, short: bool, taints: bool) -> bytes:
    """One compact event (short: seq and ms time as 16-bit little-endian fields)."""
    head = min(e.route, ESCAPE) | (0 if short else FULL) | (TAINTS if taints else 0) | (LINEAGE if e.lineage.count else 0)
    out = bytearray([head])
    if e.route >= ESCAPE:
        out += v1.cbor(e.route)
    if short:
        assert e.time_us % 1000 == 0
        out += struct.pack("<HH", e.seq % 65536, (e.time_us // 1000) % 65536)
    else:
        out += v1.cbor(e.seq) + v1.cbor(e.time_us)
    if taints:
        out += v1.cbor(e.taints)
    if e.lineage.count:
        out += v1.cbor(e.lineage.route) + v1.cbor(e.lineage.first_seq - e.seq) + v1.cbor(e.lineage.count)
    return bytes(out) + encode_value(e.value)


def _read_event(s: Stream, refs: Refs, *, update: bool = True, declared_default: int | None = None) -> Event | tuple[str, int]:
    head = s.raw(1)[0]
    if head & 0x80:
        fail("decode_bad_field", "an event head is below 0x80")
    route = head & ROUTE
    if route == ESCAPE:
        route = s.uint(16, "route")
        if route < ESCAPE:
            fail("decode_bad_field", "routes below 15 are in the head")
    if head & FULL:
        seq, time_us = s.uint(32, "seq"), s.int("time_us")
        if seq == 0:
            fail("decode_bad_field", "seq starts at 1")
        low = None
    else:
        low = struct.unpack("<HH", s.raw(4))
    taints = s.uint(32, "taints") if head & TAINTS else None
    lineage = None
    if head & LINEAGE:
        lineage = (s.uint(16), s.int(), s.uint(32))
        if lineage[2] == 0:
            fail("decode_bad_field", "a source event has no lineage field")
    value = s.item()
    if not isinstance(value, (bool, int, float)):
        fail("decode_bad_field", "a value is a float, an int or a bool")
    ref = refs.route(route)
    if low is not None:
        if ref.seq is None or refs.time_us is None:
            return ("missing", route)
        seq = nearest(ref.seq, low[0])
        time_us = nearest(refs.time_us // 1000, low[1]) * 1000
    if taints is None:
        taints = ref.declared if ref.declared is not None else declared_default
        if taints is None:
            return ("missing", route)
    lin = Lineage() if lineage is None else Lineage(lineage[0], seq + lineage[1], lineage[2])
    if update:
        refs.seen(time_us)
        ref.seq = seq if ref.seq is None else max(ref.seq, seq)
    return Event(route, seq, time_us, refs.epoch, taints, lin, value)


# --- device -> host -----------------------------------------------------------------------------


def decode_device(data: bytes, refs: Refs) -> list:
    """What a v1.1 device sent: a list of messages (one per event of a batch; an event that
    cannot be expanded is ``("missing", route)``). Updates ``refs`` as a host does."""
    data = bytes(data)
    if not data:
        fail("decode_bad_cbor", "empty")
    first = data[0]
    if first < 0x80:
        s = Stream(data)
        out = []
        while not s.done():
            e = _read_event(s, refs)
            out.append(e if isinstance(e, tuple) else Message(0, e))
        return out
    if first >> 5 == 4:
        return [v1.decode(data)]  # the nack keeps the v1 layout
    if first == KIND_BASE + Kind.HEARTBEAT:
        s = Stream(data, 1)
        t = s.int()
        _end(s)
        refs.seen(t)
        return [Message(0, Heartbeat(t))]
    kind = _kind(first)
    s = Stream(data, 2)
    ref = data[1] if len(data) > 1 else fail("decode_bad_cbor", "cut short")
    if kind == Kind.DESCRIBE:
        f = [s.item() for _ in range(11)]
        body = Describe(
            v1._uint(f[0], 32), v1._uint(f[1], 32), v1._uint(f[2], 32), v1._name(f[3], "board"), v1._uint(f[4], 8),
            f[5] or None, v1._name(f[6], "partition"), v1._uint(f[7], 32), v1._uint(f[8], 8),
            ref=ref, time_us=v1._int(f[9]), epoch=v1._uint(f[10], 32),
        )  # fmt: skip
        refs.seen(body.time_us)
        refs.time_us = body.time_us
        refs.epoch = body.epoch
        for r in refs.routes.values():
            r.declared = None
    elif kind == Kind.ACK:
        body = Ack(ref, s.int())
        refs.seen(body.info)
    elif kind == Kind.REPLY:
        body = _reply(s, ref, refs)
    else:
        fail("decode_unexpected_kind", kind.name.lower())
    _end(s)
    return [Message(0, body)]


def _kind(first: int) -> Kind:
    """The kind of a message that starts with a kind byte (0xe0 and above)."""
    if first < KIND_BASE:
        fail("decode_not_array", f"first byte {first:#04x} is no kind")
    try:
        return Kind(first - KIND_BASE)
    except ValueError:
        fail("decode_unknown_kind", f"kind {first - KIND_BASE}")


def _end(s: Stream) -> None:
    if not s.done():
        fail("decode_trailing_bytes", f"{len(s.data) - s.at} bytes after the message")


def _reply(s: Stream, ref: int, refs: Refs) -> Reply:
    what = QueryKind(s.uint(8))
    if what == QueryKind.COUNTERS:
        body: object = {name: s.uint(32) for name in v1.COUNTER_NAMES}
    elif what == QueryKind.LATEST:
        body = None
        if not s.done():
            e = _read_event(s, refs, update=False)
            if isinstance(e, tuple):
                fail("decode_no_reference", f"route {e[1]}")
            epoch = s.uint(32) if not s.done() else refs.epoch
            body = replace(e, epoch=epoch)
            refs.seen(e.time_us)
    elif what == QueryKind.BOARD:
        uptime, stack, dropped, lockstep, time_us = s.uint(32), s.uint(32), s.uint(32), s.item(), s.int()
        caps = v1._array(s.item(), 6, "capacities")
        body = BoardInfo(uptime, stack, dropped, lockstep, time_us, Capacities(*(v1._uint(x, 16) for x in caps)))
    else:
        total, start, items = s.uint(16), s.uint(16), s.item()
        body = v1._page(what, [total, start, items])
        if what == QueryKind.ROUTES:
            for i, r in enumerate(body.items):
                ref_ = refs.route(start + i)
                ref_.seq, ref_.declared = r.seq, r.taints
    return Reply(ref, what, body)


# --- host -> device -----------------------------------------------------------------------------


def encode_host(msg_id: int, body) -> bytes:
    """A host message in the v1.1 layout (the hello in the v1 layout)."""
    if isinstance(body, Hello):
        return v1.encode(Message(msg_id, body))
    head = lambda kind: bytes([KIND_BASE + kind, msg_id & 0xFF])  # noqa: E731
    if isinstance(body, Event):
        plain = replace(body, lineage=Lineage())
        return head(Kind.EVENT) + encode_event(plain, short=False, taints=bool(body.taints))
    if isinstance(body, Query):
        return head(Kind.QUERY) + v1.cbor(body.what) + v1.cbor(body.arg)
    if isinstance(body, Heartbeat):
        return head(Kind.HEARTBEAT) + v1.cbor(body.time_us)
    if isinstance(body, Step):
        return head(Kind.STEP) + v1.cbor(body.to_us) + v1.cbor(body.epoch) + v1.cbor(body.seen_us)
    if isinstance(body, UploadBegin):
        return head(Kind.UPLOAD_BEGIN) + v1.cbor(body.total_len) + v1.cbor(body.sha256)
    if isinstance(body, UploadChunk):
        return head(Kind.UPLOAD_CHUNK) + v1.cbor(body.offset) + v1.cbor(body.data)
    kind = {UploadCommit: Kind.UPLOAD_COMMIT, UploadAbort: Kind.UPLOAD_ABORT, Resume: Kind.RESUME}[type(body)]
    return head(kind)


def decode_host(data: bytes) -> Message:
    """A host message as a v1.1 device reads it."""
    data = bytes(data)
    if data and data[0] >> 5 == 4:
        # Only the hello keeps the v1 layout from the host.
        if len(data) > 1 and data[1] != Kind.HELLO:
            fail("decode_unknown_kind", "a v1.1 host sends arrays only as hellos")
        return v1.decode(data)
    if not data:
        fail("decode_bad_cbor", "empty")
    kind = _kind(data[0])
    if len(data) < 2:
        fail("decode_bad_cbor", "cut short before the id")
    msg_id, s = data[1], Stream(data, 2)
    if kind == Kind.EVENT:
        # A host event without a taints field has none (host routes declare none).
        e = _read_event(s, Refs(routes={}), update=False, declared_default=0)
        if isinstance(e, tuple) or e.lineage.count:
            fail("decode_bad_field", "a host event is full form, without lineage")
        body = e
    elif kind == Kind.QUERY:
        body = Query(s.uint(8), s.uint(32))
    elif kind == Kind.HEARTBEAT:
        body = Heartbeat(s.int())
    elif kind == Kind.STEP:
        body = Step(s.int(), s.uint(32), s.int())
    elif kind == Kind.UPLOAD_BEGIN:
        body = UploadBegin(s.uint(32), s.item())
    elif kind == Kind.UPLOAD_CHUNK:
        body = UploadChunk(s.uint(32), s.item())
    elif kind in (Kind.UPLOAD_COMMIT, Kind.UPLOAD_ABORT, Kind.RESUME):
        body = {Kind.UPLOAD_COMMIT: UploadCommit, Kind.UPLOAD_ABORT: UploadAbort, Kind.RESUME: Resume}[kind]()
    else:
        fail("decode_unexpected_kind", kind.name.lower())
    _end(s)
    return Message(msg_id, body)


__all__ = ["Refs", "decode_device", "decode_host", "encode_event", "encode_host", "encode_value", "nearest"]
_ = (Nack, NackReason, Page, RouteInfo)


def kind_of(data: bytes) -> Kind:
    """The kind of a message of either direction, from its first byte (a batch of events is
    ``Kind.EVENT``)."""
    first = data[0]
    if first < 0x80:
        return Kind.EVENT
    if first >> 5 == 4:
        return v1.decode(data).kind
    return Kind(first - KIND_BASE)
