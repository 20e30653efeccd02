//! The CBOR subset shared by link messages and partition images: a reader and a writer.
//!
//! Both formats use only definite-length arrays, unsigned and negative integers, floats, byte
//! and text strings, `true`/`false` and `null`: no maps (so there is no key order to agree on),
//! no tags, no indefinite lengths. Encoders write integers in their shortest form and floats
//! always as 64-bit (`0xfb`), so one value has one encoding; decoders also accept 16- and 32-bit
//! floats, which other CBOR libraries may write.
//!
//! [`Reader`] reads the subset straight from the bytes (a general decoder costs about 1 KiB
//! more flash on a board) and reports what went wrong as a [`Bad`], which each layer maps into
//! its own flat error enum; nothing in it panics on any input. [`Writer`] encodes into a fixed
//! buffer.


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

    /// The next `n` raw bytes (fields that are not CBOR items).
    pub fn take(&mut self, n: usize) -> Result<&'b [u8], Bad> {
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

    /// True when every input byte was read (optional trailing fields are absent).
    pub fn at_end(&self) -> bool {
        self.at == self.input.len()
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

/// `x` as an IEEE 754 binary16 when that is exact (every NaN becomes the quiet NaN 0x7e00).
pub fn f64_to_f16_exact(x: f64) -> Option<u16> {
    if x.is_nan() {
        return Some(0x7e00);
    }
    let bits = x.to_bits();
    let sign = ((bits >> 48) as u16) & 0x8000;
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1 << 52) - 1);
    if exponent == 0x7ff {
        return Some(sign | 0x7c00); // infinity
    }
    if exponent == 0 {
        // Zero; a binary64 subnormal is far below binary16's range.
        return (mantissa == 0).then_some(sign);
    }
    let e = exponent - 1023;
    if !(-24..=15).contains(&e) {
        return None;
    }
    if e >= -14 {
        // A normal binary16: 10 mantissa bits, the other 42 must be zero.
        return (mantissa & ((1 << 42) - 1) == 0).then_some(sign | (((e + 15) as u16) << 10) | (mantissa >> 42) as u16);
    }
    // A subnormal binary16: value = m * 2^-24 with m in 1..=1023.
    let full = (1u64 << 52) | mantissa;
    let shift = (28 - e) as u32;
    (full & ((1u64 << shift) - 1) == 0).then_some(sign | (full >> shift) as u16)
}

/// 2^e for the small exponents binary16 needs, without `powi` (not in `core`).
fn pow2(e: i32) -> f64 {
    let bits = ((1023 + e) as u64) << 52;
    f64::from_bits(bits)
}

/// Why an encoding did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// An encoder over a fixed buffer; [`Writer::done`] says whether everything fit.
///
/// Written by hand, like [`Reader`]: every item is a head (RFC 8949 section 3: major type and
/// argument in the shortest form) and its payload. Running out of room is sticky: the writer
/// stops writing and [`Writer::done`] reports it, so encoders need no error path per item
/// (on a 32 KiB board, each `?` costs flash).
pub struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
    full: bool,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { out: buf, at: 0, full: false }
    }

    /// Bytes written so far (everything, when [`Writer::done`] succeeds).
    pub fn len(&self) -> usize {
        self.at
    }

    pub fn is_empty(&self) -> bool {
        self.at == 0
    }

    /// The length written, or `NoRoom` when something did not fit (or [`Writer::fail`]).
    pub fn done(&self) -> Result<usize, NoRoom> {
        if self.full {
            Err(NoRoom)
        } else {
            Ok(self.at)
        }
    }

    /// Marks the encoding as failed (something that cannot be written).
    pub fn fail(&mut self) {
        self.full = true;
    }

    /// Bytes that already are CBOR items (or raw fields), copied as they are.
    // Not inlined: every item of every encoder calls it, and one copy of it is what keeps the
    // encoders small on a board.
    #[inline(never)]
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.at.saturating_add(bytes.len());
        match self.out.get_mut(self.at..end) {
            Some(slot) if !self.full => {
                slot.copy_from_slice(bytes);
                self.at = end;
            }
            _ => self.full = true,
        }
        self
    }

    /// A head of major type `major` with argument `n`, in the shortest form.
    #[inline(never)]
    fn head(&mut self, major: u8, n: u64) -> &mut Self {
        let m = major << 5;
        let be = n.to_be_bytes();
        match n {
            0..=23 => self.raw(&[m | n as u8]),
            24..=0xff => self.raw(&[m | 24, n as u8]),
            0x100..=0xffff => self.raw(&[m | 25, be[6], be[7]]),
            0x1_0000..=0xffff_ffff => self.raw(&[m | 26, be[4], be[5], be[6], be[7]]),
            _ => self.raw(&[m | 27]).raw(&be),
        }
    }

    pub fn array(&mut self, n: u64) -> &mut Self {
        self.head(4, n)
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.head(0, n)
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        if n >= 0 {
            self.head(0, n as u64)
        } else {
            // Major type 1 encodes -1 - n.
            self.head(1, !(n as u64))
        }
    }

    /// Always the 9-byte form, so that a value has one encoding (link v1, images).
    pub fn f64(&mut self, x: f64) -> &mut Self {
        self.raw(&[0xfb]).raw(&x.to_bits().to_be_bytes())
    }

    /// The shortest of the 16-, 32- and 64-bit forms that holds `x` exactly (NaN as the
    /// 16-bit quiet NaN `f9 7e 00`): the link v1.1 value encoding.
    pub fn float_shortest(&mut self, x: f64) -> &mut Self {
        if let Some(half) = f64_to_f16_exact(x) {
            let [a, b] = half.to_be_bytes();
            return self.raw(&[0xf9, a, b]);
        }
        if let Some(single) = f64_to_f32_exact(x) {
            return self.raw(&[0xfa]).raw(&single.to_be_bytes());
        }
        self.f64(x)
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(&[if b { 0xf5 } else { 0xf4 }])
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64).raw(b)
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.head(3, s.len() as u64).raw(s.as_bytes())
    }

    pub fn null(&mut self) -> &mut Self {
        self.raw(&[0xf6])
    }
}

/// The bits of `x` as an IEEE 754 binary32 when that is exact (finite, non-NaN values whose
/// exponent and mantissa fit; callers try binary16 first, which covers zeros, infinities and NaN).
/// Bit arithmetic, not a float conversion: a board has no FPU for doubles.
pub fn f64_to_f32_exact(x: f64) -> Option<u32> {
    let bits = x.to_bits();
    let sign = ((bits >> 32) as u32) & 0x8000_0000;
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1 << 52) - 1);
    if exponent == 0 || exponent == 0x7ff {
        return None;
    }
    let e = exponent - 1023;
    if !(-149..=127).contains(&e) {
        return None;
    }
    if e >= -126 {
        // A normal binary32: 23 mantissa bits, the other 29 must be zero.
        return (mantissa & ((1 << 29) - 1) == 0).then_some(sign | (((e + 127) as u32) << 23) | (mantissa >> 29) as u32);
    }
    // A subnormal binary32: value = m * 2^-149 with m in 1..2^23.
    let full = (1u64 << 52) | mantissa;
    let shift = (-97 - e) as u32;
    (full & ((1u64 << shift) - 1) == 0).then_some(sign | (full >> shift) as u32)
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

    /// The shortest float form is exact and round-trips through the reader, for every
    /// binary16 value and for values that need 32 or 64 bits.
    #[test]
    fn shortest_floats_round_trip() {
        for half in 0..=u16::MAX {
            let x = f16_to_f64(half);
            let mut buf = [0u8; 9];
            let mut w = Writer::new(&mut buf);
            w.float_shortest(x);
            let n = w.len();
            if x.is_nan() {
                assert_eq!(&buf[..n], &[0xf9, 0x7e, 0x00]);
                continue;
            }
            assert_eq!(n, 3, "{half:#06x} ({x}) fits 16 bits");
            assert_eq!(Reader::new(&buf[..n]).f64().unwrap().to_bits(), x.to_bits());
        }
        for (x, len) in [(2048.5, 5), (0.1, 9), (1e300, 9), (16777216.0, 5), (65504.0, 3), (65520.0, 5), (-0.0, 3)] {
            let mut buf = [0u8; 9];
            let mut w = Writer::new(&mut buf);
            w.float_shortest(x);
            let n = w.len();
            assert_eq!(n, len, "{x}");
            assert_eq!(Reader::new(&buf[..n]).f64().unwrap().to_bits(), f64::to_bits(x));
        }
    }

    /// The bitwise binary32 check agrees with a float conversion, subnormals included.
    #[test]
    fn single_floats_are_exact_or_refused() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let check = |x: f64| {
            let exact = x.is_finite() && x != 0.0 && f64::from(x as f32) == x;
            assert_eq!(f64_to_f32_exact(x).map(f32::from_bits), exact.then_some(x as f32), "{x:e}");
        };
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            check(f64::from_bits(seed));
            check(f64::from(f32::from_bits(seed as u32)));
        }
        for x in [f64::from(f32::MIN_POSITIVE) / 8.0, 1.401298464324817e-45, 3.4028234663852886e38, 2048.5, 0.1] {
            check(x);
        }
    }

    /// Floats are always written in the 9-byte form, integers in the shortest.
    #[test]
    fn one_encoding_per_value() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        w.f64(1.0).u64(23).u64(24).i64(-1);
        let n = w.len();
        assert_eq!(&buf[..n], &[0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x17, 0x18, 0x18, 0x20]);
    }
}
