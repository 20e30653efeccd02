"""Replication: keeping copies on other nodes. All named in this version."""

from __future__ import annotations

from manyfold.primitives import Family, Layer, Primitive

ReplicaSet = Primitive.define(
    name="ReplicaSet", version=1, family=Family.REPLICATION, layer=Layer.DISTRIBUTED,
    summary="The members that hold copies of some state, chosen by a replication policy.",
    requires=("Membership", "ReplicationPolicy"), provides=("Replicas",),
)

Replicator = Primitive.define(
    name="Replicator", version=1, family=Family.REPLICATION, layer=Layer.DISTRIBUTED,
    summary="Ships an event log to the replicas, each resuming from its own checkpoint.",
    requires=("EventLog", "ReplicaSet", "CheckpointStore"), provides=("Replicated", "Replayable"),
)

ReplicatedLog = Primitive.define(
    name="ReplicatedLog", version=1, family=Family.REPLICATION, layer=Layer.DISTRIBUTED,
    summary="An event log whose order is agreed by consensus, so every replica reads the same sequence.",
    requires=("Consensus", "EventLog"), provides=("Replicated", "Ordered", "Durable"),
)

AntiEntropyRepair = Primitive.define(
    name="AntiEntropyRepair", version=1, family=Family.REPLICATION, layer=Layer.DISTRIBUTED,
    summary="Compares replicas by checksum in the background and repairs the differences under a conflict policy.",
    requires=("Replicator", "Checksum", "ConflictPolicy"), provides=("Convergent",),
)
