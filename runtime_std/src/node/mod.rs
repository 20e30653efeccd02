//! The runtime node: one process hosting some partitions of a manifest on the graph engine,
//! linked to the nodes hosting the others by mesh links over UDP, TCP or Zenoh.
//!
//! # What it does
//! - [`plan`]: reads the manifest (CBOR or JSON) and works out, for each link of a hosted
//!   partition, which routes cross it in which direction, what the link requests, and which
//!   taints the manifest's forward nodes already add.
//! - [`Node::start`] takes a graph already loaded with the hosted partitions
//!   ([`crate::manifest::load`] with the partition filter), subscribes each outgoing route into
//!   its link's bounded [`queue`] (full: dropped, counted, the route's next event over the link
//!   tainted `delivery_dropped`), binds UDP and TCP on the listening address, and runs per link a
//!   reader thread and a driver thread ([`link`]) that runs the mesh session, sends the queued
//!   events in batches and ingests what arrives ([`crate::graph::Graph::ingest`]), adding the
//!   taints of the capabilities the session could not provide (unless the forward node of the
//!   crossing declares them already).
//! - The listening side learns which link a datagram or connection belongs to from the hello
//!   that opens every session.
//! - [`admin`]: the admin endpoint (TCP, JSON lines): status, latest, lineage, publish, stop;
//!   [`query`]: its query plane, checked against the manifest's query exposure.
//! - Stop ([`Node::request_stop`], SIGTERM in the binary): no new events, wait at most
//!   [`link::STOP_WAIT`] for what was sent to be acknowledged, bye, threads joined.
//! - [`codec`]: payloads as CBOR on the wire; [`status`]: what the node shows.
//! - [`discovery`]: configured peers, peer lists exchanged between nodes (admin `peers`), the
//!   opt-in multicast beacon.
//! - [`zenoh`]: zenoh links, the node's liveliness token and admin queryable (its one Zenoh
//!   session, feature `zenoh`).

pub mod admin;
pub mod codec;
pub mod discovery;
pub mod link;
pub mod plan;
pub mod query;
pub mod queue;
pub mod status;
pub mod zenoh;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use manyfold_core::envelope::RouteIdx;
use manyfold_core::mesh::msg::Msg;
use parking_lot::Mutex;

use crate::graph::{EdgePolicy, Graph};
use crate::links::{FaultSpec, Faults, TcpTransport, UdpTransport, TCP_MTU_DEFAULT, UDP_MTU_DEFAULT};
use crate::schema::Schema;
use crate::shared::SharedGraph;

pub use link::{LinkShared, STOP_WAIT};
pub use plan::{LinkPlan, NodePlan, QueryExposure};
pub use query::DeviceHook;
pub use queue::QUEUE_DEPTH_DEFAULT;
pub use status::{LinkStatus, NodeStatus};
pub use discovery::DiscoveryOptions;
pub use zenoh::{ZenohMode, ZenohOptions};

/// How the node reaches the graph it serves: the Rust binary's [`SharedGraph`], or the Python
/// binding's graph (which runs its after-dispatch work too).
pub trait GraphHost: Send + Sync {
    /// Runs `f` with the graph locked, then wakes whoever waits for the graph.
    fn with_graph(&self, f: &mut dyn FnMut(&mut Graph));

    /// [`GraphHost::with_graph`] if the graph is free within `wait`; false (and `f` not run)
    /// otherwise. A link's driver uses it, so that an open waiting for a payload over that same
    /// link (with the graph locked) never waits for the driver.
    fn try_with_graph(&self, wait: Duration, f: &mut dyn FnMut(&mut Graph)) -> bool;
}

impl GraphHost for SharedGraph {
    fn with_graph(&self, f: &mut dyn FnMut(&mut Graph)) {
        let mut g = self.lock();
        f(&mut g);
        drop(g);
        self.notify();
    }

    fn try_with_graph(&self, wait: Duration, f: &mut dyn FnMut(&mut Graph)) -> bool {
        let Some(mut g) = self.try_lock_for(wait) else { return false };
        f(&mut g);
        drop(g);
        self.notify();
        true
    }
}

/// Where to dial a link's peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dial {
    /// `udp://HOST:PORT`.
    Udp(SocketAddr),
    /// `tcp://HOST:PORT`.
    Tcp(SocketAddr),
}

impl Dial {
    /// Parses `udp://HOST:PORT` or `tcp://HOST:PORT`.
    pub fn parse(url: &str) -> Result<Dial, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} is not udp://HOST:PORT or tcp://HOST:PORT"))?;
        match scheme {
            "udp" => Ok(Dial::Udp(resolve(rest)?)),
            "tcp" => Ok(Dial::Tcp(resolve(rest)?)),
            other => Err(format!("{url:?}: unknown transport {other:?}; use udp:// or tcp://")),
        }
    }
}

/// Resolves `HOST:PORT` to its first address.
pub fn resolve(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map_err(|e| format!("{text:?} is not a HOST:PORT address ({e})"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Its name (at most 32 bytes) and id.
    pub name: String,
    /// Node id.
    pub id: u16,
    /// Partitions hosted.
    pub partitions: Vec<String>,
    /// UDP and TCP both bound here (port 0: chosen).
    pub listen: SocketAddr,
    /// Links this node dials; the others of its partitions are accepted from the peer.
    pub dial: Vec<(String, Dial)>,
    /// Pre-shared keys by link.
    pub keys: Vec<(String, [u8; 32])>,
    /// The admin endpoint (port 0: chosen); none when `None`.
    pub admin: Option<SocketAddr>,
    /// Seeded datagram faults on what this node sends over a UDP link (tests, benchmarks).
    pub faults: Vec<(String, FaultSpec)>,
    /// Lease (a keepalive every quarter of it).
    pub lease_ms: u32,
    /// Events queued per link and outgoing route (flow) at most.
    pub queue_depth_max: usize,
    /// Run the graph's scheduler (mailboxes, timers) on a thread of the node. The Python
    /// binding leaves it to the graph's owner.
    pub run_scheduler: bool,
    /// Peers, beacon and the advertised host ([`discovery`]).
    pub discovery: DiscoveryOptions,
    /// The node's Zenoh session (zenoh links, presence, admin queryable); none when `None`.
    pub zenoh: Option<ZenohOptions>,
}

impl NodeOptions {
    /// Options with the defaults: lease 10 s, queue 1024, scheduler on, nothing dialed.
    pub fn new(name: &str, id: u16, partitions: Vec<String>, listen: SocketAddr) -> NodeOptions {
        NodeOptions {
            name: name.to_string(),
            id,
            partitions,
            listen,
            dial: Vec::new(),
            keys: Vec::new(),
            admin: None,
            faults: Vec::new(),
            lease_ms: manyfold_core::mesh::LEASE_MS,
            queue_depth_max: QUEUE_DEPTH_DEFAULT,
            run_scheduler: true,
            discovery: DiscoveryOptions::default(),
            zenoh: None,
        }
    }
}

/// Why a node could not start. The message is one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError(pub String);

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NodeError {}

/// Reads a key file: 32 bytes as 64 hex digits (whitespace around them ignored).
pub fn read_key(path: &std::path::Path) -> Result<[u8; 32], NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError(format!("cannot read the key file {}: {e}", path.display())))?;
    let bad = || NodeError(format!("the key file {} must hold 32 bytes as 64 hex digits", path.display()));
    hash32(text.trim()).ok_or_else(bad)
}

/// Bytes as lowercase hex (ids, digests, byte values in admin JSON).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex text as bytes, or None (an odd length or a character that is not a hex digit).
pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len() / 2).map(|i| text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// 64 hex digits as 32 bytes (a key, a digest), or None.
pub(crate) fn hash32(text: &str) -> Option<[u8; 32]> {
    from_hex(text)?.try_into().ok()
}

/// State every thread of the node reads.
pub(crate) struct NodeShared {
    pub(crate) options: NodeOptions,
    pub(crate) incarnation: u64,
    pub(crate) stop: Arc<AtomicBool>,
    /// Set once every link said bye: the readers and the UDP listener end.
    pub(crate) finished: Arc<AtomicBool>,
    pub(crate) links: Vec<Arc<LinkShared>>,
    pub(crate) graph: Arc<dyn GraphHost>,
    pub(crate) plan: NodePlan,
    pub(crate) route_names: Arc<Vec<String>>,
    pub(crate) route_index: HashMap<String, u32>,
    /// Queries answered and refused.
    pub(crate) queries: query::QueryCounters,
    /// Who asks the devices behind this node (the Python node's), if anyone.
    pub(crate) device_hook: parking_lot::RwLock<Option<Arc<dyn DeviceHook>>>,
    /// Peers: configured, gossiped, heard on the beacon.
    pub(crate) discovery: discovery::Discovery,
    /// The Zenoh side's counters, when the node has Zenoh options.
    pub(crate) zenoh: Option<Arc<zenoh::ZenohState>>,
}

impl NodeShared {
    fn status(&self) -> NodeStatus {
        NodeStatus {
            node: self.options.name.clone(),
            id: self.options.id,
            incarnation: self.incarnation,
            pid: std::process::id(),
            manifest_id: hex(&self.plan.manifest_id),
            partitions: self.options.partitions.clone(),
            links: self.links.iter().map(|l| l.status(&self.route_names)).collect(),
            stopping: self.stop.load(Ordering::Relaxed),
            zenoh: self.zenoh.as_ref().zip(self.options.zenoh.as_ref()).map(|(s, o)| s.to_json(o)),
        }
    }
}

/// A running node.
pub struct Node {
    shared: Arc<NodeShared>,
    drivers: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
}

/// The link a message belongs to, when it is a hello (sealed or not).
fn hello_link(message: &[u8]) -> Option<String> {
    let inner = match manyfold_core::mesh::auth::split(message) {
        Some(sealed) => sealed.message,
        None => message,
    };
    match Msg::decode(inner) {
        Ok(Msg::Hello(h)) => Some(h.link.to_string()),
        _ => None,
    }
}

/// Binds TCP and UDP on the same address (port 0: a port free for both).
fn bind_both(listen: SocketAddr) -> Result<(TcpListener, UdpSocket), NodeError> {
    let in_use = |e: io::Error| NodeError(format!("cannot listen on {listen}: {e}"));
    if listen.port() != 0 {
        let tcp = TcpListener::bind(listen).map_err(in_use)?;
        let udp = UdpSocket::bind(listen).map_err(in_use)?;
        return Ok((tcp, udp));
    }
    // Bounded: a few tries for a port free on both.
    let mut last = None;
    for _ in 0..16 {
        let tcp = TcpListener::bind(listen).map_err(in_use)?;
        let at = tcp.local_addr().map_err(in_use)?;
        match UdpSocket::bind(at) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(e),
        }
    }
    Err(NodeError(format!("cannot find a port on {} free for both UDP and TCP: {}", listen.ip(), last.map_or_else(String::new, |e| e.to_string()))))
}

/// Refuses, in one sentence, what cannot run a zenoh link: a build without Zenoh, no Zenoh
/// options, an address to dial, names that are not key chunks.
fn check_zenoh(plan: &NodePlan, options: &NodeOptions) -> Result<(), NodeError> {
    let on_zenoh: Vec<&LinkPlan> = plan.links.iter().filter(|l| l.transport == "zenoh").collect();
    if on_zenoh.is_empty() && options.zenoh.is_none() {
        return Ok(());
    }
    if !cfg!(feature = "zenoh") {
        return Err(NodeError(zenoh::NOT_BUILT.to_string()));
    }
    for l in &on_zenoh {
        if options.dial.iter().any(|(n, _)| n == &l.name) {
            return Err(NodeError(format!("link {} runs on zenoh and takes no --link address: its ends meet through the Zenoh router", l.name)));
        }
        let Some(z) = &options.zenoh else { return Err(NodeError(zenoh::missing_options(&l.name))) };
        z.check(&l.name).map_err(NodeError)?;
    }
    if let Some(z) = &options.zenoh {
        if !zenoh::prefix_safe(&z.prefix) {
            return Err(NodeError(format!("the Zenoh prefix {:?} must be chunks of letters, digits, '_' or '-' separated by '/'", z.prefix)));
        }
        if z.connect.is_empty() && z.listen.is_empty() {
            return Err(NodeError("the Zenoh session needs --zenoh-connect ENDPOINT (a Zenoh router, e.g. tcp/127.0.0.1:7447) or --zenoh-listen ENDPOINT".into()));
        }
        if !zenoh::key_safe(&options.name) {
            return Err(NodeError(format!("the node name {:?} must not contain / * $ ? # on Zenoh (it is a key chunk)", options.name)));
        }
    }
    Ok(())
}

/// The transport of one end of a zenoh link.
#[cfg(feature = "zenoh")]
fn zenoh_transport(lp: &LinkPlan, z: &ZenohOptions, plan: &NodePlan, route_names: &[String]) -> crate::links::ZenohTransport {
    let (p, mid) = (&z.prefix, zenoh::mid16(&plan.manifest_id));
    let keys = crate::links::ZenohKeys {
        link: zenoh::link_key(p, &lp.name, &lp.local),
        peer_link: zenoh::link_key(p, &lp.name, &lp.remote),
        routes: lp.outgoing.iter().filter_map(|r| route_names.get(*r as usize).map(|n| (*r, zenoh::route_key(p, &mid, &lp.name, &lp.local, n)))).collect(),
        peer_routes: zenoh::route_subscription(p, &mid, &lp.name, &lp.remote),
    };
    crate::links::ZenohTransport::new(keys, route_names, z.endpoints_label())
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

impl Node {
    /// Starts a node serving `graph` (loaded with the hosted partitions of the manifest `plan`
    /// was made from).
    pub fn start(graph: Arc<dyn GraphHost>, plan: NodePlan, options: NodeOptions) -> Result<Node, NodeError> {
        if options.name.len() > manyfold_core::mesh::NAME_MAX {
            return Err(NodeError(format!("the node name {:?} is longer than {} bytes", options.name, manyfold_core::mesh::NAME_MAX)));
        }
        for name in options.dial.iter().map(|(n, _)| n).chain(options.faults.iter().map(|(n, _)| n)).chain(options.keys.iter().map(|(n, _)| n)) {
            if let Some(other) = plan.other_links.iter().find(|l| &l.name == name) {
                return Err(NodeError(format!("link {name:?} is a {} link, not a mesh link (udp, tcp or zenoh)", other.transport)));
            }
            if !plan.links.iter().any(|l| &l.name == name) {
                let ours: Vec<&str> = plan.links.iter().map(|l| l.name.as_str()).collect();
                return Err(NodeError(format!(
                    "link {name:?} is not a link between a hosted partition and another; this node's links are: {}",
                    if ours.is_empty() { "none".to_string() } else { ours.join(", ") }
                )));
            }
        }
        check_zenoh(&plan, &options)?;
        discovery::check(&options.discovery, options.listen, options.admin)?;
        let (tcp, udp) = bind_both(options.listen)?;
        let listen = tcp.local_addr().map_err(|e| NodeError(format!("cannot read the listening address: {e}")))?;
        let udp = Arc::new(udp);
        let admin_listener = match options.admin {
            Some(a) => Some(TcpListener::bind(a).map_err(|e| NodeError(format!("cannot open the admin endpoint on {a}: {e}")))?),
            None => None,
        };
        let admin = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        let stop = Arc::new(AtomicBool::new(false));
        let incarnation = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())).unwrap_or(u64::MAX);

        let mut schemas: Vec<Arc<Schema>> = Vec::new();
        let mut route_names = Vec::new();
        graph.with_graph(&mut |g| {
            schemas = g.routes().map(|(_, _, s)| s.clone()).collect();
            route_names = g.routes().map(|(_, r, _)| r.to_string()).collect();
        });
        if route_names.len() != plan.routes.len() {
            return Err(NodeError(format!(
                "the graph declares {} routes but the manifest {}; load the manifest into a new graph",
                route_names.len(),
                plan.routes.len()
            )));
        }
        let mut links = Vec::new();
        #[cfg(feature = "zenoh")]
        let mut zenoh_links = Vec::new();
        for lp in &plan.links {
            let on_zenoh = lp.transport == "zenoh";
            let dial = options.dial.iter().find(|(n, _)| n == &lp.name).map(|(_, d)| *d);
            let key = options.keys.iter().find(|(n, _)| n == &lp.name).map(|(_, k)| *k);
            let faults = options.faults.iter().find(|(n, _)| n == &lp.name).map(|(_, f)| *f);
            let kind = match dial {
                _ if on_zenoh => "zenoh",
                Some(Dial::Udp(_)) => "udp",
                Some(Dial::Tcp(_)) => "tcp",
                None if lp.transport == "tcp" => "tcp",
                None => "udp",
            };
            // Over Zenoh nobody dials: the end whose partition sorts first sends the hello.
            let dialer = if on_zenoh { zenoh::initiator(&lp.local, &lp.remote) } else { dial.is_some() };
            let status = LinkStatus {
                name: lp.name.clone(),
                transport: kind.into(),
                dialer,
                state: "connecting".into(),
                requested: link::requested(lp),
                ..LinkStatus::default()
            };
            let shared = Arc::new(LinkShared {
                plan: lp.clone(),
                queue: queue::LinkQueue::new(options.queue_depth_max),
                slot: link::TransportSlot::default(),
                status: Mutex::new(status),
                key,
                dialer,
                fetches: link::Fetches::default(),
            });
            #[cfg(feature = "zenoh")]
            if let (true, Some(z)) = (on_zenoh, &options.zenoh) {
                let t = Arc::new(zenoh_transport(lp, z, &plan, &route_names));
                shared.status.lock().note = crate::links::Transport::note(&*t);
                shared.slot.set(t.clone());
                zenoh_links.push(t);
            }
            match dial {
                Some(Dial::Udp(peer)) => {
                    let bind: SocketAddr = if peer.is_ipv4() { "0.0.0.0:0".parse().unwrap_or(listen) } else { "[::]:0".parse().unwrap_or(listen) };
                    let mut t = UdpTransport::dial(bind, peer, UDP_MTU_DEFAULT).map_err(|e| NodeError(format!("link {}: cannot open a UDP socket: {e}", lp.name)))?;
                    if let Some(f) = faults {
                        t = t.with_faults(Faults::new(f));
                    }
                    shared.slot.set(Arc::new(t));
                }
                Some(Dial::Tcp(peer)) => shared.slot.set(Arc::new(TcpTransport::dial(peer, TCP_MTU_DEFAULT))),
                None => {}
            }
            links.push(shared);
        }
        // Subscribe the outgoing routes into their links' queues.
        let mut failed = None;
        graph.with_graph(&mut |g| {
            for l in &links {
                for r in &l.plan.outgoing {
                    let name = format!("mesh_{}_{}", sanitize(&l.plan.name), r);
                    let feed = Box::new(queue::QueueFeed { queue: l.queue.clone() });
                    if let Err(e) = g.subscribe(&name, RouteIdx(*r), feed, EdgePolicy::INLINE) {
                        failed = Some(NodeError(format!("link {}: cannot subscribe route #{r}: {}", l.plan.name, e.message())));
                    }
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let route_index = route_names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect();
        let route_names = Arc::new(route_names);
        let mtu = u16::try_from(UDP_MTU_DEFAULT).unwrap_or(1200);
        let ctx = Arc::new(link::DriverContext {
            graph: graph.clone(),
            node_id: options.id,
            node_name: options.name.clone(),
            incarnation,
            manifest_id: plan.manifest_id,
            schema_hashes: plan.routes.iter().map(|r| r.schema_hash).collect(),
            schemas,
            mtu,
            lease_ms: options.lease_ms,
            stop: stop.clone(),
            origin: Instant::now(),
        });
        let finished = Arc::new(AtomicBool::new(false));
        let advertised_admin = admin.and_then(|a| discovery::advertised(a, options.discovery.advertise));
        let advertised_listen = discovery::advertised(listen, options.discovery.advertise);
        let me = serde_json::json!({
            "node": options.name,
            "id": options.id,
            "incarnation": incarnation,
            "manifest_id": hex(&plan.manifest_id),
            "admin": advertised_admin.map(|a| a.to_string()),
            "listen": advertised_listen.map(|a| a.to_string()),
            "partitions": options.partitions,
        });
        let beacon = match (options.discovery.beacon, advertised_admin) {
            (true, Some(a)) => {
                let b = discovery::Beacon { node: options.name.clone(), id: options.id, incarnation, manifest_id: hex(&plan.manifest_id), admin: a, listen: advertised_listen };
                Some((discovery::open_beacon(&options.discovery)?, b))
            }
            _ => None,
        };
        let discovery = discovery::Discovery::new(options.discovery.clone(), me, advertised_admin);
        let zenoh_state = options.zenoh.as_ref().map(|_| Arc::new(zenoh::ZenohState::default()));
        #[cfg(feature = "zenoh")]
        let zenoh_hub = options.zenoh.clone().zip(zenoh_state.clone()).map(|(z, s)| Arc::new(zenoh::ZenohHub::new(z, zenoh_links, s)));
        let shared = Arc::new(NodeShared { options, incarnation, stop: stop.clone(), finished: finished.clone(), links, graph, plan, route_names: route_names.clone(), route_index, queries: Default::default(), device_hook: Default::default(), discovery, zenoh: zenoh_state });

        // The driver builds its session (window and resequencing slots, a few hundred KiB) on
        // its own stack first: every node thread gets room for it.
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).stack_size(8 << 20).spawn(f).map_err(|e| NodeError(format!("cannot start a thread: {e}")))
        };
        let mut drivers = Vec::new();
        let mut others = Vec::new();
        for l in &shared.links {
            let (l1, c1, n1) = (l.clone(), ctx.clone(), route_names.clone());
            drivers.push(spawn(format!("link-{}", l.plan.name), Box::new(move || link::run_driver(l1, c1, n1)))?);
            let (l2, s2) = (l.clone(), finished.clone());
            others.push(spawn(format!("read-{}", l.plan.name), Box::new(move || link::run_reader(l2, s2)))?);
        }
        let s = shared.clone();
        let sock = udp.clone();
        others.push(spawn("mesh-udp".into(), Box::new(move || run_udp_listener(s, sock)))?);
        let s = shared.clone();
        others.push(spawn("mesh-tcp".into(), Box::new(move || run_tcp_listener(s, tcp)))?);
        if let Some(l) = admin_listener {
            let s = shared.clone();
            others.push(spawn("admin".into(), Box::new(move || admin::run(s, l)))?);
        }
        // Gossip runs even without configured peers: a node that asked this one is asked back.
        let s = shared.clone();
        others.push(spawn("gossip".into(), Box::new(move || discovery::run_gossip(s)))?);
        #[cfg(feature = "zenoh")]
        if let Some(hub) = zenoh_hub {
            let s = shared.clone();
            others.push(spawn("zenoh-admin".into(), Box::new(move || zenoh::run(s, hub)))?);
        }
        if let Some((socket, b)) = beacon {
            let s = shared.clone();
            others.push(spawn("beacon".into(), Box::new(move || discovery::run_beacon(s, socket, b)))?);
        }
        if shared.options.run_scheduler {
            let s = shared.clone();
            others.push(spawn("scheduler".into(), Box::new(move || run_scheduler(s)))?);
        }
        Ok(Node { shared, drivers, others, listen, admin })
    }

    /// Where the node listens (UDP and TCP).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where the admin endpoint listens.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// This process's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// The flag that stops the node (a signal handler sets it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.shared.stop.clone()
    }

    /// Asks the node to stop; [`Node::wait`] returns when it has.
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for l in &self.shared.links {
            l.queue.lock().poke = true;
            l.queue.notify();
        }
    }

    /// True once a stop was asked (signal, admin `stop`, [`Node::request_stop`]).
    pub fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Sets who answers `device` queries and lists the devices in `status` (see
    /// [`query::DeviceHook`]).
    pub fn set_device_hook(&self, hook: Option<Arc<dyn DeviceHook>>) {
        *self.shared.device_hook.write() = hook;
    }

    /// The node's status now.
    pub fn status(&self) -> NodeStatus {
        self.shared.status()
    }

    /// The ready line's JSON.
    pub fn ready_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ready": true,
            "node": self.shared.options.name,
            "pid": std::process::id(),
            "listen": self.listen.to_string(),
            "admin": self.admin.map(|a| a.to_string()),
        })
    }

    /// Waits until a stop was asked and every link said bye; joins the node's threads and
    /// returns the last status.
    pub fn wait(mut self) -> NodeStatus {
        // Bounded by the stop flag: checked every 20 ms.
        while !self.stopping() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.request_stop();
        for t in self.drivers.drain(..) {
            let _ = t.join();
        }
        self.shared.finished.store(true, Ordering::Relaxed);
        for t in self.others.drain(..) {
            let _ = t.join();
        }
        self.shared.status()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.request_stop();
    }
}

/// The node's UDP socket: datagrams from a known peer go to its link; a hello from an unknown
/// address tells which link it opens (a restarted peer comes from a new port).
fn run_udp_listener(node: Arc<NodeShared>, socket: Arc<UdpSocket>) {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    let mut routes: HashMap<usize, mpsc::Sender<(SocketAddr, Vec<u8>)>> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    // Bounded by the finished flag: each pass waits at most the read timeout.
    while !node.finished.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let datagram = &buf[..n];
        let link = match manyfold_framing::decode_datagram(datagram, UDP_MTU_DEFAULT).ok().and_then(hello_link) {
            Some(name) => node.links.iter().position(|l| l.plan.name == name && !l.dialer && l.plan.transport != "zenoh"),
            None => by_addr.get(&from).copied(),
        };
        let Some(i) = link else { continue };
        by_addr.insert(from, i);
        let l = &node.links[i];
        let sender = routes.entry(i).or_insert_with(|| {
            let (tx, rx) = mpsc::channel();
            let mut t = UdpTransport::accept(socket.clone(), rx, UDP_MTU_DEFAULT);
            if let Some((_, f)) = node.options.faults.iter().find(|(n, _)| n == &l.plan.name) {
                t = t.with_faults(Faults::new(*f));
            }
            l.slot.set(Arc::new(t));
            tx
        });
        // A link that was on TCP and comes back on UDP gets a UDP transport again.
        if l.slot.get().is_some_and(|t| t.kind() != "udp") {
            let (tx, rx) = mpsc::channel();
            l.slot.set(Arc::new(UdpTransport::accept(socket.clone(), rx, UDP_MTU_DEFAULT)));
            *sender = tx;
        }
        let _ = sender.send((from, datagram.to_vec()));
    }
}

/// The node's TCP listener: each connection's first frame (a hello) tells its link.
fn run_tcp_listener(node: Arc<NodeShared>, listener: TcpListener) {
    let _ = listener.set_nonblocking(true);
    let transports: Arc<Mutex<HashMap<usize, Arc<TcpTransport>>>> = Arc::default();
    // Bounded by the stop flag: each pass sleeps 20 ms when nobody connects.
    while !node.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (node, transports) = (node.clone(), transports.clone());
                let _ = std::thread::Builder::new().name("mesh-tcp-hello".into()).spawn(move || identify_connection(&node, &transports, stream));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn identify_connection(node: &NodeShared, transports: &Mutex<HashMap<usize, Arc<TcpTransport>>>, mut stream: TcpStream) {
    use std::io::Read;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut decoder = match manyfold_framing::FrameDecoder::with_max_message(TCP_MTU_DEFAULT) {
        Ok(d) => d,
        Err(_) => return,
    };
    let mut already = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(5);
    // Bounded: 5 s or 64 KiB for the first frame.
    while Instant::now() < end && already.len() < 65_536 && !node.stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        already.extend_from_slice(&buf[..n]);
        let mut link = None;
        let mut any = false;
        decoder.feed(&buf[..n], |frame| {
            if let (Ok(m), false) = (frame, any) {
                any = true;
                link = hello_link(m);
            }
        });
        if !any {
            continue;
        }
        let Some(i) = link.and_then(|name| node.links.iter().position(|l| l.plan.name == name && !l.dialer && l.plan.transport != "zenoh")) else { return };
        let l = &node.links[i];
        let t = transports.lock().entry(i).or_insert_with(|| Arc::new(TcpTransport::accept(TCP_MTU_DEFAULT))).clone();
        if l.slot.get().is_none_or(|cur| cur.kind() != "tcp") {
            l.slot.set(t.clone());
        }
        t.attach(stream, already);
        return;
    }
}

/// Runs the graph's scheduler (mailboxes, timers) against the wall clock until the node stops.
fn run_scheduler(node: Arc<NodeShared>) {
    // Bounded by the stop flag: each pass runs the graph for at most 50 ms.
    while !node.stop.load(Ordering::Relaxed) {
        let mut ran = false;
        node.graph.with_graph(&mut |g| {
            let report = g.run_until_idle(crate::graph::RUN_STEPS_MAX_DEFAULT);
            ran = report.steps > 0;
        });
        if !ran {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
