//! STM32F401RE (NUCLEO-F401RE): USART2 on PA2 (TX) and PA3 (RX), the pins the board wires to
//! its ST-LINK's virtual COM port.
//!
//! Register offsets and bits from ST's RM0368 (STM32F401xB/C/D/E reference manual), sections
//! "RCC", "GPIO" and "USART". After reset the core runs from the 16 MHz HSI oscillator and the
//! firmware leaves it there (no PLL), so APB1, which clocks USART2, also runs at 16 MHz.
//!
//! QEMU has no STM32F401 machine; CI boots this firmware on `netduinoplus2` (STM32F405), whose
//! USART2, flash and SRAM addresses are the same (boards/nucleo-f401re/board.toml, `[qemu_stand_in]`).

use super::config::{CLOCK_HZ, UART_BASE, UART_BAUD};
use super::mmio;
use crate::link::SerialPort;

// RCC: peripheral clock enables.
const RCC_AHB1ENR: usize = 0x4002_3830; // bit 0: GPIOA
const RCC_APB1ENR: usize = 0x4002_3840; // bit 17: USART2
const AHB1ENR_GPIOAEN: u32 = 1 << 0;
const APB1ENR_USART2EN: u32 = 1 << 17;

// GPIO port A.
const GPIOA_MODER: usize = 0x4002_0000; // two bits per pin; 0b10 = alternate function
const GPIOA_AFRL: usize = 0x4002_0020; // four bits per pin 0..=7
const MODER_PA2_PA3_MASK: u32 = 0b1111 << 4;
const MODER_PA2_PA3_AF: u32 = 0b1010 << 4;
const AFRL_PA2_PA3_MASK: u32 = 0xFF << 8;
const AFRL_PA2_PA3_AF7: u32 = 0x77 << 8; // AF7 = USART1..2

// USART registers (offsets from UART_BASE).
const USART_SR: usize = 0x00;
const USART_DR: usize = 0x04;
const USART_BRR: usize = 0x08;
const USART_CR1: usize = 0x0C;
const SR_ERRORS: u32 = 0b1111; // parity, framing, noise, overrun
const SR_RXNE: u32 = 1 << 5; // a received byte waits in DR
const SR_TXE: u32 = 1 << 7; // DR can take the next byte
const CR1_RE: u32 = 1 << 2;
const CR1_TE: u32 = 1 << 3;
const CR1_UE: u32 = 1 << 13;

/// USART2 of the STM32F401, 8N1 (the reset framing) at `UART_BAUD`.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Enables the port A and USART2 clocks, hands PA2/PA3 to USART2 (AF7), and starts it.
    pub fn init() -> Uart {
        // With 16x oversampling BRR holds clock / baud as a 12.4 fixed-point divisor, rounded.
        let brr = (CLOCK_HZ + UART_BAUD / 2) / UART_BAUD;
        // SAFETY: fixed, aligned register addresses of this chip's RCC, GPIOA and USART2 blocks,
        // written in the order RM0368 gives for USART initialization; this is the only code that
        // touches them, and it runs once, before the UART is used. The read-modify-write of the
        // next register provides the two clock cycles RM0368 asks for after a clock enable.
        unsafe {
            mmio::write32(RCC_AHB1ENR, mmio::read32(RCC_AHB1ENR) | AHB1ENR_GPIOAEN);
            mmio::write32(RCC_APB1ENR, mmio::read32(RCC_APB1ENR) | APB1ENR_USART2EN);
            let moder = mmio::read32(GPIOA_MODER) & !MODER_PA2_PA3_MASK;
            mmio::write32(GPIOA_MODER, moder | MODER_PA2_PA3_AF);
            let afrl = mmio::read32(GPIOA_AFRL) & !AFRL_PA2_PA3_MASK;
            mmio::write32(GPIOA_AFRL, afrl | AFRL_PA2_PA3_AF7);

            mmio::write32(UART_BASE + USART_CR1, 0);
            mmio::write32(UART_BASE + USART_BRR, brr);
            mmio::write32(UART_BASE + USART_CR1, CR1_UE | CR1_TE | CR1_RE);
        }
        Uart { _private: () }
    }
}

impl SerialPort for Uart {
    fn try_read(&mut self) -> Option<u8> {
        // SAFETY: USART2 registers, initialized in `init`; `self` is the only user. Reading SR
        // and then DR takes the byte and clears RXNE and the error flags; DR is read only when
        // SR says a byte is there.
        unsafe {
            let status = mmio::read32(UART_BASE + USART_SR);
            if status & SR_RXNE == 0 {
                return None;
            }
            let data = mmio::read32(UART_BASE + USART_DR);
            // A byte received with an error (or after an overrun lost one) is dropped: the frame
            // it belongs to then fails its CRC or COBS check, and is counted there.
            if status & SR_ERRORS != 0 {
                return None;
            }
            Some(data as u8)
        }
    }

    fn try_write(&mut self, byte: u8) -> bool {
        // SAFETY: USART2 registers, initialized in `init`; `self` is the only user. DR is written
        // only when SR says the transmit data register is empty.
        unsafe {
            if mmio::read32(UART_BASE + USART_SR) & SR_TXE == 0 {
                return false;
            }
            mmio::write32(UART_BASE + USART_DR, u32::from(byte));
        }
        true
    }
}
