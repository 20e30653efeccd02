//! [`Session`]: one end of a node link (docs/wire.md 4.6–4.10), sans-IO.
//!
//! The caller owns the socket and the clock: it passes every received body to
//! [`Session::receive`], calls [`Session::poll_transmit`] until it returns `None` and frames
//! each body it returns, and calls [`Session::tick`] at [`Session::poll_deadline_us`]. Events
//! go in with [`Session::send_event`] and come out, with everything else the session learns,
//! as [`Delivery`] callbacks.
//!
//! What it does for the node:
//! - **handshake**: the initiator says hello (every `hello_retry_ms` until answered); the
//!   responder checks version, link, manifest, capabilities, keys, MTU and every crossing
//!   route's schema hash, and welcomes or refuses with a named reason, which both ends deliver;
//! - **batching**: events wait in the send window until `poll_transmit` packs as many as fit
//!   the MTU into one message;
//! - **reliability and order** where the link requests them and the transport lacks them:
//!   cumulative and selective acks, retransmission after an RTO (Jacobson's estimator, Karn's
//!   backoff), a window of `WINDOW` events (full: [`MeshError::SendWindowFull`] to the caller),
//!   a resequencing buffer of `REORDER` events;
//! - **loss**: dedup on the link sequence number always; a sequence number given up is a gap,
//!   counted, and the next event of a route whose sequence number skipped ahead is flagged
//!   ([`EventIn::gap`]), as is every route's next event after the peer restarted;
//! - **leases**: a keepalive after a quarter lease without sending; nothing heard for a lease:
//!   `Down(LeaseExpired)`; the initiator then says hello again, and a new session re-declares
//!   everything (routes, capabilities, incarnations);
//! - **incarnations**: a hello or welcome from a new incarnation of the peer ends the old
//!   session with `Down(PeerRestarted)`; a message for a session this end does not hold is
//!   answered `refuse no_session`, so an initiator learns at once that its peer restarted;
//! - **keys**: every frame sealed and checked ([`super::auth`]); forged, replayed and unsealed
//!   frames are refused and counted.
//!
//! Storage: `WINDOW` send slots and `REORDER` receive slots of `SLOT` bytes each (an encoded
//! event, without its link sequence number, must fit a slot: [`MeshError::EncodeTooLong`]
//! otherwise), and [`CTL_BYTES`] for fetch messages. Both ends of a link use the same `SLOT`.

use heapless::{String, Vec};

use super::auth::{self, ReplayWindow};
use super::msg::{
    self, read_kept_event, varint_len, write_entry, write_event, write_events_head, Hello, Msg, Refuse, Routes, Welcome,
    Writer,
};
use super::{
    Caps, Delivery, DownReason, EventIn, EventOut, FetchRefused, LinkConfig, MeshError, Piece, Refusal, RouteDecl, MTU_MIN, NAME_MAX, ROUTES_MAX,
    SCHEMA_PREFIX, VERSION,
};

/// Bytes kept for queued fetch requests and replies.
pub const CTL_BYTES: usize = 4096;

/// Link sequence numbers from here on are refused (a session never sends 2^63 events), so that
/// counting up from any received one cannot overflow.
const LINK_SEQ_MAX: u64 = 1 << 63;

/// Bytes of an `events` message before its first entry, at most: kind, session, base.
const EVENTS_HEAD_MAX: usize = 1 + 4 + 10;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Made, `connect` not called yet (a responder already answers hellos).
    Idle,
    /// The initiator says hello; the responder waits for one.
    Connecting,
    /// A session is up: events cross.
    Up,
    /// The session ended; an initiator says hello again.
    Down(DownReason),
    /// The handshake was refused (an initiator says hello again after a lease).
    Refused(Refusal),
}

/// Timers of a session, in milliseconds (defaults: [`Timing::DEFAULT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// An initiator says hello again this often until answered.
    pub hello_retry_ms: u32,
    /// A missing link sequence number is given up after this long, when the link does not
    /// retransmit (without RELIABLE): later events wait this long at most for it.
    pub reorder_wait_ms: u32,
    /// Retransmission timeout before the first round-trip sample.
    pub rto_initial_ms: u32,
    /// Least retransmission timeout.
    pub rto_min_ms: u32,
    /// Largest retransmission timeout (after backoff).
    pub rto_max_ms: u32,
}

impl Timing {
    /// Hello every 500 ms, give up a missing event after 50 ms, RTO 200 ms before a sample,
    /// between 5 ms and 2 s.
    pub const DEFAULT: Timing =
        Timing { hello_retry_ms: 500, reorder_wait_ms: 50, rto_initial_ms: 200, rto_min_ms: 5, rto_max_ms: 2_000 };
}

/// What a session counted (since it was made; never reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeshCounters {
    /// Bodies handed out by `poll_transmit`.
    pub messages_tx: u64,
    /// Bodies received that were accepted (decoded, authentic, fresh).
    pub messages_rx: u64,
    /// Events sent (first transmissions).
    pub events_tx: u64,
    /// Events delivered.
    pub events_rx: u64,
    /// Events sent again after an RTO.
    pub retransmits: u64,
    /// Events received twice (or after their sequence number was given up): dropped.
    pub dup_dropped: u64,
    /// Events held in the resequencing buffer and delivered later, in order.
    pub reordered: u64,
    /// Link sequence numbers given up (events lost on the way).
    pub gaps: u64,
    /// Events delivered with the gap flag.
    pub gap_events: u64,
    /// Events that arrived beyond the resequencing buffer of a retransmitting link: dropped
    /// unacknowledged (the peer sends them again).
    pub rx_overflow: u64,
    /// `send_event` calls refused with `SendWindowFull`.
    pub window_full: u64,
    /// Events in the send window when a session ended (unsent or unacknowledged).
    pub events_lost: u64,
    /// Events of a route the link does not declare: dropped.
    pub events_unknown_route: u64,
    /// (keyed) Frames whose MAC was wrong.
    pub frames_bad_mac: u64,
    /// (keyed) Frames whose counter was seen already or is too old, or from an older
    /// incarnation of the peer.
    pub frames_replayed: u64,
    /// (keyed) Frames without a MAC.
    pub frames_unkeyed: u64,
    /// (not keyed) Sealed frames: the peer has a key and this end has none.
    pub frames_sealed: u64,
    /// Bodies that did not decode.
    pub frames_undecodable: u64,
    /// Messages for another session than the one in force (late, or the peer restarted).
    pub stale_session: u64,
    /// Messages this end never receives (a hello to an initiator, a welcome to a responder).
    pub unexpected: u64,
    /// Hellos sent.
    pub hellos_tx: u64,
    /// Acks sent.
    pub acks_tx: u64,
    /// Acks received.
    pub acks_rx: u64,
    /// Keepalives sent.
    pub keepalives_tx: u64,
    /// Keepalives received.
    pub keepalives_rx: u64,
    /// Sessions opened.
    pub sessions: u64,
    /// Peer restarts seen (a new incarnation).
    pub peer_restarts: u64,
    /// Leases expired.
    pub lease_expiries: u64,
    /// Refusals sent.
    pub refusals_tx: u64,
    /// Refusals received.
    pub refusals_rx: u64,
    /// Fetch requests sent.
    pub fetches_tx: u64,
    /// Fetch requests received.
    pub fetches_rx: u64,
    /// Fetch replies sent.
    pub fetch_replies_tx: u64,
    /// Fetch replies received.
    pub fetch_replies_rx: u64,
}

const FREE: u8 = 0;
const UNSENT: u8 = 1;
const SENT: u8 = 2;
const ACKED: u8 = 3;

#[derive(Clone, Copy)]
struct TxSlot<const SLOT: usize> {
    state: u8,
    retx: bool,
    len: u16,
    sent_at: i64,
    bytes: [u8; SLOT],
}

impl<const SLOT: usize> TxSlot<SLOT> {
    const EMPTY: Self = TxSlot { state: FREE, retx: false, len: 0, sent_at: 0, bytes: [0; SLOT] };
}

#[derive(Clone, Copy)]
struct RxSlot<const SLOT: usize> {
    /// Received (delivered already when not held).
    present: bool,
    /// Kept for delivery in order.
    held: bool,
    len: u16,
    bytes: [u8; SLOT],
}

impl<const SLOT: usize> RxSlot<SLOT> {
    const EMPTY: Self = RxSlot { present: false, held: false, len: 0, bytes: [0; SLOT] };
}

#[derive(Debug, Clone, Copy)]
struct RouteRx {
    route: u32,
    /// The route's highest sequence number delivered (0: none yet).
    last_seq: u64,
    /// The next event is flagged (a session was lost, or a sequence number given up).
    pending: bool,
}

#[derive(Debug, Clone)]
struct Peer {
    node: u16,
    name: String<NAME_MAX>,
    incarnation: u64,
    lease_ms: u32,
}

/// One end of a node link. `WINDOW`: events in the send window; `REORDER`: events in the
/// resequencing (and dedup) buffer; `SLOT`: bytes of one encoded event.
pub struct Session<const WINDOW: usize, const REORDER: usize, const SLOT: usize = 256> {
    // configuration
    node_id: u16,
    name: String<NAME_MAX>,
    incarnation: u64,
    manifest_id: [u8; 32],
    link: String<NAME_MAX>,
    requested: Caps,
    transport: Caps,
    mtu: u16,
    lease_ms: u32,
    routes: Vec<RouteDecl, ROUTES_MAX>,
    key: Option<[u8; 32]>,
    initiator: bool,
    bad_config: Option<Refusal>,
    timing: Timing,
    // session
    state: LinkState,
    tag: u32,
    connects: u32,
    peer: Option<Peer>,
    known_incarnation: Option<u64>,
    provided: Caps,
    link_mtu: u16,
    now: i64,
    last_rx: i64,
    last_tx: i64,
    hello_at: Option<i64>,
    send_welcome: bool,
    send_refuse: Option<Refuse>,
    send_ack: bool,
    send_bye: bool,
    // keys
    tx_counter: u64,
    replay: ReplayWindow,
    replay_incarnation: Option<u64>,
    // send window
    tx: [TxSlot<SLOT>; WINDOW],
    tx_base: u64,
    tx_next: u64,
    tx_unsent: u64,
    retx_due: i64,
    rto_us: i64,
    srtt_us: Option<i64>,
    rttvar_us: i64,
    // receive buffer
    rx: [RxSlot<SLOT>; REORDER],
    rx_next: u64,
    rx_held: usize,
    rx_wait_since: Option<i64>,
    route_rx: Vec<RouteRx, ROUTES_MAX>,
    // fetch messages
    ctl: [u8; CTL_BYTES],
    ctl_len: usize,
    counters: MeshCounters,
}

/// The length of the hello `cfg` makes (without a seal).
pub fn hello_len(cfg: &LinkConfig<'_>) -> usize {
    let routes: usize = cfg.routes.iter().map(|r| varint_len(r.route.into()) + SCHEMA_PREFIX).sum();
    1 + 1 + 4 + varint_len(cfg.incarnation) + varint_len(cfg.node_id.into()) + 32 + 1 + 1 + varint_len(cfg.mtu.into())
        + varint_len(cfg.lease_ms.into()) + varint_len(cfg.node_name.len() as u64) + cfg.node_name.len()
        + varint_len(cfg.link.len() as u64) + cfg.link.len() + varint_len(cfg.routes.len() as u64) + routes
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: distinct incarnations and connect counts give distinct tags
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl<const WINDOW: usize, const REORDER: usize, const SLOT: usize> Session<WINDOW, REORDER, SLOT> {
    /// A session end for `cfg`, `Idle`. A config that fails [`LinkConfig::check`] (or a key in
    /// a build without feature `auth`) makes a session that is `Refused` and sends nothing.
    pub fn new(cfg: &LinkConfig<'_>) -> Self {
        let mut bad_config = cfg.check().err().map(Refusal::Config);
        if cfg.key.is_some() && !auth::AVAILABLE {
            bad_config = Some(Refusal::KeyUnsupported);
        }
        let mut name = String::new();
        let mut link = String::new();
        let mut routes: Vec<RouteDecl, ROUTES_MAX> = Vec::new();
        if bad_config.is_none() {
            let _ = name.push_str(cfg.node_name);
            let _ = link.push_str(cfg.link);
            for r in cfg.routes {
                let _ = routes.push(*r);
            }
            routes.sort_unstable_by_key(|r| r.route);
        }
        let route_rx = routes.iter().map(|r| RouteRx { route: r.route, last_seq: 0, pending: false }).collect();
        Session {
            node_id: cfg.node_id,
            name,
            incarnation: cfg.incarnation,
            manifest_id: cfg.manifest_id,
            link,
            requested: cfg.requested,
            transport: cfg.transport,
            mtu: cfg.mtu,
            lease_ms: cfg.lease_ms.max(1),
            routes,
            key: cfg.key,
            initiator: cfg.initiator,
            state: match bad_config {
                Some(r) => LinkState::Refused(r),
                None => LinkState::Idle,
            },
            bad_config,
            timing: Timing::DEFAULT,
            tag: 0,
            connects: 0,
            peer: None,
            known_incarnation: None,
            provided: Caps::NONE,
            link_mtu: cfg.mtu,
            now: 0,
            last_rx: 0,
            last_tx: 0,
            hello_at: None,
            send_welcome: false,
            send_refuse: None,
            send_ack: false,
            send_bye: false,
            tx_counter: 1,
            replay: ReplayWindow::new(),
            replay_incarnation: None,
            tx: [TxSlot::EMPTY; WINDOW],
            tx_base: 1,
            tx_next: 1,
            tx_unsent: 1,
            retx_due: i64::MAX,
            rto_us: i64::from(Timing::DEFAULT.rto_initial_ms) * 1000,
            srtt_us: None,
            rttvar_us: 0,
            rx: [RxSlot::EMPTY; REORDER],
            rx_next: 1,
            rx_held: 0,
            rx_wait_since: None,
            route_rx,
            ctl: [0; CTL_BYTES],
            ctl_len: 0,
            counters: MeshCounters::default(),
        }
    }

    /// Sets the timers (before `connect`).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
        self.rto_us = i64::from(timing.rto_initial_ms) * 1000;
    }

    /// (Re)starts: an initiator queues a hello (a new session tag); a responder waits for one.
    /// A session in force ends without a bye and without a `Down` (the caller knows why: its
    /// TCP connection broke, say); the events of its window are counted lost.
    pub fn connect(&mut self, now_us: i64) {
        self.now = now_us;
        if self.bad_config.is_some() {
            return;
        }
        if self.state == LinkState::Up {
            self.counters.events_lost += self.unacked() as u64;
        }
        self.reset_session();
        self.state = LinkState::Connecting;
        if self.initiator {
            self.new_tag();
            self.hello_at = Some(now_us);
        }
    }

    /// Where the session is.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// What the session in force provides (none before the first `Up`).
    pub fn provided(&self) -> Caps {
        self.provided
    }

    /// Requested minus provided: the capabilities whose taints crossing envelopes carry.
    pub fn missing(&self) -> Caps {
        self.requested.minus(self.provided)
    }

    /// The peer of the session in force (or the last one): node id, name, incarnation.
    pub fn peer(&self) -> Option<(u16, &str, u64)> {
        self.peer.as_ref().map(|p| (p.node, p.name.as_str(), p.incarnation))
    }

    /// The counters.
    pub fn counters(&self) -> &MeshCounters {
        &self.counters
    }

    /// Events in the send window: not sent yet, or (when the link retransmits) not
    /// acknowledged yet. A clean stop waits (bounded) until it is 0, then says bye.
    pub fn unacked(&self) -> usize {
        (self.tx_base..self.tx_next).filter(|&s| matches!(self.slot(s).state, UNSENT | SENT)).count()
    }

    /// The largest event, encoded, that this link carries now (the MTU less the message head
    /// and seal, and the slot).
    pub fn event_len_max(&self) -> usize {
        (usize::from(self.link_mtu) - self.seal_len() - EVENTS_HEAD_MAX - 10).min(SLOT)
    }

    /// Queues an event: `Ok(link seq)`. `SendWindowFull` when the window is full (the caller
    /// counts the event dropped and taints the route's next one), `SendNotUp` before the
    /// handshake, `SendRouteUnknown` for a route the link does not declare, `EncodeTooLong`
    /// for an event larger than [`Session::event_len_max`].
    pub fn send_event(&mut self, now_us: i64, ev: &EventOut<'_>) -> Result<u64, MeshError> {
        self.now = now_us;
        if self.state != LinkState::Up {
            return Err(MeshError::SendNotUp);
        }
        if self.routes.binary_search_by_key(&ev.route, |r| r.route).is_err() {
            return Err(MeshError::SendRouteUnknown);
        }
        if self.tx_next - self.tx_base >= WINDOW as u64 {
            self.counters.window_full += 1;
            return Err(MeshError::SendWindowFull);
        }
        let max = self.event_len_max();
        let seq = self.tx_next;
        let slot = self.slot_mut(seq);
        let mut w = Writer::new(&mut slot.bytes);
        write_event(&mut w, ev);
        let len = w.done()?;
        if len > max {
            return Err(MeshError::EncodeTooLong);
        }
        slot.len = len as u16;
        slot.state = UNSENT;
        slot.retx = false;
        self.tx_next += 1;
        Ok(seq)
    }

    /// Asks the peer for the payload of its event (route, seq), from byte `offset` on; the
    /// answer comes as `Delivery::FetchReply` with as much as fits one message. Not
    /// retransmitted by the session: the requester asks again after a timeout of its own, a
    /// bounded number of times, and asks for the next piece at the offset it has reached
    /// (docs/wire.md 4.10).
    pub fn fetch(&mut self, now_us: i64, route: u32, seq: u64, offset: u64) -> Result<(), MeshError> {
        self.now = now_us;
        self.ctl_ready()?;
        self.ctl_push(&Msg::Fetch { session: self.tag, route, seq, offset })?;
        self.counters.fetches_tx += 1;
        Ok(())
    }

    /// Answers a `FetchRequest` for the piece at `offset`: `payload` is the whole payload (the
    /// session sends the bytes from `offset` on that fit one message: the MTU less the reply's
    /// head, and the seal on a keyed link), or why not. An offset beyond the payload is
    /// answered `NotHeld`.
    pub fn answer_fetch(&mut self, now_us: i64, route: u32, seq: u64, offset: u64, payload: Result<&[u8], FetchRefused>) -> Result<(), MeshError> {
        self.now = now_us;
        self.ctl_ready()?;
        let payload = match payload {
            Ok(p) => match usize::try_from(offset).ok().and_then(|o| p.get(o..)) {
                Some(rest) => {
                    let total = p.len() as u64;
                    let n = rest.len().min(self.fetch_piece_max(route, seq, offset, total));
                    Ok(Piece { total, bytes: &rest[..n] })
                }
                None => Err(FetchRefused::NotHeld),
            },
            Err(e) => Err(e),
        };
        self.ctl_push(&Msg::FetchReply { session: self.tag, route, seq, offset, payload })?;
        self.counters.fetch_replies_tx += 1;
        Ok(())
    }

    /// The most payload bytes one `fetch_reply` for (route, seq) at `offset` of a payload of
    /// `total` bytes carries in this session.
    pub fn fetch_piece_max(&self, route: u32, seq: u64, offset: u64, total: u64) -> usize {
        let cap = usize::from(self.link_mtu).saturating_sub(self.seal_len());
        let head = 1 + 4 + varint_len(route.into()) + varint_len(seq) + varint_len(offset) + 1 + varint_len(total);
        // The length varint grows with the piece: take the largest that fits with it.
        let room = cap.saturating_sub(head);
        let mut n = room.saturating_sub(varint_len(room as u64));
        if n + 1 + varint_len((n + 1) as u64) <= room {
            n += 1;
        }
        n
    }

    /// Clean stop: a bye goes after the events not sent yet (wait for [`Session::unacked`] to
    /// reach 0 first when the link retransmits); the state is then `Down(Closed)`.
    pub fn bye(&mut self, now_us: i64) {
        self.now = now_us;
        if self.state == LinkState::Up {
            self.send_bye = true;
        } else {
            self.hello_at = None;
            if self.bad_config.is_none() {
                self.state = LinkState::Down(DownReason::Closed);
            }
        }
    }

    /// When to call `poll_transmit` and `tick` next: now when something waits to be sent.
    pub fn poll_deadline_us(&self) -> Option<i64> {
        if self.bad_config.is_some() {
            return None;
        }
        let up = self.state == LinkState::Up;
        if self.send_refuse.is_some()
            || self.send_welcome
            || (up && (self.send_ack || self.send_bye || self.ctl_len > 0 || self.tx_unsent < self.tx_next))
        {
            return Some(self.now);
        }
        let mut at = self.hello_at;
        let mut min = |t: i64| at = Some(at.map_or(t, |a| a.min(t)));
        if up {
            min(self.last_tx + self.keepalive_us());
            min(self.last_rx + self.lease_us());
            if self.retransmits() && self.tx_base < self.tx_next {
                min(self.retx_due);
            }
        }
        if let (Some(since), false) = (self.rx_wait_since, self.retransmits()) {
            min(since + i64::from(self.timing.reorder_wait_ms) * 1000);
        }
        at
    }

    /// Timers: lease expiry, and missing events given up (links that do not retransmit).
    /// Retransmissions and keepalives go out of `poll_transmit`.
    pub fn tick(&mut self, now_us: i64, on: &mut dyn FnMut(Delivery<'_>)) {
        self.now = now_us;
        if self.state != LinkState::Up {
            return;
        }
        if now_us - self.last_rx >= self.lease_us() {
            self.counters.lease_expiries += 1;
            self.end_session(DownReason::LeaseExpired, on);
            return;
        }
        if let (Some(since), false) = (self.rx_wait_since, self.retransmits()) {
            if now_us - since >= i64::from(self.timing.reorder_wait_ms) * 1000 {
                self.give_up_front(on);
            }
        }
    }

    /// One received body (a datagram, or a frame's message): decoded, checked, acted on.
    pub fn receive(&mut self, now_us: i64, body: &[u8], on: &mut dyn FnMut(Delivery<'_>)) {
        self.now = now_us;
        if self.bad_config.is_some() {
            return;
        }
        let sealed = body.first() == Some(&(msg::Kind::Sealed as u8));
        let (counter, message) = match (self.key, sealed) {
            (Some(key), true) => match auth::open(&key, self.peer_direction(), body) {
                Ok(opened) => opened,
                Err(MeshError::AuthBadMac) => {
                    self.counters.frames_bad_mac += 1;
                    return;
                }
                Err(_) => {
                    self.counters.frames_undecodable += 1;
                    return;
                }
            },
            (Some(_), false) => {
                self.counters.frames_unkeyed += 1;
                self.key_mismatch(body, on);
                return;
            }
            (None, true) => {
                self.counters.frames_sealed += 1;
                if let Some(s) = auth::split(body) {
                    self.key_mismatch(s.message, on);
                }
                return;
            }
            (None, false) => (0, body),
        };
        if let (false, [0xc0, version, t0, t1, t2, t3, ..]) = (self.initiator, message) {
            if *version != VERSION {
                // a hello keeps kind, version and session in every version: refuse it by name
                // whatever follows (a keyed one only once its MAC and counter passed)
                if self.key.is_none() || self.replay.fresh(counter) {
                    self.replay.accept(counter);
                    self.refuse(u32::from_le_bytes([*t0, *t1, *t2, *t3]), Refusal::VersionUnsupported(VERSION), on);
                }
                return;
            }
        }
        let Ok(m) = Msg::decode(message) else {
            self.counters.frames_undecodable += 1;
            return;
        };
        if self.key.is_some() && !self.fresh(&m, counter) {
            self.counters.frames_replayed += 1;
            return;
        }
        self.counters.messages_rx += 1;
        match m {
            Msg::Hello(h) if !self.initiator => self.on_hello(&h, on),
            Msg::Welcome(w) if self.initiator => self.on_welcome(&w, on),
            Msg::Hello(_) | Msg::Welcome(_) => self.counters.unexpected += 1,
            Msg::Refuse(r) => self.on_refuse(&r, on),
            other => {
                if self.state != LinkState::Up || other.session() != self.tag {
                    self.counters.stale_session += 1;
                    // an initiator whose welcome is on its way hears of its own session early
                    let early = self.initiator && other.session() == self.tag && self.hello_at.is_some();
                    if !early && !matches!(other, Msg::Bye { .. }) && self.send_refuse.is_none() {
                        let (reason, detail) = Refusal::NoSession.code();
                        self.send_refuse = Some(Refuse {
                            version: VERSION, session: other.session(), incarnation: self.incarnation, reason, detail,
                        });
                    }
                    return;
                }
                self.last_rx = now_us;
                match other {
                    Msg::Events { events, .. } => self.on_events(events, on),
                    Msg::Ack { cum, sack, .. } => self.on_ack(cum, sack),
                    Msg::Keepalive { .. } => self.counters.keepalives_rx += 1,
                    Msg::Bye { .. } => self.end_session(DownReason::PeerBye, on),
                    Msg::Fetch { route, seq, offset, .. } => {
                        self.counters.fetches_rx += 1;
                        on(Delivery::FetchRequest { route, seq, offset });
                    }
                    Msg::FetchReply { route, seq, offset, payload, .. } => {
                        self.counters.fetch_replies_rx += 1;
                        on(Delivery::FetchReply { route, seq, offset, payload });
                    }
                    Msg::Hello(_) | Msg::Welcome(_) | Msg::Refuse(_) => {}
                }
            }
        }
    }

    /// The next body to send (the caller frames it), written into `out` (give it at least the
    /// MTU); `None` when nothing is due.
    pub fn poll_transmit(&mut self, now_us: i64, out: &mut [u8]) -> Option<usize> {
        self.now = now_us;
        if self.bad_config.is_some() {
            return None;
        }
        let seal = self.seal_len();
        let cap = out.len().min(usize::from(self.link_mtu));
        if cap <= seal {
            return None;
        }
        let at = if self.key.is_some() { auth::MESSAGE_AT } else { 0 };
        let len = {
            let buf = &mut out[at..cap - seal + at];
            self.next_message(now_us, buf)?
        };
        self.last_tx = now_us;
        self.counters.messages_tx += 1;
        match self.key {
            None => Some(len),
            Some(key) => {
                let counter = self.tx_counter;
                self.tx_counter += 1;
                auth::seal(&key, self.own_direction(), counter, out, len).ok()
            }
        }
    }

    // --- handshake ----------------------------------------------------------------------------

    fn on_hello(&mut self, h: &Hello<'_>, on: &mut dyn FnMut(Delivery<'_>)) {
        if let Some(refusal) = self.check_hello(h) {
            self.refuse(h.session, refusal, on);
            return;
        }
        if self.state == LinkState::Up && self.tag == h.session && self.peer.as_ref().is_some_and(|p| p.incarnation == h.incarnation)
        {
            self.send_welcome = true; // a hello sent again: its welcome was lost
            return;
        }
        if self.known_incarnation.is_some_and(|k| k != h.incarnation) {
            self.peer_restarted(h.incarnation, on);
        } else if self.state == LinkState::Up {
            self.end_session(DownReason::PeerReconnected, on);
        }
        self.reset_session();
        self.tag = h.session;
        self.send_welcome = true;
        self.open_session(h.node, h.name, h.incarnation, h.mtu, h.lease_ms, on);
    }

    fn check_hello(&self, h: &Hello<'_>) -> Option<Refusal> {
        if h.version != VERSION {
            return Some(Refusal::VersionUnsupported(VERSION));
        }
        if h.link != self.link.as_str() {
            return Some(Refusal::LinkMismatch);
        }
        if h.manifest_id != self.manifest_id {
            return Some(Refusal::ManifestMismatch);
        }
        let unknown = h.requested.minus(Caps::ALL);
        if !unknown.is_empty() {
            return Some(Refusal::CapabilityUnavailable(unknown));
        }
        if h.requested != self.requested {
            return Some(Refusal::CapabilitiesDiffer(Caps(h.requested.0 ^ self.requested.0)));
        }
        if h.mtu < MTU_MIN {
            return Some(Refusal::MtuTooSmall);
        }
        let mut theirs = h.routes.iter();
        let mut ours = Routes::Decls(&self.routes).iter();
        loop {
            match (ours.next(), theirs.next()) {
                (None, None) => return None,
                (Some((r, _)), None) | (None, Some((r, _))) => return Some(Refusal::RouteMismatch { route: r }),
                (Some((a, pa)), Some((b, pb))) => {
                    if a != b {
                        return Some(Refusal::RouteMismatch { route: a.min(b) });
                    }
                    if pa != pb {
                        return Some(Refusal::SchemaMismatch { route: a });
                    }
                }
            }
        }
    }

    fn on_welcome(&mut self, w: &Welcome<'_>, on: &mut dyn FnMut(Delivery<'_>)) {
        if w.session != self.tag || self.hello_at.is_none() || self.state == LinkState::Up {
            self.counters.stale_session += 1;
            return;
        }
        if w.version != VERSION {
            self.refused(Refusal::VersionUnsupported(w.version), on);
            return;
        }
        if self.known_incarnation.is_some_and(|k| k != w.incarnation) {
            self.peer_restarted(w.incarnation, on);
            self.tag = w.session; // ending the old session chose a tag for the next hello
        }
        self.hello_at = None;
        self.open_session(w.node, w.name, w.incarnation, w.mtu, w.lease_ms, on);
    }

    fn on_refuse(&mut self, r: &Refuse, on: &mut dyn FnMut(Delivery<'_>)) {
        if r.session != self.tag {
            self.counters.stale_session += 1;
            return;
        }
        let Some(refusal) = Refusal::from_code(r.reason, r.detail) else {
            self.counters.frames_undecodable += 1;
            return;
        };
        self.counters.refusals_rx += 1;
        if refusal == Refusal::NoSession {
            if self.state == LinkState::Up {
                self.end_session(DownReason::PeerLostSession, on);
                if self.initiator {
                    self.hello_at = Some(self.now);
                }
            }
            return;
        }
        if self.initiator && self.state != LinkState::Up {
            self.refused(refusal, on);
        }
    }

    /// A frame sealed on one end and not on the other: a hello or refuse in it is answered or
    /// reported as `key_missing`.
    fn key_mismatch(&mut self, message: &[u8], on: &mut dyn FnMut(Delivery<'_>)) {
        match Msg::decode(message) {
            Ok(Msg::Hello(h)) if !self.initiator => self.refuse(h.session, Refusal::KeyMissing, on),
            Ok(Msg::Refuse(r))
                if self.initiator
                    && r.session == self.tag
                    && self.state != LinkState::Up
                    && Refusal::from_code(r.reason, r.detail) == Some(Refusal::KeyMissing) =>
            {
                self.refused(Refusal::KeyMissing, on);
            }
            _ => {}
        }
    }

    /// This end refuses a hello of session `tag`.
    fn refuse(&mut self, tag: u32, refusal: Refusal, on: &mut dyn FnMut(Delivery<'_>)) {
        let (reason, detail) = refusal.code();
        self.send_refuse = Some(Refuse { version: VERSION, session: tag, incarnation: self.incarnation, reason, detail });
        self.counters.refusals_tx += 1;
        if self.state == LinkState::Refused(refusal) {
            return; // said already (the initiator says hello again every lease)
        }
        if self.state != LinkState::Up {
            self.state = LinkState::Refused(refusal);
        }
        on(Delivery::Refused(refusal));
    }

    /// The peer refused this end's hello: say hello again after a lease.
    fn refused(&mut self, refusal: Refusal, on: &mut dyn FnMut(Delivery<'_>)) {
        let first = self.state != LinkState::Refused(refusal);
        self.state = LinkState::Refused(refusal);
        self.hello_at = Some(self.now + self.lease_us());
        if first {
            on(Delivery::Refused(refusal));
        }
    }

    fn peer_restarted(&mut self, incarnation: u64, on: &mut dyn FnMut(Delivery<'_>)) {
        self.counters.peer_restarts += 1;
        for r in self.route_rx.iter_mut() {
            // the new incarnation numbers its routes afresh: what the old one sent last may be
            // lost without a sequence number ever saying so
            r.last_seq = 0;
            r.pending = true;
        }
        self.end_session(DownReason::PeerRestarted { incarnation }, on);
    }

    fn open_session(&mut self, node: u16, name: &str, incarnation: u64, mtu: u16, lease_ms: u32, on: &mut dyn FnMut(Delivery<'_>)) {
        let mut peer_name = String::new();
        let _ = peer_name.push_str(name);
        self.peer = Some(Peer { node, name: peer_name.clone(), incarnation, lease_ms: lease_ms.max(1) });
        self.known_incarnation = Some(incarnation);
        self.link_mtu = self.mtu.min(mtu);
        self.provided = Caps::provided(self.requested, self.transport, self.key.is_some());
        self.state = LinkState::Up;
        self.last_rx = self.now;
        self.last_tx = self.now;
        self.counters.sessions += 1;
        let missing = self.requested.minus(self.provided);
        on(Delivery::Up { peer_node: node, peer_name: &peer_name, peer_incarnation: incarnation, provided: self.provided, missing });
    }

    /// Ends the session in force (if any) and reports `reason`.
    fn end_session(&mut self, reason: DownReason, on: &mut dyn FnMut(Delivery<'_>)) {
        let was_up = self.state == LinkState::Up;
        if was_up {
            self.counters.events_lost += self.unacked() as u64;
        }
        self.reset_session();
        self.state = LinkState::Down(reason);
        if self.initiator && reason != DownReason::Closed {
            self.new_tag();
            self.hello_at = Some(self.now + i64::from(self.timing.hello_retry_ms) * 1000);
        }
        on(Delivery::Down(reason));
    }

    fn reset_session(&mut self) {
        for s in self.tx.iter_mut() {
            s.state = FREE;
        }
        for s in self.rx.iter_mut() {
            s.present = false;
            s.held = false;
        }
        self.tx_base = 1;
        self.tx_next = 1;
        self.tx_unsent = 1;
        self.retx_due = i64::MAX;
        self.rx_next = 1;
        self.rx_held = 0;
        self.rx_wait_since = None;
        self.send_ack = false;
        self.send_bye = false;
        self.send_welcome = false;
        self.ctl_len = 0;
        self.hello_at = None;
    }

    fn new_tag(&mut self) {
        self.connects = self.connects.wrapping_add(1);
        self.tag = mix(self.incarnation ^ (u64::from(self.connects) << 48) ^ u64::from(self.node_id)) as u32;
    }

    /// (keyed) The message's counter is new for the peer incarnation it comes from: a
    /// handshake message of a newer incarnation starts a new window, an older one is a replay.
    fn fresh(&mut self, m: &Msg<'_>, counter: u64) -> bool {
        let incarnation = match m {
            Msg::Hello(h) => Some(h.incarnation),
            Msg::Welcome(w) => Some(w.incarnation),
            Msg::Refuse(r) => Some(r.incarnation),
            _ => None,
        };
        if let Some(inc) = incarnation {
            match self.replay_incarnation {
                Some(k) if inc < k => return false,
                Some(k) if inc == k => {}
                _ => {
                    self.replay_incarnation = Some(inc);
                    self.replay = ReplayWindow::new();
                }
            }
        } else if self.replay_incarnation.is_none() {
            return false;
        }
        if !self.replay.fresh(counter) {
            return false;
        }
        self.replay.accept(counter);
        true
    }

    // --- receiving events ---------------------------------------------------------------------

    /// The mesh retransmits on this session (RELIABLE requested, the transport lacks it).
    fn retransmits(&self) -> bool {
        self.provided.contains(Caps::RELIABLE) && !self.transport.contains(Caps::RELIABLE)
    }

    /// The mesh resequences on this session (ORDERED requested, the transport lacks it).
    fn resequences(&self) -> bool {
        self.provided.contains(Caps::ORDERED) && !self.transport.contains(Caps::ORDERED)
    }

    fn on_events(&mut self, events: msg::Events<'_>, on: &mut dyn FnMut(Delivery<'_>)) {
        let mut it = events.iter();
        while let Some((ev, raw)) = it.next_raw() {
            self.on_event(ev, raw, on);
        }
        if self.retransmits() {
            self.send_ack = true;
        }
    }

    fn on_event(&mut self, ev: EventIn<'_>, raw: &[u8], on: &mut dyn FnMut(Delivery<'_>)) {
        let seq = ev.link_seq;
        if seq >= LINK_SEQ_MAX {
            self.counters.frames_undecodable += 1; // no session sends 2^63 events
            return;
        }
        if seq < self.rx_next {
            self.counters.dup_dropped += 1;
            return;
        }
        let room = REORDER as u64;
        if seq - self.rx_next >= room {
            if self.retransmits() {
                self.counters.rx_overflow += 1;
                return;
            }
            self.give_up_until(seq - room + 1, on);
        }
        let i = (seq % room) as usize;
        if self.rx[i].present {
            self.counters.dup_dropped += 1;
            return;
        }
        let in_order = seq == self.rx_next;
        if !in_order && self.resequences() {
            if raw.len() > SLOT {
                self.counters.rx_overflow += 1;
                return;
            }
            let slot = &mut self.rx[i];
            slot.present = true;
            slot.held = true;
            slot.len = raw.len() as u16;
            slot.bytes[..raw.len()].copy_from_slice(raw);
            self.rx_held += 1;
            self.rx_wait_since.get_or_insert(self.now);
            return;
        }
        deliver(&mut self.route_rx, &mut self.counters, ev, on);
        if in_order {
            self.rx_next += 1;
            self.drain(on);
        } else {
            self.rx[i].present = true;
            self.rx_held += 1;
            self.rx_wait_since.get_or_insert(self.now);
        }
    }

    /// Moves `rx_next` over the events received in a row, delivering those held.
    fn drain(&mut self, on: &mut dyn FnMut(Delivery<'_>)) {
        let room = REORDER as u64;
        let mut moved = false;
        while self.rx_held > 0 {
            let i = (self.rx_next % room) as usize;
            if !self.rx[i].present {
                break;
            }
            let slot = &mut self.rx[i];
            slot.present = false;
            self.rx_held -= 1;
            if slot.held {
                slot.held = false;
                self.counters.reordered += 1;
                if let Some(ev) = read_kept_event(&slot.bytes[..usize::from(slot.len)], self.rx_next) {
                    deliver(&mut self.route_rx, &mut self.counters, ev, on);
                }
            }
            self.rx_next += 1;
            moved = true;
        }
        if self.rx_held == 0 {
            self.rx_wait_since = None;
        } else if moved {
            self.rx_wait_since = Some(self.now);
        }
    }

    /// Link sequence numbers were given up. Their routes are unknown here: each route's next
    /// event shows the loss by its own sequence number ([`deliver`]).
    fn gave_up(&mut self, n: u64) {
        self.counters.gaps += n;
    }

    /// Gives up every missing sequence number below `target`, delivering what is held.
    fn give_up_until(&mut self, target: u64, on: &mut dyn FnMut(Delivery<'_>)) {
        let room = REORDER as u64;
        let mut steps = 0;
        while self.rx_next < target && steps < room {
            if self.rx[(self.rx_next % room) as usize].present {
                self.drain(on);
            } else {
                self.gave_up(1);
                self.rx_next += 1;
            }
            steps += 1;
        }
        if self.rx_next < target {
            // nothing can be held this far ahead: the rest are gaps
            self.gave_up(target - self.rx_next);
            self.rx_next = target;
        }
        self.drain(on);
    }

    /// The wait for the first missing sequence number is over: give up the missing ones up to
    /// the first held, and deliver in order from there.
    fn give_up_front(&mut self, on: &mut dyn FnMut(Delivery<'_>)) {
        let room = REORDER as u64;
        let mut steps = 0;
        while self.rx_held > 0 && steps < room && !self.rx[(self.rx_next % room) as usize].present {
            self.gave_up(1);
            self.rx_next += 1;
            steps += 1;
        }
        self.drain(on);
    }

    // --- acks and the send window -------------------------------------------------------------

    fn slot(&self, seq: u64) -> &TxSlot<SLOT> {
        &self.tx[(seq % WINDOW as u64) as usize]
    }

    fn slot_mut(&mut self, seq: u64) -> &mut TxSlot<SLOT> {
        &mut self.tx[(seq % WINDOW as u64) as usize]
    }

    fn on_ack(&mut self, cum: u64, sack: u64) {
        self.counters.acks_rx += 1;
        if !self.retransmits() {
            return;
        }
        let cum = cum.min(self.tx_next);
        let mut seq = self.tx_base;
        while seq < cum {
            self.acked(seq);
            seq += 1;
        }
        for bit in 0..64 {
            let s = cum.saturating_add(1 + bit);
            if s >= self.tx_next {
                break;
            }
            if sack & (1 << bit) != 0 && s >= self.tx_base {
                self.acked(s);
            }
        }
        while self.tx_base < self.tx_next && self.slot(self.tx_base).state == ACKED {
            self.slot_mut(self.tx_base).state = FREE;
            self.tx_base += 1;
        }
        self.tx_unsent = self.tx_unsent.max(self.tx_base);
    }

    fn acked(&mut self, seq: u64) {
        let now = self.now;
        let slot = self.slot_mut(seq);
        if slot.state != SENT {
            return;
        }
        slot.state = ACKED;
        if slot.retx {
            return; // Karn: no sample from a retransmitted event
        }
        let rtt = (now - slot.sent_at).max(0);
        let (srtt, var) = match self.srtt_us {
            None => (rtt, rtt / 2),
            Some(s) => ((7 * s + rtt) / 8, (3 * self.rttvar_us + (s - rtt).abs()) / 4),
        };
        self.srtt_us = Some(srtt);
        self.rttvar_us = var;
        self.rto_us = (srtt + (4 * var).max(1000)).clamp(self.ms(self.timing.rto_min_ms), self.ms(self.timing.rto_max_ms));
    }

    // --- transmitting -------------------------------------------------------------------------

    fn next_message(&mut self, now: i64, buf: &mut [u8]) -> Option<usize> {
        let mut w = Writer::new(buf);
        if let Some(r) = self.send_refuse.take() {
            return Msg::Refuse(r).encode(&mut w).ok();
        }
        if self.send_welcome {
            self.send_welcome = false;
            let peer_lease = self.lease_ms;
            let welcome = Welcome {
                version: VERSION,
                session: self.tag,
                incarnation: self.incarnation,
                node: self.node_id,
                provided: self.provided,
                mtu: self.mtu,
                lease_ms: peer_lease,
                name: &self.name,
            };
            return Msg::Welcome(welcome).encode(&mut w).ok();
        }
        if let Some(at) = self.hello_at {
            if at <= now && self.state != LinkState::Up {
                self.hello_at = Some(match self.state {
                    LinkState::Refused(_) => now + self.lease_us(),
                    _ => now + self.ms(self.timing.hello_retry_ms),
                });
                self.counters.hellos_tx += 1;
                let hello = Hello {
                    version: VERSION,
                    session: self.tag,
                    incarnation: self.incarnation,
                    node: self.node_id,
                    manifest_id: self.manifest_id,
                    requested: self.requested,
                    transport: self.transport,
                    mtu: self.mtu,
                    lease_ms: self.lease_ms,
                    name: &self.name,
                    link: &self.link,
                    routes: Routes::Decls(&self.routes),
                };
                return Msg::Hello(hello).encode(&mut w).ok();
            }
        }
        if self.state != LinkState::Up {
            return None;
        }
        if self.send_ack {
            self.send_ack = false;
            self.counters.acks_tx += 1;
            return Msg::Ack { session: self.tag, cum: self.rx_next, sack: self.sack() }.encode(&mut w).ok();
        }
        if self.ctl_len > 0 {
            return self.ctl_pop(buf);
        }
        if let Some(len) = self.write_events(now, &mut w) {
            return Some(len);
        }
        if self.send_bye && self.tx_unsent >= self.tx_next {
            let len = Msg::Bye { session: self.tag }.encode(&mut w).ok();
            self.end_session(DownReason::Closed, &mut |_| {});
            return len;
        }
        if now - self.last_tx >= self.keepalive_us() {
            self.counters.keepalives_tx += 1;
            return Msg::Keepalive { session: self.tag }.encode(&mut w).ok();
        }
        None
    }

    fn sack(&self) -> u64 {
        let room = REORDER as u64;
        let mut bits = 0u64;
        for bit in 0..64u64.min(room.saturating_sub(1)) {
            if self.rx[((self.rx_next + 1 + bit) % room) as usize].present {
                bits |= 1 << bit;
            }
        }
        bits
    }

    /// Packs events into one `events` message: those whose RTO ran out (oldest first), then
    /// those not sent yet, as many as fit.
    fn write_events(&mut self, now: i64, w: &mut Writer<'_>) -> Option<usize> {
        let retx = self.retransmits();
        let scan_all = retx && now >= self.retx_due;
        let from = if scan_all { self.tx_base } else { self.tx_unsent };
        if from >= self.tx_next {
            return None;
        }
        let rto = self.rto_us;
        let mut next_due = i64::MAX;
        let mut prev: Option<u64> = None;
        let mut backoff = false;
        let mut seq = from;
        while seq < self.tx_next {
            let slot = self.slot(seq);
            let due = match slot.state {
                UNSENT => true,
                SENT if retx => {
                    if slot.sent_at + rto <= now {
                        true
                    } else {
                        next_due = next_due.min(slot.sent_at + rto);
                        false
                    }
                }
                _ => false,
            };
            if due {
                let len = usize::from(slot.len);
                let skip = prev.map_or(0, |p| seq - p - 1);
                if prev.is_none() {
                    write_events_head(w, self.tag, seq - 1);
                }
                let mark = w.len();
                write_entry(w, skip, &slot.bytes[..len]);
                if w.done().is_err() {
                    w.truncate(mark);
                    // what did not fit waits for the next message
                    if next_due == i64::MAX || slot.state == UNSENT {
                        next_due = next_due.min(now);
                    }
                    break;
                }
                let first = slot.state == UNSENT;
                if first {
                    self.counters.events_tx += 1;
                } else {
                    backoff = true;
                    self.counters.retransmits += 1;
                }
                let slot = self.slot_mut(seq);
                slot.retx |= !first;
                slot.sent_at = now;
                slot.state = if retx { SENT } else { FREE };
                prev = Some(seq);
                if retx {
                    next_due = next_due.min(now + rto);
                }
            }
            seq += 1;
        }
        prev?;
        if scan_all || next_due < self.retx_due {
            self.retx_due = next_due;
        }
        if backoff {
            self.rto_us = (self.rto_us * 2).min(self.ms(self.timing.rto_max_ms));
        }
        while self.tx_unsent < self.tx_next && self.slot(self.tx_unsent).state != UNSENT {
            self.tx_unsent += 1;
        }
        if !retx {
            while self.tx_base < self.tx_unsent && self.slot(self.tx_base).state == FREE {
                self.tx_base += 1;
            }
        }
        w.done().ok()
    }

    // --- fetch messages -----------------------------------------------------------------------

    fn ctl_ready(&self) -> Result<(), MeshError> {
        if self.state != LinkState::Up {
            return Err(MeshError::SendNotUp);
        }
        if !self.provided.contains(Caps::LAZY) {
            return Err(MeshError::FetchUnsupported);
        }
        Ok(())
    }

    fn ctl_push(&mut self, m: &Msg<'_>) -> Result<(), MeshError> {
        let cap = usize::from(self.link_mtu) - self.seal_len();
        let start = self.ctl_len + 2;
        if start >= CTL_BYTES {
            return Err(MeshError::FetchQueueFull);
        }
        let end = (start + cap).min(CTL_BYTES);
        let mut w = Writer::new(&mut self.ctl[start..end]);
        let len = m.encode(&mut w).map_err(|_| {
            if end - start < cap {
                MeshError::FetchQueueFull
            } else {
                MeshError::EncodeTooLong
            }
        })?;
        self.ctl[self.ctl_len..start].copy_from_slice(&(len as u16).to_le_bytes());
        self.ctl_len = start + len;
        Ok(())
    }

    fn ctl_pop(&mut self, buf: &mut [u8]) -> Option<usize> {
        let len = usize::from(u16::from_le_bytes([self.ctl[0], self.ctl[1]]));
        let end = 2 + len;
        let out = buf.get_mut(..len)?;
        out.copy_from_slice(&self.ctl[2..end]);
        self.ctl.copy_within(end..self.ctl_len, 0);
        self.ctl_len -= end;
        Some(len)
    }

    // --- small things -------------------------------------------------------------------------

    fn ms(&self, ms: u32) -> i64 {
        i64::from(ms) * 1000
    }

    fn lease_us(&self) -> i64 {
        self.ms(self.lease_ms)
    }

    fn keepalive_us(&self) -> i64 {
        let peer = self.peer.as_ref().map_or(self.lease_ms, |p| p.lease_ms);
        self.ms(self.lease_ms.min(peer)) / 4
    }

    fn seal_len(&self) -> usize {
        if self.key.is_some() {
            auth::OVERHEAD
        } else {
            0
        }
    }

    fn own_direction(&self) -> u8 {
        if self.initiator {
            auth::FROM_INITIATOR
        } else {
            auth::FROM_RESPONDER
        }
    }

    fn peer_direction(&self) -> u8 {
        if self.initiator {
            auth::FROM_RESPONDER
        } else {
            auth::FROM_INITIATOR
        }
    }
}

/// Hands an event to the node, flagged when its route may have lost events before it.
fn deliver(routes: &mut Vec<RouteRx, ROUTES_MAX>, counters: &mut MeshCounters, mut ev: EventIn<'_>, on: &mut dyn FnMut(Delivery<'_>)) {
    let Ok(i) = routes.binary_search_by_key(&ev.route, |r| r.route) else {
        counters.events_unknown_route += 1;
        return;
    };
    let r = &mut routes[i];
    // route sequence numbers start at 1: before a route's first event, last_seq 0 expects 1
    ev.gap = r.pending || ev.seq > r.last_seq.saturating_add(1);
    r.pending = false;
    r.last_seq = r.last_seq.max(ev.seq);
    counters.events_rx += 1;
    if ev.gap {
        counters.gap_events += 1;
    }
    on(Delivery::Event(ev));
}
