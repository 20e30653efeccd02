"""Which nodes a federated question goes to: every node of a plan file, or the node at one
admin address (``HOST:PORT``). Text only at this boundary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.plan import Plan


@dataclass(frozen=True)
class Target:
    """A node to ask: its name (the plan's, or the address text until it answers), its admin
    endpoint, and the device partitions the plan puts behind it."""

    name: str
    admin: Address
    devices: tuple[str, ...] = ()


def targets_from(text: str) -> tuple[Target, ...]:
    """``text`` is a plan file (every node it plans) or a node's admin address ``HOST:PORT``."""
    path = Path(text)
    if path.is_file():
        plan = Plan.read(path)
        return tuple(Target(n.name, n.admin, tuple(d.partition for d in n.devices)) for n in plan.nodes)
    if path.suffix == ".toml" or "/" in text:
        raise ClusterError(f"--cluster {text}: no such plan file (give a plan file or a node's admin HOST:PORT)")
    address = Address.parse(text, "--cluster")
    return (Target(str(address), address),)


__all__ = ["Target", "targets_from"]
