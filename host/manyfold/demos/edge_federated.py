"""The "federated query" section of ``manyfold demo edge``: the running cluster asked through the
query plane as the principal ``operator`` (``manyfold.federation``, as ``manyfold query
--cluster plan.toml ...`` asks it): who answered and who is unknown, which node owns each
partition, link capabilities requested vs provided from both ends, the taints present, and the
lineage of the host's last fan command walked host -> edge-b -> edge-a -> the device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manyfold.federation.cluster_answer import ClusterAnswer, Unknown, ask_cluster
from manyfold.federation.lineage import CrossLineage, walk_lineage
from manyfold.federation.merge import LinkAcross, PartitionOwner, TaintsAcross
from manyfold.federation.plan_facts import plan_facts
from manyfold.federation.targets import release, targets_from

TIMEOUT_S = 5.0
"""Per-node timeout of each federated question."""


@dataclass(frozen=True)
class FederatedReport:
    principal: str
    answered: tuple[str, ...]
    unknown: tuple[Unknown, ...]
    refused: dict[str, str]
    partitions: tuple[PartitionOwner, ...]
    links: tuple[LinkAcross, ...]
    taints: tuple[TaintsAcross, ...]
    lineage: CrossLineage | None

    def to_dict(self) -> dict:
        return {
            "principal": self.principal,
            "answered": list(self.answered),
            "unknown": [u.to_dict() for u in self.unknown],
            "refused": dict(self.refused),
            "partitions": [p.to_dict() for p in self.partitions],
            "links": [k.to_dict() for k in self.links],
            "taints": [t.to_dict() for t in self.taints],
            "lineage": None if self.lineage is None else self.lineage.to_dict(),
        }


def ask_federated(plan_path: Path, fan_route: str, fan_node: str, fan_seq: int | None, *, principal: str = "operator",
                  cluster: str | None = None) -> FederatedReport:  # fmt: skip
    """Ask the cluster of ``plan_path`` its topology, links and taints, and walk the lineage of
    ``fan_route@fan_seq`` held by ``fan_node`` (none without a fan command). ``cluster`` asks
    the nodes elsewhere (``zenoh:ENDPOINT``: through their admin queryables) while the plan still
    gives the planned facts."""
    targets, facts = targets_from(cluster or str(plan_path), timeout_s=TIMEOUT_S), plan_facts(str(plan_path))
    try:
        return _ask(targets, facts, fan_route, fan_node, fan_seq, principal)
    finally:
        release(targets)


def _ask(targets, facts, fan_route: str, fan_node: str, fan_seq: int | None, principal: str) -> FederatedReport:
    asked: list[ClusterAnswer] = [
        ask_cluster(targets, kind, principal=principal, timeout_s=TIMEOUT_S, facts=facts) for kind in ("topology", "links", "taints")
    ]
    topology, links, taints = asked
    lineage = None
    if fan_seq is not None:
        lineage = walk_lineage(targets, fan_route, node=fan_node, seq=fan_seq, principal=principal, timeout_s=TIMEOUT_S, facts=facts)
    unknown = {u.name: u for a in asked for u in a.unknown}
    refused = {n: s for a in asked for n, s in a.refused.items()}
    answered = tuple(t.name for t in targets if t.name not in unknown)
    return FederatedReport(principal, answered, tuple(unknown.values()), refused, topology.merged.partitions if topology.merged else (),
                           links.merged or (), taints.merged or (), lineage)  # fmt: skip


def render_federated(report: FederatedReport, console) -> None:
    """Prints the section as tables (rich)."""
    from manyfold.cli import render
    from manyfold.cli.federated_query import render_lineage

    render.heading(console, f"4. Federated query: the cluster asked through the query plane as {report.principal!r}")
    console.print(f"answered: {', '.join(report.answered) or 'none'}; unknown: "
                  + (", ".join(f"{u.name} ({u.reason})" for u in report.unknown) or "none")
                  + ("; refused: " + ", ".join(f"{n} ({s})" for n, s in report.refused.items()) if report.refused else ""))  # fmt: skip
    console.print(render.table(
        "Partition owners (answered by the nodes, and planned)", ("partition", "device", "node", "planned"),
        ((p.partition, "yes" if p.device else "-", p.hosts, p.planned) for p in report.partitions),
    ))  # fmt: skip
    console.print(render.table(
        "Link capabilities requested vs provided, from both ends", ("link", "transport", "end", "state", "requested", "provided", "missing (tainted)"),
        ((k.name, k.transport, e.node, e.link.state, e.link.requested, e.link.provided, e.link.missing) for k in report.links for e in k.ends),
    ))  # fmt: skip
    console.print(render.table(
        "Taints present", ("route", "taints", "seen on"), ((t.route, t.taints, t.nodes) for t in report.taints if t.taints), priority=("route",)
    ))  # fmt: skip
    if report.lineage is not None:
        render_lineage(console, report.lineage)


__all__ = ["FederatedReport", "ask_federated", "render_federated"]
