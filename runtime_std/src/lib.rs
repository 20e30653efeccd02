//! Manyfold's `std` runtime and the Python extension `manyfold._native`.
//!
//! # Layout
//! - [`python`] (feature `python`): the PyO3 module. Each submodule binds one layer of the core
//!   (`framing` today) and keeps Python objects at the edge: the work runs in Rust.
//!
//! The local graph runtime and the `manyfold-node` binary arrive with later issues.

#[cfg(feature = "python")]
pub mod python;
