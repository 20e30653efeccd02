"""State: keeping and serving state. The stores are the runtime's building blocks for durable
primitives (not installed on their own); MaterializedView lives in ``state_view.py``."""

from __future__ import annotations

from manyfold.primitives import Family, Layer, Primitive

EventLog = Primitive.define(
    name="EventLog", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="An append-only log of records numbered from 1 without gaps, read from any position and truncated from the front.",
    requires=("WriteAheadLog", "SequenceNumber", "DurabilityPolicy"), provides=("Append", "Replayable", "Ordered"),
)

SnapshotStore = Primitive.define(
    name="SnapshotStore", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="Keeps the latest snapshot of some state together with the log position it reflects.",
    requires=("Keyspace", "Schema"), provides=("Read", "Write"),
)

CheckpointStore = Primitive.define(
    name="CheckpointStore", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="Remembers named positions (how far a reader got) so work resumes where it stopped.",
    requires=("Keyspace", "Offset"), provides=("Read", "Write"),
)

Keyspace = Primitive.define(
    name="Keyspace", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="Durable keys and values with put, get, delete and prefix scans.",
    requires=("ByteStore", "Key"), provides=("Read", "Write", "Delete", "Scan"),
)

IdempotencyStore = Primitive.define(
    name="IdempotencyStore", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="Records the request ids already applied, and their results, so a repeated request returns the first answer.",
    requires=("Keyspace", "RequestId"), provides=("Idempotent",),
)

DeduplicationStore = Primitive.define(
    name="DeduplicationStore", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="Remembers message ids seen within a bounded window so duplicates are dropped and counted.",
    requires=("Keyspace", "MessageId", "RetentionPolicy"), provides=("Idempotent", "Bounded"),
)

VersionedRegister = Primitive.define(
    name="VersionedRegister", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="One durable value with a version, changed only by compare-and-swap on the version read.",
    requires=("Keyspace", "Version", "CompareAndSwap"), provides=("Read", "CompareAndSwap"),
)
