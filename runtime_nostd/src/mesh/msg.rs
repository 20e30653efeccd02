//! Node-link messages (docs/wire.md 4.2–4.4): the raw message layer.
//!
//! Every message starts with a kind byte in `0xc0..=0xcf` ([`Kind`]); its fields follow as
//! raw bytes: `u8`, `u32le` (the session tag), `u64le` (the auth counter), LEB128 **varints**
//! (shortest form only, so a message has one encoding) and zigzag varints for signed values.
//! [`Msg::decode`] checks every field a receiver relies on and never panics; [`Msg::encode`]
//! writes the one encoding of a message. Events are written straight from an [`EventOut`] and
//! read as [`EventIn`] views into the message (no copy, no allocation).

use super::{Caps, EventIn, EventOut, FetchRefused, LineageRef, MeshError, PayloadOut, Piece, RouteDecl};

/// Longest node name and link name, in bytes.
pub const NAME_MAX: usize = 32;
/// Most crossing routes a hello declares (both directions together).
pub const ROUTES_MAX: usize = 64;
/// Most parents an event carries on the wire.
pub const PARENTS_MAX: usize = 64;
/// Bytes of a route's schema hash in a hello: the first 8 of its SHA-256.
pub const SCHEMA_PREFIX: usize = 8;

/// Message kinds: the first byte of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The initiator opens a session.
    Hello = 0xc0,
    /// The responder accepts a hello.
    Welcome = 0xc1,
    /// Either end refuses a hello (or names a session it does not hold).
    Refuse = 0xc2,
    /// A batch of events.
    Events = 0xc3,
    /// Cumulative and selective acknowledgement of events.
    Ack = 0xc4,
    /// "Still here".
    Keepalive = 0xc5,
    /// Clean end of the session.
    Bye = 0xc6,
    /// Ask for a lazy payload.
    Fetch = 0xc7,
    /// A lazy payload, or "not held".
    FetchReply = 0xc8,
    /// A keyed frame: counter, message, MAC (docs/wire.md 4.8).
    Sealed = 0xcf,
}

impl Kind {
    /// The kind of this first byte.
    pub const fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0xc0 => Kind::Hello,
            0xc1 => Kind::Welcome,
            0xc2 => Kind::Refuse,
            0xc3 => Kind::Events,
            0xc4 => Kind::Ack,
            0xc5 => Kind::Keepalive,
            0xc6 => Kind::Bye,
            0xc7 => Kind::Fetch,
            0xc8 => Kind::FetchReply,
            0xcf => Kind::Sealed,
            _ => return None,
        })
    }
}

/// Event flag: the payload is lazy (length and SHA-256 digest), not inline.
pub const EV_LAZY: u8 = 1;
/// Event flag: a domain other than 0 follows.
pub const EV_DOMAIN: u8 = 2;
/// Event flag: taints other than none follow.
pub const EV_TAINTS: u8 = 4;
/// Event flag: parents follow.
pub const EV_PARENTS: u8 = 8;

// --- bytes ------------------------------------------------------------------------------------

/// Writes a message into a fixed buffer; remembers when it ran out of room.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0, full: false }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) if !self.full => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            _ => self.full = true,
        }
        self
    }

    /// One byte.
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.bytes(&[b])
    }

    /// An unsigned LEB128 varint.
    pub fn varint(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                n += 1;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.bytes(&tmp[..n])
    }

    /// A signed value as a zigzag varint.
    pub fn zigzag(&mut self, v: i64) -> &mut Self {
        self.varint(((v << 1) ^ (v >> 63)) as u64)
    }

    /// A name: its length as a varint, then its UTF-8 bytes.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.varint(s.len() as u64).bytes(s.as_bytes())
    }

    /// The length written, or [`MeshError::EncodeTooLong`] when something did not fit.
    pub fn done(&self) -> Result<usize, MeshError> {
        if self.full {
            Err(MeshError::EncodeTooLong)
        } else {
            Ok(self.len)
        }
    }

    /// Forget everything after `len` (undo a write that did not fit).
    pub fn truncate(&mut self, len: usize) {
        if len <= self.len {
            self.len = len;
            self.full = false;
        }
    }
}

/// Reads a message's fields; every read checks its bounds.
#[derive(Clone)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    /// Nothing left.
    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or(&[])
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], MeshError> {
        let end = self.pos.checked_add(n).ok_or(MeshError::DecodeShort)?;
        let s = self.b.get(self.pos..end).ok_or(MeshError::DecodeShort)?;
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, MeshError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian u32.
    pub fn u32le(&mut self) -> Result<u32, MeshError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A fixed array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], MeshError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// An unsigned LEB128 varint in its shortest form.
    pub fn varint(&mut self) -> Result<u64, MeshError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            if i == 9 && byte > 1 {
                return Err(MeshError::DecodeBadVarint);
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(MeshError::DecodeBadVarint); // not the shortest form
                }
                return Ok(v);
            }
        }
        Err(MeshError::DecodeBadVarint)
    }

    /// A varint that must fit `T`.
    pub fn varint_as<T: TryFrom<u64>>(&mut self) -> Result<T, MeshError> {
        T::try_from(self.varint()?).map_err(|_| MeshError::DecodeBadField)
    }

    /// A zigzag varint.
    pub fn zigzag(&mut self) -> Result<i64, MeshError> {
        let u = self.varint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// A name of at most [`NAME_MAX`] bytes of UTF-8.
    pub fn str(&mut self) -> Result<&'a str, MeshError> {
        let n = self.varint()?;
        if n > NAME_MAX as u64 {
            return Err(MeshError::DecodeTooLong);
        }
        core::str::from_utf8(self.take(n as usize)?).map_err(|_| MeshError::DecodeBadField)
    }

    /// [`MeshError::DecodeTrailingBytes`] unless everything was read.
    pub fn end(&self) -> Result<(), MeshError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(MeshError::DecodeTrailingBytes)
        }
    }
}

// --- handshake --------------------------------------------------------------------------------

/// The crossing routes of a hello: declarations to write, or their wire bytes once read.
#[derive(Debug, Clone, Copy)]
pub enum Routes<'a> {
    /// The sender's declarations (their hashes are cut to [`SCHEMA_PREFIX`] bytes on the wire).
    Decls(&'a [RouteDecl]),
    /// `count` entries read from a hello, already checked.
    Wire {
        /// How many.
        count: usize,
        /// The entries' bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Routes<'a> {
    /// How many routes.
    pub fn len(&self) -> usize {
        match self {
            Routes::Decls(d) => d.len(),
            Routes::Wire { count, .. } => *count,
        }
    }

    /// No route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each route with the first [`SCHEMA_PREFIX`] bytes of its schema hash.
    pub fn iter(&self) -> RoutesIter<'a> {
        RoutesIter { routes: *self, index: 0, reader: Reader::new(match self {
            Routes::Decls(_) => &[],
            Routes::Wire { bytes, .. } => bytes,
        }) }
    }
}

impl PartialEq for Routes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// Iterator of [`Routes::iter`].
pub struct RoutesIter<'a> {
    routes: Routes<'a>,
    index: usize,
    reader: Reader<'a>,
}

impl Iterator for RoutesIter<'_> {
    type Item = (u32, [u8; SCHEMA_PREFIX]);

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.routes {
            Routes::Decls(d) => {
                let decl = d.get(self.index)?;
                let mut prefix = [0u8; SCHEMA_PREFIX];
                prefix.copy_from_slice(&decl.schema_hash[..SCHEMA_PREFIX]);
                (decl.route, prefix)
            }
            Routes::Wire { count, .. } => {
                if self.index >= count {
                    return None;
                }
                (self.reader.varint_as().ok()?, self.reader.array().ok()?)
            }
        };
        self.index += 1;
        Some(item)
    }
}

/// `hello`: the initiator opens a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hello<'a> {
    /// The protocol version the initiator speaks.
    pub version: u8,
    /// The session tag the initiator chose: every later message of the session carries it.
    pub session: u32,
    /// The initiator's incarnation (increases with every process start).
    pub incarnation: u64,
    /// The initiator's node id.
    pub node: u16,
    /// The manifest the initiator runs.
    pub manifest_id: [u8; 32],
    /// The link's requested capabilities (the manifest's).
    pub requested: Caps,
    /// What the initiator's transport gives by itself.
    pub transport: Caps,
    /// The initiator's largest message.
    pub mtu: u16,
    /// The initiator's lease.
    pub lease_ms: u32,
    /// The initiator's node name.
    pub name: &'a str,
    /// The link's name.
    pub link: &'a str,
    /// The crossing routes, sorted by index, each once.
    pub routes: Routes<'a>,
}

/// `welcome`: the responder accepted a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome<'a> {
    /// The protocol version of the session.
    pub version: u8,
    /// The hello's session tag.
    pub session: u32,
    /// The responder's incarnation.
    pub incarnation: u64,
    /// The responder's node id.
    pub node: u16,
    /// What the session provides.
    pub provided: Caps,
    /// The responder's largest message.
    pub mtu: u16,
    /// The responder's lease.
    pub lease_ms: u32,
    /// The responder's node name.
    pub name: &'a str,
}

/// `refuse`: a hello was refused, or a message named a session the sender does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refuse {
    /// The protocol version of the sender.
    pub version: u8,
    /// The refused hello's (or the unknown message's) session tag.
    pub session: u32,
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The reason code (docs/wire.md 4.5).
    pub reason: u8,
    /// The reason's detail (a route index, capability bits, a version...).
    pub detail: u32,
}

// --- events -----------------------------------------------------------------------------------

/// The parents of a received event: a view into the message, checked when it was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parents<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> Parents<'a> {
    /// No parents.
    pub const EMPTY: Parents<'static> = Parents { count: 0, bytes: &[] };

    /// How many parents.
    pub fn len(&self) -> usize {
        self.count
    }

    /// A source event: no parents.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each parent.
    pub fn iter(&self) -> ParentsIter<'a> {
        ParentsIter { left: self.count, reader: Reader::new(self.bytes) }
    }
}

/// Iterator of [`Parents::iter`].
pub struct ParentsIter<'a> {
    left: usize,
    reader: Reader<'a>,
}

impl Iterator for ParentsIter<'_> {
    type Item = LineageRef;

    fn next(&mut self) -> Option<LineageRef> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_parent(&mut self.reader).ok()
    }
}

fn read_parent(r: &mut Reader<'_>) -> Result<LineageRef, MeshError> {
    Ok(LineageRef { node: r.varint_as()?, route: r.varint_as()?, seq: r.varint()? })
}

/// Writes one event (without its link sequence number).
pub fn write_event(w: &mut Writer<'_>, ev: &EventOut<'_>) {
    let mut flags = 0;
    if matches!(ev.payload, PayloadOut::Lazy { .. }) {
        flags |= EV_LAZY;
    }
    if ev.domain != 0 {
        flags |= EV_DOMAIN;
    }
    if ev.taints != 0 {
        flags |= EV_TAINTS;
    }
    if !ev.parents.is_empty() {
        flags |= EV_PARENTS;
    }
    w.u8(flags).varint(ev.route.into()).varint(ev.seq).zigzag(ev.time_us);
    if ev.domain != 0 {
        w.varint(ev.domain.into());
    }
    if ev.taints != 0 {
        w.varint(ev.taints.into());
    }
    if !ev.parents.is_empty() {
        w.varint(ev.parents.len() as u64);
        for p in ev.parents {
            w.varint(p.node.into()).varint(p.route.into()).varint(p.seq);
        }
    }
    match ev.payload {
        PayloadOut::Inline(bytes) => {
            w.varint(bytes.len() as u64).bytes(bytes);
        }
        PayloadOut::Lazy { meta, len, digest } => {
            w.varint(meta.len() as u64).bytes(meta).varint(len).bytes(&digest);
        }
    }
}

/// Reads one event (its `link_seq` is 0 and `gap` false: the session sets them).
pub fn read_event<'a>(r: &mut Reader<'a>) -> Result<EventIn<'a>, MeshError> {
    let flags = r.u8()?;
    if flags & !(EV_LAZY | EV_DOMAIN | EV_TAINTS | EV_PARENTS) != 0 {
        return Err(MeshError::DecodeBadField);
    }
    let route = r.varint_as()?;
    let seq = r.varint()?;
    let time_us = r.zigzag()?;
    let domain = if flags & EV_DOMAIN != 0 { nonzero(r.varint_as()?)? } else { 0 };
    let taints = if flags & EV_TAINTS != 0 { nonzero(r.varint_as()?)? } else { 0 };
    let parents = if flags & EV_PARENTS != 0 {
        let count = r.varint()?;
        if count == 0 {
            return Err(MeshError::DecodeBadField); // one encoding: no parents, no flag
        }
        if count > PARENTS_MAX as u64 {
            return Err(MeshError::DecodeTooLong);
        }
        let start = r.clone();
        for _ in 0..count {
            read_parent(r)?;
        }
        let used = start.rest().len() - r.rest().len();
        Parents { count: count as usize, bytes: &start.rest()[..used] }
    } else {
        Parents::EMPTY
    };
    let n = usize::try_from(r.varint()?).map_err(|_| MeshError::DecodeShort)?;
    let bytes = r.take(n)?;
    let payload = if flags & EV_LAZY != 0 {
        PayloadOut::Lazy { meta: bytes, len: r.varint()?, digest: r.array()? }
    } else {
        PayloadOut::Inline(bytes)
    };
    Ok(EventIn { route, seq, time_us, domain, taints, parents, payload, link_seq: 0, gap: false })
}

fn nonzero<T: Default + PartialEq>(v: T) -> Result<T, MeshError> {
    if v == T::default() {
        Err(MeshError::DecodeBadField)
    } else {
        Ok(v)
    }
}

/// The events of an `events` message, checked when it was decoded: each with its link
/// sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events<'a> {
    /// The link sequence number before the first event's.
    pub base: u64,
    /// The entries (`skip event`...).
    pub bytes: &'a [u8],
}

impl<'a> Events<'a> {
    /// Each event, with its link sequence number in `link_seq`.
    pub fn iter(&self) -> EventsIter<'a> {
        EventsIter { prev: self.base, reader: Reader::new(self.bytes) }
    }

    /// Checks every entry: it decodes, and sequence numbers fit u64.
    fn check(&self) -> Result<(), MeshError> {
        let mut r = Reader::new(self.bytes);
        let mut prev = self.base;
        if r.at_end() {
            return Err(MeshError::DecodeShort); // a batch has at least one event
        }
        while !r.at_end() {
            let skip = r.varint()?;
            prev = prev.checked_add(skip).and_then(|s| s.checked_add(1)).ok_or(MeshError::DecodeBadField)?;
            read_event(&mut r)?;
        }
        Ok(())
    }
}

/// Iterator of [`Events::iter`].
pub struct EventsIter<'a> {
    prev: u64,
    reader: Reader<'a>,
}

impl<'a> EventsIter<'a> {
    /// The next event with its bytes as [`write_event`] wrote them (what a resequencing buffer
    /// keeps).
    pub fn next_raw(&mut self) -> Option<(EventIn<'a>, &'a [u8])> {
        if self.reader.at_end() {
            return None;
        }
        let skip = self.reader.varint().ok()?;
        let seq = self.prev.checked_add(skip)?.checked_add(1)?;
        let before = self.reader.rest();
        let mut ev = read_event(&mut self.reader).ok()?;
        let raw = &before[..before.len() - self.reader.rest().len()];
        self.prev = seq;
        ev.link_seq = seq;
        Some((ev, raw))
    }
}

impl<'a> Iterator for EventsIter<'a> {
    type Item = EventIn<'a>;

    fn next(&mut self) -> Option<EventIn<'a>> {
        self.next_raw().map(|(ev, _)| ev)
    }
}

/// Reads an event kept as [`write_event`] wrote it (a whole slot: nothing may follow).
pub fn read_kept_event(bytes: &[u8], link_seq: u64) -> Option<EventIn<'_>> {
    let mut r = Reader::new(bytes);
    let mut ev = read_event(&mut r).ok()?;
    r.end().ok()?;
    ev.link_seq = link_seq;
    Some(ev)
}

/// Bytes of `v` as a varint.
pub const fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

// --- messages ---------------------------------------------------------------------------------

/// One node-link message (not sealed: [`super::auth`] seals and opens frames).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Msg<'a> {
    /// `hello`.
    Hello(Hello<'a>),
    /// `welcome`.
    Welcome(Welcome<'a>),
    /// `refuse`.
    Refuse(Refuse),
    /// `events`: a batch.
    Events {
        /// The session tag.
        session: u32,
        /// The events.
        events: Events<'a>,
    },
    /// `ack`: every event below `cum` is acknowledged, and `cum + 1 + i` for each bit `i` of
    /// `sack`.
    Ack {
        /// The session tag.
        session: u32,
        /// The receiver's next expected link sequence number.
        cum: u64,
        /// Events above `cum` received.
        sack: u64,
    },
    /// `keepalive`.
    Keepalive {
        /// The session tag.
        session: u32,
    },
    /// `bye`.
    Bye {
        /// The session tag.
        session: u32,
    },
    /// `fetch`: send the payload of the event (route, seq) from byte `offset` on.
    Fetch {
        /// The session tag.
        session: u32,
        /// The event's route.
        route: u32,
        /// The event's route sequence number.
        seq: u64,
        /// The first byte wanted.
        offset: u64,
    },
    /// `fetch_reply`: the payload, or why the sender does not send it.
    FetchReply {
        /// The session tag.
        session: u32,
        /// The event's route.
        route: u32,
        /// The event's route sequence number.
        seq: u64,
        /// Where the piece starts in the payload.
        offset: u64,
        /// A piece of the payload, or why it is not sent.
        payload: Result<Piece<'a>, FetchRefused>,
    },
}

impl<'a> Msg<'a> {
    /// The message's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Msg::Hello(_) => Kind::Hello,
            Msg::Welcome(_) => Kind::Welcome,
            Msg::Refuse(_) => Kind::Refuse,
            Msg::Events { .. } => Kind::Events,
            Msg::Ack { .. } => Kind::Ack,
            Msg::Keepalive { .. } => Kind::Keepalive,
            Msg::Bye { .. } => Kind::Bye,
            Msg::Fetch { .. } => Kind::Fetch,
            Msg::FetchReply { .. } => Kind::FetchReply,
        }
    }

    /// The session tag the message carries.
    pub fn session(&self) -> u32 {
        match *self {
            Msg::Hello(h) => h.session,
            Msg::Welcome(w) => w.session,
            Msg::Refuse(r) => r.session,
            Msg::Events { session, .. }
            | Msg::Ack { session, .. }
            | Msg::Keepalive { session }
            | Msg::Bye { session }
            | Msg::Fetch { session, .. }
            | Msg::FetchReply { session, .. } => session,
        }
    }

    /// Decodes one message (not a sealed frame: see [`super::auth::open`]). Never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<Msg<'a>, MeshError> {
        let mut r = Reader::new(bytes);
        let kind = Kind::from_byte(r.u8()?).ok_or(MeshError::DecodeUnknownKind)?;
        let msg = match kind {
            Kind::Hello => {
                let version = r.u8()?;
                let session = r.u32le()?;
                let incarnation = r.varint()?;
                let node = r.varint_as()?;
                let manifest_id = r.array()?;
                let requested = Caps(r.u8()?);
                let transport = Caps(r.u8()?);
                let mtu = r.varint_as()?;
                let lease_ms = r.varint_as()?;
                let name = r.str()?;
                let link = r.str()?;
                let count = r.varint()?;
                if count > ROUTES_MAX as u64 {
                    return Err(MeshError::DecodeTooLong);
                }
                let start = r.clone();
                let mut last: Option<u32> = None;
                for _ in 0..count {
                    let route: u32 = r.varint_as()?;
                    r.take(SCHEMA_PREFIX)?;
                    if last.is_some_and(|l| route <= l) {
                        return Err(MeshError::DecodeBadField); // sorted, each once
                    }
                    last = Some(route);
                }
                let used = start.rest().len() - r.rest().len();
                let routes = Routes::Wire { count: count as usize, bytes: &start.rest()[..used] };
                Msg::Hello(Hello {
                    version, session, incarnation, node, manifest_id, requested, transport, mtu, lease_ms, name, link,
                    routes,
                })
            }
            Kind::Welcome => Msg::Welcome(Welcome {
                version: r.u8()?,
                session: r.u32le()?,
                incarnation: r.varint()?,
                node: r.varint_as()?,
                provided: Caps(r.u8()?),
                mtu: r.varint_as()?,
                lease_ms: r.varint_as()?,
                name: r.str()?,
            }),
            Kind::Refuse => Msg::Refuse(Refuse {
                version: r.u8()?,
                session: r.u32le()?,
                incarnation: r.varint()?,
                reason: r.u8()?,
                detail: r.varint_as()?,
            }),
            Kind::Events => {
                let session = r.u32le()?;
                let events = Events { base: r.varint()?, bytes: r.rest() };
                events.check()?;
                r.take(events.bytes.len())?;
                Msg::Events { session, events }
            }
            Kind::Ack => Msg::Ack { session: r.u32le()?, cum: r.varint()?, sack: r.varint()? },
            Kind::Keepalive => Msg::Keepalive { session: r.u32le()? },
            Kind::Bye => Msg::Bye { session: r.u32le()? },
            Kind::Fetch => Msg::Fetch { session: r.u32le()?, route: r.varint_as()?, seq: r.varint()?, offset: r.varint()? },
            Kind::FetchReply => {
                let session = r.u32le()?;
                let route = r.varint_as()?;
                let seq = r.varint()?;
                let offset = r.varint()?;
                let payload = match r.u8()? {
                    1 => {
                        let total = r.varint()?;
                        let n = r.varint()?;
                        // The piece lies inside the payload.
                        if offset.checked_add(n).is_none_or(|end| end > total) {
                            return Err(MeshError::DecodeBadField);
                        }
                        let n = usize::try_from(n).map_err(|_| MeshError::DecodeShort)?;
                        Ok(Piece { total, bytes: r.take(n)? })
                    }
                    b => Err(FetchRefused::from_code(b).ok_or(MeshError::DecodeBadField)?),
                };
                Msg::FetchReply { session, route, seq, offset, payload }
            }
            Kind::Sealed => return Err(MeshError::DecodeUnknownKind),
        };
        r.end()?;
        Ok(msg)
    }

    /// Writes the message (an `events` message is written by [`write_events_head`] and
    /// [`write_event`] instead: this writes its entries as they were read).
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<usize, MeshError> {
        w.u8(self.kind() as u8);
        match *self {
            Msg::Hello(h) => {
                w.u8(h.version).bytes(&h.session.to_le_bytes()).varint(h.incarnation).varint(h.node.into());
                w.bytes(&h.manifest_id).u8(h.requested.0).u8(h.transport.0);
                w.varint(h.mtu.into()).varint(h.lease_ms.into()).str(h.name).str(h.link);
                w.varint(h.routes.len() as u64);
                for (route, prefix) in h.routes.iter() {
                    w.varint(route.into()).bytes(&prefix);
                }
            }
            Msg::Welcome(m) => {
                w.u8(m.version).bytes(&m.session.to_le_bytes()).varint(m.incarnation).varint(m.node.into());
                w.u8(m.provided.0).varint(m.mtu.into()).varint(m.lease_ms.into()).str(m.name);
            }
            Msg::Refuse(m) => {
                w.u8(m.version).bytes(&m.session.to_le_bytes()).varint(m.incarnation).u8(m.reason);
                w.varint(m.detail.into());
            }
            Msg::Events { session, events } => {
                w.bytes(&session.to_le_bytes()).varint(events.base).bytes(events.bytes);
            }
            Msg::Ack { session, cum, sack } => {
                w.bytes(&session.to_le_bytes()).varint(cum).varint(sack);
            }
            Msg::Keepalive { session } | Msg::Bye { session } => {
                w.bytes(&session.to_le_bytes());
            }
            Msg::Fetch { session, route, seq, offset } => {
                w.bytes(&session.to_le_bytes()).varint(route.into()).varint(seq).varint(offset);
            }
            Msg::FetchReply { session, route, seq, offset, payload } => {
                w.bytes(&session.to_le_bytes()).varint(route.into()).varint(seq).varint(offset);
                match payload {
                    Err(refused) => w.u8(refused.code()),
                    Ok(p) => w.u8(1).varint(p.total).varint(p.bytes.len() as u64).bytes(p.bytes),
                };
            }
        }
        w.done()
    }
}

/// Writes the head of an `events` message: kind, session tag, and `base`, the link sequence
/// number before its first event. Entries follow: [`write_entry`] for each.
pub fn write_events_head(w: &mut Writer<'_>, session: u32, base: u64) {
    w.u8(Kind::Events as u8).bytes(&session.to_le_bytes()).varint(base);
}

/// Writes one entry of an `events` message: the skip from the previous link sequence number,
/// then the event's bytes as [`write_event`] wrote them.
pub fn write_entry(w: &mut Writer<'_>, skip: u64, event: &[u8]) {
    w.varint(skip).bytes(event);
}
