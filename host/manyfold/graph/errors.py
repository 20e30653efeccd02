"""Errors raised by the graph API.

Every error is a :class:`GraphError` with a ``kind`` (a stable short name) and a message that
names the offending route, node or edge. Subclasses also derive from the matching built-in
exception where one fits (a schema error is a ``TypeError``, an ownership error a
``PermissionError``), so generic handlers keep working.
"""

from __future__ import annotations


class GraphError(Exception):
    """A graph operation failed. ``kind`` is a stable short name for code; ``str()`` is for people."""

    kind = "graph"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RouteError(GraphError, ValueError):
    """A route is malformed (a bad segment, an unknown plane, ...), unknown, or declared twice."""

    kind = "route"


class SchemaMismatchError(GraphError, TypeError):
    """Two routes joined by an edge or operator carry different schemas."""

    kind = "schema_mismatch"


class SchemaCheckError(GraphError, TypeError):
    """A value does not match its route's schema."""

    kind = "schema_check"


class NotOwnerError(GraphError, PermissionError):
    """The caller does not own the route it publishes on."""

    kind = "not_owner"


class UnsafeCycleError(GraphError):
    """An edge would close a feedback loop with no mailbox or control-epoch boundary on it."""

    kind = "unsafe_cycle"


class OperatorConfigError(GraphError, ValueError):
    """An operator's parameters are invalid, or a name is invalid or taken."""

    kind = "operator_config"


class JoinRejectedError(GraphError):
    """A join plan was refused, for example an unbounded all-to-all join."""

    kind = "join_rejected"


class BackpressureError(GraphError):
    """A blocking mailbox downstream is full: nothing was published. Run the scheduler (or let
    the real-time loop drain it) and publish again, or publish with a ``timeout_s``."""

    kind = "must_wait"


class RejectedError(GraphError):
    """A rejecting mailbox downstream is full: the publish was refused."""

    kind = "rejected"


class GuardError(GraphError, ValueError):
    """A scheduler guard is invalid (for example it expires in the past)."""

    kind = "guard_invalid"


class TimeError(GraphError, ValueError):
    """A time argument (an event time, a clock time, a guard time) is not an integer number of
    microseconds within the signed 64-bit range. Nothing was published or advanced; the message
    names the route or the call."""

    kind = "time_invalid"


class ClockModeError(GraphError):
    """The operation needs the other clock mode (virtual time cannot be read from the wall)."""

    kind = "clock_mode"


class ManifestError(GraphError, ValueError):
    """A manifest is malformed, of an unknown version, inconsistent, or needs a function that
    was not supplied. The message names the field, record or function."""

    kind = "manifest"


class StoreError(GraphError, OSError):
    """A durable store could not be opened, read or written (``kind`` says which operation and
    how it failed), or a durable operator was built on a graph without a store directory.
    Losses found while recovering a store are not errors: they are reported
    (``Recovery.lost``, the view's ``lost``, the operator's health)."""

    kind = "store"

    def __init__(self, message: str, kind: str = "store") -> None:
        super().__init__(message)
        self.kind = kind


class OperatorError(GraphError):
    """User code inside the graph (a map, filter, key function or subscriber) raised.

    The original exception is ``__cause__``; ``origin`` names the node or subscription.
    """

    kind = "operator"

    def __init__(self, message: str, origin: str = "") -> None:
        super().__init__(message)
        self.origin = origin


_BY_KIND = {
    "route_unknown": RouteError,
    "route_declared_twice": RouteError,
    "route": RouteError,
    "schema_mismatch": SchemaMismatchError,
    "schema_check": SchemaCheckError,
    "not_owner": NotOwnerError,
    "unsafe_cycle": UnsafeCycleError,
    "name_invalid": OperatorConfigError,
    "operator_config": OperatorConfigError,
    "join_rejected": JoinRejectedError,
    "must_wait": BackpressureError,
    "rejected": RejectedError,
    "guard_invalid": GuardError,
    "clock_mode": ClockModeError,
    "time_invalid": TimeError,
    "manifest": ManifestError,
    "callable_missing": ManifestError,
    "payload_open": GraphError,
}


_STORE_KINDS = frozenset(
    {"store", "open_missing", "open_corrupt", "open_failed", "write_failed", "read_failed", "commit_failed", "transaction_misuse", "io_failed"}
)


def error_for(kind: str, message: str) -> GraphError:
    """The exception for an error kind reported by the runtime (used by the extension)."""
    if kind in _STORE_KINDS:
        return StoreError(message, kind)
    return _BY_KIND.get(kind, GraphError)(message)
