//! A host role and a device role, both `manyfold-core`'s, joined by an in-memory cable the test
//! controls: it can lose or damage frames in either direction. Time is a virtual clock.

use std::collections::VecDeque;

use manyfold_core::device::board::BoardDevice;
use manyfold_core::device::{ImageStore, Tx};
use manyfold_core::framing::{decoder_buffer_len, frame_len_max, FrameDecoder};
use manyfold_core::link::host::{Answer, HostConfig, HostLink, HostSink};
use manyfold_core::link::{Ack, Body, Counters, Describe, Event, LinkTimers, Nack, ReplyBody, RouteInfo};

pub type Dev = BoardDevice<[u8; decoder_buffer_len(256)], [u8; 256], [u8; frame_len_max(256)]>;
pub type Host = HostLink<Vec<u8>, Vec<u8>, Vec<u8>, 64>;

/// A region that accepts uploads, like the simulation's.
pub struct Store {
    pub image: Vec<u8>,
    pub staged: Vec<u8>,
}

impl ImageStore for Store {
    fn image(&self) -> &[u8] {
        &self.image
    }
    fn can_upload(&self) -> bool {
        true
    }
    fn begin(&mut self, len: usize) -> Result<(), usize> {
        if len > 8192 {
            return Err(8192);
        }
        self.staged.clear();
        Ok(())
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        offset == self.staged.len() && {
            self.staged.extend_from_slice(data);
            true
        }
    }
    fn staged(&self) -> &[u8] {
        &self.staged
    }
    fn commit(&mut self) {
        self.image = std::mem::take(&mut self.staged);
    }
    fn abort(&mut self) {
        self.staged.clear();
    }
}

pub struct Out(pub Vec<u8>);

impl Tx for Out {
    fn write(&mut self, bytes: &[u8]) -> bool {
        self.0.extend_from_slice(bytes);
        true
    }
}

/// An answer, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Ack(Ack),
    Nack(Nack),
    Routes(Vec<RouteInfo>),
    Counters(Counters),
    Latest(Option<Event>),
    Other,
    Failed,
}

/// What the host learned.
#[derive(Default)]
pub struct Sink {
    pub wire: Vec<u8>,
    pub events: Vec<Event>,
    pub describes: Vec<(u32, bool, u8, i64)>,
    pub failed_connects: Vec<Option<Nack>>,
    pub answers: VecDeque<(u32, Got)>,
    pub routes: Vec<RouteInfo>,
    pub reopens: u32,
    pub messages: Vec<Vec<u8>>,
}

impl HostSink for Sink {
    fn write(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }
    fn event(&mut self, event: &Event) {
        self.events.push(*event);
    }
    fn described(&mut self, d: &Describe<'_>, resumed: bool) {
        self.describes.push((d.version, resumed, d.flags, d.time_us));
    }
    fn connect_failed(&mut self, answer: Answer<'_>) {
        self.failed_connects.push(match answer {
            Answer::Nack(n) => Some(n),
            _ => None,
        });
    }
    fn answer(&mut self, id: u32, answer: Answer<'_>) {
        let got = match answer {
            Answer::Ack(a) => Got::Ack(a),
            Answer::Nack(n) => Got::Nack(n),
            Answer::Failed(_) => Got::Failed,
            Answer::Reply(r) => match r.body {
                ReplyBody::Routes(p) => Got::Routes(p.items.iter().collect()),
                ReplyBody::Counters(c) => Got::Counters(c),
                ReplyBody::Latest(e) => Got::Latest(e),
                _ => Got::Other,
            },
        };
        self.answers.push_back((id, got));
    }
    fn route(&mut self, _index: u16, route: &RouteInfo) {
        self.routes.push(*route);
    }
    fn reopen(&mut self) {
        self.reopens += 1;
    }
    fn message(&mut self, bytes: &[u8]) {
        self.messages.push(bytes.to_vec());
    }
}

/// The host and the device, and the cable between them.
pub struct Pair {
    pub host: Host,
    pub sink: Sink,
    pub dev: Box<Dev>,
    pub store: Store,
    pub now_us: i64,
    /// Frames from the device, in order, for the test to inspect (what went on the wire).
    pub device_frames: Vec<Vec<u8>>,
    /// Frames from the host, in order (lost or damaged on the way or not).
    pub host_frames: Vec<Vec<u8>>,
    /// Indexes (counting every frame the device sends) of frames the cable loses.
    pub lose_to_host: Vec<usize>,
    /// Indexes (counting every frame the host sends) of frames the cable damages.
    pub damage_to_device: Vec<usize>,
    to_host: VecDeque<Vec<u8>>,
    to_host_count: usize,
    to_device_count: usize,
    pub cut: bool,
}

impl Pair {
    pub fn new(image: Vec<u8>, config: HostConfig) -> Self {
        let decoder = FrameDecoder::new([0; decoder_buffer_len(256)], 256).unwrap();
        let mut dev = Box::new(Dev::new("bench", decoder, [0; 256], [0; frame_len_max(256)], LinkTimers::DEFAULT));
        let store = Store { image, staged: Vec::new() };
        dev.boot(&store, 0);
        let max = config.max_message as usize;
        let host_decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(max)], max).unwrap();
        let host = HostLink::new(config, host_decoder, vec![0u8; max], vec![0u8; frame_len_max(max)]);
        let mut pair = Pair {
            host,
            sink: Sink::default(),
            dev,
            store,
            now_us: 0,
            device_frames: Vec::new(),
            host_frames: Vec::new(),
            lose_to_host: Vec::new(),
            damage_to_device: Vec::new(),
            to_host: VecDeque::new(),
            to_host_count: 0,
            to_device_count: 0,
            cut: false,
        };
        // The boot 0x00 and anything else the device says before the host speaks.
        pair.pump();
        pair
    }

    pub fn now_ms(&self) -> u64 {
        (self.now_us / 1000) as u64
    }

    /// Moves bytes both ways until neither end has anything to say (bounded).
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let to_device = std::mem::take(&mut self.sink.wire);
            let mut moved = !to_device.is_empty();
            for frame in split_frames(&to_device) {
                self.host_frames.push(frame.clone());
                let n = self.to_device_count;
                self.to_device_count += 1;
                if self.cut {
                    continue;
                }
                let mut frame = frame;
                if self.damage_to_device.contains(&n) && frame.len() > 3 {
                    frame[2] ^= 0x10;
                }
                self.feed_device(&frame);
            }
            let mut out = Out(Vec::new());
            self.dev.poll(self.now_us, &mut self.store, &mut out);
            self.take_device_output(&mut out);
            let from_device = self.pending_to_host();
            moved |= !from_device.is_empty();
            for frame in from_device {
                let now = self.now_ms();
                self.host.receive(now, &frame, &mut self.sink);
            }
            let now = self.now_ms();
            self.host.poll(now, &mut self.sink);
            if !moved && self.sink.wire.is_empty() {
                return;
            }
        }
        panic!("the link never went quiet");
    }

    fn feed_device(&mut self, bytes: &[u8]) {
        let mut out = Out(Vec::new());
        let mut rest = bytes;
        for _ in 0..1_000_000 {
            if self.dev.busy() {
                self.dev.poll(self.now_us, &mut self.store, &mut out);
                continue;
            }
            if rest.is_empty() {
                break;
            }
            let used = self.dev.receive(self.now_us, rest, &mut self.store, &mut out);
            rest = &rest[used..];
        }
        self.take_device_output(&mut out);
    }

    fn take_device_output(&mut self, out: &mut Out) {
        for frame in split_frames(&out.0) {
            self.device_frames.push(frame.clone());
            self.to_host.push_back(frame);
        }
        out.0.clear();
    }

    fn pending_to_host(&mut self) -> Vec<Vec<u8>> {
        let mut delivered = Vec::new();
        while let Some(frame) = self.to_host.pop_front() {
            let n = self.to_host_count;
            self.to_host_count += 1;
            if self.cut || self.lose_to_host.contains(&n) {
                continue;
            }
            delivered.push(frame);
        }
        delivered
    }

    /// Lets time pass (free-running), polling both ends every `tick_us`.
    pub fn advance(&mut self, us: i64, tick_us: i64) {
        let end = self.now_us + us;
        while self.now_us < end {
            self.now_us = (self.now_us + tick_us).min(end);
            self.pump();
        }
    }

    pub fn connect(&mut self, session: u32, lockstep: bool, reset: bool) {
        let now = self.now_ms();
        self.host.connect(now, session, lockstep, reset, 0, true, &mut self.sink);
        self.pump();
    }

    /// Sends a request and returns its answer (the pump runs until the host has one).
    pub fn request(&mut self, body: Body<'_>) -> Got {
        let now = self.now_ms();
        let id = self.host.request(now, &body, &mut self.sink).expect("the host is ready");
        for _ in 0..1000 {
            self.pump();
            if let Some(at) = self.sink.answers.iter().position(|(i, _)| *i == id) {
                return self.sink.answers.remove(at).unwrap().1;
            }
            // Nothing came back: let the reply timeout pass.
            self.now_us += 100_000;
        }
        panic!("no answer to request {id}");
    }

    /// The events the host received since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.sink.events)
    }
}

/// Frames of a byte stream (each ending with its 0x00; lone 0x00s dropped).
pub fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut current = Vec::new();
    for &b in bytes {
        current.push(b);
        if b == 0 {
            if current.len() > 1 {
                frames.push(std::mem::take(&mut current));
            } else {
                current.clear();
            }
        }
    }
    frames
}
