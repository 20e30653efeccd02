//! The step executor: runs a loaded [`Partition`] one call at a time.
//!
//! `step(now_us, inbox, outbox)` applies the host's messages (events, queries, lockstep steps),
//! fires everything that is due (sources, latest emissions, write-binding actuators) up to
//! the target time, runs the operators, and sends what the host must see (events on routes to
//! the host, acks, nacks, replies) to the [`Outbox`]. It reads no clock and allocates nothing,
//! so the board's timer loop, a host driving it in lockstep and the Python simulation get the
//! same outputs, byte for byte, from the same inputs.
//!
//! # Time
//! Free-running, the executor's time is the caller's `now_us` (plus an offset that keeps it
//! monotonic across a lockstep period). In lockstep it moves only with `step` messages: a step
//! to `T` fires everything due up to `T`, in order, then acks with `info = T`.
//!
//! # Order (what makes runs reproducible)
//! - Inbox messages are handled in order; each one's outputs are sent before the next is read.
//! - Timers fire by (due time, class, index), classes in the order latest emissions,
//!   write-binding actuators, sources. (Time windows close on event time, not on a timer.)
//! - After each stimulus (a host event or a timer) the nodes are swept once in table order,
//!   each draining its mailbox. Nodes are in topological order (the image decoder checks it),
//!   so one sweep reaches quiescence.
//!
//! # Bounds
//! At most [`FIRES_PER_CALL`] timers fire per call; a step that needs more keeps the executor
//! busy (`step` returns true) until later calls finish it, and inbox messages passed meanwhile
//! are refused with `NackReason::Busy`. A node's mailbox can only be fed by earlier nodes,
//! sources and the host, so draining it is bounded by its capacity.

use crate::image::{
    overflow_code, to_value, ImageError, Latest, Route, Source, Item, Node, Op, PaneTag, Partition, Producer, Tag, ValueKind, Waveform,
    Window, LINK_TO_HOST,
};
use crate::kernels::{Accepted, Aggregate, Applied, Insert, WindowOutput};
use crate::link::msg::{Capacities, PAGE_LEN_MAX};
use crate::link::v11::RouteCtx;
use crate::link::{
    Ack, Body, BoardInfo, Counters, Event, FlowInfo, Items, Lineage, Message, Nack, NackReason, NodeInfo, Page,
    PageItem, Query, QueryKind, Reply, ReplyBody, RouteInfo, SourceInfo, TaintInfo, Value,
};
use crate::taint::{Taint, TaintSet};

/// Timers fired per call at most.
pub const FIRES_PER_CALL: usize = 32;


/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Longer than the link's `max_message`.
    TooLong,
    /// No room now (or the link is down).
    Full,
}

/// Where the executor's messages go: the link layer encodes and frames them.
pub trait Outbox {
    /// Sends one message.
    fn send(&mut self, body: &Body<'_>) -> Result<(), SendError>;
    /// Sends an event on a route to the host; `ctx` says what the host already knows of the
    /// route, so the link can leave it out (docs/wire.md 2.5).
    fn send_event(&mut self, event: &Event, ctx: RouteCtx) -> Result<(), SendError> {
        let _ = ctx;
        self.send(&Body::Event(*event))
    }
    /// Answers a `latest` query with the route's last event, if any; `epoch_now` is the
    /// control epoch in force (the reply names the event's epoch only when it differs).
    fn send_latest(&mut self, ref_id: u32, latest: Option<(Event, RouteCtx)>, epoch_now: u32) -> Result<(), SendError> {
        let _ = epoch_now;
        self.send(&Body::Reply(Reply { ref_id, body: ReplyBody::Latest(latest.map(|(e, _)| e)) }))
    }
    /// True when events on routes to the host may be sent now.
    fn link_up(&self) -> bool {
        true
    }
    /// The link layer's counters; the executor fills in its own fields.
    fn counters(&self) -> Counters {
        Counters::default()
    }
    /// Board facts (uptime, stack peak); the executor fills in time, mode and capacities.
    fn board(&self) -> BoardInfo {
        BoardInfo::default()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ExecCounters {
    events_in: u32,
    events_out: u32,
    events_unsent: u32,
    mailbox_dropped: u32,
    late: u32,
    sampled: u32,
    steps: u32,
    source_events: u32,
}

/// One value an operator or timer produces.
#[derive(Debug, Clone, Copy)]
struct Out {
    route: u16,
    value: f64,
    time_us: i64,
    taints: TaintSet,
    lineage: Lineage,
}


#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    LatestEmit(u16),
    Actuator(u16),
    Source(u16),
}

/// The executor over a partition with capacities `R, N, S, W, Q, P` (see [`Partition`]).
#[derive(Debug, Clone)]
pub struct Exec<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> {
    part: Partition<R, N, S, W, Q, P>,
    status: Result<(), ImageError>,
    now_us: i64,
    epoch: u32,
    lockstep: bool,
    offset_us: i64,
    step: Option<(u32, i64)>,
    counters: ExecCounters,
}

impl<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Default
    for Exec<R, N, S, W, Q, P>
{
    fn default() -> Self {
        Self::new()
    }
}

fn from_value(v: Value) -> (ValueKind, f64) {
    match v {
        Value::Float(x) => (ValueKind::Float, x),
        Value::Int(n) => (ValueKind::Int, n as f64),
        Value::Bool(b) => (ValueKind::Bool, if b { 1.0 } else { 0.0 }),
    }
}

/// SplitMix64: a small, well-mixed, seedable generator (the same on every host).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in `[-1, 1)`.
fn symmetric(state: &mut u64) -> f64 {
    let unit = (splitmix64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    2.0 * unit - 1.0
}

/// The output of a closed window: its aggregate at the window's last microsecond (`end - 1`),
/// with the taints of its values plus `extra`. `tags` are the pane slots' [`PaneTag`]s; the
/// lineage starts at the first value of the window's first pane that held any.
fn window_out(o: &WindowOutput, aggregate: Aggregate, ids: (u16, u16), tags: &[PaneTag], extra: TaintSet) -> Option<Out> {
    let value = o.acc.result(aggregate)?;
    let count = o.acc.count.min(u64::from(u32::MAX)) as u32;
    let len = tags.len() as i64;
    let mut taints = if o.forced { extra.with(Taint::SchedForcedClose) } else { extra };
    let mut first_seq = None;
    // At most panes-per-window, fewer than the slot count.
    for p in o.first_pane..=o.last_pane {
        if let Some(&(held, seq, t)) = tags.get(p.rem_euclid(len.max(1)) as usize) {
            if held == p {
                first_seq = first_seq.or(Some(seq));
                taints = taints.join(t);
            }
        }
    }
    let (input, output) = ids;
    Some(Out {
        route: output,
        value,
        time_us: o.end_us.saturating_sub(1),
        taints,
        // Exact when the input arrives in event-time order, as device sources do: the window
        // holds `count` consecutive values from its first pane's first one.
        lineage: Lineage { route: input, first_seq: first_seq.unwrap_or(0), count },
    })
}

/// Publishes a write the actuator applied at `now`: `reported`, then `effective`.
fn emit_applied<O: Outbox, const Q: usize>(sink: &mut Sink<'_, O, Q>, a: Applied<f64, u32>, routes: (u16, u16, u16), now: i64, extra: TaintSet) {
    let (input, reported, effective) = routes;
    let (taints, lineage) = (a.taints.join(extra), Lineage { route: input, first_seq: a.first, count: a.count });
    sink.emit(Out { route: reported, value: a.value, time_us: now, taints, lineage }, None);
    sink.emit(Out { route: effective, value: a.value, time_us: now, taints, lineage }, None);
}

/// The next value of a source (and its generator and walk state moved on).
fn source_value(src: &mut Source) -> f64 {
    let noise = if src.noise > 0.0 && src.waveform != Waveform::RandomWalk { symmetric(&mut src.rng) * src.noise } else { 0.0 };
    match src.waveform {
        Waveform::Constant => src.center + noise,
        Waveform::Triangle => {
            let cycle = u64::from(src.cycle.max(1));
            let x = (src.tick % cycle) as f64 / cycle as f64;
            let distance = if x < 0.5 { 0.5 - x } else { x - 0.5 };
            src.center + src.amplitude * (1.0 - 4.0 * distance) + noise
        }
        Waveform::RandomWalk => {
            let step = if src.noise > 0.0 { symmetric(&mut src.rng) * src.noise } else { 0.0 };
            let (low, high) = (src.center - src.amplitude, src.center + src.amplitude);
            let next = src.walk + step;
            src.walk = if next < low {
                low
            } else if next > high {
                high
            } else {
                next
            };
            src.walk
        }
    }
}

/// Where published events go: the route table, the mailboxes of the nodes that may consume
/// them, the counters, and the outbox.
struct Sink<'a, O, const Q: usize> {
    routes: &'a mut [Route],
    consumers: &'a mut [Node<Q>],
    counters: &'a mut ExecCounters,
    epoch: u32,
    outbox: &'a mut O,
}

impl<O: Outbox, const Q: usize> Sink<'_, O, Q> {
    /// Publishes on a route: stamps seq and taints, records it as the latest, sends it to the
    /// host if it is a link route, and offers it to every consumer's mailbox. `host_seq` is
    /// the seq of a host event.
    fn emit(&mut self, out: Out, host_seq: Option<u32>) {
        let Some(route) = self.routes.get_mut(usize::from(out.route)) else { return };
        let seq = host_seq.unwrap_or(route.seq.wrapping_add(1));
        let epoch = self.epoch;
        route.seq = seq;
        let taints = out.taints.join(core::mem::take(&mut route.pending));
        route.seen = route.seen.join(taints);
        route.latest = Latest { value: out.value, time_us: out.time_us, epoch, taints, lineage: out.lineage };
        if route.link & LINK_TO_HOST != 0 {
            let event = Event {
                route: out.route,
                seq,
                time_us: out.time_us,
                epoch,
                taints,
                lineage: out.lineage,
                value: to_value(route.kind, out.value),
            };
            let ctx = RouteCtx { announced: route.announced, declared: route.declared() };
            if self.outbox.link_up() && self.outbox.send_event(&event, ctx).is_ok() {
                self.counters.events_out = self.counters.events_out.wrapping_add(1);
            } else {
                // Not sent: count it, and the host will see delivery_dropped on the next one.
                self.counters.events_unsent = self.counters.events_unsent.wrapping_add(1);
                route.pending = route.pending.with(Taint::DeliveryDropped);
            }
        }
        let item = Item { value: out.value, time_us: out.time_us, seq, taints };
        for node in self.consumers.iter_mut().filter(|n| n.input == out.route) {
            if !offer(node, item) {
                self.counters.mailbox_dropped = self.counters.mailbox_dropped.wrapping_add(1);
            }
        }
    }
}

impl<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Exec<R, N, S, W, Q, P> {
    /// An executor with no partition (status `HeaderEmpty`).
    pub fn new() -> Self {
        Exec {
            part: Partition::default(),
            status: Err(ImageError::HeaderEmpty),
            now_us: 0,
            epoch: 0,
            lockstep: false,
            offset_us: 0,
            step: None,
            counters: ExecCounters::default(),
        }
    }

    /// The capacities of this executor's tables.
    pub fn capacities() -> Capacities {
        let c = |n: usize| n.min(u16::MAX.into()) as u16;
        Capacities { routes: c(R), nodes: c(N), sources: c(S), windows: c(W), mailbox_depth: c(Q), window_slots: c(P) }
    }

    /// Loads (or reloads) the image in `region`, starting the partition at `start_us`: every
    /// state, counter and sequence number starts again. On error the executor has no partition
    /// and [`Exec::status`] says why.
    pub fn load(&mut self, region: &[u8], start_us: i64) -> Result<(), ImageError> {
        self.status = self.part.load(region, start_us);
        self.now_us = start_us;
        self.epoch = 0;
        self.step = None;
        self.counters = ExecCounters::default();
        self.status
    }

    /// `Ok` when a partition is loaded, else why not.
    pub fn status(&self) -> Result<(), ImageError> {
        self.status
    }

    /// The loaded partition.
    pub fn partition(&self) -> &Partition<R, N, S, W, Q, P> {
        &self.part
    }

    /// The executor's time.
    pub fn time_us(&self) -> i64 {
        self.now_us
    }

    /// True in lockstep.
    pub fn is_lockstep(&self) -> bool {
        self.lockstep
    }

    /// True while a step is not finished: call [`Exec::step`] again with an empty inbox.
    pub fn busy(&self) -> bool {
        self.step.is_some()
    }

    /// Enters lockstep at the executor's time: from now on time moves only with steps. (A
    /// reset hello chooses the start time with [`Exec::load`]; no other hello moves time.)
    pub fn enter_lockstep(&mut self) {
        self.lockstep = true;
    }

    /// Leaves lockstep: time follows the caller's clock from here, continuing from where it
    /// was: no jump and no catch-up (the offset to the caller's clock may be negative).
    pub fn set_free_running(&mut self, board_now_us: i64) {
        self.lockstep = false;
        self.step = None;
        self.offset_us = self.now_us.saturating_sub(board_now_us);
    }

    /// The control epoch in force (set by steps; 0 after a load).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Forgets which routes the host knows (a new or resumed session): their next events go
    /// in full form until a routes reply announces them again.
    pub fn unannounce_routes(&mut self) {
        for route in self.part.routes.iter_mut() {
            route.announced = false;
        }
    }

    /// Marks the next event of every route to the host with `delivery_dropped`: the link was
    /// interrupted, so events may have been lost on the way.
    pub fn taint_link_routes(&mut self) {
        for route in self.part.routes.iter_mut().filter(|r| r.link & LINK_TO_HOST != 0) {
            route.pending = route.pending.with(Taint::DeliveryDropped);
        }
    }

    /// Handles `inbox`, then fires what is due. Returns true while busy (see the module docs).
    pub fn step<O: Outbox>(&mut self, board_now_us: i64, inbox: &[Message<'_>], outbox: &mut O) -> bool {
        for message in inbox {
            if self.busy() {
                nack(outbox, message.id, NackReason::Busy, 0);
                continue;
            }
            self.handle(board_now_us, message, outbox);
        }
        self.run_timers(board_now_us, outbox);
        self.busy()
    }

    fn handle<O: Outbox>(&mut self, board_now_us: i64, message: &Message<'_>, outbox: &mut O) {
        let id = message.id;
        match &message.body {
            Body::Event(e) => self.host_event(id, e, outbox),
            Body::Query(q) => self.query(id, q, outbox),
            Body::Step(s) => {
                if !self.lockstep {
                    nack(outbox, id, NackReason::NotLockstep, 0);
                } else if s.to_us < self.now_us {
                    nack(outbox, id, NackReason::StepBackwards, 0);
                } else {
                    self.epoch = s.epoch;
                    self.step = Some((id, s.to_us));
                }
            }
            Body::Resume => {
                self.set_free_running(board_now_us);
                ack(outbox, id, self.now_us);
            }
            _ => nack(outbox, id, NackReason::KindUnexpected, message.body.kind() as u32),
        }
    }

    // --- timers ---------------------------------------------------------------------------------

    fn run_timers<O: Outbox>(&mut self, board_now_us: i64, outbox: &mut O) {
        let target = match (self.lockstep, self.step) {
            (true, Some((_, to))) => to,
            // In lockstep, timers fire only inside steps: what is due at the start time fires
            // with the first step, at the same point of the output on every host.
            (true, None) => return,
            (false, _) => board_now_us.saturating_add(self.offset_us).max(self.now_us),
        };
        for _ in 0..FIRES_PER_CALL {
            let Some((due, timer)) = self.next_timer(target) else {
                self.now_us = target;
                if let Some((id, _)) = self.step.take() {
                    self.counters.steps = self.counters.steps.wrapping_add(1);
                    ack(outbox, id, self.now_us);
                }
                return;
            };
            self.now_us = self.now_us.max(due);
            self.fire(timer, outbox);
        }
    }

    fn next_timer(&self, target: i64) -> Option<(i64, Timer)> {
        let mut best: Option<(i64, Timer)> = None;
        let mut consider = |due: i64, timer: Timer| {
            if due <= target && best.is_none_or(|b| (due, timer) < b) {
                best = Some((due, timer));
            }
        };
        for (i, node) in self.part.nodes.iter().enumerate() {
            let i = i as u16;
            let due = match &node.op {
                Op::Latest(l) => l.due_us().map(|d| (d, Timer::LatestEmit(i))),
                Op::WriteBinding { binding, .. } => binding.due_us().map(|d| (d, Timer::Actuator(i))),
                _ => None,
            };
            if let Some((d, timer)) = due {
                consider(d, timer);
            }
        }
        for (s, source) in self.part.sources.iter().enumerate() {
            consider(source.next_us, Timer::Source(s as u16));
        }
        best
    }

    fn fire<O: Outbox>(&mut self, timer: Timer, outbox: &mut O) {
        let now = self.now_us;
        let epoch = self.epoch;
        let Partition { routes, nodes, sources, .. } = &mut self.part;
        let counters = &mut self.counters;
        match timer {
            Timer::Source(s) => {
                let Some(src) = sources.get_mut(usize::from(s)) else { return };
                let value = source_value(src);
                let taints = if src.noise > 0.0 { TaintSet::of(Taint::DetSeededEntropy) } else { TaintSet::EMPTY };
                let lineage = Lineage { route: src.route, first_seq: 0, count: 0 };
                src.tick = src.tick.wrapping_add(1);
                src.next_us = src.next_us.saturating_add(src.period_us);
                counters.source_events = counters.source_events.wrapping_add(1);
                let mut sink = Sink { routes, consumers: nodes, counters, epoch, outbox };
                sink.emit(Out { route: src.route, value, time_us: now, taints, lineage }, None);
            }
            Timer::LatestEmit(i) | Timer::Actuator(i) => {
                let i = usize::from(i);
                if i >= nodes.len() {
                    return;
                }
                // A node's outputs go only to later nodes (topological order).
                let (head, consumers) = nodes.split_at_mut(i + 1);
                let node = &mut head[i];
                let (input, output) = (node.input, node.output);
                let mut sink = Sink { routes, consumers, counters, epoch, outbox };
                match &mut node.op {
                    Op::Latest(l) => {
                        if let Some(s) = l.fire(now) {
                            let ((value, time_us), taints) = (s.value, s.taints.join(core::mem::take(&mut node.pending)));
                            let lineage = Lineage { route: input, first_seq: s.first, count: s.count };
                            sink.emit(Out { route: output, value, time_us, taints, lineage }, None);
                        }
                    }
                    Op::WriteBinding { reported, binding } => {
                        if let Some(a) = binding.fire(now) {
                            emit_applied(&mut sink, a, (input, *reported, output), now, core::mem::take(&mut node.pending));
                        }
                    }
                    _ => {}
                }
            }
        }
        self.sweep(outbox);
    }

    // --- events ---------------------------------------------------------------------------------

    /// Runs every node once over its mailbox, in table (topological) order.
    fn sweep<O: Outbox>(&mut self, outbox: &mut O) {
        for i in 0..self.part.nodes.len() {
            // Bounded by the mailbox's capacity: only earlier nodes feed node i.
            for _ in 0..Q {
                let Some(item) = self.part.nodes.get_mut(i).and_then(|n| n.mailbox.take()) else { break };
                self.run_node(i, item, outbox);
            }
        }
    }

    /// Runs node `i` on one input; its outputs go straight to the routes and to the later
    /// nodes' mailboxes (no output buffer: this runs on a board's stack).
    fn run_node<O: Outbox>(&mut self, i: usize, item: Item, outbox: &mut O) {
        let now = self.now_us;
        let epoch = self.epoch;
        let Partition { routes, nodes, windows, .. } = &mut self.part;
        if i >= nodes.len() {
            return;
        }
        let (head, consumers) = nodes.split_at_mut(i + 1);
        let node = &mut head[i];
        let counters = &mut self.counters;
        let (input, output) = (node.input, node.output);
        let pending = core::mem::take(&mut node.pending);
        let taints = item.taints.join(pending);
        let one = |value: f64, taints: TaintSet| Out {
            route: output,
            value,
            time_us: item.time_us,
            taints,
            lineage: Lineage { route: input, first_seq: item.seq, count: 1 },
        };
        let v = item.value;
        match &mut node.op {
            Op::Threshold(t) => {
                if t.pass(v) {
                    Sink { routes, consumers, counters, epoch, outbox }.emit(one(v, taints), None);
                }
            }
            Op::Deadband(d) => {
                if d.pass(v) {
                    Sink { routes, consumers, counters, epoch, outbox }.emit(one(v, taints), None);
                }
            }
            Op::Scale(s) => {
                Sink { routes, consumers, counters, epoch, outbox }.emit(one(s.apply(v), taints), None);
            }
            Op::CountWindow { window, aggregate, .. } => {
                let Some(Window::Count(w)) = windows.get_mut(usize::from(*window)) else { return };
                if let Some(acc) = w.push(v, Tag { seq: item.seq, taints }) {
                    if let Some(value) = acc.result(*aggregate) {
                        let joined = w.tags().fold(TaintSet::EMPTY, |t, tag| t.join(tag.taints));
                        let first_seq = w.tags().next().map_or(item.seq, |t| t.seq);
                        let lineage = Lineage { route: input, first_seq, count: w.size() as u32 };
                        let out = Out { route: output, value, time_us: item.time_us, taints: joined, lineage };
                        Sink { routes, consumers, counters, epoch, outbox }.emit(out, None);
                    }
                }
            }
            Op::TimeWindow { window, aggregate, .. } => {
                let Some(Window::Time(w, tags)) = windows.get_mut(usize::from(*window)) else { return };
                let agg = *aggregate;
                let mut sink = Sink { routes, consumers, counters, epoch, outbox };
                // The node's losses go with its next output; its values' taints with their panes.
                let mut extra = pending;
                let mut emit = |o: WindowOutput| {
                    if let Some(out) = window_out(&o, agg, (input, output), tags, core::mem::take(&mut extra)) {
                        sink.emit(out, None);
                    }
                };
                // The watermark is the largest event time seen: windows that end by this value's
                // time close first, so they never contain it.
                w.advance(item.time_us, &mut emit);
                let outcome = w.insert(item.time_us, v, &mut emit);
                match outcome {
                    Insert::Accepted { pane } => {
                        let slot = pane.rem_euclid(tags.len().max(1) as i64) as usize;
                        if let Some(tag) = tags.get_mut(slot) {
                            *tag = if tag.0 == pane { (pane, tag.1, tag.2.join(item.taints)) } else { (pane, item.seq, item.taints) };
                        }
                    }
                    Insert::Late => {
                        sink.counters.late = sink.counters.late.wrapping_add(1);
                        extra = extra.with(Taint::DeliveryDropped);
                    }
                }
                node.pending = extra;
            }
            Op::RateLimit { limiter, pending } => {
                if limiter.admit(item.time_us) {
                    let out = one(v, taints.join(core::mem::take(pending)));
                    Sink { routes, consumers, counters, epoch, outbox }.emit(out, None);
                } else {
                    counters.sampled = counters.sampled.wrapping_add(1);
                    *pending = pending.with(Taint::DeliverySampled);
                }
            }
            Op::Latest(l) => {
                l.offer(now, (v, item.time_us), item.seq, taints);
            }
            Op::WriteBinding { reported, binding } => {
                let mut sink = Sink { routes, consumers, counters, epoch, outbox };
                match binding.offer(now, v, item.seq, taints) {
                    Accepted::Applied(a) => emit_applied(&mut sink, a, (input, *reported, output), now, TaintSet::EMPTY),
                    // Until the actuator reports, the old setting is what is in effect.
                    Accepted::Pending { in_effect: Some(old), .. } => sink.emit(one(old.value, old.taints), None),
                    Accepted::Pending { in_effect: None, .. } => {}
                }
            }
        }
    }

    fn host_event<O: Outbox>(&mut self, id: u32, e: &Event, outbox: &mut O) {
        if self.status.is_err() {
            return nack(outbox, id, NackReason::NoImage, 0);
        }
        let Some(route) = self.part.routes.get(usize::from(e.route)) else {
            return nack(outbox, id, NackReason::RouteUnknown, e.route.into());
        };
        if route.producer != Producer::Host {
            return nack(outbox, id, NackReason::RouteNotInbound, e.route.into());
        }
        let (kind, value) = from_value(e.value);
        if kind != route.kind {
            return nack(outbox, id, NackReason::ValueKindMismatch, route.kind as u32);
        }
        if e.seq <= route.seq {
            return nack(outbox, id, NackReason::SeqNotIncreasing, route.seq);
        }
        let mut taints = e.taints;
        if e.seq > route.seq.wrapping_add(1) {
            // Host events were lost before this one.
            taints = taints.with(Taint::DeliveryDropped);
        }
        // An event's time is its producer's (the host's, in the device's time base): kept as it
        // is, and it never moves the device's clock. Operators that read event time see it as
        // such: a time window counts a value behind a closed window as late.
        let time_us = e.time_us;
        self.counters.events_in = self.counters.events_in.wrapping_add(1);
        // The device records a host event with the epoch in force and no lineage: its parents
        // live in the host's graph, linked by (route, seq).
        let out = Out { route: e.route, value, time_us, taints, lineage: Lineage::default() };
        let Partition { routes, nodes, .. } = &mut self.part;
        let mut sink = Sink { routes, consumers: nodes, counters: &mut self.counters, epoch: self.epoch, outbox };
        sink.emit(out, Some(e.seq));
        self.sweep(outbox);
        ack(outbox, id, self.now_us);
    }

    // --- queries --------------------------------------------------------------------------------

    // Not inlined: its temporaries (counters, board facts, pages) would otherwise sit in the
    // stack frame of every step, under the deepest path (timers, operators, sends).
    #[inline(never)]
    // The closures name a variant: its constructor alone is not general enough over lifetimes.
    #[allow(clippy::redundant_closure)]
    fn query<O: Outbox>(&mut self, id: u32, q: &Query, outbox: &mut O) {
        let Some(kind) = QueryKind::from_code(q.what.into()) else {
            return nack(outbox, id, NackReason::QueryUnknown, q.what.into());
        };
        let part = &self.part;
        let start = u16::try_from(q.arg).unwrap_or(u16::MAX);
        match kind {
            QueryKind::Routes => {
                let sent = send_page(outbox, id, part.routes.len(), start, |p| ReplyBody::Routes(p), &|i| {
                    let r = &part.routes[i];
                    RouteInfo { id: r.id, schema: r.schema, kind: r.kind as u8, link: r.link, seq: r.seq, taints: Some(r.declared()) }
                });
                // The host now holds these routes' references: their events may go short.
                let from = usize::from(start);
                for route in self.part.routes.iter_mut().skip(from).take(sent) {
                    route.announced = true;
                }
            }
            QueryKind::Nodes => {
                send_page(outbox, id, part.nodes.len(), start, |p| ReplyBody::Nodes(p), &|i| node_info(&part.nodes[i]));
            }
            QueryKind::Sources => {
                send_page(outbox, id, part.sources.len(), start, |p| ReplyBody::Sources(p), &|i| {
                    let s = &part.sources[i];
                    SourceInfo { route: s.route, waveform: s.waveform as u8, period_us: clamp_u32(s.period_us), phase_us: clamp_u32(s.phase_us) }
                });
            }
            QueryKind::Flow => {
                send_page(outbox, id, part.nodes.len(), start, |p| ReplyBody::Flow(p), &|i| {
                let mb = &part.nodes[i].mailbox;
                let c = mb.counters();
                FlowInfo {
                    node: i as u16,
                    depth: mb.depth() as u16,
                    capacity: mb.capacity() as u16,
                    accepted: c.accepted as u32,
                    delivered: c.delivered as u32,
                    dropped: c.dropped() as u32,
                    refused: (c.blocked + c.rejected) as u32,
                    depth_max: c.depth_max as u16,
                }
                });
            }
            QueryKind::Taints => {
                send_page(outbox, id, part.routes.len(), start, |p| ReplyBody::Taints(p), &|i| {
                    let r = &part.routes[i];
                    TaintInfo { route: i as u16, seen: r.seen, pending: r.pending }
                });
            }
            QueryKind::Latest => match part.routes.get(q.arg as usize) {
                Some(r) => {
                    // Only a route whose every event reaches the host keeps the host's sequence
                    // reference current: the others' latest goes in full form.
                    let ctx = RouteCtx { announced: r.announced && r.link & LINK_TO_HOST != 0, declared: r.declared() };
                    let latest = r.latest_event(q.arg as u16).map(|e| (e, ctx));
                    let _ = outbox.send_latest(id, latest, self.epoch);
                }
                None => nack(outbox, id, NackReason::QueryBadArg, q.arg),
            },
            QueryKind::Counters => {
                let mut c = outbox.counters();
                let x = &self.counters;
                c.events_in = x.events_in;
                c.events_out = x.events_out;
                c.events_unsent = x.events_unsent;
                c.mailbox_dropped = x.mailbox_dropped;
                c.late = x.late;
                c.sampled = x.sampled;
                c.steps = x.steps;
                c.source_events = x.source_events;
                reply(outbox, id, ReplyBody::Counters(c));
            }
            QueryKind::Board => {
                let mut b = outbox.board();
                b.lockstep = self.lockstep;
                b.time_us = self.now_us;
                b.capacities = Self::capacities();
                reply(outbox, id, ReplyBody::Board(b));
            }
        }
    }
}

fn clamp_u32(x: i64) -> u32 {
    x.clamp(0, u32::MAX.into()) as u32
}

fn node_info<const Q: usize>(node: &Node<Q>) -> NodeInfo {
    let output2 = match node.op {
        Op::WriteBinding { reported, .. } => Some(reported),
        _ => None,
    };
    NodeInfo {
        op: node.op.code() as u8,
        input: node.input,
        output: node.output,
        output2,
        capacity: node.mailbox.capacity() as u16,
        overflow: overflow_code(node.mailbox.overflow()),
    }
}

/// Offers an item to a node's mailbox; false when an item was lost or refused (then the node's
/// next output carries `delivery_dropped`).
fn offer<const Q: usize>(node: &mut Node<Q>, item: Item) -> bool {
    use crate::mailbox::Offer;
    match node.mailbox.offer(item) {
        Offer::Accepted => true,
        Offer::AcceptedEvicting(_) | Offer::DroppedNewest(_) | Offer::Rejected(_) | Offer::MustWait(_) => {
            // A device has no producer to push back on: block and reject lose the item too.
            node.pending = node.pending.with(Taint::DeliveryDropped);
            false
        }
    }
}

fn ack<O: Outbox>(outbox: &mut O, ref_id: u32, info: i64) {
    let _ = outbox.send(&Body::Ack(Ack { ref_id, info }));
}

fn nack<O: Outbox>(outbox: &mut O, ref_id: u32, reason: NackReason, detail: u32) {
    let _ = outbox.send(&Body::Nack(Nack { ref_id: Some(ref_id), reason, detail }));
}

fn reply<O: Outbox>(outbox: &mut O, ref_id: u32, body: ReplyBody<'_>) {
    let _ = outbox.send(&Body::Reply(Reply { ref_id, body }));
}

/// Sends a page of a table from `start`, with as many items as fit the link's `max_message`
/// (at most `PAGE_LEN_MAX`; the host asks again from `start + count`). Returns the items sent.
fn send_page<'a, O: Outbox, T: PageItem + 'a>(
    outbox: &mut O,
    ref_id: u32,
    total: usize,
    start: u16,
    wrap: impl Fn(Page<'_, T>) -> ReplyBody<'_>,
    item: &'a dyn Fn(usize) -> T,
) -> usize {
    let total = total.min(u16::MAX.into()) as u16;
    let start = start.min(total);
    let mut count = (total - start).min(PAGE_LEN_MAX);
    // Bounded: count only goes down.
    loop {
        let get = |i: u16| item(usize::from(start) + usize::from(i));
        let page = Page { total, start, items: Items::Lazy { count, get: &get } };
        match outbox.send(&Body::Reply(Reply { ref_id, body: wrap(page) })) {
            Err(SendError::TooLong) if count > 0 => count -= 1,
            Ok(()) => return count.into(),
            Err(_) => return 0,
        }
    }
}
