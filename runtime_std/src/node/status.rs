//! What a node shows: its links' states and counters, read by the admin endpoint and the
//! Python binding.

use std::collections::BTreeMap;

use manyfold_core::mesh::Caps;

/// One link as the node sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// The manifest link.
    pub name: String,
    /// The peer node's name, once a handshake told it.
    pub peer: Option<String>,
    /// The peer node's id.
    pub peer_id: Option<u16>,
    /// The peer's incarnation.
    pub peer_incarnation: Option<u64>,
    /// The peer's address, once known.
    pub peer_addr: Option<String>,
    /// `udp`, `tcp` or `zenoh`.
    pub transport: String,
    /// What the link waits for, if anything ("waiting for the Zenoh router at ...").
    pub note: Option<String>,
    /// This end dials.
    pub dialer: bool,
    /// `connecting`, `up`, `down` or `refused`.
    pub state: String,
    /// Why the session went down last (`lease_expired`, `peer_bye`, `peer_restarted`, ...).
    pub down_reason: Option<String>,
    /// The manifest link's capabilities, what the session provides, and requested − provided.
    pub requested: Caps,
    /// Provided by the session.
    pub provided: Caps,
    /// Requested but not provided: crossing envelopes carry their taints.
    pub missing: Caps,
    /// Events sent and received.
    pub events_tx: u64,
    /// Events received and recorded.
    pub events_rx: u64,
    /// Events dropped: the queue was full or closed, or too large to cross.
    pub dropped: u64,
    /// Of those, the ones each outgoing route's full queue (its flow) dropped, by route name.
    pub dropped_by_route: BTreeMap<String, u64>,
    /// Retransmitted events.
    pub retransmits: u64,
    /// Duplicates refused (by the session, and by the graph).
    pub duplicates: u64,
    /// Link sequence numbers given up on.
    pub gaps: u64,
    /// Frames refused by the frame layer (CRC, COBS) or the MAC check.
    pub bad_frames: u64,
    /// Messages received but dropped because the link's inbox was full (Zenoh).
    pub rx_overflow: u64,
    /// Events that could not be recorded (unknown route, bad payload, schema).
    pub rejected: u64,
    /// Handshakes refused, by reason.
    pub refused: BTreeMap<String, u64>,
    /// The last refusal, as a sentence.
    pub refusal: Option<String>,
    /// Sessions that came up.
    pub ups: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
    /// Events sent but not yet acknowledged.
    pub unacked: u64,
    /// Lazy payloads this end fetched over the link: one per open that went to the peer
    /// (retries not counted).
    pub fetches: u64,
    /// Of those, opens that failed: the peer refused (`not_held`, `too_large`), did not answer
    /// after the last retry, or sent bytes that did not match the digest.
    pub fetch_failures: u64,
    /// Fetches of the peer this end answered with the payload.
    pub fetches_served: u64,
}

/// The node as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// Its name, id and incarnation.
    pub node: String,
    /// Node id.
    pub id: u16,
    /// Incarnation (new per start).
    pub incarnation: u64,
    /// Process id.
    pub pid: u32,
    /// The manifest's id (SHA-256 of its canonical CBOR, hex).
    pub manifest_id: String,
    /// Hosted partitions.
    pub partitions: Vec<String>,
    /// Its links, by name.
    pub links: Vec<LinkStatus>,
    /// True once a stop was asked.
    pub stopping: bool,
    /// The node's Zenoh side (mode, endpoints, prefix, open, admin counters), if it has one.
    pub zenoh: Option<serde_json::Value>,
}

fn caps_json(c: Caps) -> serde_json::Value {
    serde_json::Value::from(c.iter().collect::<Vec<_>>())
}

impl LinkStatus {
    /// The admin endpoint's JSON for this link.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "peer": self.peer,
            "peer_id": self.peer_id,
            "peer_incarnation": self.peer_incarnation,
            "peer_addr": self.peer_addr,
            "transport": self.transport,
            "note": self.note,
            "dialer": self.dialer,
            "state": self.state,
            "down_reason": self.down_reason,
            "requested": caps_json(self.requested),
            "provided": caps_json(self.provided),
            "missing": caps_json(self.missing),
            "events_tx": self.events_tx,
            "events_rx": self.events_rx,
            "dropped": self.dropped,
            "dropped_by_route": self.dropped_by_route,
            "retransmits": self.retransmits,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "bad_frames": self.bad_frames,
            "rx_overflow": self.rx_overflow,
            "rejected": self.rejected,
            "refused": self.refused,
            "refusal": self.refusal,
            "ups": self.ups,
            "queued": self.queued,
            "unacked": self.unacked,
            "fetches": self.fetches,
            "fetch_failures": self.fetch_failures,
            "fetches_served": self.fetches_served,
        })
    }
}

impl NodeStatus {
    /// The admin endpoint's JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "node": self.node,
            "id": self.id,
            "incarnation": self.incarnation,
            "pid": self.pid,
            "manifest_id": self.manifest_id,
            "partitions": self.partitions,
            "stopping": self.stopping,
            "links": self.links.iter().map(LinkStatus::to_json).collect::<Vec<_>>(),
            "zenoh": self.zenoh,
        })
    }
}
