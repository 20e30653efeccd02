//! One-shot encoding of frames and datagrams, and datagram decoding.
//!
//! Stream decoding, where frames arrive in arbitrary pieces, is [`crate::FrameDecoder`].

use crate::crc::crc32c;
use crate::{body_len, frame_len_max, FrameError, BODY_LEN_MIN, CRC_LEN};

fn check_message(message: &[u8], max_message: usize) -> Result<(), FrameError> {
    if message.is_empty() {
        return Err(FrameError::EncodeEmptyMessage);
    }
    if message.len() > max_message {
        return Err(FrameError::EncodeMessageTooLong {
            len: message.len(),
            max: max_message,
        });
    }
    Ok(())
}

/// Encodes `message` as a stream frame, `COBS(message || crc32c) || 0x00`, into `out`.
///
/// Returns the number of bytes written. `out` must hold at least
/// [`frame_len_max(message.len())`](crate::frame_len_max) bytes (the worst case, so the check
/// does not depend on the message's content).
///
/// ```
/// let mut out = [0u8; 16];
/// let n = manyfold_framing::encode_frame(b"hi", &mut out, 4096).unwrap();
/// assert_eq!(out[n - 1], 0x00);
/// assert!(!out[..n - 1].contains(&0));
/// ```
pub fn encode_frame(message: &[u8], out: &mut [u8], max_message: usize) -> Result<usize, FrameError> {
    check_message(message, max_message)?;
    let needed = frame_len_max(message.len());
    if out.len() < needed {
        return Err(FrameError::EncodeBufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    let crc = crc32c(message).to_le_bytes();
    // The last byte is reserved for the delimiter, so the COBS text can never overwrite it.
    let (text, _) = out.split_at_mut(needed - 1);
    let mut encoder = cobs::CobsEncoder::new(text);
    let too_small = FrameError::EncodeBufferTooSmall {
        needed,
        available: needed - 1,
    };
    encoder.push(message).map_err(|_| too_small)?;
    encoder.push(&crc).map_err(|_| too_small)?;
    let text_len = encoder.finalize();
    // text_len < needed by the size check above; `get_mut` keeps this path panic-free anyway.
    let delimiter = out.get_mut(text_len).ok_or(too_small)?;
    *delimiter = 0x00;
    Ok(text_len + 1)
}

/// Encodes `message` as a datagram, `message || crc32c`, into `out`; returns its length.
pub fn encode_datagram(
    message: &[u8],
    out: &mut [u8],
    max_message: usize,
) -> Result<usize, FrameError> {
    check_message(message, max_message)?;
    let len = body_len(message.len());
    if out.len() < len {
        return Err(FrameError::EncodeBufferTooSmall {
            needed: len,
            available: out.len(),
        });
    }
    out[..message.len()].copy_from_slice(message);
    out[message.len()..len].copy_from_slice(&crc32c(message).to_le_bytes());
    Ok(len)
}

/// Checks a decoded body and returns its message: at least 5 bytes, a message of at most
/// `max_message` bytes, and a matching CRC-32C (checked in that order).
pub fn decode_body(body: &[u8], max_message: usize) -> Result<&[u8], FrameError> {
    if body.len() < BODY_LEN_MIN {
        return Err(FrameError::DecodeShortBody { len: body.len() });
    }
    let (message, crc_bytes) = body.split_at(body.len() - CRC_LEN);
    if message.len() > max_message {
        return Err(FrameError::DecodeOversize {
            len: message.len(),
            max: max_message,
        });
    }
    let carried = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let computed = crc32c(message);
    if carried != computed {
        return Err(FrameError::DecodeBadCrc { carried, computed });
    }
    Ok(message)
}

/// Decodes a datagram (a body without COBS) and returns its message.
pub fn decode_datagram(datagram: &[u8], max_message: usize) -> Result<&[u8], FrameError> {
    decode_body(datagram, max_message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame never contains 0x00 before its delimiter, and datagrams are message + CRC.
    #[test]
    fn encodings_have_their_shape() {
        let message = [0u8, 1, 0, 2, 0];
        let mut frame = [0u8; 32];
        let n = encode_frame(&message, &mut frame, 4096).unwrap();
        assert_eq!(frame[n - 1], 0);
        assert!(frame[..n - 1].iter().all(|b| *b != 0));

        let mut datagram = [0u8; 32];
        let d = encode_datagram(&message, &mut datagram, 4096).unwrap();
        assert_eq!(&datagram[..5], &message);
        assert_eq!(decode_datagram(&datagram[..d], 4096).unwrap(), &message);
    }

    /// Empty and over-long messages are refused with the matching variant.
    #[test]
    fn encode_refuses_bad_messages() {
        let mut out = [0u8; 64];
        assert_eq!(encode_frame(b"", &mut out, 8), Err(FrameError::EncodeEmptyMessage));
        assert_eq!(
            encode_datagram(&[1u8; 9], &mut out, 8),
            Err(FrameError::EncodeMessageTooLong { len: 9, max: 8 })
        );
        assert!(matches!(
            encode_frame(&[1u8; 9], &mut out[..5], 64),
            Err(FrameError::EncodeBufferTooSmall { .. })
        ));
    }

    /// Each corruption of a datagram maps to its own error.
    #[test]
    fn datagram_errors_are_specific() {
        let mut out = [0u8; 16];
        let n = encode_datagram(b"abc", &mut out, 4096).unwrap();
        assert_eq!(decode_datagram(&out[..4], 4096), Err(FrameError::DecodeShortBody { len: 4 }));
        assert_eq!(
            decode_datagram(&out[..n], 2),
            Err(FrameError::DecodeOversize { len: 3, max: 2 })
        );
        out[0] ^= 0x01;
        assert!(matches!(decode_datagram(&out[..n], 4096), Err(FrameError::DecodeBadCrc { .. })));
    }
}
