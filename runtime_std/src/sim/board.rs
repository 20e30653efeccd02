//! [`SimBoard`]: a board's device (`manyfold_core::device`) on the host. It is the firmware's
//! code with the firmware's capacities and buffers (`manyfold_core::device::board`); only the
//! byte pipes differ: bytes written by the host go straight to the device, and what the device
//! sends is returned.
//!
//! Differences from a board, all outside the device: time is whatever the caller passes (a
//! virtual clock), the partition region is a byte vector that accepts uploads, and the `board`
//! query reports 0 for uptime and stack peak.

use manyfold_core::device::board::{BoardDevice, MAX_MESSAGE};
use manyfold_core::device::{ImageStore, Tx};
use manyfold_core::framing::{decoder_buffer_len, frame_len_max, FrameDecoder};
use manyfold_core::link::LinkTimers;

/// The partition region of a board: 8 KiB (boards/<board>/board.toml).
pub const REGION_LEN: usize = 8 * 1024;

/// Output kept when the host does not read: far more than any step produces in a test; past
/// it, frames are lost and counted ([`SimBoard::tx_lost`]), as on a UART nobody listens to.
const OUT_MAX: usize = 16 * 1024 * 1024;

/// Work done per `write` or `poll` call at most: a step that needs more continues on the next
/// call (each pass fires up to 32 timers).
const PASSES_MAX: usize = 1 << 20;

type Dev = BoardDevice<[u8; decoder_buffer_len(MAX_MESSAGE)], [u8; MAX_MESSAGE], [u8; frame_len_max(MAX_MESSAGE)]>;

/// The boards the simulation emulates.
pub const BOARDS: [&str; 4] = ["lm3s6965evb", "mps2-an386", "nucleo-f401re", "sim"];

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

/// The board name the device keeps (a `&'static str`), or a one-sentence error.
pub fn board_name(board: &str) -> Result<&'static str, String> {
    BOARDS.iter().copied().find(|b| *b == board).ok_or_else(|| {
        format!("unknown board {board:?}: the simulation emulates lm3s6965evb, mps2-an386, nucleo-f401re or sim")
    })
}

/// A simulated board: [`SimBoard::write`] hands it bytes, [`SimBoard::poll`] lets it run, and
/// what it sent waits in [`SimBoard::output`] until taken.
pub struct SimBoard {
    name: &'static str,
    device: Box<Dev>,
    store: Store,
    pending: Vec<u8>,
    out: Out,
}

impl SimBoard {
    /// A board named `board` with `image` in its partition region, booted at `now_us`. Its
    /// first output is the boot 0x00 a board sends (docs/wire.md 1.3). With `upload`, it
    /// accepts partition uploads (and says so in its describe).
    pub fn new(board: &str, image: &[u8], now_us: i64, upload: bool) -> Result<SimBoard, String> {
        let name = board_name(board)?;
        if image.len() > REGION_LEN {
            return Err(format!("the image has {} bytes; a board's partition region holds {REGION_LEN}", image.len()));
        }
        // The region is erased flash after the image, as on a board loaded with QEMU's loader.
        let store = Store { image: image.to_vec(), staged: Vec::new(), capacity: REGION_LEN, upload };
        let mut sim = SimBoard { name, device: Self::device(name)?, store, pending: Vec::new(), out: Out(Vec::new()) };
        sim.boot(now_us);
        Ok(sim)
    }

    fn device(name: &'static str) -> Result<Box<Dev>, String> {
        let decoder = FrameDecoder::new([0; decoder_buffer_len(MAX_MESSAGE)], MAX_MESSAGE).map_err(|e| e.to_string())?;
        Ok(Box::new(Dev::new(name, decoder, [0; MAX_MESSAGE], [0; frame_len_max(MAX_MESSAGE)], LinkTimers::DEFAULT)))
    }

    fn boot(&mut self, now_us: i64) {
        self.out.0.push(0x00);
        self.device.boot(&self.store, now_us);
    }

    /// The board restarts at `now_us` (power cycle or watchdog): a new device (no session,
    /// free-running, counters and sequence numbers from the start) with the same region, and
    /// input not yet handled is lost. It sends its boot 0x00 again.
    pub fn reboot(&mut self, now_us: i64) {
        if let Ok(device) = Self::device(self.name) {
            self.device = device;
        }
        self.pending.clear();
        self.store.staged.clear();
        self.boot(now_us);
    }

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

    /// Hands `data` to the device at `now_us`; what it sent goes to the output.
    pub fn write(&mut self, now_us: i64, data: &[u8]) {
        self.pending.extend_from_slice(data);
        self.run(now_us);
    }

    /// Lets the device run at `now_us` (timers, heartbeats); what it sent goes to the output.
    pub fn poll(&mut self, now_us: i64) {
        self.run(now_us);
    }

    /// What the device sent and nobody took yet.
    pub fn output(&self) -> &[u8] {
        &self.out.0
    }

    /// Takes what the device sent.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out.0)
    }

    /// Takes what the device sent into `into` (appended), keeping this board's buffer.
    pub fn drain_output(&mut self, into: &mut Vec<u8>) {
        into.extend_from_slice(&self.out.0);
        self.out.0.clear();
    }

    /// The device's time (its lockstep time, or the caller's clock free-running).
    pub fn time_us(&self) -> i64 {
        self.device.exec().time_us()
    }

    /// True in lockstep.
    pub fn lockstep(&self) -> bool {
        self.device.exec().is_lockstep()
    }

    /// 0 when the partition is loaded, else the image error code (as a describe says).
    pub fn image_status(&self) -> u8 {
        match self.device.exec().status() {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    }

    /// The image in the region now (after uploads).
    pub fn image(&self) -> &[u8] {
        &self.store.image
    }

    /// Frames lost because nobody read the output.
    pub fn tx_lost(&self) -> u32 {
        self.device.tx_lost()
    }
}
