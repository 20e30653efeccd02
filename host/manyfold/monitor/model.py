"""The monitor's typed snapshot of a cluster: what each poll saw, plus what it inferred (node
states by lease, event rates from counter deltas, taints that appeared). ``to_dict()`` is the
JSON of ``manyfold monitor --json``, ``/snapshot.json`` and the page's server-sent events."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class NodeState(str, enum.Enum):
    """``online``: answered this poll; ``stale``: missed polls, but answered within the lease
    (or the monitor started less than a lease ago); ``gone``: no answer for a lease or more."""

    ONLINE = "online"
    STALE = "stale"
    GONE = "gone"


@dataclass(frozen=True)
class DeviceView:
    """A device partition behind a node (the node's ``status`` ``devices``)."""

    partition: str
    port: str
    where: str
    state: str


@dataclass(frozen=True)
class NodeView:
    """One node as last seen. ``age_s``: seconds since its last answer (None: never answered)."""

    name: str
    admin: str
    state: NodeState
    age_s: float | None
    incarnation: int | None
    pid: int | None
    partitions: tuple[str, ...]
    devices: tuple[DeviceView, ...]
    taints_known: bool
    """False when the node refused or did not answer the taints query this poll."""
    error: str | None
    """Why the last poll got no status from it, or None."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["state"] = self.state.value
        d["partitions"] = list(self.partitions)
        d["devices"] = [asdict(x) for x in self.devices]
        return d


@dataclass(frozen=True)
class LinkView:
    """One end of a link, as its node reported it last. Rates are events per second between the
    last two answers of that node (None until two answers of the same incarnation)."""

    node: str
    name: str
    peer: str | None
    transport: str
    state: str
    events_tx: int
    events_rx: int
    tx_per_s: float | None
    rx_per_s: float | None
    dropped: int
    queued: int
    unacked: int
    requested: tuple[str, ...]
    provided: tuple[str, ...]
    missing: tuple[str, ...]
    fresh: bool
    """True when the node answered this poll (else these are its last known numbers)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("requested", "provided", "missing"):
            d[key] = list(d[key])
        for key in ("tx_per_s", "rx_per_s"):
            if d[key] is not None:
                d[key] = round(d[key], 3)
        return d


@dataclass(frozen=True)
class TaintOriginView:
    """A taint and where it was added: ``kind`` (node, mailbox, link, route, producer) and name."""

    taint: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.taint} ({self.kind} {self.name})"


@dataclass(frozen=True)
class RouteTaintsView:
    """The taints a node reports on one route (its ``taints`` query answer)."""

    node: str
    route: str
    taints: tuple[str, ...]
    repaired: tuple[str, ...]
    added: tuple[TaintOriginView, ...] = ()
    """Where each taint was added (as far as the node knows)."""

    def to_dict(self) -> dict:
        return {
            "node": self.node, "route": self.route, "taints": list(self.taints), "repaired": list(self.repaired),
            "added": [asdict(a) for a in self.added],
        }  # fmt: skip


@dataclass(frozen=True)
class MonitorEvent:
    """Something that changed between polls: a node's state (``online``, ``stale``, ``gone``,
    ``restarted``), a link's state (``link``), a taint that ``appeared`` or was ``repaired``."""

    time_s: float
    """Wall-clock time (Unix seconds) of the poll that saw it."""
    kind: str
    node: str
    text: str
    route: str | None = None
    taints: tuple[str, ...] = ()
    """For ``appeared`` and ``repaired``: the taints, on ``route``."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["time_s"] = round(self.time_s, 3)
        d["taints"] = list(self.taints)
        return d


@dataclass(frozen=True)
class ClusterSnapshot:
    """One poll of the whole cluster. ``events``: what changed at this poll only."""

    seq: int
    time_s: float
    interval_s: float
    lease_s: float
    nodes: tuple[NodeView, ...]
    links: tuple[LinkView, ...]
    taints: tuple[RouteTaintsView, ...]
    events: tuple[MonitorEvent, ...]

    def node(self, name: str) -> NodeView:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "seq": self.seq, "time_s": round(self.time_s, 3), "interval_s": self.interval_s, "lease_s": self.lease_s,
            "nodes": [n.to_dict() for n in self.nodes], "links": [k.to_dict() for k in self.links],
            "taints": [t.to_dict() for t in self.taints], "events": [e.to_dict() for e in self.events],
        }  # fmt: skip


__all__ = ["ClusterSnapshot", "DeviceView", "LinkView", "MonitorEvent", "NodeState", "NodeView", "RouteTaintsView", "TaintOriginView"]
