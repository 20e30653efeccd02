//! Engine tests in Rust: the graph semantics the Python API relies on, without Python. One file
//! per job of the engine; the helpers and test operators below are shared. Time is always the
//! virtual clock, moved by the test: nothing sleeps.

mod bounds;
mod declare;
mod durable_queue;
mod fused;
mod health;
mod ingest;
mod lineage;
mod mailboxes;
mod publish;
mod schedule;
mod view;

use std::sync::{Arc, Mutex};

use manyfold_core::envelope::{ClockDomain, EnvelopeId, EventTime};
use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::TaintSet;

use super::*;
use crate::envelope::Parents;
use crate::route::{Layer, Plane, Variant};
use crate::schema::{Schema, SchemaType};

pub(super) fn float() -> Arc<Schema> {
    Arc::new(Schema::new("float", 1, SchemaType::Float))
}

pub(super) fn int() -> Arc<Schema> {
    Arc::new(Schema::new("int", 1, SchemaType::Int))
}

pub(super) fn route(owner: &str, stream: &str) -> Route {
    Route::new(Plane::Read, Layer::Logical, owner, "test", stream, Variant::Meta, 1).unwrap()
}

/// Declares `owner.stream` carrying floats with default options.
pub(super) fn floats(g: &mut Graph, owner: &str, stream: &str) -> RouteIdx {
    g.declare_route(route(owner, stream), float(), RouteOptions::default()).unwrap()
}

pub(super) fn mailbox(capacity: usize, overflow: Overflow) -> EdgePolicy {
    EdgePolicy { mailbox: Some(MailboxSpec { capacity, overflow }), epoch_boundary: false }
}

pub(super) fn publish(g: &mut Graph, producer: ProducerIdx, route: RouteIdx, value: f64) -> PublishReceipt {
    g.publish(producer, route, Value::Float(value), &PublishOptions::default()).unwrap()
}

/// What a subscriber saw, in delivery order.
pub(super) type Seen = Arc<Mutex<Vec<EnvelopeRef>>>;

struct Collect(Seen);

impl Subscriber for Collect {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        self.0.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

pub(super) fn collect(g: &mut Graph, name: &str, r: RouteIdx, policy: EdgePolicy) -> Seen {
    let seen = Arc::new(Mutex::new(Vec::new()));
    g.subscribe(name, r, Box::new(Collect(seen.clone())), policy).unwrap();
    seen
}

pub(super) fn values(seen: &Seen) -> Vec<Value> {
    seen.lock().unwrap().iter().map(|e| e.value.clone()).collect()
}

/// One log shared by several subscribers: (subscriber, value) in delivery order.
pub(super) type Log = Arc<Mutex<Vec<(String, Value)>>>;

struct LogTo(String, Log);

impl Subscriber for LogTo {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        self.1.lock().unwrap().push((self.0.clone(), envelope.value.clone()));
        Ok(())
    }
}

pub(super) fn log_to(g: &mut Graph, log: &Log, name: &str, r: RouteIdx, policy: EdgePolicy) {
    g.subscribe(name, r, Box::new(LogTo(name.into(), log.clone())), policy).unwrap();
}

pub(super) fn logged(log: &Log) -> Vec<(String, Value)> {
    log.lock().unwrap().clone()
}

/// A test operator: an input `Int(delay_us)` sets a timer `delay_us` from now whose token is
/// the input's sequence number; the timer emits that token (no parents) at its due time.
pub(super) struct TimerProbe;

impl Operator for TimerProbe {
    fn kind(&self) -> &'static str {
        "timer_probe"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let Value::Int(delay_us) = input.value else { return Err(OpFailure::new("timer_probe takes ints")) };
        ctx.set_timer(ctx.now_us + delay_us, input.meta.id.seq);
        Ok(())
    }
    fn on_timer(&mut self, token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let event_time = EventTime { time_us: ctx.now_us, domain: ClockDomain::INGEST };
        ctx.emit(Output {
            port: 0,
            value: Value::Int(token as i64),
            parents: Parents::new(),
            parents_elided: 0,
            event_time,
            taints: TaintSet::EMPTY,
            payload_from: None,
        });
        Ok(())
    }
}

/// A test operator that emits each input `copies` times (a burst from one publish).
pub(super) struct Burst {
    pub copies: usize,
}

impl Operator for Burst {
    fn kind(&self) -> &'static str {
        "burst"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        for _ in 0..self.copies {
            ctx.emit(Output::derived(input.value.clone(), input, TaintSet::EMPTY));
        }
        Ok(())
    }
    fn max_burst(&self) -> usize {
        self.copies
    }
}
