//! The serial link as the device sees it: a byte port, plus a receive ring so that bytes that
//! arrive while a reply is being sent are kept, not lost in the UART's small FIFO.

/// A polled serial port (a board's UART).
pub trait SerialPort {
    /// The next received byte, if one is waiting.
    fn try_read(&mut self) -> Option<u8>;
    /// Queues `byte` for sending; false (and nothing queued) if the transmitter is full.
    fn try_write(&mut self, byte: u8) -> bool;
}

/// Bytes of received data the link holds beyond the UART's own buffer: one whole frame of the
/// largest message (263 bytes for 256), so a peer that sends one request and then waits never
/// loses data while the reply goes out. Bytes beyond it are counted (`dropped`) and the frame
/// they break is counted by the decoder.
const RX_RING_LEN: usize = 264;

/// Most bytes taken from the UART in one poll, so that a peer sending without pause cannot keep
/// the firmware in the receive loop.
const RX_POLL_MAX: usize = 64;

/// A [`SerialPort`] with a receive ring.
pub struct Link<P> {
    port: P,
    ring: [u8; RX_RING_LEN],
    head: usize,
    len: usize,
    dropped: u32,
}

impl<P: SerialPort> Link<P> {
    pub fn new(port: P) -> Self {
        Link {
            port,
            ring: [0; RX_RING_LEN],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Received bytes lost because the ring was full (each one breaks one frame, which the
    /// decoder then counts as bad).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Moves waiting bytes from the UART into the ring.
    fn poll(&mut self) {
        for _ in 0..RX_POLL_MAX {
            let Some(byte) = self.port.try_read() else {
                break;
            };
            if self.len == RX_RING_LEN {
                self.dropped = self.dropped.wrapping_add(1);
                continue;
            }
            // `% RX_RING_LEN` at the index keeps the access provably in bounds (no panic path).
            self.ring[(self.head + self.len) % RX_RING_LEN] = byte;
            self.len += 1;
        }
    }

    /// Fills `out` with received bytes (none if nothing arrived); returns how many.
    pub fn receive(&mut self, out: &mut [u8]) -> usize {
        self.poll();
        let n = out.len().min(self.len);
        for slot in out.iter_mut().take(n) {
            *slot = self.ring[self.head % RX_RING_LEN];
            self.head = (self.head + 1) % RX_RING_LEN;
        }
        self.len -= n;
        n
    }

    /// Sends `bytes`, waiting for room in the transmitter; keeps receiving meanwhile.
    pub fn send(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            while !self.port.try_write(byte) {
                self.poll();
            }
        }
    }
}
