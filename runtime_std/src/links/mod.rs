//! Mesh link transports: how a runtime node moves the mesh protocol's messages to a peer.
//!
//! A message is what [`manyfold_core::mesh`] hands over to send and takes back when it
//! arrives; the transport frames it with the v1 frame layer (`manyfold-framing`):
//! - [`udp`]: one message per datagram (`message || crc32c`); a bad CRC is counted and
//!   skipped. The dialing side uses a socket of its own; the listening side shares the node's
//!   listening socket, and the node hands it the datagrams from its peer.
//! - [`tcp`]: COBS stream frames (`COBS(message || crc32c) || 0x00`); the dialing side
//!   reconnects with a growing backoff, the listening side takes each connection the node's
//!   listener accepts for it.
//! - [`faults`]: seeded datagram faults (drop, duplicate, reorder, corrupt, delay) for tests and
//!   benchmarks: the same seed gives the same faults.
//!
//! Both transports implement [`Transport`] with `&self` methods, so one thread can receive
//! while another sends; neither holds a lock across a blocking call the other half needs.

pub mod faults;
pub mod tcp;
pub mod udp;
#[cfg(feature = "zenoh")]
pub mod zenoh;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use faults::{FaultSpec, Faults};
pub use tcp::TcpTransport;
pub use udp::{UdpInbox, UdpTransport};
#[cfg(feature = "zenoh")]
pub use zenoh::{ZenohKeys, ZenohTransport};

/// Largest message a UDP link sends by default (fits a 1280-byte IPv6 minimum MTU with room
/// for the CRC and headers).
pub const UDP_MTU_DEFAULT: usize = 1200;

/// Largest message a TCP link sends (the frame layer's default bound).
pub const TCP_MTU_DEFAULT: usize = manyfold_framing::MESSAGE_LEN_MAX_DEFAULT;

/// Largest message a Zenoh link sends (one message per Zenoh sample; the hello's MTU is a u16).
/// 8 KiB rather than UDP's 1200: fewer, larger samples; measured 1.4x raw Zenoh's events/s
/// against 1.0x at 1200 (docs/performance.md "Node links over Zenoh").
pub const ZENOH_MTU_DEFAULT: usize = 8192;

/// Sends and receives the messages of one link.
pub trait Transport: Send + Sync {
    /// Sends one message (framed by the transport). An error means it was not sent: the mesh
    /// protocol's retransmission (or a gap, on a link that did not ask for reliability) covers it.
    fn send(&self, message: &[u8]) -> io::Result<()>;
    /// Waits at most `timeout` for messages and calls `on` with each that arrived intact;
    /// returns how many (0 when the wait ended empty). Frames that fail their CRC or COBS are
    /// counted in [`Transport::stats`] and never handed on.
    fn recv(&self, timeout: Duration, on: &mut dyn FnMut(&[u8])) -> io::Result<usize>;
    /// `"udp"`, `"tcp"` or `"zenoh"`.
    fn kind(&self) -> &'static str;
    /// The peer's address, once known.
    fn peer(&self) -> Option<SocketAddr>;
    /// Where the peer is, for the status (the address; Zenoh: the router and the key).
    fn peer_label(&self) -> Option<String> {
        self.peer().map(|a| a.to_string())
    }
    /// What the transport waits for, if anything (Zenoh: the router), for the status.
    fn note(&self) -> Option<String> {
        None
    }
    /// What the transport counted.
    fn stats(&self) -> TransportStats;
    /// Drops the current connection (a stream transport); the dialing side connects again.
    fn reset(&self) {}
}

/// What a transport counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportStats {
    /// Messages sent and received intact.
    pub sent: u64,
    /// Messages received intact.
    pub received: u64,
    /// Frames refused by the frame layer (CRC, COBS, length).
    pub bad_frames: u64,
    /// Sends that failed (no connection, socket error).
    pub send_errors: u64,
    /// Connections made (stream transports; Zenoh: the session's keys declared).
    pub connects: u64,
    /// Messages dropped because the receive inbox was full (Zenoh).
    pub rx_overflow: u64,
}

/// Counters a transport updates from both halves.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    bad_frames: AtomicU64,
    send_errors: AtomicU64,
    connects: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> TransportStats {
        TransportStats {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            bad_frames: self.bad_frames.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            rx_overflow: 0,
        }
    }
}

#[cfg(test)]
mod tests;
