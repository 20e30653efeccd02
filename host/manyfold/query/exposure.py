"""Who may ask a deployed graph which questions: the manifest's query exposure.

A graph split across runtime nodes answers queries through each node's admin endpoint (the
``query`` request, see docs/node.md). Every node checks the asker's principal and the question's
kind against the manifest's ``query: {service, kinds, principals}``. :func:`expose` declares it
for a graph without installing a query service on the graph's own routes (which a split graph's
nodes do not run); :class:`~manyfold.query.QueryService` declares it too, its principals being
the producers granted its request route.

The exposure kind of a node query: topology, routes and links are ``topology``; flow and
counters are ``flow``; watermarks, taints, lineage and health are themselves; a ``device`` query is the
exposure kind of what it asks the device (its ``latest`` is ``topology``).
"""

from __future__ import annotations

from collections.abc import Iterable

from manyfold.graph import Graph, OperatorConfigError
from manyfold.manifest.model import QueryExposure
from manyfold.query.service import KINDS

NODE_KINDS = {
    "view": "topology",
    "topology": "topology",
    "routes": "topology",
    "links": "topology",
    "flow": "flow",
    "counters": "flow",
    "watermarks": "watermarks",
    "taints": "taints",
    "lineage": "lineage",
    "health": "health",
}
"""The exposure kind each node query kind needs (``device`` takes its ``what``'s)."""

DEVICE_KINDS = {"topology": "topology", "flow": "flow", "taints": "taints", "latest": "topology", "counters": "flow"}
"""The exposure kind each ``what`` of a ``device`` query needs."""


def exposure_kind(kind: str, what: str | None = None) -> str | None:
    """The exposure kind a node query of ``kind`` (and ``what``, for ``device``) needs, or None
    for a kind the query plane does not know."""
    if kind == "device":
        return DEVICE_KINDS.get(what or "")
    return NODE_KINDS.get(kind)


def expose(graph: Graph, *, principals: Iterable[str], kinds: Iterable[str] = KINDS, service: str = "manyfold") -> QueryExposure:
    """Declare that ``principals`` may ask ``graph`` (and every node and device a split
    deployment of it runs on) the query ``kinds``; :func:`manyfold.manifest.compile` records it as
    the manifest's ``query``. Returns the exposure."""
    principals = tuple(dict.fromkeys(str(p) for p in principals))
    kinds = tuple(dict.fromkeys(str(k) for k in kinds))
    if not principals:
        raise OperatorConfigError("a query exposure needs at least one principal (who may ask)")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise OperatorConfigError(f"unknown query kind {unknown[0]!r}; expected some of {', '.join(KINDS)}")
    if not kinds:
        raise OperatorConfigError(f"a query exposure needs at least one kind; expected some of {', '.join(KINDS)}")
    graph.query_exposure = {"service": service, "kinds": list(kinds), "principals": list(principals), "request_route": None}
    return QueryExposure(service, kinds, principals)
