//! The link protocol v1 (docs/wire.md section 2): CBOR messages carried by the v1 frame layer
//! between a host and a device (a board, or the simulation).
//!
//! - [`msg`]: the messages ([`Message`], [`Body`] and one struct per kind), their encoding and a
//!   decoder that checks every field and never panics.
//! - [`state`]: [`LinkMachine`], the session, keepalive and reconnection state machine.
//! - [`LinkError`]: the one flat error enum of this layer.

mod error;
pub mod msg;
pub mod state;

pub use error::LinkError;
pub use msg::{
    Ack, Body, BoardInfo, Capacities, Counters, Describe, Event, FlowInfo, Heartbeat, Hello, Items, Kind, Lineage,
    Message, Nack, NackReason, NodeInfo, Page, PageItem, Query, QueryKind, Reply, ReplyBody, RouteInfo, SourceInfo,
    Step, TaintInfo, UploadBegin, UploadChunk, Value, VERSION,
};
pub use state::{HelloOutcome, LinkAction, LinkCounters, LinkMachine, LinkState, LinkTimers, Role};
