//! Property tests of the stream decoder on arbitrary input (proptest; the case count is sized
//! for CI's time budget and can be raised with PROPTEST_CASES).
//!
//! What they prove: no input or chunking makes the decoder panic or grow; every delimited frame
//! is counted exactly once; every decoded message was really sent, in order; and a clean stream
//! loses nothing whatever the read sizes.

use manyfold_framing::{decoder_buffer_len, encode_frame, frame_len_max, FrameDecoder};
use proptest::prelude::*;

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; frame_len_max(message.len())];
    let n = encode_frame(message, &mut out, usize::MAX).unwrap();
    out.truncate(n);
    out
}

/// Splits `data` at the given cut points (taken modulo the length).
fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Messages as protocols on the frame layer send them: never starting with 0xff (docs/wire.md
/// 1.5: a message that starts `ff ff ff ff` and goes on with zeros keeps its CRC when a zero is
/// dropped or added, so no protocol begins a message with 0xff).
fn messages_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let message = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..40),
        prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xffu8)], 1..600),
    ];
    prop::collection::vec(message.prop_filter("no protocol starts a message with 0xff", |m| m[0] != 0xff), 0..12)
}

/// The number of frame outcomes a stream must produce: its non-empty 0x00-delimited segments.
fn delimited_segments(stream: &[u8]) -> u64 {
    let mut parts: Vec<&[u8]> = stream.split(|b| *b == 0).collect();
    parts.pop(); // bytes after the last delimiter are an unfinished frame
    parts.iter().filter(|p| !p.is_empty()).count() as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, .. ProptestConfig::default() })]

    /// Arbitrary bytes in arbitrary reads: no panic, bounded memory, one outcome per frame.
    #[test]
    fn arbitrary_bytes_never_break_the_decoder(
        stream in prop::collection::vec(prop_oneof![3 => any::<u8>(), 1 => Just(0u8)], 0..3000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        max_message in 1usize..300,
    ) {
        let mut decoder = FrameDecoder::new(vec![0u8; decoder_buffer_len(max_message)], max_message).unwrap();
        let mut outcomes = 0u64;
        for chunk in chunks(&stream, &cuts) {
            decoder.feed(chunk, |r| {
                outcomes += 1;
                if let Ok(m) = r { assert!(!m.is_empty() && m.len() <= max_message) }
            });
            prop_assert!(decoder.pending_len() <= stream.len());
        }
        let s = decoder.stats();
        prop_assert_eq!(outcomes, s.frames + s.rejected());
        prop_assert_eq!(outcomes, delimited_segments(&stream));
    }

    /// A clean stream decodes to exactly the messages sent, however it is cut into reads.
    #[test]
    fn clean_streams_lose_nothing(messages in messages_strategy(), cuts in prop::collection::vec(any::<usize>(), 0..30)) {
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut decoder = FrameDecoder::with_max_message(600).unwrap();
        let mut got = Vec::new();
        for chunk in chunks(&stream, &cuts) {
            decoder.feed(chunk, |r| got.push(r.expect("clean frame").to_vec()));
        }
        prop_assert_eq!(got, messages);
        prop_assert_eq!(decoder.stats().rejected(), 0);
    }

    /// Corrupted streams (flipped bits, dropped and inserted bytes) only ever yield messages
    /// that were sent, in the order they were sent, and every frame is accounted for.
    #[test]
    fn corruption_never_invents_messages(
        messages in messages_strategy(),
        faults in prop::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        for (at, kind, value) in faults {
            if stream.is_empty() { break; }
            let at = at % stream.len();
            match kind {
                0 => stream[at] ^= 1 << (value % 8),
                1 => { stream.remove(at); }
                _ => stream.insert(at, value),
            }
        }
        let mut decoder = FrameDecoder::with_max_message(600).unwrap();
        let mut got = Vec::new();
        for chunk in chunks(&stream, &cuts) {
            decoder.feed(chunk, |r| if let Ok(m) = r { got.push(m.to_vec()) });
        }
        // got must be a subsequence of messages
        let mut sent = messages.iter();
        for m in &got {
            prop_assert!(sent.any(|s| s == m), "decoded a message that was not sent: {:?}", m);
        }
        let s = decoder.stats();
        prop_assert_eq!(s.frames + s.rejected(), delimited_segments(&stream));
    }
}

/// Why no protocol starts a message with 0xff: `ff ff ff ff` clears CRC-32C's register (its init is
/// all ones), and zeros keep it clear, so such a message with one zero dropped has the same CRC
/// and its damaged frame is accepted. This pins the exception docs/wire.md 1.5 states.
#[test]
fn a_dropped_zero_after_four_ff_bytes_keeps_the_crc() {
    let sent = [0xff, 0xff, 0xff, 0xff, 0, 0, 0];
    let mut stream = frame(&sent);
    let zero_code = stream.iter().rposition(|b| *b == 1).expect("a zero in the body is a 01 code byte");
    stream.remove(zero_code);
    let mut decoder = FrameDecoder::with_max_message(600).unwrap();
    let mut got = Vec::new();
    decoder.feed(&stream, |r| got.push(r.map(|m| m.to_vec())));
    assert_eq!(got, vec![Ok(vec![0xff, 0xff, 0xff, 0xff, 0, 0])], "a different message passed the CRC");
}
