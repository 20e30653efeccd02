//! Manyfold's `std` runtime and the Python extension `manyfold._native`.
//!
//! # Layout
//! - [`devlink`]: the host end of a device link (serial, socket, simulation), blocking, over
//!   the core's host role.
//! - [`route`]: route identity (`plane.layer.owner.family.stream.variant.vN`).
//! - [`schema`]: typed, versioned schemas and their SHA-256 hash.
//! - [`value`]: decoded payloads and keys.
//! - [`envelope`]: host envelopes (core metadata + payload).
//! - [`graph`]: the local graph runtime: routes, nodes, edges, mailboxes, scheduler, and the
//!   built-in operators (`graph::ops`) over the `manyfold-core` kernels.
//! - [`links`]: mesh link transports (UDP datagrams, TCP COBS streams) and seeded datagram
//!   faults.
//! - [`manifest`]: loading a graph manifest (deterministic CBOR) into a graph.
//! - [`node`]: the runtime node: hosted partitions, mesh links, the admin endpoint.
//! - [`store`]: durable stores (event log, snapshots, checkpoints, keyspace) on SQLite in WAL
//!   mode, with recovery that reports what a crash or a torn file lost.
//! - [`sim`]: simulated boards and fleets of them (`manyfold.sim`).
//! - [`shared`]: the thread-safe handle used by real-time mode and the Python extension.
//! - [`python`] (feature `python`): the PyO3 module. Each submodule binds one layer and keeps
//!   Python objects at the edge: the work runs in Rust.

pub mod devlink;
pub mod envelope;
pub mod graph;
pub mod links;
pub mod manifest;
pub mod node;
pub mod route;
pub mod schema;
pub mod shared;
pub mod sim;
pub mod store;
pub mod value;

#[cfg(feature = "python")]
pub mod python;
