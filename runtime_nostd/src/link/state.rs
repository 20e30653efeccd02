//! The link state machine (docs/wire.md 2.10): sessions, keepalive, loss detection and
//! reconnection, for either end of a link.
//!
//! It reads no clock: every call takes `now_ms`, and [`LinkMachine::poll`] says what is due.
//! A device is `Disconnected` until a hello, `Up` while the host is heard from, `Stale` after
//! `stale_ms` of silence (it stops sending events: they are counted as unsent and the routes
//! tainted), and `Disconnected` again after `down_ms`. A host is `Handshaking` until a
//! describe, re-sends its hello every `hello_retry_ms`, and after `down_ms` of silence goes back
//! to `Handshaking` with the same session: when the cable or the peer comes back, the link
//! resumes with no user code, and the gap is in the counters.

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No session. A device waits for a hello; a host has not called `connect`.
    Disconnected,
    /// A host sent its hello and waits for the describe.
    Handshaking,
    /// The peer was heard from within `stale_ms`.
    Up,
    /// Nothing from the peer for `stale_ms`; keepalives go on.
    Stale,
}

/// Which end of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The board (or the simulation): answers hellos.
    Device,
    /// The host: sends hellos.
    Host,
}

/// Keepalive timing, in milliseconds of the caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimers {
    /// Send a heartbeat when nothing was sent for this long.
    pub heartbeat_ms: u32,
    /// Nothing heard for this long: `Stale`.
    pub stale_ms: u32,
    /// Nothing heard for this long: the session is down (a host reconnects).
    pub down_ms: u32,
    /// A host re-sends its hello this often while handshaking.
    pub hello_retry_ms: u32,
}

impl LinkTimers {
    /// The defaults of docs/wire.md 2.10: heartbeat 1 s, stale 3 s, down 10 s, hello retry 500 ms.
    pub const DEFAULT: LinkTimers = LinkTimers { heartbeat_ms: 1_000, stale_ms: 3_000, down_ms: 10_000, hello_retry_ms: 500 };
}

/// What [`LinkMachine::poll`] says to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Nothing.
    Idle,
    /// Send a heartbeat.
    SendHeartbeat,
    /// (Host) send a hello for this session.
    SendHello {
        /// The session to open or resume.
        session: u32,
    },
}

/// How a hello changed a device's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloOutcome {
    /// A new session opened by a reset hello: the partition restarts, ids and counters start
    /// again. The session id is the reset token: a second reset hello with the same session is
    /// a retry (its describe was lost) and is `Refreshed` or `Resumed` instead.
    Reset,
    /// A new session without a reset (another session id): the partition runs on.
    NewSession,
    /// The same session, back after the link was stale or down: a gap to report.
    Resumed,
    /// The same session while up: nothing was lost.
    Refreshed,
}

/// Counters of the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// Messages received.
    pub messages_rx: u32,
    /// Messages sent.
    pub messages_tx: u32,
    /// Gaps in the peer's message ids.
    pub rx_gaps: u32,
    /// Sessions opened.
    pub sessions: u32,
    /// Sessions resumed after stale or down.
    pub resumes: u32,
    /// Times the link went stale.
    pub stale: u32,
}

/// One end of a link: state, ids, timers and counters.
#[derive(Debug, Clone)]
pub struct LinkMachine {
    role: Role,
    timers: LinkTimers,
    state: LinkState,
    session: Option<u32>,
    last_rx_ms: u64,
    last_tx_ms: u64,
    hello_at_ms: Option<u64>,
    expected_rx_id: Option<u32>,
    id_mask: u32,
    opened_by_reset: bool,
    counters: LinkCounters,
}

impl LinkMachine {
    /// A link end in `Disconnected`.
    pub fn new(role: Role, timers: LinkTimers) -> Self {
        LinkMachine {
            role,
            timers,
            state: LinkState::Disconnected,
            session: None,
            last_rx_ms: 0,
            last_tx_ms: 0,
            hello_at_ms: None,
            expected_rx_id: None,
            id_mask: u32::MAX,
            opened_by_reset: false,
            counters: LinkCounters::default(),
        }
    }

    /// Peer ids wrap at `mask + 1` (`0xff` in v1.1, whose ids are one byte; `u32::MAX` in v1).
    pub fn set_id_mask(&mut self, mask: u32) {
        self.id_mask = mask;
    }

    /// True when the session in force was opened by a reset hello.
    pub fn opened_by_reset(&self) -> bool {
        self.opened_by_reset
    }

    /// The state.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The session, once one was opened.
    pub fn session(&self) -> Option<u32> {
        self.session
    }

    /// The counters.
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// New timers, from now on.
    pub fn set_timers(&mut self, timers: LinkTimers) {
        self.timers = timers;
    }

    /// True when events may be sent (the peer was heard from recently).
    pub fn is_up(&self) -> bool {
        self.state == LinkState::Up
    }

    /// A message was sent at `now_ms` (the heartbeat timer starts again; counted).
    pub fn sent(&mut self, now_ms: u64) {
        self.last_tx_ms = now_ms;
        self.counters.messages_tx = self.counters.messages_tx.wrapping_add(1);
    }

    /// Any message with id `id` arrived from the peer at `now_ms`. An id other than the one
    /// after the last is a gap (messages were lost), except the last id again: a resend.
    pub fn on_receive(&mut self, now_ms: u64, id: u32) {
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        self.last_rx_ms = now_ms;
        if let Some(expected) = self.expected_rx_id {
            let resend = id == expected.wrapping_sub(1) & self.id_mask;
            if id != expected && !resend {
                self.counters.rx_gaps = self.counters.rx_gaps.wrapping_add(1);
            }
        }
        self.expected_rx_id = Some(id.wrapping_add(1) & self.id_mask);
        if self.state == LinkState::Stale {
            self.state = LinkState::Up;
        }
    }

    /// The peer is known to be alive at `now_ms` without a new message (a device calls this
    /// when a lockstep step completes: the step moved time, not the host away).
    pub fn heard(&mut self, now_ms: u64) {
        self.last_rx_ms = self.last_rx_ms.max(now_ms);
    }

    /// Something was sent as late as `now_ms` (a caller that stamped its sends with an earlier
    /// time, such as the start of a lockstep step, says when it ended).
    pub fn sent_by(&mut self, now_ms: u64) {
        self.last_tx_ms = self.last_tx_ms.max(now_ms);
    }

    /// Restarts the timers at `now_ms` (the caller's clock jumped: a reset or a change between
    /// lockstep and free-running time).
    pub fn rebase(&mut self, now_ms: u64) {
        self.last_rx_ms = now_ms;
        self.last_tx_ms = now_ms;
    }

    /// (Device) a hello with id `id` arrived; call instead of [`Self::on_receive`].
    pub fn on_hello(&mut self, now_ms: u64, id: u32, session: u32, reset: bool) -> HelloOutcome {
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        let same = self.session == Some(session);
        let outcome = if reset && !(same && self.opened_by_reset) {
            HelloOutcome::Reset
        } else if !same {
            HelloOutcome::NewSession
        } else if self.state == LinkState::Up {
            HelloOutcome::Refreshed
        } else {
            HelloOutcome::Resumed
        };
        match outcome {
            HelloOutcome::Reset => {
                self.counters.sessions = self.counters.sessions.wrapping_add(1);
                self.opened_by_reset = true;
            }
            HelloOutcome::NewSession => {
                self.counters.sessions = self.counters.sessions.wrapping_add(1);
                self.opened_by_reset = false;
            }
            HelloOutcome::Resumed => {
                self.counters.resumes = self.counters.resumes.wrapping_add(1);
            }
            HelloOutcome::Refreshed => {}
        }
        self.session = Some(session);
        self.expected_rx_id = Some(id.wrapping_add(1) & self.id_mask);
        self.last_rx_ms = now_ms;
        self.state = LinkState::Up;
        outcome
    }

    /// Resets the counters (a device does so on a hello with the reset flag, after
    /// [`Self::on_hello`] counted it).
    pub fn reset_counters(&mut self) {
        self.counters = LinkCounters { sessions: 1, messages_rx: 1, ..LinkCounters::default() };
    }

    /// (Host) start a session: hellos are sent until a describe arrives.
    pub fn connect(&mut self, session: u32) {
        self.session = Some(session);
        self.state = LinkState::Handshaking;
        self.hello_at_ms = None;
    }

    /// (Host) the describe arrived at `now_ms`: the session is up. `resumed` when it answers a
    /// hello that resumed the session after the link was stale or down (counted in `resumes`);
    /// else a new session (counted in `sessions`). `id` is the describe's
    /// own id in v1 (the device's ids follow it), `None` in v1.1 (device messages have none).
    pub fn on_describe(&mut self, now_ms: u64, id: Option<u32>, resumed: bool) {
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        if resumed {
            self.counters.resumes = self.counters.resumes.wrapping_add(1);
        } else {
            self.counters.sessions = self.counters.sessions.wrapping_add(1);
        }
        self.expected_rx_id = id.map(|id| id.wrapping_add(1) & self.id_mask);
        self.last_rx_ms = now_ms;
        self.state = LinkState::Up;
    }

    /// (Host) a message without an id arrived (v1.1 device messages): the peer is alive.
    pub fn on_receive_unnumbered(&mut self, now_ms: u64) {
        self.counters.messages_rx = self.counters.messages_rx.wrapping_add(1);
        self.last_rx_ms = now_ms;
        if self.state == LinkState::Stale {
            self.state = LinkState::Up;
        }
    }

    /// (Host) the port is gone or the host gives up on the session: back to handshaking.
    pub fn drop_session(&mut self) {
        if self.session.is_some() {
            self.state = LinkState::Handshaking;
            self.hello_at_ms = None;
        }
    }

    /// What is due at `now_ms`. Call often; each call does at most one thing.
    pub fn poll(&mut self, now_ms: u64) -> LinkAction {
        let silent_ms = now_ms.saturating_sub(self.last_rx_ms);
        match self.state {
            LinkState::Disconnected => LinkAction::Idle,
            LinkState::Handshaking => {
                let due = self.hello_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= self.timers.hello_retry_ms.into());
                match (due, self.session) {
                    (true, Some(session)) => {
                        self.hello_at_ms = Some(now_ms);
                        LinkAction::SendHello { session }
                    }
                    _ => LinkAction::Idle,
                }
            }
            LinkState::Up | LinkState::Stale => {
                if silent_ms >= self.timers.down_ms.into() {
                    self.state = match self.role {
                        Role::Device => LinkState::Disconnected,
                        Role::Host => LinkState::Handshaking,
                    };
                    self.hello_at_ms = None;
                    return self.poll(now_ms);
                }
                if self.state == LinkState::Up && silent_ms >= self.timers.stale_ms.into() {
                    self.state = LinkState::Stale;
                    self.counters.stale = self.counters.stale.wrapping_add(1);
                }
                if now_ms.saturating_sub(self.last_tx_ms) >= self.timers.heartbeat_ms.into() {
                    LinkAction::SendHeartbeat
                } else {
                    LinkAction::Idle
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LinkTimers = LinkTimers { heartbeat_ms: 100, stale_ms: 300, down_ms: 1000, hello_retry_ms: 50 };

    /// A device goes up on a hello, heartbeats when idle, goes stale and down on silence, and a
    /// hello of the same session afterwards is a resume with a gap.
    #[test]
    fn device_lifecycle() {
        let mut d = LinkMachine::new(Role::Device, T);
        assert_eq!(d.poll(0), LinkAction::Idle);
        assert_eq!(d.on_hello(0, 0, 7, true), HelloOutcome::Reset);
        assert!(d.is_up());
        d.sent(0);
        assert_eq!(d.poll(50), LinkAction::Idle);
        assert_eq!(d.poll(100), LinkAction::SendHeartbeat);
        d.sent(100);
        d.on_receive(200, 1);
        assert_eq!(d.counters().rx_gaps, 0);
        d.poll(500);
        assert_eq!(d.state(), LinkState::Stale);
        assert_eq!(d.counters().stale, 1);
        d.poll(1200);
        assert_eq!(d.state(), LinkState::Disconnected);
        assert_eq!(d.on_hello(1300, 9, 7, false), HelloOutcome::Resumed);
        assert_eq!(d.counters().resumes, 1);
        assert_eq!(d.on_hello(1301, 10, 7, false), HelloOutcome::Refreshed);
        assert_eq!(d.on_hello(1302, 11, 8, false), HelloOutcome::NewSession);
    }

    /// Skipped ids are counted as gaps; a stale link comes back up on any message.
    #[test]
    fn gaps_and_recovery() {
        let mut d = LinkMachine::new(Role::Device, T);
        d.on_hello(0, 0, 1, true);
        d.on_receive(10, 1);
        d.on_receive(11, 1);
        assert_eq!(d.counters().rx_gaps, 0, "the same id again is a resend, not a gap");
        d.on_receive(20, 5);
        assert_eq!(d.counters().rx_gaps, 1);
        d.poll(400);
        assert_eq!(d.state(), LinkState::Stale);
        d.on_receive(410, 6);
        assert_eq!(d.state(), LinkState::Up);
        assert_eq!(d.counters().rx_gaps, 1);
    }

    /// The session id is the reset token: a reset hello repeated with the same session (its
    /// describe was lost) does not reset again; a reset with a new session does.
    #[test]
    fn reset_is_idempotent_per_session() {
        let mut d = LinkMachine::new(Role::Device, T);
        assert_eq!(d.on_hello(0, 0, 7, true), HelloOutcome::Reset);
        assert!(d.opened_by_reset());
        assert_eq!(d.on_hello(10, 1, 7, true), HelloOutcome::Refreshed);
        assert_eq!(d.on_hello(20, 2, 8, false), HelloOutcome::NewSession);
        assert!(!d.opened_by_reset());
        assert_eq!(d.on_hello(30, 3, 8, true), HelloOutcome::Reset, "a session not opened by a reset can be reset");
        assert_eq!(d.counters().sessions, 3);
    }

    /// One-byte ids (v1.1) wrap without counting a gap.
    #[test]
    fn byte_ids_wrap() {
        let mut d = LinkMachine::new(Role::Device, T);
        d.set_id_mask(0xff);
        d.on_hello(0, 254, 1, true);
        d.on_receive(1, 255);
        d.on_receive(2, 0);
        d.on_receive(3, 1);
        assert_eq!(d.counters().rx_gaps, 0);
    }

    /// A host retries its hello, goes up on the describe, and after a long silence goes back to
    /// handshaking with the same session by itself.
    #[test]
    fn host_reconnects() {
        let mut h = LinkMachine::new(Role::Host, T);
        h.connect(42);
        assert_eq!(h.poll(0), LinkAction::SendHello { session: 42 });
        assert_eq!(h.poll(10), LinkAction::Idle);
        assert_eq!(h.poll(50), LinkAction::SendHello { session: 42 });
        h.on_describe(60, Some(0), false);
        assert!(h.is_up());
        assert_eq!(h.poll(2000), LinkAction::SendHello { session: 42 });
        assert_eq!(h.state(), LinkState::Handshaking);
        h.on_describe(2010, Some(0), true);
        assert_eq!(h.counters().resumes, 1);
    }
}
