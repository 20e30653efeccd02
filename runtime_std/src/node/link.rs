//! One link's threads: a reader that moves received messages from the transport to the link's
//! queue, and a driver that runs the mesh [`Session`] (sans-IO) over them with a monotonic
//! clock, sends the queued events, and ingests what arrives into the graph.
//!
//! The driver never holds the graph's lock while it touches a socket, and the graph side never
//! waits for the link: a slow or dead peer fills this link's queue (drops counted and tainted)
//! and nothing else.
//!
//! Lazy payloads (docs/wire.md 4.10): a lazy envelope crosses as its metadata, length and
//! digest, and is ingested as a lazy envelope whose source is [`LinkShared::fetch_payload`]: an
//! open sends `fetch` through this link's driver and waits (bounded) for the reply, asking again
//! every [`FETCH_INTERVAL`] at most [`FETCH_ATTEMPTS`] times. The graph then checks the bytes
//! against the digest, caches, counts and audits the open as a local one. The driver answers the
//! peer's fetches from its graph's payload store. Since an open holds the graph's lock while it
//! waits, the driver only ever *tries* the graph's lock (briefly) and keeps what it has for the
//! next pass when the graph is busy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manyfold_core::envelope::{ClockDomain, EnvelopeId, EventTime, PayloadRef, RouteIdx};
use manyfold_core::mesh::{
    Caps, Delivery, DownReason, EventOut, FetchRefused, LineageRef, LinkConfig, LinkState, MeshError, PayloadOut, Refusal, RouteDecl, Session,
};
use manyfold_core::taint::{Taint, TaintSet};
use parking_lot::{Condvar, Mutex};

use crate::envelope::Parents;
use crate::graph::{GraphError, PayloadOpener, Remote};
use crate::links::Transport;
use crate::schema::Schema;

use super::codec;
use super::plan::LinkPlan;
use super::queue::{LinkQueue, OutEvent};
use super::status::LinkStatus;
use super::GraphHost;

/// Events in flight per link (the session's send window).
pub const WINDOW: usize = 1024;
/// Events the session holds to put them back in order.
pub const REORDER: usize = 512;

/// The session type every link runs.
pub type LinkSession = Session<WINDOW, REORDER>;

/// Events taken from the queue per pass.
const BATCH: usize = 512;
/// Longest sleep of the driver (it looks at the stop flag this often).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How long a stopping link waits for its sent events to be acknowledged.
pub const STOP_WAIT: Duration = Duration::from_secs(2);
/// A lazy payload's fetch is sent again after this long without a reply...
pub const FETCH_INTERVAL: Duration = Duration::from_millis(250);
/// ...at most this many times in all; then the open fails.
pub const FETCH_ATTEMPTS: u32 = 4;
/// Opens waiting for a payload over one link at once; more fail at once.
pub const FETCHES_MAX: usize = 64;
/// The largest payload fetched over a link (it comes one message at a time, a round trip
/// each); a larger one is refused `too_large`.
pub const FETCH_BYTES_MAX: u64 = 16 << 20;
/// Payloads a driver keeps while it serves the peer their pieces.
const SERVING_MAX: usize = 4;
/// The peer's fetches waiting for this graph; more are forgotten (the peer asks again).
const ANSWERS_MAX: usize = 256;
/// Received events held while the graph is busy; beyond that the driver waits for the graph.
const HELD_MAX: usize = 16 * BATCH;
/// How long the driver tries the graph's lock before it keeps its work for the next pass.
const GRAPH_WAIT: Duration = Duration::from_millis(10);

/// What this end answers to one of the peer's fetches.
type Reply = Result<Arc<[u8]>, FetchRefused>;

/// One open waiting for a payload from the peer.
struct Wanted {
    ticket: u64,
    route: u32,
    seq: u64,
    /// The declared length.
    len: u64,
    /// The pieces so far: the next fetch asks from `got.len()` on.
    got: Vec<u8>,
    /// Fetches of the current piece.
    attempts: u32,
    next_at: Instant,
    /// When the last piece came (or the open began).
    progress_at: Instant,
    done: Option<Result<Vec<u8>, String>>,
}

/// The opens waiting for payloads over one link, and the driver's answers to them.
#[derive(Default)]
pub struct Fetches {
    wanted: Mutex<(u64, Vec<Wanted>)>,
    answered: Condvar,
}

/// Where the link's transport is: set at start (dialing side) or when the peer first shows up
/// (listening side), replaced when a new connection comes.
#[derive(Default)]
pub struct TransportSlot {
    current: Mutex<Option<Arc<dyn Transport>>>,
}

impl TransportSlot {
    /// The current transport.
    pub fn get(&self) -> Option<Arc<dyn Transport>> {
        self.current.lock().clone()
    }

    /// Installs `t`.
    pub fn set(&self, t: Arc<dyn Transport>) {
        *self.current.lock() = Some(t);
    }
}

/// Everything one link's threads share with the node.
pub struct LinkShared {
    /// The plan.
    pub plan: LinkPlan,
    /// Outgoing events and incoming messages.
    pub queue: Arc<LinkQueue>,
    /// The transport.
    pub slot: TransportSlot,
    /// What the admin endpoint shows.
    pub status: Mutex<LinkStatus>,
    /// The pre-shared key.
    pub key: Option<[u8; 32]>,
    /// This end dials (sends the hello).
    pub dialer: bool,
    /// Lazy payloads being fetched over the link.
    pub fetches: Fetches,
}

impl LinkShared {
    /// The link's status now (the queue's numbers read live; `route_names` names the flows).
    pub fn status(&self, route_names: &[String]) -> LinkStatus {
        let mut s = self.status.lock().clone();
        let q = self.queue.lock();
        s.queued = q.events.len() as u64;
        s.dropped = q.dropped;
        s.dropped_by_route = q
            .events
            .dropped_by_route()
            .into_iter()
            .map(|(r, n)| (route_names.get(r as usize).map_or_else(|| format!("route #{r}"), Clone::clone), n))
            .collect();
        s
    }

    /// The source of a lazy envelope received over this link (its route and the peer's
    /// sequence number, from the peer's `incarnation`).
    pub fn remote_opener(self: &Arc<Self>, route: u32, seq: u64, len: u64, incarnation: u64) -> PayloadOpener {
        let link = self.clone();
        Box::new(move || link.fetch_payload(route, seq, len, incarnation))
    }

    /// Fetches the payload (`len` bytes) of the peer's event (route, seq), piece by piece: asks
    /// the driver to send `fetch` and waits for the replies, failing when no piece came for
    /// [`FETCH_ATTEMPTS`] × [`FETCH_INTERVAL`] and a little. Called by the graph (an open) with
    /// the graph locked; the driver never waits for it.
    pub fn fetch_payload(&self, route: u32, seq: u64, len: u64, incarnation: u64) -> Result<Vec<u8>, String> {
        let name = &self.plan.name;
        if len > FETCH_BYTES_MAX {
            return Err(format!("the payload has {len} bytes, more than the {FETCH_BYTES_MAX} a node fetches over a link (too_large)"));
        }
        let status = self.status.lock().clone();
        if status.peer_incarnation != Some(incarnation) {
            return Err(format!("the node across link {name} restarted since the envelope crossed; its payload is gone"));
        }
        if status.state != "up" {
            return Err(format!("link {name} is {}; the payload cannot be fetched now", status.state));
        }
        let ticket = {
            let mut w = self.fetches.wanted.lock();
            if w.1.len() >= FETCHES_MAX {
                return Err(format!("{FETCHES_MAX} payload fetches already wait on link {name}"));
            }
            w.0 += 1;
            let ticket = w.0;
            let now = Instant::now();
            let got = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            w.1.push(Wanted { ticket, route, seq, len, got, attempts: 0, next_at: now, progress_at: now, done: None });
            ticket
        };
        self.queue.lock().poke = true;
        self.queue.notify();
        let stall = FETCH_INTERVAL * (FETCH_ATTEMPTS + 1);
        let mut w = self.fetches.wanted.lock();
        // Bounded: each piece comes within `stall` or the open fails, and the pieces are
        // at most FETCH_BYTES_MAX bytes.
        loop {
            let Some(i) = w.1.iter().position(|x| x.ticket == ticket) else {
                return Err(format!("the fetch of the payload over link {name} was lost"));
            };
            let end = w.1[i].progress_at + stall;
            if w.1[i].done.is_some() || Instant::now() >= end {
                let done = w.1.swap_remove(i).done;
                return done.unwrap_or_else(|| Err(format!("no answer from the node across link {name} after {FETCH_ATTEMPTS} fetches")));
            }
            self.fetches.answered.wait_until(&mut w, end);
        }
    }
}

/// What a driver needs from its node.
pub struct DriverContext {
    /// The graph.
    pub graph: Arc<dyn GraphHost>,
    /// This node.
    pub node_id: u16,
    /// Its name.
    pub node_name: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// The manifest's id.
    pub manifest_id: [u8; 32],
    /// Every route's schema hash (manifest order).
    pub schema_hashes: Vec<[u8; 32]>,
    /// Schema per route index.
    pub schemas: Vec<Arc<Schema>>,
    /// Largest message.
    pub mtu: u16,
    /// Lease.
    pub lease_ms: u32,
    /// The node is stopping.
    pub stop: Arc<AtomicBool>,
    /// The node's clock origin.
    pub origin: Instant,
}

impl DriverContext {
    fn now_us(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_micros()).unwrap_or(i64::MAX)
    }
}

/// The capabilities the manifest link asks for, and `lazy` when a bulk route crosses it.
pub fn requested(plan: &LinkPlan) -> Caps {
    let mut c = Caps::NONE;
    let caps = [
        (plan.ordered, Caps::ORDERED),
        (plan.reliable, Caps::RELIABLE),
        (plan.authenticated, Caps::AUTHENTICATED),
        (plan.durable, Caps::DURABLE),
        (plan.lazy, Caps::LAZY),
    ];
    for (on, cap) in caps {
        if on {
            c = c.union(cap);
        }
    }
    c
}

/// What the transport gives by itself. Zenoh gives nothing end to end (it is reliable hop by
/// hop only: what a router loses is lost silently), so the session provides it, as on UDP.
pub fn transport_caps(kind: &str) -> Caps {
    match kind {
        "tcp" => Caps::ORDERED.union(Caps::RELIABLE),
        "zenoh" => Caps::NONE,
        _ => Caps::NONE,
    }
}

/// Moves received messages from the link's transport into its queue until `finished` (set once
/// every link said bye: acknowledgements still arrive while a stopping node waits for them).
pub fn run_reader(link: Arc<LinkShared>, finished: Arc<AtomicBool>) {
    // Bounded by the finished flag: each pass waits at most 50 ms.
    while !finished.load(Ordering::Relaxed) {
        let Some(t) = link.slot.get() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let (queue, lossless) = (&link.queue, transport_caps(t.kind()).contains(Caps::RELIABLE));
        if t.recv(Duration::from_millis(50), &mut |m| queue.received(m, lossless, &finished)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Per incoming route: taints the next event takes, and the sequence offset after a peer
/// restart (its route sequence numbers start again at 1; this graph's copy keeps counting).
#[derive(Default, Clone, Copy)]
struct Incoming {
    extra: TaintSet,
    declared: TaintSet,
    pending: TaintSet,
    offset: u64,
}

struct Driver {
    link: Arc<LinkShared>,
    /// The peer's fetches waiting for the graph: (route, seq, offset).
    answers: VecDeque<(u32, u64, u64)>,
    /// Payloads being served to the peer piece by piece, most recent last.
    serving: Vec<(u32, u64, Arc<[u8]>)>,
    /// The session provides lazy payloads.
    lazy: bool,
    fetches: u64,
    fetch_failures: u64,
    fetches_served: u64,
    ctx: Arc<DriverContext>,
    session: Box<LinkSession>,
    incoming: HashMap<u32, Incoming>,
    missing: TaintSet,
    peer_incarnation: Option<u64>,
    batch: Vec<(RouteIdx, Remote, Option<PayloadOpener>)>,
    rejected: u64,
    graph_duplicates: u64,
    window_full: bool,
    buf: Vec<u8>,
    parents: Vec<LineageRef>,
}

fn refusal_sentence(r: Refusal, routes: &[String]) -> String {
    let route = |i: u32| routes.get(i as usize).cloned().unwrap_or_else(|| format!("route #{i}"));
    match r {
        Refusal::VersionUnsupported(v) => format!("the ends speak different node-link protocol versions (the refuser speaks {v})"),
        Refusal::ManifestMismatch => "the two nodes run different manifests (their manifest ids differ)".into(),
        Refusal::LinkMismatch => "the peer's hello names another link".into(),
        Refusal::SchemaMismatch { route: i } => format!("route {} has a different schema at each end", route(i)),
        Refusal::RouteMismatch { route: i } => format!("route {} crosses the link at one end only", route(i)),
        Refusal::CapabilityUnavailable(c) => format!("the peer cannot provide {}", c.iter().collect::<Vec<_>>().join(", ")),
        Refusal::CapabilitiesDiffer(c) => format!("the ends request different capabilities ({} differ)", c.iter().collect::<Vec<_>>().join(", ")),
        Refusal::KeyMissing => "one end has a key for the link and the other not".into(),
        Refusal::KeyUnsupported => "this build cannot seal frames but the link has a key".into(),
        Refusal::MtuTooSmall => "the peer's MTU is too small".into(),
        Refusal::NoSession => "the peer no longer holds the session".into(),
        Refusal::Config(e) => format!("this end's link configuration is invalid ({})", e.name()),
    }
}

impl Driver {
    fn now(&self) -> i64 {
        self.ctx.now_us()
    }

    fn on_delivery(&mut self, d: OwnedDelivery, route_names: &[String]) {
        match d {
            OwnedDelivery::Up { peer_node, peer_name, peer_incarnation, provided, missing } => {
                self.missing = missing.missing_taints();
                let restarted = self.peer_incarnation.is_some_and(|i| i != peer_incarnation);
                if restarted {
                    // The peer's route sequence numbers start over: keep this copy counting.
                    let routes: Vec<u32> = self.incoming.keys().copied().collect();
                    let mut seqs = Vec::new();
                    self.ctx.graph.with_graph(&mut |g| {
                        seqs = routes.iter().map(|r| (*r, g.route_seq(RouteIdx(*r)).unwrap_or(0))).collect();
                    });
                    for (r, seq) in seqs {
                        if let Some(i) = self.incoming.get_mut(&r) {
                            i.offset = seq;
                            i.pending = i.pending.with(Taint::DeliveryDropped);
                        }
                    }
                }
                self.peer_incarnation = Some(peer_incarnation);
                self.lazy = provided.contains(Caps::LAZY);
                for i in self.incoming.values_mut() {
                    i.extra = TaintSet(self.missing.0 & !i.declared.0);
                }
                let mut s = self.link.status.lock();
                s.peer = Some(peer_name);
                s.peer_id = Some(peer_node);
                s.peer_incarnation = Some(peer_incarnation);
                s.provided = provided;
                s.missing = missing;
                s.state = "up".into();
                s.refusal = None;
                s.ups += 1;
            }
            OwnedDelivery::Event { route, seq, time_us, domain, taints, parents, payload, gap } => {
                let Some(info) = self.incoming.get(&route).copied() else {
                    self.rejected += 1;
                    return;
                };
                let Some(schema) = self.ctx.schemas.get(route as usize) else {
                    self.rejected += 1;
                    return;
                };
                // A lazy payload: the metadata is the value, the bytes are fetched on open.
                let (bytes, lazy) = payload;
                let Ok(value) = codec::decode(&schema.ty, &bytes) else {
                    self.rejected += 1;
                    return;
                };
                let (payload, opener) = match (lazy, self.peer_incarnation) {
                    (Some((len, digest)), Some(inc)) => (PayloadRef::Lazy { len, digest }, Some(self.link.remote_opener(route, seq, len, inc))),
                    _ => (PayloadRef::Inline { len: u32::try_from(bytes.len()).unwrap_or(u32::MAX) }, None),
                };
                let mut taints = TaintSet(taints).join(info.extra).join(info.pending);
                if gap {
                    taints = taints.with(Taint::DeliveryDropped);
                }
                if let Some(i) = self.incoming.get_mut(&route) {
                    i.pending = TaintSet::EMPTY;
                }
                let shift = |p: &LineageRef| p.seq + self.incoming.get(&p.route).map_or(0, |i| i.offset);
                let parents: Parents = parents.iter().map(|p| EnvelopeId { route: RouteIdx(p.route), seq: shift(p) }).collect();
                let remote = Remote {
                    seq: seq + info.offset,
                    event_time: EventTime { time_us, domain: ClockDomain(domain) },
                    taints,
                    parents,
                    value,
                    payload,
                };
                self.batch.push((RouteIdx(route), remote, opener));
            }
            OwnedDelivery::Fetch { route, seq, offset } => {
                if self.answers.len() < ANSWERS_MAX {
                    self.answers.push_back((route, seq, offset));
                }
            }
            OwnedDelivery::FetchReply { route, seq, offset, payload } => self.on_fetch_reply(route, seq, offset, payload, route_names),
            OwnedDelivery::Refused(r) => {
                let mut s = self.link.status.lock();
                *s.refused.entry(r.name().to_string()).or_insert(0) += 1;
                s.refusal = Some(refusal_sentence(r, route_names));
                s.state = "refused".into();
            }
            OwnedDelivery::Down(reason) => {
                // What was in flight is lost with the session: the next events of every
                // crossing route, both ways, say so.
                let mut q = self.link.queue.lock();
                for r in &self.link.plan.outgoing {
                    q.taint_next(*r, TaintSet::EMPTY.with(Taint::DeliveryDropped));
                }
                drop(q);
                for i in self.incoming.values_mut() {
                    i.pending = i.pending.with(Taint::DeliveryDropped);
                }
                let mut s = self.link.status.lock();
                s.state = "down".into();
                s.down_reason = Some(reason.name().to_string());
            }
        }
    }

    /// A reply to a fetch of an open waiting here: the next piece (the open is done when the
    /// payload is whole; else the next piece is asked for at once), or a refusal.
    fn on_fetch_reply(&mut self, route: u32, seq: u64, offset: u64, payload: Result<(u64, Vec<u8>), FetchRefused>, route_names: &[String]) {
        let name = &self.link.plan.name;
        let label = route_names.get(route as usize).map_or_else(|| format!("route #{route}"), Clone::clone);
        let mut w = self.link.fetches.wanted.lock();
        let Some(wanted) = w.1.iter_mut().find(|x| x.route == route && x.seq == seq && x.done.is_none()) else { return };
        match payload {
            Err(FetchRefused::NotHeld) => {
                wanted.done = Some(Err(format!("the node across link {name} no longer holds the payload of {label}@{seq} (not_held)")));
            }
            Err(FetchRefused::TooLarge) => {
                wanted.done = Some(Err(format!(
                    "the payload of {label}@{seq} is larger than the node across link {name} sends ({FETCH_BYTES_MAX} bytes) (too_large)"
                )));
            }
            // A late answer to a piece asked for twice: the piece came already.
            Ok(_) if offset != wanted.got.len() as u64 => return,
            Ok((total, _)) if total != wanted.len => {
                wanted.done = Some(Err(format!(
                    "the node across link {name} holds {total} bytes for the payload of {label}@{seq}, but {} were declared; refused",
                    wanted.len
                )));
            }
            Ok((total, piece)) => {
                wanted.got.extend_from_slice(&piece);
                if wanted.got.len() as u64 == total {
                    wanted.done = Some(Ok(std::mem::take(&mut wanted.got)));
                } else if piece.is_empty() {
                    wanted.done = Some(Err(format!("the node across link {name} sent an empty piece of the payload of {label}@{seq}")));
                } else {
                    let now = Instant::now();
                    (wanted.attempts, wanted.next_at, wanted.progress_at) = (0, now, now);
                    return;
                }
            }
        }
        if matches!(wanted.done, Some(Err(_))) {
            self.fetch_failures += 1;
        }
        drop(w);
        self.link.fetches.answered.notify_all();
    }

    /// Sends the fetches of waiting opens that are due; gives up on those asked
    /// [`FETCH_ATTEMPTS`] times. Returns when the next one is due.
    fn drive_fetches(&mut self, now_us: i64) -> Option<Instant> {
        let now = Instant::now();
        let name = self.link.plan.name.clone();
        let mut w = self.link.fetches.wanted.lock();
        let mut next: Option<Instant> = None;
        let mut finished = false;
        for x in w.1.iter_mut().filter(|x| x.done.is_none()) {
            if x.next_at > now {
                next = Some(next.map_or(x.next_at, |n| n.min(x.next_at)));
                continue;
            }
            if x.attempts >= FETCH_ATTEMPTS {
                x.done = Some(Err(format!("no answer from the node across link {name} after {FETCH_ATTEMPTS} fetches")));
                self.fetch_failures += 1;
                finished = true;
                continue;
            }
            if x.attempts == 0 && x.got.is_empty() {
                self.fetches += 1;
            }
            x.attempts += 1;
            x.next_at = now + FETCH_INTERVAL;
            next = Some(next.map_or(x.next_at, |n| n.min(x.next_at)));
            // Not up or the control queue full: the next attempt asks again.
            if let Err(MeshError::FetchUnsupported) = self.session.fetch(now_us, x.route, x.seq, x.got.len() as u64) {
                x.done = Some(Err(format!("link {name} does not provide lazy payload fetches")));
                self.fetch_failures += 1;
                finished = true;
            }
        }
        drop(w);
        if finished {
            self.link.fetches.answered.notify_all();
        }
        next
    }

    /// Answers the peer's fetches from the graph's payload store (when the graph is free): the
    /// first piece of a payload opens it (as consumer `link:NAME`), the next ones are cut from
    /// the bytes kept since.
    fn answer_fetches(&mut self, now_us: i64) {
        if self.answers.is_empty() || !matches!(self.session.state(), LinkState::Up) {
            return;
        }
        let kept = |serving: &[(u32, u64, Arc<[u8]>)], route: u32, seq: u64| {
            serving.iter().find(|(r, s, _)| *r == route && *s == seq).map(|(_, _, b)| b.clone())
        };
        let to_open: Vec<(u32, u64)> = self
            .answers
            .iter()
            .filter(|&&(route, seq, offset)| offset == 0 || kept(&self.serving, route, seq).is_none())
            .map(|&(route, seq, _)| (route, seq))
            .collect();
        let consumer = format!("link:{}", self.link.plan.name);
        let mut opened: Vec<(u32, u64, Reply)> = Vec::new();
        if !to_open.is_empty() {
            let done = self.ctx.graph.try_with_graph(GRAPH_WAIT, &mut |g| {
                for &(route, seq) in &to_open {
                    let id = EnvelopeId { route: RouteIdx(route), seq };
                    let reply = match g.lazy_payload(id) {
                        Some((len, _)) if len > FETCH_BYTES_MAX => Err(FetchRefused::TooLarge),
                        _ => g.open_payload(id, &consumer).map_err(|_| FetchRefused::NotHeld),
                    };
                    opened.push((route, seq, reply));
                }
            });
            if !done {
                return;
            }
        }
        for (route, seq, reply) in &opened {
            if let Ok(bytes) = reply {
                self.serving.retain(|(r, s, _)| (*r, *s) != (*route, *seq));
                if self.serving.len() >= SERVING_MAX {
                    self.serving.remove(0);
                }
                self.serving.push((*route, *seq, bytes.clone()));
            }
        }
        for (route, seq, offset) in std::mem::take(&mut self.answers) {
            let reply: Reply = match opened.iter().find(|(r, s, _)| (*r, *s) == (route, seq)) {
                Some((_, _, reply)) => reply.clone(),
                None => kept(&self.serving, route, seq).ok_or(FetchRefused::NotHeld),
            };
            let whole = offset == 0 && reply.is_ok();
            if self.session.answer_fetch(now_us, route, seq, offset, reply.as_deref().map_err(|e| *e)).is_ok() && whole {
                self.fetches_served += 1;
            }
        }
    }

    /// Records the events received in this pass, under one lock of the graph. When the graph
    /// is busy (an open may be waiting on this link) they are kept for the next pass.
    fn ingest(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        let held = batch.len();
        let (mut ok, mut dup, mut bad) = (0u64, 0u64, 0u64);
        let mut run = |g: &mut crate::graph::Graph| {
            for (route, remote, opener) in batch.drain(..) {
                let result = match opener {
                    Some(open) => g.ingest_lazy(route, remote, open),
                    None => g.ingest(route, remote),
                };
                match result {
                    Ok(_) => ok += 1,
                    Err(GraphError::Duplicate(_)) => dup += 1,
                    Err(_) => bad += 1,
                }
            }
        };
        if !self.ctx.graph.try_with_graph(GRAPH_WAIT, &mut run) && held > HELD_MAX {
            self.ctx.graph.with_graph(&mut run);
        }
        self.graph_duplicates += dup;
        self.rejected += bad;
        self.batch = batch;
        let mut s = self.link.status.lock();
        s.events_rx += ok;
    }

    fn send_queued(&mut self, now: i64) {
        if self.window_full || !matches!(self.session.state(), LinkState::Up) {
            return;
        }
        let mut taken: Vec<OutEvent> = {
            let mut q = self.link.queue.lock();
            q.events.take(BATCH)
        };
        // Over Zenoh, each first-send message holds one route (it goes on the route's key):
        // the session gets one route's events at a time and sends them before the next.
        let by_route = self.link.plan.transport == "zenoh";
        if by_route {
            taken.sort_by_key(|ev| ev.route);
        }
        let mut sent = 0u64;
        let mut dropped = 0u64;
        let mut back = None;
        for (i, ev) in taken.iter().enumerate() {
            if by_route && i > 0 && taken[i - 1].route != ev.route {
                self.transmit(now);
            }
            self.parents.clear();
            let node = self.ctx.node_id;
            self.parents.extend(ev.parents.iter().map(|(route, seq)| LineageRef { node, route: *route, seq: *seq }));
            let out = EventOut {
                route: ev.route,
                seq: ev.seq,
                time_us: ev.time_us,
                domain: ev.domain,
                taints: ev.taints,
                parents: &self.parents,
                payload: match ev.lazy {
                    Some((len, digest)) if self.lazy => PayloadOut::Lazy { meta: &ev.payload, len, digest },
                    _ => PayloadOut::Inline(&ev.payload),
                },
            };
            match self.session.send_event(now, &out) {
                Ok(_) => sent += 1,
                Err(MeshError::SendWindowFull) | Err(MeshError::SendNotUp) => {
                    self.window_full = true;
                    back = Some(i);
                    break;
                }
                Err(_) => dropped += 1,
            }
        }
        if let Some(i) = back {
            let rest: Vec<OutEvent> = taken.drain(i..).collect();
            let mut q = self.link.queue.lock();
            q.events.put_back(rest);
            q.dropped += dropped;
        } else if dropped > 0 {
            self.link.queue.lock().dropped += dropped;
        }
        if sent > 0 {
            self.link.status.lock().events_tx += sent;
        }
    }

    fn transmit(&mut self, now: i64) {
        let t = self.link.slot.get();
        // Bounded: the session hands out what it holds, then None.
        while let Some(n) = self.session.poll_transmit(now, &mut self.buf) {
            if let Some(t) = &t {
                let _ = t.send(&self.buf[..n]);
            }
            // Sending may free the window (a link that does not retransmit forgets what it
            // sent): try the queue again.
            self.window_full = false;
        }
    }

    fn refresh_status(&mut self) {
        let c = *self.session.counters();
        // queued and dropped are read live from the queue by LinkShared::status.
        let t = self.link.slot.get();
        let mut s = self.link.status.lock();
        s.retransmits = c.retransmits;
        s.duplicates = c.dup_dropped + self.graph_duplicates;
        s.gaps = c.gaps;
        s.rx_overflow = t.as_ref().map_or(0, |t| t.stats().rx_overflow);
        s.bad_frames = t.as_ref().map_or(0, |t| t.stats().bad_frames) + c.frames_bad_mac + c.frames_replayed + c.frames_unkeyed + c.frames_undecodable;
        s.rejected = self.rejected;
        s.unacked = self.session.unacked() as u64;
        s.fetches = self.fetches;
        s.fetch_failures = self.fetch_failures;
        s.fetches_served = self.fetches_served;
        if let Some(t) = &t {
            s.transport = t.kind().to_string();
            s.peer_addr = t.peer_label();
            s.note = t.note();
        }
        if matches!(self.session.state(), LinkState::Connecting) && s.state != "refused" && s.state != "down" {
            s.state = "connecting".into();
        }
    }
}

/// Drives one link until the node stops: then stops taking events, waits (at most
/// [`STOP_WAIT`]) for what was sent to be acknowledged, and says bye.
pub fn run_driver(link: Arc<LinkShared>, ctx: Arc<DriverContext>, route_names: Arc<Vec<String>>) {
    let plan = &link.plan;
    let mut decls: Vec<RouteDecl> = plan
        .outgoing
        .iter()
        .copied()
        .chain(plan.incoming.iter().map(|(r, _)| *r))
        .map(|r| RouteDecl { route: r, schema_hash: ctx.schema_hashes.get(r as usize).copied().unwrap_or([0; 32]) })
        .collect();
    decls.sort_by_key(|d| d.route);
    decls.dedup_by_key(|d| d.route);
    let mut kind = link.status.lock().transport.clone();
    let mtu = if plan.transport == "zenoh" { u16::try_from(crate::links::ZENOH_MTU_DEFAULT).unwrap_or(u16::MAX) } else { ctx.mtu };
    let make = |kind: &str| -> Box<LinkSession> {
        let config = LinkConfig {
            node_id: ctx.node_id,
            node_name: &ctx.node_name,
            incarnation: ctx.incarnation,
            manifest_id: ctx.manifest_id,
            link: &plan.name,
            requested: requested(plan),
            transport: transport_caps(kind),
            mtu,
            lease_ms: ctx.lease_ms,
            routes: &decls,
            key: link.key,
            initiator: link.dialer,
        };
        Box::new(LinkSession::new(&config))
    };
    let session = make(&kind);
    let incoming = plan.incoming.iter().map(|(r, declared)| (*r, Incoming { declared: *declared, ..Incoming::default() })).collect();
    let mut d = Driver {
        link: link.clone(),
        answers: VecDeque::new(),
        serving: Vec::new(),
        lazy: false,
        fetches: 0,
        fetch_failures: 0,
        fetches_served: 0,
        ctx: ctx.clone(),
        session,
        incoming,
        missing: TaintSet::EMPTY,
        peer_incarnation: None,
        batch: Vec::new(),
        rejected: 0,
        graph_duplicates: 0,
        window_full: false,
        buf: vec![0u8; usize::from(mtu).max(256)],
        parents: Vec::new(),
    };
    let now = d.now();
    d.session.connect(now);
    let mut stop_deadline: Option<Instant> = None;
    let mut incoming_msgs: Vec<Vec<u8>> = Vec::new();
    // Bounded by the stop flag and STOP_WAIT: each pass sleeps at most IDLE_WAIT.
    loop {
        let now = d.now();
        // The listening side learns the transport from the peer (it dials udp:// or tcp://):
        // the session must know what the transport gives by itself, as the peer's does.
        if let Some(t) = link.slot.get().filter(|t| t.kind() != kind) {
            kind = t.kind().to_string();
            d.session = make(&kind);
            d.session.connect(now);
            d.window_full = false;
            link.status.lock().transport = kind.clone();
        }
        if ctx.stop.load(Ordering::Relaxed) && stop_deadline.is_none() {
            link.queue.lock().closed = true;
            stop_deadline = Some(Instant::now() + STOP_WAIT);
        }
        link.queue.take_incoming(&mut incoming_msgs);
        if !incoming_msgs.is_empty() {
            d.window_full = false;
        }
        for m in incoming_msgs.drain(..) {
            let mut deliveries = Vec::new();
            d.session.receive(now, &m, &mut |dl| deliveries.push(owned(dl)));
            for dl in deliveries {
                d.on_delivery(dl, &route_names);
            }
        }
        let mut deliveries = Vec::new();
        d.session.tick(now, &mut |dl| deliveries.push(owned(dl)));
        for dl in deliveries {
            d.on_delivery(dl, &route_names);
        }
        let fetch_due = d.drive_fetches(now);
        d.answer_fetches(now);
        d.ingest();
        d.send_queued(now);
        d.transmit(now);
        d.refresh_status();
        if let Some(deadline) = stop_deadline {
            let idle = d.session.unacked() == 0 && link.queue.lock().events.is_empty();
            if idle || Instant::now() >= deadline || !matches!(d.session.state(), LinkState::Up) {
                let now = d.now();
                d.session.bye(now);
                d.transmit(now);
                d.refresh_status();
                return;
            }
        }
        let wake = d
            .session
            .poll_deadline_us()
            .map(|at| Instant::now() + Duration::from_micros(u64::try_from(at - d.now()).unwrap_or(0)))
            .map_or(Instant::now() + IDLE_WAIT, |t| t.min(Instant::now() + IDLE_WAIT));
        let wake = fetch_due.map_or(wake, |t| t.min(wake));
        // Work kept for a busy graph: look again soon.
        let wake = if d.batch.is_empty() && d.answers.is_empty() { wake } else { wake.min(Instant::now() + Duration::from_millis(2)) };
        let mut q = link.queue.lock();
        let ready = !q.incoming.is_empty() || (!q.events.is_empty() && !d.window_full && matches!(d.session.state(), LinkState::Up)) || q.poke;
        q.poke = false;
        if !ready {
            link.queue.wait_until(&mut q, wake);
        }
    }
}

/// A delivery copied out of the session's borrow, so the driver can act on it (touching the
/// graph, the queue, the session) after the session's callback returned.
enum OwnedDelivery {
    Up { peer_node: u16, peer_name: String, peer_incarnation: u64, provided: Caps, missing: Caps },
    /// `payload`: the bytes (of a lazy payload: its metadata), and a lazy payload's length and
    /// digest.
    Event { route: u32, seq: u64, time_us: i64, domain: u16, taints: u32, parents: Vec<LineageRef>, payload: (Vec<u8>, Option<(u64, [u8; 32])>), gap: bool },
    Fetch { route: u32, seq: u64, offset: u64 },
    /// `payload`: the payload's whole length and the piece.
    FetchReply { route: u32, seq: u64, offset: u64, payload: Result<(u64, Vec<u8>), FetchRefused> },
    Refused(Refusal),
    Down(DownReason),
}

fn owned(d: Delivery<'_>) -> OwnedDelivery {
    match d {
        Delivery::Up { peer_node, peer_name, peer_incarnation, provided, missing } => {
            OwnedDelivery::Up { peer_node, peer_name: peer_name.to_string(), peer_incarnation, provided, missing }
        }
        Delivery::Event(ev) => OwnedDelivery::Event {
            route: ev.route,
            seq: ev.seq,
            time_us: ev.time_us,
            domain: ev.domain,
            taints: ev.taints,
            parents: ev.parents.iter().collect(),
            payload: match ev.payload {
                PayloadOut::Inline(b) => (b.to_vec(), None),
                PayloadOut::Lazy { meta, len, digest } => (meta.to_vec(), Some((len, digest))),
            },
            gap: ev.gap,
        },
        Delivery::FetchRequest { route, seq, offset } => OwnedDelivery::Fetch { route, seq, offset },
        Delivery::FetchReply { route, seq, offset, payload } => {
            OwnedDelivery::FetchReply { route, seq, offset, payload: payload.map(|p| (p.total, p.bytes.to_vec())) }
        }
        Delivery::Refused(r) => OwnedDelivery::Refused(r),
        Delivery::Down(r) => OwnedDelivery::Down(r),
    }
}
