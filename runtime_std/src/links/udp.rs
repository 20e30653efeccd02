//! UDP: one message per datagram, `message || crc32c` (docs/wire.md 1.4).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::faults::Faults;
use super::{Counters, Transport, TransportStats};

/// Largest datagram read.
const DATAGRAM_MAX: usize = 65_536;

/// Datagrams the node's listening socket received from this link's peer.
pub type UdpInbox = Receiver<(SocketAddr, Vec<u8>)>;

enum Side {
    /// Dials: a socket of its own, datagrams from anyone but the peer are ignored.
    Dialer { buf: Mutex<Box<[u8]>> },
    /// Accepts: sends from the node's listening socket, receives what the node hands over.
    Acceptor { inbox: Mutex<UdpInbox> },
}

/// A UDP link transport.
pub struct UdpTransport {
    socket: Arc<UdpSocket>,
    side: Side,
    peer: Mutex<Option<SocketAddr>>,
    max_message: usize,
    faults: Option<Mutex<Faults>>,
    counters: Counters,
}

impl UdpTransport {
    /// Dials `peer` from a new socket on `bind` (port 0: any).
    pub fn dial(bind: SocketAddr, peer: SocketAddr, max_message: usize) -> io::Result<UdpTransport> {
        let socket = UdpSocket::bind(bind)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(UdpTransport {
            socket: Arc::new(socket),
            side: Side::Dialer { buf: Mutex::new(vec![0u8; DATAGRAM_MAX].into_boxed_slice()) },
            peer: Mutex::new(Some(peer)),
            max_message,
            faults: None,
            counters: Counters::default(),
        })
    }

    /// Accepts on the node's shared listening `socket`; `inbox` brings the datagrams the node
    /// routed to this link (with their source, which becomes the peer).
    pub fn accept(socket: Arc<UdpSocket>, inbox: UdpInbox, max_message: usize) -> UdpTransport {
        UdpTransport {
            socket,
            side: Side::Acceptor { inbox: Mutex::new(inbox) },
            peer: Mutex::new(None),
            max_message,
            faults: None,
            counters: Counters::default(),
        }
    }

    /// Sends every datagram through `faults` first (tests and benchmarks).
    pub fn with_faults(mut self, faults: Faults) -> UdpTransport {
        self.faults = Some(Mutex::new(faults));
        self
    }

    /// The local address of the socket it sends from.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn send_raw(&self, peer: SocketAddr, datagram: &[u8]) {
        match self.socket.send_to(datagram, peer) {
            Ok(_) => Counters::add(&self.counters.sent, 1),
            Err(_) => Counters::add(&self.counters.send_errors, 1),
        }
    }

    /// Sends the datagrams a fault wrapper delayed and that are due now.
    fn release_delayed(&self) {
        let Some(faults) = &self.faults else { return };
        let Some(peer) = *self.peer.lock() else { return };
        let due = faults.lock().take_due(Instant::now());
        for datagram in due {
            self.send_raw(peer, &datagram);
        }
    }

    fn deliver(&self, datagram: &[u8], on: &mut dyn FnMut(&[u8])) -> usize {
        match manyfold_framing::decode_datagram(datagram, self.max_message) {
            Ok(message) => {
                Counters::add(&self.counters.received, 1);
                on(message);
                1
            }
            Err(_) => {
                Counters::add(&self.counters.bad_frames, 1);
                0
            }
        }
    }
}

impl Transport for UdpTransport {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let Some(peer) = *self.peer.lock() else {
            Counters::add(&self.counters.send_errors, 1);
            return Err(io::Error::new(io::ErrorKind::NotConnected, "the peer has not been heard from yet"));
        };
        let mut datagram = [0u8; DATAGRAM_MAX / 8];
        let len = manyfold_framing::encode_datagram(message, &mut datagram, self.max_message)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        match &self.faults {
            None => self.send_raw(peer, &datagram[..len]),
            Some(faults) => {
                let out = faults.lock().apply(Instant::now(), &datagram[..len]);
                for d in out {
                    self.send_raw(peer, &d);
                }
            }
        }
        Ok(())
    }

    fn recv(&self, timeout: Duration, on: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        self.release_delayed();
        match &self.side {
            Side::Dialer { buf } => {
                let mut buf = buf.lock();
                let end = Instant::now() + timeout;
                // Bounded by `end`: each pass waits at most the socket's read timeout.
                loop {
                    match self.socket.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            if Some(from) == *self.peer.lock() {
                                return Ok(self.deliver(&buf[..n], on));
                            }
                        }
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                        // An ICMP port unreachable from a peer not up yet: not fatal.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                        Err(e) => return Err(e),
                    }
                    if Instant::now() >= end {
                        return Ok(0);
                    }
                    self.release_delayed();
                }
            }
            Side::Acceptor { inbox } => {
                let inbox = inbox.lock();
                let first = match inbox.recv_timeout(timeout) {
                    Ok(item) => item,
                    Err(RecvTimeoutError::Timeout) => return Ok(0),
                    Err(RecvTimeoutError::Disconnected) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the node's listener stopped")),
                };
                let mut count = 0;
                let mut next = Some(first);
                // Bounded: takes what is queued now, at most 64 datagrams per call.
                for _ in 0..64 {
                    let Some((from, datagram)) = next.take() else { break };
                    *self.peer.lock() = Some(from);
                    count += self.deliver(&datagram, on);
                    next = inbox.try_recv().ok();
                }
                Ok(count)
            }
        }
    }

    fn kind(&self) -> &'static str {
        "udp"
    }

    fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock()
    }

    fn stats(&self) -> TransportStats {
        self.counters.snapshot()
    }
}

/// Routes a datagram to the link that owns its source (the node's listener keeps one sender
/// per accepting link).
pub type UdpRoute = Sender<(SocketAddr, Vec<u8>)>;
