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
//! limiter, latest and write binding. The event-time rules of joins (`join_window`) and the
//! resistor live here too, for every host that runs them.
//!
//! Two rules hold in every kernel. **NaN in, NaN out**: a NaN is never dropped for being NaN,
//! never turned into a number or an infinity, and never leaves a kernel stuck (aggregates of a
//! window holding one are NaN; filters pass it). **Time never wraps**: event and clock times
//! span the whole `i64` range, and every sum or distance of times saturates or is taken
//! unsigned. Configurations that would break either are refused by the constructors.

pub mod aggregate;
pub mod batch;
pub mod count_window;
pub mod deadband;
pub mod join_window;
pub mod latest;
pub mod rate_limit;
pub mod resistor;
pub mod scale;
pub mod threshold;
pub mod time_window;
pub mod write_binding;

pub use aggregate::{Accumulator, Aggregate};
pub use count_window::CountWindow;
pub use deadband::{Deadband, DeadbandError};
pub use join_window::{JoinWindow, JoinWindowError};
pub use batch::Coalesced;
pub use latest::{Latest, LatestError};
pub use rate_limit::RateLimiter;
pub use resistor::{Resistor, ResistorAction};
pub use scale::{Scale, ScaleError};
pub use threshold::{Threshold, ThresholdError};
pub use time_window::{Insert, Pane, TimeWindowError, TimeWindows, WindowOutput, WindowSpec};
pub use write_binding::{Accepted, Applied, StillInEffect, WriteBinding, WriteBindingError};
