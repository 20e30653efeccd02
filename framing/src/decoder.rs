//! The streaming frame decoder for byte-stream links (serial, TCP).
//!
//! Bytes arrive in pieces of any size. The decoder collects the COBS text of the current frame
//! in a fixed buffer until the next 0x00, then decodes it in place and checks the body. Every
//! frame ends in exactly one outcome, reported to the caller and counted in [`DecoderStats`]:
//! a message, or one of `DecodeBadCobs`, `DecodeShortBody`, `DecodeOversize`, `DecodeBadCrc`.
//!
//! - Runs of 0x00 are idle line, not frames: they produce nothing and count nothing.
//! - A frame whose COBS text outgrows the buffer is oversize: its bytes are dropped as they
//!   arrive, and it is counted once when its delimiter comes. Memory never grows.
//! - After any error the decoder is synchronized again at the next 0x00.

use crate::codec::decode_body;
use crate::{decoder_buffer_len, FrameError};

/// Counts of frame outcomes since the decoder was made. Each delimited frame adds exactly 1 to
/// exactly one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames that carried a valid message.
    pub frames: u64,
    /// Frames whose COBS text was malformed.
    pub cobs_errors: u64,
    /// Frames whose CRC-32C did not match their message.
    pub crc_errors: u64,
    /// Frames whose body was shorter than 5 bytes.
    pub short_frames: u64,
    /// Frames whose message was longer than the largest message.
    pub oversize_frames: u64,
}

impl DecoderStats {
    /// Frames rejected for any reason.
    pub fn rejected(&self) -> u64 {
        self.cobs_errors + self.crc_errors + self.short_frames + self.oversize_frames
    }
}

/// A streaming decoder over a caller-provided buffer `B` (a `[u8; N]` on a board, a boxed
/// slice on a host).
///
/// ```
/// use manyfold_framing::{encode_frame, FrameDecoder, decoder_buffer_len};
/// let mut wire = [0u8; 32];
/// let n = encode_frame(b"hello", &mut wire, 16).unwrap();
///
/// let mut decoder = FrameDecoder::new([0u8; decoder_buffer_len(16)], 16).unwrap();
/// let mut got = None;
/// decoder.feed(&wire[..3], |_| unreachable!("no delimiter yet"));
/// decoder.feed(&wire[3..n], |frame| got = Some(frame.map(|m| m.to_vec())));
/// assert_eq!(got.unwrap().unwrap(), b"hello");
/// assert_eq!(decoder.stats().frames, 1);
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder<B> {
    buffer: B,
    /// COBS bytes of the current frame held in `buffer`.
    text_len: usize,
    /// The largest COBS text a valid frame can have; longer frames are oversize.
    text_len_max: usize,
    /// True while the current frame is oversize and its bytes are being dropped.
    discarding: bool,
    /// COBS bytes seen in the current discarded frame, for the error report.
    discarded_len: usize,
    max_message: usize,
    stats: DecoderStats,
}

impl<B: AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder for messages of at most `max_message` bytes. `buffer` must hold at least
    /// [`decoder_buffer_len(max_message)`](crate::decoder_buffer_len) bytes.
    pub fn new(mut buffer: B, max_message: usize) -> Result<Self, FrameError> {
        let buffer_needed = decoder_buffer_len(max_message);
        let buffer_len = buffer.as_mut().len();
        if max_message == 0 || buffer_len < buffer_needed {
            return Err(FrameError::ConfigInvalid {
                max_message,
                buffer_needed,
                buffer_len,
            });
        }
        Ok(FrameDecoder {
            buffer,
            text_len: 0,
            text_len_max: buffer_needed,
            discarding: false,
            discarded_len: 0,
            max_message,
            stats: DecoderStats::default(),
        })
    }

    /// The largest message this decoder accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Outcome counts so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes of an unfinished frame held (or being discarded) since the last delimiter.
    pub fn pending_len(&self) -> usize {
        if self.discarding {
            self.discarded_len
        } else {
            self.text_len
        }
    }

    /// Forgets any unfinished frame (for example when a link reconnects). Counts nothing.
    pub fn reset(&mut self) {
        self.text_len = 0;
        self.discarding = false;
        self.discarded_len = 0;
    }

    /// Feeds received bytes. `on_frame` is called once per completed frame, in order, with the
    /// message (borrowed from the decoder's buffer) or the reason the frame was rejected.
    pub fn feed<F>(&mut self, data: &[u8], mut on_frame: F)
    where
        F: FnMut(Result<&[u8], FrameError>),
    {
        let mut rest = data;
        // Bounded: every pass consumes at least one byte of `rest`, or leaves the loop.
        while !rest.is_empty() {
            match memchr::memchr(0, rest) {
                Some(at) => {
                    self.absorb(&rest[..at]);
                    self.finish_frame(&mut on_frame);
                    rest = &rest[at + 1..];
                }
                None => {
                    self.absorb(rest);
                    break;
                }
            }
        }
    }

    /// Appends COBS bytes of the current frame, or drops them once the frame is oversize.
    fn absorb(&mut self, bytes: &[u8]) {
        if self.discarding {
            self.discarded_len = self.discarded_len.saturating_add(bytes.len());
            return;
        }
        let end = self.text_len + bytes.len();
        if end > self.text_len_max {
            self.discarding = true;
            self.discarded_len = end;
            self.text_len = 0;
            return;
        }
        // end <= text_len_max <= buffer length, checked in `new`.
        if let Some(slot) = self.buffer.as_mut().get_mut(self.text_len..end) {
            slot.copy_from_slice(bytes);
            self.text_len = end;
        }
    }

    /// Ends the current frame at a delimiter and reports its outcome.
    fn finish_frame<F>(&mut self, on_frame: &mut F)
    where
        F: FnMut(Result<&[u8], FrameError>),
    {
        if self.discarding {
            let len = self.discarded_len;
            self.reset();
            self.stats.oversize_frames += 1;
            on_frame(Err(FrameError::DecodeOversize {
                len,
                max: self.max_message,
            }));
            return;
        }
        if self.text_len == 0 {
            return; // idle 0x00 between frames
        }
        let text_len = self.text_len;
        self.text_len = 0;
        let Some(text) = self.buffer.as_mut().get_mut(..text_len) else {
            return;
        };
        let outcome = match crate::cobs_block::decode_in_place(text) {
            None => Err(FrameError::DecodeBadCobs),
            Some(body_len) => match text.get(..body_len) {
                Some(body) => decode_body(body, self.max_message),
                None => Err(FrameError::DecodeBadCobs),
            },
        };
        match outcome {
            Ok(_) => self.stats.frames += 1,
            Err(FrameError::DecodeShortBody { .. }) => self.stats.short_frames += 1,
            Err(FrameError::DecodeOversize { .. }) => self.stats.oversize_frames += 1,
            Err(FrameError::DecodeBadCrc { .. }) => self.stats.crc_errors += 1,
            Err(_) => self.stats.cobs_errors += 1,
        }
        on_frame(outcome);
    }
}

#[cfg(feature = "alloc")]
impl FrameDecoder<alloc::boxed::Box<[u8]>> {
    /// A heap-backed decoder for messages of at most `max_message` bytes; allocates its buffer
    /// once, here.
    pub fn with_max_message(max_message: usize) -> Result<Self, FrameError> {
        let buffer = alloc::vec![0u8; decoder_buffer_len(max_message)].into_boxed_slice();
        FrameDecoder::new(buffer, max_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_frame, frame_len_max};

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; frame_len_max(message.len())];
        let n = encode_frame(message, &mut out, usize::MAX).unwrap();
        out.truncate(n);
        out
    }

    fn decode_all(decoder: &mut FrameDecoder<Vec<u8>>, data: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        decoder.feed(data, |r| out.push(r.map(|m| m.to_vec())));
        out
    }

    /// Zero runs between frames are idle line, not errors.
    #[test]
    fn zero_runs_are_ignored() {
        let mut d = FrameDecoder::new(vec![0; decoder_buffer_len(64)], 64).unwrap();
        let mut wire = vec![0, 0, 0];
        wire.extend(frame(b"x"));
        wire.extend([0, 0]);
        assert_eq!(decode_all(&mut d, &wire), vec![Ok(b"x".to_vec())]);
        assert_eq!(d.stats().rejected(), 0);
    }

    /// An oversize frame is dropped as it streams in, counted once, and the next frame decodes.
    #[test]
    fn oversize_is_discarded_while_streaming() {
        let mut d = FrameDecoder::new(vec![0; decoder_buffer_len(8)], 8).unwrap();
        let big = frame(&[7u8; 100]);
        for chunk in big[..big.len() - 1].chunks(3) {
            assert!(decode_all(&mut d, chunk).is_empty());
            assert!(d.text_len <= d.text_len_max);
        }
        let out = decode_all(&mut d, &[0]);
        assert!(matches!(out[..], [Err(FrameError::DecodeOversize { .. })]));
        assert_eq!(decode_all(&mut d, &frame(b"ok")), vec![Ok(b"ok".to_vec())]);
        assert_eq!(d.stats().oversize_frames, 1);
        assert_eq!(d.stats().frames, 1);
    }

    /// A buffer too small for the declared message size is refused up front.
    #[test]
    fn undersized_buffer_is_refused() {
        assert!(matches!(
            FrameDecoder::new([0u8; 8], 8),
            Err(FrameError::ConfigInvalid { .. })
        ));
        assert!(matches!(
            FrameDecoder::new([0u8; 8], 0),
            Err(FrameError::ConfigInvalid { max_message: 0, .. })
        ));
    }
}
