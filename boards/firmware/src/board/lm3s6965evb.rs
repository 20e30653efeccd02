//! Stellaris LM3S6965 (QEMU `lm3s6965evb`): UART0, a PL011, on port A pins PA0 (U0Rx) and
//! PA1 (U0Tx).
//!
//! Register offsets and bits from the LM3S6965 datasheet (sections "System Control", "GPIO",
//! "UART"); QEMU models the UART with its PL011 (Luminary variant), the port with its PL061.

use super::config::{CLOCK_HZ, UART_BASE, UART_BAUD};
use super::mmio;
use crate::link::SerialPort;

// System control: run-mode clock gating.
const SYSCTL_RCGC1: usize = 0x400F_E104; // bit 0: UART0
const SYSCTL_RCGC2: usize = 0x400F_E108; // bit 0: GPIO port A
const RCGC1_UART0: u32 = 1 << 0;
const RCGC2_GPIOA: u32 = 1 << 0;

// GPIO port A (APB aperture).
const GPIOA_BASE: usize = 0x4000_4000;
const GPIO_AFSEL: usize = 0x420; // alternate function select
const GPIO_DEN: usize = 0x51C; // digital enable
const PA0_PA1: u32 = 0b11;

// PL011 registers (offsets from UART_BASE).
const UART_DR: usize = 0x000;
const UART_FR: usize = 0x018;
const UART_IBRD: usize = 0x024;
const UART_FBRD: usize = 0x028;
const UART_LCRH: usize = 0x02C;
const UART_CTL: usize = 0x030;
const FR_RXFE: u32 = 1 << 4; // receive FIFO empty
const FR_TXFF: u32 = 1 << 5; // transmit FIFO full
const LCRH_FEN: u32 = 1 << 4; // FIFOs on
const LCRH_WLEN_8: u32 = 0b11 << 5; // 8 data bits (no parity, 1 stop bit)
const CTL_UARTEN: u32 = 1 << 0;
const CTL_TXE: u32 = 1 << 8;
const CTL_RXE: u32 = 1 << 9;
/// Data register bits 8..=11 are the receive error flags (framing, parity, break, overrun).
const DR_ERRORS: u32 = 0xF00;

/// UART0 of the LM3S6965, configured 8N1 at `UART_BAUD`.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Enables the UART0 and port A clocks, hands PA0/PA1 to the UART, and starts it.
    pub fn init() -> Uart {
        // Divisor = clock / (16 * baud) as a 16.6 fixed-point number, rounded.
        let divisor_64ths = (8 * CLOCK_HZ / UART_BAUD + 1) / 2;
        // SAFETY: fixed, aligned register addresses of this chip's system control, GPIO port A
        // and UART0 blocks, written in the order the datasheet gives for UART initialization;
        // this is the only code that touches them, and it runs once, before the UART is used.
        // The datasheet asks for a few clock cycles between enabling a peripheral's clock and
        // accessing it: the read-modify-write of the next register provides them.
        unsafe {
            for (register, bits) in [
                (SYSCTL_RCGC1, RCGC1_UART0),
                (SYSCTL_RCGC2, RCGC2_GPIOA),
                (GPIOA_BASE + GPIO_AFSEL, PA0_PA1),
                (GPIOA_BASE + GPIO_DEN, PA0_PA1),
            ] {
                mmio::write32(register, mmio::read32(register) | bits);
            }

            mmio::write32(UART_BASE + UART_CTL, 0);
            mmio::write32(UART_BASE + UART_IBRD, divisor_64ths / 64);
            mmio::write32(UART_BASE + UART_FBRD, divisor_64ths % 64);
            // Writing LCRH latches the new divisor.
            mmio::write32(UART_BASE + UART_LCRH, LCRH_WLEN_8 | LCRH_FEN);
            mmio::write32(UART_BASE + UART_CTL, CTL_UARTEN | CTL_TXE | CTL_RXE);
        }
        Uart { _private: () }
    }
}

impl SerialPort for Uart {
    fn try_read(&mut self) -> Option<u8> {
        // SAFETY: UART0 registers, initialized in `init`; `self` is the only user. Reading DR
        // pops one byte, and only after FR says the FIFO holds one.
        unsafe {
            if mmio::read32(UART_BASE + UART_FR) & FR_RXFE != 0 {
                return None;
            }
            let data = mmio::read32(UART_BASE + UART_DR);
            // A byte received with an error is dropped: the frame it belongs to then fails its
            // CRC or COBS check, and is counted there.
            if data & DR_ERRORS != 0 {
                return None;
            }
            Some(data as u8)
        }
    }

    fn try_write(&mut self, byte: u8) -> bool {
        // SAFETY: UART0 registers, initialized in `init`; `self` is the only user. DR is
        // written only when FR says the transmit FIFO has room.
        unsafe {
            if mmio::read32(UART_BASE + UART_FR) & FR_TXFF != 0 {
                return false;
            }
            mmio::write32(UART_BASE + UART_DR, u32::from(byte));
        }
        true
    }
}
