"""Find the nodes of a cluster: start from configured admin addresses (a plan, ``--cluster
ADDRESS``, ``--peer``) and, when asked, the beacons heard for a while; ask every new candidate
for its ``peers`` (all at once, each within the timeout) and follow what they list, for at most
:data:`ROUNDS_MAX` rounds and :data:`CANDIDATES_MAX` candidates; then dial every candidate's
``status`` in parallel. Only :func:`manyfold.federation.fan_out` talks to the nodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from manyfold.cluster.address import Address
from manyfold.cluster.admin import AdminError, parse_status
from manyfold.cluster.errors import ClusterError
from manyfold.discovery.beacon import BeaconOptions, listen
from manyfold.discovery.model import Device, Found, FoundNode, Listing, NodeState
from manyfold.federation import Target, fan_out, targets_from

ROUNDS_MAX = 4
"""Rounds of ``peers`` asks at most (a chain of nodes longer than this is found by the nodes'
own gossip, which every answer already carries)."""
CANDIDATES_MAX = 512
"""Admin addresses dialed at most; more are left out and said so."""


@dataclass(frozen=True)
class Seed:
    """A configured starting point: an admin address, and what the plan says of it."""

    admin: Address
    name: str | None = None
    devices: tuple[str, ...] = ()


def seeds_from(cluster: str | None, peers: tuple[str, ...] = ()) -> tuple[Seed, ...]:
    """``--cluster PLAN_OR_ADDRESS`` (every planned node, or one address) and ``--peer HOST:PORT``."""
    out: list[Seed] = []
    if cluster:
        for t in targets_from(cluster):
            out.append(Seed(t.admin, None if t.name == str(t.admin) else t.name, t.devices))
    out += [Seed(Address.parse(p, "--peer")) for p in peers]
    return tuple(out)


@dataclass
class _Candidate:
    admin: Address
    found: set[Found]
    name: str | None = None
    id: int | None = None
    listen: str | None = None
    partitions: tuple[str, ...] = ()
    manifest_id: str | None = None
    planned_devices: tuple[str, ...] = ()
    seen: bool = field(default=False)

    def learn(self, data: dict, name_key: str) -> None:
        """Fills what is still unknown from a node's self description or a listed peer."""
        name = data.get(name_key)
        self.name = self.name or (name if isinstance(name, str) else None)
        if self.id is None and isinstance(data.get("id"), int):
            self.id = data["id"]
        if self.listen is None and isinstance(data.get("listen"), str):
            self.listen = data["listen"]
        parts = data.get("partitions")
        if not self.partitions and isinstance(parts, list):
            self.partitions = tuple(p for p in parts if isinstance(p, str))
        if self.manifest_id is None and isinstance(data.get("manifest_id"), str):
            self.manifest_id = data["manifest_id"]


class _Candidates:
    """Candidates by admin address, in the order found, bounded."""

    def __init__(self) -> None:
        self.by_admin: dict[Address, _Candidate] = {}
        self.left_out = 0

    def add(self, admin: Address, how: Found) -> _Candidate | None:
        c = self.by_admin.get(admin)
        if c is None:
            if len(self.by_admin) >= CANDIDATES_MAX:
                self.left_out += 1
                return None
            c = self.by_admin[admin] = _Candidate(admin, set())
        c.found.add(how)
        return c

    def targets(self, cands: list[_Candidate]) -> tuple[Target, ...]:
        return tuple(Target(c.name or str(c.admin), c.admin, c.planned_devices) for c in cands)


def _address(text: object) -> Address | None:
    if not isinstance(text, str):
        return None
    try:
        a = Address.parse(text)
    except ClusterError:
        return None
    return None if a.port == 0 or a.host in ("0.0.0.0", "::") else a


def _follow(cands: _Candidates, timeout_s: float, rounds_max: int) -> int:
    """Asks each candidate not yet asked for its peers, adding what they list; returns the
    rounds run."""
    rounds = 0
    # Bounded: at most rounds_max rounds, each over at most CANDIDATES_MAX candidates.
    while rounds < rounds_max:
        fresh = [c for c in cands.by_admin.values() if not c.seen]
        if not fresh:
            break
        rounds += 1
        for c in fresh:
            c.seen = True
        for c, reply in zip(fresh, fan_out(cands.targets(fresh), {"q": "peers"}, timeout_s=timeout_s)):
            if reply.answer is None:
                continue
            c.learn(reply.answer, "node")
            for peer in reply.answer.get("peers", ()) if isinstance(reply.answer.get("peers"), list) else ():
                admin = _address(peer.get("admin")) if isinstance(peer, dict) else None
                listed = cands.add(admin, Found.GOSSIP) if admin is not None else None
                if listed is not None:
                    listed.learn(peer, "name")
    return rounds


def _cluster_manifest(nodes: list[FoundNode]) -> str | None:
    counts = Counter(n.manifest_id for n in nodes if n.state is NodeState.ONLINE and n.manifest_id)
    return counts.most_common(1)[0][0] if counts else None


def discover(
    seeds: tuple[Seed, ...], *, beacon: BeaconOptions | None = None, listen_s: float = 2.0, timeout_s: float = 0.5,
    rounds_max: int = ROUNDS_MAX,
) -> Listing:  # fmt: skip
    """Every node reachable from ``seeds`` (and, with ``beacon``, from the beacons heard within
    ``listen_s``), each dialed within ``timeout_s``."""
    cands = _Candidates()
    for s in seeds:
        c = cands.add(s.admin, Found.CONFIGURED)
        if c is not None:
            c.name = c.name or s.name
            c.planned_devices = c.planned_devices or s.devices
    heard = listen(beacon, listen_s) if beacon is not None else ()
    for b in heard:
        c = cands.add(b.admin, Found.BEACON)
        if c is not None:
            c.learn({"node": b.node, "id": b.id, "manifest_id": b.manifest_id, "listen": str(b.listen) if b.listen else None}, "node")
    rounds = _follow(cands, timeout_s, rounds_max)
    everyone = list(cands.by_admin.values())
    replies = fan_out(cands.targets(everyone), {"q": "status"}, timeout_s=timeout_s)
    nodes: list[FoundNode] = []
    identities: dict[tuple, int] = {}
    for c, reply in zip(everyone, replies):
        found = tuple(f for f in Found if f in c.found)
        status, error = None, reply.error
        if reply.answer is not None:
            try:
                status = parse_status(reply.answer, f"admin {c.admin}")
            except AdminError as bad:
                error = str(bad)
        if status is None:
            devices = tuple(Device(p, state="planned") for p in c.planned_devices)
            nodes.append(FoundNode(c.name or str(c.admin), c.admin, NodeState.UNREACHABLE, found, c.id, None, c.listen, c.partitions,
                                   c.manifest_id, devices=devices, error=error))  # fmt: skip
            continue
        key = (status.node, status.id, status.incarnation)
        if key in identities:  # the same process under another address
            i = identities[key]
            merged = tuple(f for f in Found if f in nodes[i].found or f in c.found)
            nodes[i] = replace(nodes[i], found=merged)
            continue
        devices = tuple(Device(d.partition, d.port, d.where, d.state) for d in status.devices or ())
        identities[key] = len(nodes)
        nodes.append(FoundNode(
            status.node, c.admin, NodeState.ONLINE, found, status.id, status.incarnation, c.listen, status.partitions,
            status.manifest_id or c.manifest_id, devices=devices,
        ))  # fmt: skip
    manifest_id = _cluster_manifest(nodes)
    nodes = [replace(n, other_manifest=bool(manifest_id and n.manifest_id and n.manifest_id != manifest_id)) for n in nodes]
    nodes.sort(key=lambda n: (n.name, n.admin))
    notes = (f"{cands.left_out} more admin addresses were named but not dialed (at most {CANDIDATES_MAX})",) if cands.left_out else ()
    if beacon is not None and not heard:
        notes += (
            f"no beacon heard on {beacon.group}:{beacon.port} (interface {beacon.interface}) within {listen_s:g} s: "
            "nodes send one only when started with --beacon",
        )  # fmt: skip
    return Listing(tuple(nodes), manifest_id, len(heard), rounds, notes)


__all__ = ["CANDIDATES_MAX", "ROUNDS_MAX", "Seed", "discover", "seeds_from"]
