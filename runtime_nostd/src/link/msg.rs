//! Link messages (docs/wire.md section 2): the validated representation ([`Message`], [`Body`]
//! and one struct per kind), shared by both versions, and the **v1** encoding (section 2.13),
//! which the host role speaks to boards built before v1.1 ([`super::v11`] is the v1.1 encoding).
//!
//! In v1 every message is a CBOR array `[kind, id, fields...]`: `kind` says which message it
//! is, `id` is the sender's link sequence number (one per message sent, from 0 after a session
//! reset, wrapping at 2^32), which lets the receiver see lost messages and lets answers name
//! their request. [`Message::decode`] checks everything a receiver relies on (arity, types,
//! ranges, lengths, no trailing bytes) and never panics; [`Message::encode`] writes the one
//! encoding of a message.

use crate::cbor::{Bad, Reader, Writer};
use crate::taint::TaintSet;

use super::LinkError;

/// Link protocol version spoken by this crate.
pub const VERSION: u32 = 1;

/// The smallest `max_message` a link v1 peer may declare: every fixed-size message fits.
pub const MAX_MESSAGE_MIN: u32 = 64;

/// Longest board and partition name on the link, in bytes.
pub const NAME_LEN_MAX: usize = 32;

/// Items a page may hold; a reply holds fewer when they do not fit `max_message`.
pub const PAGE_LEN_MAX: u16 = 16;

/// Message kinds: the first item of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Host opens or resumes a session.
    Hello = 1,
    /// Device answers a hello: what it is and what it runs.
    Describe = 2,
    /// One event on a link route (both directions).
    Event = 3,
    /// Device accepted a request.
    Ack = 4,
    /// Device refused a message, with a reason.
    Nack = 5,
    /// Host asks for state.
    Query = 6,
    /// Device answers a query.
    Reply = 7,
    /// Keepalive (both directions).
    Heartbeat = 8,
    /// Host advances the device's time (lockstep).
    Step = 9,
    /// Host starts a partition upload.
    UploadBegin = 10,
    /// Host sends a piece of the image.
    UploadChunk = 11,
    /// Host asks the device to check and activate the uploaded image.
    UploadCommit = 12,
    /// Host abandons an upload.
    UploadAbort = 13,
    /// Host hands the clock back: the device leaves lockstep and runs on its own timer.
    Resume = 14,
}

impl Kind {
    /// The kind with this code.
    pub fn from_code(code: u64) -> Option<Kind> {
        Some(match code {
            1 => Kind::Hello,
            2 => Kind::Describe,
            3 => Kind::Event,
            4 => Kind::Ack,
            5 => Kind::Nack,
            6 => Kind::Query,
            7 => Kind::Reply,
            8 => Kind::Heartbeat,
            9 => Kind::Step,
            10 => Kind::UploadBegin,
            11 => Kind::UploadChunk,
            12 => Kind::UploadCommit,
            13 => Kind::UploadAbort,
            14 => Kind::Resume,
            _ => return None,
        })
    }
}

/// `hello.flags` bit: run in lockstep (time advances only with `step`).
pub const HELLO_LOCKSTEP: u8 = 1 << 0;
/// `hello.flags` bit: restart the partition from its image, and the link ids from 0.
pub const HELLO_RESET: u8 = 1 << 1;
/// `describe.flags` bit (v1.1): the session in force was opened by a reset hello (the session id
/// is the reset token: a second reset hello with it is a retry and does not reset again).
pub const DESCRIBE_RESET: u8 = 1 << 1;

/// `describe.capabilities` bit: events on link routes.
pub const CAP_EVENTS: u32 = 1 << 0;
/// `describe.capabilities` bit: queries.
pub const CAP_QUERIES: u32 = 1 << 1;
/// `describe.capabilities` bit: lockstep steps.
pub const CAP_LOCKSTEP: u32 = 1 << 2;
/// `describe.capabilities` bit: partition upload.
pub const CAP_UPLOAD: u32 = 1 << 3;
/// `describe.capabilities` bit: synthetic seeded sources.
pub const CAP_SOURCES: u32 = 1 << 4;
/// `describe.capabilities` bit: heartbeats.
pub const CAP_HEARTBEAT: u32 = 1 << 5;

/// A value on a route. Devices compute in `f64`; an `Int` route carries integers exactly up to
/// 2^53 in magnitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A float, always encoded in 64 bits.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// What an event derives from: `count` consecutive events of route `route` starting at
/// `first_seq`. `count == 0` marks a source event (no parents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lineage {
    /// The parent route.
    pub route: u16,
    /// The first parent's sequence number.
    pub first_seq: u32,
    /// How many parents.
    pub count: u32,
}

/// `hello`: the host opens (new `session`) or resumes (same `session`) a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Link protocol version the host speaks.
    pub version: u32,
    /// The host's largest message; the link uses the smaller of both ends'.
    pub max_message: u32,
    /// Chosen by the host; a new value means a new session.
    pub session: u32,
    /// [`HELLO_LOCKSTEP`], [`HELLO_RESET`].
    pub flags: u8,
    /// With `HELLO_LOCKSTEP`: the device's time after this hello, in microseconds.
    pub time_us: i64,
}

/// `describe`: the device's answer to a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Describe<'a> {
    /// Link protocol version the device speaks.
    pub version: u32,
    /// The device's largest message.
    pub max_message: u32,
    /// `CAP_*` bits.
    pub capabilities: u32,
    /// Board name (`boards/<name>/`), at most [`NAME_LEN_MAX`] bytes.
    pub board: &'a str,
    /// 0 when a partition image is loaded, else the [`crate::image::ImageError`] code.
    pub image_status: u8,
    /// The loaded image's manifest id; `None` when no image is loaded.
    pub manifest_id: Option<[u8; 32]>,
    /// The loaded partition's name ("" when none).
    pub partition: &'a str,
    /// The session now in force.
    pub session: u32,
    /// [`HELLO_LOCKSTEP`] when the device is in lockstep now, [`DESCRIBE_RESET`] when this
    /// session was opened by a reset hello.
    pub flags: u8,
    /// (v1.1) The id of the hello this answers; `None` in v1, whose describe names no request.
    pub ref_id: Option<u32>,
    /// (v1.1) The device's time, in microseconds; 0 in v1.
    pub time_us: i64,
    /// (v1.1) The control epoch in force; 0 in v1.
    pub epoch: u32,
}

/// `event`: one event on a route, with its metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Index in the partition's route table.
    pub route: u16,
    /// The route's sequence number (from 1).
    pub seq: u32,
    /// Event time, microseconds on the device clock.
    pub time_us: i64,
    /// Control epoch it was produced in.
    pub epoch: u32,
    /// Taint bits ([`crate::taint::Taint`] discriminants).
    pub taints: TaintSet,
    /// What it was derived from.
    pub lineage: Lineage,
    /// The value.
    pub value: Value,
}

/// `ack`: the request `ref_id` was carried out. `info` depends on the request: the device time
/// reached for a step, the bytes received for an upload chunk, else 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The id of the acknowledged message.
    pub ref_id: u32,
    /// Request-specific detail.
    pub info: i64,
}

/// Why a message was refused. Codes are stable (docs/wire.md 2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NackReason {
    /// [`LinkError::DecodeBadCbor`].
    DecodeBadCbor = 1,
    /// [`LinkError::DecodeNotArray`].
    DecodeNotArray = 2,
    /// [`LinkError::DecodeUnknownKind`].
    DecodeUnknownKind = 3,
    /// [`LinkError::DecodeBadArity`].
    DecodeBadArity = 4,
    /// [`LinkError::DecodeBadField`].
    DecodeBadField = 5,
    /// [`LinkError::DecodeTooLong`].
    DecodeTooLong = 6,
    /// [`LinkError::DecodeTrailingBytes`].
    DecodeTrailingBytes = 7,
    /// A frame failed its CRC.
    FrameBadCrc = 8,
    /// A frame's COBS was malformed.
    FrameBadCobs = 9,
    /// A frame's body was shorter than 5 bytes.
    FrameShort = 10,
    /// A frame or message was longer than the device's `max_message` (detail: that limit).
    FrameOversize = 11,
    /// A kind the device only sends (describe, reply, ack, nack).
    KindUnexpected = 12,
    /// No session: send a hello first.
    NoSession = 13,
    /// The hello's version is not spoken (detail: the device's version).
    VersionUnsupported = 14,
    /// The hello's `max_message` is below [`MAX_MESSAGE_MIN`] (detail: the minimum).
    MaxMessageTooSmall = 15,
    /// The event's route index is not in the route table (detail: the index).
    RouteUnknown = 16,
    /// The event's route is not a route from the host (detail: the index).
    RouteNotInbound = 17,
    /// The event's value has another kind than its route (detail: the route's kind).
    ValueKindMismatch = 18,
    /// The event's seq is not above the route's last (detail: the last seq).
    SeqNotIncreasing = 19,
    /// The device is still carrying out a step: resend after the step's ack.
    Busy = 20,
    /// A step to a time before the device's time.
    StepBackwards = 21,
    /// A step while the device is not in lockstep.
    NotLockstep = 22,
    /// A query kind the device does not know (detail: the kind).
    QueryUnknown = 23,
    /// A query argument out of range (detail: the argument).
    QueryBadArg = 24,
    /// The device cannot store uploads.
    UploadUnsupported = 25,
    /// A chunk or commit without a begin.
    UploadNotBegun = 26,
    /// A chunk not at the next expected offset (detail: that offset).
    UploadBadOffset = 27,
    /// The image is larger than the device can store (detail: the capacity).
    UploadTooLarge = 28,
    /// The uploaded bytes do not have the announced SHA-256.
    UploadDigestMismatch = 29,
    /// The uploaded image was refused by the image decoder (detail: the image error code).
    ImageInvalid = 30,
    /// The device has no partition loaded.
    NoImage = 31,
}

impl NackReason {
    /// The reason with this code.
    pub fn from_code(code: u64) -> Option<NackReason> {
        use NackReason::*;
        const ALL: [NackReason; 31] = [
            DecodeBadCbor, DecodeNotArray, DecodeUnknownKind, DecodeBadArity, DecodeBadField, DecodeTooLong,
            DecodeTrailingBytes, FrameBadCrc, FrameBadCobs, FrameShort, FrameOversize, KindUnexpected, NoSession,
            VersionUnsupported, MaxMessageTooSmall, RouteUnknown, RouteNotInbound, ValueKindMismatch, SeqNotIncreasing,
            Busy, StepBackwards, NotLockstep, QueryUnknown, QueryBadArg, UploadUnsupported, UploadNotBegun,
            UploadBadOffset, UploadTooLarge, UploadDigestMismatch, ImageInvalid, NoImage,
        ];
        ALL.iter().copied().find(|r| *r as u64 == code)
    }

    /// The nack reason for a message that failed to decode.
    pub fn from_decode(error: LinkError) -> NackReason {
        match error {
            LinkError::DecodeBadCbor => NackReason::DecodeBadCbor,
            LinkError::DecodeNotArray => NackReason::DecodeNotArray,
            LinkError::DecodeUnknownKind => NackReason::DecodeUnknownKind,
            LinkError::DecodeUnexpectedKind => NackReason::KindUnexpected,
            LinkError::DecodeBadArity => NackReason::DecodeBadArity,
            LinkError::DecodeBadField => NackReason::DecodeBadField,
            LinkError::DecodeTooLong | LinkError::EncodeTooLong => NackReason::DecodeTooLong,
            LinkError::DecodeNoReference => NackReason::DecodeBadField,
            LinkError::DecodeTrailingBytes => NackReason::DecodeTrailingBytes,
        }
    }
}

/// `nack`: a message was refused. `ref_id` is `None` when the refused message had no readable
/// id (a bad frame, or bytes that are not `[kind, id, ...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack {
    /// The id of the refused message, if it had one.
    pub ref_id: Option<u32>,
    /// Why.
    pub reason: NackReason,
    /// Reason-specific detail, 0 when none.
    pub detail: u32,
}

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum QueryKind {
    /// The route table, paged from route `arg`.
    Routes = 0,
    /// The nodes (operators), paged from node `arg`.
    Nodes = 1,
    /// The synthetic sources, paged from source `arg`.
    Sources = 2,
    /// Link, frame and executor counters.
    Counters = 3,
    /// Mailbox depths and flow counters, paged from node `arg`.
    Flow = 4,
    /// Taints seen per route, paged from route `arg`.
    Taints = 5,
    /// The latest event of route `arg`.
    Latest = 6,
    /// Board facts: uptime, stack peak, time, mode and table capacities.
    Board = 7,
}

impl QueryKind {
    /// The query kind with this code.
    pub fn from_code(code: u64) -> Option<QueryKind> {
        Some(match code {
            0 => QueryKind::Routes,
            1 => QueryKind::Nodes,
            2 => QueryKind::Sources,
            3 => QueryKind::Counters,
            4 => QueryKind::Flow,
            5 => QueryKind::Taints,
            6 => QueryKind::Latest,
            7 => QueryKind::Board,
            _ => return None,
        })
    }
}

/// `query`: the host asks for state. A query with an unknown `what` is still a valid message
/// (its code is kept), so the device can nack it with `QueryUnknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// What is asked for (the raw code; see [`QueryKind::from_code`]).
    pub what: u8,
    /// Start index for pages, route index for `Latest`, else 0.
    pub arg: u32,
}

/// One item of a paged reply: encodes as a fixed-length CBOR array. Sealed: the items are
/// the ones this module defines.
pub trait PageItem: item::Item {}

mod item {
    use crate::cbor::{Bad, Reader, Writer};

    /// The encoding of a page item (private: the CBOR helpers are crate-internal).
    pub trait Item: Sized {
        fn write(&self, w: &mut Writer<'_>);
        fn read(r: &mut Reader<'_>) -> Result<Self, Bad>;
    }
}

/// The items of a page.
#[derive(Clone, Copy)]
pub enum Items<'a, T> {
    /// Produced on demand (the device): item `i` of the page is `get(i)`.
    Lazy {
        /// Items in the page.
        count: u16,
        /// Item `i` of the page, `0 <= i < count`.
        get: &'a dyn Fn(u16) -> T,
    },
    /// Decoded (the host): the CBOR of `count` items, each already checked.
    Raw {
        /// Items in the page.
        count: u16,
        /// Their CBOR, one after the other.
        bytes: &'a [u8],
    },
}

impl<T> core::fmt::Debug for Items<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Items({})", self.len())
    }
}

impl<T> Items<'_, T> {
    /// Items in the page.
    pub fn len(&self) -> u16 {
        match self {
            Items::Lazy { count, .. } | Items::Raw { count, .. } => *count,
        }
    }

    /// True for an empty page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: PageItem> Items<'_, T> {
    /// Item `i` of the page (decoding it again for a decoded page).
    pub fn get(&self, i: u16) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        match self {
            Items::Lazy { get, .. } => Some(get(i)),
            Items::Raw { bytes, .. } => {
                let mut r = Reader::new(bytes);
                for _ in 0..i {
                    T::read(&mut r).ok()?;
                }
                T::read(&mut r).ok()
            }
        }
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

/// A page of a table: items `start .. start + items.len()` of `total`.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a, T> {
    /// Items in the whole table.
    pub total: u16,
    /// Index of the first item in this page.
    pub start: u16,
    /// The items.
    pub items: Items<'a, T>,
}

/// A route in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Route id: the first 4 bytes of SHA-256 over the printed route name, big-endian.
    pub id: u32,
    /// The first 8 bytes of the route's schema hash (truncated SHA-256).
    pub schema: [u8; 8],
    /// Value kind: 0 float, 1 int, 2 bool.
    pub kind: u8,
    /// Link direction bits: 1 to the host, 2 from the host.
    pub link: u8,
    /// The route's last sequence number.
    pub seq: u32,
    /// (v1.1) The route's declared taints: what every event of the route carries by
    /// construction (`det_seeded_entropy` downstream of a seeded source). `None` in v1.
    pub taints: Option<TaintSet>,
}

/// A node in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// Operator code (docs/wire.md 3.4).
    pub op: u8,
    /// The route its input edge comes from.
    pub input: u16,
    /// Its output route.
    pub output: u16,
    /// Its second output (a write binding's reported route).
    pub output2: Option<u16>,
    /// Its input mailbox's capacity.
    pub capacity: u16,
    /// Its input mailbox's overflow policy code.
    pub overflow: u8,
}

/// A synthetic source in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    /// The route it publishes on.
    pub route: u16,
    /// Waveform code.
    pub waveform: u8,
    /// Period between values.
    pub period_us: u32,
    /// Time of the first value after a reset.
    pub phase_us: u32,
}

/// A node's input mailbox: depth and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo {
    /// Node index.
    pub node: u16,
    /// Items queued now.
    pub depth: u16,
    /// Capacity.
    pub capacity: u16,
    /// Items queued since the reset.
    pub accepted: u32,
    /// Items taken by the node.
    pub delivered: u32,
    /// Items lost: evicted by drop_oldest or discarded by drop_newest.
    pub dropped: u32,
    /// Items refused by block or reject.
    pub refused: u32,
    /// Deepest the queue has been.
    pub depth_max: u16,
}

/// Taints of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaintInfo {
    /// Route index.
    pub route: u16,
    /// Union of the taints of every event the route carried.
    pub seen: TaintSet,
    /// Taints waiting to mark the route's next event (a drop was detected).
    pub pending: TaintSet,
}

/// Counters of the device (docs/wire.md 2.8 lists them in order). All wrap at 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames accepted by the frame decoder.
    pub frames: u32,
    /// Frames that failed their CRC.
    pub frame_crc_errors: u32,
    /// Frames with malformed COBS.
    pub frame_cobs_errors: u32,
    /// Frames shorter than 5 bytes.
    pub frame_short: u32,
    /// Frames longer than `max_message`.
    pub frame_oversize: u32,
    /// Messages decoded.
    pub messages_rx: u32,
    /// Messages sent.
    pub messages_tx: u32,
    /// Nacks sent.
    pub nacks_tx: u32,
    /// Gaps in the host's message ids (host messages lost on the way).
    pub rx_gaps: u32,
    /// Sessions opened (hellos with a new session).
    pub sessions: u32,
    /// Sessions resumed after the link went stale or down.
    pub resumes: u32,
    /// Times the link went stale (no message from the host within the stale timeout).
    pub stale: u32,
    /// Host events accepted.
    pub events_in: u32,
    /// Events sent to the host.
    pub events_out: u32,
    /// Events on routes to the host that could not be sent (link not up).
    pub events_unsent: u32,
    /// Items lost or refused by mailboxes.
    pub mailbox_dropped: u32,
    /// Values refused by time windows as late.
    pub late: u32,
    /// Values dropped by rate limiters.
    pub sampled: u32,
    /// Lockstep steps completed.
    pub steps: u32,
    /// Values produced by synthetic sources.
    pub source_events: u32,
}

/// Number of fields in [`Counters`] on the wire.
pub const COUNTERS_LEN: u64 = 20;

impl Counters {
    pub(super) fn fields(&self) -> [u32; COUNTERS_LEN as usize] {
        [
            self.frames,
            self.frame_crc_errors,
            self.frame_cobs_errors,
            self.frame_short,
            self.frame_oversize,
            self.messages_rx,
            self.messages_tx,
            self.nacks_tx,
            self.rx_gaps,
            self.sessions,
            self.resumes,
            self.stale,
            self.events_in,
            self.events_out,
            self.events_unsent,
            self.mailbox_dropped,
            self.late,
            self.sampled,
            self.steps,
            self.source_events,
        ]
    }

    pub(super) fn from_fields(f: [u32; COUNTERS_LEN as usize]) -> Counters {
        Counters {
            frames: f[0],
            frame_crc_errors: f[1],
            frame_cobs_errors: f[2],
            frame_short: f[3],
            frame_oversize: f[4],
            messages_rx: f[5],
            messages_tx: f[6],
            nacks_tx: f[7],
            rx_gaps: f[8],
            sessions: f[9],
            resumes: f[10],
            stale: f[11],
            events_in: f[12],
            events_out: f[13],
            events_unsent: f[14],
            mailbox_dropped: f[15],
            late: f[16],
            sampled: f[17],
            steps: f[18],
            source_events: f[19],
        }
    }
}

/// Table capacities of a device build: the largest partition it can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacities {
    /// Routes.
    pub routes: u16,
    /// Nodes (operators; also edges and mailboxes, one each per node).
    pub nodes: u16,
    /// Synthetic sources.
    pub sources: u16,
    /// Window operators (count and time windows together).
    pub windows: u16,
    /// Slots per mailbox.
    pub mailbox_depth: u16,
    /// Values per count window, panes per time window.
    pub window_slots: u16,
}

/// Board facts. `uptime_ms` and `stack_peak` come from the board (0 in the simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoardInfo {
    /// Milliseconds since boot.
    pub uptime_ms: u32,
    /// Stack high-water mark in bytes.
    pub stack_peak: u32,
    /// Received bytes the board lost because its receive buffer was full.
    pub rx_dropped: u32,
    /// 1 in lockstep, 0 free-running.
    pub lockstep: bool,
    /// The device's time.
    pub time_us: i64,
    /// Table capacities.
    pub capacities: Capacities,
}

/// What a reply carries, by query kind.
#[derive(Debug, Clone, Copy)]
pub enum ReplyBody<'a> {
    /// Routes page.
    Routes(Page<'a, RouteInfo>),
    /// Nodes page.
    Nodes(Page<'a, NodeInfo>),
    /// Sources page.
    Sources(Page<'a, SourceInfo>),
    /// Counters.
    Counters(Counters),
    /// Mailbox flow page.
    Flow(Page<'a, FlowInfo>),
    /// Route taints page.
    Taints(Page<'a, TaintInfo>),
    /// The latest event of a route, if it has one.
    Latest(Option<Event>),
    /// Board facts.
    Board(BoardInfo),
}

impl ReplyBody<'_> {
    /// The query kind this body answers.
    pub fn kind(&self) -> QueryKind {
        match self {
            ReplyBody::Routes(_) => QueryKind::Routes,
            ReplyBody::Nodes(_) => QueryKind::Nodes,
            ReplyBody::Sources(_) => QueryKind::Sources,
            ReplyBody::Counters(_) => QueryKind::Counters,
            ReplyBody::Flow(_) => QueryKind::Flow,
            ReplyBody::Taints(_) => QueryKind::Taints,
            ReplyBody::Latest(_) => QueryKind::Latest,
            ReplyBody::Board(_) => QueryKind::Board,
        }
    }
}

/// `reply`: the answer to query `ref_id`.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// The query's id.
    pub ref_id: u32,
    /// The answer.
    pub body: ReplyBody<'a>,
}

/// `heartbeat`: "still here", with the sender's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender's time in microseconds (the device's time in lockstep).
    pub time_us: i64,
}

/// `step`: advance the device to `to_us` (lockstep), running everything due on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The time to reach.
    pub to_us: i64,
    /// The control epoch from now on.
    pub epoch: u32,
    /// (v1.1) The largest device time the host has received (its time reference); 0 in v1.
    pub seen_us: i64,
}

/// `upload_begin`: an image of `total_len` bytes with this SHA-256 follows in chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadBegin {
    /// Image length in bytes (header included).
    pub total_len: u32,
    /// SHA-256 of the whole image.
    pub sha256: [u8; 32],
}

/// `upload_chunk`: image bytes at `offset` (chunks are sent in order, without gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChunk<'a> {
    /// Where `data` goes in the image.
    pub offset: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// The fields of a message, by kind.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Describe`].
    Describe(Describe<'a>),
    /// See [`Event`].
    Event(Event),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Nack`].
    Nack(Nack),
    /// See [`Query`].
    Query(Query),
    /// See [`Reply`].
    Reply(Reply<'a>),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`Step`].
    Step(Step),
    /// See [`UploadBegin`].
    UploadBegin(UploadBegin),
    /// See [`UploadChunk`].
    UploadChunk(UploadChunk<'a>),
    /// Check and activate the uploaded image.
    UploadCommit,
    /// Abandon the upload.
    UploadAbort,
    /// Leave lockstep.
    Resume,
}

impl Body<'_> {
    /// The message kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Hello(_) => Kind::Hello,
            Body::Describe(_) => Kind::Describe,
            Body::Event(_) => Kind::Event,
            Body::Ack(_) => Kind::Ack,
            Body::Nack(_) => Kind::Nack,
            Body::Query(_) => Kind::Query,
            Body::Reply(_) => Kind::Reply,
            Body::Heartbeat(_) => Kind::Heartbeat,
            Body::Step(_) => Kind::Step,
            Body::UploadBegin(_) => Kind::UploadBegin,
            Body::UploadChunk(_) => Kind::UploadChunk,
            Body::UploadCommit => Kind::UploadCommit,
            Body::UploadAbort => Kind::UploadAbort,
            Body::Resume => Kind::Resume,
        }
    }
}

/// One link message: the sender's id and the fields.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The sender's link sequence number.
    pub id: u32,
    /// The fields.
    pub body: Body<'a>,
}

// --- encoding ---------------------------------------------------------------------------------

pub(super) fn write_value(w: &mut Writer<'_>, value: Value) {
    match value {
        Value::Float(x) => w.f64(x),
        Value::Int(n) => w.i64(n),
        Value::Bool(b) => w.bool(b),
    };
}

/// The 7 event fields after `[kind, id]` (also the body of a `latest` reply).
fn write_event_fields(w: &mut Writer<'_>, e: &Event) {
    w.u64(e.route.into()).u64(e.seq.into()).i64(e.time_us).u64(e.epoch.into()).u64(e.taints.0.into());
    w.array(3).u64(e.lineage.route.into()).u64(e.lineage.first_seq.into()).u64(e.lineage.count.into());
    write_value(w, e.value)
}

fn write_page<T: PageItem>(w: &mut Writer<'_>, page: &Page<'_, T>) {
    w.u64(page.total.into()).u64(page.start.into()).array(page.items.len().into());
    match page.items {
        Items::Lazy { count, get } => {
            for i in 0..count {
                get(i).write(w);
            }
        }
        // Decoded items are written back as they came (they were checked when decoded).
        Items::Raw { bytes, .. } => {
            w.raw(bytes);
        }
    }
}

/// The describe fields v1 and v1.1 share, in their order on the wire (see
/// [`read_describe_fields`]).
pub(super) fn write_describe_fields(w: &mut Writer<'_>, d: &Describe<'_>) {
    w.u64(d.version.into()).u64(d.max_message.into()).u64(d.capabilities.into()).str(d.board);
    w.u64(d.image_status.into());
    w.bytes(d.manifest_id.as_ref().map_or(&[][..], |m| &m[..]));
    w.str(d.partition).u64(d.session.into()).u64(d.flags.into());
}

/// A nack: `[5, id, ref, reason, detail]`, the layout every version shares (a v1.1 device,
/// which does not number its messages, writes id 0).
pub(super) fn write_nack(w: &mut Writer<'_>, id: u32, n: &Nack) {
    w.array(5).u64(Kind::Nack as u64).u64(id.into());
    match n.ref_id {
        Some(r) => w.u64(r.into()),
        None => w.null(),
    };
    w.u64(n.reason as u64).u64(n.detail.into());
}

/// The fields of a reply after its query kind: the same in v1 and v1.1 but for `latest`, which
/// each version writes its own way (`latest`).
pub(super) fn write_reply_body(w: &mut Writer<'_>, body: &ReplyBody<'_>, latest: impl FnOnce(&mut Writer<'_>, Option<&Event>)) {
    match body {
        ReplyBody::Routes(p) => write_page(w, p),
        ReplyBody::Nodes(p) => write_page(w, p),
        ReplyBody::Sources(p) => write_page(w, p),
        ReplyBody::Flow(p) => write_page(w, p),
        ReplyBody::Taints(p) => write_page(w, p),
        ReplyBody::Counters(c) => write_counters(w, c),
        ReplyBody::Latest(e) => latest(w, e.as_ref()),
        ReplyBody::Board(b) => write_board(w, b),
    }
}

/// Kinds a device sends (and events). Returns false, writing nothing, for the other kinds.
fn write_answer(w: &mut Writer<'_>, id32: u32, body: &Body<'_>) -> bool {
    let kind = body.kind() as u64;
    let id = u64::from(id32);
    match body {
        Body::Describe(d) => {
            w.array(11).u64(kind).u64(id);
            write_describe_fields(w, d);
        }
        Body::Event(e) => {
            w.array(9).u64(kind).u64(id);
            write_event_fields(w, e);
        }
        Body::Ack(a) => {
            w.array(4).u64(kind).u64(id).u64(a.ref_id.into()).i64(a.info);
        }
        Body::Nack(n) => write_nack(w, id32, n),
        Body::Reply(r) => {
            let fields: u64 = match r.body {
                ReplyBody::Counters(_) => COUNTERS_LEN,
                ReplyBody::Latest(_) => 1,
                ReplyBody::Board(_) => 6,
                _ => 3,
            };
            w.array(4 + fields).u64(kind).u64(id).u64(r.ref_id.into()).u64(r.body.kind() as u64);
            write_reply_body(w, &r.body, |w, latest| match latest {
                None => {
                    w.null();
                }
                Some(e) => {
                    w.array(7);
                    write_event_fields(w, e);
                }
            });
        }
        Body::Heartbeat(h) => {
            w.array(3).u64(kind).u64(id).i64(h.time_us);
        }
        _ => return false,
    }
    true
}

/// A hello: `[1, id, version, max_message, session, flags, time_us]`, the layout every version
/// shares (so that a host and a device of different versions still agree, or say why not).
pub(super) fn write_hello(w: &mut Writer<'_>, id: u32, h: &Hello) {
    w.array(7).u64(Kind::Hello as u64).u64(id.into()).u64(h.version.into()).u64(h.max_message.into());
    w.u64(h.session.into()).u64(h.flags.into()).i64(h.time_us);
}

/// Kinds only a host sends.
fn write_request(w: &mut Writer<'_>, id32: u32, body: &Body<'_>) {
    let kind = body.kind() as u64;
    let id = u64::from(id32);
    match body {
        Body::Hello(h) => write_hello(w, id32, h),
        Body::Query(q) => {
            w.array(4).u64(kind).u64(id).u64(q.what.into()).u64(q.arg.into());
        }
        Body::Step(s) => {
            w.array(4).u64(kind).u64(id).i64(s.to_us).u64(s.epoch.into());
        }
        Body::UploadBegin(b) => {
            w.array(4).u64(kind).u64(id).u64(b.total_len.into()).bytes(&b.sha256);
        }
        Body::UploadChunk(c) => {
            w.array(4).u64(kind).u64(id).u64(c.offset.into()).bytes(c.data);
        }
        Body::UploadCommit | Body::UploadAbort | Body::Resume => {
            w.array(2).u64(kind).u64(id);
        }
        _ => {}
    }
}

impl Message<'_> {
    /// Encodes the message into `out`; returns its length, or `EncodeTooLong` when it does not
    /// fit (pass `&mut buf[..max_message]` to enforce the link's limit).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, LinkError> {
        let mut w = Writer::new(out);
        if !write_answer(&mut w, self.id, &self.body) {
            write_request(&mut w, self.id, &self.body);
        }
        w.done().map_err(|_| LinkError::EncodeTooLong)
    }
}

// --- decoding ---------------------------------------------------------------------------------

pub(super) fn read_value(r: &mut Reader<'_>) -> Result<Value, Bad> {
    use crate::cbor::Peek;
    match r.peek()? {
        Peek::Bool => Ok(Value::Bool(r.bool()?)),
        Peek::Float => Ok(Value::Float(r.f64()?)),
        _ => Ok(Value::Int(r.i64()?)),
    }
}

fn read_event_fields(r: &mut Reader<'_>) -> Result<Event, Bad> {
    let route = r.u16()?;
    let seq = r.u32()?;
    let time_us = r.i64()?;
    let epoch = r.u32()?;
    let taints = TaintSet(r.u32()?);
    r.array_of(3)?;
    let lineage = Lineage { route: r.u16()?, first_seq: r.u32()?, count: r.u32()? };
    let value = read_value(r)?;
    Ok(Event { route, seq, time_us, epoch, taints, lineage, value })
}

/// The fields of a `counters` reply (the same in v1 and v1.1).
fn read_counters(r: &mut Reader<'_>) -> Result<Counters, Bad> {
    let mut f = [0u32; COUNTERS_LEN as usize];
    for slot in f.iter_mut() {
        *slot = r.u32()?;
    }
    Ok(Counters::from_fields(f))
}

/// The fields of a `board` reply (the same in v1 and v1.1).
fn read_board(r: &mut Reader<'_>) -> Result<BoardInfo, Bad> {
    let uptime_ms = r.u32()?;
    let stack_peak = r.u32()?;
    let rx_dropped = r.u32()?;
    let lockstep = r.bool()?;
    let time_us = r.i64()?;
    r.array_of(6)?;
    let capacities = Capacities {
        routes: r.u16()?,
        nodes: r.u16()?,
        sources: r.u16()?,
        windows: r.u16()?,
        mailbox_depth: r.u16()?,
        window_slots: r.u16()?,
    };
    Ok(BoardInfo { uptime_ms, stack_peak, rx_dropped, lockstep, time_us, capacities })
}

/// The fields of a `counters` reply.
fn write_counters(w: &mut Writer<'_>, c: &Counters) {
    for field in c.fields() {
        w.u64(field.into());
    }
}

/// The fields of a `board` reply.
fn write_board(w: &mut Writer<'_>, b: &BoardInfo) {
    w.u64(b.uptime_ms.into()).u64(b.stack_peak.into()).u64(b.rx_dropped.into());
    w.bool(b.lockstep).i64(b.time_us);
    let c = &b.capacities;
    w.array(6).u64(c.routes.into()).u64(c.nodes.into()).u64(c.sources.into());
    w.u64(c.windows.into()).u64(c.mailbox_depth.into()).u64(c.window_slots.into());
}

/// The describe fields v1 and v1.1 share, in their order on the wire: version, max_message,
/// capabilities, board, image status, manifest id, partition, session, flags. The v1.1 tail
/// (time, epoch) and its request id are the caller's to add.
pub(super) fn read_describe_fields<'a>(r: &mut Reader<'a>) -> Result<Describe<'a>, LinkError> {
    let version = r.u32()?;
    let max_message = r.u32()?;
    let capabilities = r.u32()?;
    let board = read_name(r)?;
    let image_status = r.u8()?;
    let manifest_id = match r.bytes()? {
        [] => None,
        id if id.len() == 32 => id.try_into().ok(),
        _ => return Err(LinkError::DecodeBadField),
    };
    let partition = read_name(r)?;
    Ok(Describe {
        version,
        max_message,
        capabilities,
        board,
        image_status,
        manifest_id,
        partition,
        session: r.u32()?,
        flags: r.u8()?,
        ref_id: None,
        time_us: 0,
        epoch: 0,
    })
}

/// The hello's fields after `[1, id]` (the layout every version shares).
pub(super) fn read_hello(r: &mut Reader<'_>) -> Result<Hello, Bad> {
    Ok(Hello { version: r.u32()?, max_message: r.u32()?, session: r.u32()?, flags: r.u8()?, time_us: r.i64()? })
}

/// The nack's fields after `[5, id]` (the layout every version shares).
pub(super) fn read_nack_fields(r: &mut Reader<'_>) -> Result<Nack, LinkError> {
    let ref_id = if r.null()? { None } else { Some(r.u32()?) };
    let reason = NackReason::from_code(r.u64()?).ok_or(LinkError::DecodeBadField)?;
    Ok(Nack { ref_id, reason, detail: r.u32()? })
}

/// The fields of a reply after its query kind `what`: the same in v1 and v1.1 but for `latest`,
/// which each version reads its own way (`latest`).
pub(super) fn read_reply_body<'a>(
    what: QueryKind,
    r: &mut Reader<'a>,
    input: &'a [u8],
    latest: impl FnOnce(&mut Reader<'a>) -> Result<Option<Event>, LinkError>,
) -> Result<ReplyBody<'a>, LinkError> {
    Ok(match what {
        QueryKind::Routes => ReplyBody::Routes(read_page(r, input)?),
        QueryKind::Nodes => ReplyBody::Nodes(read_page(r, input)?),
        QueryKind::Sources => ReplyBody::Sources(read_page(r, input)?),
        QueryKind::Flow => ReplyBody::Flow(read_page(r, input)?),
        QueryKind::Taints => ReplyBody::Taints(read_page(r, input)?),
        QueryKind::Counters => ReplyBody::Counters(read_counters(r)?),
        QueryKind::Latest => ReplyBody::Latest(latest(r)?),
        QueryKind::Board => ReplyBody::Board(read_board(r)?),
    })
}

pub(super) fn read_name<'b>(r: &mut Reader<'b>) -> Result<&'b str, Bad> {
    let s = r.str()?;
    if s.len() > NAME_LEN_MAX {
        return Err(Bad::TooLong);
    }
    Ok(s)
}

fn read_page<'b, T: PageItem>(r: &mut Reader<'b>, input: &'b [u8]) -> Result<Page<'b, T>, Bad> {
    let total = r.u16()?;
    let start = r.u16()?;
    let count = r.array_max(PAGE_LEN_MAX.into())? as u16;
    let from = r.position();
    for _ in 0..count {
        T::read(r)?;
    }
    let bytes = input.get(from..r.position()).ok_or(Bad::Cbor)?;
    Ok(Page { total, start, items: Items::Raw { count, bytes } })
}

/// Fields after `[kind, id]`, by kind.
fn arity(kind: Kind) -> Option<u64> {
    Some(match kind {
        Kind::Hello => 5,
        Kind::Describe => 9,
        Kind::Event => 7,
        Kind::Ack => 2,
        Kind::Nack => 3,
        Kind::Query => 2,
        Kind::Reply => return None, // depends on what
        Kind::Heartbeat => 1,
        Kind::Step => 2,
        Kind::UploadBegin => 2,
        Kind::UploadChunk => 2,
        Kind::UploadCommit | Kind::UploadAbort | Kind::Resume => 0,
    })
}

impl<'a> Message<'a> {
    /// Decodes one message of any kind; the whole input must be the message.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, LinkError> {
        Self::decode_with(bytes, |kind, fields, r, input| match kind {
            Kind::Describe | Kind::Ack | Kind::Nack | Kind::Reply => Self::decode_answer(kind, fields, r, input),
            _ => Self::decode_request(kind, r),
        })
    }

    fn decode_with(
        bytes: &'a [u8],
        body: impl FnOnce(Kind, u64, &mut Reader<'a>, &'a [u8]) -> Result<Body<'a>, LinkError>,
    ) -> Result<Message<'a>, LinkError> {
        let mut r = Reader::new(bytes);
        let len = match r.array() {
            Ok(n) => n,
            Err(Bad::Cbor) => return Err(LinkError::DecodeBadCbor),
            Err(_) => return Err(LinkError::DecodeNotArray),
        };
        if len < 2 {
            return Err(LinkError::DecodeNotArray);
        }
        // A message cut short is bad CBOR; a kind or id of another type is not a message.
        let head = |bad: Bad| if bad == Bad::Cbor { LinkError::DecodeBadCbor } else { LinkError::DecodeNotArray };
        let kind_code = r.u64().map_err(head)?;
        let id = r.u32().map_err(head)?;
        let kind = Kind::from_code(kind_code).ok_or(LinkError::DecodeUnknownKind)?;
        let fields = len - 2;
        if let Some(n) = arity(kind) {
            if fields != n {
                return Err(LinkError::DecodeBadArity);
            }
        }
        let body = body(kind, fields, &mut r, bytes)?;
        r.finish()?;
        Ok(Message { id, body })
    }

    /// Kinds a host sends, and events.
    fn decode_request(kind: Kind, r: &mut Reader<'a>) -> Result<Body<'a>, LinkError> {
        Ok(match kind {
            Kind::Hello => Body::Hello(read_hello(r)?),
            Kind::Event => Body::Event(read_event_fields(r)?),
            Kind::Query => Body::Query(Query { what: r.u8()?, arg: r.u32()? }),
            Kind::Heartbeat => Body::Heartbeat(Heartbeat { time_us: r.i64()? }),
            Kind::Step => Body::Step(Step { to_us: r.i64()?, epoch: r.u32()?, seen_us: 0 }),
            Kind::UploadBegin => Body::UploadBegin(UploadBegin { total_len: r.u32()?, sha256: r.bytes_exact()? }),
            Kind::UploadChunk => Body::UploadChunk(UploadChunk { offset: r.u32()?, data: r.bytes()? }),
            Kind::UploadCommit => Body::UploadCommit,
            Kind::UploadAbort => Body::UploadAbort,
            Kind::Resume => Body::Resume,
            Kind::Describe | Kind::Ack | Kind::Nack | Kind::Reply => return Err(LinkError::DecodeUnexpectedKind),
        })
    }

    /// Kinds only a device sends.
    fn decode_answer(kind: Kind, fields: u64, r: &mut Reader<'a>, input: &'a [u8]) -> Result<Body<'a>, LinkError> {
        Ok(match kind {
            Kind::Describe => Body::Describe(read_describe_fields(r)?),
            Kind::Ack => Body::Ack(Ack { ref_id: r.u32()?, info: r.i64()? }),
            Kind::Nack => Body::Nack(read_nack_fields(r)?),
            Kind::Reply => Body::Reply(Self::decode_reply(fields, r, input)?),
            _ => return Err(LinkError::DecodeUnknownKind),
        })
    }

    fn decode_reply(fields: u64, r: &mut Reader<'a>, input: &'a [u8]) -> Result<Reply<'a>, LinkError> {
        if fields < 2 {
            return Err(LinkError::DecodeBadArity);
        }
        let ref_id = r.u32()?;
        let what = QueryKind::from_code(r.u64()?).ok_or(LinkError::DecodeBadField)?;
        let expected = match what {
            QueryKind::Counters => COUNTERS_LEN,
            QueryKind::Latest => 1,
            QueryKind::Board => 6,
            _ => 3,
        };
        if fields - 2 != expected {
            return Err(LinkError::DecodeBadArity);
        }
        let body = read_reply_body(what, r, input, |r| {
            if r.null()? {
                return Ok(None);
            }
            r.array_of(7)?;
            Ok(Some(read_event_fields(r)?))
        })?;
        Ok(Reply { ref_id, body })
    }

    /// The id of a message that may not decode: the second item when the bytes start with an
    /// array whose first two items are unsigned integers. Used to address a nack.
    pub fn peek_id(bytes: &[u8]) -> Option<u32> {
        let mut r = Reader::new(bytes);
        if r.array().ok()? < 2 {
            return None;
        }
        r.u64().ok()?;
        r.u32().ok()
    }
}

// --- page items -------------------------------------------------------------------------------

impl PageItem for RouteInfo {}

impl item::Item for RouteInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.array(if self.taints.is_some() { 6 } else { 5 });
        w.u64(self.id.into()).bytes(&self.schema).u64(self.kind.into());
        w.u64(self.link.into()).u64(self.seq.into());
        if let Some(t) = self.taints {
            w.u64(t.0.into());
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Bad> {
        // v1 items have 5 fields; v1.1 items add the declared taints.
        let fields = r.array()?;
        if fields != 5 && fields != 6 {
            return Err(Bad::Shape);
        }
        let (id, schema, kind, link, seq) = (r.u32()?, r.bytes_exact()?, r.u8()?, r.u8()?, r.u32()?);
        let taints = if fields == 6 { Some(TaintSet(r.u32()?)) } else { None };
        Ok(RouteInfo { id, schema, kind, link, seq, taints })
    }
}

impl PageItem for NodeInfo {}

impl item::Item for NodeInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.array(6).u64(self.op.into()).u64(self.input.into()).u64(self.output.into());
        match self.output2 {
            Some(o) => w.u64(o.into()),
            None => w.null(),
        };
        w.u64(self.capacity.into()).u64(self.overflow.into());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Bad> {
        r.array_of(6)?;
        let op = r.u8()?;
        let input = r.u16()?;
        let output = r.u16()?;
        let output2 = if r.null()? { None } else { Some(r.u16()?) };
        Ok(NodeInfo { op, input, output, output2, capacity: r.u16()?, overflow: r.u8()? })
    }
}

impl PageItem for SourceInfo {}

impl item::Item for SourceInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.array(4).u64(self.route.into()).u64(self.waveform.into());
        w.u64(self.period_us.into()).u64(self.phase_us.into());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Bad> {
        r.array_of(4)?;
        Ok(SourceInfo { route: r.u16()?, waveform: r.u8()?, period_us: r.u32()?, phase_us: r.u32()? })
    }
}

impl PageItem for FlowInfo {}

impl item::Item for FlowInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.array(8).u64(self.node.into()).u64(self.depth.into()).u64(self.capacity.into());
        w.u64(self.accepted.into()).u64(self.delivered.into()).u64(self.dropped.into());
        w.u64(self.refused.into()).u64(self.depth_max.into());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Bad> {
        r.array_of(8)?;
        Ok(FlowInfo {
            node: r.u16()?,
            depth: r.u16()?,
            capacity: r.u16()?,
            accepted: r.u32()?,
            delivered: r.u32()?,
            dropped: r.u32()?,
            refused: r.u32()?,
            depth_max: r.u16()?,
        })
    }
}

impl PageItem for TaintInfo {}

impl item::Item for TaintInfo {
    fn write(&self, w: &mut Writer<'_>) {
        w.array(3).u64(self.route.into()).u64(self.seen.0.into()).u64(self.pending.0.into());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, Bad> {
        r.array_of(3)?;
        Ok(TaintInfo { route: r.u16()?, seen: TaintSet(r.u32()?), pending: TaintSet(r.u32()?) })
    }
}
