//! The link protocol (docs/wire.md section 2): messages between a host and a device (a board,
//! or the simulation), carried by the frame layer.
//!
//! - [`msg`]: the messages ([`Message`], [`Body`] and one struct per kind) and their v1 encoding
//!   (CBOR arrays), with a decoder that checks every field and never panics.
//! - [`v11`]: the v1.1 encoding (wire version 2): compact events in batches, raw kind and id
//!   bytes; the hello and the nack keep the v1 layout in every version.
//! - [`refs`]: the references that let a v1.1 event leave out what the receiver knows.
//! - [`state`]: [`LinkMachine`], the session, keepalive and reconnection state machine.
//! - [`host`]: [`host::HostLink`], the host role: handshake and version choice, requests with
//!   retries, keepalive, resume, decoding with references, gap detection.
//! - [`LinkError`]: the one flat error enum of this layer.
//!
//! The device role is [`crate::device::Device`].

mod error;
pub mod host;
pub mod msg;
pub mod refs;
pub mod state;
pub mod v11;

pub use error::LinkError;
pub use msg::{
    Ack, Body, BoardInfo, Capacities, Counters, Describe, Event, FlowInfo, Heartbeat, Hello, Items, Kind, Lineage,
    Message, Nack, NackReason, NodeInfo, Page, PageItem, Query, QueryKind, Reply, ReplyBody, RouteInfo, SourceInfo,
    Step, TaintInfo, UploadBegin, UploadChunk, Value, VERSION,
};
pub use state::{HelloOutcome, LinkAction, LinkCounters, LinkMachine, LinkState, LinkTimers, Role};
