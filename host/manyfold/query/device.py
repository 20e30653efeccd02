"""Typed answers of a device's query plane: what a board (or the simulation) says about the
partition it runs, asked over its link (``manyfold.devices.queries`` asks; ``manyfold query``
prints them, or their ``to_dict()`` with ``--json``).

Each answer is a :class:`DeviceAnswer`: the :class:`DeviceFacts` of the device that answered
(from its describe) and the answer's rows. Devices know routes by index and by a 32-bit id;
``name`` is the printed route name when the host knows it (``None`` otherwise). Codes are the
image format's enums (``manyfold.devices.image``), or the bare number when the device sent a
code this host does not know; taints are :class:`~manyfold.graph.taints.Taint` sets. Events,
counters and board facts are the protocol's own typed objects (``manyfold.devices.protocol``).

``to_dict()`` puts the facts first, flat, then the rows: the JSON ``manyfold query --json``
prints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manyfold.graph.taints import Taint
from manyfold.query.model import Serializable

if TYPE_CHECKING:
    from manyfold.devices.image import Op, Overflow, ValueKind, Waveform
    from manyfold.devices.protocol import BoardInfo, DeviceCounters, Event


class RouteDirection(str, enum.Enum):
    """Where a device route's events go over the link."""

    LOCAL = "local"
    TO_HOST = "to host"
    FROM_HOST = "from host"
    BOTH = "both"

    @classmethod
    def of(cls, link: int) -> RouteDirection | int:
        """The direction of a route-table ``link`` code (the code itself when unknown)."""
        members = list(cls)
        return members[link] if 0 <= link < len(members) else link


@dataclass(frozen=True)
class DeviceFacts(Serializable):
    """Who answered: the port, and the facts of the device's describe."""

    port: str
    board: str
    partition: str
    manifest_id: bytes | None
    protocol: str
    """The protocol version of the session, as printed (``"1.1"``)."""
    image_status: str
    """``loaded``, or why no partition runs (the image error's name)."""


@dataclass(frozen=True)
class DeviceAnswer(Serializable):
    """An answer, with the facts of the device that gave it."""

    facts: DeviceFacts

    def to_dict(self) -> dict:
        rows = super().to_dict()
        return {**rows.pop("facts"), **rows}


# ------------------------------------------------------------------ topology


@dataclass(frozen=True)
class DeviceRoute(Serializable):
    """A row of the device's route table."""

    index: int
    id: int
    name: str | None
    schema: bytes
    """The route's schema hash (its first 8 bytes)."""
    kind: ValueKind | int
    direction: RouteDirection | int
    seq: int
    """The route's last sequence number."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "id": f"{self.id:08x}"}


@dataclass(frozen=True)
class DeviceNode(Serializable):
    """An operator node: its input and output routes (indexes) and its input mailbox."""

    index: int
    op: Op | int
    input: int
    output: int
    output2: int | None
    mailbox_capacity: int
    overflow: Overflow | int


@dataclass(frozen=True)
class DeviceSource(Serializable):
    """A synthetic source feeding a route."""

    route: int
    waveform: Waveform | int
    period_us: int
    phase_us: int


@dataclass(frozen=True)
class DeviceTopology(DeviceAnswer):
    """Routes, nodes and synthetic sources, in table order."""

    routes: tuple[DeviceRoute, ...]
    nodes: tuple[DeviceNode, ...]
    sources: tuple[DeviceSource, ...]

    def route(self, name_or_index: str | int) -> DeviceRoute:
        """The route with this index or printed name."""
        return next(r for r in self.routes if name_or_index in (r.index, r.name))


# ------------------------------------------------------------------ flow


@dataclass(frozen=True)
class DeviceMailboxFlow(Serializable):
    """A node's input mailbox: depth now and at most, and what it accepted, delivered, dropped
    (overflow policy) and refused."""

    node: int
    op: Op | int | None
    depth: int
    capacity: int
    accepted: int
    delivered: int
    dropped: int
    refused: int
    depth_max: int


@dataclass(frozen=True)
class DeviceFlow(DeviceAnswer):
    flow: tuple[DeviceMailboxFlow, ...]
    """One row per node, by node index."""


# ------------------------------------------------------------------ taints


@dataclass(frozen=True)
class DeviceRouteTaints(Serializable):
    """The taints a route's events carried (``seen``), and those waiting to mark its next
    event (``pending``)."""

    route: int
    name: str | None
    seen: frozenset[Taint]
    pending: frozenset[Taint]


@dataclass(frozen=True)
class DeviceTaints(DeviceAnswer):
    taints: tuple[DeviceRouteTaints, ...]


# ------------------------------------------------------------------ latest, counters, board


@dataclass(frozen=True)
class DeviceLatest(DeviceAnswer):
    """A route's last event (``None`` before its first)."""

    route: int
    name: str | None
    event: Event | None


@dataclass(frozen=True)
class DeviceCounterReport(DeviceAnswer):
    """The device's counters (docs/wire.md 2.8)."""

    device: DeviceCounters


@dataclass(frozen=True)
class DeviceBoardReport(DeviceAnswer):
    """Uptime, stack peak, receive losses, mode, time and capacities: the board's own facts."""

    board_facts: BoardInfo


__all__ = [
    "DeviceAnswer", "DeviceBoardReport", "DeviceCounterReport", "DeviceFacts", "DeviceFlow", "DeviceLatest",
    "DeviceMailboxFlow", "DeviceNode", "DeviceRoute", "DeviceRouteTaints", "DeviceSource", "DeviceTaints",
    "DeviceTopology", "RouteDirection",
]  # fmt: skip
