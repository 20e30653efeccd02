//! Zenoh: one mesh message per Zenoh sample (docs/wire.md 4.12). No frame layer: Zenoh frames
//! and checks its own bytes over TCP.
//!
//! The end hosting partition S of link L sends on two kinds of keys
//! ([`crate::node::zenoh`] builds them):
//! - a first-send `events` message holding one route goes on that route's key
//!   `P/<mid16>/route/L/S/<route chunks>`;
//! - everything else (hello, welcome, refuse, ack, keepalive, bye, fetch, fetch_reply, events
//!   that mix routes or are sent again) goes on the link key `P/link/L/S`.
//!
//! The class comes from peeking at the message ([`peek`]; inside a seal too: the seal is a MAC,
//! not encryption), and sets the QoS: control at `InteractiveHigh`, express; events of `write`
//! routes the same; other events at `Data`; fetches at `DataLow`; congestion control always
//! `Drop` (the session's retransmission covers drops). The end subscribes to the peer's link key
//! and route keys; both callbacks feed one bounded inbox with `try_send` (full: counted in
//! `rx_overflow`, never blocking Zenoh's threads). Until the node's session is open (a router
//! may be missing), sends fail at once (counted) and [`Transport::note`] says what it waits for.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use manyfold_core::mesh::msg::Msg;
use parking_lot::{Mutex, RwLock};
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::{CongestionControl, Priority};
use zenoh::Wait;

use super::{Counters, Transport, TransportStats};

/// Messages received and not yet taken by the link's reader; more are dropped (counted).
pub const INBOX_MAX: usize = 4096;

/// Messages one `recv` hands on at most (the reader then lets the driver run).
const RECV_BATCH_MAX: usize = 256;

/// What a message is, for its key and QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// hello, welcome, refuse, ack, keepalive, bye, or bytes that do not decode.
    Control,
    /// fetch, fetch_reply.
    Fetch,
    /// An `events` message: `single` is its route when every event has the same one; `first`
    /// and `last` are the link sequence numbers it holds; `write` is true when any of its routes
    /// is on the `write` plane.
    Events {
        /// The one route of every event, if there is one.
        single: Option<u32>,
        /// First link sequence number.
        first: u64,
        /// Last link sequence number.
        last: u64,
        /// A `write`-plane route is among them.
        write: bool,
    },
}

/// Peeks at a message (sealed or not) without checking a MAC; `is_write(route)` tells the
/// `write`-plane routes. Never panics.
pub fn peek(message: &[u8], is_write: &dyn Fn(u32) -> bool) -> Peek {
    let inner = match manyfold_core::mesh::auth::split(message) {
        Some(sealed) => sealed.message,
        None => message,
    };
    match Msg::decode(inner) {
        Ok(Msg::Events { events, .. }) => {
            let (mut single, mut mixed, mut write) = (None, false, false);
            let (mut first, mut last) = (0u64, 0u64);
            for (i, ev) in events.iter().enumerate() {
                if i == 0 {
                    first = ev.link_seq;
                    single = Some(ev.route);
                } else if single != Some(ev.route) {
                    mixed = true;
                }
                last = ev.link_seq;
                write |= is_write(ev.route);
            }
            Peek::Events { single: if mixed { None } else { single }, first, last, write }
        }
        Ok(Msg::Fetch { .. }) | Ok(Msg::FetchReply { .. }) => Peek::Fetch,
        _ => Peek::Control,
    }
}

/// True for a hello or welcome (a new session: link sequence numbers start again).
fn opens_session(message: &[u8]) -> bool {
    let inner = manyfold_core::mesh::auth::split(message).map_or(message, |s| s.message);
    matches!(Msg::decode(inner), Ok(Msg::Hello(_)) | Ok(Msg::Welcome(_)))
}

/// What one end of a zenoh link sends on and listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZenohKeys {
    /// This end's link key.
    pub link: String,
    /// The peer's link key (subscribed).
    pub peer_link: String,
    /// This end's route keys, by route index (the outgoing routes).
    pub routes: Vec<(u32, String)>,
    /// The peer's route keys (a `**` subscription).
    pub peer_routes: String,
}

/// Declared once the node's session is open.
struct Declared {
    control: Publisher<'static>,
    data: Publisher<'static>,
    write: Publisher<'static>,
    fetch: Publisher<'static>,
    routes: HashMap<u32, Publisher<'static>>,
    _subscribers: Vec<Subscriber<()>>,
}

/// A node link over Zenoh (one end).
pub struct ZenohTransport {
    keys: ZenohKeys,
    /// Routes on the `write` plane (by index), for QoS.
    write_routes: Vec<bool>,
    /// Where the node meets Zenoh (`tcp/...`), for the status and the note.
    endpoints: String,
    inbox_tx: SyncSender<Vec<u8>>,
    inbox: Mutex<Receiver<Vec<u8>>>,
    declared: RwLock<Option<Declared>>,
    /// The highest link sequence number sent in an `events` message in this session: a message
    /// starting at or below it holds events sent again.
    tx_high: AtomicU64,
    rx_overflow: std::sync::Arc<AtomicU64>,
    counters: std::sync::Arc<Counters>,
}

impl ZenohTransport {
    /// One end of a link: `keys` from [`crate::node::zenoh`], `routes` every route's printed
    /// name (manifest order, for the `write` plane), `endpoints` for the status.
    pub fn new(keys: ZenohKeys, routes: &[String], endpoints: String) -> ZenohTransport {
        let (inbox_tx, inbox) = sync_channel(INBOX_MAX);
        ZenohTransport {
            keys,
            write_routes: routes.iter().map(|r| r.split('.').next() == Some("write")).collect(),
            endpoints,
            inbox_tx,
            inbox: Mutex::new(inbox),
            declared: RwLock::new(None),
            tx_high: AtomicU64::new(0),
            rx_overflow: Default::default(),
            counters: Default::default(),
        }
    }

    /// The keys it uses.
    pub fn keys(&self) -> &ZenohKeys {
        &self.keys
    }

    /// True once the session is open and the keys declared.
    pub fn attached(&self) -> bool {
        self.declared.read().is_some()
    }

    /// Declares the publishers and subscribers on the node's open `session`.
    pub fn attach(&self, session: &zenoh::Session) {
        let publisher = |key: &str, priority: Priority, express: bool| {
            session.declare_publisher(key.to_string()).priority(priority).congestion_control(CongestionControl::Drop).express(express).wait()
        };
        let subscriber = |key: &str| {
            let (tx, overflow) = (self.inbox_tx.clone(), self.rx_overflow.clone());
            session
                .declare_subscriber(key.to_string())
                .callback(move |sample| {
                    let bytes = sample.payload().to_bytes().into_owned();
                    // Full: dropped and counted (the session's retransmission recovers it).
                    if let Err(std::sync::mpsc::TrySendError::Full(_)) = tx.try_send(bytes) {
                        overflow.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .wait()
        };
        let k = &self.keys;
        let built = (|| -> zenoh::Result<Declared> {
            let mut routes = HashMap::new();
            for (r, key) in &k.routes {
                let write = self.write_routes.get(*r as usize).copied().unwrap_or(false);
                let p = if write { publisher(key, Priority::InteractiveHigh, true)? } else { publisher(key, Priority::Data, false)? };
                routes.insert(*r, p);
            }
            Ok(Declared {
                control: publisher(&k.link, Priority::InteractiveHigh, true)?,
                data: publisher(&k.link, Priority::Data, false)?,
                write: publisher(&k.link, Priority::InteractiveHigh, true)?,
                fetch: publisher(&k.link, Priority::DataLow, false)?,
                routes,
                _subscribers: vec![subscriber(&k.peer_link)?, subscriber(&k.peer_routes)?],
            })
        })();
        if let Ok(d) = built {
            *self.declared.write() = Some(d);
            Counters::add(&self.counters.connects, 1);
        }
    }

    /// Undeclares everything (the node is closing its session).
    pub fn detach(&self) {
        *self.declared.write() = None;
    }

    /// The publisher for `message`.
    fn choose<'d>(&self, d: &'d Declared, message: &[u8]) -> &'d Publisher<'static> {
        let is_write = |r: u32| self.write_routes.get(r as usize).copied().unwrap_or(false);
        match peek(message, &is_write) {
            Peek::Control => {
                if opens_session(message) {
                    self.tx_high.store(0, Ordering::Relaxed);
                }
                &d.control
            }
            Peek::Fetch => &d.fetch,
            Peek::Events { single, first, last, write } => {
                let high = self.tx_high.fetch_max(last, Ordering::Relaxed);
                let again = first <= high;
                match single.and_then(|r| d.routes.get(&r)) {
                    Some(p) if !again => p,
                    _ if write => &d.write,
                    _ => &d.data,
                }
            }
        }
    }
}

impl Transport for ZenohTransport {
    fn send(&self, message: &[u8]) -> io::Result<()> {
        let declared = self.declared.read();
        let Some(d) = declared.as_ref() else {
            Counters::add(&self.counters.send_errors, 1);
            return Err(io::Error::new(io::ErrorKind::NotConnected, "the Zenoh session is not open yet"));
        };
        let publisher = self.choose(d, message);
        match publisher.put(message.to_vec()).wait() {
            Ok(()) => {
                Counters::add(&self.counters.sent, 1);
                Ok(())
            }
            Err(e) => {
                Counters::add(&self.counters.send_errors, 1);
                Err(io::Error::other(e.to_string()))
            }
        }
    }

    fn recv(&self, timeout: Duration, on: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let inbox = self.inbox.lock();
        let first = match inbox.recv_timeout(timeout) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Ok(0),
            Err(RecvTimeoutError::Disconnected) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the Zenoh inbox closed")),
        };
        let mut count = 0;
        let mut next = Some(first);
        // Bounded: takes what is queued now, at most RECV_BATCH_MAX messages per call; the
        // rest stays in the inbox for the next call (never taken and then dropped).
        while let Some(m) = next.take() {
            Counters::add(&self.counters.received, 1);
            on(&m);
            count += 1;
            if count < RECV_BATCH_MAX {
                next = inbox.try_recv().ok();
            }
        }
        Ok(count)
    }

    fn kind(&self) -> &'static str {
        "zenoh"
    }

    fn peer(&self) -> Option<SocketAddr> {
        None
    }

    fn peer_label(&self) -> Option<String> {
        Some(format!("{} key {}", self.endpoints, self.keys.link))
    }

    fn note(&self) -> Option<String> {
        if self.attached() { None } else { Some(format!("waiting for the Zenoh router at {}", self.endpoints)) }
    }

    fn stats(&self) -> TransportStats {
        let mut s = self.counters.snapshot();
        s.rx_overflow = self.rx_overflow.load(Ordering::Relaxed);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manyfold_core::mesh::msg::{write_entry, write_event, write_events_head, Writer};
    use manyfold_core::mesh::{EventOut, PayloadOut};

    fn events(routes: &[u32], base: u64) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        write_events_head(&mut w, 7, base);
        for &route in routes {
            let mut slot = [0u8; 256];
            let mut ew = Writer::new(&mut slot);
            write_event(&mut ew, &EventOut { route, seq: 1, time_us: 5, domain: 0, taints: 0, parents: &[], payload: PayloadOut::Inline(&[1, 2, 3]) });
            let n = ew.len();
            write_entry(&mut w, 0, &slot[..n]);
        }
        let n = w.done().unwrap();
        buf[..n].to_vec()
    }

    /// A single-route events message names its route and link sequence numbers; a mixed one
    /// names none; write-plane routes are noticed.
    #[test]
    fn peek_tells_single_route_and_mixed_events() {
        let no = |_: u32| false;
        assert_eq!(peek(&events(&[3, 3, 3], 10), &no), Peek::Events { single: Some(3), first: 11, last: 13, write: false });
        assert_eq!(peek(&events(&[3, 4], 0), &no), Peek::Events { single: None, first: 1, last: 2, write: false });
        let write = |r: u32| r == 4;
        assert_eq!(peek(&events(&[3, 4], 0), &write), Peek::Events { single: None, first: 1, last: 2, write: true });
    }

    /// Control messages and bytes that do not decode go on the link key at control QoS.
    #[test]
    fn peek_tells_control() {
        let no = |_: u32| false;
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        let n = Msg::Keepalive { session: 9 }.encode(&mut w).unwrap();
        assert_eq!(peek(&buf[..n], &no), Peek::Control);
        let mut w = Writer::new(&mut buf);
        let n = Msg::Fetch { session: 9, route: 1, seq: 2, offset: 0 }.encode(&mut w).unwrap();
        assert_eq!(peek(&buf[..n], &no), Peek::Fetch);
        assert_eq!(peek(&[], &no), Peek::Control);
        assert_eq!(peek(&[0xff, 0x00, 0x01], &no), Peek::Control);
    }

    /// A sealed message is peeked through its seal (a MAC, not encryption).
    #[test]
    fn peek_sees_inside_a_seal() {
        let no = |_: u32| false;
        let plain = events(&[5, 5], 0);
        let at = manyfold_core::mesh::auth::MESSAGE_AT;
        let mut out = vec![0u8; plain.len() + 64];
        out[at..at + plain.len()].copy_from_slice(&plain);
        let n = manyfold_core::mesh::auth::seal(&[7u8; 32], 1, 3, &mut out, plain.len()).unwrap();
        assert_ne!(&out[..n], &plain[..]);
        assert_eq!(peek(&out[..n], &no), Peek::Events { single: Some(5), first: 1, last: 2, write: false });
    }
}
