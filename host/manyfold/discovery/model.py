"""What ``manyfold nodes`` lists, typed: each node found (where, what it hosts, whether it
answered, how it was found) and the devices behind it. Dicts only in ``to_dict``/``from_dict``
(the JSON boundary)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from manyfold.cluster.address import Address


class NodeState(str, enum.Enum):
    """``online``: it answered ``status``; ``unreachable``: it was named (configured, listed by
    a peer or heard on the beacon) but did not answer within the timeout."""

    ONLINE = "online"
    UNREACHABLE = "unreachable"


class Found(str, enum.Enum):
    """How a node became a candidate: given on the command line or in the plan (``configured``),
    listed in another node's ``peers`` answer (``gossip``), heard on the beacon group (``beacon``),
    present at a Zenoh router (``liveliness``)."""

    CONFIGURED = "configured"
    GOSSIP = "gossip"
    BEACON = "beacon"
    LIVELINESS = "liveliness"
    """Its Zenoh liveliness token, held by the router (``--cluster zenoh:ENDPOINT``)."""


def _text(data: dict, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Device:
    """A device partition behind a node: its serial port, where it runs, its state (from the
    node's ``status`` ``devices``; ``planned`` when only the plan names it)."""

    partition: str
    port: str | None = None
    where: str | None = None
    state: str = "unknown"

    @staticmethod
    def from_dict(data: object) -> "Device | None":
        if not isinstance(data, dict) or not isinstance(data.get("partition"), str):
            return None
        return Device(data["partition"], _text(data, "port"), _text(data, "where"), _text(data, "state") or "unknown")

    def to_dict(self) -> dict:
        return {"partition": self.partition, "port": self.port, "where": self.where, "state": self.state}


@dataclass(frozen=True)
class FoundNode:
    """One node: its name (the node's own once it answered; else what a peer or the plan said,
    else the admin address), admin endpoint, state and how it was found."""

    name: str
    admin: Address | None
    """Its admin endpoint; None for a node found through Zenoh (``zenoh_key`` says where it is asked)."""
    state: NodeState
    found: tuple[Found, ...]
    id: int | None = None
    incarnation: int | None = None
    listen: str | None = None
    partitions: tuple[str, ...] = ()
    manifest_id: str | None = None
    other_manifest: bool = False
    """True when its manifest is not the one most online nodes run."""
    devices: tuple[Device, ...] = ()
    error: str | None = None
    """Why it is unreachable."""
    zenoh_key: str | None = None
    """Its admin queryable's key, when found through Zenoh."""

    @property
    def where(self) -> str:
        """Where it is asked: its admin ``HOST:PORT``, or ``zenoh KEY``."""
        return f"zenoh {self.zenoh_key}" if self.admin is None else str(self.admin)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "id": self.id, "incarnation": self.incarnation, "admin": None if self.admin is None else str(self.admin),
            **({"zenoh_key": self.zenoh_key} if self.zenoh_key is not None else {}), "listen": self.listen,
            "partitions": list(self.partitions), "manifest_id": self.manifest_id, "other_manifest": self.other_manifest,
            "state": self.state.value, "found": [f.value for f in self.found], "devices": [d.to_dict() for d in self.devices],
            "error": self.error,
        }  # fmt: skip


@dataclass(frozen=True)
class Listing:
    """Every node found, by name then admin address; ``manifest_id`` is the one most online
    nodes run."""

    nodes: tuple[FoundNode, ...] = ()
    manifest_id: str | None = None
    beacons_heard: int = 0
    rounds: int = 0
    """Rounds of ``peers`` asks it took (bounded by :data:`manyfold.discovery.ROUNDS_MAX`)."""
    notes: tuple[str, ...] = field(default=())
    """What was left out (candidates over the bound), as sentences."""

    @property
    def online(self) -> tuple[FoundNode, ...]:
        return tuple(n for n in self.nodes if n.state is NodeState.ONLINE)

    def node(self, name: str) -> FoundNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "nodes": [n.to_dict() for n in self.nodes], "manifest_id": self.manifest_id, "beacons_heard": self.beacons_heard,
            "rounds": self.rounds, "notes": list(self.notes),
        }  # fmt: skip


__all__ = ["Device", "Found", "FoundNode", "Listing", "NodeState"]
