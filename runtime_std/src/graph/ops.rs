//! The built-in operators. Each wraps a `manyfold-core` kernel (the same code a board runs) and
//! adds what a host graph needs: keys, lineage, taints and counters.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use manyfold_core::envelope::{ClockDomain, EnvelopeId, EventTime};
use manyfold_core::kernels::{
    Accepted, Aggregate, Applied, CountWindow, Deadband, JoinWindow, Latest, Pane, RateLimiter, Resistor, ResistorAction, Scale,
    StillInEffect, Threshold, TimeWindows, WindowOutput, WindowSpec, WriteBinding as WriteBindingKernel,
};
use manyfold_core::mailbox::{Mailbox, Offer, Overflow};
use manyfold_core::taint::{Taint, TaintSet};

use super::operator::{Column, ColumnOut, ColumnParents, Health, HealthState, Lineage, OpContext, OpFailure, Operator, Output, Param};
use crate::envelope::{EnvelopeRef, Parents};
use crate::value::{Key, Value};

/// A user function on values (a Python callable in the extension).
pub type ValueFn = Box<dyn FnMut(&Value) -> Result<Value, OpFailure> + Send>;
/// A user predicate on values.
pub type PredicateFn = Box<dyn FnMut(&Value) -> Result<bool, OpFailure> + Send>;

/// The most parents one output lists; more are counted in `parents_elided`.
pub const LINEAGE_MAX: usize = 256;
/// Default bound on distinct keys in keyed operators.
pub const KEYS_MAX_DEFAULT: usize = 4096;
/// The most slots a buffer allocates up front: a mailbox's or capacitor's capacity, a count
/// window's size (per key). Larger ones are refused when the graph is built, not discovered
/// as an allocation failure later.
pub const CAPACITY_MAX: usize = 1 << 20;

fn aggregate_name(a: Aggregate) -> &'static str {
    match a {
        Aggregate::Count => "count",
        Aggregate::Sum => "sum",
        Aggregate::Mean => "mean",
        Aggregate::Min => "min",
        Aggregate::Max => "max",
    }
}

fn parents_of(lineage: &Lineage) -> Parents {
    lineage.parents.iter().copied().collect()
}

// ---------------------------------------------------------------------- extraction

/// How an operator gets a number or a key out of a payload.
pub enum Extract {
    /// The payload itself.
    Whole,
    /// A record field, resolved against the input schema when the node is built.
    Field {
        /// Field position.
        index: usize,
        /// Field name, for messages.
        name: String,
    },
    /// A user function.
    Call(ValueFn),
}

impl Extract {
    fn describe(&self) -> String {
        match self {
            Extract::Whole => "value".into(),
            Extract::Field { name, .. } => format!("field {name}"),
            Extract::Call(_) => "function".into(),
        }
    }

    /// The extracted value.
    pub fn apply<'a>(&mut self, value: &'a Value) -> Result<Cow<'a, Value>, OpFailure> {
        match self {
            Extract::Whole => Ok(Cow::Borrowed(value)),
            Extract::Field { index, name } => value
                .field(*index)
                .map(Cow::Borrowed)
                .ok_or_else(|| OpFailure::new(format!("payload has no field {name}"))),
            Extract::Call(f) => f(value).map(Cow::Owned),
        }
    }

    /// The extracted number.
    pub fn number(&mut self, value: &Value) -> Result<f64, OpFailure> {
        if let (Extract::Whole, Value::Float(x)) = (&*self, value) {
            return Ok(*x);
        }
        let v = self.apply(value)?;
        match v.as_f64() {
            Some(x) => Ok(x),
            None => {
                let kind = v.kind();
                Err(OpFailure::new(format!("{} is {kind}, not a number", self.describe())))
            }
        }
    }

    /// The extracted key.
    pub fn key(&mut self, value: &Value) -> Result<Key, OpFailure> {
        let v = self.apply(value)?;
        match Key::from_value(&v) {
            Some(k) => Ok(k),
            None => {
                let kind = v.kind();
                Err(OpFailure::new(format!("{} is {kind}, which cannot be a key", self.describe())))
            }
        }
    }
}

fn key_of(key: &mut Option<Extract>, value: &Value) -> Result<Key, OpFailure> {
    match key {
        None => Ok(Key::Unit),
        Some(extract) => extract.key(value),
    }
}

// ---------------------------------------------------------------------- forward, map, filter, merge

/// Re-publishes each input on another route (what `connect` builds). `added` are the taints
/// of the crossing (a link that cannot keep order adds `OrderPossiblyOutOfOrder`).
pub struct Forward {
    /// Taints every forwarded envelope gains.
    pub added: TaintSet,
}

impl Operator for Forward {
    fn kind(&self) -> &'static str {
        "forward"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        ctx.emit(Output::derived(input.value.clone(), input, self.added));
        Ok(())
    }
    fn on_column(&mut self, _port: usize, input: &Column, out: &mut ColumnOut) -> Option<Result<(), OpFailure>> {
        // Each output is its input with the crossing's taints, derived from that one input.
        out.values.extend_from_slice(&input.values);
        out.event_time = input.event_time;
        out.taints = input.taints.join(self.added);
        out.head = input.head.iter().enumerate().map(|(i, (t, _))| (t.join(self.added), std::iter::once(input.id(i)).collect())).collect();
        out.parents = ColumnParents::Span { source: input.route, newest: input.first_seq, every: 1, span: 1 };
        Some(Ok(()))
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        if self.added.is_empty() {
            return Vec::new();
        }
        let names: Vec<&str> = self.added.iter().map(|t| t.name()).collect();
        vec![("link_taints", Param::Text(names.join(",")))]
    }
}

/// Applies a function to each value.
pub struct Map {
    /// The function.
    pub f: ValueFn,
    /// Declared deterministic; if not, outputs carry `DetNondeterministicOperator`.
    pub deterministic: bool,
}

impl Operator for Map {
    fn kind(&self) -> &'static str {
        "map"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let value = (self.f)(&input.value)?;
        let added = if self.deterministic { TaintSet::EMPTY } else { TaintSet::of(Taint::DetNondeterministicOperator) };
        ctx.emit(Output::derived(value, input, added));
        Ok(())
    }
    fn deterministic(&self) -> bool {
        self.deterministic
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("deterministic", Param::Bool(self.deterministic))]
    }
}

/// Passes the values a predicate accepts.
pub struct Filter {
    /// The predicate.
    pub f: PredicateFn,
    /// Declared deterministic.
    pub deterministic: bool,
    /// Values refused so far.
    pub refused: u64,
}

impl Operator for Filter {
    fn kind(&self) -> &'static str {
        "filter"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if (self.f)(&input.value)? {
            let added = if self.deterministic { TaintSet::EMPTY } else { TaintSet::of(Taint::DetNondeterministicOperator) };
            ctx.emit(Output::derived(input.value.clone(), input, added));
        } else {
            self.refused += 1;
        }
        Ok(())
    }
    fn deterministic(&self) -> bool {
        self.deterministic
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("deterministic", Param::Bool(self.deterministic))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("refused", self.refused)]
    }
}

/// Interleaves its inputs in arrival order.
pub struct Merge {
    /// Number of inputs.
    pub inputs: usize,
}

impl Operator for Merge {
    fn kind(&self) -> &'static str {
        "merge"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        ctx.emit(Output::derived(input.value.clone(), input, TaintSet::EMPTY));
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("inputs", Param::Int(self.inputs as i64))]
    }
}

// ---------------------------------------------------------------------- scalar kernels

/// Which scalar kernel a [`Scalar`] node runs.
pub enum ScalarKernel {
    /// Pass values that moved at least `band` since the last one passed.
    Deadband(Deadband),
    /// Pass values the threshold accepts.
    Threshold(Threshold),
    /// Emit `value * scale + offset` as a float.
    Scale(Scale),
}

/// Deadband, threshold or scale-and-offset on one number per input.
pub struct Scalar {
    /// The kernel.
    pub kernel: ScalarKernel,
    /// Where the number comes from.
    pub value: Extract,
    /// Values not passed (deadband, threshold).
    pub refused: u64,
}

impl Operator for Scalar {
    fn kind(&self) -> &'static str {
        match self.kernel {
            ScalarKernel::Deadband(_) => "deadband",
            ScalarKernel::Threshold(_) => "threshold",
            ScalarKernel::Scale(_) => "scale",
        }
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let x = self.value.number(&input.value)?;
        let pass = match &mut self.kernel {
            ScalarKernel::Deadband(d) => d.pass(x),
            ScalarKernel::Threshold(t) => t.pass(x),
            ScalarKernel::Scale(s) => {
                ctx.emit(Output::derived(Value::Float(s.apply(x)), input, TaintSet::EMPTY));
                return Ok(());
            }
        };
        if pass {
            ctx.emit(Output::derived(input.value.clone(), input, TaintSet::EMPTY));
        } else {
            self.refused += 1;
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut p = vec![("value", Param::Text(self.value.describe()))];
        match self.kernel {
            ScalarKernel::Deadband(_) => {}
            ScalarKernel::Threshold(t) => p.push(("threshold", Param::Text(format!("{t:?}").to_lowercase()))),
            ScalarKernel::Scale(s) => {
                p.push(("scale", Param::Float(s.scale)));
                p.push(("offset", Param::Float(s.offset)));
            }
        }
        p
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("refused", self.refused)]
    }
}

// ---------------------------------------------------------------------- windows

/// What a window emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowEmit {
    /// The aggregate as a float.
    Value,
    /// A `WindowResult` record: key, start_us, end_us, count, value (optional float), forced.
    Record,
}

fn window_value(emit: WindowEmit, key: &Key, start_us: i64, end_us: i64, count: u64, value: Option<f64>, forced: bool) -> Option<Value> {
    match emit {
        WindowEmit::Value => value.map(Value::Float),
        WindowEmit::Record => Some(Value::Record(
            vec![
                key.to_value(),
                Value::Int(start_us),
                Value::Int(end_us),
                Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
                value.map_or(Value::Null, Value::Float),
                Value::Bool(forced),
            ]
            .into(),
        )),
    }
}

type CountTag = (EnvelopeId, TaintSet, i64);
type CountKernel = CountWindow<CountTag, Box<[Option<(f64, CountTag)>]>>;

/// Count windows: the last `size` values (per key), emitted every `step` values.
pub struct CountWindowOp {
    size: usize,
    step: usize,
    aggregate: Aggregate,
    emit: WindowEmit,
    value: Extract,
    key: Option<Extract>,
    keys_max: usize,
    windows: BTreeMap<Key, CountKernel>,
    keys_refused: u64,
    pending: TaintSet,
}

impl CountWindowOp {
    /// A count window; `1 <= size <=` [`CAPACITY_MAX`] and `1 <= step <= size`.
    pub fn new(size: usize, step: usize, aggregate: Aggregate, emit: WindowEmit, value: Extract, key: Option<Extract>) -> Result<Self, String> {
        if size == 0 || size > CAPACITY_MAX || step == 0 || step > size {
            return Err(format!("a count window needs 1 <= size <= {CAPACITY_MAX} and 1 <= step <= size (got size {size}, step {step})"));
        }
        Ok(CountWindowOp { size, step, aggregate, emit, value, key, keys_max: KEYS_MAX_DEFAULT, windows: BTreeMap::new(), keys_refused: 0, pending: TaintSet::EMPTY })
    }
}

impl Operator for CountWindowOp {
    fn kind(&self) -> &'static str {
        "count_window"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let x = self.value.number(&input.value)?;
        let key = key_of(&mut self.key, &input.value)?;
        if self.key.is_some() && !self.windows.contains_key(&key) && self.windows.len() >= self.keys_max {
            self.keys_refused += 1;
            ctx.count_loss(1);
            self.pending = self.pending.with(Taint::DeliveryDropped);
            return Ok(());
        }
        let size = self.size;
        let step = self.step;
        let unkeyed_hit = self.key.is_none() && !self.windows.is_empty();
        let window = if unkeyed_hit {
            // Unkeyed windows (the common case) hold one entry: skip the map search.
            match self.windows.iter_mut().next() {
                Some((_, window)) => window,
                None => return Ok(()),
            }
        } else {
            self.windows.entry(key.clone()).or_insert_with(|| {
                let slots: Box<[Option<(f64, CountTag)>]> = (0..size).map(|_| None).collect();
                // Cannot fail: size and step were checked in `new`.
                CountWindow::new(slots, step).unwrap_or_else(|_| unreachable!())
            })
        };
        let tag = (input.meta.id, input.meta.taints, input.meta.event_time.time_us);
        let Some(acc) = window.push(x, tag) else { return Ok(()) };
        let mut parents = Parents::new();
        let mut taints = std::mem::take(&mut self.pending);
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (id, t, time) in window.tags() {
            parents.push(*id);
            taints = taints.join(*t);
            first = first.min(*time);
            last = last.max(*time);
        }
        if let Some(value) = window_value(self.emit, &key, first, last, acc.count, acc.result(self.aggregate), false) {
            ctx.emit(Output {
                port: 0,
                value,
                parents,
                parents_elided: 0,
                // The value that completed the window, as on a device.
                event_time: input.meta.event_time,
                taints,
                payload_from: None,
            });
        }
        Ok(())
    }
    fn on_column(&mut self, _port: usize, input: &Column, out: &mut ColumnOut) -> Option<Result<(), OpFailure>> {
        // Unkeyed windows over whole float values emitting the aggregate: every input goes
        // through the same kernel `on_input` uses (so each window is re-summed in the same
        // order, bit for bit, and the kernel ends holding what it would hold). Outputs whose
        // window reaches before the column, or into the input's head, or that take the pending
        // taints, are listed one by one; the rest have the input's taints, and parents by
        // sequence arithmetic.
        if self.key.is_some() || !matches!(self.value, Extract::Whole) || self.emit != WindowEmit::Value {
            return None;
        }
        if input.is_empty() {
            return Some(Ok(()));
        }
        let (size, step) = (self.size, self.step);
        let window = self.windows.entry(Key::Unit).or_insert_with(|| {
            let slots: Box<[Option<(f64, CountTag)>]> = (0..size).map(|_| None).collect();
            // Cannot fail: size and step were checked in `new`.
            CountWindow::new(slots, step).unwrap_or_else(|_| unreachable!())
        });
        out.event_time = input.event_time;
        out.taints = input.taints;
        out.values.reserve(input.len() / step + 1);
        let listed_below = size - 1 + input.head.len();
        let time = input.event_time.time_us;
        let mut first_out = None;
        for (i, x) in input.values.iter().enumerate() {
            let Some(acc) = window.push(*x, (input.id(i), input.taints_of(i), time)) else { continue };
            first_out.get_or_insert(i);
            if i < listed_below || !self.pending.is_empty() {
                let mut parents = Parents::new();
                let mut taints = std::mem::take(&mut self.pending);
                for (id, t, _) in window.tags() {
                    parents.push(*id);
                    taints = taints.join(*t);
                }
                out.head.push((taints, parents));
            }
            // A full window always has a value (count >= 1).
            out.values.push(acc.result(self.aggregate).unwrap_or(f64::NAN));
        }
        if let Some(first) = first_out {
            out.parents = ColumnParents::Span { source: input.route, newest: input.first_seq + first as u64, every: step as u64, span: size as u64 };
        }
        Some(Ok(()))
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("size", Param::Int(self.size as i64)),
            ("step", Param::Int(self.step as i64)),
            ("aggregate", Param::Text(aggregate_name(self.aggregate).into())),
            ("value", Param::Text(self.value.describe())),
            ("key", Param::Text(self.key.as_ref().map_or("none".into(), Extract::describe))),
        ]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("keys", self.windows.len() as u64), ("keys_refused", self.keys_refused)]
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.keys_refused > 0 {
            h.add(HealthState::Degraded, format!("dropped {} values with a new key over its bound of {} keys", self.keys_refused, self.keys_max));
        }
        h.reported()
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((self.windows.len() * self.size, self.keys_max * self.size))
    }
}

/// Event-time or processing-time windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The envelope's event time; windows close when the watermark (largest event time seen
    /// minus the allowed lateness) passes their end.
    Event,
    /// The graph clock at arrival; windows close on a timer. Outputs carry `TimeProcessing`
    /// and `DetProcessingClock` taints.
    Processing,
}

struct KeyWindows {
    windows: TimeWindows<Box<[Option<Pane>]>>,
    lineage: BTreeMap<i64, Lineage>,
}

/// Tumbling (`slide == width`) or sliding windows in time, per key.
pub struct TimeWindowOp {
    spec: WindowSpec,
    lateness_us: i64,
    aggregate: Aggregate,
    emit: WindowEmit,
    time: TimeSource,
    value: Extract,
    key: Option<Extract>,
    panes: usize,
    keys_max: usize,
    keys: BTreeMap<Key, KeyWindows>,
    watermark_us: i64,
    late: u64,
    forced: u64,
    keys_refused: u64,
    pending: TaintSet,
    timer_at: Option<i64>,
}

impl TimeWindowOp {
    /// Windows of `width_us` every `slide_us`; late values up to `lateness_us` behind the
    /// largest event time are still accepted.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        width_us: i64,
        slide_us: i64,
        lateness_us: i64,
        aggregate: Aggregate,
        emit: WindowEmit,
        time: TimeSource,
        value: Extract,
        key: Option<Extract>,
    ) -> Result<Self, String> {
        let spec = WindowSpec { width_us, slide_us };
        if width_us <= 0 || slide_us <= 0 || width_us % slide_us != 0 {
            return Err(format!(
                "a time window needs width_us > 0, slide_us > 0 and width a multiple of slide (got width {width_us}, slide {slide_us})"
            ));
        }
        if lateness_us < 0 {
            return Err(format!("lateness_us must not be negative (got {lateness_us})"));
        }
        let per_window = (width_us / slide_us) as usize;
        let panes = per_window + (lateness_us / slide_us) as usize + 2;
        if panes > 100_000 {
            return Err(format!("the window needs {panes} panes of state per key; use a larger slide or less lateness"));
        }
        Ok(TimeWindowOp {
            spec,
            lateness_us,
            aggregate,
            emit,
            time,
            value,
            key,
            panes,
            keys_max: KEYS_MAX_DEFAULT,
            keys: BTreeMap::new(),
            watermark_us: i64::MIN,
            late: 0,
            forced: 0,
            keys_refused: 0,
            pending: TaintSet::EMPTY,
            timer_at: None,
        })
    }

    fn time_taints(&self) -> TaintSet {
        match self.time {
            TimeSource::Event => TaintSet::EMPTY,
            TimeSource::Processing => TaintSet::of(Taint::TimeProcessing).with(Taint::DetProcessingClock),
        }
    }

    fn emit_outputs(&mut self, key: &Key, outputs: Vec<WindowOutput>, domain_time: EventTime, ctx: &mut OpContext<'_>) {
        let n = self.spec.panes_per_window();
        let extra = self.time_taints();
        for out in outputs {
            let mut lineage = Lineage::default();
            if let Some(state) = self.keys.get_mut(key) {
                for pane in out.first_pane..=out.last_pane {
                    if let Some(l) = state.lineage.get(&pane) {
                        lineage.merge(l, LINEAGE_MAX);
                    }
                }
                // The window's first pane belongs to no later window, unless the window starts
                // before time (1 us panes) and its first pane here is the first one there is.
                if out.last_pane - out.first_pane == n - 1 {
                    state.lineage.remove(&out.first_pane);
                }
            }
            let mut taints = lineage.taints.join(extra).join(std::mem::take(&mut self.pending));
            if out.forced {
                self.forced += 1;
                taints = taints.with(Taint::SchedForcedClose);
            }
            if let Some(value) = window_value(self.emit, key, out.start_us, out.end_us, out.acc.count, out.acc.result(self.aggregate), out.forced) {
                ctx.emit(Output {
                    port: 0,
                    value,
                    parents: parents_of(&lineage),
                    parents_elided: lineage.elided,
                    event_time: EventTime { time_us: out.end_us - 1, domain: domain_time.domain },
                    taints,
                    payload_from: None,
                });
            }
        }
    }

    fn advance_all(&mut self, watermark_us: i64, domain: EventTime, ctx: &mut OpContext<'_>) {
        if watermark_us <= self.watermark_us {
            return;
        }
        self.watermark_us = watermark_us;
        let keys: Vec<Key> = self.keys.keys().cloned().collect();
        for key in keys {
            let mut closed = Vec::new();
            if let Some(state) = self.keys.get_mut(&key) {
                state.windows.advance(watermark_us, |o| closed.push(o));
            }
            self.emit_outputs(&key, closed, domain, ctx);
        }
    }

    fn arm_timer(&mut self, ctx: &mut OpContext<'_>) {
        if self.time != TimeSource::Processing {
            return;
        }
        // The next window end after now.
        let slide = self.spec.slide_us;
        let next_end = ctx.now_us.div_euclid(slide).saturating_add(1).saturating_mul(slide);
        if self.timer_at.is_none_or(|t| t > next_end || t <= ctx.now_us) {
            self.timer_at = Some(next_end);
            ctx.set_timer(next_end, 0);
        }
    }
}

impl Operator for TimeWindowOp {
    fn kind(&self) -> &'static str {
        match self.time {
            TimeSource::Event => "event_time_window",
            TimeSource::Processing => "processing_time_window",
        }
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let x = self.value.number(&input.value)?;
        let key = key_of(&mut self.key, &input.value)?;
        let time_us = match self.time {
            TimeSource::Event => input.meta.event_time.time_us,
            TimeSource::Processing => ctx.now_us,
        };
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= self.keys_max {
                self.keys_refused += 1;
                ctx.count_loss(1);
                self.pending = self.pending.with(Taint::DeliveryDropped);
                return Ok(());
            }
            let slots: Box<[Option<Pane>]> = vec![None; self.panes].into_boxed_slice();
            let mut windows = TimeWindows::new(self.spec, slots).map_err(|e| OpFailure::new(format!("{e:?}")))?;
            // A new key starts at the operator's watermark: its already-closed windows stay closed.
            if self.watermark_us != i64::MIN {
                windows.advance(self.watermark_us, |_| {});
            }
            self.keys.insert(key.clone(), KeyWindows { windows, lineage: BTreeMap::new() });
        }
        // Raise the watermark before inserting: the windows it closes end at or before
        // `time - lateness`, so they never contain this value, and closing them first frees
        // their panes instead of forcing them out early (and tainting them) to make room.
        if self.time == TimeSource::Event {
            let watermark = input.meta.event_time.time_us.saturating_sub(self.lateness_us);
            self.advance_all(watermark, input.meta.event_time, ctx);
        }
        let mut forced = Vec::new();
        let state = self.keys.get_mut(&key).ok_or_else(|| OpFailure::new("key state vanished"))?;
        // A value behind the watermark of this operator is late even if this key is new.
        let outcome = state.windows.insert(time_us, x, |o| forced.push(o));
        match outcome {
            manyfold_core::kernels::Insert::Accepted { pane } => {
                state.lineage.entry(pane).or_default().add(input.meta.id, input.meta.taints, LINEAGE_MAX);
            }
            manyfold_core::kernels::Insert::Late => {
                self.late += 1;
                ctx.count_loss(1);
                self.pending = self.pending.with(Taint::DeliveryDropped);
            }
        }
        self.emit_outputs(&key, forced, input.meta.event_time, ctx);
        self.arm_timer(ctx);
        Ok(())
    }
    fn on_timer(&mut self, _token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.timer_at = None;
        let domain = EventTime { time_us: ctx.now_us, domain: manyfold_core::envelope::ClockDomain::INGEST };
        self.advance_all(ctx.now_us, domain, ctx);
        if self.keys.values().any(|k| k.windows.open_panes() > 0) {
            self.arm_timer(ctx);
        }
        Ok(())
    }
    fn max_burst(&self) -> usize {
        self.panes
    }
    fn watermark_us(&self) -> Option<i64> {
        (self.watermark_us != i64::MIN).then_some(self.watermark_us)
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("width_us", Param::Int(self.spec.width_us)),
            ("slide_us", Param::Int(self.spec.slide_us)),
            ("lateness_us", Param::Int(self.lateness_us)),
            ("aggregate", Param::Text(aggregate_name(self.aggregate).into())),
            ("value", Param::Text(self.value.describe())),
            ("key", Param::Text(self.key.as_ref().map_or("none".into(), Extract::describe))),
        ]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("keys", self.keys.len() as u64),
            ("late", self.late),
            ("forced", self.forced),
            ("keys_refused", self.keys_refused),
        ]
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.late > 0 {
            h.add(HealthState::Degraded, format!("dropped {} late values (more than {} us behind the largest event time)", self.late, self.lateness_us));
        }
        if self.forced > 0 {
            h.add(HealthState::Degraded, format!("closed {} windows early to stay within its bound", self.forced));
        }
        if self.keys_refused > 0 {
            h.add(HealthState::Degraded, format!("dropped {} values with a new key over its bound of {} keys", self.keys_refused, self.keys_max));
        }
        h.reported()
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        let open: usize = self.keys.values().map(|k| k.windows.open_panes()).sum();
        Some((open, self.keys_max * self.panes))
    }
}

// ---------------------------------------------------------------------- rate limiter, capacitor, resistor

/// A token bucket on event time: bursts of up to `max_events`, refilled at `max_events` per
/// `interval_us` (so a long run averages at most `max_events` per interval, while two bursts
/// can meet at an interval's edge). Values without a token are dropped (counted), and the next
/// value that passes carries `DeliverySampled`.
pub struct RateLimit {
    limiter: RateLimiter,
    max_events: u64,
    interval_us: u64,
    dropped: u64,
    pending: TaintSet,
}

impl RateLimit {
    /// A limiter of `max_events` per `interval_us`.
    pub fn new(max_events: u64, interval_us: u64) -> Result<Self, String> {
        if max_events == 0 || interval_us == 0 {
            return Err("a rate limiter needs max_events >= 1 and interval_us >= 1".into());
        }
        Ok(RateLimit { limiter: RateLimiter::new(max_events, interval_us), max_events, interval_us, dropped: 0, pending: TaintSet::EMPTY })
    }
}

impl Operator for RateLimit {
    fn kind(&self) -> &'static str {
        "rate_limit"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if self.limiter.admit(input.meta.event_time.time_us) {
            let added = std::mem::take(&mut self.pending);
            ctx.emit(Output::derived(input.value.clone(), input, added));
        } else {
            self.dropped += 1;
            ctx.count_loss(1);
            self.pending = self.pending.with(Taint::DeliverySampled);
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("max_events", Param::Int(self.max_events as i64)), ("interval_us", Param::Int(self.interval_us as i64))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("dropped", self.dropped)]
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.dropped > 0 {
            h.add(HealthState::Degraded, format!("dropped {} values over its rate of {} per {} us", self.dropped, self.max_events, self.interval_us));
        }
        h.reported()
    }
}

/// A bounded buffer released on demand: input port 0 is data, port 1 (optional) is a demand
/// route whose values say how many to release (an int), or all.
///
/// Full, it applies its overflow policy. `drop_oldest` and `drop_newest` lose an item (counted
/// in `dropped`, the next released item carries `DeliveryDropped`). `block` and `reject`
/// refuse: a publish that would reach a full capacitor inline is refused before anything is
/// recorded (the graph asks [`Operator::admission`]; counted in `refused`). An item that reaches
/// it full from inside a dispatch (a burst, a mailbox delivery, a timer) has no producer to
/// refuse: it is rejected, counted in `rejected` and the receipt's `rejected`, and the next
/// released item carries `DeliveryDropped`.
pub struct Capacitor {
    buffer: Mailbox<EnvelopeRef, Box<[Option<EnvelopeRef>]>>,
    overflow: Overflow,
    refused: u64,
    pending: TaintSet,
}

impl Capacitor {
    /// A capacitor holding `capacity` items (1 to [`CAPACITY_MAX`]) with an overflow policy.
    pub fn new(capacity: usize, overflow: Overflow) -> Result<Self, String> {
        if capacity == 0 || capacity > CAPACITY_MAX {
            return Err(format!("a capacitor needs a capacity of 1 to {CAPACITY_MAX}, got {capacity}"));
        }
        // The buffer itself never waits: what cannot be refused at admission is rejected.
        let policy = if overflow == Overflow::Block { Overflow::Reject } else { overflow };
        let slots: Box<[Option<EnvelopeRef>]> = (0..capacity).map(|_| None).collect();
        Ok(Capacitor { buffer: Mailbox::new(slots, policy), overflow, refused: 0, pending: TaintSet::EMPTY })
    }

    fn release(&mut self, count: Option<usize>, ctx: &mut OpContext<'_>) {
        let n = count.unwrap_or(usize::MAX).min(self.buffer.depth());
        for _ in 0..n {
            if let Some(env) = self.buffer.take() {
                let added = std::mem::take(&mut self.pending);
                ctx.emit(Output::derived(env.value.clone(), &env, added));
            }
        }
    }
}

impl Operator for Capacitor {
    fn kind(&self) -> &'static str {
        "capacitor"
    }
    fn on_input(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if port == 1 {
            let count = match input.value {
                Value::Int(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => None,
            };
            self.release(count, ctx);
            return Ok(());
        }
        match self.buffer.offer(input.clone()) {
            Offer::Accepted => {}
            Offer::Rejected(_) | Offer::MustWait(_) => {
                self.pending = self.pending.with(Taint::DeliveryDropped);
                ctx.count_rejected(1);
            }
            Offer::AcceptedEvicting(_) | Offer::DroppedNewest(_) => {
                self.pending = self.pending.with(Taint::DeliveryDropped);
                ctx.count_loss(1);
            }
        }
        Ok(())
    }
    fn on_demand(&mut self, count: Option<usize>, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.release(count, ctx);
        Ok(())
    }
    fn admission(&self, port: usize) -> Option<(Overflow, bool)> {
        let refuses = matches!(self.overflow, Overflow::Block | Overflow::Reject);
        (port == 0 && refuses).then(|| (self.overflow, self.buffer.free() == 0))
    }
    fn refused(&mut self) {
        self.refused += 1;
    }
    fn max_burst(&self) -> usize {
        self.buffer.capacity()
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("capacity", Param::Int(self.buffer.capacity() as i64)),
            ("overflow", Param::Text(super::factory::overflow_word(self.overflow).into())),
        ]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.buffer.counters();
        vec![
            ("accepted", c.accepted),
            ("released", c.delivered),
            ("dropped", c.dropped()),
            ("rejected", c.rejected),
            ("refused", self.refused),
        ]
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((self.buffer.depth(), self.buffer.capacity()))
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        let c = self.buffer.counters();
        let (depth, capacity) = (self.buffer.depth(), self.buffer.capacity());
        let word = super::factory::overflow_word(self.overflow);
        if depth >= capacity && matches!(self.overflow, Overflow::Block | Overflow::Reject) {
            h.add(
                HealthState::Blocked,
                format!("full ({depth} of {capacity}) and refusing new values until some are released (overflow {word}); refused {} so far", self.refused),
            );
        }
        if c.dropped() > 0 {
            h.add(HealthState::Degraded, format!("dropped {} values when full (overflow {word})", c.dropped()));
        }
        if c.rejected > 0 {
            h.add(HealthState::Degraded, format!("lost {} values that reached it full from inside a dispatch", c.rejected));
        }
        h.reported()
    }
}

/// At most one output per `min_interval_us` of graph time; a value arriving too soon is held
/// (a newer one replaces it, counted as coalesced) and released when the interval has passed.
pub struct ResistorOp {
    kernel: Resistor,
    min_interval_us: i64,
    held: Option<EnvelopeRef>,
    coalesced: u64,
    pending: TaintSet,
    timer_at: Option<i64>,
}

impl ResistorOp {
    /// A resistor with the given minimum interval.
    pub fn new(min_interval_us: i64) -> Result<Self, String> {
        if min_interval_us <= 0 {
            return Err(format!("a resistor needs min_interval_us >= 1 (got {min_interval_us})"));
        }
        Ok(ResistorOp { kernel: Resistor::new(min_interval_us), min_interval_us, held: None, coalesced: 0, pending: TaintSet::EMPTY, timer_at: None })
    }
}

impl Operator for ResistorOp {
    fn kind(&self) -> &'static str {
        "resistor"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        match self.kernel.offer(ctx.now_us) {
            ResistorAction::Emit { replaced } => {
                if replaced {
                    self.coalesced += 1;
                    self.held = None;
                    self.pending = self.pending.with(Taint::DeliveryCoalesced);
                }
                let added = std::mem::take(&mut self.pending);
                ctx.emit(Output::derived(input.value.clone(), input, added));
            }
            ResistorAction::Hold { release_at_us, replaced } => {
                if replaced {
                    self.coalesced += 1;
                    self.pending = self.pending.with(Taint::DeliveryCoalesced);
                }
                self.held = Some(input.clone());
                if self.timer_at != Some(release_at_us) {
                    self.timer_at = Some(release_at_us);
                    ctx.set_timer(release_at_us, 0);
                }
            }
        }
        Ok(())
    }
    fn on_timer(&mut self, _token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.timer_at = None;
        if self.kernel.release(ctx.now_us) {
            if let Some(env) = self.held.take() {
                let added = std::mem::take(&mut self.pending);
                ctx.emit(Output::derived(env.value.clone(), &env, added));
            }
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("min_interval_us", Param::Int(self.min_interval_us))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("coalesced", self.coalesced)]
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((usize::from(self.held.is_some()), 1))
    }
}

// ---------------------------------------------------------------------- joins

/// How a join is executed, and so how it would be distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinClass {
    /// Both sides keyed alike and co-located: per-key buffers on both sides.
    Local,
    /// The right side is a table (latest per key); each left value looks its key up.
    Lookup,
    /// The right side is small and mirrored whole; each left value pairs with the mirror.
    BroadcastMirror,
    /// The sides are keyed differently and re-keyed into `partitions` by a stable hash.
    Repartition,
}

impl JoinClass {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            JoinClass::Local => "local",
            JoinClass::Lookup => "lookup",
            JoinClass::BroadcastMirror => "broadcast_mirror",
            JoinClass::Repartition => "repartition",
        }
    }
}

/// A join's plan: class, keys, bounds.
pub struct JoinSpec {
    /// The class.
    pub class: JoinClass,
    /// Key of left values.
    pub left_key: Option<Extract>,
    /// Key of right values.
    pub right_key: Option<Extract>,
    /// Pair only values whose event times are at most this far apart (the event-time rules:
    /// which input is late, which held value expired).
    pub window: JoinWindow,
    /// Items kept per key and side (local, repartition), keys in the table (lookup), or items
    /// in the mirror (broadcast).
    pub capacity: usize,
    /// Partitions (repartition only).
    pub partitions: usize,
}

#[derive(Default)]
struct SideBuffers {
    left: BTreeMap<Key, VecDeque<EnvelopeRef>>,
    right: BTreeMap<Key, VecDeque<EnvelopeRef>>,
    items: u64,
}

/// A keyed join of two inputs (port 0 left, port 1 right) emitting `Pair(left, right)`
/// records.
///
/// Time follows [`JoinWindow`]: with `within_us`, an input more than `within_us` behind the
/// join's watermark (the largest event time seen on either side) is late: dropped, counted in
/// `late` and in the receipt's `dropped`, and the next pair carries `DeliveryDropped`. A held
/// value more than `2 * within_us` behind the watermark can pair with nothing on time: it is
/// forgotten (`expired`, not a loss). Losing a value that could still pair is a drop, counted
/// and tainted the same way: a buffer or mirror over `capacity` evicts its oldest (`evicted`),
/// a full lookup table refuses a new key (`refused`).
pub struct Join {
    spec: JoinSpec,
    partitions: Vec<SideBuffers>,
    table: BTreeMap<Key, EnvelopeRef>,
    mirror: VecDeque<(Key, EnvelopeRef)>,
    matched: u64,
    unmatched: u64,
    late: u64,
    expired: u64,
    evicted: u64,
    refused: u64,
    pending: TaintSet,
}

impl Join {
    /// Plans a join, refusing plans that would pair everything with everything without bound.
    pub fn plan(spec: JoinSpec, name: &str) -> Result<Join, String> {
        let keyed = spec.left_key.is_some() && spec.right_key.is_some();
        if spec.capacity == 0 {
            return Err(format!("join {name}: capacity must be at least 1"));
        }
        match spec.class {
            JoinClass::BroadcastMirror => {}
            _ if !keyed => {
                return Err(format!(
                    "join {name} ({}) has no key on {}: every left value would pair with every right value \
                     (an unbounded all-to-all join). Give both sides a key, or declare a broadcast mirror \
                     with a capacity if the right side is small.",
                    spec.class.name(),
                    if spec.left_key.is_none() && spec.right_key.is_none() { "either side" } else if spec.left_key.is_none() { "the left side" } else { "the right side" }
                ))
            }
            JoinClass::Repartition if spec.partitions == 0 => {
                return Err(format!("join {name}: a repartition join needs at least 1 partition"))
            }
            _ => {}
        }
        let partitions = match spec.class {
            JoinClass::Repartition => spec.partitions,
            _ => 1,
        };
        Ok(Join {
            partitions: (0..partitions).map(|_| SideBuffers::default()).collect(),
            spec,
            table: BTreeMap::new(),
            mirror: VecDeque::new(),
            matched: 0,
            unmatched: 0,
            late: 0,
            expired: 0,
            evicted: 0,
            refused: 0,
            pending: TaintSet::EMPTY,
        })
    }

    /// Emits `Pair(left, right)`: both as parents, the later event time, both sides' taints
    /// and the join's pending loss taints.
    fn pair(&mut self, left: &EnvelopeRef, right: &EnvelopeRef, ctx: &mut OpContext<'_>) {
        let mut parents = Parents::new();
        parents.push(left.meta.id);
        parents.push(right.meta.id);
        let later = if left.meta.event_time.time_us >= right.meta.event_time.time_us { left } else { right };
        self.matched += 1;
        ctx.emit(Output {
            port: 0,
            value: Value::Record(vec![left.value.clone(), right.value.clone()].into()),
            parents,
            parents_elided: 0,
            event_time: later.meta.event_time,
            taints: left.meta.taints.join(right.meta.taints).join(std::mem::take(&mut self.pending)),
            // A pair carries the left side's lazy payload (a camera frame joined with its
            // zone's state is still that frame), so it can be opened further down.
            payload_from: match left.meta.payload {
                manyfold_core::envelope::PayloadRef::Lazy { .. } => Some(left.meta.id),
                manyfold_core::envelope::PayloadRef::Inline { .. } => None,
            },
        });
    }

    /// A value that could still pair was lost (evicted, refused): counted and tainted.
    fn lose(&mut self, ctx: &mut OpContext<'_>) {
        self.pending = self.pending.with(Taint::DeliveryDropped);
        ctx.count_loss(1);
    }

    fn within(&self, a: &EnvelopeRef, b: &EnvelopeRef) -> bool {
        self.spec.window.pairs(a.meta.event_time.time_us, b.meta.event_time.time_us)
    }

    fn buffered_join(&mut self, port: usize, key: Key, input: &EnvelopeRef, ctx: &mut OpContext<'_>) {
        let p = (key.stable_hash() % self.partitions.len() as u64) as usize;
        let window = self.spec.window;
        let mut matches = Vec::new();
        {
            let part = &self.partitions[p];
            let other = if port == 0 { &part.right } else { &part.left };
            if let Some(items) = other.get(&key) {
                matches.extend(items.iter().filter(|item| self.within(input, item)).cloned());
            }
        }
        if matches.is_empty() {
            self.unmatched += 1;
        }
        for other in &matches {
            let (l, r) = if port == 0 { (input, other) } else { (other, input) };
            self.pair(l, r, ctx);
        }
        let part = &mut self.partitions[p];
        // Forget what can no longer pair with anything on time, on both sides of this key.
        // Bounded by the key's buffers (at most `capacity` each).
        let mut expired = 0;
        for side in [&mut part.left, &mut part.right] {
            if let Some(items) = side.get_mut(&key) {
                let before = items.len();
                items.retain(|item| !window.expired(item.meta.event_time.time_us));
                expired += before - items.len();
            }
        }
        let side = if port == 0 { &mut part.left } else { &mut part.right };
        let items = side.entry(key).or_default();
        items.push_back(input.clone());
        part.items += 1;
        let mut evicted = 0;
        while items.len() > self.spec.capacity {
            items.pop_front();
            evicted += 1;
        }
        self.expired += expired as u64;
        for _ in 0..evicted {
            self.evicted += 1;
            self.lose(ctx);
        }
    }

    fn lookup(&mut self, port: usize, key: Key, input: &EnvelopeRef, ctx: &mut OpContext<'_>) {
        if port == 1 {
            if !self.table.contains_key(&key) && self.table.len() >= self.spec.capacity {
                self.refused += 1;
                self.lose(ctx);
            } else {
                self.table.insert(key, input.clone());
            }
            return;
        }
        match self.table.get(&key).cloned() {
            Some(right) if self.within(input, &right) => self.pair(input, &right, ctx),
            _ => self.unmatched += 1,
        }
    }

    fn mirror(&mut self, port: usize, key: Key, input: &EnvelopeRef, ctx: &mut OpContext<'_>) {
        let keyed = self.spec.left_key.is_some() && self.spec.right_key.is_some();
        if port == 1 {
            let window = self.spec.window;
            let before = self.mirror.len();
            self.mirror.retain(|(_, e)| !window.expired(e.meta.event_time.time_us));
            self.expired += (before - self.mirror.len()) as u64;
            // A keyed mirror holds the latest value per key.
            if self.spec.right_key.is_some() {
                self.mirror.retain(|(k, _)| *k != key);
            }
            self.mirror.push_back((key, input.clone()));
            while self.mirror.len() > self.spec.capacity {
                self.mirror.pop_front();
                self.evicted += 1;
                self.lose(ctx);
            }
            return;
        }
        let matches: Vec<EnvelopeRef> =
            self.mirror.iter().filter(|(k, e)| (!keyed || *k == key) && self.within(input, e)).map(|(_, e)| e.clone()).collect();
        if matches.is_empty() {
            self.unmatched += 1;
        }
        for right in &matches {
            self.pair(input, right, ctx);
        }
    }
}

impl Operator for Join {
    fn kind(&self) -> &'static str {
        "join"
    }
    fn on_input(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let key = if port == 0 { key_of(&mut self.spec.left_key, &input.value)? } else { key_of(&mut self.spec.right_key, &input.value)? };
        if !self.spec.window.admit(input.meta.event_time.time_us) {
            self.late += 1;
            self.lose(ctx);
            return Ok(());
        }
        match self.spec.class {
            JoinClass::Local | JoinClass::Repartition => self.buffered_join(port, key, input, ctx),
            JoinClass::Lookup => self.lookup(port, key, input, ctx),
            JoinClass::BroadcastMirror => self.mirror(port, key, input, ctx),
        }
        Ok(())
    }
    fn max_burst(&self) -> usize {
        match self.spec.class {
            JoinClass::Lookup => 1,
            _ => self.spec.capacity,
        }
    }
    fn watermark_us(&self) -> Option<i64> {
        self.spec.window.watermark_us()
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut p = vec![
            ("class", Param::Text(self.spec.class.name().into())),
            ("left_key", Param::Text(self.spec.left_key.as_ref().map_or("none".into(), Extract::describe))),
            ("right_key", Param::Text(self.spec.right_key.as_ref().map_or("none".into(), Extract::describe))),
            ("capacity", Param::Int(self.spec.capacity as i64)),
        ];
        if let Some(w) = self.spec.window.within_us() {
            p.push(("within_us", Param::Int(w)));
        }
        if self.spec.class == JoinClass::Repartition {
            p.push(("partitions", Param::Int(self.spec.partitions as i64)));
        }
        p
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut c = vec![
            ("matched", self.matched),
            ("unmatched", self.unmatched),
            ("late", self.late),
            ("expired", self.expired),
            ("evicted", self.evicted),
            ("refused", self.refused),
        ];
        if self.spec.class == JoinClass::Repartition {
            const NAMES: [&str; 8] = [
                "partition_0_items",
                "partition_1_items",
                "partition_2_items",
                "partition_3_items",
                "partition_4_items",
                "partition_5_items",
                "partition_6_items",
                "partition_7_items",
            ];
            for (i, part) in self.partitions.iter().enumerate().take(NAMES.len()) {
                c.push((NAMES[i], part.items));
            }
        }
        c
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.late > 0 {
            h.add(HealthState::Degraded, format!("dropped {} late values (outside its window)", self.late));
        }
        if self.evicted > 0 {
            h.add(HealthState::Degraded, format!("evicted {} values that could still pair to stay within its capacity of {}", self.evicted, self.spec.capacity));
        }
        if self.refused > 0 {
            h.add(HealthState::Degraded, format!("refused {} table values over its capacity of {}", self.refused, self.spec.capacity));
        }
        h.reported()
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        let held: usize = self
            .partitions
            .iter()
            .map(|p| p.left.values().map(VecDeque::len).sum::<usize>() + p.right.values().map(VecDeque::len).sum::<usize>())
            .sum::<usize>()
            + self.table.len()
            + self.mirror.len();
        Some((held, self.spec.capacity * KEYS_MAX_DEFAULT))
    }
}

// ---------------------------------------------------------------------- repairs

/// A repair: clears taints it has a proof for, and may add the taints that describe the repair
/// (`OrderResequenced` after a resequencer). Absorbing taints cannot be cleared.
pub struct Repair {
    clears: TaintSet,
    adds: TaintSet,
    proof: String,
    repaired: u64,
}

impl Repair {
    /// A repair clearing `clears` and adding `adds`, justified by `proof`.
    pub fn new(clears: TaintSet, adds: TaintSet, proof: &str) -> Result<Self, String> {
        if proof.trim().is_empty() {
            return Err("a repair must name its proof (why the cleared taints no longer hold)".into());
        }
        if let Some(absorbing) = clears.iter().find(|t| t.is_absorbing()) {
            return Err(format!("cannot clear {}: it is absorbing (no repair makes a non-replayable input replayable)", absorbing.name()));
        }
        if clears.is_empty() {
            return Err("a repair must clear at least one taint".into());
        }
        Ok(Repair { clears, adds, proof: proof.trim().into(), repaired: 0 })
    }
}

impl Operator for Repair {
    fn kind(&self) -> &'static str {
        "repair"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let mut out = Output::derived(input.value.clone(), input, TaintSet::EMPTY);
        if input.meta.taints.0 & self.clears.0 != 0 {
            self.repaired += 1;
        }
        out.taints = input.meta.taints.repair(self.clears).join(self.adds);
        ctx.emit(out);
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        let names = |t: TaintSet| t.iter().map(|x| x.name()).collect::<Vec<_>>().join(",");
        vec![("clears", Param::Text(names(self.clears))), ("adds", Param::Text(names(self.adds))), ("proof", Param::Text(self.proof.clone()))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("repaired", self.repaired)]
    }
}

/// Puts events back in event-time order: holds each until the watermark (largest event time
/// seen minus `delay_us`) passes it, then emits in order. Outputs no longer carry
/// `OrderPossiblyOutOfOrder` and carry `OrderResequenced` instead (the proof: ordered by event
/// time after waiting `delay_us` for stragglers). An event older than what was already emitted
/// is late: dropped, counted, and the next output carries `DeliveryDropped`. Holding more than
/// `capacity` events releases the oldest before its wait ended (counted in `forced`, the output
/// carries `SchedForcedClose`).
pub struct Resequence {
    delay_us: i64,
    capacity: usize,
    buffer: BTreeMap<(i64, u64), EnvelopeRef>,
    arrivals: u64,
    emitted_up_to: i64,
    watermark_us: i64,
    late: u64,
    forced: u64,
    pending: TaintSet,
}

impl Resequence {
    /// A resequencer waiting `delay_us` of event time, holding at most `capacity` events.
    pub fn new(delay_us: i64, capacity: usize) -> Result<Self, String> {
        if delay_us < 0 || capacity == 0 {
            return Err(format!("a resequencer needs delay_us >= 0 and capacity >= 1 (got {delay_us}, {capacity})"));
        }
        Ok(Resequence { delay_us, capacity, buffer: BTreeMap::new(), arrivals: 0, emitted_up_to: i64::MIN, watermark_us: i64::MIN, late: 0, forced: 0, pending: TaintSet::EMPTY })
    }

    fn release(&mut self, up_to: i64, ctx: &mut OpContext<'_>) {
        // Bounded by the buffer's size.
        while let Some((&(time, arrival), _)) = self.buffer.iter().next() {
            if time > up_to && self.buffer.len() <= self.capacity {
                break;
            }
            let Some(env) = self.buffer.remove(&(time, arrival)) else { break };
            // Released before its wait ended, to stay within capacity: say so.
            let forced = if time > up_to {
                self.forced += 1;
                TaintSet::of(Taint::SchedForcedClose)
            } else {
                TaintSet::EMPTY
            };
            self.emitted_up_to = self.emitted_up_to.max(time);
            let mut out = Output::derived(env.value.clone(), &env, TaintSet::EMPTY);
            out.taints = env.meta.taints.repair(TaintSet::of(Taint::OrderPossiblyOutOfOrder)).with(Taint::OrderResequenced).join(forced).join(std::mem::take(&mut self.pending));
            ctx.emit(out);
        }
    }
}

impl Operator for Resequence {
    fn kind(&self) -> &'static str {
        "resequence"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let time = input.meta.event_time.time_us;
        if time < self.emitted_up_to {
            self.late += 1;
            self.pending = self.pending.with(Taint::DeliveryDropped);
            ctx.count_loss(1);
            return Ok(());
        }
        self.arrivals += 1;
        self.buffer.insert((time, self.arrivals), input.clone());
        self.watermark_us = self.watermark_us.max(time.saturating_sub(self.delay_us));
        self.release(self.watermark_us, ctx);
        Ok(())
    }
    fn max_burst(&self) -> usize {
        self.capacity
    }
    fn watermark_us(&self) -> Option<i64> {
        (self.watermark_us != i64::MIN).then_some(self.watermark_us)
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("delay_us", Param::Int(self.delay_us)),
            ("capacity", Param::Int(self.capacity as i64)),
            ("proof", Param::Text(format!("ordered by event time after waiting {} us for stragglers", self.delay_us))),
        ]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("late", self.late), ("forced", self.forced), ("held", self.buffer.len() as u64)]
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.late > 0 {
            h.add(HealthState::Degraded, format!("dropped {} late values (older than what it had already emitted)", self.late));
        }
        if self.forced > 0 {
            h.add(HealthState::Degraded, format!("released {} values before their wait of {} us ended, to stay within its capacity of {}", self.forced, self.delay_us, self.capacity));
        }
        h.reported()
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((self.buffer.len(), self.capacity))
    }
}

// ---------------------------------------------------------------------- payloads

/// Opens the lazy payload of each input (on downstream demand: it runs only for the envelopes
/// that reach it) and emits the bytes. The open is recorded against this node.
pub struct OpenPayload {
    opened: u64,
}

impl OpenPayload {
    /// An opener.
    pub fn new() -> Self {
        OpenPayload { opened: 0 }
    }
}

impl Default for OpenPayload {
    fn default() -> Self {
        Self::new()
    }
}

impl Operator for OpenPayload {
    fn kind(&self) -> &'static str {
        "open_payload"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let bytes = ctx.open_payload(input.meta.id)?;
        self.opened += 1;
        let mut out = Output::derived(Value::Bytes(bytes), input, TaintSet::EMPTY);
        out.payload_from = None;
        ctx.emit(out);
        Ok(())
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("opened", self.opened)]
    }
}

// ---------------------------------------------------------------------- write bindings

/// Where a retried write is safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// The desired value is absolute (a setpoint): applying it twice equals applying it once.
    AbsoluteValue,
    /// The device deduplicates by request id.
    RequestId,
    /// Not known: the binding refuses to retry.
    Unknown,
}

impl Idempotency {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Idempotency::AbsoluteValue => "absolute_value",
            Idempotency::RequestId => "request_id",
            Idempotency::Unknown => "unknown",
        }
    }
}

/// The state of a write binding, for queries.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteState {
    /// The last desired value.
    pub desired: Option<Value>,
    /// The last reported value.
    pub reported: Option<Value>,
    /// A desired value not yet confirmed by a matching report.
    pub pending: bool,
    /// Sends of the current desired value (1 + retries).
    pub attempts: u32,
    /// The device acknowledged the current request.
    pub acked: bool,
    /// Retries ran out without confirmation.
    pub failed: bool,
}

/// The coherence contract of a device setting. Inputs: 0 request, 1 reported, 2 ack.
/// Outputs: 0 desired, 1 effective.
///
/// - A request sets the desired value (emitted with `CoherenceWritePending`) and arms a retry.
/// - A report equal to the pending desired value confirms it: effective is emitted clean.
/// - A report that differs while a write is pending is stale: effective carries
///   `CoherenceStaleReported` and `CoherenceWritePending`.
/// - A report nobody asked for (no write pending, differs from desired) is an unmatched echo:
///   effective carries `CoherenceEchoUnmatched`.
/// - A report equal to a desired value whose retries ran out is a late confirmation: the
///   binding is coherent again (`failed` clears, counted in `late_confirmations`); like any
///   first effective value after an expiry it carries `SchedExpired`.
/// - Reports and desired values compare as values, with NaN equal to NaN.
/// - Without an ack or confirmation, desired is sent again every `retry_interval_us`, at most
///   `retry_max` more times (only with a declared idempotency boundary); then the write fails
///   and the next effective value carries `SchedExpired`.
pub struct WriteBinding {
    retry_max: u32,
    retry_interval_us: i64,
    idempotency: Idempotency,
    state: WriteState,
    request: Option<EnvelopeRef>,
    timer_at: Option<i64>,
    pending_taints: TaintSet,
    requests: u64,
    retries: u64,
    confirmations: u64,
    stale_reports: u64,
    unmatched_echoes: u64,
    late_confirmations: u64,
    acks: u64,
    failures: u64,
}

impl WriteBinding {
    /// A binding retrying up to `retry_max` times every `retry_interval_us`.
    pub fn new(retry_max: u32, retry_interval_us: i64, idempotency: Idempotency) -> Result<Self, String> {
        if retry_max > 0 && idempotency == Idempotency::Unknown {
            return Err("a write binding that retries must declare its idempotency boundary (absolute_value or request_id); retrying an unknown write may apply it twice".into());
        }
        if retry_max > 0 && retry_interval_us <= 0 {
            return Err(format!("retry_interval_us must be at least 1 (got {retry_interval_us})"));
        }
        Ok(WriteBinding {
            retry_max,
            retry_interval_us,
            idempotency,
            state: WriteState { desired: None, reported: None, pending: false, attempts: 0, acked: false, failed: false },
            request: None,
            timer_at: None,
            pending_taints: TaintSet::EMPTY,
            requests: 0,
            retries: 0,
            confirmations: 0,
            stale_reports: 0,
            unmatched_echoes: 0,
            late_confirmations: 0,
            acks: 0,
            failures: 0,
        })
    }

    /// The binding's state now.
    pub fn state(&self) -> &WriteState {
        &self.state
    }

    fn send_desired(&mut self, ctx: &mut OpContext<'_>) {
        let Some(request) = self.request.clone() else { return };
        let mut out = Output::derived(request.value.clone(), &request, TaintSet::of(Taint::CoherenceWritePending));
        out.port = 0;
        ctx.emit(out);
        if self.retry_max > 0 {
            let at = ctx.now_us.saturating_add(self.retry_interval_us);
            self.timer_at = Some(at);
            ctx.set_timer(at, self.requests);
        }
    }
}

impl Operator for WriteBinding {
    fn kind(&self) -> &'static str {
        "write_binding"
    }
    fn on_input(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        match port {
            0 => {
                self.requests += 1;
                self.state.desired = Some(input.value.clone());
                self.state.pending = true;
                self.state.attempts = 1;
                self.state.acked = false;
                self.state.failed = false;
                self.request = Some(input.clone());
                self.send_desired(ctx);
            }
            1 => {
                self.state.reported = Some(input.value.clone());
                // NaN equals NaN here: a report of NaN confirms a desired NaN.
                let matches = self.state.desired.as_ref().is_some_and(|d| d.same(&input.value));
                let mut added = std::mem::take(&mut self.pending_taints);
                if self.state.pending && matches {
                    self.state.pending = false;
                    self.confirmations += 1;
                } else if self.state.pending {
                    self.stale_reports += 1;
                    added = added.with(Taint::CoherenceStaleReported).with(Taint::CoherenceWritePending);
                } else if !matches {
                    self.unmatched_echoes += 1;
                    added = added.with(Taint::CoherenceEchoUnmatched);
                } else if self.state.failed {
                    // The device applied the value after the binding gave up: a late
                    // confirmation. Coherent again (no coherence taint), but the first effective
                    // value after the expiry still says `sched_expired` (taken above).
                    self.state.failed = false;
                    self.late_confirmations += 1;
                }
                let mut out = Output::derived(input.value.clone(), input, added);
                if let Some(request) = &self.request {
                    out.parents.push(request.meta.id);
                }
                out.port = 1;
                ctx.emit(out);
            }
            _ => {
                self.acks += 1;
                if self.state.pending {
                    self.state.acked = true;
                }
            }
        }
        Ok(())
    }
    fn on_timer(&mut self, token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        // A timer of an earlier request, or a write already confirmed or acknowledged: nothing to do.
        if token != self.requests || !self.state.pending || self.state.acked {
            return Ok(());
        }
        if self.state.attempts <= self.retry_max {
            self.state.attempts += 1;
            self.retries += 1;
            self.send_desired(ctx);
        } else {
            self.failures += 1;
            self.state.pending = false;
            self.state.failed = true;
            self.pending_taints = self.pending_taints.with(Taint::SchedExpired);
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("retry_max", Param::Int(i64::from(self.retry_max))),
            ("retry_interval_us", Param::Int(self.retry_interval_us)),
            ("idempotency", Param::Text(self.idempotency.name().into())),
        ]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("requests", self.requests),
            ("retries", self.retries),
            ("confirmations", self.confirmations),
            ("stale_reports", self.stale_reports),
            ("unmatched_echoes", self.unmatched_echoes),
            ("late_confirmations", self.late_confirmations),
            ("acks", self.acks),
            ("failures", self.failures),
            ("pending", u64::from(self.state.pending)),
            ("attempts", u64::from(self.state.attempts)),
        ]
    }
    fn health(&self) -> Option<Health> {
        let mut h = Health::healthy();
        if self.state.failed {
            h.add(HealthState::Degraded, format!("its last write was not confirmed after {} retries ({} unconfirmed so far)", self.retry_max, self.failures));
        }
        h.reported()
    }
}

// ---------------------------------------------------------------------- sampling

/// The output of a batch of coalesced inputs (latest, actuator): `value` with the batch's
/// parents and the kernel's taints, at `event_time`, carrying `from`'s lazy payload.
fn batch_output(port: usize, value: Value, from: &EnvelopeRef, batch: Lineage, taints: TaintSet, event_time: EventTime) -> Output {
    let mut out = Output::derived(value, from, TaintSet::EMPTY);
    out.port = port;
    out.parents = parents_of(&batch);
    out.parents_elided = batch.elided;
    out.taints = taints;
    out.event_time = event_time;
    out
}

/// At most one value per period, the latest winning: the host side of the device's `latest`
/// operator, over the same kernel ([`manyfold_core::kernels::Latest`]). The first input of a
/// batch arms the emission at the next multiple of `period_us` on the clock; later ones replace
/// the held value; then the held value goes out with its own event time, the batch's taints
/// (`delivery_coalesced` when it replaced others) and every value of the batch as parents.
pub struct Sample {
    kernel: Latest<Option<EnvelopeRef>, ()>,
    batch: Lineage,
    coalesced: u64,
}

impl Sample {
    /// A sampler emitting at most once per `period_us`.
    pub fn new(period_us: i64) -> Result<Self, String> {
        let kernel = Latest::new(period_us).map_err(|_| format!("period_us must be at least 1 (got {period_us})"))?;
        Ok(Sample { kernel, batch: Lineage::default(), coalesced: 0 })
    }
}

impl Operator for Sample {
    fn kind(&self) -> &'static str {
        "sample"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.batch.add(input.meta.id, input.meta.taints, LINEAGE_MAX);
        match self.kernel.offer(ctx.now_us, Some(input.clone()), (), input.meta.taints) {
            Some(due) => ctx.set_timer(due, 0),
            None => self.coalesced += 1,
        }
        Ok(())
    }
    fn on_timer(&mut self, _token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if let Some(out) = self.kernel.fire(ctx.now_us) {
            let batch = std::mem::take(&mut self.batch);
            if let Some(env) = out.value {
                ctx.emit(batch_output(0, env.value.clone(), &env, batch, out.taints, env.meta.event_time));
            }
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("period_us", Param::Int(self.kernel.period_us()))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("coalesced", self.coalesced)]
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((usize::from(self.kernel.held() > 0), 1))
    }
}

// ---------------------------------------------------------------------- actuators

/// A device actuator: the host side of the device's write binding, over the same kernel
/// ([`manyfold_core::kernels::WriteBinding`]). Input 0 is the desired value; output 0 is
/// `reported`, output 1 `effective`. One write is pending at a time: a desired value applies
/// `apply_us` after the first value of its batch, newer values replacing it (the report then
/// carries `delivery_coalesced` and the whole batch as parents); at application `reported`
/// then `effective` go out at the clock's time. While a setting is in effect, each desired
/// value re-emits it on `effective` marked `coherence_write_pending`. `apply_us = 0` applies at
/// once. In the local runtime it simulates the device.
pub struct Actuator {
    /// Holds the desired and the effective envelope (their values, event times and payloads).
    kernel: WriteBindingKernel<Option<EnvelopeRef>, ()>,
    batch: Lineage,
    applied: u64,
    coalesced: u64,
}

impl Actuator {
    /// An actuator taking `apply_us` to apply a value.
    pub fn new(apply_us: i64) -> Result<Self, String> {
        let kernel = WriteBindingKernel::new(apply_us).map_err(|_| format!("apply_us must not be negative (got {apply_us})"))?;
        Ok(Actuator { kernel, batch: Lineage::default(), applied: 0, coalesced: 0 })
    }

    fn apply(&mut self, applied: Applied<Option<EnvelopeRef>, ()>, ctx: &mut OpContext<'_>) {
        let Some(from) = applied.value else { return };
        self.applied += 1;
        let batch = std::mem::take(&mut self.batch);
        // Reported and effective carry the time the actuator applied the value.
        let at = EventTime { time_us: ctx.now_us, domain: ClockDomain::INGEST };
        ctx.emit(batch_output(0, from.value.clone(), &from, batch.clone(), applied.taints, at));
        ctx.emit(batch_output(1, from.value.clone(), &from, batch, applied.taints, at));
    }
}

impl Operator for Actuator {
    fn kind(&self) -> &'static str {
        "actuator"
    }
    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.batch.add(input.meta.id, input.meta.taints, LINEAGE_MAX);
        match self.kernel.offer(ctx.now_us, Some(input.clone()), (), input.meta.taints) {
            Accepted::Applied(applied) => self.apply(applied, ctx),
            Accepted::Pending { due_us, armed, in_effect } => {
                if armed {
                    ctx.set_timer(due_us, 0);
                } else {
                    self.coalesced += 1;
                }
                // Until the actuator reports, the old setting is what is in effect.
                if let Some(StillInEffect { value: Some(old), taints }) = in_effect {
                    let mut out = Output::derived(old.value.clone(), input, TaintSet::EMPTY);
                    out.port = 1;
                    out.taints = taints;
                    out.payload_from = None;
                    ctx.emit(out);
                }
            }
        }
        Ok(())
    }
    fn on_timer(&mut self, _token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if let Some(applied) = self.kernel.fire(ctx.now_us) {
            self.apply(applied, ctx);
        }
        Ok(())
    }
    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![("apply_us", Param::Int(self.kernel.apply_us()))]
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("applied", self.applied), ("coalesced", self.coalesced), ("pending", u64::from(self.kernel.pending() > 0))]
    }
    fn buffered(&self) -> Option<(usize, usize)> {
        Some((usize::from(self.kernel.pending() > 0), 1))
    }
}
