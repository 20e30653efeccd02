//! The host role of the link protocol (docs/wire.md section 2): [`HostLink`], from bytes and a
//! clock to decoded events and answers.
//!
//! It is sans-IO, like the device role: the caller feeds it what the port read
//! ([`HostLink::receive`]), its clock ([`HostLink::poll`]), and the requests of its user
//! ([`HostLink::connect`], [`HostLink::request`]); everything the host must write, and
//! everything it learns, goes to a [`HostSink`]. The blocking client of `manyfold-runtime` (and
//! through it the Python `LinkClient` and the edge node) drives it over a serial port or a socket.
//!
//! What it does, so that no host re-implements it:
//! - **handshake and version**: hello until a describe; it offers link v1.1 and falls back to
//!   v1 when the device refuses with `version_unsupported` (a v1 board), then asks for the
//!   route table (the references v1.1 events are expanded with, and the names' ids);
//! - **requests**: one outstanding at a time, each with a reply timeout; a request whose frame
//!   the device refused (a nack without a ref) or whose answer did not come is sent again, with
//!   the same id, up to `retries` times; an event refused as `seq_not_increasing` after a resend
//!   was taken the first time (its ack was lost) and is answered as acked;
//! - **keepalive and resume**: heartbeats when idle (in v1.1 they carry the largest device time
//!   received, the acknowledgement the device's short times rely on), `Stale` and `down` on
//!   silence; after `down` (or when the caller says the port broke) it asks the caller to
//!   reopen the port ([`HostSink::reopen`]) and resumes the same session;
//! - **events**: expanded from their short form with the references, stamped with the epoch in
//!   force; a gap in a route's sequence numbers, or an event that could not be expanded, marks
//!   that route's next event `delivery_dropped` and is counted.
//!
//! Storage is the caller's: `D` the frame decoder's buffer, `B` the outstanding request (kept
//! for resends), `F` a frame buffer, and `R` the routes whose references it keeps.

use heapless::Vec;

use crate::framing::{encode_frame, FrameDecoder, FrameError};
use crate::taint::{Taint, TaintSet};

use super::msg::{HELLO_LOCKSTEP, HELLO_RESET};
use super::refs::RxTime;
use super::v11::{self, Expanded, FromDevice, RouteRefs};
use super::{
    Ack, Body, Describe, Event, Heartbeat, Hello, Kind, LinkAction, LinkMachine, LinkState, LinkTimers, Message, Nack,
    NackReason, Query, QueryKind, Reply, ReplyBody, Role,
};

/// The host's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConfig {
    /// The host's largest message (its frame decoder's limit).
    pub max_message: u32,
    /// The newest protocol version offered in the hello: [`v11::VERSION`], or 1 for a v1-only
    /// host.
    pub version_max: u32,
    /// Keepalive timing.
    pub timers: LinkTimers,
    /// How long a request waits for its answer before it is sent again.
    pub reply_timeout_ms: u32,
    /// How many times a request is sent again (refused frame, or no answer).
    pub retries: u8,
}

impl HostConfig {
    /// Link v1.1, 256-byte messages, the default timers, a 5 s reply timeout, 2 resends.
    pub const DEFAULT: HostConfig =
        HostConfig { max_message: 256, version_max: v11::VERSION, timers: LinkTimers::DEFAULT, reply_timeout_ms: 5_000, retries: 2 };
}

/// What the host end counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCounters {
    /// Frames accepted by the frame decoder.
    pub frames: u32,
    /// Frames refused by the frame decoder (bad CRC, bad COBS, short, oversize).
    pub frame_errors: u32,
    /// Accepted frames whose message did not decode.
    pub decode_errors: u32,
    /// Messages decoded.
    pub messages_rx: u32,
    /// Messages sent.
    pub messages_tx: u32,
    /// Events received.
    pub events: u32,
    /// Gaps found: in a route's sequence numbers (events lost on the way), or (v1) in the
    /// device's message ids.
    pub rx_gaps: u32,
    /// Short-form events that could not be expanded (their route's references were missing).
    pub events_undecodable: u32,
    /// Events dropped because their seq was not above their route's last: a copy of one
    /// received already, or one that arrived after a later one (a datagram link duplicates
    /// and reorders).
    pub events_duplicate: u32,
    /// Times the session went down (silence for `down`, or the port broke) and was resumed or
    /// tried to be.
    pub reconnects: u32,
    /// Describes that resumed the session after a reconnect.
    pub resumes: u32,
    /// Describes that opened a session.
    pub sessions: u32,
    /// Times the link went stale (nothing heard for `stale`).
    pub stale: u32,
    /// Nacks received.
    pub nacks: u32,
    /// Requests sent again.
    pub retries: u32,
    /// Answers that named no outstanding request (late answers to requests given up).
    pub stray_answers: u32,
}

/// Why a request or the handshake ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer after every resend.
    Timeout,
    /// The session went down (or the port broke) while it waited.
    Down,
}

/// The end of a request: the device's answer, or a failure.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Carried out (`info`: docs/wire.md 2.3).
    Ack(Ack),
    /// Refused.
    Nack(Nack),
    /// A query's answer.
    Reply(Reply<'a>),
    /// No answer.
    Failed(Failure),
}

/// Where a [`HostLink`] puts what it writes and learns.
pub trait HostSink {
    /// Bytes to write to the port (whole frames, or a lone 0x00).
    fn write(&mut self, bytes: &[u8]);
    /// An event from the device, with the host's taints added.
    fn event(&mut self, event: &Event);
    /// The session is up (or up again, `resumed`), as `describe` says.
    fn described(&mut self, describe: &Describe<'_>, resumed: bool);
    /// The handshake failed: the device refused the hello (`Nack`) or never answered.
    fn connect_failed(&mut self, answer: Answer<'_>);
    /// The outstanding request `id` ended.
    fn answer(&mut self, id: u32, answer: Answer<'_>);
    /// A row of the route table read while connecting (or after an upload).
    fn route(&mut self, index: u16, route: &super::RouteInfo) {
        let _ = (index, route);
    }
    /// The rows handed to [`HostSink::route`] so far are not the device's table any more (a
    /// describe came, or a new partition was committed); the table is read again from its
    /// start when the session fetches routes.
    fn routes_stale(&mut self) {}
    /// The session is down: reopen the port if it can be, then call [`HostLink::resume`].
    fn reopen(&mut self) {}
    /// Every message received, as it came (for transcripts).
    fn message(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No session asked for.
    Closed,
    /// Saying hello; `resume` when resuming a session.
    Hello {
        /// Resuming (after a reconnect) rather than opening.
        resume: bool,
    },
    /// Reading the route table from this index.
    Routes {
        /// The next route index to ask for.
        next: u16,
    },
    /// Ready for requests.
    Ready,
}

/// What the host keeps per device route.
#[derive(Debug, Clone, Copy, Default)]
struct RouteRef {
    /// The route's last seq the host knows of (from the route table, then its events).
    seq: Option<u32>,
    /// The seq of the host's last event on the route, since the session was opened or the
    /// partition replaced.
    sent: Option<u32>,
    declared: Option<TaintSet>,
    /// Events of the route were lost: its next event says so.
    dropped: bool,
}

/// The outstanding request.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u32,
    kind: Kind,
    /// For an event: its seq (an earlier copy may have been taken).
    seq: u32,
    sent_ms: u64,
    resends: u8,
    /// An internal request (the route table read while connecting), not the caller's.
    internal: bool,
    len: usize,
}

/// Why a request could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// No session is up yet (connect first, or wait for the resume).
    NotReady,
    /// Another request is outstanding.
    Busy,
    /// The request does not fit the link's `max_message`, or is not a host message.
    TooLong,
}

struct Core<B, F, const R: usize> {
    config: HostConfig,
    machine: LinkMachine,
    phase: Phase,
    /// The version of the session (after a describe), or offered in the hello.
    version: u32,
    session: u32,
    flags: u8,
    hello_time_us: i64,
    hello_id: u32,
    fetch_routes: bool,
    /// The link's message limit (the smaller of both ends').
    link_max: usize,
    next_id: u32,
    pending: Option<Pending>,
    request: B,
    frame: F,
    rx_time: RxTime,
    epoch: u32,
    /// The epoch before the outstanding step (restored if the step is refused).
    epoch_before_step: Option<u32>,
    routes: Vec<RouteRef, R>,
    counters: HostCounters,
}

/// The host end of one link. See the module docs.
pub struct HostLink<D, B, F, const R: usize> {
    decoder: FrameDecoder<D>,
    core: Core<B, F, R>,
}

impl<D: AsMut<[u8]>, B: AsMut<[u8]>, F: AsMut<[u8]>, const R: usize> HostLink<D, B, F, R> {
    /// A host end reading frames with `decoder` (of `config.max_message`), keeping its
    /// outstanding request in `request` (`max_message` bytes) and framing into `frame`
    /// (`frame_len_max(max_message)` bytes).
    pub fn new(config: HostConfig, decoder: FrameDecoder<D>, request: B, frame: F) -> Self {
        HostLink {
            decoder,
            core: Core {
                config,
                machine: LinkMachine::new(Role::Host, config.timers),
                phase: Phase::Closed,
                version: config.version_max,
                session: 0,
                flags: 0,
                hello_time_us: 0,
                hello_id: 0,
                fetch_routes: true,
                link_max: config.max_message as usize,
                next_id: 0,
                pending: None,
                request,
                frame,
                rx_time: RxTime::default(),
                epoch: 0,
                epoch_before_step: None,
                routes: Vec::new(),
                counters: HostCounters::default(),
            },
        }
    }

    /// New timing for what comes next: keepalive timers, reply timeout and resends.
    pub fn set_timing(&mut self, timers: LinkTimers, reply_timeout_ms: u32, retries: u8) {
        let c = &mut self.core;
        c.config.timers = timers;
        c.config.reply_timeout_ms = reply_timeout_ms;
        c.config.retries = retries;
        c.machine.set_timers(timers);
    }

    /// Where the handshake is.
    pub fn phase(&self) -> Phase {
        self.core.phase
    }

    /// The link state (up, stale, handshaking...).
    pub fn state(&self) -> LinkState {
        self.core.machine.state()
    }

    /// True when requests can be sent.
    pub fn ready(&self) -> bool {
        self.core.phase == Phase::Ready
    }

    /// The protocol version of the session (or the one offered while saying hello).
    pub fn version(&self) -> u32 {
        self.core.version
    }

    /// The session id.
    pub fn session(&self) -> u32 {
        self.core.session
    }

    /// True in lockstep.
    pub fn lockstep(&self) -> bool {
        self.core.flags & HELLO_LOCKSTEP != 0
    }

    /// The control epoch in force.
    pub fn epoch(&self) -> u32 {
        self.core.epoch
    }

    /// The largest device time received (v1.1), the host's time reference.
    pub fn seen_us(&self) -> Option<i64> {
        self.core.rx_time.max_us()
    }

    /// The counters.
    pub fn counters(&self) -> HostCounters {
        let mut c = self.core.counters;
        let m = self.core.machine.counters();
        c.stale = m.stale;
        c.messages_tx = m.messages_tx;
        c.sessions = m.sessions;
        c.resumes = m.resumes;
        c
    }

    /// The id of the outstanding request, if any.
    pub fn pending(&self) -> Option<u32> {
        self.core.pending.filter(|p| !p.internal).map(|p| p.id)
    }

    /// The last seq the host knows of on device route `route`.
    pub fn route_seq(&self, route: u16) -> Option<u32> {
        self.core.routes.get(usize::from(route)).and_then(|r| r.seq)
    }

    /// The seq for the host's next event on device route `route`: one after the host's last
    /// event there since the session was opened (or a new partition committed), else one after
    /// the route's last seq the host knows of (its row in the route table), else 1. Only routes
    /// below `R` are remembered.
    pub fn next_event_seq(&self, route: u16) -> u32 {
        let last = self.core.routes.get(usize::from(route)).and_then(|r| r.sent.or(r.seq));
        last.unwrap_or(0).wrapping_add(1)
    }

    /// Opens a session: hellos (every `hello_retry`) until a describe, then, with
    /// `fetch_routes`, the route table. `session` is the session id and, with `reset`, the
    /// reset token: use a new one for every reset. `time_us`: the device's time after a reset
    /// in lockstep. The outcome goes to [`HostSink::described`] or [`HostSink::connect_failed`].
    #[allow(clippy::too_many_arguments)]
    pub fn connect(&mut self, now_ms: u64, session: u32, lockstep: bool, reset: bool, time_us: i64, fetch_routes: bool, sink: &mut impl HostSink) {
        let c = &mut self.core;
        c.session = session;
        c.flags = (if lockstep { HELLO_LOCKSTEP } else { 0 }) | (if reset { HELLO_RESET } else { 0 });
        c.hello_time_us = time_us;
        c.fetch_routes = fetch_routes;
        c.version = c.config.version_max;
        c.hello_id = c.take_id();
        c.pending = None;
        // The host numbers its events from the device's seqs again (the route table's); a
        // reset starts the device's counts again, so the host's references start afresh.
        for r in c.routes.iter_mut() {
            r.sent = None;
            if reset {
                r.seq = None;
            }
        }
        c.phase = Phase::Hello { resume: false };
        c.machine.connect(session);
        self.poll(now_ms, sink);
    }

    /// Resumes the session after the caller reopened the port (see [`HostSink::reopen`]): a
    /// 0x00 to drop any half-sent frame, then hellos with the same session and no reset.
    pub fn resume(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        self.decoder.reset();
        let c = &mut self.core;
        // A resume asked for while the session was up counts as one too.
        c.went_down();
        c.flags &= !HELLO_RESET;
        c.hello_id = c.take_id();
        c.phase = Phase::Hello { resume: true };
        c.machine.connect(c.session);
        sink.write(&[0]);
        self.poll(now_ms, sink);
    }

    /// The port broke: the session is down until the caller reopens it and resumes. An
    /// outstanding request fails with [`Failure::Down`].
    pub fn port_broken(&mut self, sink: &mut impl HostSink) {
        let c = &mut self.core;
        if c.phase == Phase::Closed {
            return;
        }
        c.went_down();
        c.fail_pending(sink, Failure::Down);
        c.machine.drop_session();
        c.phase = Phase::Hello { resume: true };
        sink.reopen();
    }

    /// Sends `body` (an event, step, query, resume, upload message or heartbeat) and returns
    /// its id; the answer goes to [`HostSink::answer`]. A heartbeat gets no answer. The host
    /// fills in what is its own: a step's and a heartbeat's time reference (v1.1).
    pub fn request(&mut self, now_ms: u64, body: &Body<'_>, sink: &mut impl HostSink) -> Result<u32, HostError> {
        let c = &mut self.core;
        if c.phase != Phase::Ready {
            return Err(HostError::NotReady);
        }
        if matches!(body, Body::Heartbeat(_)) {
            c.send_heartbeat(now_ms, sink);
            return Ok(0);
        }
        if c.pending.is_some() {
            return Err(HostError::Busy);
        }
        c.send_request(now_ms, body, false, sink)
    }

    /// Handles bytes read from the port at `now_ms`.
    pub fn receive(&mut self, now_ms: u64, bytes: &[u8], sink: &mut impl HostSink) {
        let core = &mut self.core;
        self.decoder.feed(bytes, |outcome| core.on_frame(now_ms, outcome, sink));
    }

    /// Timers at `now_ms`: hello retries, heartbeats, stale and down, request resends and
    /// timeouts. Call often (every read that finds nothing, at least).
    pub fn poll(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        let c = &mut self.core;
        if c.phase == Phase::Closed {
            return;
        }
        let was_up = matches!(c.machine.state(), LinkState::Up | LinkState::Stale);
        match c.machine.poll(now_ms) {
            LinkAction::SendHello { .. } => {
                if was_up {
                    // Silent for `down`: the session is down; the caller reopens the port.
                    c.went_down();
                    c.fail_pending(sink, Failure::Down);
                    c.phase = Phase::Hello { resume: true };
                    sink.reopen();
                    return;
                }
                c.send_hello(now_ms, sink);
            }
            // v1: not in lockstep (steps are the host's activity); v1.1 heartbeats carry the
            // time acknowledgement, which a lockstep host sends with its steps instead.
            LinkAction::SendHeartbeat if c.flags & HELLO_LOCKSTEP == 0 && c.phase == Phase::Ready => c.send_heartbeat(now_ms, sink),
            _ => {}
        }
        c.check_pending(now_ms, sink);
    }
}

impl<B: AsMut<[u8]>, F: AsMut<[u8]>, const R: usize> Core<B, F, R> {
    /// The session went down (silence, or the port broke): one reconnect, however many
    /// attempts it takes.
    fn went_down(&mut self) {
        if matches!(self.phase, Phase::Ready | Phase::Routes { .. }) {
            self.counters.reconnects = self.counters.reconnects.wrapping_add(1);
        }
    }

    /// The id of the next message, in the version in force: v1.1 ids are one byte, v1 ids wrap
    /// at 2^32 (a host that fell back to v1 numbers its messages as a v1 board expects).
    fn take_id(&mut self) -> u32 {
        let mask = if self.v11() { 0xff } else { u32::MAX };
        let id = self.next_id & mask;
        self.next_id = id.wrapping_add(1) & mask;
        id
    }

    fn v11(&self) -> bool {
        self.version >= v11::VERSION
    }

    /// Encodes a request into the request buffer (kept there for resends); returns its length.
    fn encode(&mut self, id: u32, body: &Body<'_>) -> Result<usize, HostError> {
        let limit = self.link_max.min(self.request.as_mut().len());
        encode_for(self.version, &mut self.request.as_mut()[..limit], id, body).map_err(|_| HostError::TooLong)
    }

    fn send_hello(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        let hello = Hello {
            version: self.version,
            max_message: self.config.max_message,
            session: self.session,
            flags: self.flags,
            time_us: self.hello_time_us,
        };
        let id = self.hello_id;
        if let Ok(len) = self.encode(id, &Body::Hello(hello)) {
            self.send_stored(now_ms, len, sink);
        }
    }

    /// Frames and writes the first `len` bytes of the request buffer.
    fn send_stored(&mut self, now_ms: u64, len: usize, sink: &mut impl HostSink) {
        let Core { request, frame, link_max, machine, .. } = self;
        write_framed(&request.as_mut()[..len], frame.as_mut(), *link_max, machine, now_ms, sink);
    }

    /// A heartbeat (not kept: it gets no answer); in v1.1 it carries the largest device time
    /// received.
    fn send_heartbeat(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        let seen = if self.v11() { self.rx_time.max_us().unwrap_or(0) } else { 0 };
        let id = self.take_id();
        let mut buf = [0u8; 16];
        if let Ok(len) = encode_for(self.version, &mut buf, id, &Body::Heartbeat(Heartbeat { time_us: seen })) {
            let Core { frame, link_max, machine, .. } = self;
            write_framed(&buf[..len], frame.as_mut(), *link_max, machine, now_ms, sink);
        }
    }

    fn send_request(&mut self, now_ms: u64, body: &Body<'_>, internal: bool, sink: &mut impl HostSink) -> Result<u32, HostError> {
        let mut body = *body;
        if let Body::Step(s) = &mut body {
            s.seen_us = self.rx_time.max_us().unwrap_or(0);
        }
        let id = self.take_id();
        let len = self.encode(id, &body)?;
        let mut seq = 0;
        if let Body::Event(e) = body {
            seq = e.seq;
            // The host's next event on the route follows this one (see `next_event_seq`).
            if let Some(r) = route_slot(&mut self.routes, e.route) {
                r.sent = Some(e.seq);
            }
        }
        self.pending = Some(Pending { id, kind: body.kind(), seq, sent_ms: now_ms, resends: 0, internal, len });
        if let Body::Step(s) = body {
            // The step's events come before its ack, in its epoch (reverted if it is refused).
            self.epoch_before_step = Some(self.epoch);
            self.epoch = s.epoch;
        }
        self.send_stored(now_ms, len, sink);
        Ok(id)
    }
}

impl<B: AsMut<[u8]>, F: AsMut<[u8]>, const R: usize> Core<B, F, R> {
    /// Sends the outstanding request again, with its id (the device answers a resend as it
    /// answered the first copy, and counts no gap).
    fn resend(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        let Some(p) = self.pending.as_mut() else { return };
        p.resends += 1;
        p.sent_ms = now_ms;
        let len = p.len;
        self.counters.retries = self.counters.retries.wrapping_add(1);
        self.send_stored(now_ms, len, sink);
    }

    /// A request with no answer in time is sent again, then given up.
    fn check_pending(&mut self, now_ms: u64, sink: &mut impl HostSink) {
        let Some(p) = self.pending else { return };
        if now_ms.saturating_sub(p.sent_ms) < u64::from(self.config.reply_timeout_ms) {
            return;
        }
        if p.resends < self.config.retries {
            self.resend(now_ms, sink);
        } else {
            self.fail_pending(sink, Failure::Timeout);
        }
    }

    fn fail_pending(&mut self, sink: &mut impl HostSink, why: Failure) {
        if let Some(p) = self.pending.take() {
            if let Some(epoch) = self.epoch_before_step.take() {
                self.epoch = epoch;
            }
            if p.internal {
                self.phase = Phase::Closed;
                sink.connect_failed(Answer::Failed(why));
            } else {
                sink.answer(p.id, Answer::Failed(why));
            }
        }
    }

    fn on_frame(&mut self, now_ms: u64, outcome: Result<&[u8], FrameError>, sink: &mut impl HostSink) {
        let bytes = match outcome {
            Ok(bytes) => bytes,
            Err(_) => {
                self.counters.frame_errors = self.counters.frame_errors.wrapping_add(1);
                return;
            }
        };
        self.counters.frames = self.counters.frames.wrapping_add(1);
        if self.phase == Phase::Closed {
            return;
        }
        if self.v11() {
            self.on_v11(now_ms, bytes, sink);
        } else {
            match Message::decode(bytes) {
                Ok(message) => {
                    sink.message(bytes);
                    self.on_v1(now_ms, message, sink)
                }
                Err(_) => self.counters.decode_errors = self.counters.decode_errors.wrapping_add(1),
            }
        }
    }

    fn on_v1(&mut self, now_ms: u64, message: Message<'_>, sink: &mut impl HostSink) {
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        if let Body::Describe(d) = message.body {
            return self.on_describe(now_ms, &d, Some(message.id), sink);
        }
        // v1 devices number their messages: a skipped id is lost messages.
        let gaps = self.machine.counters().rx_gaps;
        self.machine.on_receive(now_ms, message.id);
        if self.machine.counters().rx_gaps != gaps {
            self.counters.rx_gaps = self.counters.rx_gaps.wrapping_add(1);
        }
        match message.body {
            Body::Event(e) => self.on_event(Expanded::Event(e), sink),
            Body::Heartbeat(_) => {}
            body => self.on_answer(now_ms, body, sink),
        }
    }

    fn on_v11(&mut self, now_ms: u64, bytes: &[u8], sink: &mut impl HostSink) {
        let decoded = {
            let Core { routes, rx_time, epoch, counters, .. } = self;
            let mut events = Events { routes, counters, sink: &mut *sink };
            v11::decode_from_device(bytes, &mut events, rx_time, *epoch)
        };
        let message = match decoded {
            Ok(m) => m,
            Err(_) => {
                self.counters.decode_errors = self.counters.decode_errors.wrapping_add(1);
                return;
            }
        };
        sink.message(bytes);
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        self.machine.on_receive_unnumbered(now_ms);
        if let FromDevice::Message(m) = message {
            match m.body {
                Body::Describe(d) => self.on_describe(now_ms, &d, None, sink),
                Body::Heartbeat(h) => self.rx_time.received(h.time_us),
                body => self.on_answer(now_ms, body, sink),
            }
        }
    }

    fn on_describe(&mut self, now_ms: u64, d: &Describe<'_>, v1_id: Option<u32>, sink: &mut impl HostSink) {
        let Phase::Hello { resume } = self.phase else {
            // A describe for a hello answered already (a retry's): nothing new.
            self.counters.stray_answers = self.counters.stray_answers.wrapping_add(1);
            return;
        };
        if d.ref_id.is_some_and(|r| r != self.hello_id) {
            self.counters.stray_answers = self.counters.stray_answers.wrapping_add(1);
            return; // the answer to an earlier hello
        }
        self.version = d.version;
        self.link_max = (self.config.max_message.min(d.max_message)) as usize;
        // Counted there: a resume, or a session opened.
        self.machine.on_describe(now_ms, v1_id, resume);
        // The describe says what is in force now (a lockstep lease may have run out).
        self.flags = (self.flags & !HELLO_LOCKSTEP) | (d.flags & HELLO_LOCKSTEP);
        if self.v11() {
            self.rx_time.reset(d.time_us);
            self.epoch = d.epoch;
        }
        // The device forgot which routes it announced: their declared taints come again with
        // the table (the last seqs stay: they still show gaps).
        for r in self.routes.iter_mut() {
            r.declared = None;
        }
        sink.described(d, resume);
        self.start_routes(now_ms, 0, sink);
    }

    /// Reads the route table from `next` (while connecting), or is ready.
    fn start_routes(&mut self, now_ms: u64, next: u16, sink: &mut impl HostSink) {
        if next == 0 {
            sink.routes_stale();
        }
        if !self.fetch_routes {
            self.phase = Phase::Ready;
            return;
        }
        self.phase = Phase::Routes { next };
        let query = Body::Query(Query { what: QueryKind::Routes as u8, arg: next.into() });
        if self.send_request(now_ms, &query, true, sink).is_err() {
            self.phase = Phase::Ready;
        }
    }

    fn on_routes(&mut self, now_ms: u64, reply: &Reply<'_>, sink: &mut impl HostSink) {
        let ReplyBody::Routes(page) = reply.body else {
            self.phase = Phase::Ready;
            return;
        };
        for (i, row) in page.items.iter().enumerate() {
            let index = page.start.saturating_add(i as u16);
            sink.route(index, &row);
            if let Some(r) = route_slot(&mut self.routes, index) {
                // Events newer than the host's last one went by unseen (or unsent): the next
                // one says so. A seq below it means the device started its counts again
                // without a reset from this host (it restarted): what it sent before the
                // table is unknown, and the next event says so too.
                if r.seq.is_some_and(|last| row.seq != last) {
                    r.dropped = true;
                }
                r.seq = Some(row.seq);
                r.declared = row.taints;
            }
        }
        let next = page.start.saturating_add(page.items.len());
        if page.items.is_empty() || next >= page.total {
            self.phase = Phase::Ready;
        } else {
            self.start_routes(now_ms, next, sink);
        }
    }

    fn on_answer(&mut self, now_ms: u64, body: Body<'_>, sink: &mut impl HostSink) {
        let ref_id = match &body {
            Body::Ack(a) => Some(a.ref_id),
            Body::Nack(n) => {
                self.counters.nacks = self.counters.nacks.wrapping_add(1);
                n.ref_id
            }
            Body::Reply(r) => Some(r.ref_id),
            _ => return,
        };
        if let (Phase::Hello { .. }, Body::Nack(n)) = (self.phase, &body) {
            return self.on_hello_nack(now_ms, n, sink);
        }
        let Some(p) = self.pending else {
            self.counters.stray_answers = self.counters.stray_answers.wrapping_add(1);
            return;
        };
        if let Body::Nack(n) = &body {
            if n.ref_id.is_none() && is_frame_refusal(n.reason) {
                // A frame the device could not read: perhaps this request.
                if p.resends < self.config.retries {
                    return self.resend(now_ms, sink);
                }
                return self.finish(p, Answer::Nack(*n), sink);
            }
        }
        if ref_id != Some(p.id & if self.v11() { 0xff } else { u32::MAX }) {
            self.counters.stray_answers = self.counters.stray_answers.wrapping_add(1);
            return;
        }
        match body {
            Body::Ack(a) => {
                if self.v11() && p.kind != Kind::UploadChunk {
                    // Every v1.1 ack but an upload chunk's carries the device's time.
                    self.rx_time.received(a.info);
                }
                self.epoch_before_step = None;
                match p.kind {
                    Kind::Resume => self.flags &= !HELLO_LOCKSTEP,
                    Kind::UploadCommit => {
                        // A new partition: new routes, new references.
                        self.routes.clear();
                        self.finish(p, Answer::Ack(Ack { ref_id: p.id, ..a }), sink);
                        return self.start_routes(now_ms, 0, sink);
                    }
                    _ => {}
                }
                self.finish(p, Answer::Ack(Ack { ref_id: p.id, ..a }), sink)
            }
            Body::Nack(n) => {
                if p.kind == Kind::Event && p.resends > 0 && n.reason == NackReason::SeqNotIncreasing && n.detail >= p.seq {
                    // An earlier copy of this event was taken; its ack was lost on the way.
                    let info = self.rx_time.max_us().unwrap_or(0);
                    return self.finish(p, Answer::Ack(Ack { ref_id: p.id, info }), sink);
                }
                if let Some(epoch) = self.epoch_before_step.take() {
                    self.epoch = epoch;
                }
                self.finish(p, Answer::Nack(n), sink)
            }
            Body::Reply(r) if p.internal => {
                self.pending = None;
                self.on_routes(now_ms, &r, sink)
            }
            Body::Reply(r) => self.finish(p, Answer::Reply(r), sink),
            _ => {}
        }
    }

    fn finish(&mut self, p: Pending, answer: Answer<'_>, sink: &mut impl HostSink) {
        self.pending = None;
        if p.internal {
            // The route table could not be read: the session is up all the same, with events
            // in full form.
            self.phase = Phase::Ready;
            return;
        }
        sink.answer(p.id, answer);
    }

    /// A refused hello: an older device (a v1 board refuses v1.1 with `version_unsupported`
    /// and its version) is greeted again in its version; any other refusal ends the handshake.
    fn on_hello_nack(&mut self, now_ms: u64, n: &Nack, sink: &mut impl HostSink) {
        if n.ref_id.is_none() {
            return; // a damaged frame, perhaps the hello: the hello timer says it again
        }
        if n.ref_id != Some(self.hello_id) {
            self.counters.stray_answers = self.counters.stray_answers.wrapping_add(1);
            return;
        }
        if n.reason == NackReason::VersionUnsupported && n.detail >= 1 && n.detail < self.version {
            self.version = n.detail;
            self.hello_id = self.take_id();
            return self.send_hello(now_ms, sink);
        }
        self.phase = Phase::Closed;
        self.machine.drop_session();
        sink.connect_failed(Answer::Nack(*n));
    }

    fn on_event(&mut self, e: Expanded, sink: &mut impl HostSink) {
        let Core { routes, counters, .. } = self;
        v11::EventSink::event(&mut Events { routes, counters, sink }, e);
    }
}

/// What the host keeps of device route `route`, added (with the routes before it) when new;
/// `None` past `R` routes.
fn route_slot<const R: usize>(routes: &mut Vec<RouteRef, R>, route: u16) -> Option<&mut RouteRef> {
    let index = usize::from(route);
    // Bounded by R: each push adds a route until the vector is full.
    while routes.len() <= index && routes.push(RouteRef::default()).is_ok() {}
    routes.get_mut(index)
}

/// Encodes a host message as link `version` writes it: the v1.1 layout (a one-byte id), but for
/// the hello, which keeps the v1 layout and its whole id in every version; v1 all in v1's.
fn encode_for(version: u32, out: &mut [u8], id: u32, body: &Body<'_>) -> Result<usize, super::LinkError> {
    if version >= v11::VERSION && !matches!(body, Body::Hello(_)) {
        v11::encode_request(out, id as u8, body)
    } else {
        Message { id, body: *body }.encode(out)
    }
}

/// Frames `message` (into `frame`, within the link's `link_max`) and writes it; the machine
/// notes a message sent (its keepalive timer and counter).
fn write_framed(message: &[u8], frame: &mut [u8], link_max: usize, machine: &mut LinkMachine, now_ms: u64, sink: &mut impl HostSink) {
    if let Ok(n) = encode_frame(message, frame, link_max) {
        sink.write(&frame[..n]);
        machine.sent(now_ms);
    }
}

/// The host's side of a batch of events: references to expand them with, and where they go.
struct Events<'x, S, const R: usize> {
    routes: &'x mut Vec<RouteRef, R>,
    counters: &'x mut HostCounters,
    sink: &'x mut S,
}

impl<S, const R: usize> RouteRefs for Events<'_, S, R> {
    fn seq_ref(&self, route: u16) -> Option<u32> {
        self.routes.get(usize::from(route)).and_then(|r| r.seq)
    }
    fn declared(&self, route: u16) -> Option<TaintSet> {
        self.routes.get(usize::from(route)).and_then(|r| r.declared)
    }
}

impl<S: HostSink, const R: usize> v11::EventSink for Events<'_, S, R> {
    /// An event arrived: a skipped seq on its route (events lost on the way) marks it
    /// `delivery_dropped`, as does a loss found earlier; one that could not be expanded is
    /// counted and marks its route's next event.
    fn event(&mut self, e: Expanded) {
        let route = match e {
            Expanded::Event(e) => e.route,
            Expanded::Missing(route) => route,
        };
        let slot = route_slot(self.routes, route);
        match e {
            Expanded::Missing(_) => {
                self.counters.events_undecodable = self.counters.events_undecodable.wrapping_add(1);
                if let Some(r) = slot {
                    r.dropped = true;
                }
            }
            Expanded::Event(mut e) => {
                if slot.as_ref().is_some_and(|r| r.seq.is_some_and(|last| e.seq <= last)) {
                    // Not above the route's last (a session's seqs only grow): a copy, or late.
                    self.counters.events_duplicate = self.counters.events_duplicate.wrapping_add(1);
                    return;
                }
                self.counters.events = self.counters.events.wrapping_add(1);
                if let Some(r) = slot {
                    let gap = r.seq.is_some_and(|last| e.seq > last.wrapping_add(1));
                    if gap {
                        self.counters.rx_gaps = self.counters.rx_gaps.wrapping_add(1);
                    }
                    if gap || core::mem::take(&mut r.dropped) {
                        e.taints = e.taints.with(Taint::DeliveryDropped);
                    }
                    r.seq = Some(e.seq);
                }
                self.sink.event(&e);
            }
        }
    }
}

/// Nack reasons of frames the device could not read (their nack has no ref).
pub fn is_frame_refusal(reason: NackReason) -> bool {
    matches!(reason, NackReason::FrameBadCrc | NackReason::FrameBadCobs | NackReason::FrameShort | NackReason::FrameOversize)
}
