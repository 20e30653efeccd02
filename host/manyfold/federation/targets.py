"""Which nodes a federated question goes to: every node of a plan file, the node at one admin
address (``HOST:PORT``), or every node present in a Zenoh deployment (``zenoh:ENDPOINT``: the
liveliness tokens the router holds; each node is then asked through its admin queryable). Text
only at this boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.plan import Plan

if TYPE_CHECKING:
    from manyfold.zenoh.client import ZenohClient
    from manyfold.zenoh.keys import NodePresence

ZENOH_SCHEME = "zenoh:"
ZENOH_LIST_TIMEOUT_S = 1.0
"""How long the router is given to list the nodes' tokens, by default."""


@dataclass(frozen=True)
class ZenohTarget:
    """A node reached through Zenoh: the shared client session, and the node's presence (its
    admin queryable's key follows from it)."""

    client: "ZenohClient" = field(compare=False, repr=False)
    presence: "NodePresence"

    @property
    def key(self) -> str:
        return self.presence.admin_key


@dataclass(frozen=True)
class Target:
    """A node to ask: its name (the plan's, or the address text until it answers), its admin
    endpoint (or, through Zenoh, its admin queryable), and the device partitions the plan puts
    behind it."""

    name: str
    admin: Address | None
    devices: tuple[str, ...] = ()
    zenoh: ZenohTarget | None = None

    @property
    def where(self) -> str:
        """Where it is asked, as people read it: ``HOST:PORT`` or ``zenoh KEY``."""
        if self.zenoh is not None:
            return f"zenoh {self.zenoh.key}"
        return str(self.admin)


def is_zenoh(text: str | None) -> bool:
    return bool(text) and text.startswith(ZENOH_SCHEME)  # type: ignore[union-attr]


def zenoh_endpoints(text: str) -> tuple[str, ...]:
    """``zenoh:ENDPOINT[,ENDPOINT...]`` -> the endpoints."""
    from manyfold.zenoh.options import check_endpoint

    endpoints = tuple(e for e in text[len(ZENOH_SCHEME):].split(",") if e)
    if not endpoints:
        raise ClusterError(f"--cluster {text} names no Zenoh router; give one, e.g. zenoh:tcp/127.0.0.1:7447")
    return tuple(check_endpoint(e, f"--cluster {text}:") for e in endpoints)


def zenoh_targets(client: "ZenohClient", timeout_s: float = ZENOH_LIST_TIMEOUT_S) -> tuple[Target, ...]:
    """Every node whose liveliness token ``client``'s router holds (the newest incarnation of
    each node of each manifest), named by the node; a name two manifests share is told apart by
    the manifest's 16 hex digits."""
    present, _odd = client.nodes(timeout_s)
    newest: dict[tuple[str, str], "NodePresence"] = {}
    for p in present:
        key = (p.manifest16, p.node)
        if key not in newest or newest[key].incarnation < p.incarnation:
            newest[key] = p
    shared = {name for (_m, name) in newest if sum(1 for (_x, n) in newest if n == name) > 1}
    return tuple(
        Target(f"{p.node} ({p.manifest16})" if p.node in shared else p.node, None, (), ZenohTarget(client, p))
        for p in sorted(newest.values(), key=lambda p: (p.node, p.manifest16))
    )


def targets_from(text: str, *, zenoh_prefix: str | None = None, timeout_s: float = ZENOH_LIST_TIMEOUT_S) -> tuple[Target, ...]:
    """``text`` is a plan file (every node it plans), a node's admin address ``HOST:PORT``, or
    ``zenoh:ENDPOINT`` (every node present under ``zenoh_prefix``, listed within ``timeout_s``;
    :func:`release` closes the Zenoh session)."""
    if is_zenoh(text):
        from manyfold.zenoh.client import ZenohClient
        from manyfold.zenoh.options import DEFAULT_PREFIX

        return zenoh_targets(ZenohClient(zenoh_endpoints(text), zenoh_prefix or DEFAULT_PREFIX), timeout_s)
    path = Path(text)
    if path.is_file():
        plan = Plan.read(path)
        return tuple(Target(n.name, n.admin, tuple(d.partition for d in n.devices)) for n in plan.nodes)
    if path.suffix == ".toml" or "/" in text:
        raise ClusterError(f"--cluster {text}: no such plan file (give a plan file, a node's admin HOST:PORT or zenoh:ENDPOINT)")
    address = Address.parse(text, "--cluster")
    return (Target(str(address), address),)


def release(targets: tuple[Target, ...]) -> None:
    """Closes the Zenoh sessions ``targets`` hold (nothing for admin addresses)."""
    clients = {id(t.zenoh.client): t.zenoh.client for t in targets if t.zenoh is not None}
    for client in clients.values():
        client.close()


def open_admin(target: Target, timeout_s: float):
    """An admin client of ``target`` (``ask``, ``close``, a context manager): the TCP admin
    endpoint, or its Zenoh admin queryable."""
    if target.zenoh is not None:
        from manyfold.zenoh.client import ZenohAdmin

        return ZenohAdmin(target.zenoh.client, target.zenoh.key, timeout_s)
    from manyfold.cluster.admin import AdminClient

    assert target.admin is not None
    return AdminClient(target.admin, timeout_s=timeout_s)


__all__ = ["Target", "ZenohTarget", "is_zenoh", "open_admin", "release", "targets_from", "zenoh_endpoints", "zenoh_targets"]
