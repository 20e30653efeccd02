//! The echo/describe service: the firmware's first protocol, proving the whole path from the
//! host through the UART and the frame layer and back.
//!
//! Requests and replies are frame-layer messages (docs/wire.md), at most `MAX_MESSAGE` bytes:
//!
//! | request                 | reply                                                       |
//! |-------------------------|-------------------------------------------------------------|
//! | `01` (describe)         | ASCII `manyfold-firmware board=<name> max_message=<n> ...`  |
//! | anything else, `m`      | `02 m` (echo), if that fits in `MAX_MESSAGE` bytes          |
//! | longer `m`              | `03` + ASCII `echo_too_long len=<m's length> max=<longest>` |
//!
//! Rejected frames get no reply; they are counted by the decoder and reported by describe.

use manyfold_framing::{encode_frame, frame_len_max, DecoderStats};

use crate::board::{self, config::MAX_MESSAGE, config::NAME};
use crate::link::{Link, SerialPort};
use crate::text::Text;

/// The describe request: this single byte.
pub const DESCRIBE: u8 = 0x01;
/// First byte of an echo reply.
pub const ECHO: u8 = 0x02;
/// First byte of an error reply.
pub const ERROR: u8 = 0x03;

/// Bytes of the partition region shown in the describe reply.
const PARTITION_HEAD_LEN: usize = 8;

/// The reply being built and its frame, kept between requests so the stack stays flat.
pub struct Service {
    reply: [u8; MAX_MESSAGE],
    frame: [u8; frame_len_max(MAX_MESSAGE)],
}

impl Service {
    pub fn new() -> Self {
        Service {
            reply: [0; MAX_MESSAGE],
            frame: [0; frame_len_max(MAX_MESSAGE)],
        }
    }

    /// Answers one accepted request. `stats` are the decoder's counts including this request.
    pub fn respond<P: SerialPort>(
        &mut self,
        request: &[u8],
        stats: &DecoderStats,
        link: &mut Link<P>,
    ) {
        let len = if request == [DESCRIBE] {
            self.describe(stats, link.dropped())
        } else {
            self.echo(request)
        };
        // Cannot fail: the reply has 1..=MAX_MESSAGE bytes and the frame buffer is sized for it.
        if let Ok(n) = encode_frame(&self.reply[..len], &mut self.frame, MAX_MESSAGE) {
            link.send(&self.frame[..n]);
        }
    }

    fn describe(&mut self, stats: &DecoderStats, rx_dropped: u32) -> usize {
        let mut head = [0u8; PARTITION_HEAD_LEN];
        let head_len = board::read_partition(0, &mut head);
        let mut text = Text::new(&mut self.reply);
        text.str("manyfold-firmware board=")
            .str(NAME)
            .field("max_message", MAX_MESSAGE as u64)
            .field("partition_bytes", board::partition_len() as u64)
            .str(" partition_head=")
            .hex(&head[..head_len])
            .field("frames", stats.frames)
            .field("crc_errors", stats.crc_errors)
            .field("cobs_errors", stats.cobs_errors)
            .field("short", stats.short_frames)
            .field("oversize", stats.oversize_frames)
            .field("rejected", stats.rejected())
            .field("rx_dropped", u64::from(rx_dropped))
            .field("uptime_ms", u64::from(board::uptime_ms()))
            .field("stack_peak", board::stack_peak() as u64);
        text.len()
    }

    fn echo(&mut self, request: &[u8]) -> usize {
        if request.len() < MAX_MESSAGE {
            self.reply[0] = ECHO;
            self.reply[1..=request.len()].copy_from_slice(request);
            return 1 + request.len();
        }
        let mut text = Text::new(&mut self.reply);
        text.bytes(&[ERROR])
            .str("echo_too_long len=")
            .dec(request.len() as u64)
            .str(" max=")
            .dec(MAX_MESSAGE as u64 - 1);
        text.len()
    }
}
