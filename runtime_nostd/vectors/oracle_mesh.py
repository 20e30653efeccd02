"""An independent decoder and encoder of the node link v1 (docs/wire.md section 4), written from
the spec in Python: the test oracle for the Rust core's codec (``manyfold_core::mesh``).

It is not part of the ``manyfold`` package (nodes speak the protocol through the Rust core).
Messages are plain dicts: ``{"kind": "hello", ...}`` with the field names of section 4.3;
:func:`decode` and :func:`encode` convert, :func:`seal` and :func:`unseal` add and check the
keyed layer of 4.8 (with Python's own ``hmac`` and ``hashlib``), and :func:`provided` computes the
capabilities of 4.7.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

VERSION = 1

KINDS = {
    0xC0: "hello", 0xC1: "welcome", 0xC2: "refuse", 0xC3: "events", 0xC4: "ack",
    0xC5: "keepalive", 0xC6: "bye", 0xC7: "fetch", 0xC8: "fetch_reply",
}  # fmt: skip
KIND_BYTES = {name: byte for byte, name in KINDS.items()}
SEALED = 0xCF

REFUSALS = {
    1: "version_unsupported", 2: "manifest_mismatch", 3: "link_mismatch", 4: "schema_mismatch",
    5: "route_mismatch", 6: "capability_unavailable", 7: "capabilities_differ", 8: "key_missing",
    9: "key_unsupported", 10: "mtu_too_small", 11: "no_session",
}  # fmt: skip
REFUSAL_CODES = {name: code for code, name in REFUSALS.items()}

# fetch_reply (4.10): 0x01 is the payload; these bytes say why it is not sent.
FETCH_REFUSAL_NAMES = {0: "not_held", 2: "too_large"}
FETCH_REFUSALS = {name: code for code, name in FETCH_REFUSAL_NAMES.items()}

CAPS = [(1, "ordered"), (2, "reliable"), (4, "durable"), (8, "authenticated"), (16, "lazy")]
MISSING_TAINT = {
    "ordered": "order_possibly_out_of_order", "reliable": "delivery_dropped",
    "authenticated": "trust_unverified", "durable": "det_nonreplayable", "lazy": None,
}  # fmt: skip

NAME_MAX = 32
ROUTES_MAX = 64
PARENTS_MAX = 64
SCHEMA_PREFIX = 8
LAZY, DOMAIN, TAINTS, PARENTS = 1, 2, 4, 8
MAC_LEN = 16
COUNTER_LEN = 8


class MeshDecodeError(ValueError):
    """A message a receiver must refuse; ``kind`` is the spec's error name."""

    def __init__(self, kind: str, why: str):
        super().__init__(f"{kind}: {why}")
        self.kind = kind


def _fail(kind: str, why: str):
    raise MeshDecodeError(kind, why)


# --- bytes --------------------------------------------------------------------------------------


def uvarint(n: int) -> bytes:
    if n < 0 or n >= 1 << 64:
        raise ValueError(f"varint out of range: {n}")
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def zigzag(n: int) -> bytes:
    return uvarint((n << 1) if n >= 0 else ((-n) << 1) - 1)


def _str(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b)) + b


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            _fail("decode_short", f"{n} bytes wanted, {self.left()} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def u32le(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def uvarint(self, limit: int = 64) -> int:
        value, shift, count = 0, 0, 0
        while True:
            b = self.byte()
            count += 1
            if count == 10 and b > 1:
                _fail("decode_bad_varint", "longer than 64 bits")
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b == 0 and count > 1:
                    _fail("decode_bad_varint", "not the shortest form")
                break
        if value >= 1 << limit:
            _fail("decode_bad_field", f"{value} does not fit {limit} bits")
        return value

    def zigzag(self) -> int:
        u = self.uvarint()
        return (u >> 1) if not u & 1 else -((u + 1) >> 1)

    def name(self) -> str:
        n = self.uvarint()
        if n > NAME_MAX:
            _fail("decode_too_long", f"name of {n} bytes")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            _fail("decode_bad_field", "name is not UTF-8")

    def end(self) -> None:
        if self.left():
            _fail("decode_trailing_bytes", f"{self.left()} bytes after the message")


# --- events -------------------------------------------------------------------------------------


def encode_event(e: dict) -> bytes:
    """One event as its entry body (without the skip): 4.4."""
    payload = e["payload"]
    flags = (LAZY if "lazy" in payload else 0) | (DOMAIN if e.get("domain") else 0)
    flags |= (TAINTS if e.get("taints") else 0) | (PARENTS if e.get("parents") else 0)
    out = bytearray([flags]) + uvarint(e["route"]) + uvarint(e["seq"]) + zigzag(e["time_us"])
    if e.get("domain"):
        out += uvarint(e["domain"])
    if e.get("taints"):
        out += uvarint(e["taints"])
    if e.get("parents"):
        out += uvarint(len(e["parents"]))
        for node, route, seq in e["parents"]:
            out += uvarint(node) + uvarint(route) + uvarint(seq)
    if "lazy" in payload:
        meta = bytes.fromhex(payload["lazy"]["meta"])
        out += uvarint(len(meta)) + meta + uvarint(payload["lazy"]["len"]) + bytes.fromhex(payload["lazy"]["digest"])
    else:
        data = bytes.fromhex(payload["inline"])
        out += uvarint(len(data)) + data
    return bytes(out)


def _decode_event(r: _Reader) -> dict:
    flags = r.byte()
    if flags & ~0x0F:
        _fail("decode_bad_field", f"event flags {flags:#x}")
    e = {"route": r.uvarint(32), "seq": r.uvarint(), "time_us": r.zigzag(), "domain": 0, "taints": 0, "parents": []}
    if flags & DOMAIN:
        e["domain"] = r.uvarint(16)
        if e["domain"] == 0:
            _fail("decode_bad_field", "domain 0 is written by leaving its flag clear")
    if flags & TAINTS:
        e["taints"] = r.uvarint(32)
        if e["taints"] == 0:
            _fail("decode_bad_field", "no taints is written by leaving their flag clear")
    if flags & PARENTS:
        n = r.uvarint()
        if n == 0:
            _fail("decode_bad_field", "no parents is written by leaving their flag clear")
        if n > PARENTS_MAX:
            _fail("decode_too_long", f"{n} parents")
        e["parents"] = [[r.uvarint(16), r.uvarint(32), r.uvarint()] for _ in range(n)]
    data = r.take(r.uvarint()).hex()
    if flags & LAZY:
        length = r.uvarint()
        e["payload"] = {"lazy": {"meta": data, "len": length, "digest": r.take(32).hex()}}
    else:
        e["payload"] = {"inline": data}
    return e


# --- messages -----------------------------------------------------------------------------------


def encode(m: dict) -> bytes:
    """A message dict to its bytes (4.3)."""
    kind = m["kind"]
    out = bytearray([KIND_BYTES[kind]])
    if kind in ("hello", "welcome", "refuse"):
        out += bytes([m["version"]]) + struct.pack("<I", m["session"]) + uvarint(m["incarnation"])
    else:
        out += struct.pack("<I", m["session"])
    if kind == "hello":
        out += uvarint(m["node"]) + bytes.fromhex(m["manifest_id"]) + bytes([m["requested"], m["transport"]])
        out += uvarint(m["mtu"]) + uvarint(m["lease_ms"]) + _str(m["name"]) + _str(m["link"])
        out += uvarint(len(m["routes"]))
        for route, prefix in m["routes"]:
            out += uvarint(route) + bytes.fromhex(prefix)
    elif kind == "welcome":
        out += uvarint(m["node"]) + bytes([m["provided"]]) + uvarint(m["mtu"]) + uvarint(m["lease_ms"]) + _str(m["name"])
    elif kind == "refuse":
        reason = m["reason"]  # a name, or the code of a reason this oracle does not know (4.5)
        out += bytes([reason if isinstance(reason, int) else REFUSAL_CODES[reason]]) + uvarint(m["detail"])
    elif kind == "events":
        out += uvarint(m["base"])
        prev = m["base"]
        for e in m["events"]:
            out += uvarint(e["link_seq"] - prev - 1) + encode_event(e)
            prev = e["link_seq"]
    elif kind == "ack":
        out += uvarint(m["cum"]) + uvarint(m["sack"])
    elif kind in ("fetch", "fetch_reply"):
        out += uvarint(m["route"]) + uvarint(m["seq"]) + uvarint(m["offset"])
        if kind == "fetch_reply":
            if m["payload"] is None:
                out += bytes([FETCH_REFUSALS[m["refused"]]])
            else:
                data = bytes.fromhex(m["payload"])
                out += b"\x01" + uvarint(m["total"]) + uvarint(len(data)) + data
    return bytes(out)


def decode(data: bytes) -> dict:
    """A message's bytes to its dict; raises :class:`MeshDecodeError` with the spec's name."""
    r = _Reader(data)
    first = r.byte()
    if first not in KINDS:
        _fail("decode_unknown_kind", f"first byte {first:#x}")
    kind = KINDS[first]
    m: dict = {"kind": kind}
    if kind in ("hello", "welcome", "refuse"):
        m["version"] = r.byte()
        m["session"] = r.u32le()
        m["incarnation"] = r.uvarint()
    else:
        m["session"] = r.u32le()
    if kind == "hello":
        m["node"] = r.uvarint(16)
        m["manifest_id"] = r.take(32).hex()
        m["requested"] = r.byte()
        m["transport"] = r.byte()
        m["mtu"] = r.uvarint(16)
        m["lease_ms"] = r.uvarint(32)
        m["name"] = r.name()
        m["link"] = r.name()
        n = r.uvarint()
        if n > ROUTES_MAX:
            _fail("decode_too_long", f"{n} routes")
        routes = []
        for _ in range(n):
            route = r.uvarint(32)
            if routes and route <= routes[-1][0]:
                _fail("decode_bad_field", "routes are sorted, each once")
            routes.append([route, r.take(SCHEMA_PREFIX).hex()])
        m["routes"] = routes
    elif kind == "welcome":
        m["node"] = r.uvarint(16)
        m["provided"] = r.byte()
        m["mtu"] = r.uvarint(16)
        m["lease_ms"] = r.uvarint(32)
        m["name"] = r.name()
    elif kind == "refuse":
        code = r.byte()
        # an unknown reason is still a well-formed refuse; the receiver ignores it (4.5)
        m["reason"] = REFUSALS.get(code, code)
        m["detail"] = r.uvarint(32)
    elif kind == "events":
        m["base"] = prev = r.uvarint()
        m["events"] = []
        if not r.left():
            _fail("decode_short", "a batch holds at least one event")
        while r.left():
            skip = r.uvarint()
            link_seq = prev + skip + 1
            if link_seq >= 1 << 64:
                _fail("decode_bad_field", "link sequence number beyond 64 bits")
            e = _decode_event(r)
            e["link_seq"] = prev = link_seq
            m["events"].append(e)
    elif kind == "ack":
        m["cum"] = r.uvarint()
        m["sack"] = r.uvarint()
    elif kind in ("fetch", "fetch_reply"):
        m["route"] = r.uvarint(32)
        m["seq"] = r.uvarint()
        m["offset"] = r.uvarint()
        if kind == "fetch_reply":
            found = r.byte()
            m["total"], m["payload"], m["refused"] = None, None, None
            if found == 1:
                m["total"] = r.uvarint()
                n = r.uvarint()
                if m["offset"] + n > m["total"]:
                    _fail("decode_bad_field", "the piece ends beyond the payload")
                m["payload"] = r.take(n).hex()
            elif found in FETCH_REFUSAL_NAMES:
                m["refused"] = FETCH_REFUSAL_NAMES[found]
            else:
                _fail("decode_bad_field", f"fetch_reply byte {found}")
    r.end()
    return m


# --- keyed frames (4.8) -------------------------------------------------------------------------


def mac(key: bytes, direction: int, covered: bytes) -> bytes:
    return hmac.new(key, bytes([direction]) + covered, hashlib.sha256).digest()[:MAC_LEN]


def seal(key: bytes, direction: int, counter: int, message: bytes) -> bytes:
    covered = bytes([SEALED]) + struct.pack("<Q", counter) + message
    return covered + mac(key, direction, covered)


def unseal(key: bytes, direction: int, body: bytes) -> tuple[int, bytes]:
    """The counter and message of a sealed body; raises :class:`MeshDecodeError`
    (``auth_unkeyed`` when it is not sealed, ``auth_bad_mac`` when the MAC is wrong)."""
    if len(body) < 1 + COUNTER_LEN + MAC_LEN + 1 or body[0] != SEALED:
        _fail("auth_unkeyed", "not a sealed body")
    covered, tag = body[:-MAC_LEN], body[-MAC_LEN:]
    if not hmac.compare_digest(tag, mac(key, direction, covered)):
        _fail("auth_bad_mac", "MAC mismatch")
    return struct.unpack("<Q", covered[1 : 1 + COUNTER_LEN])[0], covered[1 + COUNTER_LEN :]


# --- capabilities (4.7) -------------------------------------------------------------------------


def provided(requested: int, transport: int, keyed: bool) -> int:
    can = transport | 1 | 2 | 16 | (8 if keyed else 0)
    return requested & can & ~4


def names(caps: int) -> list[str]:
    return [name for bit, name in CAPS if caps & bit]
