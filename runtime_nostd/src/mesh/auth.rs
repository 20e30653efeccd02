//! Keyed frames (docs/wire.md 4.8): a sealed body is `0xcf counter message mac`, where
//! `counter` is the sender's frame counter (8 bytes, little-endian, from 1, never repeated by a
//! process) and `mac` the first 16 bytes of HMAC-SHA-256 under the link's pre-shared key over
//! a direction byte (0 from the initiator, 1 from the responder, so a frame reflected back to
//! its sender fails) and every byte of the body before the MAC. The receiver checks the MAC,
//! then the counter against a [`ReplayWindow`] of the last 64 counters.

use super::msg::Kind;
use super::MeshError;

/// Bytes of the counter.
pub const COUNTER_LEN: usize = 8;
/// Bytes of the truncated MAC.
pub const MAC_LEN: usize = 16;
/// Bytes a seal adds to a message: the kind byte, the counter and the MAC.
pub const OVERHEAD: usize = 1 + COUNTER_LEN + MAC_LEN;
/// Where the message starts in a sealed body.
pub const MESSAGE_AT: usize = 1 + COUNTER_LEN;

/// Direction byte of frames from the initiator.
pub const FROM_INITIATOR: u8 = 0;
/// Direction byte of frames from the responder.
pub const FROM_RESPONDER: u8 = 1;

/// A sealed body cut into its parts (nothing checked but the layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The sender's frame counter.
    pub counter: u64,
    /// The message inside.
    pub message: &'a [u8],
    /// Everything the MAC covers (after the direction byte).
    pub covered: &'a [u8],
    /// The MAC carried.
    pub mac: &'a [u8],
}

/// Cuts a sealed body; `None` when it is not one (first byte not 0xcf, or too short for a
/// message of at least one byte).
pub fn split(body: &[u8]) -> Option<Sealed<'_>> {
    if body.first() != Some(&(Kind::Sealed as u8)) || body.len() < OVERHEAD + 1 {
        return None;
    }
    let (covered, mac) = body.split_at(body.len() - MAC_LEN);
    let mut c = [0u8; COUNTER_LEN];
    c.copy_from_slice(&covered[1..MESSAGE_AT]);
    Some(Sealed { counter: u64::from_le_bytes(c), message: &covered[MESSAGE_AT..], covered, mac })
}

/// The truncated MAC of `covered` sent in `direction`; `None` when this build has no HMAC
/// (feature `auth` off).
pub fn mac(key: &[u8; 32], direction: u8, covered: &[u8]) -> Option<[u8; MAC_LEN]> {
    #[cfg(feature = "auth")]
    {
        use hmac::{KeyInit, Mac};
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
        m.update(&[direction]);
        m.update(covered);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        Some(out)
    }
    #[cfg(not(feature = "auth"))]
    {
        let _ = (key, direction, covered);
        None
    }
}

/// This build can seal frames (feature `auth`).
pub const AVAILABLE: bool = cfg!(feature = "auth");

/// Seals the message already written at `out[MESSAGE_AT..MESSAGE_AT + len]`: writes the kind
/// byte, the counter and the MAC; returns the body's length. `out` must hold `len + OVERHEAD`.
pub fn seal(key: &[u8; 32], direction: u8, counter: u64, out: &mut [u8], len: usize) -> Result<usize, MeshError> {
    let total = len + OVERHEAD;
    if out.len() < total {
        return Err(MeshError::EncodeTooLong);
    }
    out[0] = Kind::Sealed as u8;
    out[1..MESSAGE_AT].copy_from_slice(&counter.to_le_bytes());
    let tag = mac(key, direction, &out[..MESSAGE_AT + len]).ok_or(MeshError::AuthUnkeyed)?;
    out[MESSAGE_AT + len..total].copy_from_slice(&tag);
    Ok(total)
}

/// Checks a sealed body's MAC (in constant time); returns its counter and message.
pub fn open<'a>(key: &[u8; 32], direction: u8, body: &'a [u8]) -> Result<(u64, &'a [u8]), MeshError> {
    let sealed = split(body).ok_or(MeshError::AuthUnkeyed)?;
    let want = mac(key, direction, sealed.covered).ok_or(MeshError::AuthUnkeyed)?;
    let diff = want.iter().zip(sealed.mac).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(MeshError::AuthBadMac);
    }
    Ok((sealed.counter, sealed.message))
}

/// The counters seen from one peer incarnation: the highest, and which of the 63 below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    top: u64,
    seen: u64,
}

impl ReplayWindow {
    /// A window that has seen nothing (counters start at 1).
    pub const fn new() -> Self {
        ReplayWindow { top: 0, seen: 0 }
    }

    /// `counter` is new: above the highest seen, or within the 64 below it and not seen yet.
    pub fn fresh(&self, counter: u64) -> bool {
        if counter == 0 {
            return false;
        }
        if counter > self.top {
            return true;
        }
        let back = self.top - counter;
        back < 64 && self.seen & (1 << back) == 0
    }

    /// Notes `counter` as seen (call after [`ReplayWindow::fresh`] and the MAC check).
    pub fn accept(&mut self, counter: u64) {
        if counter > self.top {
            let shift = counter - self.top;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = counter;
        } else {
            let back = self.top - counter;
            if back < 64 {
                self.seen |= 1 << back;
            }
        }
    }
}
