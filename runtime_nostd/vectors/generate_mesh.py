"""Generate ``mesh.json``, the shared vectors of the node link v1 (docs/wire.md section 4), with
``oracle_mesh`` (a Python codec written from the spec) and Python's ``hmac``.

- ``messages``: one or more of every kind, with the fields a decoder must find (named as in 4.3)
  and their bytes; decoding the bytes gives the fields, encoding the fields gives the bytes.
- ``invalid``: messages broken one rule at a time, each with the error a decoder must report.
- ``sealed``: keyed frames (4.8) with their key, direction, counter and message; and forged
  ones, each with the error.
- ``refusals``, ``caps`` and ``provided``: the tables of 4.5 and 4.7.

``runtime_nostd/tests/mesh_vectors.rs`` holds the Rust codec to them and
``tests/links/test_mesh_vectors.py`` the oracle (and fails when the committed file is not what
this writes). Run: python runtime_nostd/vectors/generate_mesh.py
"""

from __future__ import annotations

import json
from pathlib import Path

import oracle_mesh as o

HERE = Path(__file__).resolve().parent

MANIFEST = bytes(range(32)).hex()
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")


def hello(**over) -> dict:
    m = {
        "kind": "hello", "version": 1, "session": 0x1234ABCD, "incarnation": 1_764_000_000_000_000, "node": 1,
        "manifest_id": MANIFEST, "requested": 3, "transport": 0, "mtu": 1200, "lease_ms": 10_000,
        "name": "a", "link": "ab", "routes": [[0, "0102030405060708"], [3, "1112131415161718"], [200, "2122232425262728"]],
    }  # fmt: skip
    m.update(over)
    return m


def ev(link_seq: int, route: int, seq: int, **over) -> dict:
    e = {
        "link_seq": link_seq, "route": route, "seq": seq, "time_us": 1_764_000_000_000_000 + seq * 1000,
        "domain": 0, "taints": 0, "parents": [], "payload": {"inline": seq.to_bytes(8, "little").hex()},
    }  # fmt: skip
    e.update(over)
    return e


def valid() -> list[tuple[str, dict]]:
    digest = bytes(range(100, 132)).hex()
    return [
        ("hello", hello()),
        ("hello_no_routes_keyed_tcp", hello(requested=31, transport=3, routes=[], name="node-é", incarnation=0)),
        ("welcome", {"kind": "welcome", "version": 1, "session": 0x1234ABCD, "incarnation": 1_764_000_000_500_000, "node": 2, "provided": 3, "mtu": 1200, "lease_ms": 10_000, "name": "b"}),
        ("refuse_schema", {"kind": "refuse", "version": 1, "session": 0x1234ABCD, "incarnation": 7, "reason": "schema_mismatch", "detail": 3}),
        ("refuse_version", {"kind": "refuse", "version": 1, "session": 0, "incarnation": 7, "reason": "version_unsupported", "detail": 1}),
        ("refuse_no_session", {"kind": "refuse", "version": 1, "session": 0xFFFFFFFF, "incarnation": 7, "reason": "no_session", "detail": 0}),
        ("events_two", {"kind": "events", "session": 0x1234ABCD, "base": 0, "events": [ev(1, 3, 1), ev(2, 3, 2)]}),
        ("events_every_field", {"kind": "events", "session": 1, "base": 41, "events": [
            ev(42, 200, 9, domain=2, taints=(1 << 9) | (1 << 19), parents=[[1, 0, 8], [7, 3, (1 << 64) - 1]], time_us=-5),
            ev(45, 0, 1, payload={"lazy": {"meta": "a1646b696e6401", "len": 1 << 40, "digest": digest}}),
            ev(46, 0, 2, payload={"lazy": {"meta": "", "len": 0, "digest": digest}}),
            ev(47, 0, 3, payload={"inline": ""}),
        ]}),  # fmt: skip
        ("events_big_seqs", {"kind": "events", "session": 9, "base": (1 << 64) - 3, "events": [ev((1 << 64) - 2, 3, (1 << 64) - 1, time_us=(1 << 63) - 1), ev((1 << 64) - 1, 3, 1, time_us=-(1 << 63))]}),
        ("ack", {"kind": "ack", "session": 0x1234ABCD, "cum": 130, "sack": 0b1011}),
        ("ack_full", {"kind": "ack", "session": 5, "cum": 1, "sack": (1 << 64) - 1}),
        ("keepalive", {"kind": "keepalive", "session": 0x1234ABCD}),
        ("bye", {"kind": "bye", "session": 0x1234ABCD}),
        ("fetch", {"kind": "fetch", "session": 0x1234ABCD, "route": 0, "seq": 1, "offset": 0}),
        ("fetch_at_offset", {"kind": "fetch", "session": 0x1234ABCD, "route": 7, "seq": 300, "offset": 1150}),
        ("fetch_reply", {"kind": "fetch_reply", "session": 0x1234ABCD, "route": 0, "seq": 1, "offset": 0, "total": 3, "payload": "ff00ff", "refused": None}),
        ("fetch_reply_last_piece", {"kind": "fetch_reply", "session": 0x1234ABCD, "route": 7, "seq": 300, "offset": 16_000, "total": 16_384, "payload": "ab" * 384, "refused": None}),
        ("fetch_reply_empty_payload", {"kind": "fetch_reply", "session": 0x1234ABCD, "route": 0, "seq": 2, "offset": 0, "total": 0, "payload": "", "refused": None}),
        ("fetch_reply_not_held", {"kind": "fetch_reply", "session": 0x1234ABCD, "route": 0, "seq": 1, "offset": 0, "total": None, "payload": None, "refused": "not_held"}),
        ("fetch_reply_too_large", {"kind": "fetch_reply", "session": 0x1234ABCD, "route": 7, "seq": 300, "offset": 0, "total": None, "payload": None, "refused": "too_large"}),
    ]  # fmt: skip


def entry(flags: int, extra: bytes = b"") -> bytes:
    """An event entry body written by hand: route 3, seq 1, time 1000, `extra` after the time,
    an 8-byte inline payload."""
    return bytes([flags]) + o.uvarint(3) + o.uvarint(1) + o.zigzag(1000) + extra + o.uvarint(8) + bytes(8)


def raw_events(body: bytes, base: int = 0) -> bytes:
    """An events message of session 1 with one entry (skip 0) whose body is `body`."""
    return bytes([0xC3]) + (1).to_bytes(4, "little") + o.uvarint(base) + o.uvarint(0) + body


def invalid() -> list[tuple[str, str, str]]:
    """(name, hex, error): each breaks one rule of 4.3–4.4."""
    h = o.encode(hello())
    keep = o.encode({"kind": "keepalive", "session": 1})
    cases = [
        ("empty", b"", "decode_short"),
        ("kind_below", b"\xbf" + keep[1:], "decode_unknown_kind"),
        ("kind_unused", b"\xc9" + keep[1:], "decode_unknown_kind"),
        ("kind_ff", b"\xff" + keep[1:], "decode_unknown_kind"),
        ("kind_sealed_inside", b"\xcf" + keep[1:], "decode_unknown_kind"),
        ("keepalive_cut", keep[:-1], "decode_short"),
        ("keepalive_trailing", keep + b"\x00", "decode_trailing_bytes"),
        ("hello_cut", h[:-3], "decode_short"),
        ("ack_varint_not_shortest", b"\xc4" + keep[1:5] + b"\x81\x00" + b"\x00", "decode_bad_varint"),
        ("ack_varint_beyond_64_bits", b"\xc4" + keep[1:5] + b"\xff" * 9 + b"\x02" + b"\x00", "decode_bad_varint"),
        ("hello_name_too_long", o.encode(hello(name="n" * 33)), "decode_too_long"),
        ("hello_name_not_utf8", o.encode(hello(name="ab")).replace(b"\x02ab", b"\x02\xff\xfe", 1), "decode_bad_field"),
        ("hello_routes_unsorted", o.encode(hello(routes=[[3, "00" * 8], [0, "00" * 8]])), "decode_bad_field"),
        ("hello_routes_twice", o.encode(hello(routes=[[3, "00" * 8], [3, "00" * 8]])), "decode_bad_field"),
        ("hello_too_many_routes", o.encode(hello(routes=[[i, "00" * 8] for i in range(65)])), "decode_too_long"),
        ("hello_mtu_beyond_16_bits", o.encode(hello(mtu=70_000)), "decode_bad_field"),
        ("events_empty_batch", raw_events(b"")[:-1], "decode_short"),
        ("events_flags_unknown", raw_events(entry(0x10)), "decode_bad_field"),
        ("events_domain_zero", raw_events(entry(o.DOMAIN, o.uvarint(0))), "decode_bad_field"),
        ("events_taints_zero", raw_events(entry(o.TAINTS, o.uvarint(0))), "decode_bad_field"),
        ("events_no_parents_with_flag", raw_events(entry(o.PARENTS, o.uvarint(0))), "decode_bad_field"),
        ("events_too_many_parents", raw_events(entry(o.PARENTS, o.uvarint(65) + b"\x00\x00\x00" * 65)), "decode_too_long"),
        ("events_payload_cut", raw_events(entry(0))[:-1], "decode_short"),
        ("events_route_beyond_32_bits", raw_events(bytes([0]) + o.uvarint(1 << 32) + entry(0)[2:]), "decode_bad_field"),
        ("events_seq_beyond_64_bits", raw_events(entry(0), base=(1 << 64) - 1), "decode_bad_field"),
        ("fetch_reply_byte_3", o.encode({"kind": "fetch_reply", "session": 1, "route": 0, "seq": 1, "offset": 0, "payload": None, "refused": "not_held"})[:-1] + b"\x03", "decode_bad_field"),
        ("fetch_reply_piece_beyond_payload", o.encode({"kind": "fetch_reply", "session": 1, "route": 0, "seq": 1, "offset": 2, "total": 3, "payload": "ff00", "refused": None}), "decode_bad_field"),
        ("fetch_no_offset", o.encode({"kind": "fetch", "session": 1, "route": 0, "seq": 1, "offset": 0})[:-1], "decode_short"),
        ("events_lazy_digest_cut", raw_events(bytes([o.LAZY]) + entry(0)[1:] + o.uvarint(8) + bytes(31)), "decode_short"),
        ("welcome_node_beyond_16_bits", o.encode({"kind": "welcome", "version": 1, "session": 1, "incarnation": 1, "node": 1 << 16, "provided": 0, "mtu": 1200, "lease_ms": 1, "name": ""}), "decode_bad_field"),
    ]  # fmt: skip
    out = []
    for name, data, error in cases:
        try:
            o.decode(data)
        except o.MeshDecodeError as e:
            assert e.kind == error, (name, e)
        else:
            raise AssertionError(f"{name} decoded")
        out.append((name, data.hex(), error))
    return out


def mesh_vectors() -> dict:
    messages = []
    for name, m in valid():
        data = o.encode(m)
        assert o.decode(data) == m, name
        messages.append({"name": name, "hex": data.hex(), "fields": m})
    sealed = []
    for name, direction, counter, m in (
        ("hello_from_initiator", 0, 1, hello()),
        ("keepalive_from_responder", 1, 2, {"kind": "keepalive", "session": 0x1234ABCD}),
        ("events_counter_high", 0, (1 << 64) - 1, {"kind": "events", "session": 1, "base": 0, "events": [ev(1, 3, 1)]}),
    ):
        msg = o.encode(m)
        body = o.seal(KEY, direction, counter, msg)
        sealed.append({"name": name, "key": KEY.hex(), "direction": direction, "counter": counter, "message_hex": msg.hex(), "hex": body.hex()})
    good = bytes.fromhex(sealed[1]["hex"])
    forged = [
        ("mac_flipped", good[:-1] + bytes([good[-1] ^ 1]), 1, "auth_bad_mac"),
        ("counter_changed", good[:1] + bytes([good[1] ^ 1]) + good[2:], 1, "auth_bad_mac"),
        ("wrong_direction", good, 0, "auth_bad_mac"),
        ("message_changed", good[:9] + bytes([good[9] ^ 0x80]) + good[10:], 1, "auth_bad_mac"),
        ("not_sealed", o.encode({"kind": "keepalive", "session": 0x1234ABCD}), 1, "auth_unkeyed"),
        ("too_short", good[:25], 1, "auth_unkeyed"),
    ]
    bad_sealed = []
    for name, body, direction, error in forged:
        try:
            o.unseal(KEY, direction, body)
        except o.MeshDecodeError as e:
            assert e.kind == error, (name, e)
        else:
            raise AssertionError(name)
        bad_sealed.append({"name": name, "key": KEY.hex(), "direction": direction, "hex": body.hex(), "error": error})
    provided = []
    for requested, transport, keyed in ((31, 0, False), (31, 0, True), (31, 3, True), (0, 3, False), (5, 0, False), (12, 0, False), (16, 0, True)):
        p = o.provided(requested, transport, keyed)
        missing = requested & ~p
        provided.append({
            "requested": requested, "transport": transport, "keyed": keyed, "provided": p, "missing": missing,
            "missing_taints": [o.MISSING_TAINT[n] for n in o.names(missing) if o.MISSING_TAINT[n]],
        })  # fmt: skip
    return {
        "version": o.VERSION,
        "kinds": {name: byte for name, byte in o.KIND_BYTES.items()},
        "refusals": [[code, name] for code, name in o.REFUSALS.items()],
        "caps": [[bit, name, o.MISSING_TAINT[name]] for bit, name in o.CAPS],
        "messages": messages,
        "invalid": [{"name": n, "hex": h, "error": e} for n, h, e in invalid()],
        "sealed": sealed,
        "sealed_invalid": bad_sealed,
        "provided": provided,
    }


def main() -> None:
    (HERE / "mesh.json").write_text(json.dumps(mesh_vectors(), indent=1) + "\n")


if __name__ == "__main__":
    main()
