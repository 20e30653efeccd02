"""Helpers shared by the device tests: paths, the vectors, and message-to-JSON mapping (of the
v1 oracle's messages: ``runtime_nostd/vectors/oracle.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import oracle as m

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "runtime_nostd" / "vectors"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def _value(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, float):
        return {"float": v}
    return {"int": v}


def _event(e: m.Event) -> dict:
    return {
        "route": e.route, "seq": e.seq, "time_us": e.time_us, "epoch": e.epoch, "taints": e.taints,
        "lineage": {"route": e.lineage.route, "first_seq": e.lineage.first_seq, "count": e.lineage.count},
        "value": _value(e.value),
    }  # fmt: skip


def fields_json(body: m.Body) -> dict:
    """A decoded message's fields, named as in the CDDL (the vectors' ``fields``)."""
    if isinstance(body, m.Hello):
        return {"version": body.version, "max_message": body.max_message, "session": body.session, "flags": body.flags, "time_us": body.time_us}
    if isinstance(body, m.Describe):
        return {
            "version": body.version, "max_message": body.max_message, "capabilities": body.capabilities,
            "board": body.board, "image_status": body.image_status, "manifest_id": (body.manifest_id or b"").hex(),
            "partition": body.partition, "session": body.session, "flags": body.flags,
        }  # fmt: skip
    if isinstance(body, m.Event):
        return _event(body)
    if isinstance(body, m.Ack):
        return {"ref": body.ref, "info": body.info}
    if isinstance(body, m.Nack):
        return {"ref": body.ref, "reason": body.reason.name.lower(), "detail": body.detail}
    if isinstance(body, m.Query):
        return {"what": body.what, "arg": body.arg}
    if isinstance(body, m.Reply):
        d = {"ref": body.ref, "what": body.what.name.lower()}
        b = body.body
        if isinstance(b, m.Page):
            items = []
            for item in b.items:
                entry = dict(vars(item))
                if isinstance(item, m.RouteInfo):
                    entry["schema"] = item.schema.hex()
                    if item.taints is None:
                        del entry["taints"]
                items.append(entry)
            d.update(total=b.total, start=b.start, items=items)
        elif body.what == m.QueryKind.COUNTERS:
            d["counters"] = dict(b)
        elif body.what == m.QueryKind.LATEST:
            d["event"] = None if b is None else _event(b)
        else:
            d.update(
                uptime_ms=b.uptime_ms, stack_peak=b.stack_peak, rx_dropped=b.rx_dropped, lockstep=b.lockstep,
                time_us=b.time_us, capacities=dict(vars(b.capacities)),
            )  # fmt: skip
        return d
    if isinstance(body, m.Heartbeat):
        return {"time_us": body.time_us}
    if isinstance(body, m.Step):
        return {"to_us": body.to_us, "epoch": body.epoch}
    if isinstance(body, m.UploadBegin):
        return {"total_len": body.total_len, "sha256": body.sha256.hex()}
    if isinstance(body, m.UploadChunk):
        return {"offset": body.offset, "data": body.data.hex()}
    return {}
