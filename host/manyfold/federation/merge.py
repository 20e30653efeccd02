"""One cluster-wide answer per kind from each node's typed answer (:mod:`answers`).

- topology: which node hosts each partition and device (planned and answered), and each route
  with the nodes that hold it;
- routes: each route with the nodes holding it and the newest latest value among them;
- flow: the points under pressure (mailboxes dropping or full, link queues, rate limiters
  holding back), each with its node (every node's whole flow stays in ``nodes``);
- watermarks: every watermark with its node, and each node's control epoch;
- taints: per route, the union of taints, which nodes see them, and where each was added or
  repaired (with the node);
- links: each link from both ends (capabilities requested, provided and missing at each end);
- counters: sums over the nodes, and each node's;
- health: each primitive instance once, its state the worst across the nodes holding its parts,
  its reasons prefixed by the node that gave them;
- device: the device's answer (from the node that owns it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manyfold.federation.answers import Counters, DeviceReport, LinkReport, NodeFlow, NodeTopology, NodeWatermarks, RouteState
from manyfold.federation.plan_facts import PlanFacts
from manyfold.graph import Route
from manyfold.graph.taints import Taint
from manyfold.query.model import HealthReport, HealthState, PartHealth, PrimitiveInfo, RouteTaints, Serializable, TaintOrigin, Watermark


@dataclass(frozen=True)
class PartitionOwner(Serializable):
    """A partition (or a device partition), the node whose answer says it hosts it, and the node
    the plan puts it on (None without a plan)."""

    partition: str
    device: bool
    node: str | None
    planned: str | None
    also: tuple[str, ...] = ()
    """Other nodes whose answers say they host it too: a deployment fault, shown, never merged away."""

    @property
    def hosts(self) -> str:
        """The hosting node(s) as people read them: ``no answer`` when none answered."""
        if self.node is None:
            return "no answer"
        return self.node if not self.also else f"{', '.join((self.node, *self.also))} (hosted twice)"


@dataclass(frozen=True)
class RouteHolders(Serializable):
    route: Route
    owner: str
    producer: str
    nodes: tuple[str, ...]
    """The nodes whose partitions produce or consume the route."""


@dataclass(frozen=True)
class PrimitiveHolders(Serializable):
    """A primitive instance, its parts, and the nodes holding some of them."""

    primitive: PrimitiveInfo
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class ClusterTopology(Serializable):
    manifest_ids: dict[str, str | None]
    """Each answering node's manifest id: one value when the cluster runs one manifest."""
    partitions: tuple[PartitionOwner, ...]
    routes: tuple[RouteHolders, ...]
    primitives: tuple[PrimitiveHolders, ...] = ()
    """The primitive instances the answering nodes hold parts of, by name."""


@dataclass(frozen=True)
class InstanceAcross(Serializable):
    """A primitive instance across the cluster: the worst state of its parts on every node that
    holds some, why (each reason prefixed by its node), those nodes, and every part's health."""

    instance: str
    contract: str
    version: int
    state: HealthState
    why: tuple[str, ...]
    nodes: tuple[str, ...]
    parts: tuple[PartHealth, ...]


@dataclass(frozen=True)
class RouteAcross(Serializable):
    route: Route
    nodes: tuple[str, ...]
    latest_node: str | None
    """The node holding the newest latest value (highest sequence number)."""
    latest: Any


@dataclass(frozen=True)
class Pressure(Serializable):
    """A place where work waits or is lost: a mailbox, a link queue or a rate limiter, on a node."""

    node: str
    kind: str
    name: str
    depth: int | None
    capacity: int | None
    dropped: int


@dataclass(frozen=True)
class NodeWatermark(Serializable):
    node: str
    watermark: Watermark


@dataclass(frozen=True)
class ClusterWatermarks(Serializable):
    watermarks: tuple[NodeWatermark, ...]
    epochs: dict[str, int | None]


@dataclass(frozen=True)
class PlacedOrigin(Serializable):
    node: str
    origin: TaintOrigin


@dataclass(frozen=True)
class TaintsAcross(Serializable):
    route: Route
    taints: frozenset[Taint]
    nodes: tuple[str, ...]
    added: tuple[PlacedOrigin, ...]
    repaired: tuple[PlacedOrigin, ...]


@dataclass(frozen=True)
class LinkEnd(Serializable):
    node: str
    link: LinkReport


@dataclass(frozen=True)
class LinkAcross(Serializable):
    """A link from both ends: what each end requested, was provided and misses (tainted)."""

    name: str
    transport: str
    requested: tuple[str, ...]
    provided: tuple[str, ...]
    missing: tuple[str, ...]
    ends: tuple[LinkEnd, ...]


@dataclass(frozen=True)
class CountersAcross(Serializable):
    totals: dict[str, int]
    by_node: dict[str, Counters]


def merge(kind: str, by_node: dict[str, Any], facts: PlanFacts) -> Any:
    """The merged answer of ``kind`` from each answering node's typed answer (None for kinds
    merged elsewhere, such as lineage)."""
    return _MERGERS[kind](by_node, facts) if kind in _MERGERS else None


def _topology(by_node: dict[str, NodeTopology], facts: PlanFacts) -> ClusterTopology:
    owners: dict[tuple[str, bool], list[str]] = {}
    planned_devices = {p for names in facts.devices.values() for p in names}
    for node, t in by_node.items():
        claimed = [(p, p in t.devices or p in planned_devices) for p in t.partitions] + [(d, True) for d in t.devices]
        for key in dict.fromkeys(claimed):
            owners.setdefault(key, []).append(node)
    # A partition planned on a node that did not answer is listed with no owner: never omitted.
    for names, device in ((facts.partitions, False), (facts.devices, True)):
        for planned_names in names.values():
            for p in planned_names:
                if (p, device) not in owners and (p, not device) not in owners:
                    owners[(p, device)] = []
    partitions = tuple(
        PartitionOwner(p, device, nodes[0] if nodes else None, facts.planned_node(p), tuple(nodes[1:]))
        for (p, device), nodes in sorted(owners.items(), key=lambda kv: kv[0][0])
    )
    routes: dict[str, RouteHolders] = {}
    for node, t in by_node.items():
        for r in t.routes:
            held = routes.get(str(r.route))
            nodes = (held.nodes if held else ()) + (node,)
            routes[str(r.route)] = RouteHolders(r.route, r.owner, held.producer if held and held.producer else r.producer, nodes)
    instances: dict[str, PrimitiveHolders] = {}
    for node, t in by_node.items():
        for p in t.primitives:
            held = instances.get(p.instance)
            instances[p.instance] = PrimitiveHolders(p, (held.nodes if held else ()) + (node,))
    return ClusterTopology(
        {n: t.manifest_id for n, t in by_node.items()}, partitions, tuple(routes[k] for k in sorted(routes)),
        tuple(instances[k] for k in sorted(instances)),
    )  # fmt: skip


def _routes(by_node: dict[str, tuple[RouteState, ...]], _facts: PlanFacts) -> tuple[RouteAcross, ...]:
    seen: dict[str, list[tuple[str, RouteState]]] = {}
    for node, states in by_node.items():
        for s in states:
            seen.setdefault(str(s.route), []).append((node, s))
    out = []
    for name in sorted(seen):
        holders = seen[name]
        with_latest = [(n, s) for n, s in holders if s.latest is not None]
        newest = max(with_latest, key=lambda ns: ns[1].latest.seq, default=None)
        out.append(RouteAcross(holders[0][1].route, tuple(n for n, _ in holders), newest[0] if newest else None, newest[1].latest if newest else None))
    return tuple(out)


def _flow(by_node: dict[str, NodeFlow], _facts: PlanFacts) -> tuple[Pressure, ...]:
    out = []
    for node, f in by_node.items():
        for m in f.mailboxes:
            if m.dropped or m.rejected or m.depth >= m.capacity > 0:
                out.append(Pressure(node, "mailbox", m.name, m.depth, m.capacity, m.dropped + m.rejected))
        for q in f.link_queues:
            if q.dropped or q.depth:
                out.append(Pressure(node, "link queue", f"{q.link} {q.route}", q.depth, q.capacity, q.dropped))
        for r in f.rate_limiters:
            if r.dropped:
                out.append(Pressure(node, r.kind, r.node, None, None, r.dropped))
    return tuple(out)


def _watermarks(by_node: dict[str, NodeWatermarks], _facts: PlanFacts) -> ClusterWatermarks:
    rows = tuple(NodeWatermark(node, w) for node, ws in by_node.items() for w in ws.watermarks)
    return ClusterWatermarks(rows, {node: ws.epochs.epoch if ws.epochs else None for node, ws in by_node.items()})


def _taints(by_node: dict[str, tuple[RouteTaints, ...]], _facts: PlanFacts) -> tuple[TaintsAcross, ...]:
    routes: dict[str, list[tuple[str, RouteTaints]]] = {}
    for node, rows in by_node.items():
        for t in rows:
            routes.setdefault(str(t.route), []).append((node, t))
    out = []
    for name in sorted(routes):
        rows = routes[name]
        out.append(TaintsAcross(
            rows[0][1].route, frozenset().union(*(t.taints for _, t in rows)), tuple(n for n, t in rows if t.taints),
            tuple(PlacedOrigin(n, o) for n, t in rows for o in t.added), tuple(PlacedOrigin(n, o) for n, t in rows for o in t.repaired),
        ))  # fmt: skip
    return tuple(out)


def _links(by_node: dict[str, tuple[LinkReport, ...]], _facts: PlanFacts) -> tuple[LinkAcross, ...]:
    ends: dict[str, list[LinkEnd]] = {}
    for node, links in by_node.items():
        for link in links:
            ends.setdefault(link.name, []).append(LinkEnd(node, link))
    out = []
    for name in sorted(ends):
        both = ends[name]
        union = lambda attr: tuple(sorted({c for e in both for c in getattr(e.link, attr)}))  # noqa: E731
        out.append(LinkAcross(name, both[0].link.transport, union("requested"), union("provided"), union("missing"), tuple(both)))
    return tuple(out)


def _counters(by_node: dict[str, Counters], _facts: PlanFacts) -> CountersAcross:
    totals = {name: sum(getattr(c, name) for c in by_node.values()) for name in Counters.SUMMED}
    return CountersAcross(totals, dict(by_node))


def _health(by_node: dict[str, HealthReport], _facts: PlanFacts) -> tuple[InstanceAcross, ...]:
    seen: dict[str, list[tuple[str, object]]] = {}
    for node, report in by_node.items():
        for i in report.instances:
            seen.setdefault(i.instance, []).append((node, i))
    out = []
    for name in sorted(seen):
        rows = seen[name]
        first = rows[0][1]
        out.append(InstanceAcross(
            name, first.contract, first.version, HealthState.worst(i.state for _, i in rows),
            tuple(f"{node}: {w}" for node, i in rows for w in i.why), tuple(node for node, _ in rows),
            tuple(p for _, i in rows for p in i.parts),
        ))  # fmt: skip
    return tuple(out)


def _device(by_node: dict[str, DeviceReport], _facts: PlanFacts) -> DeviceReport | None:
    return next(iter(by_node.values()), None)


_MERGERS = {
    "topology": _topology, "routes": _routes, "flow": _flow, "watermarks": _watermarks, "taints": _taints,
    "links": _links, "counters": _counters, "device": _device, "health": _health,
}  # fmt: skip


__all__ = [
    "ClusterTopology", "ClusterWatermarks", "CountersAcross", "InstanceAcross", "LinkAcross", "LinkEnd", "NodeWatermark",
    "PartitionOwner", "PlacedOrigin", "PrimitiveHolders", "Pressure", "RouteAcross", "RouteHolders", "TaintsAcross", "merge",
]  # fmt: skip
