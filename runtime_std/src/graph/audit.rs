//! The route audit: who produced, consumed, wrote and opened what, in order.
//!
//! Routes opt in (`RouteOptions::audit`), because recording every delivery costs time on the
//! hot path. Opens, drops and refusals are recorded for every route: they are rare and they
//! are exactly what an audit is for. The log is a bounded ring shared by all routes.

use std::collections::VecDeque;

use manyfold_core::envelope::{EnvelopeId, ProducerRef, RouteIdx};

/// Entries kept in the audit ring.
pub const AUDIT_MAX: usize = 8192;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditKind {
    /// An envelope was published (by a producer or a node).
    Published {
        /// Who published it.
        producer: ProducerRef,
    },
    /// An envelope was delivered to a consumer (node or subscription) through an edge.
    Delivered {
        /// The consumer's name.
        consumer: String,
    },
    /// A lazy payload was opened.
    Opened {
        /// Who opened it.
        consumer: String,
        /// Bytes handed out.
        bytes: u64,
        /// Served from the cache.
        cache_hit: bool,
    },
    /// An envelope was lost in a mailbox (evicted or discarded) or an epoch hold.
    Dropped {
        /// Where: `mailbox NAME` or `epoch hold NAME` (the edge).
        at: String,
    },
    /// A publish was refused (blocking or rejecting mailbox full, or not the owner).
    Refused {
        /// Who tried.
        producer: String,
        /// Why.
        reason: String,
    },
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Order of the entry in the graph's audit log (from 1).
    pub order: u64,
    /// Graph time.
    pub time_us: i64,
    /// The route concerned.
    pub route: RouteIdx,
    /// The envelope concerned (`seq` 0 for refused publishes).
    pub id: EnvelopeId,
    /// What happened.
    pub kind: AuditKind,
}

/// The bounded audit ring.
#[derive(Default)]
pub struct AuditLog {
    entries: VecDeque<AuditEntry>,
    order: u64,
}

impl AuditLog {
    /// Appends an entry, forgetting the oldest when full.
    pub fn push(&mut self, time_us: i64, id: EnvelopeId, kind: AuditKind) {
        self.order += 1;
        if self.entries.len() >= AUDIT_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back(AuditEntry { order: self.order, time_us, route: id.route, id, kind });
    }

    /// Entries concerning `route`, oldest first.
    pub fn of_route(&self, route: RouteIdx) -> Vec<AuditEntry> {
        self.entries.iter().filter(|e| e.route == route).cloned().collect()
    }

    /// Entries ever written (including forgotten ones).
    pub fn total(&self) -> u64 {
        self.order
    }
}
