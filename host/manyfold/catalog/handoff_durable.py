"""Handoff, durable: the DurableQueue contract, installed as one ``durable_queue`` node whose
state is kept in the store file ``<store dir>/<store>.sqlite`` (store defaults to the instance
name).

Its promise is at-least-once delivery with a declared dedup boundary: an append is kept once its
commit returns; a message is delivered until acked, or dead-lettered after its retries; appends
with a ``dedup_key`` seen in the last ``dedup_window`` appends are not appended again.
Consumers must be idempotent for redeliveries (each carries ``delivery_duplicated``).
"""

from __future__ import annotations

from typing import Any

from manyfold.primitives import (
    Failure,
    Family,
    Finding,
    InstallContext,
    Installed,
    Layer,
    Maturity,
    Policy,
    Port,
    Primitive,
    State,
    StateKind,
    handled,
    outside_profile,
)
from manyfold.primitives.findings import Severity

_CRASH = "tests/durable/test_queue_crash.py"
_SEMANTICS = "tests/durable/test_queue_semantics.py"

# The stores inside the queue's one store file, as the manifest lists them: (suffix, kind).
STORES = (("log", "EventLog"), ("checkpoint", "CheckpointStore"), ("done", "Keyspace"))


def _install(ctx: InstallContext, **policies: Any) -> Installed:
    source, acks = ctx.input("ingress"), ctx.input("acks")
    nacks = ctx.bound("nacks")
    store = policies.pop("store", None) or ctx.instance
    node = ctx.graph.durable_queue(
        source, acks=acks, nacks=nacks, deliveries=ctx.bound("deliveries"), dead_letters=ctx.bound("dead_letters"),
        name=ctx.name(), store=store, **policies,
    )
    ctx.add_node(node)
    for suffix, kind in STORES:
        ctx.add_store(f"{store}.{suffix}", kind, policies.get("sync", "full"))
    ports = {"ingress": source, "acks": acks, "deliveries": node.deliveries, "dead_letters": node.dead_letters}
    if nacks is not None:
        ports["nacks"] = nacks
    return Installed(ports)


def _queue_nodes(manifest, record):
    names = set(record.nodes)
    return [n for n in manifest.nodes if n.name in names and n.kind == "durable_queue"]


def check_acks_have_a_producer(manifest, record) -> list[Finding]:
    """The acks route is produced by a node (a worker) or granted to a producer besides its
    owner; otherwise only the route's owner can acknowledge, which is easy to get wrong."""
    out = []
    produced = {route for n in manifest.nodes for route in n.outputs}
    routes = {r.route: r for r in manifest.routes}
    for node in _queue_nodes(manifest, record):
        if len(node.inputs) < 2:
            continue
        edge = next((e for e in manifest.edges if e.target == node.name and e.port == 1), None)
        if edge is None:
            continue
        acks = edge.source
        info = routes.get(acks)
        if acks not in produced and (info is None or not info.writers):
            out.append(Finding(
                "acks_without_producer", record.instance,
                f"its acks route {acks} is produced by no node and granted to no producer: only its owner "
                f"{acks.owner} can acknowledge, and unacknowledged messages are redelivered until dead-lettered",
                Severity.WARNING,
            ))
    return out


def check_dedup_boundary(manifest, record) -> list[Finding]:
    """Without a dedup_key a producer's retry appends the message twice."""
    if record.policies.get("dedup_key"):
        return []
    return [Finding(
        "no_dedup_boundary", record.instance,
        "declares no dedup_key: a producer that retries an append enqueues the message twice, "
        "so consumers must be idempotent on the message itself",
        Severity.WARNING,
    )]


def check_partition_profile(manifest, record) -> list[Finding]:
    """A DurableQueue keeps a SQLite store: it cannot run on an embedded-lite board."""
    profiles = {p.name: p.profile for p in manifest.partitions}
    out = []
    for node in _queue_nodes(manifest, record):
        if profiles.get(node.partition) == "embedded-lite":
            out.append(Finding(
                "durable_on_embedded", record.instance,
                f"node {node.name} is placed on partition {node.partition} (embedded-lite), which has no "
                "durable store: place the queue on an edge or service partition",
            ))
    return out


DurableQueue = Primitive.define(
    name="DurableQueue", version=1, family=Family.HANDOFF, layer=Layer.DURABLE,
    summary="An at-least-once work queue kept in a durable store: append, deliver, ack or nack, "
            "redeliver after a visibility timeout, dead-letter after its retries, replay after a crash.",
    requires=("EventLog", "CheckpointStore", "AckTracker", "VisibilityDeadline"),
    provides=("Append", "Subscribe", "Ack", "Nack", "Replayable", "Bounded"),
    inputs=(
        Port("ingress", "T", "messages to enqueue"),
        Port("acks", "int", "ids of deliveries done (through a mailbox by default, so a worker may produce them)"),
        Port("nacks", "int", "ids of deliveries to redeliver now (optional)"),
    ),
    outputs=(
        Port("deliveries", "Delivery[T]", "Delivery(id, attempt, body) once the append is committed; redeliveries tainted delivery_duplicated"),
        Port("dead_letters", "Delivery[T]", "messages that spent retry_max retries"),
    ),
    state=(
        State("log", StateKind.DURABLE, store="EventLog", doc="every accepted message, its id the log position"),
        State("checkpoint", StateKind.DURABLE, store="CheckpointStore", doc="below which id every message is done"),
        State("done", StateKind.DURABLE, store="Keyspace", doc="acks and dead letters above the checkpoint, attempts of redelivered messages"),
        State("inflight", StateKind.VOLATILE, doc="deliveries awaiting acks and their visibility deadlines"),
    ),
    policies=(
        Policy("capacity", int, required=True, doc="unacknowledged messages kept, 1 to 10,000,000"),
        Policy("overflow", str, default="reject", choices=("reject", "drop_newest"), doc="what a full queue does with a new message (counted either way)"),
        Policy("visibility_timeout_us", int, default=30_000_000, doc="graph time a delivery may wait for its ack before it is delivered again"),
        Policy("retry_max", int, default=3, doc="redeliveries before a message goes to the dead letters"),
        Policy("dedup_key", str, doc="the message field that makes appends idempotent (the dedup boundary)"),
        Policy("dedup_window", int, doc="how many recent appends the dedup boundary covers (default: capacity)"),
        Policy("inflight_max", int, default=64, doc="deliveries awaiting acks at once"),
        Policy("commit_every", int, default=1, doc="appends per commit (acks ride along, or commit when the scheduler runs)"),
        Policy("sync", str, default="full", choices=("full", "normal"), doc="full: a commit survives power loss; normal: survives a process crash"),
        Policy("store", str, doc="the store file's name in the store directory (default: the instance name)"),
    ),
    failures={
        Failure.CRASH: handled(
            "a committed append or ack survives kill -9; on restart the unacknowledged messages are delivered again from "
            "the checkpoint, marked delivery_duplicated, with ids continuing without gaps",
            tests=(f"{_CRASH}::test_kill_during_appends_and_acks", f"{_CRASH}::test_crash_before_ack_replays",
                   f"{_CRASH}::test_edge_node_queue_survives_kill"),
        ),
        Failure.RETRY: handled(
            "a nack redelivers with attempt + 1; after retry_max retries the message goes to dead_letters; attempts survive restarts",
            tests=(f"{_SEMANTICS}::test_retry_limit_dead_letters",),
        ),
        Failure.TIMEOUT: handled(
            "a delivery not acked within visibility_timeout_us of graph time is delivered again, marked delivery_duplicated",
            tests=(f"{_SEMANTICS}::test_visibility_timeout_redelivers",),
        ),
        Failure.DUPLICATE: handled(
            "an append whose dedup_key was seen in the last dedup_window appends is not enqueued again (counted); "
            "redeliveries are marked so consumers can tell",
            tests=(f"{_SEMANTICS}::test_duplicates_deduplicated", f"{_CRASH}::test_kill_during_appends_and_acks"),
        ),
        Failure.STALE_OWNER: outside_profile(
            "a queue has one owner, the process holding its store file; there is no ownership handover that could go stale"
        ),
        Failure.PARTITION: outside_profile(
            "a queue lives on one node with its store; producers and consumers across a link get that link's promises"
        ),
    },
    maturity=Maturity.FAULT_TESTED, kinds=("durable_queue",), installer=_install,
    validators=(check_acks_have_a_producer, check_dedup_boundary, check_partition_profile),
)
