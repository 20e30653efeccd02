//! [`Client`]: the blocking host end of a device link. See the module docs of [`super`].

use std::collections::VecDeque;

use manyfold_core::framing::{decoder_buffer_len, encode_frame, frame_len_max, FrameDecoder};
use manyfold_core::link::host::{Answer, Failure, HostConfig, HostCounters, HostError, HostLink, HostSink, Phase};
use manyfold_core::link::msg::{UploadBegin, UploadChunk};
use manyfold_core::link::{Body, Describe, Event, Heartbeat, LinkTimers, Nack, Query, QueryKind, RouteInfo};
use manyfold_core::taint::Taint;
use sha2::{Digest, Sha256};

use super::owned::{OwnedAnswer, OwnedDescribe, Page};
use super::{Clock, Port};

/// Routes whose references the client keeps (a device route index beyond it only gets full-form
/// events, which need none).
pub const ROUTES_MAX: usize = 1024;

/// Events received and not yet taken, at most. When full, the oldest is dropped: counted
/// (`events_overflowed`) and its route's next event says `delivery_dropped`.
pub const EVENTS_MAX: usize = 1 << 16;

/// Answers kept for the caller, at most (it waits for one at a time).
const ANSWERS_MAX: usize = 16;

/// Frames kept in the transcript (with recording on), at most: the oldest go first.
pub const TRANSCRIPT_MAX: usize = 1 << 20;

/// Bytes read from the port per read.
const READ_LEN: usize = 4096;

type Host = HostLink<Vec<u8>, Vec<u8>, Vec<u8>, ROUTES_MAX>;

/// Timing, in seconds of the client's clock (docs/wire.md 2.10).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientTimers {
    /// Send a heartbeat after this long without sending anything (free-running).
    pub heartbeat_s: f64,
    /// Nothing heard for this long: the link is stale.
    pub stale_s: f64,
    /// Nothing heard for this long: the session is down; reopen and resume.
    pub down_s: f64,
    /// Say hello again after this long without a describe.
    pub hello_retry_s: f64,
    /// Wait this long for each answer.
    pub reply_timeout_s: f64,
    /// Give up reopening the port after this long.
    pub reconnect_timeout_s: f64,
    /// Times a request is sent again when its frame was refused or its answer lost.
    pub retries: u8,
}

impl Default for ClientTimers {
    fn default() -> Self {
        ClientTimers {
            heartbeat_s: 1.0,
            stale_s: 3.0,
            down_s: 10.0,
            hello_retry_s: 0.5,
            reply_timeout_s: 5.0,
            reconnect_timeout_s: 15.0,
            retries: 2,
        }
    }
}

fn ms(s: f64) -> u32 {
    (s * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Why a client call did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// The device refused `what`.
    Refused {
        /// The request, in words ("the step to 1000 us").
        what: String,
        /// The device's refusal.
        nack: Nack,
    },
    /// No answer in time (even after resending and reconnecting).
    Timeout(String),
    /// The request cannot be sent (too long for the link).
    Request(String),
    /// The user asked to stop (the port says so).
    Interrupted,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Refused { what, nack } => {
                write!(f, "the device refused {what}: {}", snake(&format!("{:?}", nack.reason)))?;
                if nack.detail != 0 {
                    write!(f, " (detail {})", nack.detail)?;
                }
                Ok(())
            }
            ClientError::Timeout(what) | ClientError::Request(what) => f.write_str(what),
            ClientError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// `DecodeBadCbor` -> `decode_bad_cbor`: the wire names of the core's enums.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the host role hands on, kept until the client's caller takes it.
struct Inbox {
    out: Vec<u8>,
    events: VecDeque<Event>,
    events_overflowed: u64,
    /// Routes that lost an event to the full queue: their next event says so.
    overflowed_routes: Vec<u16>,
    answers: VecDeque<(u32, Result<OwnedAnswer, Failure>)>,
    describe: Option<OwnedDescribe>,
    connect_failed: Option<Option<Nack>>,
    routes: Vec<RouteInfo>,
    reopen: bool,
    transcript: Option<VecDeque<Vec<u8>>>,
    frame: Vec<u8>,
    max_message: usize,
}

impl Inbox {
    fn push_event(&mut self, mut event: Event) {
        if let Some(at) = self.overflowed_routes.iter().position(|r| *r == event.route) {
            self.overflowed_routes.swap_remove(at);
            event.taints = event.taints.with(Taint::DeliveryDropped);
        }
        if self.events.len() >= EVENTS_MAX {
            if let Some(old) = self.events.pop_front() {
                self.events_overflowed += 1;
                match self.events.iter_mut().find(|e| e.route == old.route) {
                    Some(next) => next.taints = next.taints.with(Taint::DeliveryDropped),
                    None if event.route == old.route => event.taints = event.taints.with(Taint::DeliveryDropped),
                    None => {
                        if !self.overflowed_routes.contains(&old.route) {
                            self.overflowed_routes.push(old.route);
                        }
                    }
                }
            }
        }
        self.events.push_back(event);
    }
}

impl HostSink for Inbox {
    fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    fn event(&mut self, event: &Event) {
        self.push_event(*event);
    }
    fn described(&mut self, describe: &Describe<'_>, resumed: bool) {
        self.describe = Some(OwnedDescribe::from(describe, resumed));
    }
    fn connect_failed(&mut self, answer: Answer<'_>) {
        self.connect_failed = Some(match answer {
            Answer::Nack(n) => Some(n),
            _ => None,
        });
    }
    fn answer(&mut self, id: u32, answer: Answer<'_>) {
        let owned = match answer {
            Answer::Ack(a) => Ok(OwnedAnswer::Ack(a)),
            Answer::Nack(n) => Ok(OwnedAnswer::Nack(n)),
            Answer::Reply(r) => Ok(OwnedAnswer::from_reply(&r)),
            Answer::Failed(f) => Err(f),
        };
        // The host role answers only its one outstanding request, and the client takes each
        // answer it waits for; this bound only guards against answers nobody waited for.
        if self.answers.len() >= ANSWERS_MAX {
            self.answers.pop_front();
        }
        self.answers.push_back((id, owned));
    }
    fn route(&mut self, index: u16, route: &RouteInfo) {
        if usize::from(index) == self.routes.len() {
            self.routes.push(*route);
        }
    }
    fn routes_stale(&mut self) {
        self.routes.clear();
    }
    fn reopen(&mut self) {
        self.reopen = true;
    }
    fn message(&mut self, bytes: &[u8]) {
        let Some(transcript) = self.transcript.as_mut() else { return };
        if let Ok(n) = encode_frame(bytes, &mut self.frame, self.max_message) {
            if transcript.len() >= TRANSCRIPT_MAX {
                transcript.pop_front();
            }
            transcript.push_back(self.frame[..n].to_vec());
        }
    }
}

/// The blocking host end of one device link. See the module docs of [`super`].
pub struct Client<P: Port, C: Clock> {
    link: Host,
    port: P,
    clock: C,
    timers: ClientTimers,
    inbox: Inbox,
    session: u32,
    reset_used: bool,
    port_error: Option<String>,
    read: Vec<u8>,
    config: HostConfig,
}

impl<P: Port, C: Clock> Client<P, C> {
    /// A client over `port` with the host's `max_message`, first `session` id, `timers`, and
    /// the newest protocol version it offers (`version_max`: 2 for v1.1, 1 for a v1-only host).
    pub fn new(port: P, clock: C, max_message: usize, session: u32, timers: ClientTimers, version_max: u32) -> Self {
        let config = Self::config(max_message, version_max, timers);
        Client {
            link: Self::host(config, max_message),
            port,
            clock,
            timers,
            inbox: Inbox {
                out: Vec::new(),
                events: VecDeque::new(),
                events_overflowed: 0,
                overflowed_routes: Vec::new(),
                answers: VecDeque::new(),
                describe: None,
                connect_failed: None,
                routes: Vec::new(),
                reopen: false,
                transcript: None,
                frame: vec![0; frame_len_max(max_message)],
                max_message,
            },
            session,
            reset_used: false,
            port_error: None,
            read: vec![0; READ_LEN],
            config,
        }
    }

    fn config(max_message: usize, version_max: u32, timers: ClientTimers) -> HostConfig {
        HostConfig {
            max_message: max_message as u32,
            version_max,
            timers: LinkTimers {
                heartbeat_ms: ms(timers.heartbeat_s),
                stale_ms: ms(timers.stale_s),
                down_ms: ms(timers.down_s),
                hello_retry_ms: ms(timers.hello_retry_s),
            },
            reply_timeout_ms: ms(timers.reply_timeout_s),
            retries: timers.retries,
        }
    }

    fn host(config: HostConfig, max_message: usize) -> Host {
        let decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(max_message)], max_message)
            .expect("a decoder buffer sized for max_message");
        HostLink::new(config, decoder, vec![0u8; max_message], vec![0u8; frame_len_max(max_message)])
    }

    /// Keeps every frame received from now on (see [`Client::transcript`]).
    pub fn record(&mut self, on: bool) {
        self.inbox.transcript = if on { Some(VecDeque::new()) } else { None };
    }

    /// The frames of every message received while recording, in order.
    pub fn transcript(&self) -> Vec<Vec<u8>> {
        self.inbox.transcript.as_ref().map(|t| t.iter().cloned().collect()).unwrap_or_default()
    }

    /// Forgets the transcript so far.
    pub fn clear_transcript(&mut self) {
        if let Some(t) = self.inbox.transcript.as_mut() {
            t.clear();
        }
    }

    /// The timers (change them with [`Client::set_timers`]).
    pub fn timers(&self) -> ClientTimers {
        self.timers
    }

    /// New timers, for the next calls.
    pub fn set_timers(&mut self, timers: ClientTimers) {
        if timers == self.timers {
            return;
        }
        self.timers = timers;
        self.config = Self::config(self.config.max_message as usize, self.config.version_max, timers);
        self.link.set_timing(self.config.timers, self.config.reply_timeout_ms, self.config.retries);
    }

    /// The port.
    pub fn port(&mut self) -> &mut P {
        &mut self.port
    }

    /// The host role (state, counters, references).
    pub fn link(&self) -> &HostLink<Vec<u8>, Vec<u8>, Vec<u8>, ROUTES_MAX> {
        &self.link
    }

    /// The counters of the host end.
    pub fn counters(&self) -> HostCounters {
        self.link.counters()
    }

    /// Events dropped because nobody took them ([`EVENTS_MAX`]).
    pub fn events_overflowed(&self) -> u64 {
        self.inbox.events_overflowed
    }

    /// The last describe.
    pub fn describe(&self) -> Option<&OwnedDescribe> {
        self.inbox.describe.as_ref()
    }

    /// The route table read while connecting (read again after an upload; empty when the
    /// session was opened without fetching it).
    pub fn routes_known(&self) -> &[RouteInfo] {
        &self.inbox.routes
    }

    /// The session id in force (a reset moves the client to a new one).
    pub fn session(&self) -> u32 {
        self.session
    }

    /// The last error the port raised (the link was then reconnected).
    pub fn port_error(&self) -> Option<&str> {
        self.port_error.as_deref()
    }

    fn now_s(&mut self) -> f64 {
        self.clock.now_s()
    }

    fn now_ms(&mut self) -> u64 {
        (self.clock.now_s().max(0.0) * 1000.0) as u64
    }

    fn flush(&mut self) {
        if self.inbox.out.is_empty() {
            return;
        }
        let out = std::mem::take(&mut self.inbox.out);
        if let Err(e) = self.port.write(&out) {
            self.broken(e);
        }
    }

    fn broken(&mut self, error: std::io::Error) {
        self.port_error = Some(error.to_string());
        if self.link.phase() != Phase::Closed {
            self.link.port_broken(&mut self.inbox);
        }
    }

    /// One turn: read what came (waiting at most the port's timeout), let the host role handle
    /// it and its timers, write what it says. Returns the bytes read.
    fn turn(&mut self) -> Result<usize, ClientError> {
        let n = match self.port.read(&mut self.read) {
            Ok(n) => n,
            Err(e) => {
                self.broken(e);
                // A dead port fails at once: do not spin on it.
                std::thread::sleep(std::time::Duration::from_millis(10));
                0
            }
        };
        let now = self.now_ms();
        if n > 0 {
            let bytes = std::mem::take(&mut self.read);
            self.link.receive(now, &bytes[..n], &mut self.inbox);
            self.read = bytes;
        }
        self.link.poll(now, &mut self.inbox);
        self.flush();
        if self.port.interrupted() {
            return Err(ClientError::Interrupted);
        }
        Ok(n)
    }

    /// Waits for the 0x00 a board sends once its UART is up.
    pub fn wait_for_boot(&mut self, timeout_s: f64) -> Result<(), ClientError> {
        let deadline = self.now_s() + timeout_s;
        while self.now_s() < deadline {
            let n = match self.port.read(&mut self.read) {
                Ok(n) => n,
                Err(_) if self.port.interrupted() => return Err(ClientError::Interrupted),
                Err(e) => return Err(ClientError::Timeout(format!("the port failed while waiting for the board: {e}"))),
            };
            if n > 0 {
                let bytes = std::mem::take(&mut self.read);
                let now = self.now_ms();
                self.link.receive(now, &bytes[..n], &mut self.inbox);
                let boot = bytes[..n].contains(&0);
                self.read = bytes;
                if boot {
                    return Ok(());
                }
            }
        }
        Err(ClientError::Timeout(format!("no boot byte from the device within {timeout_s} s")))
    }

    /// Opens the session (hello until the describe, then the route table with
    /// `fetch_routes`). `lockstep` hands the device's clock to [`Client::step`] requests from
    /// `time_us` on (with `reset`); `reset` restarts its partition, counters and ids, and moves
    /// the client to a new session id (the reset token) after the first.
    pub fn connect(&mut self, lockstep: bool, reset: bool, time_us: i64, timeout_s: f64, fetch_routes: bool) -> Result<OwnedDescribe, ClientError> {
        if reset {
            if self.reset_used {
                self.session = self.session.wrapping_add(1);
            }
            self.reset_used = true;
        }
        self.inbox.connect_failed = None;
        self.inbox.describe = None;
        let now = self.now_ms();
        self.link.connect(now, self.session, lockstep, reset, time_us, fetch_routes, &mut self.inbox);
        self.flush();
        let deadline = self.now_s() + timeout_s;
        loop {
            self.turn()?;
            if let Some(refusal) = self.inbox.connect_failed.take() {
                return Err(match refusal {
                    Some(nack) => ClientError::Refused { what: "the hello".into(), nack },
                    None => ClientError::Timeout(format!("no answer to the route table query within {} s", self.timers.reply_timeout_s)),
                });
            }
            if self.link.ready() {
                return self.inbox.describe.clone().ok_or_else(|| ClientError::Timeout("no describe".into()));
            }
            if self.now_s() >= deadline {
                return Err(ClientError::Timeout(format!("no describe within {timeout_s} s")));
            }
        }
    }

    /// Reopens the port (when it can be) and resumes the session: same session id, no reset.
    pub fn reconnect(&mut self) -> Result<OwnedDescribe, ClientError> {
        let deadline = self.now_s() + self.timers.reconnect_timeout_s;
        loop {
            if self.port.can_reopen() {
                self.port.close();
                if let Err(e) = self.port.reopen() {
                    if self.now_s() >= deadline {
                        return Err(ClientError::Timeout(format!(
                            "could not reopen the port within {} s: {e}",
                            self.timers.reconnect_timeout_s
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            }
            self.inbox.reopen = false;
            self.inbox.connect_failed = None;
            let now = self.now_ms();
            self.link.resume(now, &mut self.inbox);
            self.flush();
            let attempt_end = (self.now_s() + (self.timers.hello_retry_s * 4.0).max(0.5)).min(deadline.max(self.now_s()));
            loop {
                self.turn()?;
                if self.link.ready() {
                    return self.inbox.describe.clone().ok_or_else(|| ClientError::Timeout("no describe".into()));
                }
                if let Some(Some(nack)) = self.inbox.connect_failed.take() {
                    return Err(ClientError::Refused { what: "the hello".into(), nack });
                }
                if self.now_s() >= attempt_end || self.inbox.reopen {
                    break;
                }
            }
            if self.now_s() >= deadline {
                return Err(ClientError::Timeout(format!("no describe within {} s of reconnecting", self.timers.reconnect_timeout_s)));
            }
        }
    }

    fn take_answer(&mut self, id: u32) -> Option<Result<OwnedAnswer, Failure>> {
        let at = self.inbox.answers.iter().position(|(i, _)| *i == id)?;
        self.inbox.answers.remove(at).map(|(_, a)| a)
    }

    /// Sends a request and waits for its answer. A request that got no answer after the host
    /// role's resends is tried once more after reconnecting (when the port can be reopened).
    /// A nack is `Ok(OwnedAnswer::Nack)` with `nack_ok`, else [`ClientError::Refused`].
    pub fn call(&mut self, body: &Body<'_>, what: &str, nack_ok: bool) -> Result<OwnedAnswer, ClientError> {
        let mut reconnected = false;
        // Bounded: each pass either answers, fails, or reconnects (once).
        loop {
            if !self.link.ready() {
                self.wait_ready()?;
            }
            let now = self.now_ms();
            let id = match self.link.request(now, body, &mut self.inbox) {
                Ok(id) => id,
                Err(HostError::TooLong) => return Err(ClientError::Request(format!("{what} does not fit the link's messages"))),
                Err(_) => {
                    self.wait_ready()?;
                    continue;
                }
            };
            self.flush();
            let answer = loop {
                if let Some(answer) = self.take_answer(id) {
                    break answer;
                }
                self.turn()?;
            };
            match answer {
                Ok(OwnedAnswer::Nack(nack)) if !nack_ok => return Err(ClientError::Refused { what: what.into(), nack }),
                Ok(answer) => return Ok(answer),
                Err(_) if !reconnected && self.port.can_reopen() => {
                    reconnected = true;
                    self.reconnect()?;
                }
                Err(Failure::Down) if !reconnected => {
                    reconnected = true;
                    self.wait_ready()?;
                }
                Err(_) => {
                    return Err(ClientError::Timeout(format!("no answer to {what} within {} s", self.timers.reply_timeout_s)));
                }
            }
        }
    }

    /// Waits until the session is up again (resuming by itself, or reconnecting).
    fn wait_ready(&mut self) -> Result<(), ClientError> {
        if self.link.phase() == Phase::Closed {
            return Err(ClientError::Timeout("no session: connect first".into()));
        }
        if self.inbox.reopen || matches!(self.link.phase(), Phase::Hello { resume: true }) {
            self.reconnect()?;
            return Ok(());
        }
        let deadline = self.now_s() + self.timers.reconnect_timeout_s;
        while !self.link.ready() {
            self.turn()?;
            if self.now_s() >= deadline {
                return Err(ClientError::Timeout(format!("the link did not come back within {} s", self.timers.reconnect_timeout_s)));
            }
        }
        Ok(())
    }

    /// Reads for `timeout_s` (and on while data flows), keeps the link alive (reconnecting when
    /// it went down), and returns the events received so far.
    pub fn poll(&mut self, timeout_s: f64) -> Result<Vec<Event>, ClientError> {
        let deadline = self.now_s() + timeout_s;
        loop {
            let n = self.turn()?;
            if self.inbox.reopen && self.link.phase() != Phase::Closed {
                self.reconnect()?;
            }
            if n == 0 && self.now_s() >= deadline {
                return Ok(self.take_events());
            }
        }
    }

    /// The events received and not yet taken, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.inbox.events.drain(..).collect()
    }

    /// Advances a lockstep device to `to_us` in control epoch `epoch`; returns the events it
    /// emitted on the way (and any not yet taken).
    pub fn step(&mut self, to_us: i64, epoch: u32) -> Result<Vec<Event>, ClientError> {
        let body = Body::Step(manyfold_core::link::Step { to_us, epoch, seen_us: 0 });
        self.call(&body, &format!("the step to {to_us} us"), false)?;
        Ok(self.take_events())
    }

    /// Hands the clock back: the device runs on its own timer again.
    pub fn resume(&mut self) -> Result<(), ClientError> {
        self.call(&Body::Resume, "resume", false)?;
        Ok(())
    }

    /// Sends a heartbeat now.
    pub fn heartbeat(&mut self) {
        let now = self.now_ms();
        let _ = self.link.request(now, &Body::Heartbeat(Heartbeat { time_us: 0 }), &mut self.inbox);
        self.flush();
    }

    /// One query.
    pub fn query(&mut self, what: QueryKind, arg: u32) -> Result<OwnedAnswer, ClientError> {
        let words = format!("the {} query", snake(&format!("{what:?}")));
        self.call(&Body::Query(Query { what: what as u8, arg }), &words, false)
    }

    /// A whole table, page by page.
    pub fn pages(&mut self, what: QueryKind) -> Result<Page, ClientError> {
        let mut all: Option<Page> = None;
        // Bounded: every page adds items, up to the table's length (at most 65535).
        loop {
            let have = all.as_ref().map_or(0, Page::len);
            let OwnedAnswer::Page { page, total, .. } = self.query(what, have as u32)? else {
                return Err(ClientError::Request("the device answered a table query with something else".into()));
            };
            let got = page.len();
            match all.as_mut() {
                Some(a) => a.extend(page),
                None => all = Some(page),
            }
            let have = all.as_ref().map_or(0, Page::len);
            if got == 0 || have >= usize::from(total) {
                return Ok(all.expect("a page was read"));
            }
        }
    }

    /// Uploads and activates a partition image in chunks of `chunk_len` bytes (the device
    /// checks its SHA-256 and decodes it before switching).
    pub fn upload(&mut self, image: &[u8], chunk_len: usize) -> Result<(), ClientError> {
        let sha256: [u8; 32] = Sha256::digest(image).into();
        let total_len = u32::try_from(image.len()).map_err(|_| ClientError::Request("the image is too large".into()))?;
        self.call(&Body::UploadBegin(UploadBegin { total_len, sha256 }), "the upload", false)?;
        for (i, data) in image.chunks(chunk_len.max(1)).enumerate() {
            let offset = (i * chunk_len.max(1)) as u32;
            self.call(&Body::UploadChunk(UploadChunk { offset, data }), &format!("the chunk at {offset}"), false)?;
        }
        self.call(&Body::UploadCommit, "the upload commit", false)?;
        // The host role reads the new route table by itself.
        self.wait_ready()
    }

    /// Sends each message of a trace and waits for its answer (nacks are answers too, not
    /// errors): a deterministic way to drive a lockstep device. Heartbeats get no answer.
    pub fn run_trace(&mut self, trace: &[Body<'_>]) -> Result<(), ClientError> {
        for body in trace {
            if let Body::Heartbeat(_) = body {
                self.heartbeat();
                continue;
            }
            self.call(body, &format!("{:?}", body.kind()), true)?;
        }
        Ok(())
    }

    /// True in lockstep.
    pub fn lockstep(&self) -> bool {
        self.link.lockstep()
    }

    /// Closes the port.
    pub fn close(&mut self) {
        self.port.close();
    }
}
