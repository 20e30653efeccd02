//! Time and the scheduler: the clock and control epochs, timers, guarded (gated) publishes, and
//! the loop that fires due timers, releases guarded work and serves mailboxes round-robin.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use manyfold_core::envelope::RouteIdx;
use manyfold_core::taint::{Taint, TaintSet};

use crate::value::Value;

use super::*;

/// The most expired guard records kept for scheduler queries.
pub const EXPIRED_KEPT_MAX: usize = 256;

/// Default bound on scheduler steps in one `run_until_idle`.
pub const RUN_STEPS_MAX_DEFAULT: u64 = 10_000_000;

/// Default bound on guarded publishes waiting at once ([`Graph::set_gated_max`] changes it).
/// A guarded publish submitted while that many wait is refused with [`GraphError::Rejected`].
pub const GATED_MAX_DEFAULT: usize = 1024;

/// The most node timers pending at once. A node that sets one more has it refused: the
/// refusal is counted as a failure of the node and reported to the caller.
pub const TIMERS_MAX: usize = 65_536;

/// Where time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Time moves only when the caller advances it: deterministic tests and simulation.
    Virtual {
        /// Current time.
        now_us: i64,
    },
    /// Time is the monotonic wall clock since the graph started.
    Wall {
        /// When the graph started.
        origin: Instant,
    },
}

/// Conditions that hold a publish back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guard {
    /// Release only once the control epoch reaches this.
    pub not_before_epoch: Option<u64>,
    /// Release only once the clock reaches this.
    pub not_before_us: Option<i64>,
    /// Drop (expire) the work if it is still held at this time.
    pub expires_at_us: Option<i64>,
}

/// Outcome of `run_until_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Scheduler steps taken (mailbox deliveries, timers, releases).
    pub steps: u64,
    /// True when nothing is left to do now; false when the step bound stopped the run.
    pub idle: bool,
}

/// A guarded publish still waiting, for scheduler queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatedInfo {
    /// Guard id (in submission order).
    pub id: u64,
    /// The route it will publish on.
    pub route: RouteIdx,
    /// Its guard.
    pub guard: Guard,
    /// When it was submitted.
    pub submitted_us: i64,
}

/// A guarded publish that expired before its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredInfo {
    /// Guard id.
    pub id: u64,
    /// The route it would have published on.
    pub route: RouteIdx,
    /// When it expired.
    pub expired_at_us: i64,
}

impl Graph {
    /// The clock now, in microseconds.
    pub fn now_us(&self) -> i64 {
        match self.clock {
            Clock::Virtual { now_us } => now_us,
            Clock::Wall { origin } => i64::try_from(origin.elapsed().as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// True on a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self.clock, Clock::Virtual { .. })
    }

    /// The current control epoch (starts at 0).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves a virtual clock to `time_us`, firing every timer due on the way in order and
    /// running the scheduler to idle at each.
    pub fn advance_to(&mut self, time_us: i64) -> Result<RunReport, GraphError> {
        let Clock::Virtual { now_us } = self.clock else {
            return Err(GraphError::ClockMode("the graph runs on the wall clock; only a virtual clock can be advanced".into()));
        };
        let mut report = RunReport { steps: 0, idle: true };
        if time_us < now_us {
            return Err(GraphError::ClockMode(format!(
                "cannot move the clock back from {now_us} us to {time_us} us"
            )));
        }
        // Bounded: each pass moves the clock to the next timer or guard time and runs what is due
        // there; what is due at a time is done before the next pass, so time only goes forward.
        while let Some(due) = self.next_timer_us() {
            if due > time_us {
                break;
            }
            self.clock = Clock::Virtual { now_us: due.max(now_us) };
            let r = self.run_until_idle(RUN_STEPS_MAX_DEFAULT);
            report.steps += r.steps;
            if !r.idle {
                report.idle = false;
                return Ok(report);
            }
        }
        self.clock = Clock::Virtual { now_us: time_us };
        let r = self.run_until_idle(RUN_STEPS_MAX_DEFAULT);
        report.steps += r.steps;
        report.idle = r.idle;
        Ok(report)
    }

    /// Starts the next control epoch: releases items held on epoch-boundary edges and guarded
    /// work waiting for this epoch, then runs the scheduler to idle.
    pub fn advance_epoch(&mut self) -> RunReport {
        self.epoch += 1;
        for e in 0..self.edges.len() {
            // Items the hold dropped since the last epoch taint the first item released.
            let mut lost = std::mem::take(&mut self.edges[e].held_taints);
            while let Some(env) = self.edges[e].held.pop_front() {
                let env = if lost.is_empty() { env } else { with_taints(env, std::mem::take(&mut lost)) };
                self.queue.push_back((EdgeIdx(idx(e)), env));
            }
        }
        self.run_until_idle(RUN_STEPS_MAX_DEFAULT)
    }

    /// When the next timer is due or the next guard time comes (a guarded publish's
    /// `not_before_us` or deadline), for real-time loops that sleep until then.
    pub fn next_timer_us(&self) -> Option<i64> {
        let timer = self.timers.peek().map(|Reverse((due, _, _, _))| *due);
        let now = self.now_us();
        // Guard times still ahead; those passed were acted on when the scheduler last ran.
        let guards = self.gated.iter().flat_map(|g| [g.guard.not_before_us, g.guard.expires_at_us]).flatten().filter(|t| *t > now).min();
        match (timer, guards) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bounds the guarded publishes waiting at once (at least 1, and not below how many wait
    /// now).
    pub fn set_gated_max(&mut self, gated_max: usize) -> Result<(), GraphError> {
        if gated_max == 0 || gated_max < self.gated.len() {
            return Err(GraphError::OperatorConfig(format!(
                "gated_max must be at least 1 and at least the {} guarded publishes waiting now, got {gated_max}",
                self.gated.len()
            )));
        }
        self.gated_max = gated_max;
        Ok(())
    }

    /// Submits a publish that waits for its guard (epoch or time) and expires at its deadline.
    pub fn publish_guarded(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        options: PublishOptions,
        guard: Guard,
    ) -> Result<u64, GraphError> {
        // Room downstream is not needed now: the publish is released when there is some.
        self.admit(producer, route, &value, false)?;
        let now = self.now_us();
        if let Some(expiry) = guard.expires_at_us {
            if expiry <= now {
                let e = GraphError::GuardInvalid(format!("the guard expires at {expiry} us, which is not after now ({now} us)"));
                self.note_refused(producer, route, e.message().to_string());
                return Err(e);
            }
        }
        if self.gated.len() >= self.gated_max {
            self.gated_refused += 1;
            self.note_refused(producer, route, format!("{} guarded publishes already wait", self.gated.len()));
            return Err(GraphError::Rejected(format!(
                "the guarded publish on {} was refused: {} guarded publishes already wait (gated_max); \
                 wait for some to be released or to expire, or raise gated_max",
                self.routes[route.0 as usize].route,
                self.gated.len()
            )));
        }
        self.gated_seq += 1;
        let id = self.gated_seq;
        self.gated.push(GatedItem { id, producer, route, value, options, guard, submitted_us: now });
        self.release_guarded();
        Ok(id)
    }

    /// Publishes guarded items whose conditions hold; expires those past their deadline.
    fn release_guarded(&mut self) -> u64 {
        let now = self.now_us();
        let mut released = 0;
        let mut i = 0;
        // Bounded by the number of gated items; each pass removes one or moves past it.
        while i < self.gated.len() {
            let g = self.gated[i].guard;
            if g.expires_at_us.is_some_and(|t| now >= t) {
                let item = self.gated.remove(i);
                self.expired_total += 1;
                if self.expired.len() == EXPIRED_KEPT_MAX {
                    self.expired.pop_front();
                }
                self.expired.push_back(ExpiredInfo { id: item.id, route: item.route, expired_at_us: now });
                continue;
            }
            let epoch_ok = g.not_before_epoch.is_none_or(|e| self.epoch >= e);
            let time_ok = g.not_before_us.is_none_or(|t| now >= t);
            if epoch_ok && time_ok && self.admissible(self.gated[i].route) {
                let item = self.gated.remove(i);
                let mut options = item.options;
                options.taints = options.taints.with(Taint::SchedGated);
                let _ = self.publish_unchecked(item.producer, item.route, item.value, &options);
                released += 1;
                continue;
            }
            i += 1;
        }
        released
    }

    /// Asks a node to release buffered items (capacitors): `count` of them, or all.
    pub fn demand(&mut self, node: NodeIdx, count: Option<usize>) -> Result<(), GraphError> {
        if node.0 as usize >= self.nodes.len() {
            return Err(GraphError::NameInvalid(format!("no node with index {}", node.0)));
        }
        self.run_node(node, TaintSet::EMPTY, |op, ctx| op.on_demand(count, ctx));
        self.drain_queue();
        Ok(())
    }

    /// Does everything that is due now: inline work, due timers, guarded releases and mailbox
    /// deliveries (round-robin, one item per mailbox per round), until nothing is left or
    /// `steps_max` steps were taken.
    pub fn run_until_idle(&mut self, steps_max: u64) -> RunReport {
        let mut steps = 0u64;
        loop {
            self.drain_queue();
            let mut progressed = false;
            let now = self.now_us();
            while let Some(Reverse((due, _, node, token))) = self.timers.peek().copied() {
                if due > now || steps >= steps_max {
                    break;
                }
                self.timers.pop();
                steps += 1;
                progressed = true;
                self.run_node(node, TaintSet::EMPTY, |op, ctx| op.on_timer(token, ctx));
                self.drain_queue();
            }
            if !self.gated.is_empty() {
                let released = self.release_guarded();
                if released > 0 {
                    steps += released;
                    progressed = true;
                }
            }
            for m in 0..self.mailboxes.len() {
                if steps >= steps_max {
                    break;
                }
                let edge = self.mailboxes[m].edge;
                // Items stalled at the edge during a burst go in first, in order.
                while self.mailboxes[m].queue.free() > 0 {
                    let Some(env) = self.edges[edge.0 as usize].stalled.pop_front() else { break };
                    let _ = self.mailboxes[m].queue.offer(env);
                }
                let Some(env) = self.mailboxes[m].queue.take() else { continue };
                let pending = std::mem::take(&mut self.mailboxes[m].pending_taints);
                let env = if pending.is_empty() { env } else { with_taints(env, pending) };
                if let Some(since) = self.mailboxes[m].full_since_us.take() {
                    let now = self.now_us();
                    self.mailboxes[m].full_us += now - since;
                }
                let started = Instant::now();
                self.deliver(edge, &env);
                self.drain_queue();
                self.mailboxes[m].busy_ns += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                steps += 1;
                progressed = true;
            }
            if !progressed {
                return RunReport { steps, idle: true };
            }
            if steps >= steps_max {
                return RunReport { steps, idle: false };
            }
        }
    }
}

/// A copy of `env` that also carries `taints` (a loss before it is delivered).
fn with_taints(env: EnvelopeRef, taints: TaintSet) -> EnvelopeRef {
    let mut tainted = (*env).clone();
    tainted.meta.taints = tainted.meta.taints.join(taints);
    Arc::new(tainted)
}
