//! Building ASCII text in a fixed buffer, without `core::fmt` (which costs several KiB of flash).

/// Appends text to a byte buffer; what does not fit is cut off.
pub struct Text<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Text<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Text { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                None => break,
            }
        }
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// `n` in decimal.
    pub fn dec(&mut self, mut n: u64) -> &mut Self {
        let mut digits = [0u8; 20]; // u64::MAX has 20 digits
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    /// `bytes` as lowercase hex, two digits each.
    pub fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            self.bytes(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xF)]]);
        }
        self
    }

    /// `key=value` in decimal, preceded by a space.
    pub fn field(&mut self, key: &str, value: u64) -> &mut Self {
        self.str(" ").str(key).str("=").dec(value)
    }
}
