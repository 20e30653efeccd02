//! Taints: what an event's history cannot promise.
//!
//! A taint is a value in one of seven domains (time, order, delivery, determinism, scheduling,
//! trust, coherence). An event carries a [`TaintSet`], a bitset, so taints cost one word on a
//! board. The clean state of a domain (perfect time, strict order, complete delivery,
//! deterministic, ready, verified, stable) is the absence of its taints.
//!
//! Composition: an operator's output carries `join(inputs) - proven repairs + added`. Joining is
//! bitwise or; a repair may clear only the taints it names a proof for, and never an absorbing
//! one ([`Taint::DetNonReplayable`]).

/// The seven taint domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintDomain {
    /// Event time is not the true time the event happened.
    Time,
    /// Events may not be in their original order.
    Order,
    /// Events may be missing, merged or repeated.
    Delivery,
    /// Replaying the inputs may not reproduce the output.
    Determinism,
    /// Work was held back or timed out by a scheduler guard.
    Scheduling,
    /// The source is not authenticated.
    Trust,
    /// A written setting and the device's reported state disagree.
    Coherence,
}

impl TaintDomain {
    /// Every domain, in declaration order.
    pub const ALL: [TaintDomain; 7] = [
        TaintDomain::Time,
        TaintDomain::Order,
        TaintDomain::Delivery,
        TaintDomain::Determinism,
        TaintDomain::Scheduling,
        TaintDomain::Trust,
        TaintDomain::Coherence,
    ];

    /// Lowercase name used in manifests, queries and the wire.
    pub const fn name(self) -> &'static str {
        match self {
            TaintDomain::Time => "time",
            TaintDomain::Order => "order",
            TaintDomain::Delivery => "delivery",
            TaintDomain::Determinism => "determinism",
            TaintDomain::Scheduling => "scheduling",
            TaintDomain::Trust => "trust",
            TaintDomain::Coherence => "coherence",
        }
    }
}

macro_rules! taints {
    ($( $(#[$doc:meta])* $variant:ident = $bit:expr, $domain:ident, $name:literal; )*) => {
        /// One taint value. The discriminant is its bit in a [`TaintSet`] (stable: it is on the
        /// wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Taint {
            $( $(#[$doc])* $variant = $bit, )*
        }

        impl Taint {
            /// Every taint value, by bit.
            pub const ALL: &'static [Taint] = &[$(Taint::$variant,)*];

            /// The domain this value belongs to.
            pub const fn domain(self) -> TaintDomain {
                match self { $(Taint::$variant => TaintDomain::$domain,)* }
            }

            /// Lowercase name used in manifests, queries and the wire.
            pub const fn name(self) -> &'static str {
                match self { $(Taint::$variant => $name,)* }
            }

            /// The taint with this name.
            pub fn from_name(name: &str) -> Option<Taint> {
                match name { $($name => Some(Taint::$variant),)* _ => None }
            }

            /// The taint with this bit.
            pub fn from_bit(bit: u8) -> Option<Taint> {
                match bit { $($bit => Some(Taint::$variant),)* _ => None }
            }
        }
    };
}

taints! {
    /// Event time was estimated (for example interpolated), not measured.
    TimeEstimated = 0, Time, "time_estimated";
    /// Event time was corrected by a clock repair.
    TimeRepaired = 1, Time, "time_repaired";
    /// Event time is processing time (the clock when it was handled).
    TimeProcessing = 2, Time, "time_processing";
    /// Event time is unknown.
    TimeUnknown = 3, Time, "time_unknown";
    /// Order is only guaranteed per key.
    OrderKeyed = 4, Order, "order_keyed";
    /// Events were put back in order by a resequencer.
    OrderResequenced = 5, Order, "order_resequenced";
    /// Events may be out of order.
    OrderPossiblyOutOfOrder = 6, Order, "order_possibly_out_of_order";
    /// Only some events were kept (rate limiting, sampling).
    DeliverySampled = 7, Delivery, "delivery_sampled";
    /// Several events were merged into one (latest wins).
    DeliveryCoalesced = 8, Delivery, "delivery_coalesced";
    /// Events were dropped (mailbox overflow, link loss, late data).
    DeliveryDropped = 9, Delivery, "delivery_dropped";
    /// Events may be duplicated.
    DeliveryDuplicated = 10, Delivery, "delivery_duplicated";
    /// Depends on a seeded random source.
    DetSeededEntropy = 11, Determinism, "det_seeded_entropy";
    /// Depends on the processing clock (processing-time windows, wall-clock timers).
    DetProcessingClock = 12, Determinism, "det_processing_clock";
    /// Depends on an external lookup.
    DetExternalLookup = 13, Determinism, "det_external_lookup";
    /// Produced by an operator declared non-deterministic.
    DetNondeterministicOperator = 14, Determinism, "det_nondeterministic_operator";
    /// Cannot be replayed (ephemeral input). Absorbing: no repair clears it.
    DetNonReplayable = 15, Determinism, "det_nonreplayable";
    /// Held by a scheduler guard before it ran.
    SchedGated = 16, Scheduling, "sched_gated";
    /// A guard's deadline passed; the work was dropped or degraded.
    SchedExpired = 17, Scheduling, "sched_expired";
    /// A window was closed before its watermark to bound memory.
    SchedForcedClose = 18, Scheduling, "sched_forced_close";
    /// The source is not authenticated.
    TrustUnverified = 19, Trust, "trust_unverified";
    /// Integrity checks failed somewhere upstream.
    TrustTamperSuspect = 20, Trust, "trust_tamper_suspect";
    /// A desired value was written and not yet confirmed.
    CoherenceWritePending = 21, Coherence, "coherence_write_pending";
    /// The reported value is older than the desired one.
    CoherenceStaleReported = 22, Coherence, "coherence_stale_reported";
    /// The device reported a value nobody asked for.
    CoherenceEchoUnmatched = 23, Coherence, "coherence_echo_unmatched";
}

impl Taint {
    /// True for taints no repair may clear.
    pub const fn is_absorbing(self) -> bool {
        matches!(self, Taint::DetNonReplayable)
    }
}

/// A set of taints, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TaintSet(pub u32);

impl TaintSet {
    /// No taints: a clean event.
    pub const EMPTY: TaintSet = TaintSet(0);

    /// Every taint: a set of bits with one outside it is not a set of taints.
    pub const ALL: TaintSet = {
        let mut bits = 0;
        let mut i = 0;
        // Bounded: one pass over the taint values.
        while i < Taint::ALL.len() {
            bits |= 1 << Taint::ALL[i] as u8;
            i += 1;
        }
        TaintSet(bits)
    };

    /// A set holding just `taint`.
    pub const fn of(taint: Taint) -> TaintSet {
        TaintSet(1 << taint as u8)
    }

    /// True when `taint` is in the set.
    pub const fn contains(self, taint: Taint) -> bool {
        self.0 & (1 << taint as u8) != 0
    }

    /// True when the set has no taints.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set with `taint` added.
    pub const fn with(self, taint: Taint) -> TaintSet {
        TaintSet(self.0 | (1 << taint as u8))
    }

    /// Union: what an operator's output inherits from its inputs.
    pub const fn join(self, other: TaintSet) -> TaintSet {
        TaintSet(self.0 | other.0)
    }

    /// The set without the taints in `cleared`, except absorbing ones, which stay.
    pub const fn repair(self, cleared: TaintSet) -> TaintSet {
        let absorbing = TaintSet::of(Taint::DetNonReplayable).0;
        TaintSet(self.0 & !(cleared.0 & !absorbing))
    }

    /// The taints of one domain.
    pub fn in_domain(self, domain: TaintDomain) -> TaintSet {
        let mut out = TaintSet::EMPTY;
        for taint in self.iter() {
            if taint.domain() == domain {
                out = out.with(taint);
            }
        }
        out
    }

    /// The taints in the set, by bit.
    pub fn iter(self) -> impl Iterator<Item = Taint> {
        Taint::ALL.iter().copied().filter(move |t| self.contains(*t))
    }

    /// Number of taints in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits are unique and every value round-trips through its name and bit.
    #[test]
    fn names_and_bits_round_trip() {
        for (i, t) in Taint::ALL.iter().enumerate() {
            assert_eq!(*t as u8 as usize, i);
            assert_eq!(Taint::from_name(t.name()), Some(*t));
            assert_eq!(Taint::from_bit(*t as u8), Some(*t));
        }
        assert!(Taint::ALL.len() <= 32);
        assert_eq!(TaintSet::ALL.len() as usize, Taint::ALL.len());
        assert!(Taint::ALL.iter().all(|t| TaintSet::ALL.contains(*t)));
    }

    /// Join is union; repair clears what it names except the absorbing taint.
    #[test]
    fn join_and_repair() {
        let a = TaintSet::of(Taint::DeliveryDropped).with(Taint::DetNonReplayable);
        let b = TaintSet::of(Taint::OrderPossiblyOutOfOrder);
        let joined = a.join(b);
        assert_eq!(joined.len(), 3);
        let repaired = joined.repair(TaintSet::of(Taint::OrderPossiblyOutOfOrder).with(Taint::DetNonReplayable));
        assert!(!repaired.contains(Taint::OrderPossiblyOutOfOrder));
        assert!(repaired.contains(Taint::DetNonReplayable));
        assert_eq!(repaired.in_domain(TaintDomain::Delivery), TaintSet::of(Taint::DeliveryDropped));
    }
}
