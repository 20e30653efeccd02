//! The CBOR subset shared by link messages and partition images, over minicbor's token API.
//!
//! Both formats use only definite-length arrays, unsigned and negative integers, floats, byte
//! and text strings, `true`/`false` and `null`: no maps (so there is no key order to agree on),
//! no tags, no indefinite lengths. Encoders write integers in their shortest form and floats
//! always as 64-bit (`0xfb`), so one value has one encoding; decoders also accept 16- and 32-bit
//! floats, which other CBOR libraries may write.
//!
//! [`Reader`] reads the subset straight from the bytes (a general decoder costs about 1 KiB
//! more flash on a board) and reports what went wrong as a [`Bad`], which each layer maps into
//! its own flat error enum; nothing in it panics on any input. [`Writer`] encodes with minicbor.

use minicbor::encode::write::Cursor;
use minicbor::Encoder;

/// Why a CBOR item could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not well-formed CBOR, or cut short.
    Cbor,
    /// Well-formed, but another type or array length than the format allows there.
    Shape,
    /// The right type with a value outside the allowed range.
    Range,
    /// A string longer than the format allows.
    TooLong,
    /// Bytes after the top-level item.
    Trailing,
}

/// The kind of the next item, from its initial byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Major type 0 or 1.
    Int,
    /// Major type 2.
    Bytes,
    /// Major type 3.
    Text,
    /// Major type 4.
    Array,
    /// `false` or `true`.
    Bool,
    /// `null`.
    Null,
    /// A 16-, 32- or 64-bit float.
    Float,
    /// Anything else (maps, tags, other simple values, indefinite lengths).
    Other,
}

/// A cursor over one CBOR item and its parts. It reads the subset directly from the bytes: the
/// subset is small, and this is much less code on a board than a general decoder.
pub struct Reader<'b> {
    input: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    pub fn new(input: &'b [u8]) -> Self {
        Reader { input, at: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8], Bad> {
        let end = self.at.checked_add(n).ok_or(Bad::Cbor)?;
        let bytes = self.input.get(self.at..end).ok_or(Bad::Cbor)?;
        self.at = end;
        Ok(bytes)
    }

    /// The kind of the next item, without reading it.
    pub fn peek(&self) -> Result<Peek, Bad> {
        let first = *self.input.get(self.at).ok_or(Bad::Cbor)?;
        Ok(match (first >> 5, first & 0x1f) {
            (_, 28..=31) if first < 0xe0 => Peek::Other, // indefinite lengths, reserved
            (0 | 1, _) => Peek::Int,
            (2, _) => Peek::Bytes,
            (3, _) => Peek::Text,
            (4, _) => Peek::Array,
            (7, 20 | 21) => Peek::Bool,
            (7, 22) => Peek::Null,
            (7, 25..=27) => Peek::Float,
            _ => Peek::Other,
        })
    }

    /// The major type and argument of the next item's head (RFC 8949 section 3).
    fn head(&mut self) -> Result<(u8, u64), Bad> {
        let start = self.at;
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => self.take(1 << (info - 24))?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
            _ => {
                self.at = start;
                return Err(Bad::Shape); // indefinite lengths and reserved values
            }
        };
        Ok((major, arg))
    }

    /// A head of major type `major`; the item is not consumed when it has another type.
    fn expect(&mut self, major: u8) -> Result<u64, Bad> {
        let start = self.at;
        match self.head()? {
            (m, n) if m == major => Ok(n),
            _ => {
                self.at = start;
                Err(Bad::Shape)
            }
        }
    }

    /// A definite-length array header; returns its length.
    pub fn array(&mut self) -> Result<u64, Bad> {
        self.expect(4)
    }

    /// An array header of exactly `n` items.
    pub fn array_of(&mut self, n: u64) -> Result<(), Bad> {
        if self.array()? == n {
            Ok(())
        } else {
            Err(Bad::Shape)
        }
    }

    /// An array header of at most `max` items; returns its length.
    pub fn array_max(&mut self, max: u64) -> Result<u64, Bad> {
        let n = self.array()?;
        if n > max {
            return Err(Bad::TooLong);
        }
        Ok(n)
    }

    pub fn u64(&mut self) -> Result<u64, Bad> {
        self.expect(0)
    }

    pub fn u32(&mut self) -> Result<u32, Bad> {
        u32::try_from(self.u64()?).map_err(|_| Bad::Range)
    }

    pub fn u16(&mut self) -> Result<u16, Bad> {
        u16::try_from(self.u64()?).map_err(|_| Bad::Range)
    }

    pub fn u8(&mut self) -> Result<u8, Bad> {
        u8::try_from(self.u64()?).map_err(|_| Bad::Range)
    }

    /// A signed integer in `i64`.
    pub fn i64(&mut self) -> Result<i64, Bad> {
        let start = self.at;
        match self.head()? {
            (0, n) => i64::try_from(n).map_err(|_| Bad::Range),
            // Major type 1 encodes -1 - n.
            (1, n) => i64::try_from(n).map(|n| -1 - n).map_err(|_| Bad::Range),
            _ => {
                self.at = start;
                Err(Bad::Shape)
            }
        }
    }

    /// A float of any width (16, 32 or 64 bits).
    pub fn f64(&mut self) -> Result<f64, Bad> {
        if self.peek()? != Peek::Float {
            return Err(Bad::Shape);
        }
        let width = self.take(1)?[0];
        let bytes = self.take(1 << (width - 0xf8))?;
        let bits = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Ok(match width {
            0xf9 => f16_to_f64(bits as u16),
            0xfa => f64::from(f32::from_bits(bits as u32)),
            _ => f64::from_bits(bits),
        })
    }

    pub fn bool(&mut self) -> Result<bool, Bad> {
        match self.input.get(self.at) {
            Some(0xf4) => {
                self.at += 1;
                Ok(false)
            }
            Some(0xf5) => {
                self.at += 1;
                Ok(true)
            }
            Some(_) => Err(Bad::Shape),
            None => Err(Bad::Cbor),
        }
    }

    pub fn bytes(&mut self) -> Result<&'b [u8], Bad> {
        let n = self.expect(2)?;
        self.take(usize::try_from(n).map_err(|_| Bad::Cbor)?)
    }

    /// A byte string of exactly `N` bytes.
    pub fn bytes_exact<const N: usize>(&mut self) -> Result<[u8; N], Bad> {
        let bytes = self.bytes()?;
        bytes.try_into().map_err(|_| Bad::Shape)
    }

    pub fn str(&mut self) -> Result<&'b str, Bad> {
        let n = self.expect(3)?;
        let bytes = self.take(usize::try_from(n).map_err(|_| Bad::Cbor)?)?;
        core::str::from_utf8(bytes).map_err(|_| Bad::Cbor)
    }

    /// True (and the `null` consumed) when the next item is `null`.
    pub fn null(&mut self) -> Result<bool, Bad> {
        if self.peek()? == Peek::Null {
            self.at += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Succeeds when every input byte was read.
    pub fn finish(&self) -> Result<(), Bad> {
        if self.at == self.input.len() {
            Ok(())
        } else {
            Err(Bad::Trailing)
        }
    }
}

/// IEEE 754 binary16 to binary64 (exact: every half value is a double).
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * pow2(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1024.0 + mantissa) * pow2(e - 25),
    };
    sign * magnitude
}

/// 2^e for the small exponents binary16 needs, without `powi` (not in `core`).
fn pow2(e: i32) -> f64 {
    let bits = ((1023 + e) as u64) << 52;
    f64::from_bits(bits)
}

/// Why an encoding did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// An encoder over a fixed buffer; [`Writer::len`] is the bytes written.
pub struct Writer<'a> {
    e: Encoder<Cursor<&'a mut [u8]>>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { e: Encoder::new(Cursor::new(buf)) }
    }

    pub fn len(&self) -> usize {
        self.e.writer().position()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn array(&mut self, n: u64) -> Result<&mut Self, NoRoom> {
        self.e.array(n).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn u64(&mut self, n: u64) -> Result<&mut Self, NoRoom> {
        self.e.u64(n).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn i64(&mut self, n: i64) -> Result<&mut Self, NoRoom> {
        self.e.i64(n).map_err(|_| NoRoom)?;
        Ok(self)
    }

    /// Always the 9-byte form, so that a value has one encoding.
    pub fn f64(&mut self, x: f64) -> Result<&mut Self, NoRoom> {
        self.e.f64(x).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn bool(&mut self, b: bool) -> Result<&mut Self, NoRoom> {
        self.e.bool(b).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn bytes(&mut self, b: &[u8]) -> Result<&mut Self, NoRoom> {
        self.e.bytes(b).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn str(&mut self, s: &str) -> Result<&mut Self, NoRoom> {
        self.e.str(s).map_err(|_| NoRoom)?;
        Ok(self)
    }

    pub fn null(&mut self) -> Result<&mut Self, NoRoom> {
        self.e.null().map_err(|_| NoRoom)?;
        Ok(self)
    }

    /// Bytes that already are CBOR items, copied as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<&mut Self, NoRoom> {
        use minicbor::encode::Write;
        self.e.writer_mut().write_all(bytes).map_err(|_| NoRoom)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half floats decode exactly, including subnormals, infinities and NaN.
    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 5.960464477539063e-8);
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        let mut r = Reader::new(&[0xf9, 0x3e, 0x00]);
        assert_eq!(r.f64(), Ok(1.5));
        assert_eq!(Reader::new(&[0xf9, 0x3e]).f64(), Err(Bad::Cbor));
    }

    /// Floats are always written in the 9-byte form, integers in the shortest.
    #[test]
    fn one_encoding_per_value() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        w.f64(1.0).unwrap().u64(23).unwrap().u64(24).unwrap().i64(-1).unwrap();
        let n = w.len();
        assert_eq!(&buf[..n], &[0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x17, 0x18, 0x18, 0x20]);
    }
}
