//! The bounded queue between the graph and one link's thread.
//!
//! The graph side ([`QueueFeed`], a subscriber on each outgoing route) encodes each envelope and
//! pushes it without waiting: a full queue drops it, counts it, and marks the route so that
//! its next event over this link carries `delivery_dropped`. The link thread takes events in
//! batches and puts back what the session's send window could not take. The reader thread
//! hands over received messages through the same lock, so the link thread waits on one
//! condition variable for either. Nobody holds the lock across socket I/O.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use manyfold_core::envelope::PayloadRef;
use manyfold_core::taint::{Taint, TaintSet};
use parking_lot::{Condvar, Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::envelope::EnvelopeRef;
use crate::graph::{OpFailure, Subscriber};

use super::codec;

/// Events a link queues per direction by default (`queue_depth_max`).
pub const QUEUE_DEPTH_DEFAULT: usize = 1024;

/// Received messages held for the link thread at most; beyond that the reader waits.
pub const INCOMING_MAX: usize = 4096;

/// How long the reader waits for room before it drops a received message.
pub const INCOMING_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// One event waiting to cross.
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    /// Route index.
    pub route: u32,
    /// The route's sequence number.
    pub seq: u64,
    /// Event time and its clock domain.
    pub time_us: i64,
    /// Clock domain.
    pub domain: u16,
    /// Taint bits.
    pub taints: u32,
    /// Parents: (route, seq).
    pub parents: SmallVec<[(u32, u64); 2]>,
    /// The payload as CBOR (of a lazy envelope: its metadata value).
    pub payload: SmallVec<[u8; 16]>,
    /// A lazy envelope's payload length and SHA-256 (the bytes are fetched on open).
    pub lazy: Option<(u64, [u8; 32])>,
}

/// What the queue and the reader thread hand the link thread.
#[derive(Default)]
pub struct QueueState {
    /// Events to send, oldest first, at most `capacity`.
    pub events: VecDeque<OutEvent>,
    /// Bound of `events`.
    pub capacity: usize,
    /// Per outgoing route: taints its next queued event takes (a loss happened since).
    pub pending: Vec<(u32, TaintSet)>,
    /// Events dropped because the queue was full or the link stopped taking them.
    pub dropped: u64,
    /// Messages received, for the session.
    pub incoming: Vec<Vec<u8>>,
    /// Messages dropped because the link thread fell behind for longer than [`INCOMING_WAIT`].
    pub incoming_dropped: u64,
    /// False once the node stops: no new events.
    pub closed: bool,
    /// Something happened that the link thread should look at (stop, a new transport).
    pub poke: bool,
}

impl QueueState {
    /// Marks `route` so its next event carries `taints`.
    pub fn taint_next(&mut self, route: u32, taints: TaintSet) {
        match self.pending.iter_mut().find(|(r, _)| *r == route) {
            Some((_, t)) => *t = t.join(taints),
            None => self.pending.push((route, taints)),
        }
    }
}

/// One link's queue.
pub struct LinkQueue {
    state: Mutex<QueueState>,
    signal: Condvar,
    room: Condvar,
}

impl LinkQueue {
    /// A queue of `capacity` events.
    pub fn new(capacity: usize) -> Arc<LinkQueue> {
        Arc::new(LinkQueue { state: Mutex::new(QueueState { capacity: capacity.max(1), ..QueueState::default() }), signal: Condvar::new(), room: Condvar::new() })
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock()
    }

    /// Wakes the link thread.
    pub fn notify(&self) {
        self.signal.notify_one();
    }

    /// Waits (releasing the lock) until notified or `deadline`.
    pub fn wait_until(&self, guard: &mut MutexGuard<'_, QueueState>, deadline: Instant) {
        if deadline > Instant::now() {
            self.signal.wait_until(guard, deadline);
        }
    }

    /// Queues `event` (with the route's pending taints); a full or closed queue drops it, counts
    /// it and marks the route. Never waits for the link.
    pub fn push(&self, mut event: OutEvent) {
        let mut s = self.state.lock();
        if s.closed || s.events.len() >= s.capacity {
            s.dropped += 1;
            s.taint_next(event.route, TaintSet::EMPTY.with(Taint::DeliveryDropped));
            return;
        }
        if let Some(i) = s.pending.iter().position(|(r, _)| *r == event.route) {
            let (_, taints) = s.pending.swap_remove(i);
            event.taints |= taints.0;
        }
        let was_empty = s.events.is_empty();
        s.events.push_back(event);
        drop(s);
        if was_empty {
            self.signal.notify_one();
        }
    }

    /// Hands the link thread a received message. When the link thread is behind, waits for it
    /// (at most [`INCOMING_WAIT`]): the transport pushes back (TCP's window, the UDP socket's
    /// buffer) instead of this queue growing; past the wait the message is dropped and counted.
    pub fn received(&self, message: &[u8]) {
        let mut s = self.state.lock();
        if s.incoming.len() >= INCOMING_MAX {
            let end = Instant::now() + INCOMING_WAIT;
            // Bounded by INCOMING_WAIT.
            while s.incoming.len() >= INCOMING_MAX && Instant::now() < end {
                self.room.wait_until(&mut s, end);
            }
            if s.incoming.len() >= INCOMING_MAX {
                s.incoming_dropped += 1;
                return;
            }
        }
        s.incoming.push(message.to_vec());
        drop(s);
        self.signal.notify_one();
    }

    /// Takes every received message (the link thread), making room for more.
    pub fn take_incoming(&self, into: &mut Vec<Vec<u8>>) {
        std::mem::swap(into, &mut self.state.lock().incoming);
        self.room.notify_all();
    }
}

/// The subscriber feeding one outgoing route into a link's queue.
pub struct QueueFeed {
    /// The queue.
    pub queue: Arc<LinkQueue>,
}

impl Subscriber for QueueFeed {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        let meta = &envelope.meta;
        let mut payload = Vec::with_capacity(16);
        codec::encode(&envelope.value, &mut payload);
        self.queue.push(OutEvent {
            route: meta.id.route.0,
            seq: meta.id.seq,
            time_us: meta.event_time.time_us,
            domain: meta.event_time.domain.0,
            taints: meta.taints.0,
            parents: meta.parents.iter().map(|p| (p.route.0, p.seq)).collect(),
            payload: SmallVec::from_vec(payload),
            lazy: match meta.payload {
                PayloadRef::Lazy { len, digest } => Some((len, digest)),
                PayloadRef::Inline { .. } => None,
            },
        });
        Ok(())
    }
}
