//! [`UdpPort`]: a device link over UDP (`udp://HOST:PORT`), for boards with an Ethernet link
//! (docs/embedded.md, "UDP boards").
//!
//! The link carries **datagram frames** (docs/wire.md 1.4: a datagram is a frame body, the
//! message and its CRC-32C, without COBS). The client and the core's host role speak the stream
//! frame layer, so this port re-frames and does nothing else: every COBS frame the client
//! writes goes out as its decoded body, and every datagram received is handed to the client as
//! `COBS(datagram) || 0x00`. The CRC is the sender's and is checked once, by the receiving
//! end's frame layer, which applies rules 3 to 6 of docs/wire.md 1.5 to the body exactly as a
//! datagram receiver does: a damaged datagram is refused and counted there (`crc_errors`,
//! `short_frames`, `oversize_frames`).
//!
//! **Faults.** [`UdpPort::with_faults`] puts the seeded datagram fault wrapper of the node's
//! links ([`crate::links::Faults`]: drop, duplicate, reorder, corrupt, delay) on either
//! direction, between the client and the board: what the tests and the benchmark use to show
//! that no damaged datagram is accepted and every loss is counted.
//!
//! The socket is connected to the board's address, so datagrams from anyone else are not
//! read. The board serves the host address that last said hello (one session per host
//! address); [`UdpPort::reopen`] binds the same local port again where it can, so a resumed
//! session keeps its address.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::Port;
use crate::links::faults::{FaultCounts, FaultSpec, Faults};

/// Received datagrams waiting to be read, at most (a fault wrapper may make two of one).
const RECEIVED_MAX: usize = 256;

/// The largest datagram read: any UDP payload (a longer one than the link's `max_message`
/// allows is refused as oversize by the frame layer, not cut here).
const DATAGRAM_MAX: usize = 65_535;

/// The URL scheme of a UDP device.
pub const SCHEME: &str = "udp://";

/// Parses `udp://HOST:PORT` into the board's address (the first the name resolves to); the
/// error says what is wrong with it (the caller names the URL).
pub fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let Some(rest) = url.strip_prefix(SCHEME) else {
        // The one error that names the URL: it may not look like one at all.
        return Err(format!("{url} is not a UDP URL (udp://HOST:PORT)"));
    };
    let rest = rest.trim_end_matches('/');
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err("the URL has no port (udp://HOST:PORT)".to_string());
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => return Err(format!("{port:?} is not a UDP port (1 to 65535)")),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the URL has no host (udp://HOST:PORT)".to_string());
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{host} has no address")),
        Err(e) => Err(format!("cannot resolve {host} ({e})")),
    }
}

/// A UDP device port. See the module docs.
pub struct UdpPort {
    board: SocketAddr,
    socket: Option<UdpSocket>,
    local: Option<SocketAddr>,
    read_timeout: Duration,
    /// Bytes of COBS frames written by the client and not yet complete (a frame is sent once
    /// its 0x00 came).
    pending: Vec<u8>,
    datagram: Vec<u8>,
    body: Vec<u8>,
    sent: u64,
    received: u64,
    to_board: Option<Faults>,
    to_host: Option<Faults>,
    /// Datagrams received (after the faults toward the host) and not yet read.
    inbox: VecDeque<Vec<u8>>,
}

impl UdpPort {
    /// A port to the board at `url` (`udp://HOST:PORT`), whose reads wait at most
    /// `read_timeout`.
    pub fn open(url: &str, read_timeout: Duration) -> io::Result<UdpPort> {
        let board = parse_url(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut port = UdpPort {
            board,
            socket: None,
            local: None,
            read_timeout: read_timeout.max(Duration::from_millis(1)),
            pending: Vec::new(),
            datagram: vec![0; DATAGRAM_MAX],
            body: Vec::new(),
            sent: 0,
            received: 0,
            to_board: None,
            to_host: None,
            inbox: VecDeque::new(),
        };
        port.bind()?;
        Ok(port)
    }

    fn bind(&mut self) -> io::Result<()> {
        let any: SocketAddr = if self.board.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("a socket address");
        // The same local port as before where it is free: the board keeps talking to it.
        let socket = match self.local.map(UdpSocket::bind) {
            Some(Ok(s)) => s,
            _ => UdpSocket::bind(any)?,
        };
        socket.connect(self.board)?;
        socket.set_read_timeout(Some(self.read_timeout))?;
        self.local = socket.local_addr().ok();
        self.socket = Some(socket);
        self.pending.clear();
        self.inbox.clear();
        Ok(())
    }

    /// Puts seeded faults on what goes to the board and what comes to the host (None: none).
    pub fn with_faults(mut self, to_board: Option<FaultSpec>, to_host: Option<FaultSpec>) -> Self {
        self.to_board = to_board.map(Faults::new);
        self.to_host = to_host.map(Faults::new);
        self
    }

    /// What the faults did so far: toward the board, toward the host.
    pub fn fault_counts(&self) -> (FaultCounts, FaultCounts) {
        let counts = |f: &Option<Faults>| f.as_ref().map(Faults::counts).unwrap_or_default();
        (counts(&self.to_board), counts(&self.to_host))
    }

    /// The board's address.
    pub fn board(&self) -> SocketAddr {
        self.board
    }

    /// This end's address (the host address the board sees, before any NAT).
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Datagrams sent and received so far.
    pub fn datagrams(&self) -> (u64, u64) {
        (self.sent, self.received)
    }

    fn socket(&self) -> io::Result<&UdpSocket> {
        self.socket.as_ref().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the UDP port is closed"))
    }
}

impl UdpPort {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        match self.socket()?.send(datagram) {
            Ok(_) => self.sent += 1,
            // Nobody at the board's port yet (ICMP from an earlier datagram): lost, like any
            // datagram; the link protocol resends.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Sends the delayed datagrams toward the board that are due.
    fn send_due(&mut self) -> io::Result<()> {
        let due = match self.to_board.as_mut() {
            Some(faults) if faults.next_due().is_some() => faults.take_due(Instant::now()),
            _ => return Ok(()),
        };
        for datagram in due {
            self.send(&datagram)?;
        }
        Ok(())
    }
}

/// `COBS(datagram) || 0x00` into `buf`; its length. An empty datagram is a body shorter than 5
/// bytes: a short frame.
fn reframe(datagram: &[u8], buf: &mut [u8]) -> usize {
    let n = datagram.len();
    let need = cobs::max_encoding_length(n) + 1;
    if buf.len() < need {
        // Longer than the client reads at once, so far longer than any message: handed on as
        // a run of COBS text longer than the longest frame, which the frame layer refuses and
        // counts as oversize (rule 1), as it would the whole datagram.
        buf.fill(0x01);
        if let Some(last) = buf.last_mut() {
            *last = 0;
        }
        return buf.len();
    }
    let len = if n == 0 {
        buf[0] = 0x01;
        1
    } else {
        cobs::encode(datagram, &mut buf[..need - 1])
    };
    buf[len] = 0;
    len + 1
}

impl Port for UdpPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.send_due()?;
        if self.inbox.is_empty() {
            let socket = self.socket.as_ref().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the UDP port is closed"))?;
            let n = match socket.recv(&mut self.datagram) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => 0,
                // ICMP port unreachable (nobody listens yet, or the board restarts): no data.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => 0,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let mut got = Vec::new();
            if n > 0 {
                self.received += 1;
                match self.to_host.as_mut() {
                    Some(faults) => got = faults.apply(now, &self.datagram[..n]),
                    None => got.push(self.datagram[..n].to_vec()),
                }
            }
            if let Some(faults) = self.to_host.as_mut() {
                got.extend(faults.take_due(now));
            }
            for datagram in got {
                if self.inbox.len() < RECEIVED_MAX {
                    self.inbox.push_back(datagram);
                }
            }
        }
        match self.inbox.pop_front() {
            Some(datagram) => Ok(reframe(&datagram, buf)),
            None => Ok(0),
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|b| *b == 0) {
            let frame: Vec<u8> = self.pending.drain(..=end).collect();
            if frame.len() == 1 {
                continue; // an idle 0x00 (docs/wire.md 1.3): nothing to send as a datagram
            }
            self.body.resize(frame.len(), 0);
            let Ok(report) = cobs::decode(&frame, &mut self.body) else {
                continue; // the client writes only frames it encoded; never happens
            };
            let body = self.body[..report.frame_size()].to_vec();
            let out = match self.to_board.as_mut() {
                Some(faults) => faults.apply(Instant::now(), &body),
                None => vec![body],
            };
            for datagram in out {
                self.send(&datagram)?;
            }
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.socket = None;
        self.bind()
    }

    fn can_reopen(&self) -> bool {
        true
    }

    fn close(&mut self) {
        self.socket = None;
        self.pending.clear();
        self.inbox.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manyfold_core::framing::{decode_datagram, encode_datagram, encode_frame, FrameDecoder};

    /// A URL names host and port; anything else is refused with a sentence naming it.
    #[test]
    fn urls() {
        assert_eq!(parse_url("udp://127.0.0.1:7600").unwrap(), "127.0.0.1:7600".parse().unwrap());
        assert_eq!(parse_url("udp://localhost:9/").unwrap().port(), 9);
        for bad in ["socket://127.0.0.1:1", "udp://127.0.0.1", "udp://127.0.0.1:0", "udp://:80", "udp://h:x"] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains("udp://") || e.contains("port"), "{e}");
        }
    }

    /// Frames written go out as datagrams (body, no COBS); datagrams come back as frames the
    /// stream decoder accepts, and a damaged datagram is refused by it as a bad CRC.
    #[test]
    fn reframes_both_ways() {
        let board = UdpSocket::bind("127.0.0.1:0").unwrap();
        board.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let url = format!("udp://{}", board.local_addr().unwrap());
        let mut port = UdpPort::open(&url, Duration::from_millis(200)).unwrap();

        let mut frame = vec![0; 64];
        let n = encode_frame(b"\xe6\x01\x00\x00", &mut frame, 256).unwrap();
        // Written in two pieces, with an idle 0x00 first: one datagram.
        port.write(&[0]).unwrap();
        port.write(&frame[..3]).unwrap();
        port.write(&frame[3..n]).unwrap();
        let mut got = [0u8; 64];
        let (len, from) = board.recv_from(&mut got).unwrap();
        assert_eq!(decode_datagram(&got[..len], 256).unwrap(), b"\xe6\x01\x00\x00");

        let mut datagram = [0u8; 64];
        let d = encode_datagram(b"\xe4\x01\x00", &mut datagram, 256).unwrap();
        board.send_to(&datagram[..d], from).unwrap();
        let mut damaged = datagram;
        damaged[1] ^= 0x10;
        board.send_to(&damaged[..d], from).unwrap();
        let mut decoder = FrameDecoder::with_max_message(256).unwrap();
        let mut messages = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..2 {
            let n = port.read(&mut buf).unwrap();
            decoder.feed(&buf[..n], |m| messages.push(m.map(|m| m.to_vec())));
        }
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].as_deref().unwrap(), b"\xe4\x01\x00");
        assert!(messages[1].is_err());
        assert_eq!(decoder.stats().crc_errors, 1);
        assert_eq!(port.datagrams(), (1, 2));
        // Nothing waiting: a read times out with no bytes.
        assert_eq!(port.read(&mut buf).unwrap(), 0);
    }

    /// The fault wrapper sits on each direction: seeded drops and duplicates show in its counts
    /// and in what crosses.
    #[test]
    fn faults_on_both_directions() {
        let board = UdpSocket::bind("127.0.0.1:0").unwrap();
        board.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let url = format!("udp://{}", board.local_addr().unwrap());
        let drop_all = FaultSpec { seed: 1, drop: 1.0, ..FaultSpec::default() };
        let twice = FaultSpec { seed: 2, dup: 1.0, ..FaultSpec::default() };
        let mut port = UdpPort::open(&url, Duration::from_millis(300)).unwrap().with_faults(Some(drop_all), Some(twice));
        let mut frame = vec![0; 64];
        let n = encode_frame(b"\xe8\x00\x00", &mut frame, 256).unwrap();
        port.write(&frame[..n]).unwrap();
        let mut got = [0u8; 64];
        assert!(board.recv_from(&mut got).is_err(), "dropped on the way to the board");
        board.send_to(b"\xe8\x00\x00\x01\x02\x03\x04", port.local().unwrap()).unwrap();
        let mut buf = [0u8; 4096];
        let first = port.read(&mut buf).unwrap();
        let copy = buf[..first].to_vec();
        assert!(first > 0);
        assert_eq!(port.read(&mut buf).unwrap(), first);
        assert_eq!(&buf[..first], &copy[..], "duplicated on the way to the host");
        let (to_board, to_host) = port.fault_counts();
        assert_eq!((to_board.offered, to_board.dropped, to_host.offered, to_host.duplicated), (1, 1, 1, 1));
        assert_eq!(port.datagrams(), (0, 1));
    }
}
