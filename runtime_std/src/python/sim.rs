//! `SimDevice`: a board's device inside the extension, for `manyfold.sim`: a
//! [`crate::sim::SimBoard`] (the firmware's code, capacities and buffers) whose output each call
//! returns.
//!
//! Differences from a board, all outside the device: time is whatever the caller passes (a
//! virtual clock by default), the partition region is a byte vector that accepts uploads, and the
//! `board` query reports 0 for uptime and stack peak.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::sim::SimBoard;

/// A simulated board: `write(now_us, bytes) -> bytes` and `poll(now_us) -> bytes`.
#[pyclass(module = "manyfold._native", name = "SimDevice", unsendable)]
pub struct SimDevice {
    board: SimBoard,
}

impl SimDevice {
    fn take<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = PyBytes::new(py, self.board.output());
        self.board.take_output();
        bytes
    }
}

#[pymethods]
impl SimDevice {
    /// A board named `board` with `image` in its partition region, booted at `now_us`. Its
    /// first output is the boot 0x00 a board sends (docs/wire.md 1.3). With `upload`, it
    /// accepts partition uploads (and says so in its describe); the board firmware does not yet,
    /// so a simulation that must match a board byte for byte leaves it off.
    #[new]
    #[pyo3(signature = (board, image, now_us = 0, upload = false))]
    fn new(board: &str, image: &[u8], now_us: i64, upload: bool) -> PyResult<Self> {
        let board = SimBoard::new(board, image, now_us, upload).map_err(PyValueError::new_err)?;
        Ok(SimDevice { board })
    }

    /// Hands `data` to the device at `now_us` and returns what it sent.
    fn write<'py>(&mut self, py: Python<'py>, now_us: i64, data: &[u8]) -> Bound<'py, PyBytes> {
        self.board.write(now_us, data);
        self.take(py)
    }

    /// Lets the device run at `now_us` (timers, heartbeats) and returns what it sent.
    fn poll<'py>(&mut self, py: Python<'py>, now_us: i64) -> Bound<'py, PyBytes> {
        self.board.poll(now_us);
        self.take(py)
    }

    /// The device's time (its lockstep time, or the caller's clock free-running).
    #[getter]
    fn time_us(&self) -> i64 {
        self.board.time_us()
    }

    /// True in lockstep.
    #[getter]
    fn lockstep(&self) -> bool {
        self.board.lockstep()
    }

    /// 0 when the partition is loaded, else the image error code (as a describe says).
    #[getter]
    fn image_status(&self) -> u8 {
        self.board.image_status()
    }

    /// The image in the region now (after uploads).
    #[getter]
    fn image<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.board.image())
    }

    /// Frames lost because nobody read the output.
    #[getter]
    fn tx_lost(&self) -> u32 {
        self.board.tx_lost()
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SimDevice>()?;
    Ok(())
}
