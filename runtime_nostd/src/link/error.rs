//! [`LinkError`]: the one flat error enum of the link layer.

use crate::cbor::Bad;

/// Why a link message could not be decoded or encoded. Each variant is `operation + failure`;
/// the device answers a decode failure with a nack whose reason names the variant (see
/// [`crate::link::NackReason::from_decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The bytes are not well-formed CBOR, or the message is cut short.
    DecodeBadCbor,
    /// The message is not a CBOR array starting with a kind and an id.
    DecodeNotArray,
    /// The kind is not one of docs/wire.md section 2.
    DecodeUnknownKind,
    /// A kind this end does not receive (a device is sent a describe, ack, nack or reply).
    DecodeUnexpectedKind,
    /// The array has another number of items than the kind has fields.
    DecodeBadArity,
    /// A field has the wrong type or a value out of its range.
    DecodeBadField,
    /// A string, byte string or list is longer than the protocol allows.
    DecodeTooLong,
    /// Bytes follow the message's array.
    DecodeTrailingBytes,
    /// (v1.1) A short-form event that this end has no reference to expand (a `latest` reply
    /// for a route whose row it never received).
    DecodeNoReference,
    /// The message does not fit the output buffer (or the link's `max_message`).
    EncodeTooLong,
}

impl LinkError {
    /// A short, stable name (used in logs and by the Python client).
    pub const fn name(self) -> &'static str {
        match self {
            LinkError::DecodeBadCbor => "decode_bad_cbor",
            LinkError::DecodeNotArray => "decode_not_array",
            LinkError::DecodeUnknownKind => "decode_unknown_kind",
            LinkError::DecodeUnexpectedKind => "decode_unexpected_kind",
            LinkError::DecodeBadArity => "decode_bad_arity",
            LinkError::DecodeBadField => "decode_bad_field",
            LinkError::DecodeTooLong => "decode_too_long",
            LinkError::DecodeTrailingBytes => "decode_trailing_bytes",
            LinkError::DecodeNoReference => "decode_no_reference",
            LinkError::EncodeTooLong => "encode_too_long",
        }
    }
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Bad> for LinkError {
    fn from(bad: Bad) -> Self {
        match bad {
            Bad::Cbor => LinkError::DecodeBadCbor,
            Bad::Shape | Bad::Range => LinkError::DecodeBadField,
            Bad::TooLong => LinkError::DecodeTooLong,
            Bad::Trailing => LinkError::DecodeTrailingBytes,
        }
    }
}
