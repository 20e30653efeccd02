//! `SimDevice`: a board's device (`manyfold_core::device`) inside the extension, for
//! `manyfold.sim`. It is the firmware's code with the firmware's capacities and buffers
//! (`manyfold_core::device::board`); only the byte pipes differ: bytes written by the host go
//! straight to the device, and what the device sends is returned.
//!
//! Differences from a board, all outside the device: time is whatever the caller passes (a
//! virtual clock by default), the partition region is a byte vector that accepts uploads, and the
//! `board` query reports 0 for uptime and stack peak.

use manyfold_core::device::board::{BoardDevice, MAX_MESSAGE};
use manyfold_core::device::{ImageStore, Tx};
use manyfold_core::framing::{decoder_buffer_len, frame_len_max, FrameDecoder};
use manyfold_core::link::LinkTimers;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The partition region of a board: 8 KiB (boards/<board>/board.toml).
const REGION_LEN: usize = 8 * 1024;

/// Output kept when the host does not read: far more than any step produces in a test; past
/// it, frames are lost and counted (`SimDevice.tx_lost`), as on a UART nobody listens to.
const OUT_MAX: usize = 16 * 1024 * 1024;

/// Work done per `write` or `poll` call at most: a step that needs more continues on the next
/// call (each pass fires up to 32 timers).
const PASSES_MAX: usize = 1 << 20;

type Dev = BoardDevice<[u8; decoder_buffer_len(MAX_MESSAGE)], [u8; MAX_MESSAGE], [u8; frame_len_max(MAX_MESSAGE)]>;

/// The region and an upload staging area, like a board with a second flash bank.
struct Store {
    image: Vec<u8>,
    staged: Vec<u8>,
    capacity: usize,
    upload: bool,
}

impl ImageStore for Store {
    fn image(&self) -> &[u8] {
        &self.image
    }
    fn can_upload(&self) -> bool {
        self.upload
    }
    fn begin(&mut self, len: usize) -> Result<(), usize> {
        if len > self.capacity {
            return Err(self.capacity);
        }
        self.staged.clear();
        Ok(())
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        if offset != self.staged.len() || offset + data.len() > self.capacity {
            return false;
        }
        self.staged.extend_from_slice(data);
        true
    }
    fn staged(&self) -> &[u8] {
        &self.staged
    }
    fn commit(&mut self) {
        self.image = std::mem::take(&mut self.staged);
    }
    fn abort(&mut self) {
        self.staged.clear();
    }
}

struct Out(Vec<u8>);

impl Tx for Out {
    fn write(&mut self, bytes: &[u8]) -> bool {
        if self.0.len() + bytes.len() > OUT_MAX {
            return false;
        }
        self.0.extend_from_slice(bytes);
        true
    }
}

/// A simulated board: `write(now_us, bytes) -> bytes` and `poll(now_us) -> bytes`.
#[pyclass(module = "manyfold._native", name = "SimDevice", unsendable)]
pub struct SimDevice {
    device: Box<Dev>,
    store: Store,
    pending: Vec<u8>,
    out: Out,
}

fn board_name(board: &str) -> PyResult<&'static str> {
    // The device keeps a `&'static str`; the known boards are the only names it can have.
    match board {
        "lm3s6965evb" => Ok("lm3s6965evb"),
        "mps2-an386" => Ok("mps2-an386"),
        "nucleo-f401re" => Ok("nucleo-f401re"),
        "sim" => Ok("sim"),
        other => Err(PyValueError::new_err(format!(
            "unknown board {other:?}: the simulation emulates lm3s6965evb, mps2-an386, nucleo-f401re or sim"
        ))),
    }
}

impl SimDevice {
    fn run(&mut self, now_us: i64) {
        let mut passes = 0;
        // Bounded: each pass either uses input bytes or advances a step.
        while passes < PASSES_MAX {
            passes += 1;
            if self.device.busy() {
                self.device.poll(now_us, &mut self.store, &mut self.out);
                continue;
            }
            if self.pending.is_empty() {
                break;
            }
            let used = self.device.receive(now_us, &self.pending, &mut self.store, &mut self.out);
            self.pending.drain(..used);
        }
        if !self.device.busy() {
            self.device.poll(now_us, &mut self.store, &mut self.out);
        }
    }

    fn take<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = PyBytes::new(py, &self.out.0);
        self.out.0.clear();
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
        let name = board_name(board)?;
        if image.len() > REGION_LEN {
            return Err(PyValueError::new_err(format!(
                "the image has {} bytes; a board's partition region holds {REGION_LEN}",
                image.len()
            )));
        }
        let decoder = FrameDecoder::new([0; decoder_buffer_len(MAX_MESSAGE)], MAX_MESSAGE)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let device = Dev::new(name, decoder, [0; MAX_MESSAGE], [0; frame_len_max(MAX_MESSAGE)], LinkTimers::DEFAULT);
        // The region is erased flash after the image, as on a board loaded with QEMU's loader.
        let store = Store { image: image.to_vec(), staged: Vec::new(), capacity: REGION_LEN, upload };
        let mut sim = SimDevice { device: Box::new(device), store, pending: Vec::new(), out: Out(vec![0x00]) };
        sim.device.boot(&sim.store, now_us);
        Ok(sim)
    }

    /// Hands `data` to the device at `now_us` and returns what it sent.
    fn write<'py>(&mut self, py: Python<'py>, now_us: i64, data: &[u8]) -> Bound<'py, PyBytes> {
        self.pending.extend_from_slice(data);
        self.run(now_us);
        self.take(py)
    }

    /// Lets the device run at `now_us` (timers, heartbeats) and returns what it sent.
    fn poll<'py>(&mut self, py: Python<'py>, now_us: i64) -> Bound<'py, PyBytes> {
        self.run(now_us);
        self.take(py)
    }

    /// The device's time (its lockstep time, or the caller's clock free-running).
    #[getter]
    fn time_us(&self) -> i64 {
        self.device.exec().time_us()
    }

    /// True in lockstep.
    #[getter]
    fn lockstep(&self) -> bool {
        self.device.exec().is_lockstep()
    }

    /// 0 when the partition is loaded, else the image error code (as a describe says).
    #[getter]
    fn image_status(&self) -> u8 {
        match self.device.exec().status() {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    }

    /// The image in the region now (after uploads).
    #[getter]
    fn image<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.store.image)
    }

    /// Frames lost because nobody read the output.
    #[getter]
    fn tx_lost(&self) -> u32 {
        self.device.tx_lost()
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SimDevice>()?;
    Ok(())
}
