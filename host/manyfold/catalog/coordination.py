"""Coordination: agreeing who does what. All named in this version; the runtime's fences
(``route(..., fence="epoch")``) are the first piece of them that exists."""

from __future__ import annotations

from manyfold.primitives import Family, Layer, Primitive

Heartbeat = Primitive.define(
    name="Heartbeat", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Each node announces it is alive on a period, so silence can be noticed.",
    requires=("Timer", "NodeId"), provides=("Liveness",),
)

FailureDetector = Primitive.define(
    name="FailureDetector", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Suspects a node after its heartbeats stop for a timeout, and says how sure it is.",
    requires=("Heartbeat", "Timeout"), provides=("Suspicion",),
)

FencingToken = Primitive.define(
    name="FencingToken", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="A number that grows with each grant of ownership, so a store can refuse writes carrying an older one.",
    requires=("SequenceNumber",), provides=("Fenced",),
)

Lease = Primitive.define(
    name="Lease", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Time-bounded ownership of a resource, renewed while held and fenced so an expired holder cannot write.",
    requires=("Deadline", "Renew", "Release", "FencingToken", "VersionedRegister"), provides=("Exclusive", "Fenced"),
)

Quorum = Primitive.define(
    name="Quorum", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Decides with a majority of members, so two decisions cannot both win.",
    requires=("Membership", "ConsistencyPolicy"), provides=("Majority",),
)

LeaderElection = Primitive.define(
    name="LeaderElection", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Picks one leader per term by quorum; a new term fences the old leader.",
    requires=("Membership", "Quorum", "Term", "Timer"), provides=("Exclusive", "Fenced"),
)

Consensus = Primitive.define(
    name="Consensus", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="Members agree on one ordered log of decisions despite crashes and partitions of a minority.",
    requires=("EventLog", "SnapshotStore", "Membership", "Quorum", "LeaderElection", "Term", "Timer", "Transport"),
    provides=("Ordered", "Durable", "Replicated"),
)

Membership = Primitive.define(
    name="Membership", version=1, family=Family.COORDINATION, layer=Layer.DISTRIBUTED,
    summary="The current set of nodes in a group, changed by joins, leaves and suspicions.",
    requires=("NodeId", "FailureDetector"), provides=("Members",),
)
