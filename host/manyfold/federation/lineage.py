"""The lineage of one output followed across nodes and onto the device behind a node.

:func:`walk_lineage` starts from ``(node, route, seq)``, or from a route's latest envelope on
the node that holds the newest one (a ``routes`` query). It asks that node's ``lineage``; every
ancestor held elsewhere (``elsewhere``: node id, route, seq) is asked of the node holding it
(ids become names from each node's query answers), each envelope at most once, at most
``questions_max`` lineage questions in all. A step whose route a device partition produces (the
plan's manifest says so, or the node's device answers list the route) is marked as on that
device; the device's own facts for each such route (a ``device`` query, ``what=latest``) are
attached.
"""

from __future__ import annotations

from dataclasses import dataclass

from manyfold.cluster.admin import AdminError, Lineage, parse_lineage
from manyfold.federation.answers import DeviceReport, NodeTopology, RouteState
from manyfold.federation.cluster_answer import DEFAULT_PRINCIPAL, DEFAULT_TIMEOUT_S, Unknown, collect, request
from manyfold.federation.fanout import fan_out
from manyfold.federation.plan_facts import PlanFacts
from manyfold.federation.targets import Target, open_admin
from manyfold.query.model import Serializable

QUESTIONS_MAX = 64
"""Lineage questions asked at most in one walk (each node is asked about each envelope once)."""
DEVICE_QUESTIONS_MAX = 8
"""Device questions asked at most in one walk (one per device route met)."""


class LineageWalkError(ValueError):
    """The walk cannot start: no answering node holds the route (or the start node did not answer)."""


@dataclass(frozen=True)
class ParentRef(Serializable):
    node: str
    """The holding node's name (``?`` when no answering node has that id)."""
    route: str
    seq: int


@dataclass(frozen=True)
class WalkStep(Serializable):
    """One envelope: the node that answered for it, its route, sequence number, event time,
    taints (by name), parents, and the device partition it ran on (None: on the node itself)."""

    node: str
    route: str
    seq: int
    time_us: int | None
    taints: tuple[str, ...]
    parents: tuple[ParentRef, ...]
    device: str | None = None


@dataclass(frozen=True)
class DeviceStop(Serializable):
    """Where the walk reached a device: the partition, the node it is behind, the device routes
    met, and the device's own answer for the last of them (or why there is none)."""

    partition: str
    node: str
    routes: tuple[str, ...]
    answer: DeviceReport | None
    refusal: str | None = None


@dataclass(frozen=True)
class CrossLineage(Serializable):
    """The walk: its start, the envelopes met (in walk order), the path of nodes (ending with
    ``device PARTITION`` when it reached one), devices reached, questions asked, and what could
    not be asked or was left (``unanswered``; ``truncated`` when the bound stopped the walk)."""

    node: str
    route: str
    seq: int
    steps: tuple[WalkStep, ...]
    path: tuple[str, ...]
    devices: tuple[DeviceStop, ...]
    questions: int
    unanswered: tuple[Unknown, ...]
    truncated: bool
    answered: tuple[str, ...] = ()
    """The nodes that answered the walk's first question (topology, to name nodes by id)."""
    refused: dict[str, str] | None = None


def _start(targets, principal, route, timeout_s, nobody: str = "no answering node holds an envelope of") -> tuple[str, int]:
    """The node holding the newest envelope of ``route``, and its sequence number."""
    replies = fan_out(targets, request("routes", principal), timeout_s=timeout_s)
    _answered, _unknown, refused, nodes = collect("routes", replies)
    best: tuple[str, int] | None = None
    for name, node_answer in nodes.items():
        states: tuple[RouteState, ...] = node_answer.answer
        for s in states:
            if str(s.route) == route and s.latest is not None and (best is None or s.latest.seq > best[1]):
                best = (name, s.latest.seq)
    if best is None:
        why = f"; refused by {', '.join(sorted(refused))}" if refused else ""
        raise LineageWalkError(f"{nobody} {route}{why}")
    return best


def walk_lineage(
    targets: tuple[Target, ...], route: str, *, node: str | None = None, seq: int | None = None,
    principal: str = DEFAULT_PRINCIPAL, timeout_s: float = DEFAULT_TIMEOUT_S, facts: PlanFacts | None = None,
    questions_max: int = QUESTIONS_MAX,
) -> CrossLineage:  # fmt: skip
    """Follow the lineage of ``route@seq`` held by ``node`` (or the route's newest envelope)
    across the nodes and onto devices (module docs)."""
    facts = facts or PlanFacts()
    topo_replies = fan_out(targets, request("topology", principal), timeout_s=timeout_s)
    answered, unknown, refused, topologies = collect("topology", topo_replies)
    by_name = {}
    names: dict[int, str] = {}
    devices_of: dict[str, tuple[str, ...]] = {}
    for reply in topo_replies:
        if reply.answer is not None:
            name = reply.answer.get("node", reply.target.name)
            by_name[name] = reply.target
            if isinstance(reply.answer.get("id"), int):
                names[reply.answer["id"]] = name
    for name, a in topologies.items():
        t: NodeTopology = a.answer
        devices_of[name] = t.devices
    for name, planned in facts.devices.items():
        devices_of[name] = tuple(dict.fromkeys((*devices_of.get(name, ()), *planned)))
    if not topologies:  # every node refused or is unknown: an answer that says so, not an error
        return CrossLineage(node or "", route, seq or 0, (), (), (), 0, unknown, False, answered, refused)
    if not facts.device_routes:  # no plan: the devices' own route tables say which routes run there
        facts = PlanFacts(facts.partitions, facts.devices, _device_routes(by_name, devices_of, principal, timeout_s))
    if seq is None and node is not None:  # the newest envelope on the node named
        if node not in by_name:
            raise LineageWalkError(f"node {node} did not answer, so the lineage of {route} cannot start there")
        node, seq = _start((by_name[node],), principal, route, timeout_s, f"node {node} holds no envelope of")
    elif seq is None:
        node, seq = _start(tuple(by_name.values()), principal, route, timeout_s)
    elif node is None:
        raise LineageWalkError(f"the lineage of {route}@{seq} needs the node holding it")
    if node not in by_name:
        raise LineageWalkError(f"node {node} did not answer, so the lineage of {route}@{seq} cannot start there")

    clients: dict = {}
    steps: dict[tuple[str, str, int], WalkStep] = {}
    path: list[str] = []
    unanswered: list[Unknown] = list(unknown)
    todo = [(node, route, seq)]
    asked: set[tuple[str, str, int]] = set()
    questions = 0
    try:
        # Bounded: each (node, route, seq) is asked once, and at most questions_max times in all.
        while todo and questions < questions_max:
            holder, r, s = todo.pop(0)
            if (holder, r, s) in asked or (holder, r, s) in steps:
                continue
            asked.add((holder, r, s))
            if holder not in by_name:
                unanswered.append(Unknown(holder, f"holds {r}@{s} but did not answer"))
                continue
            questions += 1
            lineage = _ask_lineage(clients, by_name[holder], holder, principal, r, s, timeout_s, unanswered)
            if lineage is None:
                continue
            if holder not in path:
                path.append(holder)
            for e in lineage.envelopes:
                key = (holder, str(e.route), e.seq)
                if key in steps:
                    continue
                device = _device_of(str(e.route), holder, devices_of, facts)
                parents = tuple(ParentRef(names.get(p.node, "?") if p.node is not None else holder, str(p.route), p.seq) for p in e.parents)
                steps[key] = WalkStep(holder, str(e.route), e.seq, e.time_us, tuple(sorted(t.value for t in e.taints)), parents, device)
            for ref in lineage.elsewhere:
                other = names.get(ref.node) if ref.node is not None else _holder(str(ref.route), holder, topologies, devices_of, facts)
                if other is None:
                    who = f"node id {ref.node}" if ref.node is not None else "an unnamed node"
                    unanswered.append(Unknown(who, f"holds {ref.route}@{ref.seq}; no answering node is known to hold it"))
                elif (other, str(ref.route), ref.seq) not in steps:
                    todo.append((other, str(ref.route), ref.seq))
        truncated = bool(todo)
        device_stops = _devices(clients, by_name, steps.values(), principal, timeout_s)
    finally:
        for c in clients.values():
            c.close()
    for d in device_stops:
        path.append(f"device {d.partition}")
    return CrossLineage(
        node, route, seq, tuple(steps.values()), tuple(path), device_stops, questions, tuple(unanswered), truncated, answered, refused
    )


def _client(clients: dict, target: Target, name: str, timeout_s: float):
    if name not in clients:
        clients[name] = open_admin(target, timeout_s)
    return clients[name]


def _ask_lineage(clients, target, holder, principal, r, s, timeout_s, unanswered) -> Lineage | None:
    try:
        data = _client(clients, target, holder, timeout_s).ask(request("lineage", principal, route=r, seq=s))
    except AdminError as error:
        unanswered.append(Unknown(holder, f"lineage of {r}@{s}: {error}"))
        return None
    if "refused" in data:
        unanswered.append(Unknown(holder, f"refused the lineage of {r}@{s}: {data['refused']}"))
        return None
    try:
        return parse_lineage(data.get("answer"), f"node {holder}")
    except AdminError as error:
        unanswered.append(Unknown(holder, str(error)))
        return None


def _holder(route: str, asker: str, topologies, devices_of, facts: PlanFacts) -> str | None:
    """The node holding ``route`` when the asked node could not name it (it has no link towards
    the holder): the node with the device producing it, else the one other node listing it."""
    partition = facts.device_routes.get(route)
    if partition is not None:
        owners = [n for n, ds in devices_of.items() if partition in ds]
        if len(owners) == 1:
            return owners[0]
    listing = [n for n, a in topologies.items() if n != asker and any(str(r.route) == route for r in a.answer.routes)]
    return listing[0] if len(listing) == 1 else None


def _device_of(route: str, holder: str, devices_of: dict[str, tuple[str, ...]], facts: PlanFacts) -> str | None:
    partition = facts.device_routes.get(route)
    if partition is not None and partition in devices_of.get(holder, ()):
        return partition
    return None


def _device_routes(by_name, devices_of, principal, timeout_s) -> dict[str, str]:
    """Route name -> device partition, from each device's topology (asked of its node)."""
    out: dict[str, str] = {}
    for holder, partitions in devices_of.items():
        for partition in partitions[:DEVICE_QUESTIONS_MAX]:
            if holder not in by_name:
                continue
            try:
                with open_admin(by_name[holder], timeout_s) as client:
                    data = client.ask(request("device", principal, partition=partition, what="topology"))
            except AdminError:
                continue
            answer = data.get("answer")
            for r in (answer.get("routes") or []) if isinstance(answer, dict) else []:
                if isinstance(r, dict) and isinstance(r.get("name"), str):
                    out[r["name"]] = partition
    return out


def _devices(clients, by_name, steps, principal, timeout_s) -> tuple[DeviceStop, ...]:
    """For each device reached: its routes met, and the device's answer for the last of them."""
    met: dict[tuple[str, str], list[str]] = {}
    for s in steps:
        if s.device is not None:
            routes = met.setdefault((s.device, s.node), [])
            if s.route not in routes:
                routes.append(s.route)
    out = []
    for (partition, holder), routes in list(met.items())[:DEVICE_QUESTIONS_MAX]:
        ask = request("device", principal, partition=partition, what="latest", route=routes[-1])
        try:
            data = _client(clients, by_name[holder], holder, timeout_s).ask(ask)
        except AdminError as error:
            out.append(DeviceStop(partition, holder, tuple(routes), None, str(error)))
            continue
        if "refused" in data:
            out.append(DeviceStop(partition, holder, tuple(routes), None, str(data["refused"])))
        elif isinstance(data.get("answer"), dict):
            out.append(DeviceStop(partition, holder, tuple(routes), DeviceReport(partition, "latest", data["answer"])))
        else:
            out.append(DeviceStop(partition, holder, tuple(routes), None, "the node's answer has no device answer"))
    return tuple(out)


__all__ = ["DEVICE_QUESTIONS_MAX", "QUESTIONS_MAX", "CrossLineage", "DeviceStop", "LineageWalkError", "ParentRef", "WalkStep", "walk_lineage"]
