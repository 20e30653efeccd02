"""Placement: which node hosts each partition of a manifest, where nodes listen, who dials
each link. :func:`make_plan` is deterministic: the same manifest, nodes file and free ports give
the same :class:`~manyfold.cluster.plan.Plan`.

The manifest must keep the link rules of ``manyfold validate`` (:data:`LINK_RULES`). Then, in
order (each decision is written into the plan as a comment):

1. A partition with no routes and no nodes is not placed.
2. A partition named in a node's ``partitions`` goes to that node.
3. A partition with placement constraints goes to the first node (in file order) whose tags
   hold them all; when no node's do and the nodes file declares nodes, that is an error.
4. Any other partition gets a node of its own, named after it (a node of the nodes file with
   that name takes it).
5. A device partition (profile ``embedded-lite``) goes with the node hosting the partition at
   the other end of its links, and names its port: the nodes file's ``[devices]`` entry, else
   ``sim:BOARD`` (the host simulation of its placement's board).
6. A node runs ``python`` when one of its partitions has Python operators, it owns a device or
   runs an app, else ``native``.
7. Node ids: the nodes file's, else the smallest free id, in node order. Ports: the nodes file's,
   else free ones from ``base_port + 1`` (mesh) and ``base_port + 101`` (admin) upward.
8. A manifest link between partitions on two nodes becomes a plan link on the manifest's
   transport (udp or tcp), dialed by the node with the lower id (an authenticated link needs a
   key file from the nodes file); between partitions of one node
   it runs in process; to a device it is the device's serial link, owned by the node.
9. A link on ``zenoh`` has no dialer: both ends meet at the Zenoh router of the plan's
   ``[zenoh]`` table (the nodes file's, else a client of ``tcp/127.0.0.1:7447``), and every node
   joins Zenoh; the names that become key chunks must not contain ``/ * $ ? #``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from manyfold.cluster.address import Address, Transport
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.nodes_file import NodeRequest, NodesFile
from manyfold.cluster.plan import NODE_ID_MAX, DeviceAssignment, Plan, PlannedLink, PlannedNode, Runtime
from manyfold.cluster.ports import ADMIN, MESH, PortPicker
from manyfold.manifest.model import Manifest, PartitionRecord
from manyfold.manifest.validate import validate
from manyfold.zenoh.options import DEFAULT_ROUTER, ZenohOptions, check_key_safe

DEVICE_PROFILE = "embedded-lite"
LINK_RULES = ("undeclared_link_loss", "link_capability_unavailable")
"""The validation rules a plan needs to hold: every crossing over a declared link that keeps
what it declares."""
ADMIN_OFFSET = 100


def is_device(p: PartitionRecord) -> bool:
    return p.profile == DEVICE_PROFILE


def python_partitions(m: Manifest) -> dict[str, list[str]]:
    """partition -> the names of its nodes with Python operators (function references)."""
    out: dict[str, list[str]] = {}
    for n in m.nodes:
        if n.function_refs():
            out.setdefault(n.partition, []).append(n.name)
    return out


@dataclass
class _Draft:
    """A node being planned."""

    request: NodeRequest
    partitions: list[str] = field(default_factory=list)
    devices: list[DeviceAssignment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def make_plan(m: Manifest, *, manifest_path: Path, plan_path: Path, nodes: NodesFile | None = None) -> Plan:
    """The plan for ``m`` (read from ``manifest_path``), to be written to ``plan_path``."""
    nodes = nodes or NodesFile()
    broken = validate(m, rules=list(LINK_RULES))
    if broken:
        more = f" (and {len(broken) - 1} more; manyfold validate lists them)" if len(broken) > 1 else ""
        raise ClusterError(f"the manifest cannot be split over links as it is: {broken[0]}{more}")
    partitions = {p.name: p for p in m.partitions}
    used = {r.partition for r in m.routes} | {n.partition for n in m.nodes}
    plan_notes = [f"manifest {Path(manifest_path).name}: {len(m.partitions)} partitions, {len(m.links)} link{'' if len(m.links) == 1 else 's'}"]
    _check_requests(m, nodes, partitions)

    drafts: dict[str, _Draft] = {r.name: _Draft(r) for r in nodes.nodes}
    order = [r.name for r in nodes.nodes]
    owner: dict[str, str] = {}

    def place(partition: str, node: str, why: str) -> None:
        if node not in drafts:
            drafts[node] = _Draft(NodeRequest(node, host=nodes.host))
            order.append(node)
        drafts[node].partitions.append(partition)
        drafts[node].notes.append(f"{partition}: {why}")
        owner[partition] = node

    for p in m.partitions:
        if is_device(p):
            continue
        if p.name not in used:
            plan_notes.append(f"partition {p.name} holds no routes or nodes: not placed")
            continue
        explicit = next((r.name for r in nodes.nodes if p.name in r.partitions), None)
        tagged = next((r.name for r in nodes.nodes if r.matches(p.placement)), None)
        if explicit is not None:
            place(p.name, explicit, "assigned in the nodes file")
        elif tagged is not None:
            place(p.name, tagged, f"placement {_placement(p)} matches the node's tags")
        elif p.placement and nodes.nodes:
            raise ClusterError(f"partition {p.name} needs placement {_placement(p)}, but no node of the nodes file has those tags")
        else:
            place(p.name, p.name, "a node of its own (the default)")

    for p in m.partitions:
        if is_device(p):
            _place_device(m, p, partitions, owner, drafts, nodes)

    unused = [name for name in order if not drafts[name].partitions and not drafts[name].devices]
    if unused:
        plan_notes.append(f"nodes of the nodes file that host nothing, left out: {', '.join(unused)}")
    order = [name for name in order if name not in unused]
    if not order:
        raise ClusterError("the manifest has no partition to place: it holds no routes or nodes outside device partitions")
    planned = _finish_nodes(m, [drafts[name] for name in order], nodes)
    links = _links(m, partitions, {n.name: n for n in planned}, owner, nodes, plan_path)
    for p in m.links:
        if p.name not in {link.name for link in links}:
            plan_notes.append(_unplanned_link_note(p.name, p.between, partitions, owner))
    zenoh = _zenoh(links, planned, nodes, plan_notes)
    manifest_rel = os.path.relpath(Path(manifest_path).resolve(), Path(plan_path).resolve().parent)
    return Plan(Path(manifest_rel).as_posix(), m.id, tuple(planned), tuple(links), tuple(plan_notes), zenoh)


def _zenoh(links: list[PlannedLink], planned: list[PlannedNode], nodes: NodesFile, plan_notes: list[str]) -> ZenohOptions | None:
    """The plan's [zenoh] table: the nodes file's, else (when a link runs on zenoh) a client of
    the usual router port on this host; every node name checked key-safe."""
    on_zenoh = [link.name for link in links if link.transport is Transport.ZENOH]
    zenoh = nodes.zenoh
    if zenoh is None and on_zenoh:
        zenoh = ZenohOptions.client(DEFAULT_ROUTER)
        plan_notes.append(f"links {', '.join(on_zenoh)} run on zenoh: every node is a Zenoh client of {DEFAULT_ROUTER} (the nodes file's [zenoh] sets another)")
    if zenoh is not None:
        for n in planned:
            check_key_safe(n.name, f"node {n.name}")
    return zenoh


def _placement(p: PartitionRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(p.placement.items()))


def _check_requests(m: Manifest, nodes: NodesFile, partitions: dict[str, PartitionRecord]) -> None:
    """What the nodes file names exists in the manifest, and nothing is assigned twice."""
    assigned: dict[str, str] = {}
    for r in nodes.nodes:
        for p in r.partitions:
            if p not in partitions:
                raise ClusterError(f"node {r.name} is assigned partition {p}, which the manifest does not have ({', '.join(partitions)})")
            if is_device(partitions[p]):
                raise ClusterError(f"node {r.name} is assigned {p}, a device partition: it goes with the node hosting its link's other end; give its port under [devices]")
            if p in assigned:
                raise ClusterError(f"partition {p} is assigned to two nodes, {assigned[p]} and {r.name}")
            assigned[p] = r.name
    for p, _port in nodes.devices:
        if p not in partitions or not is_device(partitions[p]):
            devices = [name for name, rec in partitions.items() if is_device(rec)]
            raise ClusterError(f"[devices] names {p}, which is not a device partition of the manifest ({', '.join(devices) or 'it has none'})")
    links = {link.name for link in m.links}
    for link in nodes.links:
        if link.name not in links:
            raise ClusterError(f"the nodes file configures link {link.name}, which the manifest does not declare ({', '.join(sorted(links)) or 'it has none'})")


def _place_device(m: Manifest, p: PartitionRecord, partitions: dict[str, PartitionRecord], owner: dict[str, str],
                  drafts: dict[str, _Draft], nodes: NodesFile) -> None:  # fmt: skip
    ends = sorted({q for link in m.links if p.name in link.between for q in link.between if q != p.name})
    hosts = sorted({owner[q] for q in ends if q in owner})
    if not hosts:
        raise ClusterError(f"device partition {p.name} has no link to a partition a node hosts; declare one (g.link(...)) so a node owns the device")
    if len(hosts) > 1:
        raise ClusterError(f"device partition {p.name} links to partitions on nodes {' and '.join(hosts)}; a device has one owner: put those partitions on one node")
    port = nodes.device_port(p.name)
    if port is None:
        board = p.placement.get("board")
        if not board:
            raise ClusterError(f"device partition {p.name} has no board placement; give its port under [devices] in a nodes file")
        port = f"sim:{board}"
        why = "the host simulation of its board (the default)"
    else:
        why = "the port the nodes file gives"
    node = drafts[hosts[0]]
    node.devices.append(DeviceAssignment(p.name, port))
    node.notes.append(f"{p.name}: device on {port}, {why}; owned here because {', '.join(q for q in ends if q in owner)} is")
    owner[p.name] = hosts[0]


def _finish_nodes(m: Manifest, drafts: list[_Draft], nodes: NodesFile) -> list[PlannedNode]:
    """Ids, runtimes and ports."""
    python = python_partitions(m)
    ids = {d.request.id for d in drafts if d.request.id is not None}
    taken: set[Address] = set()
    listen = PortPicker(nodes.base_port + 1, taken)
    admin = PortPicker(nodes.base_port + 1 + ADMIN_OFFSET, taken)
    for d in drafts:
        for address in (d.request.listen, d.request.admin):
            if address is not None:
                listen.reserve(address)
    out = []
    next_id = 1
    for d in drafts:
        r = d.request
        node_id = r.id
        if node_id is None:
            while next_id in ids:
                next_id += 1
            if next_id > NODE_ID_MAX:
                raise ClusterError(f"more than {NODE_ID_MAX} nodes")
            node_id = next_id
            ids.add(node_id)
        needs = [f"{p} ({', '.join(python[p])})" for p in d.partitions if p in python]
        notes = list(d.notes)
        if needs or d.devices or r.app:
            if r.runtime is Runtime.NATIVE:
                what = f"Python operators in {'; '.join(needs)}" if needs else f"device {d.devices[0].partition}" if d.devices else f"app {r.app}"
                raise ClusterError(f"node {r.name} is asked to run native, but it hosts {what}: only manyfold node (runtime python) can")
            runtime = Runtime.PYTHON
            notes.append("runtime python: " + "; ".join(
                ([f"Python operators in {', '.join(needs)}"] if needs else []) + ([f"it owns device {', '.join(x.partition for x in d.devices)}"] if d.devices else [])
                + ([f"it runs app {r.app}"] if r.app else [])))  # fmt: skip
        else:
            runtime = r.runtime or Runtime.NATIVE
            notes.append(f"runtime {runtime.value}: " + ("as the nodes file asks" if r.runtime else "built-in operators only"))
        out.append(PlannedNode(
            r.name, node_id, tuple(d.partitions), r.listen or listen.pick(r.host, MESH), r.admin or admin.pick(r.host, ADMIN),
            runtime, tuple(d.devices), r.app, tuple(notes),
        ))  # fmt: skip
    return out


def _links(m: Manifest, partitions: dict[str, PartitionRecord], planned: dict[str, PlannedNode], owner: dict[str, str],
           nodes: NodesFile, plan_path: Path) -> list[PlannedLink]:  # fmt: skip
    out = []
    for link in m.links:
        a, b = link.between
        if any(is_device(partitions[p]) for p in (a, b) if p in partitions):
            continue
        if a not in owner or b not in owner or owner[a] == owner[b]:
            continue
        try:
            transport = Transport(link.transport)
        except ValueError:
            raise ClusterError(f"link {link.name} between {a} and {b} declares transport {link.transport!r}; a link between nodes runs on udp, tcp or zenoh") from None
        na, nb = planned[owner[a]], planned[owner[b]]
        dialer = na if na.id < nb.id else nb
        if transport is Transport.ZENOH:
            for name, what in ((link.name, f"link {link.name}"), (a, f"partition {a} of link {link.name}"), (b, f"partition {b} of link {link.name}")):
                check_key_safe(name, what)
        request = nodes.link(link.name)
        key_file = None
        if request is not None and request.key_file is not None:
            key_file = Path(os.path.relpath(request.key_file.resolve(), Path(plan_path).resolve().parent)).as_posix()
        if link.authenticated and key_file is None:
            raise ClusterError(
                f"link {link.name} declares authenticated, which needs a pre-shared key: give it one in a nodes file "
                f"([[link]] name = \"{link.name}\", key_file = \"...\"), or declare authenticated=False"
            )
        if transport is Transport.ZENOH:
            first = min((a, na.name), (b, nb.name), key=lambda end: end[0].encode())
            notes = (f"{a} on {na.name} <-> {b} on {nb.name}; through the Zenoh router, {first[1]} says hello ({first[0]} sorts first)",)
            out.append(PlannedLink(link.name, (na.name, nb.name), None, transport, key_file, notes))
            continue
        notes = (f"{a} on {na.name} <-> {b} on {nb.name}; {dialer.name} dials (the lower id)",)
        out.append(PlannedLink(link.name, (na.name, nb.name), dialer.name, transport, key_file, notes))
    return out


def _unplanned_link_note(name: str, between: tuple[str, str], partitions: dict[str, PartitionRecord], owner: dict[str, str]) -> str:
    a, b = between
    device = next((p for p in (a, b) if p in partitions and is_device(partitions[p])), None)
    if device is not None:
        return f"link {name}: the serial link of device {device}, owned by node {owner.get(device, '-')}"
    if a in owner and owner.get(a) == owner.get(b):
        return f"link {name}: {a} and {b} are both on node {owner[a]}: it runs in process"
    return f"link {name}: between partitions that are not placed ({a}, {b})"


__all__ = ["DEVICE_PROFILE", "is_device", "make_plan", "python_partitions"]
