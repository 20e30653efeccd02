"""The query functions: read the graph's state and return typed answers."""

from __future__ import annotations

from collections.abc import Iterable

from manyfold.graph import Envelope, Graph, Layer, NodeStats, Route
from manyfold.graph.taints import Taint, taints_from_bits, taints_of
from manyfold.query.model import (
    AuditRecord,
    EdgeFlow,
    EdgeInfo,
    ExpiredWork,
    Flow,
    GatedWork,
    HealthState,
    InstanceHealth,
    Lineage,
    LineageStep,
    MailboxFlow,
    NodeInfo,
    PartHealth,
    PayloadDemand,
    PayloadOpen,
    PrimitiveInfo,
    RouteAudit,
    RouteInfo,
    RouteTaints,
    SchedulerState,
    StoreInfo,
    TaintOrigin,
    Topology,
    Watermark,
)

WATERMARKED = ("event_time_window", "processing_time_window", "join", "resequence")


def topology(graph: Graph) -> Topology:
    """Routes (owner, schema, producer, consumers), nodes and edges with their policies."""
    native = graph._native
    edges = native.edges()
    consumers: dict[Route, list[str]] = {}
    for e in edges:
        if e.active:
            consumers.setdefault(e.source, []).append(f"{e.target_kind} {e.target}")
    routes = []
    for r in native.routes():
        schema = graph.schema_of(r.route)
        routes.append(
            RouteInfo(r.route, r.route.owner, schema.label, r.schema_hash, r.producer_kind, r.producer, tuple(consumers.get(r.route, ())), r.envelopes)
        )
    instances = sorted(graph.primitives.values(), key=lambda p: p.instance)
    instance_of = {n: p.instance for p in instances for n in p.nodes}
    nodes = [
        NodeInfo(
            n.name, n.kind, tuple(n.inputs), tuple(n.outputs), dict(n.params), n.deterministic, n.buffered, n.buffered_max,
            instance_of.get(n.name),
        )
        for n in native.nodes()
    ]
    edge_infos = [
        EdgeInfo(e.name, e.source, e.target_kind, e.target, e.port, e.policy, e.mailbox_capacity, e.overflow) for e in edges
    ]
    primitives = tuple(
        PrimitiveInfo(p.instance, p.contract, p.version, tuple(p.nodes), tuple(p.routes), tuple(StoreInfo(s.name, s.kind, s.sync) for s in p.stores))
        for p in instances
    )
    return Topology(tuple(routes), tuple(nodes), tuple(edge_infos), primitives)


def health(graph: Graph) -> list[InstanceHealth]:
    """Every installed primitive instance with a node in this graph, by name: its state (the
    worst of its parts': healthy, degraded or blocked) and why; each part's state and why (its
    operator's health joined with its input mailboxes')."""
    by_node = {name: (HealthState(state), tuple(why)) for name, state, why in graph._native.node_health()}
    out = []
    for p in sorted(graph.primitives.values(), key=lambda p: p.instance):
        parts = tuple(PartHealth(n, *by_node[n]) for n in p.nodes if n in by_node)
        if not parts:
            continue
        why = tuple(f"{part.node}: {w}" for part in parts for w in part.why)
        out.append(InstanceHealth(p.instance, p.contract, p.version, HealthState.worst(part.state for part in parts), why, parts))
    return out


def flow(graph: Graph) -> Flow:
    """Per mailbox: depth, capacity, losses, and busy/blocked/idle milliseconds per second;
    per edge: deliveries and epoch holds."""
    native = graph._native
    mailboxes = []
    for m in native.mailboxes():
        span_s = m.span_us / 1e6
        busy = (m.busy_ns / 1e6) / span_s if span_s > 0 else 0.0
        blocked = (m.full_us / 1e3) / span_s if span_s > 0 else 0.0
        busy, blocked = min(busy, 1000.0), min(blocked, 1000.0)
        mailboxes.append(
            MailboxFlow(
                m.name, m.edge, m.depth, m.capacity, m.overflow, m.accepted, m.delivered,
                m.dropped_oldest + m.dropped_newest, m.rejected, m.blocked, m.depth_max,
                round(busy, 3), round(blocked, 3), round(max(0.0, 1000.0 - busy - blocked), 3),
            )
        )
    edge_flows = tuple(EdgeFlow(e.name, e.delivered, e.held, e.held_dropped) for e in native.edges())
    return Flow(tuple(mailboxes), edge_flows)


def watermarks(graph: Graph) -> tuple[Watermark, ...]:
    """Watermarks of every window, join and resequencer."""
    return tuple(
        Watermark(n.name, n.kind, n.watermark_us, n.counters.get("late", 0), n.counters.get("forced", 0))
        for n in graph._native.nodes()
        if n.kind in WATERMARKED
    )


def scheduler(graph: Graph) -> SchedulerState:
    """Ready work, timers, gated guards and expired guards."""
    s = graph._native.scheduler()
    gated = tuple(GatedWork(g.guard_id, g.route, g.not_before_epoch, g.not_before_us, g.expires_at_us, g.submitted_us) for g in s.gated)
    expired = tuple(ExpiredWork(e.guard_id, e.route, e.expired_at_us) for e in s.expired)
    return SchedulerState(s.now_us, s.epoch, s.ready, s.timers, gated, expired, s.expired_total, s.gated_max, s.gated_refused)


def _upstream(graph: Graph, route: Route) -> tuple[list[NodeStats], list[str], list[Route]]:
    """Nodes, input-edge names and routes upstream of ``route`` (itself included)."""
    nodes = graph._native.nodes()
    producer_of = {out: n for n in nodes for out in n.outputs}
    seen_routes: list[Route] = []
    seen_nodes: list[NodeStats] = []
    edge_names: list[str] = []
    frontier = [route]
    # Bounded: each route and node is visited once.
    while frontier:
        r = frontier.pop()
        if r in seen_routes:
            continue
        seen_routes.append(r)
        node = producer_of.get(r)
        if node is None or node in seen_nodes:
            continue
        seen_nodes.append(node)
        edge_names.extend(node.input_edges)
        frontier.extend(node.inputs)
    return seen_nodes, edge_names, seen_routes


def taints(graph: Graph, route: Route | None = None) -> tuple[RouteTaints, ...]:
    """Per route (or for one): the taints seen, where upstream each was added, and which
    upstream nodes repaired which taints (with their proofs)."""
    native = graph._native
    mailboxes = {m.name: m for m in native.mailboxes()}
    holds_dropped = {e.name for e in native.edges() if e.held_dropped > 0}
    out = []
    for info in native.routes():
        r = info.route
        if route is not None and r != route:
            continue
        seen = taints_from_bits(info.taint_bits)
        nodes, edge_names, routes = _upstream(graph, r)
        added: list[TaintOrigin] = []
        repaired: list[TaintOrigin] = []
        for t in sorted(seen, key=lambda t: t.bit):
            found = False
            for n in nodes:
                if t.value in n.taints_added:
                    origin_kind = "link" if n.kind == "forward" and "link_taints" in n.params else "node"
                    added.append(TaintOrigin(t, origin_kind, n.name))
                    found = True
            if t is Taint.DELIVERY_DROPPED:
                for name in edge_names:
                    m = mailboxes.get(name)
                    if m and (m.dropped_oldest + m.dropped_newest + m.rejected) > 0:
                        added.append(TaintOrigin(t, "mailbox", name))
                        found = True
                    if name in holds_dropped:
                        added.append(TaintOrigin(t, "epoch_hold", name))
                        found = True
            if t is Taint.DET_NONREPLAYABLE:
                for u in routes:
                    if u.layer == Layer.EPHEMERAL:
                        added.append(TaintOrigin(t, "route", str(u)))
                        found = True
            if not found:
                added.append(TaintOrigin(t, "producer", info.producer if info.producer_kind == "external" else "upstream producer"))
        for n in nodes:
            # Only nodes that declare a proof repair; others may merely not have passed a
            # tainted value on (a filter), which is not a repair.
            if "proof" not in n.params:
                continue
            for name in n.taints_removed:
                repaired.append(TaintOrigin(Taint(name), "node", n.name, n.params["proof"]))
        out.append(RouteTaints(r, seen, tuple(added), tuple(repaired)))
    return tuple(out)


def _producer_label(envelope: Envelope) -> str:
    kind, name = envelope.producer
    return f"{kind} {name}".strip()


def lineage(graph: Graph, envelope: Envelope | Route, *, nodes_max: int = 10_000) -> Lineage:
    """What explains ``envelope`` (or a route's latest envelope): its retained ancestors, the
    inputs among them, the payloads opened and the control epochs."""
    if isinstance(envelope, Route):
        latest = graph.latest(envelope)
        if latest is None:
            from manyfold.graph.errors import RouteError

            raise RouteError(f"route {envelope} has no envelope yet, so it has no lineage")
        envelope = latest
    found, missing = graph.lineage(envelope, nodes_max=nodes_max)
    steps = []
    for e in found:
        payload = e.payload_ref[0]
        opens = ()
        if payload == "lazy":
            opens = tuple(PayloadOpen(*o) for o in graph._native.payload_opens(e.route, e.seq))
        steps.append(
            LineageStep(
                e.id, e.route, _producer_label(e), e.value, e.event_time_us, e.control_epoch, taints_of(e),
                tuple(e.parents), payload, opens,
            )
        )
    return Lineage(
        envelope.id,
        tuple(steps),
        tuple(s.id for s in steps if not s.parents),
        tuple(s.id for s in steps if s.opens),
        tuple(sorted({s.control_epoch for s in steps if s.control_epoch is not None})),
        tuple(missing),
    )


def payload_demand(graph: Graph, route: Route) -> PayloadDemand:
    """Lazy payload demand on a bulk route, and which consumer caused each open."""
    d = graph._native.payload_demand(route)
    return PayloadDemand(route, d.metadata_events, d.opens, d.cache_hits, d.bytes_materialized, d.failures, dict(d.by_consumer))


def route_audit(graph: Graph, route: Route) -> RouteAudit:
    """Who produced, consumed, wrote and opened what on ``route``, in order (publishes and
    deliveries need ``audit=True`` on the route; opens, drops and refusals are always kept)."""
    return RouteAudit(route, tuple(AuditRecord(*e) for e in graph._native.audit(route)))


def routes_matching(graph: Graph, routes: Iterable[Route]) -> list[Route]:
    """Declared routes among ``routes`` (helper for reports)."""
    declared = set(graph.routes)
    return [r for r in routes if r in declared]
