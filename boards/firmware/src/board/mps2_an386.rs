//! MPS2+ AN386 (QEMU `mps2-an386`): UART0, a CMSDK APB UART.
//!
//! Register layout from the Cortex-M System Design Kit TRM (ARM DDI 0479), "APB UART", as
//! modelled by QEMU's `hw/char/cmsdk-apb-uart.c`. The UART has no FIFO: one byte of buffer in
//! each direction. It needs no clock gating or pin setup on this FPGA image.

use super::config::{CLOCK_HZ, UART_BASE, UART_BAUD};
use super::mmio;
use crate::link::SerialPort;

const UART_DATA: usize = 0x00;
const UART_STATE: usize = 0x04;
const UART_CTRL: usize = 0x08;
const UART_BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_RX_OVERRUN: u32 = 1 << 3; // write 1 to clear
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;

/// UART0 of the AN386 image, 8N1 (fixed) at `UART_BAUD`.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Sets the baud divisor and enables the transmitter and receiver (interrupts stay off).
    pub fn init() -> Uart {
        // BAUDDIV = PCLK / baud; the TRM requires at least 16.
        let bauddiv = (CLOCK_HZ / UART_BAUD).max(16);
        // SAFETY: fixed, aligned register addresses of this board's UART0; this is the only code
        // that touches them, and it runs once, before the UART is used.
        unsafe {
            mmio::write32(UART_BASE + UART_CTRL, 0);
            mmio::write32(UART_BASE + UART_BAUDDIV, bauddiv);
            mmio::write32(UART_BASE + UART_STATE, STATE_RX_OVERRUN);
            mmio::write32(UART_BASE + UART_CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        }
        Uart { _private: () }
    }
}

impl SerialPort for Uart {
    fn try_read(&mut self) -> Option<u8> {
        // SAFETY: UART0 registers, initialized in `init`; `self` is the only user. Reading DATA
        // takes the byte and clears RX_FULL, and happens only when STATE says a byte is there.
        unsafe {
            if mmio::read32(UART_BASE + UART_STATE) & STATE_RX_FULL == 0 {
                return None;
            }
            Some(mmio::read32(UART_BASE + UART_DATA) as u8)
        }
    }

    fn try_write(&mut self, byte: u8) -> bool {
        // SAFETY: UART0 registers, initialized in `init`; `self` is the only user. DATA is
        // written only when STATE says the transmit buffer is empty.
        unsafe {
            if mmio::read32(UART_BASE + UART_STATE) & STATE_TX_FULL != 0 {
                return false;
            }
            mmio::write32(UART_BASE + UART_DATA, u32::from(byte));
        }
        true
    }
}
