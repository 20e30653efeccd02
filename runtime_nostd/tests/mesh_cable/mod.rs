//! Test helpers for the node link: a seeded in-process fault cable (drop, duplicate, reorder,
//! corrupt, delay) carrying datagrams of the v1 frame layer, and a pair of sessions on it,
//! driven on a clock the test moves (no sleeping).
#![allow(dead_code)]

use manyfold_core::framing::{decode_datagram, encode_datagram};
use manyfold_core::mesh::{Caps, Delivery, DownReason, EventOut, FetchRefused, LineageRef, LinkConfig, PayloadOut, Refusal, RouteDecl, Session};

/// The sessions of the tests: 64 events in the window and the resequencing buffer.
pub type S = Session<64, 64>;

/// What faults a cable applies, each a probability per datagram (delay in microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub drop: f64,
    pub dup: f64,
    pub reorder: f64,
    pub corrupt: f64,
    pub delay_us: i64,
}

/// One direction of a cable: datagrams in flight with their arrival times.
pub struct Cable {
    rng: u64,
    pub faults: Faults,
    pub cut: bool,
    flight: Vec<(i64, u64, Vec<u8>)>,
    order: u64,
    pub sent: u64,
    pub corrupted: u64,
}

impl Cable {
    pub fn new(seed: u64, faults: Faults) -> Self {
        Cable { rng: seed | 1, faults, cut: false, flight: Vec::new(), order: 0, sent: 0, corrupted: 0 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    /// Frames `body` as a datagram and sends it through the faults.
    pub fn send(&mut self, now: i64, body: &[u8]) {
        self.sent += 1;
        if self.cut || self.chance(self.faults.drop) {
            return;
        }
        let mut d = vec![0u8; body.len() + 4];
        let n = encode_datagram(body, &mut d, 4096).unwrap();
        d.truncate(n);
        if self.chance(self.faults.corrupt) {
            let bit = (self.next() % (d.len() as u64 * 8)) as usize;
            d[bit / 8] ^= 1 << (bit % 8);
            self.corrupted += 1;
        }
        let copies = if self.chance(self.faults.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + self.faults.delay_us;
            if self.chance(self.faults.reorder) {
                at += 1 + (self.next() % 3_000) as i64;
            }
            self.order += 1;
            self.flight.push((at, self.order, d.clone()));
        }
    }

    /// The datagrams due by `now`, in arrival order.
    pub fn due(&mut self, now: i64) -> Vec<Vec<u8>> {
        self.flight.sort_by_key(|(at, order, _)| (*at, *order));
        let n = self.flight.iter().take_while(|(at, _, _)| *at <= now).count();
        self.flight.drain(..n).map(|(_, _, d)| d).collect()
    }
}

/// A delivery, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Rec {
    Up { peer_node: u16, peer_name: String, peer_incarnation: u64, provided: Caps, missing: Caps },
    Event { route: u32, seq: u64, link_seq: u64, gap: bool, time_us: i64, taints: u32, parents: Vec<LineageRef>, payload: Payload },
    FetchRequest { route: u32, seq: u64, offset: u64 },
    /// `payload`: the payload's total length and the piece's bytes.
    FetchReply { route: u32, seq: u64, offset: u64, payload: Result<(u64, Vec<u8>), FetchRefused> },
    Refused(Refusal),
    Down(DownReason),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Inline(Vec<u8>),
    Lazy(Vec<u8>, u64, [u8; 32]),
}

pub fn record(d: Delivery<'_>) -> Rec {
    match d {
        Delivery::Up { peer_node, peer_name, peer_incarnation, provided, missing } => {
            Rec::Up { peer_node, peer_name: peer_name.into(), peer_incarnation, provided, missing }
        }
        Delivery::Event(e) => Rec::Event {
            route: e.route,
            seq: e.seq,
            link_seq: e.link_seq,
            gap: e.gap,
            time_us: e.time_us,
            taints: e.taints,
            parents: e.parents.iter().collect(),
            payload: match e.payload {
                PayloadOut::Inline(b) => Payload::Inline(b.to_vec()),
                PayloadOut::Lazy { meta, len, digest } => Payload::Lazy(meta.to_vec(), len, digest),
            },
        },
        Delivery::FetchRequest { route, seq, offset } => Rec::FetchRequest { route, seq, offset },
        Delivery::FetchReply { route, seq, offset, payload } => {
            Rec::FetchReply { route, seq, offset, payload: payload.map(|p| (p.total, p.bytes.to_vec())) }
        }
        Delivery::Refused(r) => Rec::Refused(r),
        Delivery::Down(r) => Rec::Down(r),
    }
}

pub const MANIFEST: [u8; 32] = [7; 32];

pub fn routes() -> Vec<RouteDecl> {
    vec![RouteDecl { route: 0, schema_hash: [1; 32] }, RouteDecl { route: 3, schema_hash: [2; 32] }, RouteDecl { route: 200, schema_hash: [3; 32] }]
}

/// A config for one end of link "ab" over UDP (the transport gives nothing).
pub fn config<'a>(initiator: bool, requested: Caps, routes: &'a [RouteDecl]) -> LinkConfig<'a> {
    LinkConfig {
        node_id: if initiator { 1 } else { 2 },
        node_name: if initiator { "a" } else { "b" },
        incarnation: if initiator { 1_000 } else { 2_000 },
        manifest_id: MANIFEST,
        link: "ab",
        requested,
        transport: Caps::NONE,
        mtu: 1200,
        lease_ms: 10_000,
        routes,
        key: None,
        initiator,
    }
}

/// Two sessions on a cable each way, and what each delivered.
pub struct Pair {
    pub a: S,
    pub b: S,
    pub ab: Cable,
    pub ba: Cable,
    pub now: i64,
    pub got_a: Vec<Rec>,
    pub got_b: Vec<Rec>,
    pub bad_frames: u64,
    /// Every body each end sent, in order (to replay or forge).
    pub sent_a: Vec<Vec<u8>>,
    pub sent_b: Vec<Vec<u8>>,
}

impl Pair {
    pub fn new(a: &LinkConfig<'_>, b: &LinkConfig<'_>, seed: u64, faults: Faults) -> Self {
        Pair {
            a: S::new(a),
            b: S::new(b),
            ab: Cable::new(seed, faults),
            ba: Cable::new(seed.wrapping_mul(31).wrapping_add(7), faults),
            now: 0,
            got_a: Vec::new(),
            got_b: Vec::new(),
            bad_frames: 0,
            sent_a: Vec::new(),
            sent_b: Vec::new(),
        }
    }

    pub fn connect(&mut self) {
        self.a.connect(self.now);
        self.b.connect(self.now);
    }

    /// One step: both ends transmit what they have, the cables deliver what is due, timers run.
    pub fn step(&mut self) {
        let now = self.now;
        let mut out = [0u8; 1500];
        while let Some(n) = self.a.poll_transmit(now, &mut out) {
            self.sent_a.push(out[..n].to_vec());
            self.ab.send(now, &out[..n]);
        }
        while let Some(n) = self.b.poll_transmit(now, &mut out) {
            self.sent_b.push(out[..n].to_vec());
            self.ba.send(now, &out[..n]);
        }
        for d in self.ab.due(now) {
            match decode_datagram(&d, 4096) {
                Ok(body) => {
                    let got = &mut self.got_b;
                    self.b.receive(now, body, &mut |x| got.push(record(x)));
                }
                Err(_) => self.bad_frames += 1,
            }
        }
        for d in self.ba.due(now) {
            match decode_datagram(&d, 4096) {
                Ok(body) => {
                    let got = &mut self.got_a;
                    self.a.receive(now, body, &mut |x| got.push(record(x)));
                }
                Err(_) => self.bad_frames += 1,
            }
        }
        let got = &mut self.got_a;
        self.a.tick(now, &mut |x| got.push(record(x)));
        let got = &mut self.got_b;
        self.b.tick(now, &mut |x| got.push(record(x)));
    }

    /// Steps every `dt` microseconds for `us` microseconds.
    pub fn run(&mut self, us: i64, dt: i64) {
        let end = self.now + us;
        while self.now < end {
            self.step();
            self.now += dt;
        }
    }

    pub fn events(got: &[Rec]) -> Vec<(u32, u64, bool)> {
        got.iter()
            .filter_map(|r| match r {
                Rec::Event { route, seq, gap, .. } => Some((*route, *seq, *gap)),
                _ => None,
            })
            .collect()
    }
}

/// An event of route `route` with an 8-byte payload.
pub fn event<'a>(route: u32, seq: u64, payload: &'a [u8; 8], parents: &'a [LineageRef]) -> EventOut<'a> {
    EventOut { route, seq, time_us: 1_700_000_000_000_000 + seq as i64 * 1000, domain: 0, taints: 0, parents, payload: PayloadOut::Inline(payload) }
}
