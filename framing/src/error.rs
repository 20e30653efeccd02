//! The frame layer's error enum.
//!
//! One flat enum, each variant named by operation and failure, `Copy` and allocation-free so a
//! board can return it from the hot path. `Display` gives the sentence a person reads.

use core::fmt;

/// Why a frame or datagram could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The message to encode is empty; a message has at least one byte.
    EncodeEmptyMessage,
    /// The message to encode is longer than the link's largest message.
    EncodeMessageTooLong {
        /// Length of the message, in bytes.
        len: usize,
        /// The link's largest message, in bytes.
        max: usize,
    },
    /// The output buffer cannot hold the encoded frame or datagram.
    EncodeBufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The frame's COBS text is malformed (a block length runs past the end of the frame).
    DecodeBadCobs,
    /// The body is shorter than 5 bytes, so it cannot hold a message and its CRC.
    DecodeShortBody {
        /// Length of the body, in bytes.
        len: usize,
    },
    /// The message is longer than the link's largest message. Oversize stream frames are
    /// discarded as their bytes arrive, so `len` is a lower bound for them.
    DecodeOversize {
        /// Length of the message (or, for a discarded stream frame, of its COBS text so far).
        len: usize,
        /// The link's largest message, in bytes.
        max: usize,
    },
    /// The CRC-32C carried by the body does not match the message.
    DecodeBadCrc {
        /// CRC-32C carried in the body's last 4 bytes.
        carried: u32,
        /// CRC-32C computed over the message.
        computed: u32,
    },
    /// A decoder was configured with a largest message of 0 bytes, or a buffer too small for
    /// the largest message it must accept.
    ConfigInvalid {
        /// The requested largest message, in bytes.
        max_message: usize,
        /// The buffer such a decoder needs, in bytes.
        buffer_needed: usize,
        /// The buffer it was given, in bytes.
        buffer_len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::EncodeEmptyMessage => {
                write!(f, "cannot encode an empty message: a message has at least 1 byte")
            }
            FrameError::EncodeMessageTooLong { len, max } => write!(
                f,
                "cannot encode a {len}-byte message: the largest message is {max} bytes"
            ),
            FrameError::EncodeBufferTooSmall { needed, available } => write!(
                f,
                "cannot encode: the output needs {needed} bytes but the buffer has {available}"
            ),
            FrameError::DecodeBadCobs => {
                write!(f, "bad COBS: a block length runs past the end of the frame")
            }
            FrameError::DecodeShortBody { len } => write!(
                f,
                "short body: {len} bytes, but a body needs at least 5 (a 1-byte message and a 4-byte CRC)"
            ),
            FrameError::DecodeOversize { len, max } => write!(
                f,
                "oversize: {len} bytes exceeds the largest message of {max} bytes"
            ),
            FrameError::DecodeBadCrc { carried, computed } => write!(
                f,
                "CRC mismatch: the body carries CRC-32C 0x{carried:08x} but the message hashes to 0x{computed:08x}"
            ),
            FrameError::ConfigInvalid {
                max_message,
                buffer_needed,
                buffer_len,
            } => {
                if max_message == 0 {
                    write!(f, "invalid decoder: the largest message must be at least 1 byte")
                } else {
                    write!(
                        f,
                        "invalid decoder: messages of {max_message} bytes need a {buffer_needed}-byte buffer, got {buffer_len}"
                    )
                }
            }
        }
    }
}
