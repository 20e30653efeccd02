//! Host-side simulation of boards: one board ([`SimBoard`], behind `manyfold.sim.open`), and a
//! fleet of them in lockstep on one virtual clock ([`Fleet`], behind `manyfold.sim.fleet`).
//!
//! # Layout
//! - [`board`]: [`SimBoard`], the firmware's device code with the firmware's buffers.
//! - [`faults`]: seeded byte drops and corruption, reboots and clock skew.
//! - [`fleet`]: [`Fleet`], N boards each behind its own host end of the link.
//! - [`image`]: [`reseed`], one partition image with other seeds.

pub mod board;
pub mod faults;
pub mod fleet;
pub mod image;

#[cfg(test)]
mod tests;

pub use board::{board_name, SimBoard, BOARDS};
pub use faults::{skewed_us, BoardFaults, FaultCounts};
pub use fleet::{BoardReport, Fleet, FleetConfig, FleetEvent, Transcript};
pub use image::reseed;
