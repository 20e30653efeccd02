//! `manyfold-node`: a runtime node hosting partitions of built-in operators (no Python).
//!
//! ```text
//! manyfold-node --manifest M.mfm --node a --node-id 1 --partition ingest \
//!     --listen 127.0.0.1:0 --admin 127.0.0.1:0 [--link ab=udp://127.0.0.1:47302] \
//!     [--key ab=keys/ab.key] [--fault ab=seed=1,drop=0.1] [--lease-ms 10000] [--queue-depth 1024] \
//!     [--peer 127.0.0.1:7001 ...] [--advertise HOST] [--beacon] [--beacon-group 239.255.109.102:7477] \
//!     [--beacon-interface IPV4] [--gossip-ms 2000] [--zenoh-connect tcp/127.0.0.1:7447 ...] \
//!     [--zenoh-listen ENDPOINT ...] [--zenoh-mode client|peer] [--zenoh-prefix manyfold]
//! ```
//! A link whose manifest transport is `zenoh` runs through the Zenoh router(s) of
//! `--zenoh-connect` (no `--link` address); with any `--zenoh-*` flag the node also shows itself
//! on Zenoh (liveliness token) and answers admin requests there (docs/edge.md).
//! Prints one JSON ready line on stdout; SIGTERM or SIGINT (or the admin `stop`) stops it
//! cleanly and it prints `{"stopped": true, "node": NAME}`. Errors at start: one sentence on
//! stderr, exit code 2.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use manyfold_runtime::graph::factory::NoCallables;
use manyfold_runtime::graph::Graph;
use manyfold_runtime::links::FaultSpec;
use manyfold_runtime::manifest;
use manyfold_runtime::node::{read_key, resolve, Dial, Node, NodeOptions, NodePlan};
use manyfold_runtime::shared::SharedGraph;

const USAGE: &str = "usage: manyfold-node --manifest PATH --node NAME --node-id N --partition P [--partition P ...] \
--listen HOST:PORT [--link NAME=udp://HOST:PORT|tcp://HOST:PORT ...] [--key NAME=PATH ...] [--admin HOST:PORT] \
[--fault NAME=SPEC ...] [--lease-ms N] [--queue-depth N] [--lazy-sources N] [--peer HOST:PORT ...] [--advertise HOST] \
[--beacon] [--beacon-group IPV4:PORT] [--beacon-interface IPV4] [--gossip-ms MS] [--store DIR] \
[--zenoh-connect ENDPOINT ...] [--zenoh-listen ENDPOINT ...] [--zenoh-mode client|peer] [--zenoh-prefix P]";

/// `--help` adds what the Zenoh flags do.
const ZENOH_HELP: &str = "zenoh links (manifest transport \"zenoh\"; any --zenoh-* flag also shows the node on Zenoh and answers admin requests there):
  --zenoh-connect ENDPOINT  a Zenoh router to connect to, e.g. tcp/127.0.0.1:7447 (repeatable)
  --zenoh-listen ENDPOINT   an endpoint to listen on, for peer mode (repeatable)
  --zenoh-mode client|peer  client: everything through the router (default); peer: direct once introduced
  --zenoh-prefix P          the first chunk of every key (default manyfold): separates deployments";

struct Args {
    manifest: PathBuf,
    options: NodeOptions,
    keys: Vec<(String, PathBuf)>,
    /// Lazy payloads kept for opens (the graph's default when `None`).
    lazy_sources: Option<usize>,
    /// The graph's store directory (durable operators keep their stores there).
    store: Option<PathBuf>,
}

fn pair(text: &str, flag: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| format!("{flag} takes NAME=VALUE, got {text:?}"))
}

fn parse() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let (mut manifest, mut name, mut id, mut listen) = (None, None, None, None);
    let mut partitions = Vec::new();
    let mut dial = Vec::new();
    let mut keys = Vec::new();
    let mut faults = Vec::new();
    let mut admin = None;
    let mut lease_ms = manyfold_core::mesh::LEASE_MS;
    let mut queue = manyfold_runtime::node::QUEUE_DEPTH_DEFAULT;
    let mut lazy_sources = None;
    let mut store = None;
    let mut discovery = manyfold_runtime::node::DiscoveryOptions::default();
    let mut zenoh = manyfold_runtime::node::ZenohOptions::client(Vec::new());
    let mut zenoh_given = false;
    let text = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value().map_err(|e| e.to_string())?.into_string().map_err(|_| "arguments must be UTF-8".to_string())
    };
    // Bounded by the arguments.
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("manifest") => manifest = Some(PathBuf::from(text(&mut parser)?)),
            Long("node") => name = Some(text(&mut parser)?),
            Long("node-id") => {
                let v = text(&mut parser)?;
                id = Some(v.parse::<u16>().map_err(|_| format!("--node-id takes a number from 0 to 65535, got {v:?}"))?);
            }
            Long("partition") => partitions.push(text(&mut parser)?),
            Long("listen") => listen = Some(resolve(&text(&mut parser)?)?),
            Long("admin") => admin = Some(resolve(&text(&mut parser)?)?),
            Long("link") => {
                let (link, url) = pair(&text(&mut parser)?, "--link")?;
                dial.push((link, Dial::parse(&url)?));
            }
            Long("key") => {
                let (link, path) = pair(&text(&mut parser)?, "--key")?;
                keys.push((link, PathBuf::from(path)));
            }
            Long("fault") => {
                let (link, spec) = pair(&text(&mut parser)?, "--fault")?;
                faults.push((link, FaultSpec::parse(&spec)?));
            }
            Long("lease-ms") => {
                let v = text(&mut parser)?;
                lease_ms = v.parse().map_err(|_| format!("--lease-ms takes milliseconds, got {v:?}"))?;
            }
            Long("queue-depth") => {
                let v = text(&mut parser)?;
                queue = v.parse().map_err(|_| format!("--queue-depth takes a number of events, got {v:?}"))?;
            }
            Long("lazy-sources") => {
                let v = text(&mut parser)?;
                lazy_sources = Some(v.parse().map_err(|_| format!("--lazy-sources takes a number of payloads, got {v:?}"))?);
            }
            Long("store") => store = Some(PathBuf::from(text(&mut parser)?)),
            Long("peer") => discovery.peers.push(resolve(&text(&mut parser)?)?),
            Long("advertise") => {
                let v = text(&mut parser)?;
                discovery.advertise = Some(manyfold_runtime::node::discovery::advertise_host(&v).map_err(|e| format!("--advertise {e}"))?);
            }
            Long("beacon") => discovery.beacon = true,
            Long("beacon-group") => {
                let v = text(&mut parser)?;
                discovery.beacon_group = v.parse().map_err(|_| format!("--beacon-group takes an IPv4 multicast GROUP:PORT, got {v:?}"))?;
            }
            Long("beacon-interface") => {
                let v = text(&mut parser)?;
                discovery.beacon_interface = v.parse().map_err(|_| format!("--beacon-interface takes an IPv4 address of the interface, got {v:?}"))?;
            }
            Long("gossip-ms") => {
                let v = text(&mut parser)?;
                discovery.gossip_ms = v.parse().ok().filter(|&n: &u32| n > 0).ok_or_else(|| format!("--gossip-ms takes milliseconds above 0, got {v:?}"))?;
            }
            Long("zenoh-connect") => {
                zenoh.connect.push(text(&mut parser)?);
                zenoh_given = true;
            }
            Long("zenoh-listen") => {
                zenoh.listen.push(text(&mut parser)?);
                zenoh_given = true;
            }
            Long("zenoh-mode") => {
                zenoh.mode = manyfold_runtime::node::ZenohMode::parse(&text(&mut parser)?).map_err(|e| format!("--zenoh-mode: {e}"))?;
                zenoh_given = true;
            }
            Long("zenoh-prefix") => {
                zenoh.prefix = text(&mut parser)?;
                zenoh_given = true;
            }
            Long("help") | Short('h') => {
                println!("{USAGE}\n\n{ZENOH_HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("{}; {USAGE}", other.unexpected())),
        }
    }
    let missing = |what: &str| format!("{what} is required; {USAGE}");
    let manifest = manifest.ok_or_else(|| missing("--manifest"))?;
    let name = name.ok_or_else(|| missing("--node"))?;
    let id = id.ok_or_else(|| missing("--node-id"))?;
    let listen: SocketAddr = listen.ok_or_else(|| missing("--listen"))?;
    if partitions.is_empty() {
        return Err(missing("--partition"));
    }
    let mut options = NodeOptions::new(&name, id, partitions, listen);
    options.dial = dial;
    options.admin = admin;
    options.faults = faults;
    options.lease_ms = lease_ms;
    options.queue_depth_max = queue;
    options.discovery = discovery;
    options.zenoh = zenoh_given.then_some(zenoh);
    Ok(Args { manifest, options, keys, lazy_sources, store })
}

fn start(args: Args) -> Result<Node, String> {
    let Args { manifest: path, mut options, keys, lazy_sources, store } = args;
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
    let plan = NodePlan::new(&bytes, &options.partitions).map_err(|e| format!("the manifest {} cannot be hosted: {e}", path.display()))?;
    if let Some((node, function)) = plan.user_functions.first() {
        return Err(format!(
            "node {node} calls the Python function {function}, and manyfold-node runs built-in operators only; host its partition with `manyfold node`"
        ));
    }
    for (link, key_path) in keys {
        options.keys.push((link, read_key(&key_path).map_err(|e| e.0)?));
    }
    let mut graph = Graph::new_wall();
    if let Some(dir) = store {
        graph.set_store_dir(dir.clone()).map_err(|e| format!("--store {}: {e}", dir.display()))?;
    }
    manifest::load(&mut graph, &plan.cbor, Some(&options.partitions), &mut Arc::new, &mut NoCallables, &mut |_, _, _| {}, &mut |_| {})
        .map_err(|e| format!("the manifest {} does not load: {e}", path.display()))?;
    if let Some(n) = lazy_sources {
        graph.set_payload_sources_max(n);
    }
    let shared = Arc::new(SharedGraph::new(graph));
    Node::start(shared, plan, options).map_err(|e| e.0)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("manyfold-node: {e}");
            std::process::exit(2);
        }
    };
    let name = args.options.name.clone();
    let node = match start(args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("manyfold-node: {e}");
            std::process::exit(2);
        }
    };
    let stop = node.stop_flag();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("manyfold-node: cannot handle signal {signal}: {e}");
            std::process::exit(2);
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", node.ready_json());
    let _ = out.flush();
    drop(out);
    node.wait();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::json!({ "stopped": true, "node": name }));
    let _ = out.flush();
}
