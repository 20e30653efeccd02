//! Operator kernels: the arithmetic and state of the built-in operators, without any graph.
//!
//! A kernel takes values and times as arguments and returns what to emit; it never reads a
//! clock, allocates, or knows about routes. The host runtime, the board firmware and the
//! simulation call the same kernels, so the same inputs give bit-identical outputs everywhere.
//! Kernels that buffer take their storage as a type parameter (`[Option<T>; N]` on a board).
//! Kernels that hold one value (latest, write binding) take its type as a parameter: a number
//! and its time on a board, an envelope or a payload on the host.
//!
//! Every operator a device runs has its kernel here, called by both the device executor
//! (`exec`) and the host graph: threshold, deadband, scale, count window, time window, rate
//! limiter, latest and write binding.

pub mod aggregate;
pub mod batch;
pub mod count_window;
pub mod deadband;
pub mod latest;
pub mod rate_limit;
pub mod resistor;
pub mod scale;
pub mod threshold;
pub mod time_window;
pub mod write_binding;

pub use aggregate::{Accumulator, Aggregate};
pub use count_window::CountWindow;
pub use deadband::Deadband;
pub use batch::Coalesced;
pub use latest::{Latest, LatestError};
pub use rate_limit::RateLimiter;
pub use resistor::{Resistor, ResistorAction};
pub use scale::Scale;
pub use threshold::Threshold;
pub use time_window::{Insert, Pane, TimeWindowError, TimeWindows, WindowOutput, WindowSpec};
pub use write_binding::{Accepted, Applied, StillInEffect, WriteBinding, WriteBindingError};
