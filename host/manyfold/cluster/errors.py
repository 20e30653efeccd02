"""The one error of the cluster tools: a sentence naming the file, node, partition or link at fault."""

from __future__ import annotations

from manyfold.graph.errors import GraphError


class ClusterError(GraphError):
    """A plan, nodes file, node or cluster start-up problem the user can fix, as one sentence."""

    kind = "cluster"


__all__ = ["ClusterError"]
