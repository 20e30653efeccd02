"""Generate the shared vectors of the link protocol and the partition image format.

- ``link.json``: link messages (docs/wire.md section 2) encoded with ``cbor2``, a third-party
  CBOR library, from their CBOR arrays; each with the fields a decoder must find, named as in the
  CDDL. Invalid messages come with the error a decoder must report.
- ``link_v11.json``: link protocol v1.1 messages (section 2, version 2 on the wire), encoded
  by ``oracle_v11`` (a Python codec written from the spec), with the references a host holds
  before reading each one, the forms a device must choose for an event, and invalid messages.
- ``images.json``: partition images (section 3): the greenhouse partition encoded by
  ``manyfold.devices.image``, and images broken one rule at a time (built by editing the
  greenhouse body's CBOR array), each with the error a device must report.

``runtime_nostd/tests/vectors.rs`` (the Rust decoders) and ``tests/devices/test_vectors.py``
(the Python codec and the simulation) read them; the Python test also re-runs this generator and
fails when the committed files differ.

Run: python runtime_nostd/vectors/generate.py
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import cbor2

HERE = Path(__file__).resolve().parent
# The image vectors use this tree's `manyfold` package (and its built extension), whatever
# version is installed.
sys.path.insert(0, str(HERE.parents[1] / "host"))

TAINT_NAMES = [
    "time_estimated", "time_repaired", "time_processing", "time_unknown",
    "order_keyed", "order_resequenced", "order_possibly_out_of_order",
    "delivery_sampled", "delivery_coalesced", "delivery_dropped", "delivery_duplicated",
    "det_seeded_entropy", "det_processing_clock", "det_external_lookup",
    "det_nondeterministic_operator", "det_nonreplayable",
    "sched_gated", "sched_expired", "sched_forced_close",
    "trust_unverified", "trust_tamper_suspect",
    "coherence_write_pending", "coherence_stale_reported", "coherence_echo_unmatched",
]  # fmt: skip

KINDS = {
    1: "hello", 2: "describe", 3: "event", 4: "ack", 5: "nack", 6: "query", 7: "reply", 8: "heartbeat",
    9: "step", 10: "upload_begin", 11: "upload_chunk", 12: "upload_commit", 13: "upload_abort", 14: "resume",
}  # fmt: skip
QUERIES = ["routes", "nodes", "sources", "counters", "flow", "taints", "latest", "board"]
NACK_REASONS = [
    "decode_bad_cbor", "decode_not_array", "decode_unknown_kind", "decode_bad_arity", "decode_bad_field",
    "decode_too_long", "decode_trailing_bytes", "frame_bad_crc", "frame_bad_cobs", "frame_short",
    "frame_oversize", "kind_unexpected", "no_session", "version_unsupported", "max_message_too_small",
    "route_unknown", "route_not_inbound", "value_kind_mismatch", "seq_not_increasing", "busy",
    "step_backwards", "not_lockstep", "query_unknown", "query_bad_arg", "upload_unsupported",
    "upload_not_begun", "upload_bad_offset", "upload_too_large", "upload_digest_mismatch", "image_invalid",
    "no_image",
]  # fmt: skip
COUNTERS = [
    "frames", "frame_crc_errors", "frame_cobs_errors", "frame_short", "frame_oversize", "messages_rx",
    "messages_tx", "nacks_tx", "rx_gaps", "sessions", "resumes", "stale", "events_in", "events_out",
    "events_unsent", "mailbox_dropped", "late", "sampled", "steps", "source_events",
]  # fmt: skip
IMAGE_ERRORS = [
    "header_empty", "header_bad_magic", "header_bad_version", "header_bad_length", "header_bad_crc",
    "decode_bad_cbor", "decode_bad_shape", "decode_bad_value", "decode_bad_name", "decode_trailing_bytes",
    "load_too_many_routes", "load_too_many_sources", "load_too_many_nodes", "load_too_many_windows",
    "load_mailbox_too_deep", "load_window_too_large",
    "check_missing_route", "check_missing_node", "check_missing_mailbox", "check_node_inputs",
    "check_mailbox_shared", "check_two_producers", "check_not_topological", "check_kind_mismatch",
    "check_bad_param",
]  # fmt: skip

# The board profile (manyfold_core::device::board) the image vectors are checked against.
CAPACITIES = {"routes": 16, "nodes": 9, "sources": 4, "windows": 2, "mailbox_depth": 2, "window_slots": 4}


# --- link messages -------------------------------------------------------------------------------


def value_json(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, float):
        return {"float": v}
    return {"int": v}


def event_json(f):
    return {
        "route": f[0], "seq": f[1], "time_us": f[2], "epoch": f[3], "taints": f[4],
        "lineage": {"route": f[5][0], "first_seq": f[5][1], "count": f[5][2]}, "value": value_json(f[6]),
    }  # fmt: skip


ITEM_FIELDS = {
    "routes": ["id", "schema", "kind", "link", "seq"],
    "nodes": ["op", "input", "output", "output2", "capacity", "overflow"],
    "sources": ["route", "waveform", "period_us", "phase_us"],
    "flow": ["node", "depth", "capacity", "accepted", "delivered", "dropped", "refused", "depth_max"],
    "taints": ["route", "seen", "pending"],
}


def fields_json(kind: str, f: list) -> dict:
    """The fields of a message, named as in the CDDL of docs/wire.md section 2."""
    if kind == "hello":
        return dict(zip(["version", "max_message", "session", "flags", "time_us"], f))
    if kind == "describe":
        names = ["version", "max_message", "capabilities", "board", "image_status", "manifest_id", "partition", "session", "flags"]
        d = dict(zip(names, f))
        d["manifest_id"] = d["manifest_id"].hex()
        return d
    if kind == "event":
        return event_json(f)
    if kind == "ack":
        return {"ref": f[0], "info": f[1]}
    if kind == "nack":
        return {"ref": f[0], "reason": NACK_REASONS[f[1] - 1], "detail": f[2]}
    if kind == "query":
        return {"what": f[0], "arg": f[1]}  # the raw code: a device nacks unknown ones
    if kind == "reply":
        what = QUERIES[f[1]]
        d = {"ref": f[0], "what": what}
        rest = f[2:]
        if what in ITEM_FIELDS:
            items = []
            for item in rest[2]:
                entry = dict(zip(ITEM_FIELDS[what], item))
                if what == "routes":
                    entry["schema"] = entry["schema"].hex()
                items.append(entry)
            d.update(total=rest[0], start=rest[1], items=items)
        elif what == "counters":
            d["counters"] = dict(zip(COUNTERS, rest))
        elif what == "latest":
            d["event"] = None if rest[0] is None else event_json(rest[0])
        else:
            caps = dict(zip(["routes", "nodes", "sources", "windows", "mailbox_depth", "window_slots"], rest[5]))
            d.update(uptime_ms=rest[0], stack_peak=rest[1], rx_dropped=rest[2], lockstep=rest[3], time_us=rest[4], capacities=caps)
        return d
    if kind == "heartbeat":
        return {"time_us": f[0]}
    if kind == "step":
        return {"to_us": f[0], "epoch": f[1]}
    if kind == "upload_begin":
        return {"total_len": f[0], "sha256": f[1].hex()}
    if kind == "upload_chunk":
        return {"offset": f[0], "data": f[1].hex()}
    return {}


def message(name: str, array: list) -> dict:
    data = cbor2.dumps(array)
    kind = KINDS[array[0]]
    return {"name": name, "hex": data.hex(), "kind": kind, "id": array[1], "fields": fields_json(kind, array[2:])}


MANIFEST = bytes(range(32))
SCHEMA = bytes.fromhex("0123456789abcdef")
SHA = bytes(range(100, 132))

VALID = [
    ("hello_lockstep_reset", [1, 0, 1, 256, 7, 3, 0]),
    ("hello_free_running", [1, 5, 1, 4096, 0xFFFF_FFFF, 0, 1_000_000]),
    ("describe_loaded", [2, 0, 1, 256, 55, "lm3s6965evb", 0, MANIFEST, "greenhouse-sensors", 7, 1]),
    ("describe_empty_region", [2, 0, 1, 256, 55, "mps2-an386", 1, b"", "", 0, 0]),
    ("event_float", [3, 12, 2, 41, 750_000, 0, 2048, [1, 38, 4], 24.404108212123102]),
    ("event_int_negative_time", [3, 0, 0, 1, -5, 0, 0, [0, 0, 0], -2048]),
    ("event_bool", [3, 4_294_967_295, 65535, 4_294_967_295, 2**63 - 1, 4_294_967_295, 0xFFFFFF, [65535, 4_294_967_295, 4_294_967_295], True]),
    ("ack_step", [4, 3, 2, 3_000_000]),
    ("ack_negative_info", [4, 3, 2, -1]),
    ("nack_with_ref", [5, 9, 4, 16, 99]),
    ("nack_without_ref", [5, 10, None, 8, 0]),
    ("query_latest", [6, 8, 6, 13]),
    ("query_unknown_kind_is_still_a_query", [6, 8, 42, 0]),
    ("reply_routes", [7, 11, 6, 0, 14, 0, [[0xAE8856EC, SCHEMA, 0, 1, 12], [7, SCHEMA, 2, 2, 0]]]),
    ("reply_nodes", [7, 12, 6, 1, 8, 7, [[7, 11, 13, 12, 2, 1]]]),
    ("reply_nodes_no_output2", [7, 12, 6, 1, 8, 0, [[2, 0, 1, None, 2, 1]]]),
    ("reply_sources", [7, 12, 6, 2, 4, 0, [[0, 1, 250_000, 0], [4, 1, 250_000, 50_000]]]),
    ("reply_counters", [7, 13, 6, 3, *range(20)]),
    ("reply_flow", [7, 14, 6, 4, 8, 2, [[2, 0, 2, 15, 15, 1, 0, 2]]]),
    ("reply_taints", [7, 15, 6, 5, 14, 10, [[10, 128, 512]]]),
    ("reply_latest_none", [7, 16, 6, 6, None]),
    ("reply_latest_event", [7, 16, 6, 6, [13, 1, 3_200_000, 0, 0, [11, 1, 1], 40.0]]),
    ("reply_board", [7, 17, 6, 7, 1000, 8008, 0, True, 21_000_000, [16, 9, 4, 2, 2, 4]]),
    ("reply_empty_page", [7, 18, 6, 0, 14, 14, []]),
    ("heartbeat", [8, 20, 123_456_789]),
    ("step", [9, 21, 3_500_000, 2]),
    ("upload_begin", [10, 22, 1344, SHA]),
    ("upload_chunk", [11, 23, 240, bytes(range(16))]),
    ("upload_commit", [12, 24]),
    ("upload_abort", [13, 25]),
    ("resume", [14, 26]),
]

# Decoders must accept 16- and 32-bit floats (other CBOR encoders write them) and re-encode them
# in 64 bits.
def _with_value(fields: list, value_hex: str) -> str:
    """An event array whose last item (the value) is written as the raw CBOR ``value_hex``."""
    return (bytes([0x80 | (len(fields) + 1)]) + b"".join(cbor2.dumps(x) for x in fields)).hex() + value_hex


NON_CANONICAL = [
    ("event_value_half_float", _with_value([3, 1, 1, 2, 0, 0, 25, [0, 0, 0]], "f93e00")),
    ("event_value_single_float", _with_value([3, 2, 1, 3, 0, 0, 25, [0, 0, 0]], "fa3fc00000")),
]

# (name, bytes as hex, the error of a decoder reading it). Each has exactly one fault.
INVALID = [
    ("empty", "", "decode_bad_cbor"),
    ("cut_short_array", "8201", "decode_bad_cbor"),
    ("map", "a0", "decode_not_array"),
    ("integer", "01", "decode_not_array"),
    ("array_of_one", "8101", "decode_not_array"),
    ("kind_is_text", "82616100", "decode_not_array"),
    ("id_over_32_bits", "82081b0000000100000000", "decode_not_array"),
    ("unknown_kind", "82186300", "decode_unknown_kind"),
    ("hello_missing_field", cbor2.dumps([1, 0, 1, 256, 7, 3]).hex(), "decode_bad_arity"),
    ("resume_extra_field", cbor2.dumps([14, 0, 0]).hex(), "decode_bad_arity"),
    ("event_value_text", cbor2.dumps([3, 0, 0, 1, 0, 0, 0, [0, 0, 0], "hot"]).hex(), "decode_bad_field"),
    ("event_seq_over_32_bits", cbor2.dumps([3, 0, 0, 2**32, 0, 0, 0, [0, 0, 0], 1.0]).hex(), "decode_bad_field"),
    ("event_lineage_indefinite", "8903000001000000" + "9f000000ff" + "f93c00", "decode_bad_field"),
    ("step_time_is_float", cbor2.dumps([9, 0, 1.5, 0]).hex(), "decode_bad_field"),
    ("upload_sha_too_short", cbor2.dumps([10, 0, 10, bytes(31)]).hex(), "decode_bad_field"),
    ("hello_trailing_byte", cbor2.dumps([1, 0, 1, 256, 7, 3, 0]).hex() + "00", "decode_trailing_bytes"),
    ("describe_board_name_too_long", cbor2.dumps([2, 0, 1, 256, 55, "b" * 33, 0, b"", "", 0, 0]).hex(), "decode_too_long"),
    ("reply_page_too_long", cbor2.dumps([7, 0, 0, 5, 20, 0, [[i, 0, 0] for i in range(17)]]).hex(), "decode_too_long"),
    ("nack_unknown_reason", cbor2.dumps([5, 0, 0, 200, 0]).hex(), "decode_bad_field"),
]  # fmt: skip


def link_vectors() -> dict:
    canonical = []
    for name, hexdata in NON_CANONICAL:
        decoded = cbor2.loads(bytes.fromhex(hexdata))
        entry = message(name, decoded)
        entry["hex"] = hexdata
        entry["canonical_hex"] = cbor2.dumps(decoded).hex()
        canonical.append(entry)
    return {
        "taint_names": TAINT_NAMES,
        "nack_reasons": NACK_REASONS,
        "counters": COUNTERS,
        "messages": [message(name, array) for name, array in VALID] + canonical,
        "invalid": [{"name": n, "hex": h, "error": e} for n, h, e in INVALID],
    }


# --- images --------------------------------------------------------------------------------------


def image_vectors() -> dict:
    from manyfold.devices.greenhouse import greenhouse_spec
    from manyfold.devices.image import read_image, with_header

    spec = greenhouse_spec()
    image = spec.encode()
    info = read_image(image)
    body = cbor2.loads(image[16:])

    def edited(edit) -> str:
        b = copy.deepcopy(body)
        edit(b)
        return with_header(cbor2.dumps(b)).hex()

    def raw(data: bytes) -> str:
        return data.hex()

    bad_crc = bytearray(image)
    bad_crc[40] ^= 0x01
    route = body[3][0]
    broken = [
        ("erased_zeros", raw(bytes(64)), "header_empty"),
        ("erased_ones", raw(b"\xff" * 64), "header_empty"),
        ("foreign_magic", raw(b"\x7fELF" + image[4:]), "header_bad_magic"),
        ("version_2", raw(image[:4] + b"\x02" + image[5:]), "header_bad_version"),
        ("body_cut_short", raw(image[:-1]), "header_bad_length"),
        ("body_flipped_bit", raw(bytes(bad_crc)), "header_bad_crc"),
        ("body_cut_short_cbor", raw(with_header(b"\x8a\x01")), "decode_bad_cbor"),
        ("body_trailing_byte", raw(with_header(cbor2.dumps(body) + b"\x00")), "decode_trailing_bytes"),
        ("route_missing_kind", edited(lambda b: b[3].__setitem__(0, route[:2])), "decode_bad_shape"),
        ("unknown_operator", edited(lambda b: b[5][0].__setitem__(0, 9)), "decode_bad_value"),
        ("unknown_aggregate", edited(lambda b: b[5][1].__setitem__(4, 7)), "decode_bad_value"),
        ("empty_partition_name", edited(lambda b: b.__setitem__(2, "")), "decode_bad_name"),
        ("too_many_routes", edited(lambda b: b[3].extend([[0x100 + i, route[1], 0] for i in range(3)])), "load_too_many_routes"),
        ("second_source_on_a_route", edited(lambda b: b[4].append(list(b[4][3]))), "check_two_producers"),
        ("too_many_sources", edited(lambda b: (b[3].append([9, route[1], 0]), b[4].append([14, 0, 1000, 0, 0, 1.0, 0.0, 1, 0.0]))), "load_too_many_sources"),
        ("third_window", edited(lambda b: (b[3].append([9, route[1], 0]), b[5].append([3, 14, 2, 1, 2]), b[6].append([2, 1]), b[7].append([1, 8, 8]))), "load_too_many_windows"),
        ("mailbox_too_deep", edited(lambda b: b[6].__setitem__(0, [3, 1])), "load_mailbox_too_deep"),
        ("count_window_too_large", edited(lambda b: b[5][1].__setitem__(2, 5)), "load_window_too_large"),
        ("edge_from_missing_route", edited(lambda b: b[7][0].__setitem__(0, 99)), "check_missing_route"),
        ("edge_to_missing_node", edited(lambda b: b[7][0].__setitem__(1, 99)), "check_missing_node"),
        ("edge_to_missing_mailbox", edited(lambda b: b[7][0].__setitem__(2, 99)), "check_missing_mailbox"),
        ("node_without_input", edited(lambda b: (b[7].pop(), b[6].pop())), "check_node_inputs"),
        ("mailbox_unused", edited(lambda b: b[6].append([1, 1])), "check_mailbox_shared"),
        ("two_producers", edited(lambda b: b[9 - 1].append([0, 2])), "check_two_producers"),
        ("nodes_out_of_order", edited(lambda b: (b[5].__setitem__(slice(0, 3), [b[5][2], b[5][1], b[5][0]]), [e.__setitem__(1, {0: 2, 1: 1, 2: 0}[e[1]]) for e in b[7][:3]])), "check_not_topological"),
        ("threshold_on_bool", edited(lambda b: b[3][3].__setitem__(2, 2)), "check_kind_mismatch"),
        ("source_on_int_route", edited(lambda b: b[3][0].__setitem__(2, 1)), "check_kind_mismatch"),
        ("width_not_multiple_of_slide", edited(lambda b: b[5][4].__setitem__(3, 700_000)), "check_bad_param"),
        ("zero_period_source", edited(lambda b: b[4][0].__setitem__(2, 0)), "check_bad_param"),
        ("count_window_step_above_size", edited(lambda b: b[5][1].__setitem__(3, 5)), "check_bad_param"),
    ]  # fmt: skip
    return {
        "capacities": CAPACITIES,
        "image_errors": IMAGE_ERRORS,
        "greenhouse": {
            "hex": image.hex(),
            "manifest_id": info.manifest_id.hex(),
            "partition": info.partition,
            "routes": info.routes,
            "sources": info.sources,
            "nodes": info.nodes,
            "windows": 2,
            "route_names": info.route_names,
        },
        "invalid": [{"name": n, "hex": h, "error": e} for n, h, e in broken],
    }




# --- link protocol v1.1 (wire version 2) ----------------------------------------------------------
# Encoded with oracle_v11 (this directory), a Python codec written from docs/wire.md, not with
# the Rust core. Device messages that carry short-form events come with the references a host
# holds before reading them ("refs"); "forms" give the sender's references and the bytes a
# device must choose for an event.

SEEDED = 1 << TAINT_NAMES.index("det_seeded_entropy")
DROPPED = 1 << TAINT_NAMES.index("delivery_dropped")


def _v11():
    sys.path.insert(0, str(HERE))
    import oracle
    import oracle_v11

    return oracle, oracle_v11


def _event_fields(e) -> dict:
    return {
        "route": e.route, "seq": e.seq, "time_us": e.time_us, "epoch": e.epoch, "taints": e.taints,
        "lineage": {"route": e.lineage.route, "first_seq": e.lineage.first_seq, "count": e.lineage.count},
        "value": value_json(e.value),
    }  # fmt: skip


def _fields_v11(o, body) -> dict:
    """A decoded v1.1 message's fields, named as in docs/wire.md."""
    if isinstance(body, o.Describe):
        return {
            "ref": body.ref, "version": body.version, "max_message": body.max_message, "capabilities": body.capabilities,
            "board": body.board, "image_status": body.image_status, "manifest_id": (body.manifest_id or b"").hex(),
            "partition": body.partition, "session": body.session, "flags": body.flags, "time_us": body.time_us,
            "epoch": body.epoch,
        }  # fmt: skip
    if isinstance(body, o.Event):
        return _event_fields(body)
    if isinstance(body, o.Ack):
        return {"ref": body.ref, "info": body.info}
    if isinstance(body, o.Nack):
        return {"ref": body.ref, "reason": body.reason.name.lower(), "detail": body.detail}
    if isinstance(body, o.Heartbeat):
        return {"time_us": body.time_us}
    if isinstance(body, o.Hello):
        return {"version": body.version, "max_message": body.max_message, "session": body.session, "flags": body.flags, "time_us": body.time_us}
    if isinstance(body, o.Query):
        return {"what": body.what, "arg": body.arg}
    if isinstance(body, o.Step):
        return {"to_us": body.to_us, "epoch": body.epoch, "seen_us": body.seen_us}
    if isinstance(body, o.UploadBegin):
        return {"total_len": body.total_len, "sha256": body.sha256.hex()}
    if isinstance(body, o.UploadChunk):
        return {"offset": body.offset, "data": body.data.hex()}
    if isinstance(body, o.Reply):
        d = {"ref": body.ref, "what": body.what.name.lower()}
        b = body.body
        if isinstance(b, o.Page):
            items = []
            for item in b.items:
                entry = dict(vars(item))
                if isinstance(item, o.RouteInfo):
                    entry["schema"] = item.schema.hex()
                items.append(entry)
            d.update(total=b.total, start=b.start, items=items)
        elif body.what == o.QueryKind.COUNTERS:
            d["counters"] = dict(b)
        elif body.what == o.QueryKind.LATEST:
            d["event"] = None if b is None else _event_fields(b)
        else:
            d.update(
                uptime_ms=b.uptime_ms, stack_peak=b.stack_peak, rx_dropped=b.rx_dropped, lockstep=b.lockstep,
                time_us=b.time_us, capacities=dict(vars(b.capacities)),
            )  # fmt: skip
        return d
    return {}


def _refs_json(refs) -> dict:
    return {
        "routes": {str(i): {"seq": r.seq, "declared": r.declared} for i, r in sorted(refs.routes.items())},
        "time_us": refs.time_us,
        "epoch": refs.epoch,
    }


def _refs(o11, routes: dict, time_us, epoch=0):
    refs = o11.Refs(time_us=time_us, epoch=epoch)
    for i, (seq, declared) in routes.items():
        refs.routes[i] = o11.RouteRef(seq, declared)
    return refs


def link_v11_vectors() -> dict:
    o, o11 = _v11()
    E, L = o.Event, o.Lineage
    head = lambda kind, ref: bytes([0xE0 + kind, ref])  # noqa: E731
    c = o.cbor

    device = []

    def dev(name: str, data: bytes, refs=None) -> None:
        before = _refs_json(refs) if refs is not None else None
        decoded = o11.decode_device(data, refs if refs is not None else o11.Refs())
        entry = {"name": name, "hex": data.hex()}
        if before is not None:
            entry["refs"] = before
        out = []
        for m in decoded:
            if isinstance(m, tuple):
                out.append({"kind": "missing", "route": m[1]})
            else:
                out.append({"kind": m.kind.name.lower(), "fields": _fields_v11(o, m.body)})
        entry["decoded"] = out
        device.append(entry)

    describe = head(2, 7) + c(2) + c(256) + c(55) + c("lm3s6965evb") + c(0) + c(MANIFEST) + c("greenhouse-sensors") + c(7) + c(3) + c(1_500_000) + c(4)
    dev("describe_loaded", describe)
    dev("describe_empty_region", head(2, 0) + c(2) + c(256) + c(55) + c("mps2-an386") + c(1) + c(b"") + c("") + c(0) + c(0) + c(0) + c(0))
    dev("ack_step", head(4, 3) + c(3_000_000))
    dev("ack_negative_time", head(4, 200) + c(-1))
    dev("nack_with_ref", c([5, 0, 4, 16, 99]))
    dev("nack_without_ref", c([5, 0, None, 8, 0]))
    dev("heartbeat", bytes([0xE8]) + c(123_456_789))
    routes = [[0xAE8856EC, SCHEMA, 0, 1, 12, SEEDED], [7, SCHEMA, 2, 2, 0, 0]]
    dev("reply_routes", head(7, 11) + c(0) + c(14) + c(0) + c(routes), o11.Refs())
    dev("reply_nodes", head(7, 12) + c(1) + c(8) + c(7) + c([[7, 11, 13, 12, 2, 1]]))
    dev("reply_sources", head(7, 12) + c(2) + c(4) + c(0) + c([[0, 1, 250_000, 0], [4, 1, 250_000, 50_000]]))
    dev("reply_counters", head(7, 13) + c(3) + b"".join(c(i) for i in range(20)))
    dev("reply_flow", head(7, 14) + c(4) + c(8) + c(2) + c([[2, 0, 2, 15, 15, 1, 0, 2]]))
    dev("reply_taints", head(7, 15) + c(5) + c(14) + c(10) + c([[10, 128, 512]]))
    dev("reply_empty_page", head(7, 18) + c(0) + c(14) + c(14) + c([]))
    dev("reply_board", head(7, 17) + c(7) + c(1000) + c(8008) + c(0) + c(True) + c(21_000_000) + c([16, 9, 4, 2, 2, 4]))
    dev("reply_latest_none", head(7, 16) + c(6))
    # A latest reply in short form (the route was announced) and one of another epoch, in full.
    reading = E(0, 60_000, 60_000_000, 4, SEEDED, L(), 0x1234_5678)
    dev("reply_latest_short", head(7, 16) + c(6) + o11.encode_event(reading, short=True, taints=False), _refs(o11, {0: (59_999, SEEDED)}, 59_000_000, 4))
    old = E(13, 1, 3_200_000, 2, 0, L(11, 1, 1), 40.0)
    dev("reply_latest_full_other_epoch", head(7, 16) + c(6) + o11.encode_event(old, short=False, taints=True) + c(2), _refs(o11, {}, 9_000_000, 5))
    # Batches of compact events.
    dev("event_reading_short", o11.encode_event(reading, short=True, taints=False), _refs(o11, {0: (59_999, SEEDED)}, 59_000_000, 4))
    batch = [
        E(0, 60_001, 60_001_000, 4, SEEDED, L(), 24.5),                          # f16 value
        E(1, 1, 60_001_000, 4, SEEDED | DROPPED, L(0, 60_001, 1), 2048.5),       # taints differ: T; f32
        E(2, 70_000, 60_000_250, 4, 0, L(1, 1, 4), 0.1),                        # not a whole ms: full; f64
        E(20, 65_536, 59_990_000, 4, 0, L(), True),                             # route escape, seq wraps
        E(3, 5, 60_002_000, 4, 0, L(3, 9, 2), -7),                              # int; lineage ahead of seq
    ]
    refs = _refs(o11, {0: (60_000, SEEDED), 1: (0, SEEDED), 2: (69_999, 0), 20: (65_535, 0), 3: (4, 0)}, 60_000_000, 4)
    forms = [(True, False), (True, True), (False, True), (True, False), (True, False)]
    dev("event_batch_mixed", b"".join(o11.encode_event(e, short=s, taints=t) for e, (s, t) in zip(batch, forms)), refs)
    lone = E(5, 9, 61_000_000, 0, 0, L(), 1.0)
    dev("event_without_references_is_missing", o11.encode_event(lone, short=True, taints=False) + o11.encode_event(reading, short=False, taints=True), _refs(o11, {}, 60_000_000))

    host = []

    def hst(name: str, msg_id: int, body) -> None:
        data = o11.encode_host(msg_id, body)
        m = o11.decode_host(data)
        host.append({"name": name, "hex": data.hex(), "kind": m.kind.name.lower(), "id": m.id, "fields": _fields_v11(o, m.body)})

    hst("hello_v1_1_lockstep_reset", 0, o.Hello(2, 256, 7, 3, 0))
    hst("event_full_with_taints", 5, E(0, 3, 2_000_000, 0, DROPPED, L(), 40.0))
    hst("event_full_clean", 6, E(17, 1, -5, 0, 0, L(), False))
    hst("query_latest", 8, o.Query(6, 13))
    hst("heartbeat_seen", 9, o.Heartbeat(59_000_000))
    hst("step", 21, o.Step(3_500_000, 2, 3_250_000))
    hst("upload_begin", 22, o.UploadBegin(1344, SHA))
    hst("upload_chunk", 23, o.UploadChunk(240, bytes(range(16))))
    hst("upload_commit", 24, o.UploadCommit())
    hst("upload_abort", 25, o.UploadAbort())
    hst("resume", 255, o.Resume())

    # The device's choice of form: the same event under different references.
    form_cases = []
    e = E(0, 60_000, 60_000_000, 0, SEEDED, L(), 0x1234_5678)

    def form(name: str, event, announced: bool, declared: int, sent_us: int, acked_us: int) -> None:
        t, a = event.time_us, acked_us
        short = announced and t >= 0 and t % 1000 == 0 and sent_us - 32_768_000 <= t <= a + 32_767_000
        taints = not announced or event.taints != declared
        form_cases.append({
            "name": name, "event": _event_fields(event), "announced": announced, "declared": declared,
            "sent_us": sent_us, "acked_us": acked_us, "hex": o11.encode_event(event, short=short, taints=taints).hex(),
        })  # fmt: skip

    form("unannounced_route_full_with_taints", e, False, SEEDED, 59_000_000, 59_000_000)
    form("announced_short_without_declared_taints", e, True, SEEDED, 59_000_000, 59_000_000)
    form("announced_other_taints", replace_taints(e, SEEDED | DROPPED), True, SEEDED, 59_000_000, 59_000_000)
    form("not_a_whole_millisecond", replace_time(e, 60_000_001), True, SEEDED, 59_000_000, 59_000_000)
    form("too_far_ahead_of_acknowledged", e, True, SEEDED, 60_000_000, 27_233_000)
    form("just_ahead_of_acknowledged", e, True, SEEDED, 60_000_000, 27_233_001)
    form("too_far_behind_sent", e, True, SEEDED, 92_768_001, 60_000_000)
    form("just_behind_sent", e, True, SEEDED, 92_768_000, 60_000_000)
    form("negative_time", replace_time(e, -1000), True, SEEDED, -1000, -1000)

    invalid_device = [
        ("empty", "", "decode_bad_cbor"),
        ("event_cut_short", "006000", "decode_bad_cbor"),
        ("event_seq_zero", "40000000", "decode_bad_field"),
        ("event_route_escape_below_15", "4f0e0100f5", "decode_bad_field"),
        ("event_lineage_count_zero", "5001000000" + "f5", "decode_bad_field"),
        ("event_value_text", "4001006161", "decode_bad_field"),
        ("batch_second_head_above_0x7f", "400100f5" + "c0", "decode_bad_field"),
        ("unknown_kind", "ef00", "decode_unknown_kind"),
        ("host_kind_from_device", "e60000", "decode_unexpected_kind"),
        ("ack_trailing_byte", "e4000000", "decode_trailing_bytes"),
        ("latest_without_references", "e70006" + o11.encode_event(lone, short=True, taints=False).hex(), "decode_no_reference"),
    ]
    invalid_host = [
        ("event_short_form", "e300" + o11.encode_event(lone, short=True, taints=False).hex(), "decode_bad_field"),
        ("event_with_lineage", "e300" + o11.encode_event(E(0, 1, 0, 0, 0, L(0, 1, 1), 1.0), short=False, taints=False).hex(), "decode_bad_field"),
        ("step_cut_short", "e90801", "decode_bad_cbor"),
        ("device_kind_from_host", "e40a00", "decode_unexpected_kind"),
        ("unknown_kind", "ef09", "decode_unknown_kind"),
        ("hello_missing_field", cbor2.dumps([1, 0, 2, 256, 7, 3]).hex(), "decode_bad_arity"),
        ("v1_query_array", cbor2.dumps([6, 1, 6, 0]).hex(), "decode_unknown_kind"),
    ]
    for group, decode in ((invalid_device, lambda d: o11.decode_device(d, _refs(o11, {}, 0))), (invalid_host, o11.decode_host)):
        for name, hexdata, error in group:
            try:
                decode(bytes.fromhex(hexdata))
            except o.LinkDecodeError as got:
                assert got.kind == error, (name, got.kind, error)
            else:
                raise AssertionError(f"{name} decoded")
    return {
        "version": 2,
        "device": device,
        "host": host,
        "forms": form_cases,
        "invalid_device": [{"name": n, "hex": h, "error": e} for n, h, e in invalid_device],
        "invalid_host": [{"name": n, "hex": h, "error": e} for n, h, e in invalid_host],
    }


def replace_taints(e, taints):
    import dataclasses

    return dataclasses.replace(e, taints=taints)


def replace_time(e, time_us):
    import dataclasses

    return dataclasses.replace(e, time_us=time_us)


def main() -> None:
    for name, data in (("link.json", link_vectors()), ("link_v11.json", link_v11_vectors()), ("images.json", image_vectors())):
        (HERE / name).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
