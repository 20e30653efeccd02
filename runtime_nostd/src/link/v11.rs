//! Link protocol v1.1 (docs/wire.md section 2), version 2 on the wire: the compact encoding.
//!
//! The messages and their meaning are those of v1 ([`super::msg`]); v1.1 changes how they are
//! written so that a reading costs what a serial line can afford:
//!
//! - the `hello` and the `nack` keep their v1 layout in every version, so that a host and a
//!   device that speak different versions can still agree, or say why not;
//! - every other message starts with one raw byte: `0xe0 + kind`, then the request id (host
//!   messages) or the id of the request it answers (device answers) as one raw byte, then its
//!   fields as a sequence of CBOR items (no array around them);
//! - events from the device go in batches of **compact events**, several to a frame, each
//!   starting with a head byte below `0x80` (so a batch is told apart from every other
//!   message by its first byte). A compact event leaves out what the receiver already knows:
//!   the high bits of the route's sequence number and of the event time (see [`super::refs`]),
//!   the taints when they are the route's declared ones, the lineage of a source event, the
//!   epoch (a link state, set by steps).
//!
//! ```text
//! event  = head [route: uint] (short / full) [taints: uint] [lineage] value
//! head   = 0b0FTLRRRR: F full form, T taints present, L lineage present, RRRR route (15: escape)
//! short  = seq mod 2^16 (2 bytes, little-endian), (time_us / 1000) mod 2^16 (2 bytes, LE)
//! full   = seq: uint, time_us: int
//! lineage = route: uint, first_seq - seq: int, count: uint
//! value  = float (the shortest of 16, 32 and 64 bits that is exact), int, or bool
//! ```
//!
//! Decoding never panics and checks every field; a short-form event whose references the
//! receiver lacks is reported as [`Expanded::Missing`] (its bytes are skipped, so the rest of a
//! batch still decodes).

use crate::cbor::{Bad, NoRoom, Peek, Reader, Writer};
use crate::taint::TaintSet;

use super::msg::{
    self, read_describe_fields, read_hello, read_nack_fields, read_reply_body, read_value, write_describe_fields, write_hello,
    write_reply_body, write_value, Ack, Body, Describe, Event, Heartbeat, Kind, Lineage, Message, Nack, Query, QueryKind,
    Reply, Step, Value,
};
use super::refs::{expand_seq, low16, RxTime, TxTime};
use super::LinkError;

/// The wire version of link protocol v1.1 (the `version` field of hello and describe).
pub const VERSION: u32 = 2;

/// The smallest `max_message` a v1.1 peer may declare: every message but a page fits (a
/// describe with names of 32 bytes takes at most 127).
pub const MAX_MESSAGE_MIN: u32 = 128;

/// First byte of a v1.1 message other than hello, nack and events: `KIND_BASE + kind`.
pub const KIND_BASE: u8 = 0xe0;

/// Compact event head: full form (seq and time as CBOR integers).
pub const HEAD_FULL: u8 = 0x40;
/// Compact event head: the taints follow (else the route's declared taints).
pub const HEAD_TAINTS: u8 = 0x20;
/// Compact event head: the lineage follows (else a source event, `count` 0).
pub const HEAD_LINEAGE: u8 = 0x10;
/// Compact event head: the route index bits; [`ROUTE_ESCAPE`] means "a CBOR uint follows".
pub const HEAD_ROUTE: u8 = 0x0f;
/// Route index 15 and above are written after the head.
pub const ROUTE_ESCAPE: u8 = 15;

/// What the device knows about how the host can decode a route's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteCtx {
    /// The device sent the route's row in a routes reply in this session: the host holds its
    /// sequence reference and declared taints.
    pub announced: bool,
    /// The taints every event of the route carries by construction.
    pub declared: TaintSet,
}

/// What the host holds about a route, to expand short-form events.
pub trait RouteRefs {
    /// The route's sequence reference (the last seq the host knows of), if any.
    fn seq_ref(&self, route: u16) -> Option<u32>;
    /// The route's declared taints, once the host has the route's row.
    fn declared(&self, route: u16) -> Option<TaintSet>;
}

/// Where a batch of events goes as it is decoded; it holds the references too, so that it may
/// update them between events.
pub trait EventSink: RouteRefs {
    /// The next event of the batch.
    fn event(&mut self, event: Expanded);
}

/// A decoded compact event, or the route of one whose references the receiver lacks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expanded {
    /// The event, whole.
    Event(Event),
    /// A well-formed short-form event of this route that cannot be expanded here: no
    /// sequence reference, no time reference, or no declared taints for the route.
    Missing(u16),
}

/// The first byte of a v1.1 message of `kind`.
pub const fn kind_byte(kind: Kind) -> u8 {
    KIND_BASE + kind as u8
}

// --- compact events ---------------------------------------------------------------------------

/// How an event is written: decided from what the receiver knows. `short` holds the 16-bit
/// millisecond time field when the short form is used.
#[derive(Debug, Clone, Copy)]
struct Form {
    short: Option<u16>,
    taints: bool,
}

impl Form {
    /// The form the host can expand, from the route's context and the time references.
    fn for_host(e: &Event, ctx: RouteCtx, time: &TxTime) -> Form {
        Form {
            short: if ctx.announced { time.short(e.time_us) } else { None },
            taints: !ctx.announced || e.taints != ctx.declared,
        }
    }
}

fn write_event_as(w: &mut Writer<'_>, e: &Event, form: Form) {
    let mut head = e.route.min(u16::from(ROUTE_ESCAPE)) as u8;
    if form.short.is_none() {
        head |= HEAD_FULL;
    }
    if form.taints {
        head |= HEAD_TAINTS;
    }
    let lineage = e.lineage.count > 0;
    if lineage {
        head |= HEAD_LINEAGE;
    }
    w.raw(&[head]);
    if e.route >= u16::from(ROUTE_ESCAPE) {
        w.u64(e.route.into());
    }
    match form.short {
        None => {
            w.u64(e.seq.into()).i64(e.time_us);
        }
        Some(time_ms) => {
            let [s0, s1] = low16(e.seq.into()).to_le_bytes();
            let [t0, t1] = time_ms.to_le_bytes();
            w.raw(&[s0, s1, t0, t1]);
        }
    }
    if form.taints {
        w.u64(e.taints.0.into());
    }
    if lineage {
        let delta = i64::from(e.lineage.first_seq) - i64::from(e.seq);
        w.u64(e.lineage.route.into()).i64(delta).u64(e.lineage.count.into());
    }
    match e.value {
        Value::Float(x) => {
            w.float_shortest(x);
        }
        other => write_value(w, other),
    }
}

/// Writes a device event in the shortest form the host can expand (see [`super::refs`]), and
/// notes its time as sent. Nothing is noted when it does not fit.
pub fn write_event(w: &mut Writer<'_>, e: &Event, ctx: RouteCtx, time: &mut TxTime) -> Result<(), NoRoom> {
    write_event_as(w, e, Form::for_host(e, ctx, time));
    w.done()?;
    time.sent(e.time_us);
    Ok(())
}

/// A field read whole (`Ok`), or its low 16 bits to expand (`Err`).
type Field<T> = Result<T, u16>;

fn read_seq_time(r: &mut Reader<'_>, full: bool) -> Result<(Field<u32>, Field<i64>), Bad> {
    if full {
        let seq = r.u32()?;
        if seq == 0 {
            return Err(Bad::Range);
        }
        return Ok((Ok(seq), Ok(r.i64()?)));
    }
    let raw = r.take(4)?;
    let seq = u16::from_le_bytes([raw[0], raw[1]]);
    let time = u16::from_le_bytes([raw[2], raw[3]]);
    Ok((Err(seq), Err(time)))
}

/// Reads one compact event, expanding short fields with `refs` and `time` (and noting the
/// event's time as received). `epoch` is the control epoch in force on the link.
pub fn read_event(r: &mut Reader<'_>, refs: &impl RouteRefs, time: &mut RxTime, epoch: u32) -> Result<Expanded, Bad> {
    let head = r.take(1)?[0];
    if head & 0x80 != 0 {
        return Err(Bad::Shape);
    }
    let mut route = u16::from(head & HEAD_ROUTE);
    if route == u16::from(ROUTE_ESCAPE) {
        route = r.u16()?;
        if route < u16::from(ROUTE_ESCAPE) {
            return Err(Bad::Range); // one encoding per event
        }
    }
    let (seq, t) = read_seq_time(r, head & HEAD_FULL != 0)?;
    let taints = if head & HEAD_TAINTS != 0 { Some(TaintSet(r.u32()?)) } else { None };
    let lineage = if head & HEAD_LINEAGE != 0 { Some(read_lineage(r)?) } else { None };
    let value = read_event_value(r)?;
    // Everything is read: from here on a missing reference skips this event only.
    let seq = match seq {
        Ok(s) => s,
        Err(low) => match refs.seq_ref(route).and_then(|reference| expand_seq(reference, low)) {
            Some(s) => s,
            None => return Ok(Expanded::Missing(route)),
        },
    };
    let time_us = match t {
        Ok(t) => t,
        Err(low) => match time.expand(low) {
            Some(t) => t,
            None => return Ok(Expanded::Missing(route)),
        },
    };
    let taints = match taints.or_else(|| refs.declared(route)) {
        Some(t) => t,
        None => return Ok(Expanded::Missing(route)),
    };
    let lineage = match lineage {
        Some((parent, delta, count)) => {
            let first = i64::from(seq) + delta;
            Lineage { route: parent, first_seq: u32::try_from(first).map_err(|_| Bad::Range)?, count }
        }
        None => Lineage::default(),
    };
    time.received(time_us);
    Ok(Expanded::Event(Event { route, seq, time_us, epoch, taints, lineage, value }))
}

fn read_lineage(r: &mut Reader<'_>) -> Result<(u16, i64, u32), Bad> {
    let parent = r.u16()?;
    let delta = r.i64()?;
    let count = r.u32()?;
    if count == 0 {
        return Err(Bad::Range); // a source event has no lineage field
    }
    Ok((parent, delta, count))
}

fn read_event_value(r: &mut Reader<'_>) -> Result<Value, Bad> {
    match r.peek()? {
        Peek::Bool | Peek::Float | Peek::Int => read_value(r),
        _ => Err(Bad::Shape),
    }
}

/// What a device knows of its host's routes: no references (host events are full form), and
/// no declared taints (a host event without a taints field has none).
struct HostEventRefs;

impl RouteRefs for HostEventRefs {
    fn seq_ref(&self, _route: u16) -> Option<u32> {
        None
    }
    fn declared(&self, _route: u16) -> Option<TaintSet> {
        Some(TaintSet::EMPTY)
    }
}

/// Reads a host event (`0xe3 id` then one compact event): always the full form, no lineage.
fn read_host_event(r: &mut Reader<'_>) -> Result<Event, Bad> {
    let mut time = RxTime::default();
    match read_event(r, &HostEventRefs, &mut time, 0)? {
        Expanded::Event(e) if e.lineage.count == 0 => Ok(e),
        // A host event is full form (no references on the device) and has no lineage.
        _ => Err(Bad::Range),
    }
}

// --- device side: decoding requests, encoding answers ----------------------------------------

/// Decodes a message a v1.1 device receives: a hello (the v1 layout, any version) or a v1.1
/// host message. Kinds only a device sends are `DecodeUnexpectedKind`.
pub fn decode_for_device(bytes: &[u8]) -> Result<Message<'_>, LinkError> {
    let first = *bytes.first().ok_or(LinkError::DecodeBadCbor)?;
    let mut r = Reader::new(bytes);
    if first >> 5 == 4 {
        // A CBOR array: only the hello keeps the v1 layout from the host.
        let len = r.array().map_err(|_| LinkError::DecodeBadCbor)?;
        let head = |bad: Bad| if bad == Bad::Cbor { LinkError::DecodeBadCbor } else { LinkError::DecodeNotArray };
        if len < 2 {
            return Err(LinkError::DecodeNotArray);
        }
        let kind = r.u64().map_err(head)?;
        let id = r.u32().map_err(head)?;
        if kind != Kind::Hello as u64 {
            return Err(LinkError::DecodeUnknownKind);
        }
        if len != 7 {
            return Err(LinkError::DecodeBadArity);
        }
        let hello = read_hello(&mut r)?;
        r.finish()?;
        return Ok(Message { id, body: Body::Hello(hello) });
    }
    if first < KIND_BASE {
        return Err(LinkError::DecodeNotArray);
    }
    let kind = Kind::from_code(u64::from(first - KIND_BASE)).ok_or(LinkError::DecodeUnknownKind)?;
    let id = u32::from(*bytes.get(1).ok_or(LinkError::DecodeBadCbor)?);
    r.take(2)?;
    let body = match kind {
        Kind::Event => Body::Event(read_host_event(&mut r)?),
        Kind::Query => Body::Query(Query { what: r.u8()?, arg: r.u32()? }),
        Kind::Heartbeat => Body::Heartbeat(Heartbeat { time_us: r.i64()? }),
        Kind::Step => Body::Step(Step { to_us: r.i64()?, epoch: r.u32()?, seen_us: r.i64()? }),
        #[cfg(feature = "upload")]
        Kind::UploadBegin => Body::UploadBegin(super::msg::UploadBegin { total_len: r.u32()?, sha256: r.bytes_exact()? }),
        #[cfg(feature = "upload")]
        Kind::UploadChunk => Body::UploadChunk(super::msg::UploadChunk { offset: r.u32()?, data: r.bytes()? }),
        #[cfg(feature = "upload")]
        Kind::UploadCommit => Body::UploadCommit,
        // A device without upload refuses every upload message alike (`upload_unsupported`),
        // so it need not read their fields.
        #[cfg(not(feature = "upload"))]
        Kind::UploadBegin | Kind::UploadChunk | Kind::UploadCommit => return Ok(Message { id, body: Body::UploadAbort }),
        Kind::UploadAbort => Body::UploadAbort,
        Kind::Resume => Body::Resume,
        Kind::Hello | Kind::Describe | Kind::Ack | Kind::Nack | Kind::Reply => return Err(LinkError::DecodeUnexpectedKind),
    };
    r.finish()?;
    Ok(Message { id, body })
}

/// The id of a host message that may not decode (to address its nack): the second byte of a
/// v1.1 message, or the id of a v1-layout array.
pub fn peek_id(bytes: &[u8]) -> Option<u32> {
    match bytes.first()? {
        b if b >> 5 == 4 => super::Message::peek_id(bytes),
        // Any kind byte, known or not, is followed by the id.
        b if *b >= KIND_BASE => bytes.get(1).map(|id| u32::from(*id)),
        _ => None,
    }
}

fn write_head(w: &mut Writer<'_>, kind: Kind, id: u32) {
    w.raw(&[kind_byte(kind), id as u8]);
}

/// A describe (its `time_us` is the device's time: the caller resets its references to it).
pub fn write_describe(w: &mut Writer<'_>, d: &Describe<'_>) {
    write_head(w, Kind::Describe, d.ref_id.unwrap_or(0));
    write_describe_fields(w, d);
    w.i64(d.time_us).u64(d.epoch.into());
}

/// An ack: `info` is the device's time, or for an upload chunk the bytes received.
pub fn write_ack(w: &mut Writer<'_>, a: &Ack) {
    write_head(w, Kind::Ack, a.ref_id);
    w.i64(a.info);
}

/// A device heartbeat: its time.
pub fn write_heartbeat(w: &mut Writer<'_>, time_us: i64) {
    w.raw(&[kind_byte(Kind::Heartbeat)]).i64(time_us);
}

/// The latest event of a route as a reply: the event in the form `ctx` allows, then its epoch
/// when it is not `epoch_now`.
pub fn write_latest(
    w: &mut Writer<'_>,
    ref_id: u32,
    latest: Option<(Event, RouteCtx)>,
    time: &mut TxTime,
    epoch_now: u32,
) {
    write_head(w, Kind::Reply, ref_id);
    w.u64(QueryKind::Latest as u64);
    if let Some((e, ctx)) = latest {
        // Not `write_event`: the reference update waits until the whole reply fits.
        write_event_as(w, &e, Form::for_host(&e, ctx, time));
        if e.epoch != epoch_now {
            w.u64(e.epoch.into());
        }
        if w.done().is_ok() {
            time.sent(e.time_us);
        }
    }
}

/// A message a device sends other than events and the `latest` reply, noting in `time` the
/// device times it carries (a describe resets the references: both ends start from its time).
/// Every ack's info is a device time but an upload chunk's (bytes received); noting that as
/// sent only makes the short form rarer, never wrong. Host kinds fail the writer.
pub fn write_from_device(w: &mut Writer<'_>, body: &Body<'_>, time: &mut TxTime) {
    match body {
        Body::Describe(d) => {
            write_describe(w, d);
            time.reset(d.time_us);
        }
        Body::Ack(a) => {
            write_ack(w, a);
            time.sent(a.info);
        }
        Body::Heartbeat(h) => {
            write_heartbeat(w, h.time_us);
            time.sent(h.time_us);
        }
        // The v1 layout every version shares; a v1.1 device does not number its messages.
        Body::Nack(n) => msg::write_nack(w, 0, n),
        Body::Reply(r) => write_reply(w, r),
        _ => w.fail(),
    }
}

/// A reply other than `latest` (pages, counters, board facts). A `latest` reply fails the
/// writer: it is [`write_latest`]'s, which needs the route's references.
pub fn write_reply(w: &mut Writer<'_>, reply: &Reply<'_>) {
    write_head(w, Kind::Reply, reply.ref_id);
    w.u64(reply.body.kind() as u64);
    write_reply_body(w, &reply.body, |w, _| w.fail());
}

// --- host side: encoding requests, decoding what a device sends --------------------------------

/// Encodes a message a host sends (v1.1 layout; the hello in the v1 layout). Returns its
/// length. A host event is written in full form, with its taints when it has any; its epoch and
/// lineage are not sent (the device records the epoch in force and no lineage).
pub fn encode_request(out: &mut [u8], id: u8, body: &Body<'_>) -> Result<usize, LinkError> {
    let mut w = Writer::new(out);
    write_request(&mut w, id, body);
    w.done().map_err(|_| LinkError::EncodeTooLong)
}

fn write_request(w: &mut Writer<'_>, id: u8, body: &Body<'_>) {
    let id32 = u32::from(id);
    match body {
        Body::Hello(h) => write_hello(w, id32, h),
        Body::Event(e) => {
            write_head(w, Kind::Event, id32);
            let plain = Event { lineage: Lineage::default(), ..*e };
            write_event_as(w, &plain, Form { short: None, taints: !e.taints.is_empty() });
        }
        Body::Query(q) => {
            write_head(w, Kind::Query, id32);
            w.u64(q.what.into()).u64(q.arg.into());
        }
        Body::Heartbeat(h) => {
            write_head(w, Kind::Heartbeat, id32);
            w.i64(h.time_us);
        }
        Body::Step(s) => {
            write_head(w, Kind::Step, id32);
            w.i64(s.to_us).u64(s.epoch.into()).i64(s.seen_us);
        }
        Body::UploadBegin(b) => {
            write_head(w, Kind::UploadBegin, id32);
            w.u64(b.total_len.into()).bytes(&b.sha256);
        }
        Body::UploadChunk(c) => {
            write_head(w, Kind::UploadChunk, id32);
            w.u64(c.offset.into()).bytes(c.data);
        }
        Body::UploadCommit => write_head(w, Kind::UploadCommit, id32),
        Body::UploadAbort => write_head(w, Kind::UploadAbort, id32),
        Body::Resume => write_head(w, Kind::Resume, id32),
        // Kinds only a device sends.
        Body::Describe(_) | Body::Ack(_) | Body::Nack(_) | Body::Reply(_) => w.fail(),
    }
}

/// What a device sent, decoded on the host.
#[derive(Debug, Clone, Copy)]
pub enum FromDevice<'a> {
    /// A batch of events: each was handed to the visitor.
    Events,
    /// Any other message (describe, ack, nack, reply, heartbeat); its `id` is 0 (v1.1 device
    /// messages are not numbered; answers name their request in their own fields).
    Message(Message<'a>),
}

/// A nack, the one v1-layout message a v1.1 device sends (its id, 0, is not read).
fn read_nack(r: &mut Reader<'_>) -> Result<Nack, LinkError> {
    let len = r.array()?;
    if len != 5 {
        return Err(LinkError::DecodeBadArity);
    }
    if r.u64()? != Kind::Nack as u64 {
        return Err(LinkError::DecodeUnknownKind);
    }
    r.u32()?;
    read_nack_fields(r)
}

/// Decodes what a v1.1 device sent. Events (a batch, or the one in a `latest` reply) are
/// expanded with the references of `events`, `time` and the `epoch` in force, and each event of
/// a batch goes to `events` as it is read; `time` notes every event time read. A `latest` reply
/// whose event cannot be expanded is `DecodeNoReference`. A batch that turns out malformed
/// part-way has handed its first events on already: they were whole.
pub fn decode_from_device<'a>(
    bytes: &'a [u8],
    events: &mut impl EventSink,
    time: &mut RxTime,
    epoch: u32,
) -> Result<FromDevice<'a>, LinkError> {
    let first = *bytes.first().ok_or(LinkError::DecodeBadCbor)?;
    let mut r = Reader::new(bytes);
    if first < 0x80 {
        // Bounded: every event reads at least its head byte.
        while !r.at_end() {
            let e = read_event(&mut r, &*events, time, epoch)?;
            events.event(e);
        }
        return Ok(FromDevice::Events);
    }
    let refs = &*events;
    if first >> 5 == 4 {
        let nack = read_nack(&mut r)?;
        r.finish()?;
        return Ok(FromDevice::Message(Message { id: 0, body: Body::Nack(nack) }));
    }
    if first == kind_byte(Kind::Heartbeat) {
        r.take(1)?;
        let time_us = r.i64()?;
        r.finish()?;
        return Ok(FromDevice::Message(Message { id: 0, body: Body::Heartbeat(Heartbeat { time_us }) }));
    }
    if first < KIND_BASE {
        return Err(LinkError::DecodeNotArray);
    }
    let kind = Kind::from_code(u64::from(first - KIND_BASE)).ok_or(LinkError::DecodeUnknownKind)?;
    let ref_id = u32::from(*bytes.get(1).ok_or(LinkError::DecodeBadCbor)?);
    r.take(2)?;
    let body = match kind {
        Kind::Describe => Body::Describe(read_describe(&mut r, ref_id)?),
        Kind::Ack => Body::Ack(Ack { ref_id, info: r.i64()? }),
        Kind::Reply => Body::Reply(read_reply(&mut r, bytes, ref_id, refs, time, epoch)?),
        _ => return Err(LinkError::DecodeUnexpectedKind),
    };
    r.finish()?;
    Ok(FromDevice::Message(Message { id: 0, body }))
}

fn read_describe<'a>(r: &mut Reader<'a>, ref_id: u32) -> Result<Describe<'a>, LinkError> {
    let mut describe = read_describe_fields(r)?;
    describe.ref_id = Some(ref_id);
    describe.time_us = r.i64()?;
    describe.epoch = r.u32()?;
    Ok(describe)
}

fn read_reply<'a>(
    r: &mut Reader<'a>,
    input: &'a [u8],
    ref_id: u32,
    refs: &impl RouteRefs,
    time: &mut RxTime,
    epoch: u32,
) -> Result<Reply<'a>, LinkError> {
    let what = QueryKind::from_code(r.u64()?).ok_or(LinkError::DecodeBadField)?;
    let body = read_reply_body(what, r, input, |r| {
        if r.at_end() {
            return Ok(None);
        }
        let event = match read_event(r, refs, time, epoch)? {
            Expanded::Event(e) => e,
            Expanded::Missing(_) => return Err(LinkError::DecodeNoReference),
        };
        let epoch = if r.at_end() { epoch } else { r.u32()? };
        Ok(Some(Event { epoch, ..event }))
    })?;
    Ok(Reply { ref_id, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taint::Taint;

    struct Table {
        seq: u32,
        declared: TaintSet,
    }

    impl RouteRefs for Table {
        fn seq_ref(&self, _route: u16) -> Option<u32> {
            Some(self.seq)
        }
        fn declared(&self, _route: u16) -> Option<TaintSet> {
            Some(self.declared)
        }
    }

    fn event(seq: u32, time_us: i64, value: Value) -> Event {
        Event {
            route: 0,
            seq,
            time_us,
            epoch: 0,
            taints: TaintSet::of(Taint::DetSeededEntropy),
            lineage: Lineage::default(),
            value,
        }
    }

    /// A 4-byte reading a minute into a run is 10 bytes as a short-form event (16 with its
    /// frame), and decodes to the same event.
    #[test]
    fn a_reading_is_ten_bytes() {
        let seeded = TaintSet::of(Taint::DetSeededEntropy);
        let ctx = RouteCtx { announced: true, declared: seeded };
        let mut tx = TxTime::default();
        tx.reset(59_000_000);
        let e = event(60_000, 60_000_000, Value::Int(0x1234_5678));
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        write_event(&mut w, &e, ctx, &mut tx).unwrap();
        let n = w.len();
        assert_eq!(n, 10);
        assert_eq!(&buf[..5], &[0x00, 0x60, 0xea, 0x60, 0xea]);
        let mut rx = RxTime::default();
        rx.reset(59_000_000);
        let refs = Table { seq: 59_990, declared: seeded };
        let got = read_event(&mut Reader::new(&buf[..n]), &refs, &mut rx, 0).unwrap();
        assert_eq!(got, Expanded::Event(e));
        assert_eq!(rx.max_us(), Some(60_000_000));
    }

    /// An unannounced route goes in full form with its taints; an announced one leaves out
    /// declared taints but writes the others.
    #[test]
    fn forms_follow_what_the_host_knows() {
        let seeded = TaintSet::of(Taint::DetSeededEntropy);
        let mut tx = TxTime::default();
        tx.reset(0);
        let mut buf = [0u8; 64];
        let e = event(1, 1_000, Value::Float(21.5));
        let mut w = Writer::new(&mut buf);
        write_event(&mut w, &e, RouteCtx { announced: false, declared: seeded }, &mut tx).unwrap();
        assert_eq!(buf[0], HEAD_FULL | HEAD_TAINTS);
        let dropped = Event { taints: seeded.with(Taint::DeliveryDropped), ..e };
        let mut w = Writer::new(&mut buf);
        write_event(&mut w, &dropped, RouteCtx { announced: true, declared: seeded }, &mut tx).unwrap();
        assert_eq!(buf[0], HEAD_TAINTS);
        let mut rx = RxTime::default();
        rx.reset(0);
        let refs = Table { seq: 0, declared: seeded };
        assert_eq!(read_event(&mut Reader::new(&buf), &refs, &mut rx, 3), Ok(Expanded::Event(Event { epoch: 3, ..dropped })));
    }

    /// A `latest` reply is `write_latest`'s (it needs the route's references): `write_reply`
    /// refuses it rather than guess a form.
    #[test]
    fn write_reply_refuses_latest() {
        let mut buf = [0u8; 64];
        let latest = Reply { ref_id: 3, body: crate::link::ReplyBody::Latest(Some(event(1, 0, Value::Int(1)))) };
        let mut w = Writer::new(&mut buf);
        write_reply(&mut w, &latest);
        assert!(w.done().is_err());
        let mut w = Writer::new(&mut buf);
        write_latest(&mut w, 3, Some((event(1, 0, Value::Int(1)), RouteCtx::default())), &mut TxTime::default(), 0);
        assert!(w.done().is_ok());
    }

    /// Without references a short event is skipped, not misread, and the next one in the batch
    /// still decodes.
    #[test]
    fn missing_references_skip_one_event() {
        let ctx = RouteCtx { announced: true, declared: TaintSet::EMPTY };
        let mut tx = TxTime::default();
        tx.reset(0);
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        let a = Event { route: 20, lineage: Lineage { route: 3, first_seq: 7, count: 2 }, ..event(5, 2_000, Value::Bool(true)) };
        write_event(&mut w, &a, ctx, &mut tx).unwrap();
        write_event(&mut w, &event(6, 3_000_000_123, Value::Float(0.1)), RouteCtx::default(), &mut tx).unwrap();
        let n = w.len();
        struct Seen([Option<Expanded>; 2], usize);
        impl RouteRefs for Seen {
            fn seq_ref(&self, _route: u16) -> Option<u32> {
                None
            }
            fn declared(&self, _route: u16) -> Option<TaintSet> {
                None
            }
        }
        impl EventSink for Seen {
            fn event(&mut self, e: Expanded) {
                self.0[self.1] = Some(e);
                self.1 += 1;
            }
        }
        let mut rx = RxTime::default();
        rx.reset(0);
        let mut seen = Seen([None, None], 0);
        decode_from_device(&buf[..n], &mut seen, &mut rx, 0).unwrap();
        assert_eq!(seen.0[0], Some(Expanded::Missing(20)));
        assert_eq!(seen.0[1], Some(Expanded::Event(event(6, 3_000_000_123, Value::Float(0.1)))));
    }
}
