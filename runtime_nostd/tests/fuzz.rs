//! Property tests of the decoders and the device on arbitrary input (proptest; raise the case
//! count with PROPTEST_CASES).
//!
//! What they prove: no bytes make the message decoders (v1, and v1.1 both ways), the image
//! decoder, the device or the host role panic; every v1 message that decodes re-encodes to bytes
//! that decode to the same message; a device fed garbage only ever sends valid frames of valid
//! v1.1 messages.

mod common;

use common::*;
use manyfold_core::device::board::{BoardDevice, BoardExec};
use manyfold_core::device::Tx;
use manyfold_core::framing::{decoder_buffer_len, frame_len_max, FrameDecoder};
use manyfold_core::link::host::{Answer, HostConfig, HostLink, HostSink};
use manyfold_core::link::refs::RxTime;
use manyfold_core::link::v11::{self, EventSink, Expanded, RouteRefs};
use manyfold_core::link::{Describe, Event, LinkTimers, Message};
use manyfold_core::taint::TaintSet;
use proptest::prelude::*;

/// A host that holds references for every route (seq 100, no declared taints) and counts events.
struct Refs(usize);

impl RouteRefs for Refs {
    fn seq_ref(&self, _route: u16) -> Option<u32> {
        Some(100)
    }
    fn declared(&self, route: u16) -> Option<TaintSet> {
        (route % 2 == 0).then_some(TaintSet::EMPTY)
    }
}

impl EventSink for Refs {
    fn event(&mut self, _e: Expanded) {
        self.0 += 1;
    }
}

/// A sink that keeps nothing.
struct Nothing;

impl HostSink for Nothing {
    fn write(&mut self, _bytes: &[u8]) {}
    fn event(&mut self, _event: &Event) {}
    fn described(&mut self, _describe: &Describe<'_>, _resumed: bool) {}
    fn connect_failed(&mut self, _answer: Answer<'_>) {}
    fn answer(&mut self, _id: u32, _answer: Answer<'_>) {}
}

struct Out(Vec<u8>);

impl Tx for Out {
    fn write(&mut self, bytes: &[u8]) -> bool {
        self.0.extend_from_slice(bytes);
        true
    }
}

fn image() -> Vec<u8> {
    let mut img = Img::new();
    let input = img.inbound(FLOAT);
    let avg = img.outbound(FLOAT);
    let hot = img.outbound(FLOAT);
    img.op(3, input, avg, vec![u(3), u(1), u(2)]);
    img.op(0, avg, hot, vec![u(0), f(1.0), f(0.0)]);
    let raw = img.outbound(FLOAT);
    img.source(raw, 1, 1_000, 0, 3, 0.0, 2.0, 6, 0.5);
    img.build()
}

/// CBOR-ish bytes: random, but biased towards array heads and small integers so that the
/// decoders get past the first byte often.
fn cborish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            2 => 0x80u8..0x8c,
            2 => 0u8..0x18,
            1 => Just(0xfb),
            1 => Just(0xf6),
            1 => 0x40u8..0x48,
        ],
        0..96,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The message decoders never panic; what decodes re-encodes and decodes to the same.
    #[test]
    fn message_decoder_never_panics(bytes in cborish()) {
        let _ = v11::decode_for_device(&bytes);
        let _ = v11::peek_id(&bytes);
        let mut time = RxTime::default();
        time.reset(1_000_000);
        let _ = v11::decode_from_device(&bytes, &mut Refs(0), &mut time, 0);
        if let Ok(m) = Message::decode(&bytes) {
            let mut out = [0u8; 512];
            let n = m.encode(&mut out).expect("a decoded message fits twice its size");
            let again = Message::decode(&out[..n]).expect("re-encoded messages decode");
            let mut out2 = [0u8; 512];
            let n2 = again.encode(&mut out2).unwrap();
            prop_assert_eq!(&out[..n], &out2[..n2]);
        }
    }

    /// The image decoder never panics on a valid header around any body, nor on a damaged
    /// copy of a real image.
    #[test]
    fn image_decoder_never_panics(body in cborish(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in any::<usize>()) {
        let mut exec = BoardExec::new();
        let _ = exec.load(&with_header(&body), 0);
        let mut damaged = image();
        for (at, bits) in flips {
            let i = 16 + at % (damaged.len() - 16);
            damaged[i] ^= bits;
        }
        // Damage with a valid CRC, so that the body decoder sees it.
        let body = damaged[16..damaged.len() - cut % 8].to_vec();
        let _ = exec.load(&with_header(&body), 0);
        if exec.status().is_err() {
            prop_assert!(exec.partition().routes.is_empty());
        }
    }

    /// A device fed arbitrary bytes (and valid frames of arbitrary messages) never panics and
    /// only sends valid frames of valid messages.
    #[test]
    fn device_never_panics(chunks in prop::collection::vec(prop_oneof![
        cborish(),
        cborish().prop_map(|m| {
            let mut f = vec![0u8; frame_len_max(m.len())];
            match manyfold_core::framing::encode_frame(&m, &mut f, 4096) { Ok(n) => f[..n].to_vec(), Err(_) => vec![0] }
        }),
    ], 0..12), steps in prop::collection::vec(0i64..50_000, 0..8)) {
        let region = image();
        let mut store: &[u8] = &region;
        let decoder = FrameDecoder::new([0; decoder_buffer_len(256)], 256).unwrap();
        let mut dev: Box<BoardDevice<_, _, _>> = Box::new(BoardDevice::new("fuzz", decoder, [0u8; 256], [0u8; frame_len_max(256)], LinkTimers::DEFAULT));
        dev.boot(&store, 0);
        let mut out = Out(Vec::new());
        let mut now = 0i64;
        // A session first, so that most messages get past "no session".
        let hello = [0x87, 0x01, 0x00, 0x01, 0x19, 0x01, 0x00, 0x01, 0x03, 0x00];
        let mut f = vec![0u8; 32];
        let n = manyfold_core::framing::encode_frame(&hello, &mut f, 256).unwrap();
        let mut inputs = vec![f[..n].to_vec()];
        inputs.extend(chunks);
        for (i, chunk) in inputs.iter().enumerate() {
            let mut rest: &[u8] = chunk;
            for _ in 0..100_000 {
                if dev.busy() {
                    dev.poll(now, &mut store, &mut out);
                    continue;
                }
                if rest.is_empty() {
                    break;
                }
                let used = dev.receive(now, rest, &mut store, &mut out);
                rest = &rest[used..];
            }
            now += steps.get(i).copied().unwrap_or(1_000);
            dev.poll(now, &mut store, &mut out);
        }
        let mut host = FrameDecoder::with_max_message(256).unwrap();
        let mut bad = 0;
        host.feed(&out.0, |m| match m {
            // Without references (no routes were asked for): every event is full form.
            Ok(msg) => { if v11::decode_from_device(msg, &mut Refs(0), &mut RxTime::default(), 0).is_err() { bad += 1 } }
            Err(_) => bad += 1,
        });
        prop_assert_eq!(bad, 0);
    }

    /// The host role fed arbitrary bytes (and frames of arbitrary messages) at any time never
    /// panics, whatever phase it is in.
    #[test]
    fn host_never_panics(chunks in prop::collection::vec(prop_oneof![
        cborish(),
        cborish().prop_map(|m| {
            let mut f = vec![0u8; frame_len_max(m.len())];
            match manyfold_core::framing::encode_frame(&m, &mut f, 4096) { Ok(n) => f[..n].to_vec(), Err(_) => vec![0] }
        }),
    ], 0..12), times in prop::collection::vec(0u64..20_000, 0..12), version in 1u32..=2) {
        let decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(256)], 256).unwrap();
        let config = HostConfig { version_max: version, ..HostConfig::DEFAULT };
        let mut host: HostLink<_, _, _, 16> = HostLink::new(config, decoder, vec![0u8; 256], vec![0u8; frame_len_max(256)]);
        let mut now = 0u64;
        host.connect(now, 7, true, true, 0, true, &mut Nothing);
        for (i, chunk) in chunks.iter().enumerate() {
            host.receive(now, chunk, &mut Nothing);
            now += times.get(i).copied().unwrap_or(100);
            host.poll(now, &mut Nothing);
            let _ = host.request(now, &manyfold_core::link::Body::Resume, &mut Nothing);
        }
    }
}
