//! Partition images (docs/wire.md section 3): the compact, deterministic form of one partition
//! of a manifest that a device loads, and the decoder that turns one into fixed-capacity tables.
//!
//! An image is a 16-byte header and a CBOR body:
//!
//! ```text
//! header = "MFPI" | version 0x01 | 3 reserved 0x00 | body length u32 LE | crc32c(body) u32 LE
//! body   = [format, manifest_id, partition, routes, sources, nodes, mailboxes, edges, links, names]
//! ```
//!
//! The header lets a device tell an erased region (all 0x00 or all 0xFF) and a damaged image
//! from a real one before decoding anything. [`Partition::load`] checks every rule of section 3
//! (capacities, references, one input edge per node, topological order, one producer per
//! route, value kinds, operator parameters) and refuses an image with a named [`ImageError`];
//! it never panics, whatever the bytes.

use heapless::Vec;

use crate::cbor::{Bad, Reader};
use crate::framing::crc32c;
use crate::kernels::{latest, Aggregate, CountWindow, Deadband, Pane, RateLimiter, Scale, Threshold, TimeWindows, WindowSpec, WriteBinding};
use crate::link::{Event, Lineage, Value};
use crate::mailbox::{Mailbox, Overflow};
use crate::ring::Slots;
use crate::taint::{Taint, TaintSet};

/// The first 4 bytes of every image.
pub const MAGIC: [u8; 4] = *b"MFPI";
/// The header's version byte, and the body's `format`.
pub const FORMAT: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;
/// Longest partition name, in bytes.
pub const PARTITION_NAME_MAX: usize = 32;

/// `links` direction: events of the route are sent to the host.
pub const LINK_TO_HOST: u8 = 1;
/// `links` direction: the host sends events of the route.
pub const LINK_FROM_HOST: u8 = 2;

/// Why an image was refused. Each variant is `operation + failure`; [`ImageError::code`] is the
/// stable number a describe reports as `image_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The region is erased (its first 4 bytes are all 0x00 or all 0xFF): no image.
    HeaderEmpty,
    /// The first 4 bytes are not `MFPI`.
    HeaderBadMagic,
    /// The version byte is not 1 (or the reserved bytes are not 0).
    HeaderBadVersion,
    /// The body length runs past the region (or the region is shorter than a header).
    HeaderBadLength,
    /// The body does not match the header's CRC-32C.
    HeaderBadCrc,
    /// The body is not well-formed CBOR, or is cut short.
    DecodeBadCbor,
    /// An item has the wrong type or array length.
    DecodeBadShape,
    /// A number is out of range, or a code (kind, op, waveform, policy, ...) is unknown.
    DecodeBadValue,
    /// The partition name is empty or longer than 32 bytes, or the names list is longer than
    /// the route table.
    DecodeBadName,
    /// Bytes follow the body's array inside the declared length.
    DecodeTrailingBytes,
    /// More routes than the device's table holds.
    LoadTooManyRoutes,
    /// More sources than the device's table holds.
    LoadTooManySources,
    /// More nodes than the device's table holds.
    LoadTooManyNodes,
    /// More window operators than the device's window pool holds.
    LoadTooManyWindows,
    /// A mailbox deeper than the device's mailbox slots (or of capacity 0).
    LoadMailboxTooDeep,
    /// A window larger than the device's window slots.
    LoadWindowTooLarge,
    /// A route index that is not in the route table.
    CheckMissingRoute,
    /// A node index that is not in the node table.
    CheckMissingNode,
    /// A mailbox index that is not in the mailbox table.
    CheckMissingMailbox,
    /// A node without exactly one input edge.
    CheckNodeInputs,
    /// Two edges use the same mailbox, or a mailbox is unused.
    CheckMailboxShared,
    /// A route with two producers (sources, node outputs, the host).
    CheckTwoProducers,
    /// An edge from a route produced by a node that is not earlier in the node table: the
    /// nodes are not in topological order (or form a cycle).
    CheckNotTopological,
    /// A route's value kind does not suit the operator or source that uses it.
    CheckKindMismatch,
    /// An operator or source parameter is out of its range (a zero period, a window step
    /// larger than its size, a width that is not a multiple of its slide, ...).
    CheckBadParam,
}

impl ImageError {
    /// Every error, in code order (code = index + 1).
    pub const ALL: [ImageError; 25] = [
        ImageError::HeaderEmpty,
        ImageError::HeaderBadMagic,
        ImageError::HeaderBadVersion,
        ImageError::HeaderBadLength,
        ImageError::HeaderBadCrc,
        ImageError::DecodeBadCbor,
        ImageError::DecodeBadShape,
        ImageError::DecodeBadValue,
        ImageError::DecodeBadName,
        ImageError::DecodeTrailingBytes,
        ImageError::LoadTooManyRoutes,
        ImageError::LoadTooManySources,
        ImageError::LoadTooManyNodes,
        ImageError::LoadTooManyWindows,
        ImageError::LoadMailboxTooDeep,
        ImageError::LoadWindowTooLarge,
        ImageError::CheckMissingRoute,
        ImageError::CheckMissingNode,
        ImageError::CheckMissingMailbox,
        ImageError::CheckNodeInputs,
        ImageError::CheckMailboxShared,
        ImageError::CheckTwoProducers,
        ImageError::CheckNotTopological,
        ImageError::CheckKindMismatch,
        ImageError::CheckBadParam,
    ];

    /// The stable code (1 ..= 25); 0 means "loaded" in a describe.
    pub fn code(self) -> u8 {
        // `ALL` lists the variants in declaration order.
        self as u8 + 1
    }

    /// The error with this code.
    pub fn from_code(code: u8) -> Option<ImageError> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

impl From<Bad> for ImageError {
    fn from(bad: Bad) -> Self {
        match bad {
            Bad::Cbor => ImageError::DecodeBadCbor,
            Bad::Shape => ImageError::DecodeBadShape,
            Bad::Range => ImageError::DecodeBadValue,
            Bad::TooLong => ImageError::DecodeBadName,
            Bad::Trailing => ImageError::DecodeTrailingBytes,
        }
    }
}

/// What a route carries. Devices compute in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueKind {
    /// 64-bit floats.
    Float = 0,
    /// Integers.
    Int = 1,
    /// Booleans.
    Bool = 2,
}

/// Which node (or none) publishes on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// Nothing publishes on it.
    None,
    /// A synthetic source, by index.
    Source(u16),
    /// A node's output, by index.
    Node(u16),
    /// The host, over the link.
    Host,
}

/// One route of the partition, with its run-time state.
#[derive(Debug, Clone)]
pub struct Route {
    /// First 4 bytes (big-endian) of SHA-256 over the printed route name.
    pub id: u32,
    /// First 8 bytes of the schema hash.
    pub schema: [u8; 8],
    /// Value kind.
    pub kind: ValueKind,
    /// `LINK_TO_HOST` / `LINK_FROM_HOST` bits.
    pub link: u8,
    /// Who publishes on it.
    pub producer: Producer,
    /// Last sequence number (0 before the first event).
    pub seq: u32,
    /// Union of every event's taints.
    pub seen: TaintSet,
    /// Taints to add to the next event (a loss was detected before it).
    pub pending: TaintSet,
    /// The last event (meaningful once `seq > 0`).
    pub latest: Latest,
    /// Every event of the route carries `det_seeded_entropy` by construction (it is fed by a
    /// source with noise): its declared taints (see [`Route::declared`]). A flag, not a set: it
    /// is the only taint a device declares, and a board holds one per route.
    pub seeded: bool,
    /// The route's row went to the host in a routes reply this session (link v1.1): the host
    /// holds its references, so its events may go in short form.
    pub announced: bool,
}

/// What a route keeps of its last event (its seq is the route's `seq`). Kept compact: a board
/// holds one per route.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latest {
    /// The value as `f64`.
    pub value: f64,
    /// Event time.
    pub time_us: i64,
    /// Control epoch.
    pub epoch: u32,
    /// Taints.
    pub taints: TaintSet,
    /// Lineage.
    pub lineage: Lineage,
}

impl Route {
    /// The taints every event of the route carries by construction; the link leaves them out
    /// of compact events (docs/wire.md 2.5).
    pub fn declared(&self) -> TaintSet {
        if self.seeded {
            TaintSet::of(Taint::DetSeededEntropy)
        } else {
            TaintSet::EMPTY
        }
    }

    /// The last event, if the route had one.
    pub fn latest_event(&self, index: u16) -> Option<Event> {
        if self.seq == 0 {
            return None;
        }
        let l = &self.latest;
        Some(Event {
            route: index,
            seq: self.seq,
            time_us: l.time_us,
            epoch: l.epoch,
            taints: l.taints,
            lineage: l.lineage,
            value: to_value(self.kind, l.value),
        })
    }
}

/// A device value (`f64`) as the wire value of a route of kind `kind`.
pub fn to_value(kind: ValueKind, x: f64) -> Value {
    match kind {
        ValueKind::Float => Value::Float(x),
        ValueKind::Int => Value::Int(x as i64),
        ValueKind::Bool => Value::Bool(x != 0.0),
    }
}

/// Source waveforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Waveform {
    /// `center` (plus noise).
    Constant = 0,
    /// A triangle between `center - amplitude` and `center + amplitude` over `cycle` ticks
    /// (plus noise).
    Triangle = 1,
    /// A random walk from `center`, steps uniform in `[-noise, noise]`, clamped to
    /// `center ± amplitude`.
    RandomWalk = 2,
}

/// A synthetic seeded source, with its run-time state.
#[derive(Debug, Clone)]
pub struct Source {
    /// The route it publishes on.
    pub route: u16,
    /// Its waveform.
    pub waveform: Waveform,
    /// Time between values.
    pub period_us: i64,
    /// Time of the first value after the partition starts.
    pub phase_us: i64,
    /// Centre value.
    pub center: f64,
    /// Half the range.
    pub amplitude: f64,
    /// Triangle length in ticks.
    pub cycle: u32,
    /// Noise amplitude (random-walk step).
    pub noise: f64,
    /// Generator state.
    pub rng: u64,
    /// Values produced so far.
    pub tick: u64,
    /// The random walk's position.
    pub walk: f64,
    /// When the next value is due.
    pub next_us: i64,
}

/// Operator codes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpCode {
    /// Threshold filter.
    Threshold = 0,
    /// Deadband.
    Deadband = 1,
    /// Scale and offset.
    Scale = 2,
    /// Count window with an aggregate.
    CountWindow = 3,
    /// Time window with an aggregate.
    TimeWindow = 4,
    /// Rate limiter.
    RateLimit = 5,
    /// Latest: at most one value per period (the latest wins).
    Latest = 6,
    /// Write binding: desired in, reported and effective out.
    WriteBinding = 7,
}

/// An item in a mailbox: one event of the node's input route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item {
    /// The value as `f64`.
    pub value: f64,
    /// Event time.
    pub time_us: i64,
    /// Its sequence number on the input route.
    pub seq: u32,
    /// Its taints.
    pub taints: TaintSet,
}

/// A value in a count window remembers where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tag {
    /// Sequence number on the input route.
    pub seq: u32,
    /// Taints.
    pub taints: TaintSet,
}

/// What a device keeps of a time window's pane for lineage: the pane's index, the seq of its
/// first value and the join of its values' taints.
pub type PaneTag = (i64, u32, TaintSet);

/// An operator with its parameters and state. Window operators keep their values in the
/// partition's window pool, at index `window`.
#[derive(Debug, Clone)]
pub enum Op {
    /// Passes values the threshold accepts.
    Threshold(Threshold),
    /// Passes values that moved at least the band.
    Deadband(Deadband),
    /// `value * scale + offset`.
    Scale(Scale),
    /// Count window.
    CountWindow {
        /// Index in the window pool.
        window: u8,
        /// What it emits.
        aggregate: Aggregate,
        /// Values per window.
        size: u16,
        /// Values between emissions.
        step: u16,
    },
    /// Time window on event time, closed by the watermark (the largest event time seen).
    TimeWindow {
        /// Index in the window pool.
        window: u8,
        /// What it emits.
        aggregate: Aggregate,
        /// Window length.
        width_us: i64,
        /// Slide (window ends are multiples of it).
        slide_us: i64,
    },
    /// Rate limiter.
    RateLimit {
        /// The token bucket.
        limiter: RateLimiter,
        /// `delivery_sampled` once a value was dropped, until the next one passes.
        pending: TaintSet,
    },
    /// Latest: the kernel holds the latest value and its event time, tagged with the seq of
    /// the batch's first value. (Every node is as large as its largest operator, and a board
    /// holds one per node: keep these compact.)
    Latest(latest::Latest<(f64, i64), u32>),
    /// Write binding with a simulated actuator (desired values tagged with their seq).
    WriteBinding {
        /// The reported route (the effective route is the node's output).
        reported: u16,
        /// The pending write and the setting in effect.
        binding: WriteBinding<f64, u32>,
    },
}

impl Op {
    /// The operator's code.
    pub fn code(&self) -> OpCode {
        match self {
            Op::Threshold(_) => OpCode::Threshold,
            Op::Deadband(_) => OpCode::Deadband,
            Op::Scale(_) => OpCode::Scale,
            Op::CountWindow { .. } => OpCode::CountWindow,
            Op::TimeWindow { .. } => OpCode::TimeWindow,
            Op::RateLimit { .. } => OpCode::RateLimit,
            Op::Latest { .. } => OpCode::Latest,
            Op::WriteBinding { .. } => OpCode::WriteBinding,
        }
    }
}

/// One node: its operator, routes and input mailbox.
#[derive(Debug, Clone)]
pub struct Node<const Q: usize> {
    /// The operator.
    pub op: Op,
    /// The route its input edge comes from.
    pub input: u16,
    /// Its output route.
    pub output: u16,
    /// Its input mailbox.
    pub mailbox: Mailbox<Item, Slots<Item, Q>>,
    /// Taints for its next output (its mailbox lost an item).
    pub pending: TaintSet,
}

/// Window storage: `P` values (count windows) or panes (time windows).
#[derive(Debug, Clone)]
pub enum Window<const P: usize> {
    /// A slot being filled while the image loads.
    Empty,
    /// A count window.
    Count(CountWindow<Tag, Slots<(f64, Tag), P>>),
    /// A time window, and for each pane slot the pane it last held, the seq of the first value
    /// that went into it (a window's parents start there) and the taints of its values.
    Time(TimeWindows<Slots<Pane, P>>, [PaneTag; P]),
}

/// A loaded partition: every table of the image with its run-time state, in fixed-capacity
/// tables. `R` routes, `N` nodes, `S` sources, `W` windows, `Q` slots per mailbox, `P` slots
/// per window.
#[derive(Debug, Clone)]
pub struct Partition<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> {
    /// The manifest this partition was cut from.
    pub manifest_id: [u8; 32],
    /// Partition name.
    pub name: heapless::String<PARTITION_NAME_MAX>,
    /// Routes.
    pub routes: Vec<Route, R>,
    /// Nodes, in topological order.
    pub nodes: Vec<Node<Q>, N>,
    /// Sources.
    pub sources: Vec<Source, S>,
    /// Window storage.
    pub windows: Vec<Window<P>, W>,
}

impl<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Default
    for Partition<R, N, S, W, Q, P>
{
    fn default() -> Self {
        Partition {
            manifest_id: [0; 32],
            name: heapless::String::new(),
            routes: Vec::new(),
            nodes: Vec::new(),
            sources: Vec::new(),
            windows: Vec::new(),
        }
    }
}

/// The image body inside a region: checks the header and returns the body.
pub fn body(region: &[u8]) -> Result<&[u8], ImageError> {
    let header = region.get(..HEADER_LEN).ok_or(ImageError::HeaderBadLength)?;
    let magic = &header[..4];
    if magic.iter().all(|b| *b == 0x00) || magic.iter().all(|b| *b == 0xFF) {
        return Err(ImageError::HeaderEmpty);
    }
    if magic != MAGIC {
        return Err(ImageError::HeaderBadMagic);
    }
    if header[4] != FORMAT || header[5..8] != [0, 0, 0] {
        return Err(ImageError::HeaderBadVersion);
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let body = region.get(HEADER_LEN..HEADER_LEN.saturating_add(len)).ok_or(ImageError::HeaderBadLength)?;
    if crc32c(body) != crc {
        return Err(ImageError::HeaderBadCrc);
    }
    Ok(body)
}

fn aggregate(code: u8) -> Result<Aggregate, ImageError> {
    Ok(match code {
        0 => Aggregate::Count,
        1 => Aggregate::Sum,
        2 => Aggregate::Mean,
        3 => Aggregate::Min,
        4 => Aggregate::Max,
        _ => return Err(ImageError::DecodeBadValue),
    })
}

/// The wire code of an aggregate.
pub fn aggregate_code(a: Aggregate) -> u8 {
    match a {
        Aggregate::Count => 0,
        Aggregate::Sum => 1,
        Aggregate::Mean => 2,
        Aggregate::Min => 3,
        Aggregate::Max => 4,
    }
}

fn overflow(code: u8) -> Result<Overflow, ImageError> {
    Ok(match code {
        0 => Overflow::Block,
        1 => Overflow::DropOldest,
        2 => Overflow::DropNewest,
        3 => Overflow::Reject,
        _ => return Err(ImageError::DecodeBadValue),
    })
}

/// The wire code of an overflow policy.
pub fn overflow_code(o: Overflow) -> u8 {
    match o {
        Overflow::Block => 0,
        Overflow::DropOldest => 1,
        Overflow::DropNewest => 2,
        Overflow::Reject => 3,
    }
}

/// A time parameter: positive microseconds that fit comfortably in `i64` arithmetic.
fn period(r: &mut Reader<'_>) -> Result<i64, ImageError> {
    let us = r.u64()?;
    if us == 0 || us > (1 << 40) {
        return Err(ImageError::CheckBadParam);
    }
    Ok(us as i64)
}

/// A finite float parameter.
fn finite(r: &mut Reader<'_>) -> Result<f64, ImageError> {
    let x = r.f64()?;
    if x.is_nan() || x.is_infinite() {
        return Err(ImageError::CheckBadParam);
    }
    Ok(x)
}

impl<const R: usize, const N: usize, const S: usize, const W: usize, const Q: usize, const P: usize> Partition<R, N, S, W, Q, P> {
    /// Empties every table.
    pub fn clear(&mut self) {
        self.manifest_id = [0; 32];
        self.name.clear();
        self.routes.clear();
        self.nodes.clear();
        self.sources.clear();
        self.windows.clear();
    }

    /// Loads the image in `region` (a header, a body, and anything after it), with sources
    /// starting at `start_us`. On error the partition is left empty.
    pub fn load(&mut self, region: &[u8], start_us: i64) -> Result<(), ImageError> {
        self.clear();
        let result = body(region).and_then(|b| self.load_body(b, start_us));
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn route_index(&self, r: &mut Reader<'_>) -> Result<u16, ImageError> {
        let index = r.u16().map_err(|_| ImageError::CheckMissingRoute)?;
        if usize::from(index) >= self.routes.len() {
            return Err(ImageError::CheckMissingRoute);
        }
        Ok(index)
    }

    fn set_producer(&mut self, route: u16, producer: Producer) -> Result<(), ImageError> {
        let r = self.routes.get_mut(usize::from(route)).ok_or(ImageError::CheckMissingRoute)?;
        if r.producer != Producer::None {
            return Err(ImageError::CheckTwoProducers);
        }
        r.producer = producer;
        Ok(())
    }

    fn kind(&self, route: u16) -> ValueKind {
        self.routes.get(usize::from(route)).map_or(ValueKind::Bool, |r| r.kind)
    }

    fn load_body(&mut self, body: &[u8], start_us: i64) -> Result<(), ImageError> {
        let mut r = Reader::new(body);
        r.array_of(10)?;
        if r.u8()? != FORMAT {
            return Err(ImageError::DecodeBadValue);
        }
        self.manifest_id = r.bytes_exact()?;
        let name = r.str()?;
        if name.is_empty() || self.name.push_str(name).is_err() {
            return Err(ImageError::DecodeBadName);
        }

        self.load_routes(&mut r)?;
        self.load_sources(&mut r, start_us)?;
        self.load_nodes(&mut r)?;
        self.load_windows()?;
        self.load_edges(&mut r)?;
        self.load_links(&mut r)?;
        self.load_names(&mut r)?;
        r.finish()?;
        self.check_graph()
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_routes(&mut self, r: &mut Reader<'_>) -> Result<(), ImageError> {
        // routes = [* [id, schema, kind]]
        let n = r.array()?;
        for _ in 0..n {
            r.array_of(3)?;
            let id = r.u32()?;
            let schema: [u8; 8] = r.bytes_exact()?;
            let kind = match r.u8()? {
                0 => ValueKind::Float,
                1 => ValueKind::Int,
                2 => ValueKind::Bool,
                _ => return Err(ImageError::DecodeBadValue),
            };
            let route = Route {
                id,
                schema,
                kind,
                link: 0,
                producer: Producer::None,
                seq: 0,
                seen: TaintSet::EMPTY,
                pending: TaintSet::EMPTY,
                latest: Latest::default(),
                seeded: false,
                announced: false,
            };
            self.routes.push(route).map_err(|_| ImageError::LoadTooManyRoutes)?;
        }

        Ok(())
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_sources(&mut self, r: &mut Reader<'_>, start_us: i64) -> Result<(), ImageError> {
        // sources = [* [route, waveform, period_us, phase_us, seed, center, amplitude, cycle, noise]]
        let n = r.array()?;
        for i in 0..n {
            r.array_of(9)?;
            let route = self.route_index(r)?;
            let waveform = match r.u8()? {
                0 => Waveform::Constant,
                1 => Waveform::Triangle,
                2 => Waveform::RandomWalk,
                _ => return Err(ImageError::DecodeBadValue),
            };
            let period_us = period(r)?;
            let phase_us = r.u64()?;
            if phase_us > (1 << 40) {
                return Err(ImageError::CheckBadParam);
            }
            let seed = r.u64()?;
            let center = finite(r)?;
            let amplitude = finite(r)?;
            let cycle = r.u32()?;
            let noise = finite(r)?;
            if waveform == Waveform::Triangle && cycle == 0 || amplitude < 0.0 || noise < 0.0 {
                return Err(ImageError::CheckBadParam);
            }
            if self.kind(route) != ValueKind::Float {
                return Err(ImageError::CheckKindMismatch);
            }
            self.set_producer(route, Producer::Source(i as u16))?;
            if noise > 0.0 {
                if let Some(r) = self.routes.get_mut(usize::from(route)) {
                    r.seeded = true;
                }
            }
            let source = Source {
                route,
                waveform,
                period_us,
                phase_us: phase_us as i64,
                center,
                amplitude,
                cycle,
                noise,
                rng: seed,
                tick: 0,
                walk: center,
                next_us: start_us.saturating_add(phase_us as i64),
            };
            self.sources.push(source).map_err(|_| ImageError::LoadTooManySources)?;
        }

        Ok(())
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_nodes(&mut self, r: &mut Reader<'_>) -> Result<(), ImageError> {
        // nodes = [* [op, out, params...]]; inputs and mailboxes come from the edges below.
        let n = r.array()?;
        for i in 0..n {
            let fields = r.array()?;
            let code = r.u8()?;
            let output = self.route_index(r)?;
            let expect = |count: u64| if fields == count { Ok(()) } else { Err(ImageError::DecodeBadShape) };
            let op = match code {
                0 => {
                    expect(5)?;
                    let mode = r.u8()?;
                    let (a, b) = (finite(r)?, finite(r)?);
                    let threshold = match mode {
                        0 => Threshold::Above(a),
                        1 => Threshold::Below(a),
                        2 => Threshold::Inside(a, b),
                        3 => Threshold::Outside(a, b),
                        _ => return Err(ImageError::DecodeBadValue),
                    };
                    // The kernel's rule (limits in order), as on the host.
                    Op::Threshold(threshold.checked().map_err(|_| ImageError::CheckBadParam)?)
                }
                1 => {
                    expect(3)?;
                    Op::Deadband(Deadband::new(finite(r)?).map_err(|_| ImageError::CheckBadParam)?)
                }
                2 => {
                    expect(4)?;
                    Op::Scale(Scale { scale: finite(r)?, offset: finite(r)? })
                }
                3 => {
                    expect(5)?;
                    let size = r.u16()?;
                    let step = r.u16()?;
                    let aggregate = aggregate(r.u8()?)?;
                    // The window itself is made by `load_windows`, once every node is read.
                    Op::CountWindow { window: u8::MAX, aggregate, size, step }
                }
                4 => {
                    expect(5)?;
                    let width_us = period(r)?;
                    let slide_us = period(r)?;
                    let aggregate = aggregate(r.u8()?)?;
                    if width_us % slide_us != 0 {
                        return Err(ImageError::CheckBadParam);
                    }
                    Op::TimeWindow { window: u8::MAX, aggregate, width_us, slide_us }
                }
                5 => {
                    expect(4)?;
                    let max_events = r.u32()?;
                    let interval_us = period(r)?;
                    if max_events == 0 {
                        return Err(ImageError::CheckBadParam);
                    }
                    Op::RateLimit { limiter: RateLimiter::new(max_events.into(), interval_us as u64), pending: TaintSet::EMPTY }
                }
                6 => {
                    expect(3)?;
                    Op::Latest(latest::Latest::new(period(r)?).map_err(|_| ImageError::CheckBadParam)?)
                }
                7 => {
                    expect(4)?;
                    let reported = self.route_index(r)?;
                    let apply_us = r.u64()?;
                    if apply_us > (1 << 40) {
                        return Err(ImageError::CheckBadParam);
                    }
                    self.set_producer(reported, Producer::Node(i as u16))?;
                    let binding = WriteBinding::new(apply_us as i64).map_err(|_| ImageError::CheckBadParam)?;
                    Op::WriteBinding { reported, binding }
                }
                _ => return Err(ImageError::DecodeBadValue),
            };
            self.set_producer(output, Producer::Node(i as u16))?;
            let node = Node {
                op,
                input: u16::MAX, // set by its edge
                output,
                mailbox: Mailbox::new(Slots::new(0), Overflow::DropOldest), // set by its edge
                pending: TaintSet::EMPTY,
            };
            self.nodes.push(node).map_err(|_| ImageError::LoadTooManyNodes)?;
        }

        Ok(())
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_edges(&mut self, r: &mut Reader<'_>) -> Result<(), ImageError> {
        // mailboxes = [* [capacity, overflow]]: at most one per node, used by exactly one edge.
        let mut mailboxes: Vec<(u16, Overflow, bool), N> = Vec::new();
        let n = r.array()?;
        for _ in 0..n {
            r.array_of(2)?;
            let capacity = r.u16()?;
            let policy = overflow(r.u8()?)?;
            if capacity == 0 || usize::from(capacity) > Q {
                return Err(ImageError::LoadMailboxTooDeep);
            }
            mailboxes.push((capacity, policy, false)).map_err(|_| ImageError::CheckMailboxShared)?;
        }

        // edges = [* [from_route, to_node, mailbox]]
        let n = r.array()?;
        for _ in 0..n {
            r.array_of(3)?;
            let from = self.route_index(r)?;
            let to = usize::from(r.u16()?);
            let mailbox = usize::from(r.u16()?);
            if to >= self.nodes.len() {
                return Err(ImageError::CheckMissingNode);
            }
            let (capacity, policy, used) = mailboxes.get_mut(mailbox).ok_or(ImageError::CheckMissingMailbox)?;
            if *used {
                return Err(ImageError::CheckMailboxShared);
            }
            *used = true;
            let node = &mut self.nodes[to];
            if node.input != u16::MAX {
                return Err(ImageError::CheckNodeInputs);
            }
            node.input = from;
            node.mailbox = Mailbox::new(Slots::new((*capacity).into()), *policy);
        }
        if mailboxes.iter().any(|(_, _, used)| !used) {
            return Err(ImageError::CheckMailboxShared);
        }

        Ok(())
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_links(&mut self, r: &mut Reader<'_>) -> Result<(), ImageError> {
        // links = [* [route, direction]]
        let n = r.array()?;
        for _ in 0..n {
            r.array_of(2)?;
            let route = self.route_index(r)?;
            let direction = r.u8()?;
            match direction {
                LINK_TO_HOST => {}
                LINK_FROM_HOST => self.set_producer(route, Producer::Host)?,
                _ => return Err(ImageError::DecodeBadValue),
            }
            self.routes[usize::from(route)].link |= direction;
        }

        Ok(())
    }

    // Each table is read by its own function, not inlined: their temporaries then share one
    // stack frame's worth of space instead of adding up (this runs on a board's stack).
    #[inline(never)]
    fn load_names(&mut self, r: &mut Reader<'_>) -> Result<(), ImageError> {
        // names = [* tstr] / null: for people and tools; a device does not keep them.
        if !r.null()? {
            let n = r.array()?;
            if n > self.routes.len() as u64 {
                return Err(ImageError::DecodeBadName);
            }
            for _ in 0..n {
                r.str()?;
            }
        }
        Ok(())
    }

    /// Makes the window of every window node. Separate from `load_nodes` so that building a
    /// window (a few hundred bytes, moved around by value) does not stack on top of it.
    #[inline(never)]
    fn load_windows(&mut self) -> Result<(), ImageError> {
        for i in 0..self.nodes.len() {
            let index = match self.nodes[i].op {
                Op::CountWindow { size, step, .. } => self.add_count_window(size, step)?,
                Op::TimeWindow { width_us, slide_us, .. } => self.add_time_window(WindowSpec { width_us, slide_us })?,
                _ => continue,
            };
            if let Op::CountWindow { window, .. } | Op::TimeWindow { window, .. } = &mut self.nodes[i].op {
                *window = index;
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn add_count_window(&mut self, size: u16, step: u16) -> Result<u8, ImageError> {
        if usize::from(size) > P {
            return Err(ImageError::LoadWindowTooLarge);
        }
        let index = self.windows.len() as u8;
        self.windows.push(Window::Empty).map_err(|_| ImageError::LoadTooManyWindows)?;
        let slot = self.windows.last_mut().ok_or(ImageError::LoadTooManyWindows)?;
        *slot = Window::Count(CountWindow::new(Slots::new(size.into()), step.into()).map_err(|_| ImageError::CheckBadParam)?);
        Ok(index)
    }

    #[inline(never)]
    fn add_time_window(&mut self, spec: WindowSpec) -> Result<u8, ImageError> {
        // The kernel needs panes-per-window + 1 slots; it gets all `P`, and the spare ones hold
        // values that arrive ahead of the open windows.
        if spec.panes_per_window() >= P as i64 {
            return Err(ImageError::LoadWindowTooLarge);
        }
        let index = self.windows.len() as u8;
        self.windows.push(Window::Empty).map_err(|_| ImageError::LoadTooManyWindows)?;
        let slot = self.windows.last_mut().ok_or(ImageError::LoadTooManyWindows)?;
        // Built in its slot: moving a window into the table would cost stack for extra copies.
        *slot = Window::Time(TimeWindows::new(spec, Slots::new(P)).map_err(|_| ImageError::CheckBadParam)?, [(i64::MIN, 0, TaintSet::EMPTY); P]);
        Ok(index)
    }

    /// Checks each node's wiring and kinds, in table order (topological), and gives every
    /// route its declared taints on the way: a node passes its input's on to its outputs
    /// (sources with noise declared theirs as they were read).
    fn check_graph(&mut self) -> Result<(), ImageError> {
        for (i, node) in self.nodes.iter().enumerate() {
            let seeded = self.routes.get(usize::from(node.input)).is_some_and(|r| r.seeded);
            let second = match node.op {
                Op::WriteBinding { reported, .. } => reported,
                _ => node.output,
            };
            for out in [node.output, second] {
                if let Some(route) = self.routes.get_mut(usize::from(out)) {
                    route.seeded |= seeded;
                }
            }
            let input = self.routes.get(usize::from(node.input)).ok_or(ImageError::CheckNodeInputs)?;
            if let Producer::Node(j) = input.producer {
                if usize::from(j) >= i {
                    return Err(ImageError::CheckNotTopological);
                }
            }
            let (kin, kout) = (input.kind, self.kind(node.output));
            let numeric = kin != ValueKind::Bool;
            let ok = match &node.op {
                Op::Threshold(_) | Op::RateLimit { .. } | Op::Latest { .. } => kin == kout,
                Op::Deadband(_) | Op::Scale(_) | Op::CountWindow { .. } | Op::TimeWindow { .. } => {
                    numeric && kout == ValueKind::Float
                }
                Op::WriteBinding { reported, .. } => kin == kout && self.kind(*reported) == kin,
            };
            let ok = ok && match &node.op {
                Op::Threshold(_) => numeric,
                _ => true,
            };
            if !ok {
                return Err(ImageError::CheckKindMismatch);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes are 1..=25, distinct, and round-trip.
    #[test]
    fn error_codes_round_trip() {
        for (i, e) in ImageError::ALL.iter().enumerate() {
            assert_eq!(e.code() as usize, i + 1);
            assert_eq!(ImageError::from_code(e.code()), Some(*e));
        }
        assert_eq!(ImageError::from_code(0), None);
        assert_eq!(ImageError::from_code(26), None);
    }

    /// Erased flash (0x00 or 0xFF), a foreign header and a short region each have their error.
    #[test]
    fn header_errors() {
        assert_eq!(body(&[0u8; 64]), Err(ImageError::HeaderEmpty));
        assert_eq!(body(&[0xFFu8; 64]), Err(ImageError::HeaderEmpty));
        assert_eq!(body(b"ELF\x7f000000000000"), Err(ImageError::HeaderBadMagic));
        assert_eq!(body(b"MFPI"), Err(ImageError::HeaderBadLength));
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(b"MFPI");
        h[4] = 2;
        assert_eq!(body(&h), Err(ImageError::HeaderBadVersion));
        h[4] = 1;
        h[8] = 1; // one body byte, which is missing
        assert_eq!(body(&h), Err(ImageError::HeaderBadLength));
    }
}
