//! The node's Zenoh side (docs/wire.md 4.12, docs/edge.md "Scaling out with Zenoh"): its
//! options, the key expressions (pure functions), and, with the `zenoh` feature, the node's one
//! Zenoh session.
//!
//! The session opens on a thread of its own (`zenoh-admin`), with retries, so a node starts
//! without waiting for a router: its zenoh links show `connecting` with a note until then. Once
//! open, the thread declares every zenoh link's publishers and subscribers
//! ([`crate::links::ZenohTransport::attach`]), the node's liveliness token and its admin
//! queryable, then answers admin questions with [`super::admin::answer_question`] (publish and
//! stop are refused there: anyone on the router could send them; never on Zenoh's own
//! threads: the callback only queues the query, bounded). At the end it undeclares everything
//! and closes the session.

/// The key prefix when none is given (`--zenoh-prefix`).
pub const PREFIX_DEFAULT: &str = "manyfold";

/// How the node joins Zenoh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZenohMode {
    /// Every message goes through the router (`connect`).
    #[default]
    Client,
    /// Peers connect directly once the router (or `listen`) introduced them.
    Peer,
}

impl ZenohMode {
    /// `client` or `peer`.
    pub fn parse(text: &str) -> Result<ZenohMode, String> {
        match text {
            "client" => Ok(ZenohMode::Client),
            "peer" => Ok(ZenohMode::Peer),
            other => Err(format!("the Zenoh mode is client or peer, got {other:?}")),
        }
    }

    /// `client` or `peer`.
    pub fn name(self) -> &'static str {
        match self {
            ZenohMode::Client => "client",
            ZenohMode::Peer => "peer",
        }
    }
}

/// How the node reaches Zenoh: mode, routers to connect to, endpoints to listen on, key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZenohOptions {
    /// Client (through the router) or peer.
    pub mode: ZenohMode,
    /// Endpoints to connect to (`tcp/HOST:PORT`).
    pub connect: Vec<String>,
    /// Endpoints to listen on (peer mode).
    pub listen: Vec<String>,
    /// The first chunk(s) of every key (separates deployments sharing a router).
    pub prefix: String,
}

impl ZenohOptions {
    /// Client mode through the routers `connect`, prefix `manyfold`.
    pub fn client(connect: Vec<String>) -> ZenohOptions {
        ZenohOptions { mode: ZenohMode::Client, connect, listen: Vec::new(), prefix: PREFIX_DEFAULT.to_string() }
    }

    /// Where the node meets the others, for notes and status (`tcp/127.0.0.1:7447`).
    pub fn endpoints_label(&self) -> String {
        let all: Vec<&str> = self.connect.iter().chain(self.listen.iter()).map(String::as_str).collect();
        if all.is_empty() { "no endpoint".to_string() } else { all.join(", ") }
    }

    /// Checks what can be checked without Zenoh: a router to connect to, a key-safe prefix.
    /// `link` names the zenoh link that needs it (for the sentence).
    pub fn check(&self, link: &str) -> Result<(), String> {
        let no_endpoint = match self.mode {
            ZenohMode::Client => self.connect.is_empty(),
            ZenohMode::Peer => self.connect.is_empty() && self.listen.is_empty(),
        };
        if no_endpoint {
            return Err(missing_options(link));
        }
        if !prefix_safe(&self.prefix) {
            return Err(format!("the Zenoh prefix {:?} must be chunks of letters, digits, '_' or '-' separated by '/'", self.prefix));
        }
        Ok(())
    }
}

/// The sentence for a zenoh link with no Zenoh options.
pub fn missing_options(link: &str) -> String {
    format!("link {link} runs on zenoh: give --zenoh-connect ENDPOINT (a Zenoh router, e.g. tcp/127.0.0.1:7447)")
}

/// A Zenoh error as a clause: without the source location Zenoh appends, nor a trailing `!`/`.`.
pub fn error_text(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let text = text.split(" at /").next().unwrap_or_default().trim();
    text.trim_end_matches(['!', '.', ' ']).to_string()
}

/// The sentence of a build without the `zenoh` feature.
pub const NOT_BUILT: &str = "this build has no Zenoh transport; build manyfold-runtime with the zenoh feature";

/// True when `name` can be one chunk of a key expression: not empty, none of `/ * $ ? #`.
pub fn key_safe(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '*', '$', '?', '#'])
}

/// True when `prefix` is chunks of `[A-Za-z0-9_-]` separated by single `/`.
pub fn prefix_safe(prefix: &str) -> bool {
    !prefix.is_empty() && prefix.split('/').all(|c| !c.is_empty() && c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '-'))
}

/// The first 16 hex digits of a manifest id: scopes the data, presence and admin keys.
pub fn mid16(manifest_id: &[u8; 32]) -> String {
    super::hex(&manifest_id[..8])
}

/// The end hosting partition `sender` sends link control, and events that mix routes or are
/// sent again, on `P/link/<link>/<sender>` (no manifest id: a node of another manifest hears the
/// hello and refuses it by name).
pub fn link_key(prefix: &str, link: &str, sender: &str) -> String {
    format!("{prefix}/link/{link}/{sender}")
}

/// First-send events of one route: `P/<mid16>/route/<link>/<sender>/<route, dots as slashes>`.
pub fn route_key(prefix: &str, mid16: &str, link: &str, sender: &str, route: &str) -> String {
    format!("{prefix}/{mid16}/route/{link}/{sender}/{}", route.replace('.', "/"))
}

/// What the end hosting `local` subscribes to hear the route keys of the peer's end.
pub fn route_subscription(prefix: &str, mid16: &str, link: &str, peer: &str) -> String {
    format!("{prefix}/{mid16}/route/{link}/{peer}/**")
}

/// The node's liveliness token: `P/<mid16>/node/<name>/<id>/<incarnation>`.
pub fn token_key(prefix: &str, mid16: &str, name: &str, id: u16, incarnation: u64) -> String {
    format!("{prefix}/{mid16}/node/{name}/{id}/{incarnation}")
}

/// The node's admin queryable: `P/<mid16>/admin/<name>`.
pub fn admin_key(prefix: &str, mid16: &str, name: &str) -> String {
    format!("{prefix}/{mid16}/admin/{name}")
}

/// The end of a zenoh link that sends the hello: the one whose partition sorts first (bytewise).
pub fn initiator(local: &str, remote: &str) -> bool {
    local.as_bytes() < remote.as_bytes()
}

/// What the node's Zenoh side shows in its status (`"zenoh"` in the admin `status`).
#[derive(Debug, Default)]
pub struct ZenohState {
    /// The session is open (the router was reached, or peer mode started).
    pub open: std::sync::atomic::AtomicBool,
    /// Admin queries refused because the `zenoh-admin` queue was full.
    pub admin_overflow: std::sync::atomic::AtomicU64,
    /// Admin queries answered.
    pub admin_answered: std::sync::atomic::AtomicU64,
}

impl ZenohState {
    /// The status JSON: mode, endpoints, prefix, open, admin counters.
    pub fn to_json(&self, o: &ZenohOptions) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        serde_json::json!({
            "mode": o.mode.name(),
            "connect": o.connect,
            "listen": o.listen,
            "prefix": o.prefix,
            "open": self.open.load(Relaxed),
            "admin_answered": self.admin_answered.load(Relaxed),
            "admin_overflow": self.admin_overflow.load(Relaxed),
        })
    }
}

#[cfg(feature = "zenoh")]
pub(crate) use session::{run, ZenohHub};

#[cfg(feature = "zenoh")]
mod session {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use zenoh::Wait;

    use super::{admin_key, mid16, token_key, ZenohOptions, ZenohState};
    use crate::links::ZenohTransport;
    use crate::node::NodeShared;

    /// Admin queries waiting for the `zenoh-admin` thread; more are refused (counted).
    pub const ADMIN_QUEUE_MAX: usize = 64;
    /// First wait before opening the session again (client mode fails at once without a router).
    const OPEN_RETRY_MIN: Duration = Duration::from_millis(200);
    /// Longest wait between attempts.
    const OPEN_RETRY_MAX: Duration = Duration::from_millis(2000);

    /// The node's Zenoh session and the zenoh links it serves.
    pub(crate) struct ZenohHub {
        pub(crate) options: ZenohOptions,
        pub(crate) transports: Vec<Arc<ZenohTransport>>,
        pub(crate) state: Arc<ZenohState>,
    }

    impl ZenohHub {
        pub(crate) fn new(options: ZenohOptions, transports: Vec<Arc<ZenohTransport>>, state: Arc<ZenohState>) -> ZenohHub {
            ZenohHub { options, transports, state }
        }
    }

    /// A Zenoh configuration for `mode` (`"client"`, `"peer"`, `"router"`): endpoints, multicast
    /// scouting off, reconnection every second at most.
    pub fn config(mode: &str, connect: &[String], listen: &[String]) -> Result<zenoh::Config, String> {
        let mut c = zenoh::Config::default();
        let set = |c: &mut zenoh::Config, key: &str, value: String| c.insert_json5(key, &value).map_err(|e| format!("the Zenoh setting {key} = {value} is refused: {}", super::error_text(e)));
        set(&mut c, "mode", serde_json::to_string(mode).unwrap_or_default())?;
        for (key, list) in [("connect/endpoints", connect), ("listen/endpoints", listen)] {
            if !list.is_empty() {
                let text = serde_json::to_string(list).unwrap_or_default();
                c.insert_json5(key, &text).map_err(|e| format!("the Zenoh endpoints {} are not valid: {}", list.join(", "), super::error_text(e)))?;
            }
        }
        set(&mut c, "scouting/multicast/enabled", "false".into())?;
        set(&mut c, "connect/retry", r#"{"period_init_ms": 250, "period_max_ms": 1000, "period_increase_factor": 2}"#.into())?;
        Ok(c)
    }

    /// The node's configuration.
    pub fn node_config(o: &ZenohOptions) -> Result<zenoh::Config, String> {
        config(o.mode.name(), &o.connect, &o.listen)
    }

    /// Opens the session (retrying until the node finishes), declares the links, the token and
    /// the queryable, answers admin queries, and closes everything when the node finished.
    pub(crate) fn run(node: Arc<NodeShared>, hub: Arc<ZenohHub>) {
        let finished = || node.finished.load(Ordering::Relaxed);
        let mut wait = OPEN_RETRY_MIN;
        // Bounded by the finished flag: each attempt is bounded (client: fails at once without
        // a router; peer: returns after its scouting delay).
        let session = loop {
            if finished() {
                return;
            }
            let attempt = node_config(&hub.options).and_then(|c| zenoh::open(c).wait().map_err(super::error_text));
            match attempt {
                Ok(s) => break s,
                Err(_) => {
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !finished() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    wait = (wait * 2).min(OPEN_RETRY_MAX);
                }
            }
        };
        hub.state.open.store(true, Ordering::Relaxed);
        for t in &hub.transports {
            t.attach(&session);
        }
        let prefix = &hub.options.prefix;
        let mid = mid16(&node.plan.manifest_id);
        let name = &node.options.name;
        let token = session.liveliness().declare_token(token_key(prefix, &mid, name, node.options.id, node.incarnation)).wait().ok();
        let (tx, rx) = sync_channel::<zenoh::query::Query>(ADMIN_QUEUE_MAX);
        let counted = hub.state.clone();
        let own_key = admin_key(prefix, &mid, name);
        let queryable = session
            .declare_queryable(own_key.clone())
            .callback(move |q| {
                if tx.try_send(q).is_err() {
                    counted.admin_overflow.fetch_add(1, Ordering::Relaxed);
                }
            })
            .wait()
            .ok();
        // Bounded by the finished flag: each pass waits at most 50 ms.
        while !finished() {
            let q = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(q) => q,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let request = q.payload().map(|p| String::from_utf8_lossy(&p.to_bytes()).into_owned()).unwrap_or_default();
            let request = if request.trim().is_empty() { r#"{"q": "status"}"#.to_string() } else { request };
            // Questions only: publish and stop go to the admin endpoint (admin::CHANGING_REQUESTS).
            let answer = crate::node::admin::answer_question(&node, request.trim()).to_string();
            // The reply names this node (the query may name many with `*`).
            let _ = q.reply(own_key.clone(), answer).wait();
            hub.state.admin_answered.fetch_add(1, Ordering::Relaxed);
        }
        for t in &hub.transports {
            t.detach();
        }
        if let Some(q) = queryable {
            let _ = q.undeclare().wait();
        }
        if let Some(t) = token {
            let _ = t.undeclare().wait();
        }
        let _ = session.close().wait();
        hub.state.open.store(false, Ordering::Relaxed);
    }
}

#[cfg(feature = "zenoh")]
pub use session::{config, node_config};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key is built from the contract's pieces: prefix, mid16, link, sender, route chunks.
    #[test]
    fn keys_follow_the_contract() {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        id[8] = 0xff;
        let mid = mid16(&id);
        assert_eq!(mid, "0123456789abcdef");
        assert_eq!(link_key("manyfold", "ab", "a"), "manyfold/link/ab/a");
        assert_eq!(
            route_key("manyfold", &mid, "ab", "a", "read.logical.lab.temp.room.meta.v1"),
            "manyfold/0123456789abcdef/route/ab/a/read/logical/lab/temp/room/meta/v1"
        );
        assert_eq!(route_subscription("manyfold", &mid, "ab", "b"), "manyfold/0123456789abcdef/route/ab/b/**");
        assert_eq!(token_key("site/x", &mid, "n1", 7, 42), "site/x/0123456789abcdef/node/n1/7/42");
        assert_eq!(admin_key("manyfold", &mid, "n1"), "manyfold/0123456789abcdef/admin/n1");
    }

    /// Names with key-expression syntax are refused, and the initiator is the partition that
    /// sorts first bytewise (exactly one end of a link).
    #[test]
    fn key_safety_and_the_initiator_rule() {
        for bad in ["", "a/b", "a*", "$x", "q?", "h#"] {
            assert!(!key_safe(bad), "{bad:?}");
        }
        assert!(key_safe("edge_1-b"));
        assert!(prefix_safe("manyfold") && prefix_safe("site_1/lab-2"));
        for bad in ["", "/m", "m/", "m//n", "m/*", "m/**", "a b"] {
            assert!(!prefix_safe(bad), "{bad:?}");
        }
        assert!(initiator("a", "b") && !initiator("b", "a"));
        assert!(initiator("B", "a"), "bytewise: uppercase sorts first");
        assert!(!initiator("a", "a"));
    }

    /// A plan with a zenoh link is refused in one sentence without Zenoh options (or, in a
    /// build without the feature, because there is no Zenoh), and with an address to dial.
    #[test]
    fn a_node_refuses_a_zenoh_link_it_cannot_run() {
        let text = std::fs::read_to_string(format!("{}/tests/fixtures/chain.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let udp = "\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"udp\"";
        let text = text.replace(udp, &udp.replace("udp", "zenoh"));
        let plan = crate::node::NodePlan::new(text.as_bytes(), &["a".to_string()]).unwrap();
        let mut options = crate::node::NodeOptions::new("a", 1, vec!["a".into()], "127.0.0.1:0".parse().unwrap());
        let err = crate::node::check_zenoh(&plan, &options).unwrap_err().0;
        if cfg!(feature = "zenoh") {
            assert_eq!(err, missing_options("ab"));
            options.zenoh = Some(ZenohOptions::client(vec!["tcp/127.0.0.1:7447".into()]));
            assert!(crate::node::check_zenoh(&plan, &options).is_ok());
            options.dial.push(("ab".into(), crate::node::Dial::Udp("127.0.0.1:9".parse().unwrap())));
            let err = crate::node::check_zenoh(&plan, &options).unwrap_err().0;
            assert_eq!(err, "link ab runs on zenoh and takes no --link address: its ends meet through the Zenoh router");
        } else {
            assert_eq!(err, NOT_BUILT);
        }
    }

    /// A client needs a router; peer mode may listen instead; a bad prefix is named.
    #[test]
    fn options_are_checked_in_one_sentence() {
        let none = ZenohOptions::client(Vec::new());
        assert_eq!(none.check("ab").unwrap_err(), "link ab runs on zenoh: give --zenoh-connect ENDPOINT (a Zenoh router, e.g. tcp/127.0.0.1:7447)");
        assert!(ZenohOptions::client(vec!["tcp/127.0.0.1:7447".into()]).check("ab").is_ok());
        let peer = ZenohOptions { mode: ZenohMode::Peer, connect: Vec::new(), listen: vec!["tcp/127.0.0.1:0".into()], prefix: "manyfold".into() };
        assert!(peer.check("ab").is_ok());
        let bad = ZenohOptions { prefix: "a/*".into(), ..ZenohOptions::client(vec!["tcp/127.0.0.1:7447".into()]) };
        assert!(bad.check("ab").unwrap_err().contains("prefix \"a/*\""));
        assert_eq!(ZenohMode::parse("peer"), Ok(ZenohMode::Peer));
        assert!(ZenohMode::parse("router").unwrap_err().contains("client or peer"));
        assert_eq!(error_text("Unable to connect to any of [x]!  at /root/src/orchestrator.rs:447."), "Unable to connect to any of [x]");
    }
}
