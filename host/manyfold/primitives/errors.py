"""The error a primitive raises when it is defined or installed wrongly."""

from __future__ import annotations

from manyfold.graph.errors import GraphError


class PrimitiveError(GraphError, ValueError):
    """A contract is malformed, or an install was refused (a policy missing, of the wrong type
    or not among its choices; a named-only primitive; an instance name taken). The message is
    one sentence naming the primitive and instance."""

    kind = "primitive"


__all__ = ["PrimitiveError"]
