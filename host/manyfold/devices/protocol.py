"""The link protocol's typed objects and codes (docs/wire.md section 2), as the host sees them.

The objects come from ``manyfold._native`` (the Rust core decodes and encodes every message;
Python never parses the wire): :class:`Event` and :class:`Lineage`, :class:`Describe`, the
page items (:class:`RouteInfo`, :class:`NodeInfo`, :class:`SourceInfo`, :class:`FlowInfo`,
:class:`TaintInfo`), :class:`DeviceCounters`, :class:`BoardInfo`, :class:`Ack`, :class:`Nack`,
the host end's :class:`HostCounters`, and the requests a trace is made of (:class:`Step`,
:class:`Query`, :class:`Heartbeat`, :class:`Resume`, and :class:`Event` for a host event). The
enums (:class:`NackReason`, :class:`QueryKind`, :class:`Kind`) and the taint names are built
from the core's own tables, so they cannot drift from it.

>>> Step(250_000).to_us
250000
>>> NackReason(24).name.lower()
'query_bad_arg'
>>> taint_names(1 << 11)
['det_seeded_entropy']
"""

from __future__ import annotations

import enum

from manyfold import _native

Event = _native.Event
Lineage = _native.Lineage
Describe = _native.Describe
Ack = _native.Ack
Nack = _native.Nack
RouteInfo = _native.RouteInfo
NodeInfo = _native.NodeInfo
SourceInfo = _native.SourceInfo
FlowInfo = _native.FlowInfo
TaintInfo = _native.TaintInfo
DeviceCounters = _native.DeviceCounters
HostCounters = _native.HostCounters
Capacities = _native.Capacities
BoardInfo = _native.BoardInfo
Step = _native.Step
Query = _native.Query
Heartbeat = _native.Heartbeat
Resume = _native.Resume

_TABLES = _native.link_tables()

NackReason = enum.IntEnum("NackReason", {name.upper(): code for code, name in _TABLES["nack_reasons"]})
NackReason.__doc__ = "Why a device refused a message; ``name.lower()`` is the spec's name."
QueryKind = enum.IntEnum("QueryKind", {name.upper(): code for code, name in _TABLES["query_kinds"]})
QueryKind.__doc__ = "What a query asks for."
Kind = enum.IntEnum("Kind", {name.upper(): code for code, name in _TABLES["kinds"]})
Kind.__doc__ = "Message kinds."

VERSION_V1: int = _TABLES["version_v1"]
"""The wire version of link protocol v1."""
VERSION_V1_1: int = _TABLES["version_v1_1"]
"""The wire version of link protocol v1.1 (what this host offers first)."""

TAINT_NAMES: tuple[str, ...] = tuple(_TABLES["taint_names"])
"""Taint names by bit: bit ``i`` of an event's ``taints`` is ``TAINT_NAMES[i]``."""
DELIVERY_DROPPED = 1 << TAINT_NAMES.index("delivery_dropped")

CAPABILITIES: dict[str, int] = {name: bit for bit, name in _TABLES["capabilities"]}
"""Describe capability bits by name."""
CAP_EVENTS = CAPABILITIES["events"]
CAP_QUERIES = CAPABILITIES["queries"]
CAP_LOCKSTEP = CAPABILITIES["lockstep"]
CAP_UPLOAD = CAPABILITIES["upload"]
CAP_SOURCES = CAPABILITIES["sources"]
CAP_HEARTBEAT = CAPABILITIES["heartbeats"]

FRAME_REFUSALS = frozenset({NackReason.FRAME_BAD_CRC, NackReason.FRAME_BAD_COBS, NackReason.FRAME_SHORT, NackReason.FRAME_OVERSIZE})
"""Nack reasons of frames the device could not read (their nack has no ``ref``)."""

image_status_name = _native.image_status_name
"""``image_status_name(code)``: "loaded" for 0, else the image error's name."""


def taint_names(bits: int) -> list[str]:
    """The names of the taints set in ``bits``."""
    return [name for i, name in enumerate(TAINT_NAMES) if bits >> i & 1]


__all__ = [
    "CAPABILITIES", "CAP_EVENTS", "CAP_HEARTBEAT", "CAP_LOCKSTEP", "CAP_QUERIES", "CAP_SOURCES", "CAP_UPLOAD",
    "DELIVERY_DROPPED", "FRAME_REFUSALS", "TAINT_NAMES", "VERSION_V1", "VERSION_V1_1",
    "Ack", "BoardInfo", "Capacities", "Describe", "DeviceCounters", "Event", "FlowInfo", "Heartbeat", "HostCounters",
    "Kind", "Lineage", "Nack", "NackReason", "NodeInfo", "Query", "QueryKind", "Resume", "RouteInfo", "SourceInfo",
    "Step", "TaintInfo", "image_status_name", "taint_names",
]  # fmt: skip
