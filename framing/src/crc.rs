//! CRC-32C (Castagnoli, CRC-32/ISCSI), computed by the `crc` crate.
//!
//! The table size is a build choice: `fast-crc` (the default) uses slice-by-16, a 16 KiB table
//! that runs at several GB/s on a host; without it a 1 KiB byte-wise table keeps a board's
//! flash budget; `tiny-crc` (without `fast-crc`) computes bit by bit with no table, for boards
//! where the last KiB of flash counts (a 256-byte message costs about 20k cycles, under 2 ms at
//! 12 MHz, while the UART takes 22 ms to carry it). All compute the same function.

use crc::{Crc, CRC_32_ISCSI};

#[cfg(feature = "fast-crc")]
type Implementation = crc::Table<16>;
#[cfg(all(not(feature = "fast-crc"), not(feature = "tiny-crc")))]
type Implementation = crc::Table<1>;
#[cfg(all(not(feature = "fast-crc"), feature = "tiny-crc"))]
type Implementation = crc::NoTable;

static CASTAGNOLI: Crc<u32, Implementation> = Crc::<u32, Implementation>::new(&CRC_32_ISCSI);

/// The CRC-32C of `data`.
///
/// ```
/// assert_eq!(manyfold_framing::crc32c(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// The CRC-32C of the concatenation of `parts`, without copying them together.
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue check value pins the algorithm's parameters.
    #[test]
    fn check_value_matches_catalogue() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    /// Feeding the input in parts gives the same CRC as one call.
    #[test]
    fn parts_equal_whole() {
        assert_eq!(crc32c_parts(&[b"1234", b"", b"56789"]), crc32c(b"123456789"));
    }
}
