"""Handoff: passing work between parties with a delivery promise. DurableQueue lives in
``handoff_durable.py``."""

from __future__ import annotations

from manyfold.graph.graph import Mailbox as _MailboxPolicy
from manyfold.graph.graph import Overflow
from manyfold.primitives import Family, InstallContext, Installed, Layer, Maturity, Policy, Port, Primitive, State, StateKind


def _mailbox(ctx: InstallContext, *, capacity: int, overflow: str) -> Installed:
    source, sink = ctx.input("source"), ctx.input("sink")
    node = ctx.graph.connect(source, sink, mailbox=_MailboxPolicy(capacity, overflow), name=ctx.name())
    ctx.add_node(node, outputs=False)
    return Installed({"source": source, "sink": sink})


Mailbox = Primitive.define(
    name="Mailbox", version=1, family=Family.HANDOFF, layer=Layer.LOCAL,
    summary="A bounded buffer on an edge: the consumer runs later, when the scheduler delivers, and a full mailbox applies its declared overflow.",
    requires=("BoundedQueue", "OverflowPolicy"), provides=("Bounded", "Decoupled"),
    inputs=(Port("source", "T", "the route delivered from"),),
    outputs=(Port("sink", "T", "the (declared) route delivered to"),),
    state=(State("queue", StateKind.VOLATILE, doc="the items waiting for the scheduler"),),
    policies=(
        Policy("capacity", int, required=True, doc="items it holds, 1 to 1,048,576"),
        Policy("overflow", Overflow, default="block", doc="what a full mailbox does with a new item"),
    ),
    maturity=Maturity.EXECUTABLE, kinds=("forward",), installer=_mailbox,
)

AckTracker = Primitive.define(
    name="AckTracker", version=1, family=Family.HANDOFF, layer=Layer.LOCAL,
    summary="Remembers which deliveries are in flight and settles each by ack or nack exactly once.",
    requires=("Ack", "Nack", "Deadline", "IdempotencyStore"), provides=("Ack", "Nack"),
)

VisibilityDeadline = Primitive.define(
    name="VisibilityDeadline", version=1, family=Family.HANDOFF, layer=Layer.LOCAL,
    summary="Hides a delivered message until a deadline, after which an unacknowledged message is delivered again.",
    requires=("Deadline", "TTL"), provides=("Redelivery",),
)

ConsumerGroup = Primitive.define(
    name="ConsumerGroup", version=1, family=Family.HANDOFF, layer=Layer.DISTRIBUTED,
    summary="Shares a stream's partitions among the members of a group, each partition read by one member with its own checkpoint.",
    requires=("Membership", "CheckpointStore", "PartitionMap"), provides=("Subscribe", "Balanced"),
)

Inbox = Primitive.define(
    name="Inbox", version=1, family=Family.HANDOFF, layer=Layer.DURABLE,
    summary="Receives messages into a durable log and drops the ones already seen, so a sender's retries take effect once.",
    requires=("EventLog", "DeduplicationStore"), provides=("Idempotent", "Replayable"),
)

Outbox = Primitive.define(
    name="Outbox", version=1, family=Family.HANDOFF, layer=Layer.DURABLE,
    summary="Records outgoing messages with the state change that caused them, and sends them after the commit with idempotency keys.",
    requires=("EventLog", "IdempotencyStore"), provides=("AtLeastOnce", "Atomic"),
)

DeadLetterQueue = Primitive.define(
    name="DeadLetterQueue", version=1, family=Family.HANDOFF, layer=Layer.DURABLE,
    summary="Keeps the messages that exhausted their retries, with the reason, for inspection and replay.",
    requires=("DurableQueue", "Error"), provides=("Observable", "Replayable"),
)
