//! The node link (docs/wire.md section 4): the protocol between two runtime nodes, over UDP
//! datagrams or COBS frames on TCP, both on the v1 frame layer.
//!
//! Sans-IO like the serial link: a [`Session`] is fed the bodies the transport received
//! ([`Session::receive`]), the caller's clock (`now_us` on every call) and the node's events
//! ([`Session::send_event`]); it hands out the bodies to send ([`Session::poll_transmit`]; the
//! caller frames them) and everything it learns as [`Delivery`] callbacks. No clock, no socket,
//! no heap: the send window and the resequencing buffer are const-generic arrays.
//!
//! # Layout
//! - [`msg`]: the messages and their encoding (kind bytes `0xc0..=0xc8`, varint fields, events
//!   in batches), with a decoder that checks every field and never panics.
//! - [`auth`]: keyed frames (`0xcf`): counter, truncated HMAC-SHA-256, replay window.
//! - [`session`]: [`Session`]: handshake (hello, welcome, refuse), capabilities, batched events,
//!   acks and retransmission, resequencing, dedup and gaps, keepalives and leases, peer
//!   restarts, lazy payload fetches, bye.
//! - [`Caps`]: the capability bits; [`MeshError`]: the one flat error enum.
//!
//! Bounds: names at most [`NAME_MAX`] bytes, at most [`ROUTES_MAX`] crossing routes per link
//! (their schema hashes travel as 8-byte prefixes so that a hello of 64 routes fits an MTU of
//! 1200 bytes: [`LinkConfig::check`] says when a hello does not fit), at most [`PARENTS_MAX`]
//! parents per event, one event at most `SLOT` bytes encoded (a window slot).

pub mod auth;
mod caps;
mod error;
pub mod msg;
pub mod session;

pub use caps::Caps;
pub use error::MeshError;
pub use msg::{Parents, NAME_MAX, PARENTS_MAX, ROUTES_MAX, SCHEMA_PREFIX};
pub use session::{LinkState, MeshCounters, Session, Timing};

/// Node-link protocol version.
pub const VERSION: u8 = 1;
/// The smallest MTU a node accepts (a hello names it; smaller is refused `mtu_too_small`).
pub const MTU_MIN: u16 = 256;
/// The default MTU on UDP.
pub const MTU_UDP: u16 = 1200;
/// The default lease.
pub const LEASE_MS: u32 = 10_000;

/// A crossing route: its index in the manifest's route table and its schema's SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecl {
    /// Route index (the manifest's route order).
    pub route: u32,
    /// The route schema's SHA-256 (only its first [`SCHEMA_PREFIX`] bytes cross).
    pub schema_hash: [u8; 32],
}

/// A parent of an event: (node, route, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineageRef {
    /// The node holding the parent.
    pub node: u16,
    /// The parent's route.
    pub route: u32,
    /// The parent's route sequence number.
    pub seq: u64,
}

/// An event's payload: its bytes, or (lazy) its metadata value with the payload's length and
/// digest, the payload itself fetched on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadOut<'a> {
    /// The payload itself.
    Inline(&'a [u8]),
    /// Metadata only: the payload is fetched with [`Session::fetch`].
    Lazy {
        /// The envelope's value (the metadata), encoded as an inline payload is.
        meta: &'a [u8],
        /// The payload's length in bytes.
        len: u64,
        /// The payload's SHA-256.
        digest: [u8; 32],
    },
}

/// A piece of a lazy payload in a `fetch_reply` (docs/wire.md 4.10): the payload's whole
/// length, and the bytes from the reply's offset on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The payload's length in bytes.
    pub total: u64,
    /// The bytes from the offset on (as many as fit one message).
    pub bytes: &'a [u8],
}

/// Why a fetch was not answered with the payload (docs/wire.md 4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchRefused {
    /// The sender no longer holds the payload (wire `0x00`).
    NotHeld,
    /// The payload is larger than the sender serves (wire `0x02`).
    TooLarge,
}

impl FetchRefused {
    /// Its byte in a `fetch_reply`.
    pub const fn code(self) -> u8 {
        match self {
            FetchRefused::NotHeld => 0,
            FetchRefused::TooLarge => 2,
        }
    }

    /// The refusal of this byte (`None` for `0x01`, the payload, and unknown bytes).
    pub const fn from_code(b: u8) -> Option<FetchRefused> {
        match b {
            0 => Some(FetchRefused::NotHeld),
            2 => Some(FetchRefused::TooLarge),
            _ => None,
        }
    }

    /// Its name: `not_held`, `too_large`.
    pub const fn name(self) -> &'static str {
        match self {
            FetchRefused::NotHeld => "not_held",
            FetchRefused::TooLarge => "too_large",
        }
    }
}

/// An event to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOut<'a> {
    /// Route index.
    pub route: u32,
    /// The route's sequence number.
    pub seq: u64,
    /// Event time, microseconds.
    pub time_us: i64,
    /// Time domain.
    pub domain: u16,
    /// Taint bits (docs/wire.md 2.6).
    pub taints: u32,
    /// What it was derived from.
    pub parents: &'a [LineageRef],
    /// The payload.
    pub payload: PayloadOut<'a>,
}

/// A received event: views into the message (or the resequencing buffer), valid during the
/// callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventIn<'a> {
    /// Route index.
    pub route: u32,
    /// The route's sequence number.
    pub seq: u64,
    /// Event time, microseconds.
    pub time_us: i64,
    /// Time domain.
    pub domain: u16,
    /// Taint bits as sent.
    pub taints: u32,
    /// What it was derived from.
    pub parents: Parents<'a>,
    /// The payload.
    pub payload: PayloadOut<'a>,
    /// (added) The link sequence number it crossed with.
    pub link_seq: u64,
    /// (added) Events of this route may have been lost before this one: its sequence number
    /// skipped ahead of the highest one delivered (of 0 before the route's first: route
    /// sequence numbers start at 1), or the peer restarted since the route's last event. The
    /// node marks the event `delivery_dropped`.
    pub gap: bool,
}

/// One end of a node link: who it is, what it runs, what the link asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig<'a> {
    /// This node's id.
    pub node_id: u16,
    /// This node's name (at most [`NAME_MAX`] bytes).
    pub node_name: &'a str,
    /// New per process start, and larger than the last one (wall-clock microseconds at start
    /// will do): a peer that sees a larger one knows this node restarted.
    pub incarnation: u64,
    /// The manifest's id.
    pub manifest_id: [u8; 32],
    /// The link's name (at most [`NAME_MAX`] bytes).
    pub link: &'a str,
    /// The manifest link's declared capabilities.
    pub requested: Caps,
    /// What the transport gives by itself: TCP `ORDERED | RELIABLE`, UDP none.
    pub transport: Caps,
    /// This end's largest message per frame (the body before the frame layer's CRC).
    pub mtu: u16,
    /// Nothing from the peer for this long: the session is down. A keepalive goes every
    /// quarter of the smaller of both ends' leases.
    pub lease_ms: u32,
    /// The crossing routes, both directions.
    pub routes: &'a [RouteDecl],
    /// The link's pre-shared key: every frame is sealed (docs/wire.md 4.8).
    pub key: Option<[u8; 32]>,
    /// This end dials and sends the hello.
    pub initiator: bool,
}

impl LinkConfig<'_> {
    /// Checks the bounds of the protocol: names, routes (each once, at most [`ROUTES_MAX`]),
    /// MTU at least [`MTU_MIN`], and a hello that fits the MTU. A session made from a config
    /// that fails is `Refused(Refusal::Config(..))` and sends nothing.
    pub fn check(&self) -> Result<(), MeshError> {
        if self.node_name.len() > NAME_MAX || self.link.len() > NAME_MAX {
            return Err(MeshError::ConfigNameTooLong);
        }
        if self.routes.len() > ROUTES_MAX {
            return Err(MeshError::ConfigTooManyRoutes);
        }
        for (i, a) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|b| b.route == a.route) {
                return Err(MeshError::ConfigTooManyRoutes);
            }
        }
        if self.mtu < MTU_MIN {
            return Err(MeshError::ConfigMtuTooSmall);
        }
        if session::hello_len(self) + if self.key.is_some() { auth::OVERHEAD } else { 0 } > usize::from(self.mtu) {
            return Err(MeshError::ConfigHelloTooLong);
        }
        Ok(())
    }
}

/// Why a handshake was refused (wire codes in docs/wire.md 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The peer speaks another protocol version (the detail: the refuser's version).
    VersionUnsupported(u8),
    /// The ends run different manifests.
    ManifestMismatch,
    /// The hello names another link than this end's.
    LinkMismatch,
    /// A crossing route's schema hash differs.
    SchemaMismatch {
        /// The route.
        route: u32,
    },
    /// (added) A crossing route is declared by one end only.
    RouteMismatch {
        /// The route.
        route: u32,
    },
    /// The peer requested capabilities this end does not know.
    CapabilityUnavailable(Caps),
    /// (added) The ends request different capabilities for the link (the bits that differ).
    CapabilitiesDiffer(Caps),
    /// One end has a key for the link and the other not.
    KeyMissing,
    /// (added) This build cannot seal frames (feature `auth` off) but the link has a key.
    KeyUnsupported,
    /// The peer's MTU is below [`MTU_MIN`].
    MtuTooSmall,
    /// (added) A message named a session the peer does not hold (it restarted, or its session
    /// ended): the initiator says hello again.
    NoSession,
    /// (added) This end's own configuration fails [`LinkConfig::check`]; nothing is sent.
    Config(MeshError),
}

impl Refusal {
    /// The wire code and detail (docs/wire.md 4.5); `Config` has none (it never crosses).
    pub fn code(self) -> (u8, u32) {
        match self {
            Refusal::VersionUnsupported(v) => (1, v.into()),
            Refusal::ManifestMismatch => (2, 0),
            Refusal::LinkMismatch => (3, 0),
            Refusal::SchemaMismatch { route } => (4, route),
            Refusal::RouteMismatch { route } => (5, route),
            Refusal::CapabilityUnavailable(c) => (6, c.0.into()),
            Refusal::CapabilitiesDiffer(c) => (7, c.0.into()),
            Refusal::KeyMissing => (8, 0),
            Refusal::KeyUnsupported => (9, 0),
            Refusal::MtuTooSmall => (10, MTU_MIN.into()),
            Refusal::NoSession => (11, 0),
            Refusal::Config(_) => (0, 0),
        }
    }

    /// The refusal of a wire code; `None` for an unknown code.
    pub fn from_code(code: u8, detail: u32) -> Option<Refusal> {
        let caps = Caps(u8::try_from(detail).ok()?);
        Some(match code {
            1 => Refusal::VersionUnsupported(u8::try_from(detail).ok()?),
            2 => Refusal::ManifestMismatch,
            3 => Refusal::LinkMismatch,
            4 => Refusal::SchemaMismatch { route: detail },
            5 => Refusal::RouteMismatch { route: detail },
            6 => Refusal::CapabilityUnavailable(caps),
            7 => Refusal::CapabilitiesDiffer(caps),
            8 => Refusal::KeyMissing,
            9 => Refusal::KeyUnsupported,
            10 => Refusal::MtuTooSmall,
            11 => Refusal::NoSession,
            _ => return None,
        })
    }

    /// A short, stable name (query output).
    pub fn name(self) -> &'static str {
        match self {
            Refusal::VersionUnsupported(_) => "version_unsupported",
            Refusal::ManifestMismatch => "manifest_mismatch",
            Refusal::LinkMismatch => "link_mismatch",
            Refusal::SchemaMismatch { .. } => "schema_mismatch",
            Refusal::RouteMismatch { .. } => "route_mismatch",
            Refusal::CapabilityUnavailable(_) => "capability_unavailable",
            Refusal::CapabilitiesDiffer(_) => "capabilities_differ",
            Refusal::KeyMissing => "key_missing",
            Refusal::KeyUnsupported => "key_unsupported",
            Refusal::MtuTooSmall => "mtu_too_small",
            Refusal::NoSession => "no_session",
            Refusal::Config(e) => e.name(),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing from the peer for `lease_ms`.
    LeaseExpired,
    /// The peer said bye.
    PeerBye,
    /// The peer is a new incarnation (it restarted): a new session replaces the old one.
    PeerRestarted {
        /// The new incarnation.
        incarnation: u64,
    },
    /// (added) The peer (same incarnation) opened a new session: it had lost this one.
    PeerReconnected,
    /// (added) The peer does not hold the session any more (`refuse no_session`).
    PeerLostSession,
    /// (added) This end said bye.
    Closed,
}

impl DownReason {
    /// A short, stable name (query output).
    pub fn name(self) -> &'static str {
        match self {
            DownReason::LeaseExpired => "lease_expired",
            DownReason::PeerBye => "peer_bye",
            DownReason::PeerRestarted { .. } => "peer_restarted",
            DownReason::PeerReconnected => "peer_reconnected",
            DownReason::PeerLostSession => "peer_lost_session",
            DownReason::Closed => "closed",
        }
    }
}

/// What a session tells its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// A session is up.
    Up {
        /// The peer's node id.
        peer_node: u16,
        /// The peer's node name.
        peer_name: &'a str,
        /// The peer's incarnation.
        peer_incarnation: u64,
        /// What the session provides of the requested capabilities.
        provided: Caps,
        /// Requested minus provided: every crossing envelope carries their taints.
        missing: Caps,
    },
    /// An event (in link order when the session provides ORDERED).
    Event(EventIn<'a>),
    /// The peer asks for a lazy payload from byte `offset` on: answer with
    /// [`Session::answer_fetch`].
    FetchRequest {
        /// The event's route.
        route: u32,
        /// The event's route sequence number.
        seq: u64,
        /// The first byte wanted.
        offset: u64,
    },
    /// The answer to [`Session::fetch`].
    FetchReply {
        /// The event's route.
        route: u32,
        /// The event's route sequence number.
        seq: u64,
        /// Where the piece starts.
        offset: u64,
        /// A piece of the payload, or why the peer did not send it.
        payload: Result<Piece<'a>, FetchRefused>,
    },
    /// A handshake was refused, by either end.
    Refused(Refusal),
    /// The session ended.
    Down(DownReason),
}
