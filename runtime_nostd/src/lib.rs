//! Manyfold's `no_std`, heap-free core.
//!
//! This crate holds what must behave identically on a Cortex-M board, in an edge node and inside
//! the Python extension: envelopes and taints, operator kernels, mailbox policies, the partition
//! image format, the link protocol and a step-driven executor. Storage is a type parameter, so
//! a board fixes every capacity at build time.
//!
//! # Layout
//! - [`framing`]: the wire frame layer, re-exported from `manyfold-framing`.
//!
//! The kernels, envelopes and executor arrive with the local-runtime and embedded issues.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub use manyfold_framing as framing;
