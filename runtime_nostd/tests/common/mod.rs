//! Test helpers: a small CBOR writer written from RFC 8949 (independent of minicbor, so the
//! tests cross-check the crate's decoder), a partition-image builder, and a recording outbox.
#![allow(dead_code)]

pub mod pair;

use manyfold_core::exec::{Outbox, SendError};
use manyfold_core::framing::crc32c;
use manyfold_core::link::{Body, BoardInfo, Counters, Message};

/// A CBOR value of the subset links and images use.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    U(u64),
    I(i64),
    F(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    Text(String),
    A(Vec<V>),
    Null,
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

pub fn enc_into(out: &mut Vec<u8>, v: &V) {
    match v {
        V::U(n) => head(out, 0, *n),
        V::I(n) if *n >= 0 => head(out, 0, *n as u64),
        V::I(n) => head(out, 1, (-1 - *n) as u64),
        V::F(x) => {
            out.push(0xfb);
            out.extend(x.to_be_bytes());
        }
        V::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        V::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend(b);
        }
        V::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
        V::A(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                enc_into(out, item);
            }
        }
        V::Null => out.push(0xf6),
    }
}

pub fn enc(v: &V) -> Vec<u8> {
    let mut out = Vec::new();
    enc_into(&mut out, v);
    out
}

pub fn u(n: u64) -> V {
    V::U(n)
}
pub fn f(x: f64) -> V {
    V::F(x)
}
pub fn a(items: Vec<V>) -> V {
    V::A(items)
}

/// Header + body, as docs/wire.md section 3 defines.
pub fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = b"MFPI\x01\x00\x00\x00".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(crc32c(body).to_le_bytes());
    out.extend(body);
    out
}

pub const FLOAT: u64 = 0;
pub const INT: u64 = 1;
pub const BOOL: u64 = 2;

/// Builds partition images one table at a time; every node gets its own mailbox and edge.
#[derive(Default, Clone)]
pub struct Img {
    pub routes: Vec<V>,
    pub sources: Vec<V>,
    pub nodes: Vec<V>,
    pub mailboxes: Vec<V>,
    pub edges: Vec<V>,
    pub links: Vec<V>,
    pub names: Option<Vec<V>>,
    pub manifest: Vec<u8>,
    pub name: String,
}

impl Img {
    pub fn new() -> Self {
        Img { manifest: (0..32).collect(), name: "test".into(), ..Default::default() }
    }

    pub fn route(&mut self, kind: u64) -> u64 {
        let i = self.routes.len() as u64;
        self.routes.push(a(vec![u(0x1000 + i), V::Bytes(vec![i as u8; 8]), u(kind)]));
        i
    }

    /// A route from the host.
    pub fn inbound(&mut self, kind: u64) -> u64 {
        let r = self.route(kind);
        self.links.push(a(vec![u(r), u(2)]));
        r
    }

    /// A route to the host.
    pub fn outbound(&mut self, kind: u64) -> u64 {
        let r = self.route(kind);
        self.links.push(a(vec![u(r), u(1)]));
        r
    }

    /// A node `[op, out, params...]` fed by `input` through a mailbox.
    pub fn node(&mut self, op: u64, input: u64, out: u64, params: Vec<V>, capacity: u64, overflow: u64) -> u64 {
        let i = self.nodes.len() as u64;
        let mut fields = vec![u(op), u(out)];
        fields.extend(params);
        self.nodes.push(a(fields));
        let m = self.mailboxes.len() as u64;
        self.mailboxes.push(a(vec![u(capacity), u(overflow)]));
        self.edges.push(a(vec![u(input), u(i), u(m)]));
        i
    }

    /// A node with a 2-slot drop-oldest mailbox.
    pub fn op(&mut self, op: u64, input: u64, out: u64, params: Vec<V>) -> u64 {
        self.node(op, input, out, params, 2, 1)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn source(&mut self, route: u64, waveform: u64, period_us: u64, phase_us: u64, seed: u64, center: f64, amplitude: f64, cycle: u64, noise: f64) {
        self.sources.push(a(vec![u(route), u(waveform), u(period_us), u(phase_us), u(seed), f(center), f(amplitude), u(cycle), f(noise)]));
    }

    pub fn body(&self) -> V {
        a(vec![
            u(1),
            V::Bytes(self.manifest.clone()),
            V::Text(self.name.clone()),
            a(self.routes.clone()),
            a(self.sources.clone()),
            a(self.nodes.clone()),
            a(self.mailboxes.clone()),
            a(self.edges.clone()),
            a(self.links.clone()),
            self.names.clone().map_or(V::Null, a),
        ])
    }

    pub fn build(&self) -> Vec<u8> {
        with_header(&enc(&self.body()))
    }
}

/// An outbox that encodes every message (ids from 0) and keeps the bytes.
#[derive(Default)]
pub struct Recorder {
    pub sent: Vec<Vec<u8>>,
    pub max_message: usize,
    pub down: bool,
    pub counters: Counters,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder { max_message: 256, ..Default::default() }
    }

    /// Every message sent so far, decoded.
    pub fn messages(&self) -> Vec<Message<'_>> {
        self.sent.iter().map(|b| Message::decode(b).expect("the executor sends valid messages")).collect()
    }

    /// The events sent so far.
    pub fn events(&self) -> Vec<manyfold_core::link::Event> {
        self.messages().into_iter().filter_map(|m| if let Body::Event(e) = m.body { Some(e) } else { None }).collect()
    }

    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent)
    }
}

impl Outbox for Recorder {
    fn send(&mut self, body: &Body<'_>) -> Result<(), SendError> {
        let mut buf = vec![0u8; self.max_message];
        let n = Message { id: self.sent.len() as u32, body: *body }.encode(&mut buf).map_err(|_| SendError::TooLong)?;
        self.sent.push(buf[..n].to_vec());
        Ok(())
    }
    fn link_up(&self) -> bool {
        !self.down
    }
    fn counters(&self) -> Counters {
        self.counters
    }
    fn board(&self) -> BoardInfo {
        BoardInfo::default()
    }
}
