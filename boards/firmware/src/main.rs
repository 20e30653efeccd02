//! Manyfold board firmware.
//!
//! One generic program for every board; the board is chosen at build time by exactly one Cargo
//! feature (`board-lm3s6965evb`, `board-mps2-an386`), which selects the board layer
//! ([`board`]), the descriptor `boards/<board>/board.toml` and the linker script
//! `boards/<board>/link.x`. Build with `boards/build.sh BOARD`.
//!
//! For now it runs the echo/describe service ([`service`]) over UART0 with the v1 frame layer
//! (COBS + CRC-32C, docs/wire.md): poll the UART, feed the frame decoder, answer each message.
//! No heap; all buffers are fixed arrays sized from the board's `max_message`.
//!
//! `unsafe` is confined to [`board`]; the rest of the crate is checked safe code.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod board;
mod link;
mod service;
mod text;

use manyfold_framing::{decoder_buffer_len, FrameDecoder};

use board::config::{CLOCK_HZ, MAX_MESSAGE};
use link::Link;
use service::Service;

/// Received bytes handled per pass of the main loop.
const CHUNK_LEN: usize = 32;

/// The firmware after reset (called by the board layer once memory is initialized).
pub(crate) fn run() -> ! {
    let mut link = Link::new(board::Uart::init());
    board::start_millis(CLOCK_HZ);
    // docs/wire.md 1.3: a 0x00 before the first frame makes the peer drop any half-received
    // frame, for example noise from the reset.
    link.send(&[0x00]);

    let Ok(mut decoder) = FrameDecoder::new([0u8; decoder_buffer_len(MAX_MESSAGE)], MAX_MESSAGE)
    else {
        board::halt(); // unreachable: the buffer is sized for MAX_MESSAGE
    };
    let mut service = Service::new();
    let mut request = [0u8; MAX_MESSAGE];
    let mut chunk = [0u8; CHUNK_LEN];

    loop {
        let n = link.receive(&mut chunk);
        // Each piece ends at the first 0x00, so feeding it completes at most one frame: the
        // request is copied out of the decoder, which then is free for `stats()` in the reply.
        for piece in chunk[..n].split_inclusive(|b| *b == 0) {
            let mut accepted = None;
            decoder.feed(piece, |outcome| {
                if let Ok(message) = outcome {
                    let len = message.len().min(MAX_MESSAGE);
                    request[..len].copy_from_slice(&message[..len]);
                    accepted = Some(len);
                }
            });
            if let Some(len) = accepted {
                service.respond(&request[..len], &decoder.stats(), &mut link);
            }
        }
    }
}
