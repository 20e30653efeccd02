//! Discovery: which other nodes exist, from three sources.
//!
//! - **Configured** peers (`--peer HOST:PORT`, another node's admin endpoint): always in the
//!   table, never aged out.
//! - **Gossip**: every [`DiscoveryOptions::gossip_ms`] a thread asks each known peer's admin
//!   endpoint `{"q": "peers", "from": ME}` (connect and read within [`DIAL_TIMEOUT`], at most
//!   [`GOSSIP_ASKS_MAX`] peers a round, in parallel, configured first, then the ones heard of
//!   longest ago).
//!   The answer refreshes that peer and lists the peers it knows with their age; `from` tells
//!   the asked node about the asker, so a configured relation is known at both ends.
//! - The **beacon** (opt-in, `--beacon`): a small JSON datagram ([`Beacon`]) sent to Manyfold's
//!   own IPv4 multicast group ([`BEACON_GROUP`]:[`BEACON_PORT`]) every [`BEACON_PERIOD`], with
//!   TTL 1 (the local network only); the node listens on the group and adds what it hears.
//!
//! The [`PeerTable`] is keyed by admin address and bounded: configured peers plus at most
//! [`PEERS_MAX`] learned ones. When it is full a newly learned address is not added (counted in
//! `dropped`); entries age out after [`PEER_EXPIRE`] without news, which makes room. A peer's
//! `heard` time is when someone last heard from it first hand: gossip carries each entry's age,
//! so a dead node is not kept alive by peers repeating it to each other.
//!
//! Nodes of another manifest are listed, with their `manifest_id`, never refused: the listing
//! is for the operator, who sees the difference (`manyfold nodes` marks it).
//!
//! Only real addresses are advertised: a node whose admin endpoint or listening address is a
//! wildcard (`0.0.0.0`, `::`) needs `--advertise HOST` to take part ([`check`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value as J};

use super::{NodeError, NodeShared};

/// Manyfold's beacon group: administratively scoped (239.255.0.0/16), `m`, `f` in the last two
/// bytes. Not Zenoh's (224.0.0.224:7446) nor anything IANA assigns.
pub const BEACON_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 109, 102);
/// Manyfold's beacon port (unassigned by IANA; not Zenoh's 7446/7447).
pub const BEACON_PORT: u16 = 7477;
/// A beacon is at most this long; longer datagrams are ignored.
pub const BEACON_BYTES_MAX: usize = 512;
/// The beacon's `magic` field.
pub const BEACON_MAGIC: &str = "manyfold-beacon";
/// The beacon's `v` field (this layout).
pub const BEACON_VERSION: u64 = 1;
/// How often a node sends its beacon.
pub const BEACON_PERIOD: Duration = Duration::from_secs(1);
/// Learned peers kept at most (configured peers come on top).
pub const PEERS_MAX: usize = 256;
/// A learned peer not heard of first hand for this long is dropped.
pub const PEER_EXPIRE: Duration = Duration::from_secs(15);
/// The gossip interval by default.
pub const GOSSIP_MS_DEFAULT: u32 = 2000;
/// Connect and read timeout of one gossip ask.
pub const DIAL_TIMEOUT: Duration = Duration::from_millis(300);
/// Peers asked per gossip round at most.
pub const GOSSIP_ASKS_MAX: usize = 16;
/// Longest `peers` answer read.
const ANSWER_BYTES_MAX: u64 = 1 << 20;

/// How a node takes part in discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// Configured peers: other nodes' admin endpoints.
    pub peers: Vec<SocketAddr>,
    /// The host peers reach this node at, replacing the bound address's (needed with a wildcard
    /// bind).
    pub advertise: Option<IpAddr>,
    /// Send and listen for the beacon.
    pub beacon: bool,
    /// The beacon's group and port.
    pub beacon_group: SocketAddrV4,
    /// The interface (its IPv4 address) the beacon is sent and heard on; unspecified: the
    /// system's choice (the route to the group).
    pub beacon_interface: Ipv4Addr,
    /// Gossip interval.
    pub gossip_ms: u32,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            peers: Vec::new(),
            advertise: None,
            beacon: false,
            beacon_group: SocketAddrV4::new(BEACON_GROUP, BEACON_PORT),
            beacon_interface: Ipv4Addr::UNSPECIFIED,
            gossip_ms: GOSSIP_MS_DEFAULT,
        }
    }
}

impl DiscoveryOptions {
    /// True when the node asks peers or sends beacons (and so advertises itself).
    pub fn active(&self) -> bool {
        self.beacon || !self.peers.is_empty()
    }
}

/// Refuses, before anything is bound, options that would advertise an address no peer can dial.
pub fn check(options: &DiscoveryOptions, listen: SocketAddr, admin: Option<SocketAddr>) -> Result<(), NodeError> {
    if let Some(a) = options.advertise {
        if a.is_unspecified() || a.is_multicast() {
            return Err(NodeError(format!("--advertise {a} is not an address peers can dial; give an address of this machine")));
        }
    }
    if options.beacon && admin.is_none() {
        return Err(NodeError("--beacon needs --admin: the beacon advertises the admin endpoint".into()));
    }
    if !options.beacon_group.ip().is_multicast() {
        return Err(NodeError(format!("--beacon-group {} is not an IPv4 multicast group (224.0.0.0/4)", options.beacon_group)));
    }
    if !options.active() || options.advertise.is_some() {
        return Ok(());
    }
    for (what, addr) in [("the admin endpoint", admin), ("the listening address", Some(listen))] {
        if let Some(a) = addr.filter(|a| a.ip().is_unspecified()) {
            return Err(NodeError(format!(
                "{what} is bound to the wildcard {a}, which no peer can dial; give --advertise HOST (an address of this machine peers reach) to use --peer or --beacon"
            )));
        }
    }
    Ok(())
}

/// The host of `--advertise`: an IP address (IPv4 or IPv6, as `::1`) or a name resolved now.
/// The error ends a sentence that starts with the option's name.
pub fn advertise_host(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(ip);
    }
    super::resolve(&format!("{text}:0")).map(|a| a.ip()).map_err(|_| format!("takes a host (an address of this machine), got {text:?}"))
}

/// The address advertised for a bound one: the `--advertise` host with the bound port, else the
/// bound address itself unless it is a wildcard (then none).
pub fn advertised(bound: SocketAddr, advertise: Option<IpAddr>) -> Option<SocketAddr> {
    match advertise {
        Some(ip) => Some(SocketAddr::new(ip, bound.port())),
        None if bound.ip().is_unspecified() || bound.port() == 0 => None,
        None => Some(bound),
    }
}

/// A dialable address: not a wildcard, not multicast, not port 0.
fn dialable(a: &SocketAddr) -> bool {
    !a.ip().is_unspecified() && !a.ip().is_multicast() && a.port() != 0
}

/// How a peer became known; a more direct source replaces a less direct one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Listed by another node (or asked us).
    Gossip,
    /// Heard on the beacon group.
    Beacon,
    /// Given by `--peer`.
    Configured,
}

impl Source {
    /// `configured`, `gossip` or `beacon`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Gossip => "gossip",
            Source::Beacon => "beacon",
            Source::Configured => "configured",
        }
    }
}

/// What is known of a node besides its admin address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerInfo {
    /// Name, id, incarnation, manifest id (hex), listening address, hosted partitions.
    pub name: Option<String>,
    /// Node id.
    pub id: Option<u16>,
    /// Incarnation.
    pub incarnation: Option<u64>,
    /// Manifest id (hex).
    pub manifest_id: Option<String>,
    /// Where its mesh links listen.
    pub listen: Option<String>,
    /// Hosted partitions.
    pub partitions: Vec<String>,
}

impl PeerInfo {
    /// The fields of a node's self description (`peers` answer, `from`, a listed peer), or
    /// None when `node` is missing. Never panics on odd JSON.
    pub fn from_json(v: &J) -> Option<PeerInfo> {
        let name = v.get("node").or_else(|| v.get("name")).and_then(J::as_str)?.to_string();
        let text = |k: &str| v.get(k).and_then(J::as_str).map(str::to_string);
        Some(PeerInfo {
            name: Some(name),
            id: v.get("id").and_then(J::as_u64).and_then(|i| u16::try_from(i).ok()),
            incarnation: v.get("incarnation").and_then(J::as_u64),
            manifest_id: text("manifest_id"),
            listen: text("listen"),
            partitions: v
                .get("partitions")
                .and_then(J::as_array)
                .map(|ps| ps.iter().filter_map(J::as_str).take(PEERS_MAX).map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    info: PeerInfo,
    source: Source,
    /// When it was last heard of first hand (None: a configured peer never heard).
    heard: Option<Instant>,
}

/// The peers a node knows, by admin address: configured ones plus at most `capacity` learned.
#[derive(Debug, Clone)]
pub struct PeerTable {
    entries: BTreeMap<SocketAddr, Entry>,
    learned: usize,
    capacity: usize,
    expire: Duration,
    /// Times a learned address was not added because the table was full (one address told
    /// again is counted again).
    pub dropped: u64,
}

impl PeerTable {
    /// A table holding `configured` (never aged out) and room for `capacity` learned peers.
    pub fn new(configured: &[SocketAddr], capacity: usize, expire: Duration) -> PeerTable {
        let entries = configured.iter().map(|a| (*a, Entry { info: PeerInfo::default(), source: Source::Configured, heard: None })).collect();
        PeerTable { entries, learned: 0, capacity, expire, dropped: 0 }
    }

    /// Peers in the table (configured and learned).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table holds no peer.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records news of the peer at `admin`, heard first hand at `heard`: its info (when given)
    /// replaces what is known when it is newer. Returns false when `admin` is new and the table
    /// is full (counted in `dropped`), or when the news is already older than the expiry.
    pub fn merge(&mut self, admin: SocketAddr, info: Option<PeerInfo>, source: Source, heard: Instant, now: Instant) -> bool {
        if !dialable(&admin) || (source != Source::Configured && now.saturating_duration_since(heard) >= self.expire) {
            return false;
        }
        if let Some(e) = self.entries.get_mut(&admin) {
            e.source = e.source.max(source);
            if e.heard.is_none_or(|h| heard > h) {
                e.heard = Some(heard);
                if let Some(i) = info {
                    e.info = i;
                }
            }
            return true;
        }
        if self.learned >= self.capacity {
            self.dropped += 1;
            return false;
        }
        self.learned += 1;
        self.entries.insert(admin, Entry { info: info.unwrap_or_default(), source, heard: Some(heard) });
        true
    }

    /// Drops learned peers not heard of for the expiry.
    pub fn expire(&mut self, now: Instant) {
        let expire = self.expire;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.source == Source::Configured || e.heard.is_some_and(|h| now.saturating_duration_since(h) < expire));
        self.learned -= before - self.entries.len();
    }

    /// Whom a gossip round asks: configured peers first, then learned ones heard of longest ago;
    /// at most `max`.
    pub fn to_ask(&self, max: usize) -> Vec<SocketAddr> {
        let mut configured: Vec<SocketAddr> = self.entries.iter().filter(|(_, e)| e.source == Source::Configured).map(|(a, _)| *a).collect();
        let mut learned: Vec<(Option<Instant>, SocketAddr)> = self.entries.iter().filter(|(_, e)| e.source != Source::Configured).map(|(a, e)| (e.heard, *a)).collect();
        learned.sort();
        configured.extend(learned.into_iter().map(|(_, a)| a));
        configured.truncate(max);
        configured
    }

    /// The `peers` list of the admin answer.
    pub fn to_json(&self, now: Instant) -> Vec<J> {
        self.entries
            .iter()
            .map(|(admin, e)| {
                json!({
                    "name": e.info.name,
                    "id": e.info.id,
                    "admin": admin.to_string(),
                    "listen": e.info.listen,
                    "manifest_id": e.info.manifest_id,
                    "partitions": e.info.partitions,
                    "source": e.source.name(),
                    "age_ms": e.heard.map(|h| u64::try_from(now.saturating_duration_since(h).as_millis()).unwrap_or(u64::MAX)),
                })
            })
            .collect()
    }
}

/// One beacon datagram: a JSON object of at most [`BEACON_BYTES_MAX`] bytes,
/// `{"magic": "manyfold-beacon", "v": 1, "node", "id", "incarnation", "manifest_id", "admin",
/// "listen"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's name (at most 32 bytes), id and incarnation.
    pub node: String,
    /// Node id.
    pub id: u16,
    /// Incarnation.
    pub incarnation: u64,
    /// Manifest id: 64 hex digits.
    pub manifest_id: String,
    /// Its admin endpoint (a dialable address).
    pub admin: SocketAddr,
    /// Its mesh listening address, if advertised.
    pub listen: Option<SocketAddr>,
}

impl Beacon {
    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        json!({
            "magic": BEACON_MAGIC,
            "v": BEACON_VERSION,
            "node": self.node,
            "id": self.id,
            "incarnation": self.incarnation,
            "manifest_id": self.manifest_id,
            "admin": self.admin.to_string(),
            "listen": self.listen.map(|l| l.to_string()),
        })
        .to_string()
        .into_bytes()
    }

    /// Parses a datagram; any other bytes give the reason as a sentence (never a panic).
    pub fn parse(bytes: &[u8]) -> Result<Beacon, String> {
        if bytes.len() > BEACON_BYTES_MAX {
            return Err(format!("a beacon is at most {BEACON_BYTES_MAX} bytes, this one {}", bytes.len()));
        }
        let v: J = serde_json::from_slice(bytes).map_err(|e| format!("not a JSON beacon: {e}"))?;
        if v.get("magic").and_then(J::as_str) != Some(BEACON_MAGIC) {
            return Err("not a Manyfold beacon (no magic)".into());
        }
        if v.get("v").and_then(J::as_u64) != Some(BEACON_VERSION) {
            return Err(format!("beacon version {} is not {BEACON_VERSION}", v.get("v").unwrap_or(&J::Null)));
        }
        let node = v.get("node").and_then(J::as_str).filter(|n| !n.is_empty() && n.len() <= manyfold_core::mesh::NAME_MAX).ok_or("a beacon's node is a name of 1 to 32 bytes")?;
        let id = v.get("id").and_then(J::as_u64).and_then(|i| u16::try_from(i).ok()).ok_or("a beacon's id is a number from 0 to 65535")?;
        let incarnation = v.get("incarnation").and_then(J::as_u64).ok_or("a beacon's incarnation is a number")?;
        let manifest_id = v
            .get("manifest_id")
            .and_then(J::as_str)
            .filter(|m| m.len() == 64 && m.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or("a beacon's manifest_id is 64 hex digits")?;
        let address = |k: &str| v.get(k).and_then(J::as_str).and_then(|t| t.parse::<SocketAddr>().ok()).filter(dialable);
        let admin = address("admin").ok_or("a beacon's admin is a dialable IP:PORT")?;
        let listen = address("listen");
        Ok(Beacon { node: node.to_string(), id, incarnation, manifest_id: manifest_id.to_string(), admin, listen })
    }
}

/// A node's discovery state.
pub(crate) struct Discovery {
    pub(crate) options: DiscoveryOptions,
    /// This node's self description (`node`, `id`, `incarnation`, `manifest_id`, `admin`,
    /// `listen`, `partitions`).
    pub(crate) me: J,
    admin: Option<SocketAddr>,
    pub(crate) table: Mutex<PeerTable>,
    /// Beacons sent and heard (valid ones), datagrams ignored.
    pub(crate) beacons_sent: AtomicU64,
    pub(crate) beacons_heard: AtomicU64,
    pub(crate) beacons_ignored: AtomicU64,
}

impl Discovery {
    pub(crate) fn new(options: DiscoveryOptions, me: J, admin: Option<SocketAddr>) -> Discovery {
        let table = Mutex::new(PeerTable::new(&options.peers, PEERS_MAX, PEER_EXPIRE));
        Discovery { options, me, admin, table, beacons_sent: AtomicU64::new(0), beacons_heard: AtomicU64::new(0), beacons_ignored: AtomicU64::new(0) }
    }

    /// True when `admin` or the identity is this node's own.
    fn is_me(&self, admin: &SocketAddr, info: Option<&PeerInfo>) -> bool {
        if self.admin == Some(*admin) {
            return true;
        }
        info.is_some_and(|i| {
            i.name.as_deref() == self.me["node"].as_str() && i.id.map(u64::from) == self.me["id"].as_u64() && i.incarnation == self.me["incarnation"].as_u64()
        })
    }

    /// Records news unless it is about this node.
    pub(crate) fn merge(&self, admin: SocketAddr, info: Option<PeerInfo>, source: Source, heard: Instant) {
        if self.is_me(&admin, info.as_ref()) {
            return;
        }
        self.table.lock().merge(admin, info, source, heard, Instant::now());
    }

    /// The admin answer to `{"q": "peers"[, "from": {...}]}`.
    pub(crate) fn answer(&self, req: &J) -> J {
        if let Some(from) = req.get("from") {
            let admin = from.get("admin").and_then(J::as_str).and_then(|t| t.parse::<SocketAddr>().ok());
            if let (Some(admin), Some(info)) = (admin, PeerInfo::from_json(from)) {
                self.merge(admin, Some(info), Source::Gossip, Instant::now());
            }
        }
        let now = Instant::now();
        let mut table = self.table.lock();
        table.expire(now);
        let mut out = self.me.clone();
        out["peers"] = J::Array(table.to_json(now));
        out["dropped"] = json!(table.dropped);
        out["beacon"] = json!({
            "on": self.options.beacon,
            "group": self.options.beacon_group.to_string(),
            "sent": self.beacons_sent.load(Ordering::Relaxed),
            "heard": self.beacons_heard.load(Ordering::Relaxed),
            "ignored": self.beacons_ignored.load(Ordering::Relaxed),
        });
        out
    }

    /// Merges one node's `peers` answer, got at `now` from `admin`.
    fn merge_answer(&self, admin: SocketAddr, answer: &J, now: Instant) {
        let Some(info) = PeerInfo::from_json(answer) else { return };
        let source = if self.options.peers.contains(&admin) { Source::Configured } else { Source::Gossip };
        self.merge(admin, Some(info), source, now);
        let Some(list) = answer.get("peers").and_then(J::as_array) else { return };
        for p in list.iter().take(PEERS_MAX + self.options.peers.len()) {
            let Some(peer_admin) = p.get("admin").and_then(J::as_str).and_then(|t| t.parse::<SocketAddr>().ok()) else { continue };
            // Only what someone heard first hand, with its age: never an entry nobody heard.
            let Some(age_ms) = p.get("age_ms").and_then(J::as_u64) else { continue };
            let Some(heard) = now.checked_sub(Duration::from_millis(age_ms)) else { continue };
            let info = PeerInfo::from_json(p);
            if info.is_some() {
                self.merge(peer_admin, info, Source::Gossip, heard);
            }
        }
    }
}

/// Asks one peer's admin endpoint for its peers: the connection within [`DIAL_TIMEOUT`], the
/// whole answer line within another (a peer that trickles bytes is given up on).
fn ask_peers(admin: SocketAddr, me: &J) -> Option<J> {
    use std::io::Read;
    let mut stream = TcpStream::connect_timeout(&admin, DIAL_TIMEOUT).ok()?;
    stream.set_write_timeout(Some(DIAL_TIMEOUT)).ok()?;
    let mut line = json!({ "q": "peers", "from": me }).to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).ok()?;
    let deadline = Instant::now() + DIAL_TIMEOUT;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    // Bounded by the deadline and by ANSWER_BYTES_MAX.
    while !answer.contains(&b'\n') {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        stream.set_read_timeout(Some(left)).ok()?;
        let n = stream.read(&mut buf).ok().filter(|&n| n > 0)?;
        answer.extend_from_slice(&buf[..n]);
        if answer.len() as u64 > ANSWER_BYTES_MAX {
            return None;
        }
    }
    let end = answer.iter().position(|&b| b == b'\n').unwrap_or(answer.len());
    let v: J = serde_json::from_slice(&answer[..end]).ok()?;
    v.get("error").is_none().then_some(v)
}

/// The gossip thread: a round every `gossip_ms` until the node stops.
pub(crate) fn run_gossip(node: Arc<NodeShared>) {
    let d = &node.discovery;
    let interval = Duration::from_millis(u64::from(d.options.gossip_ms.max(50)));
    let mut next = Instant::now();
    // Bounded by the stop flag: checked every 50 ms between rounds; a round asks at most
    // GOSSIP_ASKS_MAX peers in parallel, each within DIAL_TIMEOUT twice.
    while !node.stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50).min(next - Instant::now()));
            continue;
        }
        next = Instant::now() + interval;
        let asks = {
            let mut t = d.table.lock();
            t.expire(Instant::now());
            t.to_ask(GOSSIP_ASKS_MAX)
        };
        ask_round(d, &asks);
    }
}

/// Asks `asks` (at most [`GOSSIP_ASKS_MAX`]) in parallel, a scoped thread each, so a round takes
/// one dial's time however many peers are silent; a thread that cannot start asks inline.
fn ask_round(d: &Discovery, asks: &[SocketAddr]) {
    let ask = move |admin: SocketAddr| {
        if let Some(answer) = ask_peers(admin, &d.me) {
            d.merge_answer(admin, &answer, Instant::now());
        }
    };
    std::thread::scope(|s| {
        for &admin in asks.iter().take(GOSSIP_ASKS_MAX) {
            if std::thread::Builder::new().name("gossip-ask".into()).spawn_scoped(s, move || ask(admin)).is_err() {
                ask(admin);
            }
        }
    });
}

/// Opens the beacon socket: bound to the group's port (shared with the other nodes of this
/// host), joined to the group on the interface, TTL 1, loopback on (nodes of one host hear each
/// other).
pub(crate) fn open_beacon(options: &DiscoveryOptions) -> Result<UdpSocket, NodeError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let group = options.beacon_group;
    let fail = |what: &str, e: std::io::Error| {
        NodeError(format!("cannot {what} the beacon group {group} on interface {}: {e}; give --beacon-interface ADDR (an IPv4 address of the interface) or leave --beacon off", options.beacon_interface))
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| fail("open a socket for", e))?;
    s.set_reuse_address(true).map_err(|e| fail("share", e))?;
    #[cfg(unix)]
    s.set_reuse_port(true).map_err(|e| fail("share", e))?;
    let bind = SocketAddr::V4(SocketAddrV4::new(*group.ip(), group.port()));
    s.bind(&bind.into()).map_err(|e| fail("bind", e))?;
    s.join_multicast_v4(group.ip(), &options.beacon_interface).map_err(|e| fail("join", e))?;
    if !options.beacon_interface.is_unspecified() {
        s.set_multicast_if_v4(&options.beacon_interface).map_err(|e| fail("send to", e))?;
    }
    s.set_multicast_loop_v4(true).map_err(|e| fail("loop back", e))?;
    s.set_multicast_ttl_v4(1).map_err(|e| fail("scope", e))?;
    s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| fail("read", e))?;
    Ok(s.into())
}

/// The beacon thread: sends this node's beacon every [`BEACON_PERIOD`] and adds the beacons it
/// hears, until the node stops.
pub(crate) fn run_beacon(node: Arc<NodeShared>, socket: UdpSocket, beacon: Beacon) {
    let d = &node.discovery;
    let bytes = beacon.encode();
    let to = SocketAddr::V4(d.options.beacon_group);
    let mut next = Instant::now();
    let mut buf = [0u8; BEACON_BYTES_MAX + 1];
    // Bounded by the stop flag: each pass waits at most the read timeout (100 ms).
    while !node.stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next = Instant::now() + BEACON_PERIOD;
            if bytes.len() <= BEACON_BYTES_MAX && socket.send_to(&bytes, to).is_ok() {
                d.beacons_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Ok((n, _from)) = socket.recv_from(&mut buf) else { continue };
        match Beacon::parse(&buf[..n]) {
            Ok(b) => {
                if b.node == beacon.node && b.id == beacon.id && b.incarnation == beacon.incarnation {
                    continue;
                }
                d.beacons_heard.fetch_add(1, Ordering::Relaxed);
                let info = PeerInfo {
                    name: Some(b.node),
                    id: Some(b.id),
                    incarnation: Some(b.incarnation),
                    manifest_id: Some(b.manifest_id),
                    listen: b.listen.map(|l| l.to_string()),
                    partitions: Vec::new(),
                };
                // A beacon carries no partitions: keep the ones a gossip answer told.
                let known = d.table.lock().entries.get(&b.admin).map(|e| e.info.partitions.clone()).unwrap_or_default();
                d.merge(b.admin, Some(PeerInfo { partitions: known, ..info }), Source::Beacon, Instant::now());
            }
            Err(_) => {
                d.beacons_ignored.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn beacon() -> Beacon {
        Beacon { node: "a".into(), id: 1, incarnation: 7, manifest_id: "ab".repeat(32), admin: addr(9000), listen: Some(addr(9001)) }
    }

    #[test]
    fn a_beacon_round_trips_and_fits_its_bound_even_at_the_longest() {
        let b = beacon();
        assert_eq!(Beacon::parse(&b.encode()), Ok(b));
        let longest = Beacon {
            node: "n".repeat(manyfold_core::mesh::NAME_MAX),
            id: u16::MAX,
            incarnation: u64::MAX,
            manifest_id: "f".repeat(64),
            admin: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".parse().unwrap(),
            listen: Some("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".parse().unwrap()),
        };
        assert!(longest.encode().len() <= BEACON_BYTES_MAX, "{}", longest.encode().len());
    }

    #[test]
    fn a_beacon_with_a_wrong_field_is_refused_with_a_reason() {
        let good: J = serde_json::from_slice(&beacon().encode()).unwrap();
        for (field, bad) in [
            ("magic", json!("zenoh")),
            ("v", json!(2)),
            ("node", json!("")),
            ("node", json!("x".repeat(33))),
            ("id", json!(70000)),
            ("incarnation", json!(-1)),
            ("manifest_id", json!("xyz")),
            ("admin", json!("0.0.0.0:9000")),
            ("admin", json!("127.0.0.1:0")),
            ("admin", json!("239.255.109.102:7477")),
            ("admin", json!("localhost:9000")),
        ] {
            let mut v = good.clone();
            v[field] = bad.clone();
            assert!(Beacon::parse(v.to_string().as_bytes()).is_err(), "{field} = {bad} was taken");
        }
        assert!(Beacon::parse(&vec![b' '; BEACON_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn garbage_never_panics_the_beacon_parser() {
        let good = beacon().encode();
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..20_000 {
            let mut bytes = if rng.bool() { good.clone() } else { (0..rng.usize(0..600)).map(|_| rng.u8(..)).collect() };
            for _ in 0..rng.usize(0..8) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.usize(..bytes.len());
                match rng.u8(0..3) {
                    0 => bytes[i] = rng.u8(..),
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.truncate(i),
                }
            }
            let _ = Beacon::parse(&bytes);
        }
    }

    #[test]
    fn the_table_keeps_at_most_its_capacity_of_learned_peers_and_counts_the_rest() {
        let now = Instant::now();
        let mut t = PeerTable::new(&[addr(1), addr(2)], 3, Duration::from_secs(10));
        for port in 10..20 {
            t.merge(addr(port), None, Source::Gossip, now, now);
        }
        assert_eq!(t.len(), 2 + 3);
        assert_eq!(t.dropped, 7);
        // News of a known peer still gets in when full; a configured peer stays configured.
        assert!(t.merge(addr(10), None, Source::Beacon, now, now));
        assert!(t.merge(addr(1), None, Source::Gossip, now, now));
        let listed = t.to_json(now);
        let source = |port: u16| listed.iter().find(|p| p["admin"] == addr(port).to_string()).unwrap()["source"].clone();
        assert_eq!(source(10), json!("beacon"));
        assert_eq!(source(1), json!("configured"));
    }

    #[test]
    fn learned_peers_age_out_and_make_room_but_configured_ones_stay() {
        let start = Instant::now();
        let mut t = PeerTable::new(&[addr(1)], 2, Duration::from_secs(10));
        assert!(t.merge(addr(10), None, Source::Gossip, start, start));
        assert!(t.merge(addr(11), None, Source::Gossip, start + Duration::from_secs(5), start + Duration::from_secs(5)));
        assert!(!t.merge(addr(12), None, Source::Gossip, start + Duration::from_secs(5), start + Duration::from_secs(5)));
        t.expire(start + Duration::from_secs(11));
        assert_eq!(t.len(), 2, "10 aged out, 11 and the configured peer stay");
        assert!(t.merge(addr(12), None, Source::Gossip, start + Duration::from_secs(11), start + Duration::from_secs(11)));
        t.expire(start + Duration::from_secs(60));
        assert_eq!(t.to_ask(8), vec![addr(1)]);
    }

    #[test]
    fn gossip_news_older_than_what_is_known_or_than_the_expiry_changes_nothing() {
        let now = Instant::now() + Duration::from_secs(100);
        let mut t = PeerTable::new(&[], 8, Duration::from_secs(10));
        let named = |n: &str| Some(PeerInfo { name: Some(n.into()), ..PeerInfo::default() });
        assert!(t.merge(addr(10), named("new"), Source::Gossip, now - Duration::from_secs(1), now));
        t.merge(addr(10), named("old"), Source::Gossip, now - Duration::from_secs(5), now);
        assert_eq!(t.to_json(now)[0]["name"], json!("new"));
        assert_eq!(t.to_json(now)[0]["age_ms"], json!(1000));
        assert!(!t.merge(addr(11), named("stale"), Source::Gossip, now - Duration::from_secs(30), now));
        assert!(!t.merge("0.0.0.0:5".parse().unwrap(), None, Source::Beacon, now, now));
        assert_eq!(t.len(), 1);
    }

    /// --advertise takes IPv6 literals (bare or bracketed) as well as IPv4 and names; other
    /// text is refused with a sentence.
    #[test]
    fn advertise_takes_ipv6_ipv4_and_names() {
        assert_eq!(advertise_host("::1"), Ok("::1".parse().unwrap()));
        assert_eq!(advertise_host("[fe80::2]"), Ok("fe80::2".parse().unwrap()));
        assert_eq!(advertise_host("10.0.0.2"), Ok("10.0.0.2".parse().unwrap()));
        assert!(advertise_host("localhost").is_ok());
        assert!(advertise_host("not a host!").unwrap_err().starts_with("takes a host"));
    }

    #[test]
    fn a_wildcard_bind_without_advertise_is_refused_once_discovery_is_on() {
        let wild: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let off = DiscoveryOptions::default();
        assert!(check(&off, wild, Some(wild)).is_ok(), "no discovery: a wildcard bind is fine");
        let on = DiscoveryOptions { peers: vec![addr(1)], ..DiscoveryOptions::default() };
        let e = check(&on, addr(5), Some(wild)).unwrap_err();
        assert!(e.0.contains("--advertise"), "{e}");
        let advertised_on = DiscoveryOptions { advertise: Some("10.0.0.2".parse().unwrap()), ..on };
        assert!(check(&advertised_on, wild, Some(wild)).is_ok());
        assert_eq!(advertised(wild, advertised_on.advertise), Some("10.0.0.2:7000".parse().unwrap()));
        assert_eq!(advertised(wild, None), None);
    }
}
