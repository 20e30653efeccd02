//! The bounded queues between the graph and one link's thread: one per outgoing route (a
//! **flow**), so a chatty route fills its own queue and never another's.
//!
//! The graph side ([`QueueFeed`], a subscriber on each outgoing route) encodes each envelope and
//! pushes it without waiting: a full flow drops it, counts it, and marks the route so that
//! its next event over this link carries `delivery_dropped`. The link thread takes events in
//! batches ([`Flows::take`]: in order of arrival while the backlog fits one batch, round-robin
//! over the flows beyond, so a backlogged route does not starve another) and puts back what the
//! session's send window could not take. The reader thread
//! hands over received messages through the same lock, so the link thread waits on one
//! condition variable for either. Nobody holds the lock across socket I/O.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use manyfold_core::envelope::PayloadRef;
use manyfold_core::taint::{Taint, TaintSet};
use parking_lot::{Condvar, Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::envelope::EnvelopeRef;
use crate::graph::{OpFailure, Subscriber};

use super::codec;

/// Events a link queues per outgoing route (flow) by default (`queue_depth_max`).
pub const QUEUE_DEPTH_DEFAULT: usize = 1024;

/// Received messages held for the link thread at most; beyond that the reader waits.
pub const INCOMING_MAX: usize = 4096;

/// How long a datagram link's reader waits for room before it drops a received message (a
/// stream link's reader waits as long as it takes: see [`LinkQueue::received`]).
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

/// One outgoing route's queue.
struct Flow {
    route: u32,
    /// (arrival stamp, event), oldest first.
    events: VecDeque<(u64, OutEvent)>,
    dropped: u64,
}

/// The events waiting to cross one link: a bounded queue per outgoing route.
pub struct Flows {
    flows: Vec<Flow>,
    len: usize,
    /// The flow a round-robin take looks at next.
    next: usize,
    /// Arrival stamps: the order events were queued in. New events count up from here...
    stamp: u64,
    /// ...and events put back count down from here, so they go first again, in their order.
    front: u64,
}

impl Default for Flows {
    fn default() -> Self {
        Flows { flows: Vec::new(), len: 0, next: 0, stamp: 1 << 62, front: 1 << 62 }
    }
}

impl Flows {
    /// Events queued, every flow together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn flow(&mut self, route: u32) -> &mut Flow {
        let i = match self.flows.iter().position(|f| f.route == route) {
            Some(i) => i,
            None => {
                self.flows.push(Flow { route, events: VecDeque::new(), dropped: 0 });
                self.flows.len() - 1
            }
        };
        &mut self.flows[i]
    }

    /// Queues `event` on its route's flow unless that flow holds `capacity` events already
    /// (then it is counted against the flow, dropped, and false returned).
    fn push(&mut self, event: OutEvent, capacity: usize) -> bool {
        self.stamp += 1;
        let stamp = self.stamp;
        let flow = self.flow(event.route);
        if flow.events.len() >= capacity {
            flow.dropped += 1;
            return false;
        }
        flow.events.push_back((stamp, event));
        self.len += 1;
        true
    }

    /// Takes at most `n` events: in order of arrival when everything queued fits `n` (the
    /// link keeps up: the order the graph produced them in), else one from each flow in turn.
    pub fn take(&mut self, n: usize) -> Vec<OutEvent> {
        let mut out = Vec::with_capacity(n.min(self.len));
        if self.len <= n {
            let mut all: Vec<(u64, OutEvent)> = self.flows.iter_mut().flat_map(|f| f.events.drain(..)).collect();
            all.sort_by_key(|(stamp, _)| *stamp);
            out.extend(all.into_iter().map(|(_, e)| e));
            self.len = 0;
            return out;
        }
        let k = self.flows.len();
        // Bounded: `len > n` events are queued, so each round of `k` looks takes at least one.
        while out.len() < n {
            let flow = &mut self.flows[self.next % k];
            self.next = (self.next + 1) % k;
            if let Some((_, e)) = flow.events.pop_front() {
                out.push(e);
                self.len -= 1;
            }
        }
        out
    }

    /// Puts back events taken but not sent, at the front of their flows, in their order.
    pub fn put_back(&mut self, events: Vec<OutEvent>) {
        for e in events.into_iter().rev() {
            self.len += 1;
            // Stamped before everything queued: they go first again.
            self.front -= 1;
            let stamp = self.front;
            self.flow(e.route).events.push_front((stamp, e));
        }
    }

    /// Each outgoing route's flow: (route, events queued now, events dropped because it was full).
    pub fn by_route(&self) -> Vec<(u32, usize, u64)> {
        self.flows.iter().map(|f| (f.route, f.events.len(), f.dropped)).collect()
    }

    /// Events each route's flow dropped because it was full: (route, count).
    pub fn dropped_by_route(&self) -> Vec<(u32, u64)> {
        self.flows.iter().filter(|f| f.dropped > 0).map(|f| (f.route, f.dropped)).collect()
    }
}

/// What the queue and the reader thread hand the link thread.
#[derive(Default)]
pub struct QueueState {
    /// Events to send: a queue per outgoing route, each at most `capacity`.
    pub events: Flows,
    /// Bound of each route's queue.
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
    /// Queues of `capacity` events per route.
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

    /// Queues `event` (with the route's pending taints); a full flow or a closed queue drops it,
    /// counts it and marks the route. Never waits for the link.
    pub fn push(&self, mut event: OutEvent) {
        let mut s = self.state.lock();
        let route = event.route;
        let pending = s.pending.iter().position(|(r, _)| *r == route);
        if let Some(i) = pending {
            event.taints |= s.pending[i].1 .0;
        }
        let capacity = s.capacity;
        let was_empty = s.events.is_empty();
        let queued = !s.closed && s.events.push(event, capacity);
        if !queued {
            s.dropped += 1;
            s.taint_next(route, TaintSet::EMPTY.with(Taint::DeliveryDropped));
            return;
        }
        if let Some(i) = pending {
            s.pending.swap_remove(i);
        }
        drop(s);
        if was_empty {
            self.signal.notify_one();
        }
    }

    /// Hands the link thread a received message. When the link thread is behind, waits for it
    /// so that the transport pushes back instead of this queue growing. On a stream (`lossless`:
    /// TCP, whose session neither acknowledges nor resends) the wait lasts until there is room
    /// or `finished` is set: a message dropped here would be lost for good on a link that
    /// promises reliability, while waiting stops reading the socket, TCP's window closes, and the
    /// sending node's bounded queue drops, counts and taints instead. On datagrams the wait is
    /// at most [`INCOMING_WAIT`] (the socket may be shared by several links, and the session
    /// resends what a reliable link loses); past it the message is dropped and counted.
    pub fn received(&self, message: &[u8], lossless: bool, finished: &AtomicBool) {
        let mut s = self.state.lock();
        if s.incoming.len() >= INCOMING_MAX {
            let start = Instant::now();
            // Bounded by INCOMING_WAIT on datagrams, by the finished flag on streams (each
            // wait at most 100 ms).
            while s.incoming.len() >= INCOMING_MAX && !finished.load(Ordering::Relaxed) {
                if !lossless && start.elapsed() >= INCOMING_WAIT {
                    break;
                }
                self.room.wait_for(&mut s, std::time::Duration::from_millis(100));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(route: u32, seq: u64) -> OutEvent {
        OutEvent { route, seq, time_us: 0, domain: 0, taints: 0, parents: SmallVec::new(), payload: SmallVec::new(), lazy: None }
    }

    fn routes(events: &[OutEvent]) -> Vec<(u32, u64)> {
        events.iter().map(|e| (e.route, e.seq)).collect()
    }

    /// A chatty route fills its own flow (drops counted against it, its next event tainted) and
    /// never another's; a backlog is drained one flow at a time in turn, each flow in order;
    /// when the link keeps up, events leave in the order they came.
    #[test]
    fn each_route_has_its_own_bounded_flow_drained_in_turn() {
        let q = LinkQueue::new(4);
        for seq in 1..=10 {
            q.push(event(1, seq));
        }
        q.push(event(2, 1));
        q.push(event(2, 2));
        let mut s = q.lock();
        assert_eq!((s.events.len(), s.dropped), (6, 6));
        assert_eq!(s.events.dropped_by_route(), vec![(1, 6)]);
        let taken = s.events.take(3);
        assert_eq!(routes(&taken), [(1, 1), (2, 1), (1, 2)]);
        // Not sent: back at the front of their flows, and first again in the order taken.
        s.events.put_back(taken);
        assert_eq!(s.events.len(), 6);
        let all = s.events.take(6);
        assert_eq!(routes(&all), [(1, 1), (2, 1), (1, 2), (1, 3), (1, 4), (2, 2)]);
        drop(s);
        // Route 1's next event says it lost some; route 2's does not.
        q.push(event(2, 3));
        q.push(event(1, 11));
        let mut s = q.lock();
        let next = s.events.take(8);
        assert_eq!(routes(&next), [(2, 3), (1, 11)]);
        assert_eq!((next[0].taints, next[1].taints), (0, TaintSet::EMPTY.with(Taint::DeliveryDropped).0));
    }
}
