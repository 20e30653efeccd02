//! The PyO3 extension module `manyfold._native`. Python users import the typed wrappers in the
//! `manyfold` package, which re-export these objects.
//!
//! - `framing`: the frame layer (`encode_frame`, `FrameDecoder`, ...).
//! - `route`: `Route`, `Plane`, `Layer`, `Variant`.
//! - `convert`: Python objects <-> payload values, checked against schemas.
//! - `graph`: `NativeGraph`, `Producer`, `Envelope` and friends.
//! - `snapshots`: typed snapshots of nodes, edges, mailboxes, routes and the scheduler.
//! - `sim`: `SimDevice`, a board's device (manyfold-core) for `manyfold.sim`.
//! - `fleet`: `SimFleet`, N simulated boards in lockstep for `manyfold.sim.fleet`.
//! - `node`: `Node`, the runtime node serving a `NativeGraph` (`manyfold node`), and its typed
//!   status (`NodeStatus`, `NodeLinkStatus`).
//! - `zenoh`: `ZENOH`, `ZenohRouter` and `ZenohClient` (a router in this process; nodes found
//!   by liveliness and asked through their admin queryables).
//! - `stores`: `StoreFile` and `StoreDir`, the durable stores (`manyfold.stores` wraps them).
//! - `devlink`: `HostClient`, the host end of a device link (the core's host role), and the
//!   typed objects of the link protocol (`Event`, `Describe`, page items, counters).

use pyo3::prelude::*;

mod cbor;
mod convert;
mod devlink;
mod errors;
mod fleet;
mod framing;
mod graph;
mod node;
mod route;
mod sim;
mod snapshots;
mod stores;
mod zenoh;

/// Native hot path of the manyfold package. Import `manyfold`, not this module.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    framing::register(m)?;
    route::register(m)?;
    graph::register(m)?;
    snapshots::register(m)?;
    m.add_function(wrap_pyfunction!(cbor::canonical_cbor, m)?)?;
    sim::register(m)?;
    fleet::register(m)?;
    devlink::register(m)?;
    node::register(m)?;
    stores::register(m)?;
    zenoh::register(m)?;
    Ok(())
}
