//! Manyfold's wire frame layer, v1.
//!
//! Every Manyfold link carries *messages* (opaque byte strings, 1..=`max_message` bytes). This
//! crate turns a message into bytes on the wire and back, and knows nothing about what the
//! message means:
//!
//! ```text
//! body     = message || crc32c(message) as 4 bytes little-endian
//! frame    = COBS(body) || 0x00          (stream links: serial, TCP)
//! datagram = body                        (datagram links: UDP)
//! ```
//!
//! CRC-32C is CRC-32/ISCSI (Castagnoli): reflected polynomial 0x82F63B78, init 0xFFFFFFFF,
//! final xor 0xFFFFFFFF, check value 0xE3069283 for `b"123456789"`. The normative description
//! with a worked example is `docs/wire.md`; the shared test vectors are in `framing/vectors/`.
//!
//! # Layout
//! - [`crc`]: the CRC-32C function (a 16 KiB table with the `fast-crc` feature, 1 KiB without).
//! - [`codec`]: one-shot encoding of frames and datagrams, and datagram decoding.
//! - [`decoder`]: [`FrameDecoder`], the streaming decoder for byte-stream links. It owns a
//!   fixed buffer (an array on a board, a boxed slice on a host), resynchronizes at every
//!   0x00, counts each rejected frame by cause in [`DecoderStats`], and never allocates.
//! - [`error`]: [`FrameError`], the one flat error enum of this layer.
//!
//! # Guarantees
//! Nothing in this crate panics on any input bytes, and no function allocates (the `alloc`
//! feature only adds constructors that allocate once). Every loop is bounded by the length of
//! its input.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod codec;
mod cobs_block;
pub mod crc;
pub mod decoder;
pub mod error;

pub use codec::{decode_datagram, encode_datagram, encode_frame};
pub use crc::crc32c;
pub use decoder::{DecoderStats, FrameDecoder};
pub use error::FrameError;

/// Bytes the CRC adds after the message.
pub const CRC_LEN: usize = 4;

/// The smallest valid body: a 1-byte message and its CRC. Shorter bodies are `DecodeShortBody`.
pub const BODY_LEN_MIN: usize = 1 + CRC_LEN;

/// The default largest message, in bytes. Boards declare smaller ones in their descriptor.
pub const MESSAGE_LEN_MAX_DEFAULT: usize = 4096;

/// Length of the body that carries a message of `message_len` bytes.
pub const fn body_len(message_len: usize) -> usize {
    message_len + CRC_LEN
}

/// The most bytes COBS can turn `len` input bytes into: one code byte per started block of 254
/// bytes, and one for an empty input.
pub const fn cobs_len_max(len: usize) -> usize {
    len + len / 254 + 1
}

/// The longest stream frame (COBS bytes plus the 0x00 delimiter) for messages of at most
/// `message_len_max` bytes. Size encode buffers with it.
pub const fn frame_len_max(message_len_max: usize) -> usize {
    cobs_len_max(body_len(message_len_max)) + 1
}

/// The buffer a [`FrameDecoder`] needs for messages of at most `message_len_max` bytes: the
/// longest COBS text of a valid body (the delimiter is not stored).
pub const fn decoder_buffer_len(message_len_max: usize) -> usize {
    cobs_len_max(body_len(message_len_max))
}
