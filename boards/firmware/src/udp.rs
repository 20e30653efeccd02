//! The link over UDP (the `link-udp` build): datagram frames (docs/wire.md 1.4) carried by
//! smoltcp (IPv4, ARP, one UDP socket, no heap) over the board's Ethernet controller.
//!
//! The device (`manyfold-core`) speaks the stream frame layer; this module is the re-framing
//! between it and the datagrams, and nothing else: a datagram is a frame body (message and
//! CRC-32C), so a received datagram is handed to the device as `COBS(datagram) || 0x00`, and
//! every frame the device writes is sent as its decoded body. The CRC is the sender's, checked
//! once by the receiving end's frame layer, which applies rules 3 to 6 of docs/wire.md 1.5 to
//! it exactly as to a datagram: a damaged datagram is refused, counted and nacked the same way.
//!
//! **One session per host address.** The board talks to one host at a time: the address
//! (IPv4 and port) that last sent it a hello. A hello from another address (a frame body with a
//! good CRC whose message starts with a CBOR array, docs/wire.md 2.2) moves the link there; any
//! other datagram from another address is dropped and counted (`board` query, `rx_dropped`).
//! The hello opens a new session or resumes its own (its session id says which), as on a
//! serial line.

use manyfold_core::device::Tx;
use manyfold_framing::decode_datagram;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};

use crate::board::config::{IP, IP_PREFIX, MAX_MESSAGE, UDP_PORT};

/// Datagrams the socket holds each way.
pub const DATAGRAMS: usize = 4;

/// Payload bytes the socket holds each way: `DATAGRAMS` datagrams of the largest message.
pub const PAYLOAD_LEN: usize = DATAGRAMS * (MAX_MESSAGE + 4);

/// The longest frame handed to the device: the COBS text of the longest datagram the NIC
/// carries, and its 0x00 (longer datagrams are refused by the device as oversize).
pub const STREAM_LEN: usize = cobs::max_encoding_length(crate::board::lan9118::FRAME_MAX) + 1;

/// Sends the socket cannot take at once before a frame is given up (each try lets smoltcp
/// transmit what it holds).
const SEND_TRIES: usize = 64;

/// The socket's buffers, in the caller's stack frame (no heap).
pub struct Storage {
    pub rx_meta: [PacketMetadata; DATAGRAMS],
    pub rx_payload: [u8; PAYLOAD_LEN],
    pub tx_meta: [PacketMetadata; DATAGRAMS],
    pub tx_payload: [u8; PAYLOAD_LEN],
}

impl Storage {
    pub const fn new() -> Self {
        Storage {
            rx_meta: [PacketMetadata::EMPTY; DATAGRAMS],
            rx_payload: [0; PAYLOAD_LEN],
            tx_meta: [PacketMetadata::EMPTY; DATAGRAMS],
            tx_payload: [0; PAYLOAD_LEN],
        }
    }
}

/// The UDP end of the board's link.
pub struct UdpLink<'a, D: Device> {
    nic: D,
    iface: Interface,
    sockets: SocketSet<'a>,
    socket: SocketHandle,
    peer: Option<IpEndpoint>,
    now: Instant,
    /// A frame's body (the datagram to send), decoded from the device's COBS frame.
    body: [u8; MAX_MESSAGE + 4],
    dropped: u32,
}

/// True when `datagram` is an intact hello (or any message that starts with a CBOR array,
/// which from a host is a hello).
fn is_hello(datagram: &[u8]) -> bool {
    decode_datagram(datagram, MAX_MESSAGE).ok().and_then(|m| m.first()).is_some_and(|b| (0x80..=0x9f).contains(b))
}

impl<'a, D: Device> UdpLink<'a, D> {
    /// The link on `nic` (whose MAC address is `mac`), listening on the board's UDP port.
    /// `sockets` is the socket set's storage (one socket).
    pub fn new(mut nic: D, mac: [u8; 6], storage: &'a mut Storage, sockets: &'a mut [SocketStorage<'a>; 1], now_ms: u64) -> Self {
        let now = Instant::from_millis(now_ms as i64);
        let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        let mut iface = Interface::new(config, &mut nic, now);
        let [a, b, c, d] = IP;
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::v4(a, b, c, d), IP_PREFIX));
        });
        let Storage { rx_meta, rx_payload, tx_meta, tx_payload } = storage;
        let mut socket = udp::Socket::new(PacketBuffer::new(&mut rx_meta[..], &mut rx_payload[..]), PacketBuffer::new(&mut tx_meta[..], &mut tx_payload[..]));
        // Cannot fail: the port is not 0 (build.rs checks it) and the socket is unbound.
        let _ = socket.bind(UDP_PORT);
        let mut sockets = SocketSet::new(&mut sockets[..]);
        let socket = sockets.add(socket);
        UdpLink { nic, iface, sockets, socket, peer: None, now, body: [0; MAX_MESSAGE + 4], dropped: 0 }
    }

    /// Datagrams not handed to the device: from an address other than the host's that were
    /// not a hello.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The NIC.
    pub fn nic(&self) -> &D {
        &self.nic
    }

    /// The board's time, for smoltcp's timers (ARP).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now = Instant::from_millis(now_ms as i64);
    }

    /// Lets smoltcp move frames: received ones into the socket, queued ones out, ARP.
    pub fn poll(&mut self) {
        let _ = self.iface.poll(self.now, &mut self.nic, &mut self.sockets);
    }

    /// The next datagram from the host, as a COBS frame for the device, in `out`; its length,
    /// or 0 when none is waiting.
    pub fn receive(&mut self, out: &mut [u8; STREAM_LEN]) -> usize {
        self.poll();
        let socket = self.sockets.get_mut::<udp::Socket>(self.socket);
        let Ok((datagram, meta)) = socket.recv() else {
            return 0;
        };
        if self.peer != Some(meta.endpoint) {
            if !is_hello(datagram) {
                self.dropped = self.dropped.wrapping_add(1);
                return 0;
            }
            self.peer = Some(meta.endpoint);
        }
        if datagram.is_empty() {
            // An empty datagram is a body shorter than 5 bytes: give the device a short frame.
            out[0] = 0x01;
            out[1] = 0x00;
            return 2;
        }
        match cobs::try_encode(datagram, &mut out[..STREAM_LEN - 1]) {
            Ok(n) => {
                out[n] = 0;
                n + 1
            }
            Err(_) => {
                // Longer than the NIC's frames allow (never on QEMU): dropped and counted.
                self.dropped = self.dropped.wrapping_add(1);
                0
            }
        }
    }
}

impl<D: Device> Tx for UdpLink<'_, D> {
    /// Sends one frame of the device as a datagram to the host.
    fn write(&mut self, frame: &[u8]) -> bool {
        let Some(peer) = self.peer else {
            return true; // no host yet: nobody to tell (the device sends nothing unsolicited)
        };
        let Ok(report) = cobs::decode(frame, &mut self.body) else {
            return false;
        };
        let len = report.frame_size();
        for _ in 0..SEND_TRIES {
            let socket = self.sockets.get_mut::<udp::Socket>(self.socket);
            match socket.send_slice(&self.body[..len], peer) {
                Ok(()) => {
                    self.poll();
                    return true;
                }
                Err(udp::SendError::BufferFull) => self.poll(),
                Err(_) => return false,
            }
        }
        false
    }
}
