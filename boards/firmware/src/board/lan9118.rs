//! SMSC LAN9118-family Ethernet controller (the one QEMU's `mps2-an386` models at
//! `0x4020_0000`), polled through its PIO FIFO ports, as a smoltcp [`Device`].
//!
//! Register layout from the LAN9118 datasheet (SMSC), "System Control and Status
//! Registers" and "MAC Control and Status Registers", as modelled by QEMU's `hw/net/lan9118.c`:
//!
//! - RX data FIFO port +0x00, TX data FIFO port +0x20, RX status FIFO +0x40;
//! - ID_REV +0x50, RX_CFG +0x6C, TX_CFG +0x70 (TX_ON bit 1), HW_CFG +0x74 (SRST bit 0),
//!   RX_DP_CTRL +0x78 (RX_FFWD bit 31), RX_FIFO_INF +0x7C (status count in bits 23:16),
//!   TX_FIFO_INF +0x80 (free data bytes in bits 15:0), PMT_CTRL +0x84 (READY bit 0);
//! - MAC_CSR_CMD +0xA4 (BUSY bit 31, R/nW bit 30, index in bits 7:0) and MAC_CSR_DATA +0xA8,
//!   the window onto the MAC registers MAC_CR (1: TXEN bit 3, RXEN bit 2), ADDRH (2), ADDRL (3).
//!
//! A frame goes out as TX command A (first and last segment, buffer size), command B (packet
//! length) and the data, little-endian words; a frame comes in as one RX status word (length,
//! with the 4-byte FCS, in bits 29:16; error summary bit 15) and its data words. No DMA, no
//! interrupt: the firmware polls. A frame larger than the buffers is skipped with RX_FFWD and
//! counted.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::mmio;

const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const ID_REV: usize = 0x50;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_DP_CTRL: usize = 0x78;
const RX_FIFO_INF: usize = 0x7C;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xA4;
const MAC_CSR_DATA: usize = 0xA8;

const HW_CFG_SRST: u32 = 1 << 0;
const PMT_CTRL_READY: u32 = 1 << 0;
const TX_CFG_TX_ON: u32 = 1 << 1;
const RX_DP_CTRL_FFWD: u32 = 1 << 31;
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const RX_STATUS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

/// The chip id in ID_REV's upper half (0x0118 for the LAN9118; 0x9220 and others for its
/// siblings, which share this register set).
const ID_LAN9118: u32 = 0x0118;

/// Largest Ethernet frame (header and payload, no FCS) this driver moves: a datagram of the
/// board's largest message (`max_message` + 4 bytes of CRC) in IPv4 and UDP, with room to
/// spare. smoltcp uses it as the MTU; larger received frames are skipped and counted.
pub const FRAME_MAX: usize = 320;

/// Bounded waits on the chip (register polls), in iterations.
const SPIN_MAX: u32 = 100_000;

/// The register block.
#[derive(Clone, Copy)]
struct Regs {
    base: usize,
}

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` is the controller's register block (the board descriptor's
        // `ethernet.base`), offsets are the 4-byte aligned registers listed above, and this
        // driver is their only user. Reads of the FIFO ports consume data, which the callers
        // account for.
        unsafe { mmio::read32(self.base + offset) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`; every write is one the datasheet allows in the chip's state.
        unsafe { mmio::write32(self.base + offset, value) }
    }

    /// Polls `ready` at most `SPIN_MAX` times.
    fn wait(self, ready: impl Fn(Self) -> bool) -> bool {
        (0..SPIN_MAX).any(|_| ready(self))
    }

    fn mac_read(self, index: u32) -> Option<u32> {
        self.write(MAC_CSR_CMD, CSR_BUSY | CSR_READ | index);
        self.wait(|r| r.read(MAC_CSR_CMD) & CSR_BUSY == 0).then(|| self.read(MAC_CSR_DATA))
    }

    fn mac_write(self, index: u32, value: u32) -> bool {
        self.write(MAC_CSR_DATA, value);
        self.write(MAC_CSR_CMD, CSR_BUSY | index);
        self.wait(|r| r.read(MAC_CSR_CMD) & CSR_BUSY == 0)
    }

    /// Sends the first `len` bytes of `frame` as one frame (dropped if the TX FIFO never has
    /// room: the link layer above counts the loss by its sequence numbers).
    fn send_frame(self, frame: &[u8], len: usize) {
        let len = len.min(frame.len());
        let words = len.div_ceil(4);
        // Room for the two command words and the data (4.5 KiB FIFO; QEMU drains it at once).
        if !self.wait(|r| (r.read(TX_FIFO_INF) & 0xffff) as usize >= words * 4 + 8) {
            return;
        }
        self.write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32);
        self.write(TX_DATA_FIFO, len as u32);
        for chunk in frame[..len].chunks(4) {
            let mut bytes = [0u8; 4];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.write(TX_DATA_FIFO, u32::from_le_bytes(bytes));
        }
    }
}

/// The controller, with a buffer for one frame each way.
pub struct Lan9118 {
    regs: Regs,
    rx: [u8; FRAME_MAX],
    tx: [u8; FRAME_MAX],
    rx_skipped: u32,
}

/// Why the controller did not come up.
#[derive(Debug, Clone, Copy)]
pub enum NicError {
    /// ID_REV does not name a LAN9118-family chip (nothing at the address?).
    NotFound,
    /// The chip did not finish its reset, or a MAC register access, in time.
    NotReady,
}

impl Lan9118 {
    /// Resets the controller at `base` and turns its transmitter and receiver on. Returns it
    /// and the MAC address it carries (loaded from its EEPROM; QEMU puts the `-nic` address there).
    pub fn init(base: usize) -> Result<(Lan9118, [u8; 6]), NicError> {
        let regs = Regs { base };
        if regs.read(ID_REV) >> 16 != ID_LAN9118 {
            return Err(NicError::NotFound);
        }
        regs.write(HW_CFG, HW_CFG_SRST);
        if !regs.wait(|r| r.read(HW_CFG) & HW_CFG_SRST == 0 && r.read(PMT_CTRL) & PMT_CTRL_READY != 0) {
            return Err(NicError::NotReady);
        }
        let low = regs.mac_read(MAC_ADDRL).ok_or(NicError::NotReady)?;
        let high = regs.mac_read(MAC_ADDRH).ok_or(NicError::NotReady)?;
        let [a, b, c, d] = low.to_le_bytes();
        let [e, f, _, _] = high.to_le_bytes();
        // Frames for this address and broadcasts only (MAC_CR resets to promiscuous).
        if !regs.mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN) {
            return Err(NicError::NotReady);
        }
        regs.write(TX_CFG, TX_CFG_TX_ON);
        Ok((Lan9118 { regs, rx: [0; FRAME_MAX], tx: [0; FRAME_MAX], rx_skipped: 0 }, [a, b, c, d, e, f]))
    }

    /// Received frames skipped: longer than [`FRAME_MAX`], or with the error summary bit.
    pub fn rx_skipped(&self) -> u32 {
        self.rx_skipped
    }

    /// Takes the next received frame into `rx`; its length, or None when none is waiting (or
    /// the one waiting was skipped).
    fn take_frame(&mut self) -> Option<usize> {
        let regs = self.regs;
        if (regs.read(RX_FIFO_INF) >> 16) & 0xff == 0 {
            return None;
        }
        let status = regs.read(RX_STATUS_FIFO);
        let with_fcs = ((status >> 16) & 0x3fff) as usize;
        let words = with_fcs.div_ceil(4);
        if status & RX_STATUS_ERROR != 0 || with_fcs < 4 || with_fcs - 4 > FRAME_MAX {
            self.rx_skipped = self.rx_skipped.wrapping_add(1);
            if words >= 4 {
                regs.write(RX_DP_CTRL, RX_DP_CTRL_FFWD);
                // Completes at once on QEMU; a real chip clears the bit when done.
                regs.wait(|r| r.read(RX_DP_CTRL) & RX_DP_CTRL_FFWD == 0);
            } else {
                for _ in 0..words {
                    let _ = regs.read(RX_DATA_FIFO);
                }
            }
            return None;
        }
        // The FCS is read with the data (it fills the last words) and not kept.
        for word in 0..words {
            let bytes = regs.read(RX_DATA_FIFO).to_le_bytes();
            for (i, byte) in bytes.into_iter().enumerate() {
                if let Some(slot) = self.rx.get_mut(word * 4 + i) {
                    *slot = byte;
                }
            }
        }
        Some(with_fcs - 4)
    }
}

/// A received frame, in the driver's buffer.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    regs: Regs,
    buffer: &'a mut [u8; FRAME_MAX],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME_MAX);
        let result = f(&mut self.buffer[..len]);
        self.regs.send_frame(&self.buffer[..], len);
        result
    }
}

impl Device for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.take_frame()?;
        let Lan9118 { regs, rx, tx, .. } = self;
        Some((RxToken { frame: &rx[..len.min(FRAME_MAX)] }, TxToken { regs: *regs, buffer: tx }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken { regs: self.regs, buffer: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.max_transmission_unit = FRAME_MAX;
        caps.max_burst_size = Some(1);
        caps.medium = Medium::Ethernet;
        caps
    }
}
