"""Partitioning: splitting keys and work across places. RepartitionJoin runs (a join of class
repartition); the rest are named."""

from __future__ import annotations

from manyfold.catalog.flow import _JOIN_POLICIES, _JOIN_PORTS
from manyfold.primitives import Family, InstallContext, Installed, Layer, Maturity, Primitive, State, StateKind


def _repartition_join(ctx: InstallContext, **policies) -> Installed:
    left, right = ctx.input("left"), ctx.input("right")
    node = ctx.graph.join(left, right, join_class="repartition", output=ctx.bound("output"), name=ctx.name(), **policies)
    ctx.add_node(node)
    return Installed({"left": left, "right": right, "output": node.output})


RepartitionJoin = Primitive.define(
    name="RepartitionJoin", version=1, family=Family.PARTITIONING, layer=Layer.LOCAL,
    summary="A join whose sides are keyed differently: both are re-keyed into partitions by a stable hash, then joined per partition.",
    requires=("Join", "Hash", "PartitionPolicy"), provides=("Pair", "Partitioned"),
    **_JOIN_PORTS,
    state=(State("buffers", StateKind.VOLATILE, doc="per-partition, per-key buffers of both sides"),),
    policies=_JOIN_POLICIES,
    maturity=Maturity.EXECUTABLE, kinds=("join",), installer=_repartition_join,
)

PartitionMap = Primitive.define(
    name="PartitionMap", version=1, family=Family.PARTITIONING, layer=Layer.DISTRIBUTED,
    summary="Which node owns which partition, versioned by epoch.",
    requires=("MetadataStore", "Epoch"), provides=("Placement",),
)

ShardMap = Primitive.define(
    name="ShardMap", version=1, family=Family.PARTITIONING, layer=Layer.DISTRIBUTED,
    summary="Maps keys to shards and shards to partitions under a declared partition policy.",
    requires=("PartitionMap", "PartitionPolicy"), provides=("Routing",),
)

MigrationFence = Primitive.define(
    name="MigrationFence", version=1, family=Family.PARTITIONING, layer=Layer.DISTRIBUTED,
    summary="Blocks writes to a partition while it moves, and refuses writes from the old owner after the move.",
    requires=("FencingToken", "Epoch"), provides=("Fenced",),
)

Rebalancer = Primitive.define(
    name="Rebalancer", version=1, family=Family.PARTITIONING, layer=Layer.DISTRIBUTED,
    summary="Moves shards between nodes to even out load, one fenced and checkpointed move at a time.",
    requires=("ShardMap", "Lease", "CheckpointStore", "MigrationFence"), provides=("Balanced",),
)

ConsistentHashRing = Primitive.define(
    name="ConsistentHashRing", version=1, family=Family.PARTITIONING, layer=Layer.DISTRIBUTED,
    summary="Places keys on a hash ring so adding or removing a node moves only its neighbours' keys.",
    requires=("ShardMap", "Hash"), provides=("Placement",),
)
