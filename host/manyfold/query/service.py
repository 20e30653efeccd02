"""Queries as routes: a query service answers requests published on the query plane.

Requests go to ``query.internal.<owner>.query.requests.query_request.v1`` and answers come back
on ``query.internal.<owner>.query.responses.query_response.v1``, as typed records whose body is
the answer's canonical CBOR. A remote client (over a link) asks the same questions the same way.
Answers are computed right after the dispatch that delivered the request, outside the graph's
lock, so a query sees the graph as it is between events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cbor2

from manyfold.graph import Graph, Layer, OperatorConfigError, Plane, RejectedError, Route, Variant, schema
from manyfold.query import queries
from manyfold.query.model import HealthReport

KINDS = ("topology", "flow", "watermarks", "scheduler", "taints", "lineage", "payload_demand", "route_audit", "health")

PENDING_MAX = 1024
"""Requests a service holds between a dispatch and its answers (a batch of requests published in
one call arrives in one dispatch); one more is refused with RejectedError."""


@schema(version=1)
@dataclass(frozen=True)
class QueryRequest:
    """A question: ``kind`` is one of topology, flow, watermarks, scheduler, taints, lineage,
    payload_demand, route_audit, health; ``route`` (printed) where the kind needs one."""

    correlation: int
    kind: str
    route: Optional[str] = None


@schema(version=1)
@dataclass(frozen=True)
class QueryResponse:
    """An answer: ``body`` is the canonical CBOR of the typed answer's ``to_dict()``."""

    correlation: int
    kind: str
    ok: bool
    body: bytes
    error: Optional[str] = None


class QueryService:
    """Installs the query routes on ``graph`` and answers requests published on them. At most
    ``pending_max`` requests wait for their answers at once: the publish that would add one more
    raises :class:`~manyfold.graph.OperatorError` caused by a :class:`~manyfold.graph.RejectedError`
    (the request stays on the route unanswered, and ``refused`` counts it)."""

    def __init__(self, graph: Graph, owner: str = "manyfold", *, pending_max: int = PENDING_MAX) -> None:
        if pending_max < 1:
            raise OperatorConfigError(f"a query service needs pending_max of at least 1, got {pending_max}")
        self.graph = graph
        self.pending_max = pending_max
        self.refused = 0
        self.request_route = graph.route(Route(Plane.QUERY, Layer.INTERNAL, owner, "query", "requests", Variant.QUERY_REQUEST), QueryRequest, audit=True)
        self.response_route = graph.route(Route(Plane.QUERY, Layer.INTERNAL, owner, "query", "responses", Variant.QUERY_RESPONSE), QueryResponse, history=64, audit=True)
        self._producer = graph.producer(owner)
        self._pending: list[QueryRequest] = []
        self._correlation = 0
        graph.subscribe(self.request_route, self._on_request, name=f"{owner}_query_service")
        graph._native.set_after_dispatch(self._answer_pending)
        graph.query_exposure = {"service": owner, "kinds": list(KINDS), "request_route": self.request_route}

    def _on_request(self, envelope) -> None:
        # Inside the dispatch the graph cannot be read: note the request, answer right after.
        if len(self._pending) >= self.pending_max:
            self.refused += 1
            raise RejectedError(
                f"query service {self._producer.name}: request {envelope.value.correlation} was refused, "
                f"{len(self._pending)} requests already wait for their answers (pending_max)"
            )
        self._pending.append(envelope.value)
        self.graph._native.request_after_dispatch()

    def _answer(self, request: QueryRequest) -> QueryResponse:
        try:
            if request.kind not in KINDS:
                raise ValueError(f"unknown query kind {request.kind!r}; expected one of {', '.join(KINDS)}")
            route = Route.parse(request.route) if request.route else None
            needs_route = request.kind in ("lineage", "payload_demand", "route_audit")
            if needs_route and route is None:
                raise ValueError(f"a {request.kind} query needs a route")
            fn = getattr(queries, request.kind)
            if request.kind == "taints":
                answer = fn(self.graph, route)
                body = cbor2.dumps([a.to_dict() for a in answer], canonical=True)
            elif request.kind == "watermarks":
                body = cbor2.dumps([a.to_dict() for a in fn(self.graph)], canonical=True)
            elif request.kind == "health":
                body = HealthReport(tuple(fn(self.graph))).to_cbor()
            elif needs_route:
                body = fn(self.graph, route).to_cbor()
            else:
                body = fn(self.graph).to_cbor()
            return QueryResponse(request.correlation, request.kind, True, body)
        except Exception as error:  # an answer, not a crash: the error travels back to the asker
            return QueryResponse(request.correlation, request.kind, False, b"", f"{type(error).__name__}: {error}")

    def _answer_pending(self) -> None:
        # Bounded: answering publishes responses, which cannot create new requests here.
        pending, self._pending = self._pending, []
        for request in pending:
            self._producer.publish(self.response_route, self._answer(request))

    def ask(self, asker, kind: str, route: Route | None = None):
        """Publish a request as producer ``asker`` (granted the request route) and return the
        decoded answer (a dict, or a list for taints and watermarks). Raises if it failed."""
        self._correlation += 1
        correlation = self._correlation
        asker.publish(self.request_route, QueryRequest(correlation, kind, str(route) if route else None))
        for envelope in reversed(self.graph.replay(self.response_route)):
            response = envelope.value
            if response.correlation == correlation:
                if not response.ok:
                    raise RuntimeError(response.error)
                return cbor2.loads(response.body)
        raise RuntimeError(f"no answer to query {correlation}")
