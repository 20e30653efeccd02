//! In-place COBS decoding that moves whole blocks.
//!
//! The `cobs` crate (which this crate uses to encode) decodes one byte at a time; moving each
//! block with one `copy_within` is several times faster and is what lets a host decode at
//! memory speed. The two decoders are checked against each other by this module's tests and
//! against a third-party codec by the shared vectors.

/// Decodes the COBS text in `buf` (no 0x00 inside, delimiter already removed) in place and
/// returns the decoded length, or `None` when a block length runs past the end of the text.
pub(crate) fn decode_in_place(buf: &mut [u8]) -> Option<usize> {
    let len = buf.len();
    let mut read = 0usize;
    let mut write = 0usize;
    // Bounded: each pass consumes a code byte and its data, so `read` grows by at least 1.
    while read < len {
        let code = buf[read] as usize;
        if code == 0 {
            return None; // a 0x00 inside the text is not COBS
        }
        let data_start = read + 1;
        let data_end = read + code;
        if data_end > len {
            return None;
        }
        buf.copy_within(data_start..data_end, write);
        write += code - 1;
        read = data_end;
        // A block shorter than 254 data bytes stands for its data and a 0x00, except the last.
        if code != 0xFF && read < len {
            buf[write] = 0;
            write += 1;
        }
    }
    Some(write)
}

#[cfg(test)]
mod tests {
    use super::decode_in_place;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

        /// Agrees with the `cobs` crate on valid encodings of arbitrary data.
        #[test]
        fn agrees_on_valid_text(data in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..1200)) {
            let mut text = vec![0u8; data.len() + data.len() / 254 + 2];
            let n = cobs::encode(&data, &mut text);
            text.truncate(n);
            let n = decode_in_place(&mut text).unwrap();
            prop_assert_eq!(&text[..n], &data[..]);
        }

        /// Agrees with the `cobs` crate on arbitrary (mostly invalid) text: same verdict, same bytes.
        #[test]
        fn agrees_on_arbitrary_text(text in prop::collection::vec(1u8..=255, 1..700)) {
            let mut ours = text.clone();
            let mut theirs = text.clone();
            let a = decode_in_place(&mut ours);
            let b = cobs::decode_in_place(&mut theirs).ok();
            prop_assert_eq!(a, b);
            if let Some(n) = a {
                prop_assert_eq!(&ours[..n], &theirs[..n]);
            }
        }
    }
}
