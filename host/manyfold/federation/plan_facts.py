"""What a plan file says the cluster should look like, for comparing with what the nodes answer:
which node each partition and device is planned on, and which routes run on a device (from the
plan's manifest). An admin address (no plan) gives no facts: the nodes' answers stand alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from manyfold.cluster.plan import Plan


@dataclass(frozen=True)
class PlanFacts:
    partitions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Planned partitions by node name (device partitions not included)."""
    devices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Planned device partitions by the name of the node that owns each."""
    device_routes: dict[str, str] = field(default_factory=dict)
    """Printed route name -> the device partition that produces it."""

    def planned_node(self, partition: str) -> str | None:
        for node, names in (*self.partitions.items(), *self.devices.items()):
            if partition in names:
                return node
        return None


def plan_facts(text: str) -> PlanFacts:
    """The facts of the plan file ``text``, or none when ``text`` is an admin address."""
    path = Path(text)
    if not path.is_file():
        return PlanFacts()
    plan = Plan.read(path)
    devices = {n.name: tuple(d.partition for d in n.devices) for n in plan.nodes}
    every_device = {p for names in devices.values() for p in names}
    partitions = {n.name: tuple(p for p in n.partitions if p not in every_device) for n in plan.nodes}
    device_routes: dict[str, str] = {}
    manifest_path = (path.parent / plan.manifest) if not Path(plan.manifest).is_absolute() else Path(plan.manifest)
    if every_device and manifest_path.is_file():
        from manyfold.manifest import Manifest

        m = Manifest.read(manifest_path)  # a ManifestError is one sentence naming the file
        device_routes = {str(r.route): r.partition for r in m.routes if r.partition in every_device}
    return PlanFacts(partitions, devices, device_routes)


__all__ = ["PlanFacts", "plan_facts"]
