//! The shared vectors in `framing/vectors/vectors.json` (made from third-party codecs by
//! `generate.py`) against this crate: encodings are byte-exact, and every corrupt stream gives
//! exactly the expected messages and counts, whatever the read sizes.

use manyfold_framing::{
    decode_datagram, encode_datagram, encode_frame, frame_len_max, DecoderStats, FrameDecoder,
    FrameError,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    crc32c_check: CrcCheck,
    frames: Vec<FrameCase>,
    streams: Vec<StreamCase>,
    datagrams: Vec<DatagramCase>,
}

#[derive(Deserialize)]
struct CrcCheck {
    input: String,
    crc: String,
}

#[derive(Deserialize)]
struct FrameCase {
    name: String,
    message: String,
    frame: String,
    datagram: String,
}

#[derive(Deserialize)]
struct StreamCase {
    name: String,
    max_message: usize,
    stream: String,
    messages: Vec<String>,
    stats: Stats,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Stats {
    frames: u64,
    cobs_errors: u64,
    crc_errors: u64,
    short_frames: u64,
    oversize_frames: u64,
}

#[derive(Deserialize)]
struct DatagramCase {
    name: String,
    datagram: String,
    max_message: usize,
    error: Option<String>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stats_of(s: DecoderStats) -> Stats {
    Stats {
        frames: s.frames,
        cobs_errors: s.cobs_errors,
        crc_errors: s.crc_errors,
        short_frames: s.short_frames,
        oversize_frames: s.oversize_frames,
    }
}

/// The CRC parameters agree with the catalogue check value recorded in the vectors.
#[test]
fn crc_check_value() {
    let v = vectors();
    let crc = manyfold_framing::crc32c(&hex(&v.crc32c_check.input));
    assert_eq!(format!("{crc:08x}"), v.crc32c_check.crc);
}

/// Every valid message encodes to exactly the reference frame and datagram, and decodes back.
#[test]
fn frames_and_datagrams_are_byte_exact() {
    for case in vectors().frames {
        let message = hex(&case.message);
        let mut out = vec![0u8; frame_len_max(message.len())];
        let n = encode_frame(&message, &mut out, 4096).unwrap();
        assert_eq!(out[..n], hex(&case.frame)[..], "frame {}", case.name);

        let m = encode_datagram(&message, &mut out, 4096).unwrap();
        assert_eq!(out[..m], hex(&case.datagram)[..], "datagram {}", case.name);
        assert_eq!(decode_datagram(&hex(&case.datagram), 4096).unwrap(), &message[..]);

        let mut decoder = FrameDecoder::with_max_message(4096).unwrap();
        let mut got = Vec::new();
        decoder.feed(&hex(&case.frame), |r| got.push(r.unwrap().to_vec()));
        assert_eq!(got, vec![message], "decode {}", case.name);
    }
}

/// Each corrupt stream yields the reference messages and counts, fed whole or in small reads.
#[test]
fn corrupt_streams_match_reference() {
    for case in vectors().streams {
        let stream = hex(&case.stream);
        let want: Vec<Vec<u8>> = case.messages.iter().map(|m| hex(m)).collect();
        for read_len in [1usize, 2, 3, 7, 64, 4096, stream.len().max(1)] {
            let mut decoder = FrameDecoder::with_max_message(case.max_message).unwrap();
            let mut got = Vec::new();
            for chunk in stream.chunks(read_len) {
                decoder.feed(chunk, |r| {
                    if let Ok(m) = r {
                        got.push(m.to_vec())
                    }
                });
            }
            assert_eq!(got, want, "{} read_len={read_len}", case.name);
            assert_eq!(stats_of(decoder.stats()), case.stats, "{} read_len={read_len}", case.name);
        }
    }
}

/// Each corrupt datagram is refused with the expected kind of error.
#[test]
fn corrupt_datagrams_are_refused() {
    for case in vectors().datagrams {
        let datagram = hex(&case.datagram);
        let result = decode_datagram(&datagram, case.max_message);
        let kind = match result {
            Ok(_) => None,
            Err(FrameError::DecodeShortBody { .. }) => Some("short_body"),
            Err(FrameError::DecodeBadCrc { .. }) => Some("bad_crc"),
            Err(FrameError::DecodeOversize { .. }) => Some("oversize"),
            Err(other) => panic!("{}: unexpected {other:?}", case.name),
        };
        assert_eq!(kind, case.error.as_deref(), "{}", case.name);
    }
}
