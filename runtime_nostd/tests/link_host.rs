//! The host role (`link::host::HostLink`) against the device role, both `manyfold-core`'s, over
//! an in-memory cable: the v1.1 handshake and route table, compact events and their
//! references, version refusal, the reset token, resends with the same id, and losses shown
//! as taints.

mod common;

use common::pair::{split_frames, Got, Pair};
use common::*;
use manyfold_core::framing::{decoder_buffer_len, encode_frame, frame_len_max, FrameDecoder};
use manyfold_core::link::host::{HostConfig, HostLink, Phase};
use manyfold_core::link::msg::DESCRIBE_RESET;
use manyfold_core::link::{
    Ack, Body, Describe, Event, Kind, Lineage, Message, Nack, NackReason, Query, QueryKind, Step, UploadBegin, UploadChunk, Value,
};
use manyfold_core::taint::{Taint, TaintSet};

/// One noisy source every 100 ms sent to the host, and its value scaled, sent too.
fn sensor() -> Img {
    let mut img = Img::new();
    let raw = img.outbound(FLOAT);
    img.source(raw, 1, 100_000, 0, 7, 20.0, 2.0, 8, 0.5);
    let scaled = img.outbound(FLOAT);
    img.op(2, raw, scaled, vec![f(10.0), f(0.0)]);
    img
}

fn step(pair: &mut Pair, to_us: i64) -> Vec<Event> {
    assert!(matches!(pair.request(Body::Step(Step { to_us, epoch: 0, seen_us: 0 })), Got::Ack(_)));
    pair.events()
}

fn message_of(frame: &[u8]) -> Vec<u8> {
    let mut d = FrameDecoder::with_max_message(256).unwrap();
    let mut out = Vec::new();
    d.feed(frame, |m| out.push(m.unwrap().to_vec()));
    out.remove(0)
}

/// A v1.1 host opens a session, reads the route table (with each route's declared taints), and
/// then receives compact events that decode to what the device recorded.
#[test]
fn handshake_reads_routes_then_events_go_short() {
    let mut p = Pair::new(sensor().build(), HostConfig::DEFAULT);
    p.connect(7, true, true);
    assert_eq!(p.host.phase(), Phase::Ready);
    assert_eq!(p.host.version(), 2);
    let (version, resumed, flags, time_us) = p.sink.describes[0];
    assert_eq!((version, resumed, time_us), (2, false, 0));
    assert!(flags & DESCRIBE_RESET != 0, "the session was opened by a reset");
    let seeded = TaintSet::of(Taint::DetSeededEntropy);
    assert_eq!(p.sink.routes.iter().map(|r| r.taints).collect::<Vec<_>>(), [Some(seeded), Some(seeded)]);
    let events = step(&mut p, 1_000_000);
    assert_eq!(events.len(), 22, "11 readings at 0, 0.1, ... 1 s, and their scaled values");
    let raw: Vec<&Event> = events.iter().filter(|e| e.route == 0).collect();
    assert_eq!(raw.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
    assert_eq!(raw.iter().map(|e| e.time_us).collect::<Vec<_>>(), (0..=10).map(|i| i * 100_000).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e.taints == seeded));
    let scaled = events.iter().find(|e| e.route == 1).unwrap();
    assert_eq!(scaled.lineage, Lineage { route: 0, first_seq: scaled.seq, count: 1 });
    // What the host holds is what the device recorded.
    match p.request(Body::Query(Query { what: QueryKind::Latest as u8, arg: 1 })) {
        Got::Latest(Some(e)) => assert_eq!(e, *events.iter().rev().find(|e| e.route == 1).unwrap()),
        other => panic!("{other:?}"),
    }
    // Every event frame after the route table is a batch of short events.
    let batches: Vec<Vec<u8>> = p.sink.messages.iter().filter(|m| m[0] < 0x80).cloned().collect();
    assert!(!batches.is_empty() && batches.iter().all(|m| m[0] & 0x40 == 0), "short form");
    assert!(batches.iter().any(|m| m.len() > 20), "several events to a frame");
}

/// A single reading on the wire: 16 bytes with its frame, a `latest` query and its reply 32.
#[test]
fn a_reading_costs_sixteen_bytes() {
    let mut img = Img::new();
    let raw = img.outbound(FLOAT);
    img.source(raw, 0, 60_000_000, 60_000_000, 1, 2048.5, 0.0, 1, 0.0);
    let mut p = Pair::new(img.build(), HostConfig::DEFAULT);
    p.connect(1, true, true);
    // A step acknowledges the device time the host has seen: from 59 s, 60 s is close enough.
    step(&mut p, 59_000_000);
    let before = p.device_frames.len();
    let events = step(&mut p, 60_000_000);
    assert_eq!(events.len(), 1);
    let frames = &p.device_frames[before..];
    assert_eq!(message_of(&frames[1])[0], 0xe4, "the event, then the step's ack");
    assert_eq!(frames[0].len(), 16, "{:02x?}", frames[0]);
    let before = p.device_frames.len();
    let (sent_before, frames_before) = (p.host.counters().messages_tx, p.host_frames.len());
    assert!(matches!(p.request(Body::Query(Query { what: QueryKind::Latest as u8, arg: 0 })), Got::Latest(Some(_))));
    assert_eq!(p.host.counters().messages_tx, sent_before + 1);
    assert_eq!(p.host_frames.len(), frames_before + 1, "the query alone");
    let (query, reply) = (&p.host_frames[frames_before], &p.device_frames[before]);
    assert!(query.len() + reply.len() <= 32, "query {} bytes, reply {} bytes", query.len(), reply.len());
}

/// Events lost on the way show as a gap in their route's seqs: counted, and the route's next
/// event says delivery_dropped; the other routes' events do not.
#[test]
fn lost_events_taint_the_next_event_of_their_route() {
    let mut p = Pair::new(sensor().build(), HostConfig { max_message: 128, ..HostConfig::DEFAULT });
    p.connect(3, true, true);
    step(&mut p, 500_000);
    // The next step's first event frame is lost (128-byte messages: a dozen events to a frame).
    let n = p.device_frames.len();
    p.lose_to_host = vec![n];
    let events = step(&mut p, 1_500_000);
    let lost = message_of(&p.device_frames[n]);
    assert!(lost[0] < 0x80, "an event batch was lost");
    assert!(p.host.counters().rx_gaps >= 1);
    for route in [0u16, 1] {
        let mine: Vec<&Event> = events.iter().filter(|e| e.route == route).collect();
        let first = mine[0];
        assert!(first.taints.contains(Taint::DeliveryDropped), "route {route}: {first:?}");
        assert!(mine[1..].iter().all(|e| !e.taints.contains(Taint::DeliveryDropped)));
    }
}

/// A copy of an event batch (a datagram link duplicates) and a batch that arrives after a later
/// one are dropped and counted (`events_duplicate`), never delivered twice; a reset starts the
/// host's references afresh, so the device's new counts are not taken for copies.
#[test]
fn copies_and_late_events_are_dropped_and_counted() {
    let mut p = Pair::new(sensor().build(), HostConfig { max_message: 128, ..HostConfig::DEFAULT });
    p.connect(3, true, true);
    let first = step(&mut p, 500_000);
    let batches: Vec<Vec<u8>> = p.device_frames.iter().filter(|f| message_of(f)[0] < 0x80).cloned().collect();
    assert!(!first.is_empty() && !batches.is_empty());
    let now = p.now_ms();
    for batch in &batches {
        p.host.receive(now, batch, &mut p.sink);
    }
    assert!(p.events().is_empty(), "no event twice");
    let copies = p.host.counters().events_duplicate;
    assert_eq!(copies as usize, first.len());
    assert_eq!(p.host.counters().rx_gaps, 0);
    // A reset: the device counts from 1 again, and its events are new ones.
    p.connect(4, true, true);
    let again = step(&mut p, 500_000);
    assert_eq!(again.len(), first.len());
    assert_eq!(p.host.counters().events_duplicate, copies);
    assert!(again.iter().all(|e| !e.taints.contains(Taint::DeliveryDropped)));
}

/// A v1-only host is refused by a v1.1 device with a nack it can read (version_unsupported,
/// the device's version); the device stays ready for a v1.1 host.
#[test]
fn a_v1_host_is_refused_with_a_reason() {
    let mut p = Pair::new(sensor().build(), HostConfig { version_max: 1, ..HostConfig::DEFAULT });
    p.connect(5, false, false);
    assert_eq!(p.host.phase(), Phase::Closed);
    let nack = p.sink.failed_connects[0].expect("a refusal");
    assert_eq!((nack.reason, nack.detail), (NackReason::VersionUnsupported, 2));
    let raw = message_of(p.device_frames.last().unwrap());
    assert_eq!(raw[0], 0x85, "the refusal has the v1 layout: [5, id, ref, reason, detail]");
}

/// The session id is the reset token: when the describe of a reset hello is lost, the hello's
/// resend does not reset the device again, so no two events share a (route, seq).
#[test]
fn a_lost_describe_does_not_reset_twice() {
    let mut p = Pair::new(sensor().build(), HostConfig::DEFAULT);
    let n = p.device_frames.len();
    p.lose_to_host = vec![n]; // the describe
    let now = p.now_ms();
    p.host.connect(now, 11, false, true, 0, true, &mut p.sink);
    p.advance(700_000, 50_000); // free-running; the host says hello again after 500 ms
    assert_eq!(p.host.phase(), Phase::Ready);
    let events = p.events();
    assert!(events.len() >= 4);
    match p.request(Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 })) {
        Got::Counters(c) => assert_eq!(c.sessions, 1, "one reset"),
        other => panic!("{other:?}"),
    }
    let mut seqs: Vec<(u16, u32)> = events.iter().map(|e| (e.route, e.seq)).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), events.len(), "no (route, seq) twice");
}

/// A damaged request is refused (a nack without a ref) and sent again with the same id: the
/// device counts no gap, and the step is carried out once.
#[test]
fn a_damaged_request_is_resent_with_its_id() {
    let mut p = Pair::new(sensor().build(), HostConfig::DEFAULT);
    p.connect(9, true, true);
    p.damage_to_device = vec![p.host_frames.len()];
    let events = step(&mut p, 1_000_000);
    assert_eq!(events.len(), 22);
    assert_eq!((p.host.counters().retries, p.host.counters().nacks), (1, 1));
    match p.request(Body::Query(Query { what: QueryKind::Counters as u8, arg: 0 })) {
        Got::Counters(c) => {
            assert_eq!((c.steps, c.rx_gaps, c.nacks_tx), (1, 0, 1));
            assert_eq!(c.frame_crc_errors + c.frame_cobs_errors + c.frame_short, 1);
        }
        other => panic!("{other:?}"),
    }
}

/// A host event keeps its own time (the host's, in the device's time base) and gets no lineage
/// on the device; its ack carries the device's time.
#[test]
fn host_events_keep_their_time() {
    let mut img = Img::new();
    let desired = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(2, desired, out, vec![f(1.0), f(0.0)]);
    let mut p = Pair::new(img.build(), HostConfig::DEFAULT);
    p.connect(4, true, true);
    step(&mut p, 2_000_000);
    let lineage = Lineage { route: 9, first_seq: 9, count: 9 };
    let e = Event { route: 0, seq: 1, time_us: 1_500_000, epoch: 5, taints: TaintSet::EMPTY, lineage, value: Value::Float(1.5) };
    match p.request(Body::Event(e)) {
        Got::Ack(a) => assert_eq!(a.info, 2_000_000),
        other => panic!("{other:?}"),
    }
    let out = p.events();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].time_us, out[0].epoch, out[0].taints), (1_500_000, 0, TaintSet::EMPTY));
    assert_eq!(out[0].lineage, Lineage { route: 0, first_seq: 1, count: 1 });
    match p.request(Body::Query(Query { what: QueryKind::Latest as u8, arg: 0 })) {
        Got::Latest(Some(e)) => assert_eq!((e.lineage, e.epoch), (Lineage::default(), 0), "recorded without lineage, in the epoch in force"),
        other => panic!("{other:?}"),
    }
}

/// A host driven by hand against a scripted v1 board: what the host writes is read back with
/// the v1 codec, and the board's answers are written with it.
struct V1Board {
    host: common::pair::Host,
    sink: common::pair::Sink,
    now_ms: u64,
    /// The board's next message id.
    next_id: u32,
}

impl V1Board {
    fn new(version_max: u32) -> Self {
        let config = HostConfig { version_max, ..HostConfig::DEFAULT };
        let decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(256)], 256).unwrap();
        let host = HostLink::new(config, decoder, vec![0u8; 256], vec![0u8; frame_len_max(256)]);
        V1Board { host, sink: Default::default(), now_ms: 0, next_id: 0 }
    }

    /// The host's messages since the last call, as (id, kind).
    fn sent(&mut self) -> Vec<(u32, Kind)> {
        let wire = std::mem::take(&mut self.sink.wire);
        split_frames(&wire).iter().map(|f| message_of(f)).map(|m| {
            let m = Message::decode(&m).expect("a v1 message");
            (m.id, m.body.kind())
        }).collect()
    }

    /// The board sends `body`.
    fn answer(&mut self, body: Body<'_>) {
        let mut msg = [0u8; 256];
        let n = Message { id: self.next_id, body }.encode(&mut msg).unwrap();
        self.next_id += 1;
        let mut frame = [0u8; frame_len_max(256)];
        let f = encode_frame(&msg[..n], &mut frame, 256).unwrap();
        self.host.receive(self.now_ms, &frame[..f], &mut self.sink);
    }

    fn describe(&mut self, session: u32) {
        let d = Describe {
            version: 1,
            max_message: 256,
            capabilities: 0,
            board: "v1",
            image_status: 0,
            manifest_id: None,
            partition: "",
            session,
            flags: 0,
            ref_id: None,
            time_us: 0,
            epoch: 0,
        };
        self.answer(Body::Describe(d));
    }

    /// The host sends `body`, which the board acks.
    fn acked(&mut self, body: Body<'_>) -> u32 {
        let id = self.host.request(self.now_ms, &body, &mut self.sink).unwrap();
        assert_eq!(self.sent(), [(id, body.kind())]);
        self.answer(Body::Ack(Ack { ref_id: id, info: 0 }));
        assert_eq!(self.sink.answers.pop_front().map(|(i, _)| i), Some(id), "acked");
        id
    }
}

/// A v1-only host's hellos carry their whole id past 256: a v1 board reads the id the host
/// holds (the next request follows it, no gap), and a refusal naming it is heard, not thrown
/// away as a stray answer.
#[test]
fn a_v1_host_numbers_its_hellos_in_full() {
    let mut b = V1Board::new(1);
    b.host.connect(0, 5, false, false, 0, false, &mut b.sink);
    assert_eq!(b.sent(), [(0, Kind::Hello)]);
    b.describe(5);
    for _ in 0..300 {
        b.acked(Body::Resume);
    }
    b.host.resume(b.now_ms, &mut b.sink);
    assert_eq!(b.sent(), [(301, Kind::Hello)], "the resume's hello, id 301");
    b.describe(5);
    assert_eq!(b.host.phase(), Phase::Ready);
    assert_eq!(b.acked(Body::Resume), 302, "the request follows the hello");
    let c = b.host.counters();
    assert_eq!((c.sessions, c.resumes), (1, 1), "a session opened, then resumed");

    // The v1.1 device refuses each v1 hello, naming its id: the host hears every refusal.
    let mut p = Pair::new(sensor().build(), HostConfig { version_max: 1, ..HostConfig::DEFAULT });
    for _ in 0..260 {
        p.connect(5, false, false);
    }
    assert_eq!(p.sink.failed_connects.len(), 260, "hellos 0 to 259 all refused");
    let last = p.sink.failed_connects[259].expect("a nack");
    assert_eq!((last.ref_id, last.reason), (Some(259), NackReason::VersionUnsupported));
    assert_eq!(p.host.counters().stray_answers, 0);
}

/// A v1.1 host that fell back to v1 numbers its messages as v1 does: past 255 without wrapping,
/// each one after the last, so a v1 board counts no gap.
#[test]
fn after_falling_back_to_v1_ids_do_not_wrap() {
    let mut b = V1Board::new(2);
    b.host.connect(0, 8, false, false, 0, false, &mut b.sink);
    assert_eq!(b.sent(), [(0, Kind::Hello)]);
    b.answer(Body::Nack(Nack { ref_id: Some(0), reason: NackReason::VersionUnsupported, detail: 1 }));
    assert_eq!(b.sent(), [(1, Kind::Hello)], "greeted again in v1");
    b.describe(8);
    assert_eq!((b.host.phase(), b.host.version()), (Phase::Ready, 1));
    let ids: Vec<u32> = (0..300).map(|_| b.acked(Body::Resume)).collect();
    assert_eq!(ids, (2..302).collect::<Vec<u32>>());
}

/// The host numbers its events per route: one after its last event there (taken or not), from
/// the route's last seq in the device's table when the session opens; a new session, or a new
/// partition, numbers from the device's seqs again.
#[test]
fn host_event_seqs_follow_the_last_sent() {
    use sha2::Digest;
    let mut img = Img::new();
    let desired = img.inbound(FLOAT);
    let out = img.outbound(FLOAT);
    img.op(2, desired, out, vec![f(1.0), f(0.0)]);
    let image = img.build();
    let mut p = Pair::new(image.clone(), HostConfig::DEFAULT);
    p.connect(4, true, true);
    let send = |p: &mut Pair, seq: u32| {
        let e = Event { route: 0, seq, time_us: 0, epoch: 0, taints: TaintSet::EMPTY, lineage: Lineage::default(), value: Value::Float(1.0) };
        p.request(Body::Event(e))
    };
    assert_eq!(p.host.next_event_seq(0), 1);
    assert!(matches!(send(&mut p, 1), Got::Ack(_)));
    assert_eq!(p.host.next_event_seq(0), 2);
    assert!(matches!(send(&mut p, 10), Got::Ack(_)));
    assert!(matches!(send(&mut p, 5), Got::Nack(n) if n.reason == NackReason::SeqNotIncreasing));
    assert_eq!(p.host.next_event_seq(0), 6, "one after the host's last event");
    p.connect(5, true, false);
    assert_eq!(p.host.next_event_seq(0), 11, "a new session: one after the device's last seq");
    assert!(matches!(send(&mut p, 11), Got::Ack(_)));
    let sha256: [u8; 32] = sha2::Sha256::digest(&image).into();
    assert!(matches!(p.request(Body::UploadBegin(UploadBegin { total_len: image.len() as u32, sha256 })), Got::Ack(_)));
    for (i, data) in image.chunks(100).enumerate() {
        assert!(matches!(p.request(Body::UploadChunk(UploadChunk { offset: (i * 100) as u32, data })), Got::Ack(_)));
    }
    assert!(matches!(p.request(Body::UploadCommit), Got::Ack(_)));
    assert_eq!(p.host.phase(), Phase::Ready);
    assert_eq!(p.host.next_event_seq(0), 1, "a new partition starts its routes again");
}
