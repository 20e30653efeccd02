//! Manyfold board firmware.
//!
//! One generic program for every board; the board is chosen at build time by exactly one Cargo
//! feature (`board-lm3s6965evb`, `board-mps2-an386`), which selects the board layer
//! ([`board`]), the descriptor `boards/<board>/board.toml` and the linker script
//! `boards/<board>/link.x`. Build with `boards/build.sh BOARD`.
//!
//! The firmware runs the partition image found in the board's partition region with
//! `manyfold-core`'s device: the link protocol v1.1 (docs/wire.md section 2) over UART0 and the
//! v1 frame layer (or, with the `link-udp` feature, over UDP on the board's Ethernet: [`udp`]), the step executor, and the image decoder (section 3). Free-running, its time
//! is the SysTick millisecond clock; in lockstep, the host's steps. With an empty or invalid
//! image it still answers: the describe says why nothing runs. No heap; every buffer is a fixed
//! array sized from the board's `max_message`, and every table has the capacity of
//! `manyfold_core::device::board`.
//!
//! `unsafe` is confined to [`board`]; the rest of the crate is checked safe code.
#![no_std]
#![no_main]
#![deny(unsafe_code)]
// The UDP build keeps the UART for its boot byte only: the serial link's ring and the UART's
// receive side are built but not used there.
#![cfg_attr(feature = "link-udp", allow(dead_code))]

#[allow(unsafe_code)]
mod board;
mod link;
#[cfg(feature = "link-udp")]
mod udp;

use manyfold_core::device::board::BoardDevice;
use manyfold_core::device::Tx;
use manyfold_core::link::LinkTimers;
use manyfold_framing::{decoder_buffer_len, frame_len_max, FrameDecoder};

use board::config::{CLOCK_HZ, MAX_MESSAGE, NAME};
use link::{Link, SerialPort};

/// Received bytes taken from the UART ring per pass of the main loop.
const CHUNK_LEN: usize = 16;

/// In lockstep, time moves only when the host steps it. A host that vanished would leave the
/// board frozen, so after this long without a byte from the host (board clock) the board
/// returns to free-running on its own.
const LOCKSTEP_LEASE_MS: u64 = 30_000;

/// How often the stack high-water mark is measured (the scan reads up to 32 KiB of RAM).
const STACK_SCAN_MS: u64 = 250;

impl<P: SerialPort> Tx for Link<P> {
    fn write(&mut self, bytes: &[u8]) -> bool {
        self.send(bytes);
        true // the UART is drained by polling: a write always completes
    }
}

/// Milliseconds since boot in 64 bits, from the 32-bit SysTick counter (which wraps after 49
/// days); called often enough that it never misses a wrap.
struct Clock {
    last: u32,
    high: u64,
}

impl Clock {
    fn now_ms(&mut self) -> u64 {
        let now = board::uptime_ms();
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | u64::from(now)
    }
}

fn us(ms: u64) -> i64 {
    (ms as i64).saturating_mul(1000)
}

/// The device with every table and buffer, built in place in the caller's stack frame.
macro_rules! new_device {
    () => {{
        let Ok(decoder) = FrameDecoder::new([0u8; decoder_buffer_len(MAX_MESSAGE)], MAX_MESSAGE) else {
            board::halt(); // unreachable: the buffer is sized for MAX_MESSAGE
        };
        BoardDevice::new(
            NAME,
            decoder,
            [0u8; MAX_MESSAGE],
            [0u8; frame_len_max(MAX_MESSAGE)],
            LinkTimers::DEFAULT,
        )
    }};
}

/// The firmware after reset (called by the board layer once memory is initialized): the link
/// over UART0.
#[cfg(not(feature = "link-udp"))]
pub(crate) fn run() -> ! {
    let mut link = Link::new(board::Uart::init());
    board::start_millis(CLOCK_HZ);
    // docs/wire.md 1.3: a 0x00 before the first frame makes the peer drop any half-received
    // frame, for example noise from the reset.
    link.send(&[0x00]);

    let mut clock = Clock { last: 0, high: 0 };
    let mut store: &'static [u8] = board::partition();
    let mut device = new_device!();
    device.boot(&store, us(clock.now_ms()));

    let mut chunk = [0u8; CHUNK_LEN];
    let (mut from, mut to) = (0, 0);
    let mut last_rx_ms = 0;
    let mut last_scan_ms = 0;
    loop {
        let now_ms = clock.now_ms();
        if now_ms.wrapping_sub(last_scan_ms) >= STACK_SCAN_MS {
            last_scan_ms = now_ms;
            device.set_facts(now_ms as u32, board::stack_peak() as u32, link.dropped());
        }
        if device.busy() {
            // A step (or a reset hello) is being carried out: finish it before reading the next
            // message, so that the output does not depend on when bytes arrive.
            device.poll(us(now_ms), &mut store, &mut link);
            continue;
        }
        if from == to {
            (from, to) = (0, link.receive(&mut chunk));
            if to > 0 {
                last_rx_ms = now_ms;
            }
        }
        if from < to {
            from += device.receive(us(now_ms), &chunk[from..to], &mut store, &mut link);
        }
        if device.exec().is_lockstep() && now_ms.wrapping_sub(last_rx_ms) >= LOCKSTEP_LEASE_MS {
            device.leave_lockstep(us(now_ms));
        }
        device.poll(us(now_ms), &mut store, &mut link);
    }
}

/// The firmware after reset, `link-udp` build: the link over UDP (see [`udp`]). UART0 only
/// says the board is up: one 0x00 once the network is, as the serial build does before its
/// first frame, so that a host (or QEMU's launcher) knows when to start talking.
#[cfg(feature = "link-udp")]
pub(crate) fn run() -> ! {
    let mut uart = board::Uart::init();
    board::start_millis(CLOCK_HZ);
    let mut clock = Clock { last: 0, high: 0 };
    let Ok((nic, mac)) = board::lan9118::Lan9118::init(board::config::ETH_BASE) else {
        board::halt(); // no controller: nothing to talk over (the boot byte never comes)
    };
    let mut storage = udp::Storage::new();
    let mut sockets = [smoltcp::iface::SocketStorage::EMPTY];
    let mut link = udp::UdpLink::new(nic, mac, &mut storage, &mut sockets, clock.now_ms());
    while !uart.try_write(0x00) {}

    let mut store: &'static [u8] = board::partition();
    let mut device = new_device!();
    device.boot(&store, us(clock.now_ms()));

    let mut stream = [0u8; udp::STREAM_LEN];
    let (mut from, mut to) = (0, 0);
    let mut last_rx_ms = 0;
    let mut last_scan_ms = 0;
    loop {
        let now_ms = clock.now_ms();
        link.set_now(now_ms);
        if now_ms.wrapping_sub(last_scan_ms) >= STACK_SCAN_MS {
            last_scan_ms = now_ms;
            // `rx_dropped`: datagrams from strangers, and frames the NIC skipped.
            let dropped = link.dropped().wrapping_add(link.nic().rx_skipped());
            device.set_facts(now_ms as u32, board::stack_peak() as u32, dropped);
        }
        if device.busy() {
            // As on the serial link: finish a step before reading the next message.
            device.poll(us(now_ms), &mut store, &mut link);
            continue;
        }
        if from == to {
            (from, to) = (0, link.receive(&mut stream));
            if to > 0 {
                last_rx_ms = now_ms;
            }
        }
        if from < to {
            from += device.receive(us(now_ms), &stream[from..to], &mut store, &mut link);
        }
        if device.exec().is_lockstep() && now_ms.wrapping_sub(last_rx_ms) >= LOCKSTEP_LEASE_MS {
            device.leave_lockstep(us(now_ms));
        }
        device.poll(us(now_ms), &mut store, &mut link);
    }
}
