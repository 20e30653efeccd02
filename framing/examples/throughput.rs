//! Frame layer throughput of the Rust crate alone, without Python.
//!
//! Prints one JSON line per (operation, message size): the median over `ROUNDS` rounds of
//! message bytes per second, in MB/s (10^6 bytes). Decoding feeds the stream in 4 KiB reads, as
//! a serial or TCP reader would. Run with `cargo run --release -p manyfold-framing --features
//! alloc --example throughput`; `benchmarks/framing.py` runs it beside the Python API.

use manyfold_framing::{encode_frame, frame_len_max, FrameDecoder};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 9;
const STREAM_BYTES: usize = 16 * 1024 * 1024;
const READ_LEN: usize = 4096;

fn message(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64: sensor-like bytes, zeros included, so COBS does real work.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    for size in [32usize, 1024] {
        let count = STREAM_BYTES / size;
        let messages: Vec<Vec<u8>> = (0..64).map(|i| message(size, i as u64 + 1)).collect();
        let payload_bytes = (count * size) as f64;

        let mut stream = Vec::with_capacity(count * frame_len_max(size));
        let mut out = vec![0u8; frame_len_max(size)];
        let mut encode_rates = Vec::new();
        for _ in 0..ROUNDS {
            stream.clear();
            let start = Instant::now();
            for i in 0..count {
                let n = encode_frame(&messages[i % messages.len()], &mut out, 4096).unwrap();
                stream.extend_from_slice(&out[..n]);
            }
            encode_rates.push(payload_bytes / start.elapsed().as_secs_f64() / 1e6);
        }

        let mut decode_rates = Vec::new();
        for _ in 0..ROUNDS {
            let mut decoder = FrameDecoder::with_max_message(4096).unwrap();
            let mut decoded = 0usize;
            let start = Instant::now();
            for chunk in stream.chunks(READ_LEN) {
                decoder.feed(black_box(chunk), |frame| {
                    if let Ok(m) = frame {
                        decoded += black_box(m).len();
                    }
                });
            }
            decode_rates.push(payload_bytes / start.elapsed().as_secs_f64() / 1e6);
            assert_eq!(decoded, count * size, "every frame must decode");
            assert_eq!(decoder.stats().rejected(), 0);
        }

        for (operation, rates) in [("encode", encode_rates), ("decode", decode_rates)] {
            println!(
                "{{\"layer\": \"rust\", \"operation\": \"{operation}\", \"message_bytes\": {size}, \"mb_per_s\": {:.1}, \"rounds\": {ROUNDS}}}",
                median(rates)
            );
        }
    }
}
