//! Manyfold's `no_std`, heap-free core.
//!
//! This crate holds what must behave identically on a Cortex-M board, in an edge node and inside
//! the Python extension: envelopes and taints, operator kernels, mailbox policies, the partition
//! image format, the link protocol and a step-driven executor. Storage is a type parameter, so a
//! board fixes every capacity at build time while a host passes boxed slices.
//!
//! # Layout
//! - [`framing`]: the wire frame layer, re-exported from `manyfold-framing`.
//! - [`ring`]: a bounded FIFO over caller-provided slots; the building block of every queue.
//! - [`mailbox`]: bounded mailboxes and their overflow policies, with loss counters.
//! - [`taint`]: taint domains and values, and the bitset that carries them on every event.
//! - [`envelope`]: the closed metadata of an event: identity, times, epoch, taints, parents,
//!   payload reference.
//! - [`kernels`]: the state and rules of every operator: aggregates, count and event-time
//!   windows, rate limiter, resistor, deadband, threshold, scale/offset, latest, write binding.
//! - [`link`]: the link protocol (docs/wire.md section 2): messages, their v1 and v1.1 encodings,
//!   the references that shorten v1.1 events, the host role, and the
//!   session/keepalive state machine.
//! - [`mesh`]: the node link (docs/wire.md section 4): messages, keyed frames, and the sans-IO
//!   session between two runtime nodes (handshake, batching, reliability and order, leases,
//!   incarnations, lazy payload fetches).
//! - [`image`]: partition images (section 3) decoded into fixed-capacity tables.
//! - [`exec`]: the step executor, `step(now_us, inbox, outbox)`.
//! - [`device`]: frames in, frames out: decoder, link state, executor and upload in one object
//!   that the firmware and the simulation drive; [`device::board`] holds a board's capacities.
//!
//! Feature `upload` adds partition upload (SHA-256 checked); `fast-crc` the 16 KiB CRC table;
//! `auth` keyed node links (HMAC-SHA-256).
//!
//! # Rules
//! No heap, no `unsafe`, no panics on any input; every loop is bounded by its input or by a
//! capacity; time is always an argument, never read from a clock.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use manyfold_framing as framing;

#[doc(hidden)]
pub mod cbor; // the CBOR subset of links and images; public only for the sealed page items
pub mod device;
pub mod envelope;
pub mod exec;
pub mod image;
pub mod kernels;
pub mod link;
pub mod mesh;
pub mod mailbox;
pub mod ring;
pub mod taint;
