//! [`Caps`]: the capabilities of a node link, one bit each on the wire (docs/wire.md 4.7).

/// A set of link capabilities: what a manifest link requests, what a transport gives by itself,
/// what a session provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u8);

impl Caps {
    /// No capability.
    pub const NONE: Caps = Caps(0);
    /// Events of the link are delivered in the order they were sent.
    pub const ORDERED: Caps = Caps(1);
    /// Every event sent is delivered (while the session lasts).
    pub const RELIABLE: Caps = Caps(2);
    /// Events can be replayed after a restart. Never provided yet.
    pub const DURABLE: Caps = Caps(4);
    /// Every frame carries a MAC under the link's pre-shared key.
    pub const AUTHENTICATED: Caps = Caps(8);
    /// Payloads may cross as metadata, fetched on demand.
    pub const LAZY: Caps = Caps(16);
    /// Every capability this version knows.
    pub const ALL: Caps = Caps(31);
    /// The capabilities with their names, bit order.
    pub const NAMED: [(Caps, &'static str); 5] = [
        (Caps::ORDERED, "ordered"),
        (Caps::RELIABLE, "reliable"),
        (Caps::DURABLE, "durable"),
        (Caps::AUTHENTICATED, "authenticated"),
        (Caps::LAZY, "lazy"),
    ];

    /// Every bit of `other` is in `self`.
    pub const fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits of either.
    pub const fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    /// The bits of both.
    pub const fn intersection(self, other: Caps) -> Caps {
        Caps(self.0 & other.0)
    }

    /// The bits of `self` that are not in `other`.
    pub const fn minus(self, other: Caps) -> Caps {
        Caps(self.0 & !other.0)
    }

    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the known capabilities in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = &'static str> {
        Caps::NAMED.into_iter().filter(move |(c, _)| self.contains(*c)).map(|(_, name)| name)
    }

    /// The capability of this name.
    pub fn from_name(name: &str) -> Option<Caps> {
        Caps::NAMED.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// The taint code (docs/wire.md 2.6) a crossing envelope carries when the link lacks this
    /// one capability: ordered, reliable, authenticated and durable have one, lazy has none.
    pub const fn missing_taint(self) -> Option<crate::taint::Taint> {
        use crate::taint::Taint;
        match self {
            Caps::ORDERED => Some(Taint::OrderPossiblyOutOfOrder),
            Caps::RELIABLE => Some(Taint::DeliveryDropped),
            Caps::AUTHENTICATED => Some(Taint::TrustUnverified),
            Caps::DURABLE => Some(Taint::DetNonReplayable),
            _ => None,
        }
    }

    /// The taints of every capability of `self` (the missing ones): what each crossing envelope
    /// carries.
    pub fn missing_taints(self) -> crate::taint::TaintSet {
        let mut set = crate::taint::TaintSet::EMPTY;
        for (cap, _) in Caps::NAMED {
            if let (true, Some(t)) = (self.contains(cap), cap.missing_taint()) {
                set = set.with(t);
            }
        }
        set
    }

    /// What a session provides of `requested` on a transport that gives `transport` by itself:
    /// requested ∩ (transport ∪ ordered ∪ reliable ∪ authenticated when keyed ∪ lazy), never
    /// durable (docs/wire.md 4.7).
    pub const fn provided(requested: Caps, transport: Caps, keyed: bool) -> Caps {
        let mut can = transport.0 | Caps::ORDERED.0 | Caps::RELIABLE.0 | Caps::LAZY.0;
        if keyed {
            can |= Caps::AUTHENTICATED.0;
        }
        Caps(requested.0 & can & !Caps::DURABLE.0)
    }
}
