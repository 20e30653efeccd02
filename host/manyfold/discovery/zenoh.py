"""Find the nodes of a Zenoh deployment: the liveliness tokens its router holds
(``P/<mid16>/node/<name>/<id>/<incarnation>``), then every node's ``status`` through its admin
queryable, in parallel, each within the timeout (:func:`manyfold.federation.fan_out`). A node
whose token is present but that does not answer is ``unreachable``; nodes of a manifest other than
the one most online nodes run are marked, as for nodes found by address."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from manyfold.cluster.admin import AdminError, parse_status
from manyfold.discovery.model import Device, Found, FoundNode, Listing, NodeState
from manyfold.federation.fanout import fan_out
from manyfold.federation.targets import zenoh_targets


def discover_zenoh(client, *, timeout_s: float = 0.5) -> Listing:
    """Every node present at ``client``'s router (a :class:`manyfold.zenoh.ZenohClient`), each
    asked for its status within ``timeout_s``."""
    targets = zenoh_targets(client, timeout_s)
    replies = fan_out(targets, {"q": "status"}, timeout_s=timeout_s)
    nodes: list[FoundNode] = []
    for target, reply in zip(targets, replies):
        assert target.zenoh is not None
        p = target.zenoh.presence
        status, error = None, reply.error
        if reply.answer is not None:
            try:
                status = parse_status(reply.answer, target.where)
            except AdminError as bad:
                error = str(bad)
        if status is None:
            nodes.append(FoundNode(p.node, None, NodeState.UNREACHABLE, (Found.LIVELINESS,), p.id, p.incarnation, error=error,
                                   zenoh_key=target.zenoh.key))  # fmt: skip
            continue
        devices = tuple(Device(d.partition, d.port, d.where, d.state) for d in status.devices or ())
        nodes.append(FoundNode(
            status.node, None, NodeState.ONLINE, (Found.LIVELINESS,), status.id, status.incarnation, None, status.partitions,
            status.manifest_id, devices=devices, zenoh_key=target.zenoh.key,
        ))  # fmt: skip
    counts = Counter(n.manifest_id for n in nodes if n.state is NodeState.ONLINE and n.manifest_id)
    manifest_id = counts.most_common(1)[0][0] if counts else None
    mid16 = manifest_id[:16] if manifest_id else None
    nodes = [replace(n, other_manifest=bool(mid16 and _manifest16(n) not in (None, mid16))) for n in nodes]
    nodes.sort(key=lambda n: (n.name, n.zenoh_key or ""))
    notes = () if nodes else (f"the Zenoh router at {client.where} holds no node's presence token under prefix {client.prefix}",)
    return Listing(tuple(nodes), manifest_id, 0, 0, notes)


def _manifest16(n: FoundNode) -> str | None:
    """The node's manifest (16 hex digits): from its status, else from its presence key."""
    if n.manifest_id:
        return n.manifest_id[:16]
    if n.zenoh_key:  # P/<mid16>/admin/<name>
        return n.zenoh_key.split("/")[-3]
    return None


__all__ = ["discover_zenoh"]
