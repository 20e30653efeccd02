//! [`Fleet`]: N simulated boards, each behind its own host end of the link protocol (the core's
//! [`HostLink`]), stepped in lockstep on one virtual clock.
//!
//! Each tick of `step_us`, every board's host end asks its board to step to the tick's time on
//! the board's (skewed) clock, and bytes go back and forth through the board's faults until the
//! link is quiet. The events of the tick, from every board, are then handed on at once, ordered
//! by (time, board, arrival). Nothing runs per board in the caller's language and nothing reads
//! the wall clock: the same configuration gives the same run.
//!
//! A board that reboots (its reset plan) answers the next step with `no_session`; its host end
//! then says hello again (lockstep, same session), reads the route table and steps on. A step
//! whose bytes were lost is sent again after the reply timeout (virtual), so that board lags a
//! tick or two and then catches up.

use manyfold_core::framing::{decoder_buffer_len, encode_frame, frame_len_max, FrameDecoder};
use manyfold_core::link::host::{Answer, HostConfig, HostCounters, HostLink, HostSink};
use manyfold_core::link::{v11, Body, Describe, Event, Lineage, LinkTimers, NackReason, Step, Value};
use manyfold_core::taint::TaintSet;

use super::board::SimBoard;
use super::faults::{mix, skewed_us, BoardFaults, ByteFaults, FaultCounts, ResetPlan};

/// Routes whose references a board's host end keeps.
pub const ROUTES_MAX: usize = 256;

/// The host's message limit (as `LinkClient`'s default).
const MAX_MESSAGE: usize = 256;

/// Byte exchanges per board per tick, at most (each moves what one side sent).
const EXCHANGES_MAX: usize = 256;

/// Frames kept per recorded board, at most (the oldest go first).
pub const TRANSCRIPT_MAX: usize = 1 << 20;

/// Events kept per recorded board, at most (the oldest go first).
pub const EVENTS_KEPT_MAX: usize = 1 << 20;

/// The boards at most.
pub const BOARDS_MAX: usize = 100_000;

type Host = HostLink<Vec<u8>, Vec<u8>, Vec<u8>, ROUTES_MAX>;

/// What a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The board every device emulates ("lm3s6965evb", ...).
    pub board: String,
    /// Each board's partition image (one per board).
    pub images: Vec<Vec<u8>>,
    /// Each board's session id (the reset token of its first hello).
    pub sessions: Vec<u32>,
    /// The tick, in microseconds of fleet time.
    pub step_us: i64,
    /// Each board's faults (one per board).
    pub faults: Vec<BoardFaults>,
    /// The boards whose messages and events are kept (transcripts).
    pub record: Vec<usize>,
}

/// An event from board `board`, as its host end decoded it (with the link's taints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetEvent {
    /// The board's index in the fleet.
    pub board: u32,
    /// The device route's index in the partition's route table.
    pub route: u16,
    /// The route's sequence number (restarts after a reboot).
    pub seq: u32,
    /// Event time on the board's clock.
    pub time_us: i64,
    /// Control epoch.
    pub epoch: u32,
    /// Taints, the link's included.
    pub taints: TaintSet,
    /// Parents on the device.
    pub lineage: Lineage,
    /// The value.
    pub value: Value,
}

impl FleetEvent {
    fn of(board: u32, e: &Event) -> Self {
        FleetEvent { board, route: e.route, seq: e.seq, time_us: e.time_us, epoch: e.epoch, taints: e.taints, lineage: e.lineage, value: e.value }
    }

    /// The value as a float (as a host graph carries device values).
    pub fn value_f64(&self) -> f64 {
        match self.value {
            Value::Float(x) => x,
            Value::Int(n) => n as f64,
            Value::Bool(b) => f64::from(u8::from(b)),
        }
    }
}

/// What the fleet did to one board, and what its host end counted.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardReport {
    /// The board's index.
    pub board: usize,
    /// Its session id (the first).
    pub session: u32,
    /// Its clock skew.
    pub skew_ppm: i32,
    /// The device's time now (its clock).
    pub device_time_us: i64,
    /// The last step target sent (its clock).
    pub target_us: i64,
    /// True while its host end has a session up.
    pub ready: bool,
    /// Its host end's counters.
    pub host: HostCounters,
    /// Events handed on.
    pub events: u64,
    /// Events with at least one taint.
    pub events_tainted: u64,
    /// Every taint seen on its events.
    pub taints: TaintSet,
    /// Each device route's taints seen (by route index).
    pub route_taints: Vec<TaintSet>,
    /// Steps acknowledged.
    pub steps: u64,
    /// Steps refused or unanswered.
    pub steps_failed: u64,
    /// Reboots injected.
    pub resets: u64,
    /// Hellos sent again after a reboot or a failed handshake.
    pub rehellos: u64,
    /// Bytes lost and corrupted on the way to the board.
    pub to_device: FaultCounts,
    /// Bytes lost and corrupted on the way from the board.
    pub from_device: FaultCounts,
    /// Frames the board lost because its output was full.
    pub tx_lost: u32,
}

/// What a recorded board's link carried.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Each message the host end received, framed (as `LinkClient.transcript`).
    pub frames: Vec<Vec<u8>>,
    /// Each piece of bytes the board was given, after the faults.
    pub to_device: Vec<Vec<u8>>,
    /// What the board sent in answer to each piece (or to a poll), before the faults.
    pub from_device: Vec<Vec<u8>>,
    /// Events handed on, in order.
    pub events: Vec<FleetEvent>,
}

/// Where a board's host end puts what it writes and learns.
struct Sink {
    board: u32,
    out: Vec<u8>,
    events: Vec<FleetEvent>,
    no_session: bool,
    connect_failed: bool,
    reopen: bool,
    steps: u64,
    steps_failed: u64,
    transcript: Option<Transcript>,
    frame: Vec<u8>,
}

impl HostSink for Sink {
    fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    fn event(&mut self, event: &Event) {
        self.events.push(FleetEvent::of(self.board, event));
    }
    fn described(&mut self, _describe: &Describe<'_>, _resumed: bool) {}
    fn connect_failed(&mut self, _answer: Answer<'_>) {
        self.connect_failed = true;
    }
    fn answer(&mut self, _id: u32, answer: Answer<'_>) {
        // Only steps are asked for.
        match answer {
            Answer::Ack(_) => self.steps += 1,
            Answer::Nack(n) => {
                self.steps_failed += 1;
                if n.reason == NackReason::NoSession {
                    self.no_session = true;
                }
            }
            _ => self.steps_failed += 1,
        }
    }
    fn reopen(&mut self) {
        self.reopen = true;
    }
    fn message(&mut self, bytes: &[u8]) {
        let Some(t) = self.transcript.as_mut() else { return };
        if let Ok(n) = encode_frame(bytes, &mut self.frame, MAX_MESSAGE) {
            if t.frames.len() >= TRANSCRIPT_MAX {
                t.frames.remove(0);
            }
            t.frames.push(self.frame[..n].to_vec());
        }
    }
}

/// One board and its host end.
struct Board {
    sim: SimBoard,
    link: Host,
    sink: Sink,
    session: u32,
    skew_ppm: i32,
    to_device: ByteFaults,
    from_device: ByteFaults,
    resets: ResetPlan,
    reset_count: u64,
    rehellos: u64,
    target_us: i64,
    events: u64,
    events_tainted: u64,
    taints: TaintSet,
    route_taints: Vec<TaintSet>,
    scratch: Vec<u8>,
    bytes: Vec<u8>,
}

fn host_config(step_us: i64) -> HostConfig {
    // A lost step is sent again after two ticks (at least 200 ms), on fleet time.
    let reply_timeout_ms = (step_us / 500).clamp(200, 60_000) as u32;
    HostConfig {
        max_message: MAX_MESSAGE as u32,
        version_max: v11::VERSION,
        timers: LinkTimers { heartbeat_ms: 1_000, stale_ms: 3_000, down_ms: 10_000, hello_retry_ms: 500 },
        reply_timeout_ms,
        retries: 2,
    }
}

impl Board {
    fn new(index: usize, config: &FleetConfig) -> Result<Board, String> {
        let f = config.faults[index];
        let sim = SimBoard::new(&config.board, &config.images[index], 0, false).map_err(|e| format!("board {index}: {e}"))?;
        let host = host_config(config.step_us);
        let decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(MAX_MESSAGE)], MAX_MESSAGE).map_err(|e| e.to_string())?;
        let link = HostLink::new(host, decoder, vec![0u8; MAX_MESSAGE], vec![0u8; frame_len_max(MAX_MESSAGE)]);
        let seed = mix(f.seed, index as u64);
        let recorded = config.record.contains(&index);
        Ok(Board {
            sim,
            link,
            sink: Sink {
                board: index as u32,
                out: Vec::new(),
                events: Vec::new(),
                no_session: false,
                connect_failed: false,
                reopen: false,
                steps: 0,
                steps_failed: 0,
                transcript: recorded.then(Transcript::default),
                frame: vec![0; frame_len_max(MAX_MESSAGE)],
            },
            session: config.sessions[index],
            skew_ppm: f.skew_ppm,
            to_device: ByteFaults::new(seed ^ 1, f.drop, f.corrupt),
            from_device: ByteFaults::new(seed ^ 2, f.drop, f.corrupt),
            resets: ResetPlan::new(seed ^ 3, f.resets_per_hour, 0),
            reset_count: 0,
            rehellos: 0,
            target_us: 0,
            events: 0,
            events_tainted: 0,
            taints: TaintSet::EMPTY,
            route_taints: Vec::new(),
            scratch: Vec::new(),
            bytes: Vec::new(),
        })
    }

    /// The first hello: lockstep, reset at time 0 (as `sim.open(...).connect(lockstep=True,
    /// reset=True)`).
    fn start(&mut self) {
        self.link.connect(0, self.session, true, true, 0, true, &mut self.sink);
        self.exchange(0, 0);
    }

    /// Moves bytes both ways until neither side has anything to say (bounded).
    fn exchange(&mut self, now_ms: u64, local_us: i64) {
        for _ in 0..EXCHANGES_MAX {
            let mut moved = false;
            if !self.sink.out.is_empty() {
                std::mem::swap(&mut self.sink.out, &mut self.bytes);
                self.scratch.clear();
                self.to_device.pass(&self.bytes, &mut self.scratch);
                self.bytes.clear();
                self.sim.write(local_us, &self.scratch);
                if let Some(t) = self.sink.transcript.as_mut() {
                    t.to_device.push(self.scratch.clone());
                    t.from_device.push(self.sim.output().to_vec());
                }
                moved = true;
            }
            if !self.sim.output().is_empty() {
                self.sim.drain_output(&mut self.bytes);
                self.scratch.clear();
                self.from_device.pass(&self.bytes, &mut self.scratch);
                self.bytes.clear();
                let bytes = std::mem::take(&mut self.scratch);
                self.link.receive(now_ms, &bytes, &mut self.sink);
                self.scratch = bytes;
                moved = true;
            }
            self.recover(now_ms);
            if !moved {
                break;
            }
        }
    }

    /// A reboot's `no_session`, a failed handshake or a dead link: hello again.
    fn recover(&mut self, now_ms: u64) {
        if self.sink.reopen {
            self.sink.reopen = false;
            self.rehellos += 1;
            self.link.resume(now_ms, &mut self.sink);
        }
        if std::mem::take(&mut self.sink.no_session) | std::mem::take(&mut self.sink.connect_failed) {
            self.rehellos += 1;
            self.link.connect(now_ms, self.session, true, false, 0, true, &mut self.sink);
        }
    }

    /// One tick at fleet time `t_us`: reboot if due, timers, a step to the board's time.
    fn tick(&mut self, t_us: i64) {
        let now_ms = (t_us.max(0) / 1000) as u64;
        let local = skewed_us(t_us, self.skew_ppm);
        if self.resets.due(t_us) {
            self.reset_count += 1;
            self.sim.reboot(local);
            if let Some(t) = self.sink.transcript.as_mut() {
                t.to_device.push(Vec::new());
                t.from_device.push(self.sim.output().to_vec());
            }
        }
        self.exchange(now_ms, local);
        self.link.poll(now_ms, &mut self.sink);
        self.exchange(now_ms, local);
        if self.link.ready() && self.link.pending().is_none() && local > self.target_us {
            let step = Body::Step(Step { to_us: local, epoch: 0, seen_us: 0 });
            if self.link.request(now_ms, &step, &mut self.sink).is_ok() {
                self.target_us = local;
            }
            self.exchange(now_ms, local);
        }
    }

    /// Notes the tick's events (taints, counts, transcript) and moves them to `all`.
    fn collect(&mut self, all: &mut Vec<FleetEvent>) {
        for e in &self.sink.events {
            self.events += 1;
            if !e.taints.is_empty() {
                self.events_tainted += 1;
                self.taints = self.taints.join(e.taints);
                let r = usize::from(e.route);
                if r < ROUTES_MAX {
                    if self.route_taints.len() <= r {
                        self.route_taints.resize(r + 1, TaintSet::EMPTY);
                    }
                    self.route_taints[r] = self.route_taints[r].join(e.taints);
                }
            }
        }
        if let Some(t) = self.sink.transcript.as_mut() {
            if t.events.len() + self.sink.events.len() > EVENTS_KEPT_MAX {
                let over = (t.events.len() + self.sink.events.len()).saturating_sub(EVENTS_KEPT_MAX).min(t.events.len());
                t.events.drain(..over);
            }
            t.events.extend_from_slice(&self.sink.events);
        }
        all.append(&mut self.sink.events);
    }

    fn report(&self, index: usize) -> BoardReport {
        BoardReport {
            board: index,
            session: self.session,
            skew_ppm: self.skew_ppm,
            device_time_us: self.sim.time_us(),
            target_us: self.target_us,
            ready: self.link.ready(),
            host: self.link.counters(),
            events: self.events,
            events_tainted: self.events_tainted,
            taints: self.taints,
            route_taints: self.route_taints.clone(),
            steps: self.sink.steps,
            steps_failed: self.sink.steps_failed,
            resets: self.reset_count,
            rehellos: self.rehellos,
            to_device: self.to_device.counts,
            from_device: self.from_device.counts,
            tx_lost: self.sim.tx_lost(),
        }
    }
}

/// N boards in lockstep on one virtual clock. See the module docs.
pub struct Fleet {
    boards: Vec<Board>,
    step_us: i64,
    now_us: i64,
    merged: Vec<FleetEvent>,
}

impl Fleet {
    /// Boots every board and opens its session (lockstep, reset at time 0). The error is one
    /// sentence.
    pub fn new(config: FleetConfig) -> Result<Fleet, String> {
        let n = config.images.len();
        if n == 0 {
            return Err("a fleet needs at least one board".into());
        }
        if n > BOARDS_MAX {
            return Err(format!("a fleet holds at most {BOARDS_MAX} boards, got {n}"));
        }
        if config.sessions.len() != n || config.faults.len() != n {
            return Err(format!(
                "a fleet of {n} boards needs {n} sessions and {n} fault settings, got {} and {}",
                config.sessions.len(),
                config.faults.len()
            ));
        }
        if config.step_us <= 0 {
            return Err(format!("step_us must be more than 0, got {}", config.step_us));
        }
        if let Some(r) = config.record.iter().find(|r| **r >= n) {
            return Err(format!("cannot record board {r}: the fleet has boards 0 to {}", n - 1));
        }
        for (i, f) in config.faults.iter().enumerate() {
            f.check().map_err(|e| format!("board {i}: {e}"))?;
        }
        let mut boards = Vec::with_capacity(n);
        for i in 0..n {
            let mut b = Board::new(i, &config)?;
            b.start();
            boards.push(b);
        }
        Ok(Fleet { boards, step_us: config.step_us, now_us: 0, merged: Vec::new() })
    }

    /// The boards.
    pub fn len(&self) -> usize {
        self.boards.len()
    }

    /// Never: a fleet has a board at least.
    pub fn is_empty(&self) -> bool {
        self.boards.is_empty()
    }

    /// Fleet time: the last tick run.
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// The tick.
    pub fn step_us(&self) -> i64 {
        self.step_us
    }

    /// Runs ticks until fleet time reaches `t_us` (the last tick may be shorter). After each
    /// tick, `sink(tick_us, events)` gets its events, ordered by (time, board, arrival).
    pub fn run_to(&mut self, t_us: i64, sink: &mut dyn FnMut(i64, &[FleetEvent])) {
        while self.now_us < t_us {
            let next = (self.now_us + self.step_us).min(t_us);
            self.tick(next);
            sink(next, &self.merged);
        }
    }

    fn tick(&mut self, t_us: i64) {
        self.now_us = t_us;
        self.merged.clear();
        for b in self.boards.iter_mut() {
            b.tick(t_us);
            b.collect(&mut self.merged);
        }
        // Stable: events of one board at one time keep their arrival order.
        self.merged.sort_by_key(|e| (e.time_us, e.board));
    }

    /// Board `i`'s report (None past the fleet).
    pub fn board(&self, i: usize) -> Option<BoardReport> {
        self.boards.get(i).map(|b| b.report(i))
    }

    /// Board `i`'s transcript, when it is recorded.
    pub fn transcript(&self, i: usize) -> Option<&Transcript> {
        self.boards.get(i).and_then(|b| b.sink.transcript.as_ref())
    }

    /// Board `i`'s image.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        self.boards.get(i).map(|b| b.sim.image())
    }
}
