"""Ask every node one query and say what the cluster answered: :func:`ask_cluster` returns a
:class:`ClusterAnswer`.

Every target is in exactly one of ``answered`` (it replied: an answer or a refusal) and
``unknown`` (no reply within the timeout, a refused connection, an ``{"error": ...}``, or an
answer this client cannot read, each with the reason). ``refused`` names the answering nodes
that refused the question (the manifest's query exposure, or a device they do not have), with
their sentence. ``nodes`` holds each node's typed answer; ``merged`` the cluster-wide answer
(:mod:`merge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manyfold.federation.answers import KINDS, parse_answer
from manyfold.federation.fanout import NodeReply, fan_out
from manyfold.federation.merge import merge
from manyfold.federation.plan_facts import PlanFacts
from manyfold.federation.targets import Target
from manyfold.query.from_dict import AnswerShapeError
from manyfold.query.model import Serializable, _plain

DEFAULT_PRINCIPAL = "operator"
DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Unknown(Serializable):
    """A node that gave no answer, and why."""

    name: str
    reason: str
    rejected: bool = False
    """The node answered, rejecting the request itself (a route its manifest lacks...)."""


@dataclass(frozen=True)
class NodeAnswer(Serializable):
    """One node's answer: who it is (its name, id, incarnation and manifest id) and the typed answer."""

    node: str
    id: int | None
    incarnation: int | None
    manifest_id: str | None
    answer: Any


@dataclass(frozen=True)
class ClusterAnswer:
    kind: str
    answered: tuple[str, ...]
    unknown: tuple[Unknown, ...]
    refused: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, NodeAnswer] = field(default_factory=dict)
    """The nodes that answered (not those that refused), by name."""
    merged: Any = None

    @property
    def rejected_by_all(self) -> str | None:
        """When every node rejected the request itself (nobody answered, refused or failed to
        reply), the first node's sentence: the question, not the cluster, is wrong."""
        if self.unknown and not self.answered and all(u.rejected for u in self.unknown):
            return self.unknown[0].reason
        return None

    @property
    def any_answer(self) -> bool:
        """Whether at least one node answered the question (a refusal is not an answer)."""
        return bool(self.nodes)

    def answer(self, node: str) -> Any:
        return self.nodes[node].answer

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "answered": list(self.answered),
            "unknown": [u.to_dict() for u in self.unknown],
            "refused": dict(self.refused),
            "nodes": {name: n.to_dict() for name, n in self.nodes.items()},
            "merged": _plain(self.merged),
        }


def request(kind: str, principal: str, **params: Any) -> dict:
    """The node ``query`` admin request (only the parameters that are set)."""
    return {"q": "query", "kind": kind, "principal": principal, **{k: v for k, v in params.items() if v is not None}}


def collect(kind: str, replies: tuple[NodeReply, ...], *, partition: str | None = None, what: str | None = None) -> tuple[
    tuple[str, ...], tuple[Unknown, ...], dict[str, str], dict[str, NodeAnswer]
]:  # fmt: skip
    """Sort replies into answered, unknown, refused and typed answers (the parts of a ClusterAnswer)."""
    answered: list[str] = []
    unknown: list[Unknown] = []
    refused: dict[str, str] = {}
    nodes: dict[str, NodeAnswer] = {}
    for reply in replies:
        target, data = reply.target, reply.answer
        if data is None:
            unknown.append(Unknown(target.name, reply.error or "no answer", reply.rejected))
            continue
        name = data.get("node") if isinstance(data.get("node"), str) else target.name
        if name in answered:  # two targets answer under one name: both are kept, told apart by address
            name = f"{name} ({target.where})"
        where = f"node {name} ({target.where})"
        if "refused" in data:
            answered.append(name)
            refused[name] = str(data["refused"])
            continue
        if "answer" not in data:
            unknown.append(Unknown(target.name, f"{where} does not answer queries (its reply has neither an answer nor a refusal)"))
            continue
        try:
            typed = parse_answer(kind, data["answer"], where, partition=partition, what=what)
        except AnswerShapeError as error:
            unknown.append(Unknown(target.name, f"answered in a shape this client does not read: {error}"))
            continue
        answered.append(name)
        nodes[name] = NodeAnswer(name, _int(data.get("id")), _int(data.get("incarnation")), data.get("manifest_id"), typed)
    return tuple(answered), tuple(unknown), refused, nodes


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def ask_cluster(
    targets: tuple[Target, ...], kind: str, *, principal: str = DEFAULT_PRINCIPAL, route: str | None = None,
    seq: int | None = None, partition: str | None = None, what: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S, facts: PlanFacts | None = None,
) -> ClusterAnswer:  # fmt: skip
    """Ask every target the ``kind`` query as ``principal`` and merge the answers (a ``device``
    query too: nodes without that device refuse it, and say so)."""
    if kind not in KINDS:
        raise ValueError(f"unknown query kind {kind!r}; expected one of {', '.join(KINDS)}")
    replies = fan_out(targets, request(kind, principal, route=route, seq=seq, partition=partition, what=what), timeout_s=timeout_s)
    answered, unknown, refused, nodes = collect(kind, replies, partition=partition, what=what)
    merged = merge(kind, {n: a.answer for n, a in nodes.items()}, facts or PlanFacts())
    return ClusterAnswer(kind, answered, unknown, refused, nodes, merged)


__all__ = ["DEFAULT_PRINCIPAL", "DEFAULT_TIMEOUT_S", "ClusterAnswer", "NodeAnswer", "Unknown", "ask_cluster", "collect", "request"]
