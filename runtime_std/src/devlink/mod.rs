//! The host end of a device link, blocking, over any byte port: a board's UART, an emulated
//! board's socket, or the simulation. It drives `manyfold-core`'s host role
//! ([`manyfold_core::link::host::HostLink`]), which holds all of the protocol; this layer only
//! moves bytes, reads the clock, waits with deadlines and reopens the port.
//!
//! # Layout
//! - [`client`]: [`Client`], the blocking client: connect, requests with answers, paging,
//!   upload, polling for events, reconnection.
//! - [`udp`]: [`udp::UdpPort`], the port of a board linked over UDP (`udp://HOST:PORT`):
//!   datagram frames, re-framed for the client.
//! - [`owned`]: owned forms of what the device says (describe, answers, pages), which outlive
//!   the frame they came in.
//! - [`Port`] and [`Clock`]: what the client needs from its host: bytes and time.
//!
//! The Python `manyfold.devices.link.LinkClient` is this client with a pyserial port; an edge
//! node uses it with its own serial port or socket.

pub mod client;
pub mod owned;
pub mod udp;

pub use client::{Client, ClientError, ClientTimers, EVENTS_MAX};
pub use owned::{OwnedAnswer, OwnedDescribe, Page};

/// A byte port (see [`ClientError`] for how its failures show).
/// Reads wait at most the port's own short timeout (tens of milliseconds) and
/// return 0 bytes when nothing came; an error means the port broke (the cable is out).
pub trait Port {
    /// Reads into `buf`; `Ok(0)` when nothing arrived in the port's timeout.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `data`.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// Opens the port again after it broke or the session went down; an error while it cannot
    /// be opened yet (the client tries again until its reconnect timeout).
    fn reopen(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "this port cannot be reopened"))
    }
    /// True when [`Port::reopen`] can work.
    fn can_reopen(&self) -> bool {
        false
    }
    /// Closes the port.
    fn close(&mut self) {}
    /// True when the user asked to stop (Ctrl-C while the port waited): the client's calls
    /// return [`ClientError::Interrupted`] at once.
    fn interrupted(&mut self) -> bool {
        false
    }
}

/// The client's clock, in seconds (monotonic; a simulation's virtual clock in tests).
pub trait Clock {
    /// Now, in seconds.
    fn now_s(&mut self) -> f64;
}
