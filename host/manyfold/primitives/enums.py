"""The words a primitive contract is made of: family, layer, maturity, failure, state kind.

Every enum is str-valued (lower snake case), so contracts, manifests and JSON use the same
words. :class:`Maturity` is ordered: ``Maturity.EXECUTABLE >= Maturity.INSTALLABLE``.
"""

from __future__ import annotations

import enum


class Family(str, enum.Enum):
    """Which family of the catalog a primitive belongs to (one file per family in
    ``manyfold.catalog``)."""

    FLOW = "flow"
    """Shaping a stream in time and volume: buffers, limiters, windows, joins."""
    HANDOFF = "handoff"
    """Passing work between parties with a delivery promise: mailboxes, queues, acknowledgements."""
    STATE = "state"
    """Keeping and serving state: views, registers, idempotency records."""
    COORDINATION = "coordination"
    """Agreeing who does what: leases, elections, quorums, consensus."""
    PARTITIONING = "partitioning"
    """Splitting keys and work across places: shard maps, routers, rebalancing."""
    REPLICATION = "replication"
    """Keeping copies: replicators, mirrors, anti-entropy."""
    OPERATIONS = "operations"
    """Running a system: device writes, repair, health, rollout."""


class Layer(str, enum.Enum):
    """How high a primitive sits: from a single operator (atom) to an application pattern."""

    ATOM = "atom"
    POLICY = "policy"
    PROPERTY = "property"
    CAPABILITY = "capability"
    LOCAL = "local"
    DURABLE = "durable"
    DISTRIBUTED = "distributed"
    APPLICATION = "application"


_MATURITY_ORDER = ("named", "installable", "validated", "executable", "fault_tested", "stable")


class Maturity(str, enum.Enum):
    """How far a primitive has come, in order: each level includes the ones before it."""

    NAMED = "named"
    """Named with its requires and provides; nothing to install."""
    INSTALLABLE = "installable"
    """An installer lowers it into routes, nodes and stores."""
    VALIDATED = "validated"
    """Static checks catch its unsafe wirings in a manifest."""
    EXECUTABLE = "executable"
    """It runs in the runtimes, with tests of its behaviour."""
    FAULT_TESTED = "fault_tested"
    """Every failure of the six is handled with tests, or declared outside its profile."""
    STABLE = "stable"
    """Its contract version is a promise: changes come as a new version."""

    @property
    def rank(self) -> int:
        """0 for named up to 5 for stable."""
        return _MATURITY_ORDER.index(self.value)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank >= other.rank

    __hash__ = str.__hash__


class Failure(str, enum.Enum):
    """The six failures every primitive's contract speaks to (vision, "Failure Semantics")."""

    CRASH = "crash"
    """The process holding the primitive's parts dies and restarts."""
    RETRY = "retry"
    """A party repeats an operation it is not sure succeeded."""
    TIMEOUT = "timeout"
    """An answer or acknowledgement does not come in time."""
    DUPLICATE = "duplicate"
    """The same message or request arrives more than once."""
    STALE_OWNER = "stale_owner"
    """A party that lost ownership keeps acting as owner."""
    PARTITION = "partition"
    """Parts of the system cannot reach each other for a while."""


class StateKind(str, enum.Enum):
    """Where a primitive's state lives and what survives."""

    VOLATILE = "volatile"
    """In memory: lost on a crash."""
    DURABLE = "durable"
    """In a store on this node: survives a crash (within the store's sync policy)."""
    REPLICATED = "replicated"
    """Copied to other nodes: survives losing one."""
    EXTERNAL = "external"
    """Kept by something outside the graph (a device, a database)."""


__all__ = ["Failure", "Family", "Layer", "Maturity", "StateKind"]
