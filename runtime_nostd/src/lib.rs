//! Manyfold's `no_std`, heap-free core.
//!
//! This crate holds what must behave identically on a Cortex-M board, in an edge node and inside
//! the Python extension: envelopes and taints, operator kernels, mailbox policies, and (with
//! the embedded work) the partition image format, the link protocol and a step-driven executor.
//! Storage is a type parameter, so a board fixes every capacity at build time while a host
//! passes boxed slices.
//!
//! # Layout
//! - [`framing`]: the wire frame layer, re-exported from `manyfold-framing`.
//! - [`ring`]: a bounded FIFO over caller-provided slots; the building block of every queue.
//! - [`mailbox`]: bounded mailboxes and their overflow policies, with loss counters.
//! - [`taint`]: taint domains and values, and the bitset that carries them on every event.
//! - [`envelope`]: the closed metadata of an event: identity, times, epoch, taints, parents,
//!   payload reference.
//! - [`kernels`]: operator arithmetic: aggregates, count and event-time windows, rate limiter,
//!   resistor, deadband, threshold, scale/offset.
//!
//! # Rules
//! No heap, no `unsafe`, no panics on any input; every loop is bounded by its input or by a
//! capacity; time is always an argument, never read from a clock.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use manyfold_framing as framing;

pub mod envelope;
pub mod kernels;
pub mod mailbox;
pub mod ring;
pub mod taint;
