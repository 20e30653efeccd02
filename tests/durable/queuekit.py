"""Shared by the DurableQueue tests: a graph with a queue of jobs, and a worker that records
what was delivered and acks it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from manyfold.graph import INT, Graph, Layer, Plane, QueueNode, Route, Taint, Variant, schema, taints_of
from manyfold.graph.schema import delivery_schema
from manyfold.query import expose


@schema
@dataclass(frozen=True)
class Job:
    key: str
    n: int


JOBS = Route(Plane.READ, Layer.LOGICAL, "camera", "jobs", "job", Variant.META)
ACKS = Route(Plane.READ, Layer.LOGICAL, "worker", "jobs", "ack", Variant.META)
NACKS = Route(Plane.READ, Layer.LOGICAL, "worker", "jobs", "nack", Variant.META)
DELIVERIES = Route(Plane.READ, Layer.INTERNAL, "image_jobs", "jobs", "job", Variant.EVENT)
QUEUE = "image_jobs"


def queue_graph(store_dir: Path | None, **policies) -> tuple[Graph, QueueNode]:
    """camera.jobs -> image_jobs (durable_queue, acks and nacks from `worker`), in partition
    `station`; the deliveries route keeps 4096 envelopes for history queries."""
    g = Graph(store_dir=store_dir)
    with g.partition("station", profile="edge"):
        jobs = g.route(JOBS, Job)
        acks, nacks = g.route(ACKS, INT), g.route(NACKS, INT)
        deliveries = g.route(DELIVERIES, delivery_schema(g.schema_of(jobs)), history=4096)
        policies = {"capacity": 10_000, "dedup_key": "key", **policies}
        queue = g.durable_queue(jobs, acks=acks, nacks=nacks, deliveries=deliveries, name=QUEUE, **policies)
    expose(g, principals=["operator"])
    return g, queue


def job(n: int) -> Job:
    return Job(f"job-{n}", n)


@dataclass
class Seen:
    """Deliveries as (id, attempt, n, duplicated), in order."""

    items: list[tuple[int, int, int, bool]] = field(default_factory=list)
    dead: list[tuple[int, int, int]] = field(default_factory=list)

    def ids(self) -> list[int]:
        return [i for i, *_ in self.items]


def watch(g: Graph, queue: QueueNode) -> Seen:
    seen = Seen()
    g.subscribe(queue.deliveries, lambda e: seen.items.append((e.value.id, e.value.attempt, e.value.body.n, Taint.DELIVERY_DUPLICATED in taints_of(e))))
    g.subscribe(queue.dead_letters, lambda e: seen.dead.append((e.value.id, e.value.attempt, e.value.body.n)))
    return seen


def counters(g: Graph) -> dict[str, int]:
    return next(s for s in g.node_stats() if s.name == QUEUE).counters
