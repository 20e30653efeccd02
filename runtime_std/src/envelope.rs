//! Host envelopes: the core's closed metadata plus the decoded payload.

use std::sync::Arc;

use manyfold_core::envelope::{Envelope as Meta, EnvelopeId};
use smallvec::SmallVec;

use crate::value::Value;

/// Parent ids: up to four inline (most operators have one or a few parents), more on the heap.
pub type Parents = SmallVec<[EnvelopeId; 4]>;

/// One event: metadata and payload. Shared by every consumer through [`EnvelopeRef`].
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Closed metadata (identity, producer, times, epoch, taints, parents, payload reference).
    pub meta: Meta<Parents>,
    /// The payload (for a lazy payload not yet opened: [`Value::Null`]).
    pub value: Value,
    /// Parents not listed because a window held more inputs than its lineage bound.
    pub parents_elided: u32,
}

/// A shared envelope.
pub type EnvelopeRef = Arc<Envelope>;
