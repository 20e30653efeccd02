//! The envelope: closed metadata that travels with every event, separate from its payload.
//!
//! An envelope is identified by its route and the route's sequence number
//! ([`EnvelopeId`], printed `route@seq` by hosts). It records who produced it, when it happened
//! (event time in a clock domain) and when the runtime took it in (ingest time), the control
//! epoch it belongs to, its taints, the envelopes it was derived from, and a reference to its
//! payload: inline, or lazy (declared length and digest, opened on demand).

use crate::taint::TaintSet;

/// Index of a route in a graph or partition's route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouteIdx(pub u32);

/// Identity of an envelope: its route and that route's sequence number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EnvelopeId {
    /// The route it was published on.
    pub route: RouteIdx,
    /// Per-route sequence number, starting at 1.
    pub seq: u64,
}

/// Who produced an envelope: an external producer or a graph node, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProducerRef {
    /// A named producer outside the graph (a sensor driver, an application), by index.
    External(u32),
    /// A graph node (operator), by index.
    Node(u32),
    /// The runtime itself (query replies, link bookkeeping).
    Runtime,
}

/// A clock domain: timestamps are comparable only within one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockDomain(pub u16);

impl ClockDomain {
    /// The runtime's own clock at ingest (virtual in tests, monotonic wall clock otherwise).
    pub const INGEST: ClockDomain = ClockDomain(0);
    /// The producer's device clock.
    pub const DEVICE: ClockDomain = ClockDomain(1);
    /// Control epochs used as time.
    pub const CONTROL_EPOCH: ClockDomain = ClockDomain(2);
}

/// When an event happened, in a clock domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTime {
    /// Microseconds in the domain's timeline.
    pub time_us: i64,
    /// The domain.
    pub domain: ClockDomain,
}

/// A SHA-256 digest of a payload.
pub type Digest = [u8; 32];

/// Where the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadRef {
    /// Carried with the envelope.
    Inline {
        /// Encoded length in bytes.
        len: u32,
    },
    /// Not materialized: opened on demand from its source.
    Lazy {
        /// Declared length in bytes.
        len: u64,
        /// Declared SHA-256 of the bytes; an open that yields other bytes is refused.
        digest: Digest,
    },
}

/// Closed metadata of one event. `P` holds the parent ids (`[EnvelopeId]` in some bounded or
/// heap container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<P> {
    /// This envelope's identity.
    pub id: EnvelopeId,
    /// Who produced it.
    pub producer: ProducerRef,
    /// When the event happened.
    pub event_time: EventTime,
    /// When the runtime took it in, on the ingest clock, in microseconds.
    pub ingest_time_us: i64,
    /// The control epoch it was produced in, if the producer runs in epochs.
    pub control_epoch: Option<u64>,
    /// What its history cannot promise.
    pub taints: TaintSet,
    /// The envelopes it was derived from (empty for source events).
    pub parents: P,
    /// Where its payload is.
    pub payload: PayloadRef,
}

impl<P: AsRef<[EnvelopeId]>> Envelope<P> {
    /// The parent ids.
    pub fn parent_ids(&self) -> &[EnvelopeId] {
        self.parents.as_ref()
    }
}
