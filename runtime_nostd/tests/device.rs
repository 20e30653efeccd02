//! The device from bytes to bytes, as the firmware and the simulation drive it: sessions,
//! describe, nacks for everything refused, keepalive and reconnection, lockstep determinism
//! whatever the input chunking, and partition upload.

mod common;

use common::pair::{Dev, Out, Store};
use common::*;
use manyfold_core::framing::{decoder_buffer_len, encode_frame, frame_len_max, FrameDecoder};
use manyfold_core::image::ImageError;
use manyfold_core::link::msg::{DESCRIBE_RESET, HELLO_LOCKSTEP, HELLO_RESET};
use manyfold_core::link::refs::RxTime;
use manyfold_core::link::v11::{self, EventSink, Expanded, FromDevice, RouteRefs};
use manyfold_core::link::{
    Body, Event, Hello, Lineage, LinkTimers, Message, NackReason, Query, QueryKind, ReplyBody, Step, UploadBegin,
    UploadChunk, Value,
};
use manyfold_core::taint::{Taint, TaintSet};
use sha2::{Digest, Sha256};


/// A host talking to a device in memory.
struct Bench {
    dev: Box<Dev>,
    store: Store,
    out: Out,
    next_id: u32,
    now_us: i64,
}

impl Bench {
    fn new(image: Vec<u8>) -> Self {
        let decoder = FrameDecoder::new([0; decoder_buffer_len(256)], 256).unwrap();
        let mut dev = Box::new(Dev::new("bench", decoder, [0; 256], [0; frame_len_max(256)], LinkTimers::DEFAULT));
        let store = Store { image, staged: Vec::new() };
        dev.boot(&store, 0);
        Bench { dev, store, out: Out(Vec::new()), next_id: 0, now_us: 0 }
    }

    /// Feeds raw bytes, in pieces of `chunk`, and runs the device until it is idle.
    fn feed(&mut self, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk.max(1)) {
            let mut rest = piece;
            for _ in 0..1_000_000 {
                if self.dev.busy() {
                    self.dev.poll(self.now_us, &mut self.store, &mut self.out);
                    continue;
                }
                if rest.is_empty() {
                    break;
                }
                let used = self.dev.receive(self.now_us, rest, &mut self.store, &mut self.out);
                rest = &rest[used..];
            }
        }
        self.dev.poll(self.now_us, &mut self.store, &mut self.out);
    }

    fn frame(&mut self, body: Body<'_>) -> (u32, Vec<u8>) {
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % 256;
        let mut msg = [0u8; 4096];
        let n = v11::encode_request(&mut msg, id as u8, &body).unwrap();
        let mut frame = vec![0u8; frame_len_max(n)];
        let f = encode_frame(&msg[..n], &mut frame, 4096).unwrap();
        frame.truncate(f);
        (id, frame)
    }

    fn send(&mut self, body: Body<'_>) -> u32 {
        let (id, frame) = self.frame(body);
        self.feed(&frame, usize::MAX);
        id
    }

    fn hello(&mut self, flags: u8, session: u32) {
        self.send(Body::Hello(Hello { version: 2, max_message: 256, session, flags, time_us: 0 }));
    }

    /// Lets free-running time pass, polling every `tick_us`.
    fn advance(&mut self, us: i64, tick_us: i64) {
        let end = self.now_us + us;
        while self.now_us < end {
            self.now_us = (self.now_us + tick_us).min(end);
            self.dev.poll(self.now_us, &mut self.store, &mut self.out);
        }
    }

    /// The messages the device sent since the last call, as bytes.
    fn take(&mut self) -> Vec<Vec<u8>> {
        let mut decoder = FrameDecoder::with_max_message(256).unwrap();
        let mut out = Vec::new();
        decoder.feed(&self.out.0, |m| out.push(m.expect("the device sends valid frames").to_vec()));
        self.out.0.clear();
        out
    }

    fn bodies(&mut self) -> Vec<Vec<u8>> {
        self.take().into_iter().filter(|m| !m.is_empty()).collect()
    }
}

/// What the device sent, as the host decodes it: each event of a batch on its own. No
/// references: the device sends full-form events until a routes reply announced the routes.
struct Plain(Vec<Event>);

impl RouteRefs for Plain {
    fn seq_ref(&self, _route: u16) -> Option<u32> {
        None
    }
    fn declared(&self, _route: u16) -> Option<TaintSet> {
        None
    }
}

impl EventSink for Plain {
    fn event(&mut self, e: Expanded) {
        match e {
            Expanded::Event(e) => self.0.push(e),
            Expanded::Missing(route) => panic!("a short event on route {route} without announcing it"),
        }
    }
}

fn decode_all(bytes: &[u8]) -> Vec<Body<'_>> {
    let mut events = Plain(Vec::new());
    match v11::decode_from_device(bytes, &mut events, &mut RxTime::default(), 0).expect("the device sends valid messages") {
        FromDevice::Events => events.0.into_iter().map(Body::Event).collect(),
        FromDevice::Message(m) => vec![m.body],
    }
}

fn decode(bytes: &[u8]) -> Message<'_> {
    let body = decode_all(bytes).remove(0);
    Message { id: 0, body }
}

fn nack_of(bytes: &[u8]) -> (Option<u32>, NackReason, u32) {
    match decode(bytes).body {
        Body::Nack(n) => (n.ref_id, n.reason, n.detail),
        other => panic!("expected a nack, got {other:?}"),
    }
}

fn greenhouse_like() -> Img {
    let mut img = Img::new();
    let desired = img.inbound(FLOAT);
    let effective = img.outbound(FLOAT);
    let reported = img.outbound(FLOAT);
    img.op(7, desired, effective, vec![u(reported), u(1_000)]);
    let temp = img.outbound(FLOAT);
    img.source(temp, 1, 100_000, 0, 1, 20.0, 2.0, 8, 0.1);
    img
}

/// A hello opens a session; the describe names the board and the loaded image.
#[test]
fn hello_describes_the_loaded_image() {
    let img = greenhouse_like();
    let mut b = Bench::new(img.build());
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 7);
    let msgs = b.bodies();
    assert_eq!(msgs.len(), 1);
    let Body::Describe(d) = decode(&msgs[0]).body else { panic!("expected a describe") };
    assert_eq!((d.version, d.max_message, d.board, d.partition, d.session), (2, 256, "bench", "test", 7));
    assert_eq!(d.flags, HELLO_LOCKSTEP | DESCRIBE_RESET, "in lockstep, in a session opened by a reset");
    assert_eq!((d.image_status, d.manifest_id), (0, Some(img.manifest.clone().try_into().unwrap())));
    assert_eq!((d.ref_id, d.time_us, d.epoch), (Some(0), 0, 0), "it names the hello it answers");
}

/// With an erased or damaged region the device still boots and talks: its describe says why
/// nothing runs, events are refused with no_image, queries answer with empty tables.
#[test]
fn empty_region_boots_and_says_why() {
    for (region, error) in [(vec![0u8; 8192], ImageError::HeaderEmpty), (vec![0xFF; 8192], ImageError::HeaderEmpty), (b"MFPI\x01\x00\x00\x00\xff\xff\x00\x00".to_vec(), ImageError::HeaderBadLength)] {
        let mut b = Bench::new(region);
        b.hello(0, 1);
        let msgs = b.bodies();
        let Body::Describe(d) = decode(&msgs[0]).body else { panic!() };
        assert_eq!((d.image_status, d.manifest_id, d.partition), (error.code(), None, ""));
        let id = b.send(Body::Event(Event { route: 0, seq: 1, time_us: 0, epoch: 0, taints: TaintSet::EMPTY, lineage: Lineage::default(), value: Value::Float(1.0) }));
        assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::NoImage, 0));
        b.send(Body::Query(Query { what: QueryKind::Routes as u8, arg: 0 }));
        let msgs = b.bodies();
        let Body::Reply(r) = decode(&msgs[0]).body else { panic!() };
        let ReplyBody::Routes(p) = r.body else { panic!() };
        assert_eq!((p.total, p.items.len()), (0, 0));
    }
}

/// Every refused frame gets a nack without a ref, with the frame error as reason, and is
/// counted; the link keeps working.
#[test]
fn frame_errors_are_nacked_and_counted() {
    let mut b = Bench::new(greenhouse_like().build());
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 1);
    b.bodies();
    let (_, mut good) = b.frame(Body::Heartbeat(manyfold_core::link::Heartbeat { time_us: 0x1111_1111 }));
    good[4] ^= 0x01; // a flipped bit: bad CRC
    b.feed(&good, usize::MAX);
    b.feed(b"\x05\x01\x00", usize::MAX); // bad COBS
    b.feed(b"\x02\x61\x00", usize::MAX); // short body
    b.feed(&[7u8; 400].iter().copied().chain([0]).collect::<Vec<_>>(), usize::MAX); // oversize
    let reasons: Vec<_> = b.bodies().iter().map(|m| nack_of(m)).collect();
    assert_eq!(
        reasons,
        vec![
            (None, NackReason::FrameBadCrc, 0),
            (None, NackReason::FrameBadCobs, 0),
            (None, NackReason::FrameShort, 0),
            (None, NackReason::FrameOversize, 256),
        ]
    );
    b.send(Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 }));
    let msgs = b.bodies();
    let Body::Reply(r) = decode(&msgs[0]).body else { panic!() };
    let ReplyBody::Counters(c) = r.body else { panic!() };
    assert_eq!((c.frames, c.frame_crc_errors, c.frame_cobs_errors, c.frame_short, c.frame_oversize), (2, 1, 1, 1, 1));
    assert_eq!(c.nacks_tx, 4);
    assert_eq!(c.rx_gaps, 1, "the corrupted heartbeat's id is missing from the host's sequence");
}

/// Messages that do not decode, or that the device cannot take, get a nack naming them when
/// their id is readable; nothing goes unanswered.
#[test]
fn bad_messages_are_nacked_with_their_id() {
    let mut b = Bench::new(greenhouse_like().build());
    let send_raw = |b: &mut Bench, msg: &[u8]| {
        let mut frame = vec![0u8; frame_len_max(msg.len())];
        let n = encode_frame(msg, &mut frame, 4096).unwrap();
        b.feed(&frame[..n], usize::MAX);
        nack_of(&b.bodies()[0])
    };
    // Before any hello.
    let id = b.send(Body::Query(Query { what: 0, arg: 0 }));
    assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::NoSession, 0));
    // A v1 host: refused in the layout it reads, with the version this device speaks.
    let id = b.send(Body::Hello(Hello { version: 1, max_message: 256, session: 1, flags: 0, time_us: 0 }));
    assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::VersionUnsupported, 2));
    let id = b.send(Body::Hello(Hello { version: 2, max_message: 64, session: 1, flags: 0, time_us: 0 }));
    assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::MaxMessageTooSmall, 128));
    b.hello(HELLO_RESET, 1);
    b.bodies();
    assert_eq!(send_raw(&mut b, &[0x82, 0x18, 0x63, 0x07]), (Some(7), NackReason::DecodeUnknownKind, 0));
    assert_eq!(send_raw(&mut b, &[0xa0]), (None, NackReason::DecodeNotArray, 0));
    assert_eq!(send_raw(&mut b, &[0x83, 0x01, 0x05, 0x02]), (Some(5), NackReason::DecodeBadArity, 0), "a hello of 3 items");
    assert_eq!(send_raw(&mut b, &[0xe9, 0x08, 0x01]), (Some(8), NackReason::DecodeBadCbor, 0), "a step cut short");
    assert_eq!(send_raw(&mut b, &[0xef, 0x09]), (Some(9), NackReason::DecodeUnknownKind, 0));
    assert_eq!(send_raw(&mut b, &[0xe4, 0x0a, 0x00]), (Some(10), NackReason::KindUnexpected, 0), "an ack");
    let id = b.send(Body::Step(Step { to_us: 5, epoch: 0, seen_us: 0 }));
    assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::NotLockstep, 0));
}

/// The same input gives the same output bytes however it is cut into reads (the property that
/// makes a board and the simulation agree).
#[test]
fn output_does_not_depend_on_input_chunking() {
    let img = greenhouse_like();
    let trace = {
        let mut b = Bench::new(img.build());
        let mut bytes = b.frame(Body::Hello(Hello { version: 2, max_message: 256, session: 3, flags: HELLO_LOCKSTEP | HELLO_RESET, time_us: 0 })).1;
        for (i, t) in [250_000i64, 500_000, 2_000_000, 2_100_000].iter().enumerate() {
            bytes.extend(b.frame(Body::Step(Step { to_us: *t, epoch: 0, seen_us: 0 })).1);
            bytes.extend(b.frame(Body::Event(Event { route: 0, seq: i as u32 + 1, time_us: *t, epoch: 0, taints: TaintSet::EMPTY, lineage: Lineage::default(), value: Value::Float(*t as f64) })).1);
            bytes.extend(b.frame(Body::Query(Query { what: (i % 8) as u8, arg: 0 })).1);
        }
        bytes
    };
    let run = |chunk: usize| {
        let mut b = Bench::new(img.build());
        b.feed(&trace, chunk);
        std::mem::take(&mut b.out.0)
    };
    let whole = run(usize::MAX);
    assert!(whole.len() > 500);
    for chunk in [1, 2, 3, 7, 64, 255] {
        assert_eq!(run(chunk), whole, "chunks of {chunk}");
    }
}

/// Free-running, the device heartbeats when idle, goes stale after 3 s without the host
/// (events then are counted unsent), and a hello of the same session resumes it: counted, and
/// the next event to the host says delivery_dropped.
#[test]
fn keepalive_stale_and_resume() {
    let mut b = Bench::new(greenhouse_like().build());
    b.hello(0, 42);
    b.bodies();
    b.advance(1_200_000, 10_000);
    let msgs = b.bodies();
    let kinds: Vec<_> = msgs.iter().flat_map(|m| decode_all(m)).map(|b| b.kind()).collect();
    assert!(kinds.iter().all(|k| matches!(k, manyfold_core::link::Kind::Event)), "events flow, so no heartbeat is needed: {kinds:?}");
    b.advance(5_000_000, 10_000);
    let after: Vec<_> = b.bodies();
    assert!(after.len() < 40, "after 3 s of silence the device stops sending events");
    b.hello(0, 42);
    let msgs = b.bodies();
    let Body::Describe(_) = decode(&msgs[0]).body else { panic!("expected a describe") };
    b.advance(200_000, 10_000);
    let msgs = b.bodies();
    let events: Vec<Event> = msgs.iter().flat_map(|m| decode_all(m)).filter_map(|b| if let Body::Event(e) = b { Some(e) } else { None }).collect();
    assert!(events[0].taints.contains(Taint::DeliveryDropped), "the first event after the gap says so");
    b.send(Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 }));
    let msgs = b.bodies();
    let Body::Reply(r) = decode(msgs.last().unwrap()).body else { panic!() };
    let ReplyBody::Counters(c) = r.body else { panic!() };
    assert_eq!((c.stale, c.resumes, c.sessions), (1, 1, 1));
    assert!(c.events_unsent > 10);
}

/// In lockstep, the device's timers follow its stepped time: a step's own output (its ack) is
/// activity, so no heartbeat follows it; a lockstep device idle between steps sends none.
#[test]
fn lockstep_heartbeats_follow_steps() {
    let mut img = Img::new();
    img.route(FLOAT); // nothing to the host: only heartbeats
    let mut b = Bench::new(img.build());
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 1);
    b.bodies();
    b.advance(5_000_000, 100_000);
    assert!(b.bodies().is_empty(), "the board's clock does not move a lockstep device");
    b.send(Body::Step(Step { to_us: 1_500_000, epoch: 0, seen_us: 0 }));
    let msgs = b.bodies();
    let kinds: Vec<_> = msgs.iter().map(|m| decode(m).body.kind()).collect();
    assert_eq!(kinds, vec![manyfold_core::link::Kind::Ack]);
}

/// A hello with the reset flag (and a new session: the session id is the reset token)
/// restarts the partition and the counters.
#[test]
fn reset_restarts_state_ids_and_counters() {
    let mut b = Bench::new(greenhouse_like().build());
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 1);
    b.send(Body::Step(Step { to_us: 1_000_000, epoch: 0, seen_us: 0 }));
    let first = b.bodies();
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 2);
    b.send(Body::Step(Step { to_us: 1_000_000, epoch: 0, seen_us: 0 }));
    let second = b.bodies();
    assert_eq!(first.len(), second.len());
    // Same events; only the describe's session and the acks' refs differ.
    let events = |msgs: &[Vec<u8>]| msgs.iter().filter(|m| m[0] < 0x80).cloned().collect::<Vec<_>>();
    assert_eq!(events(&first), events(&second));
    b.send(Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 }));
    let msgs = b.bodies();
    let Body::Reply(r) = decode(&msgs[0]).body else { panic!() };
    let ReplyBody::Counters(c) = r.body else { panic!() };
    assert_eq!((c.frames, c.sessions, c.steps), (3, 1, 1), "counted from the reset hello on");
}

/// Upload: begin, chunks in order, commit; the device checks the SHA-256 and the image before
/// switching, refuses what is wrong with a nack, and keeps the old image then.
#[test]
fn upload_replaces_the_image() {
    let mut b = Bench::new(greenhouse_like().build());
    b.hello(HELLO_LOCKSTEP | HELLO_RESET, 1);
    b.bodies();
    let mut next = Img::new();
    next.manifest = vec![9; 32];
    next.name = "next".into();
    next.outbound(FLOAT);
    let image = next.build();
    let sha: [u8; 32] = Sha256::digest(&image).into();

    let id = b.send(Body::UploadChunk(UploadChunk { offset: 0, data: &image }));
    assert_eq!(nack_of(&b.bodies()[0]), (Some(id), NackReason::UploadNotBegun, 0));
    b.send(Body::UploadBegin(UploadBegin { total_len: image.len() as u32, sha256: sha }));
    let half = image.len() / 2;
    b.send(Body::UploadChunk(UploadChunk { offset: 0, data: &image[..half] }));
    let id = b.send(Body::UploadChunk(UploadChunk { offset: 3, data: &image[half..] }));
    let acks = b.bodies();
    assert!(matches!(decode(&acks[1]).body, Body::Ack(a) if a.info == half as i64));
    assert_eq!(nack_of(&acks[2]), (Some(id), NackReason::UploadBadOffset, half as u32));
    b.send(Body::UploadChunk(UploadChunk { offset: half as u32, data: &image[half..] }));
    b.send(Body::UploadCommit);
    assert!(b.bodies().iter().all(|m| matches!(decode(m).body, Body::Ack(_))));
    b.hello(HELLO_LOCKSTEP, 1);
    let msgs = b.bodies();
    let Body::Describe(d) = decode(&msgs[0]).body else { panic!() };
    assert_eq!((d.partition, d.manifest_id), ("next", Some([9; 32])));

    // A wrong digest, and a valid digest over an invalid image: both refused, image kept.
    let mut broken = image.clone();
    broken[20] ^= 0xFF;
    for (bytes, digest, reason) in [
        (&image, [0u8; 32], NackReason::UploadDigestMismatch),
        (&broken, Sha256::digest(&broken).into(), NackReason::ImageInvalid),
    ] {
        b.send(Body::UploadBegin(UploadBegin { total_len: bytes.len() as u32, sha256: digest }));
        b.send(Body::UploadChunk(UploadChunk { offset: 0, data: bytes }));
        let id = b.send(Body::UploadCommit);
        let msgs = b.bodies();
        let (r, got, _) = nack_of(msgs.last().unwrap());
        assert_eq!((r, got), (Some(id), reason));
    }
    b.hello(HELLO_LOCKSTEP, 1);
    let msgs = b.bodies();
    let Body::Describe(d) = decode(&msgs[0]).body else { panic!() };
    assert_eq!(d.partition, "next");
}

/// A host asking for smaller messages gets replies that fit them: pages shrink.
#[test]
fn replies_fit_the_hosts_max_message() {
    let mut img = Img::new();
    for _ in 0..16 {
        img.route(FLOAT);
    }
    let mut b = Bench::new(img.build());
    b.send(Body::Hello(Hello { version: 2, max_message: 128, session: 1, flags: HELLO_RESET, time_us: 0 }));
    b.bodies();
    b.send(Body::Query(Query { what: QueryKind::Routes as u8, arg: 0 }));
    let msgs = b.bodies();
    assert!(msgs[0].len() <= 128);
    let Body::Reply(r) = decode(&msgs[0]).body else { panic!() };
    let ReplyBody::Routes(p) = r.body else { panic!() };
    assert!(!p.items.is_empty() && p.items.len() < 16);
}
