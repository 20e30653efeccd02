"""Taints: what an event's history cannot promise, as a vector over seven domains.

An envelope's taints are a set of :class:`Taint` values; each belongs to one
:class:`TaintDomain`. The clean state of a domain is the absence of its taints. Operators
compute ``join(inputs) - proven repairs + added`` (see ``docs/taints.md``).
"""

from __future__ import annotations

import enum


class TaintDomain(str, enum.Enum):
    """The seven taint domains."""

    TIME = "time"
    ORDER = "order"
    DELIVERY = "delivery"
    DETERMINISM = "determinism"
    SCHEDULING = "scheduling"
    TRUST = "trust"
    COHERENCE = "coherence"


class Taint(str, enum.Enum):
    """One taint value. The value is its stable name (as on the wire and in manifests)."""

    TIME_ESTIMATED = "time_estimated"
    TIME_REPAIRED = "time_repaired"
    TIME_PROCESSING = "time_processing"
    TIME_UNKNOWN = "time_unknown"
    ORDER_KEYED = "order_keyed"
    ORDER_RESEQUENCED = "order_resequenced"
    ORDER_POSSIBLY_OUT_OF_ORDER = "order_possibly_out_of_order"
    DELIVERY_SAMPLED = "delivery_sampled"
    DELIVERY_COALESCED = "delivery_coalesced"
    DELIVERY_DROPPED = "delivery_dropped"
    DELIVERY_DUPLICATED = "delivery_duplicated"
    DET_SEEDED_ENTROPY = "det_seeded_entropy"
    DET_PROCESSING_CLOCK = "det_processing_clock"
    DET_EXTERNAL_LOOKUP = "det_external_lookup"
    DET_NONDETERMINISTIC_OPERATOR = "det_nondeterministic_operator"
    DET_NONREPLAYABLE = "det_nonreplayable"
    SCHED_GATED = "sched_gated"
    SCHED_EXPIRED = "sched_expired"
    SCHED_FORCED_CLOSE = "sched_forced_close"
    TRUST_UNVERIFIED = "trust_unverified"
    TRUST_TAMPER_SUSPECT = "trust_tamper_suspect"
    COHERENCE_WRITE_PENDING = "coherence_write_pending"
    COHERENCE_STALE_REPORTED = "coherence_stale_reported"
    COHERENCE_ECHO_UNMATCHED = "coherence_echo_unmatched"

    @property
    def domain(self) -> TaintDomain:
        """The domain this value belongs to."""
        prefix = self.value.split("_", 1)[0]
        return {"det": TaintDomain.DETERMINISM, "sched": TaintDomain.SCHEDULING}.get(prefix) or TaintDomain(prefix)

    @property
    def absorbing(self) -> bool:
        """True when no repair may clear it."""
        return self is Taint.DET_NONREPLAYABLE

    @property
    def bit(self) -> int:
        """Its bit in a taint bitset (stable: it is on the wire)."""
        return list(Taint).index(self)


def taints_from_bits(bits: int) -> frozenset[Taint]:
    """The taints in a bitset."""
    return frozenset(t for i, t in enumerate(Taint) if bits >> i & 1)


def taints_of(envelope) -> frozenset[Taint]:
    """The taints of an envelope, as Taint values."""
    return taints_from_bits(envelope.taint_bits)
