//! [`reseed`]: the same partition image with other seeds for its synthetic sources, so that the
//! boards of a fleet run one partition with different noise.

use manyfold_core::cbor::{Peek, Reader, Writer};
use manyfold_core::framing::crc32c;
use manyfold_core::image::{FORMAT, HEADER_LEN, MAGIC};

/// Array items skipped at most (nested), so that a hostile image cannot make it loop long.
const ITEMS_MAX: usize = 1 << 20;

fn bad(what: &str) -> String {
    format!("the image cannot be reseeded: {what}")
}

/// Skips one item of the image subset of CBOR.
fn skip(r: &mut Reader<'_>, budget: &mut usize) -> Result<(), String> {
    *budget = budget.checked_sub(1).ok_or_else(|| bad("it has too many items"))?;
    let shape = |_| bad("its body is not valid CBOR");
    match r.peek().map_err(shape)? {
        Peek::Int => {
            r.i64().map_err(shape)?;
        }
        Peek::Bytes => {
            r.bytes().map_err(shape)?;
        }
        Peek::Text => {
            r.str().map_err(shape)?;
        }
        Peek::Array => {
            let n = r.array().map_err(shape)?;
            for _ in 0..n {
                skip(r, budget)?;
            }
        }
        Peek::Bool => {
            r.bool().map_err(shape)?;
        }
        Peek::Null => {
            r.null().map_err(shape)?;
        }
        Peek::Float => {
            r.f64().map_err(shape)?;
        }
        Peek::Other => return Err(bad("its body has an item outside the image format")),
    }
    Ok(())
}

/// `image` with source `j` seeded `seed + j` (as `greenhouse_spec(seed)` seeds its sensors),
/// its header's length and CRC rebuilt. The error is one sentence.
pub fn reseed(image: &[u8], seed: u64) -> Result<Vec<u8>, String> {
    if image.len() < HEADER_LEN || image[..4] != MAGIC || image[4] != FORMAT {
        return Err(bad("it does not start with a partition image header"));
    }
    let len = u32::from_le_bytes([image[8], image[9], image[10], image[11]]) as usize;
    let body = image.get(HEADER_LEN..HEADER_LEN + len).ok_or_else(|| bad("it is shorter than its header says"))?;
    let shape = |_| bad("its body is not valid CBOR");
    let mut r = Reader::new(body);
    r.array().map_err(shape)?;
    let mut budget = ITEMS_MAX;
    // format, manifest_id, partition, routes
    for _ in 0..4 {
        skip(&mut r, &mut budget)?;
    }
    let mut out = vec![0u8; body.len() + 64 * 16 + 64];
    let sources_at = r.position();
    let n = r.array().map_err(shape)?;
    if n > 1024 {
        return Err(bad("it has more than 1024 sources"));
    }
    out.resize(body.len() + (n as usize) * 16 + 64, 0);
    let mut w = Writer::new(&mut out);
    w.raw(&body[..sources_at]).array(n);
    for j in 0..n {
        r.array_of(9).map_err(shape)?;
        w.array(9);
        // route, waveform, period_us, phase_us
        let start = r.position();
        for _ in 0..4 {
            skip(&mut r, &mut budget)?;
        }
        w.raw(&body[start..r.position()]);
        r.u64().map_err(|_| bad("a source's seed is not an unsigned integer"))?;
        w.u64(seed.wrapping_add(j));
        // center, amplitude, cycle, noise
        let start = r.position();
        for _ in 0..4 {
            skip(&mut r, &mut budget)?;
        }
        w.raw(&body[start..r.position()]);
    }
    w.raw(&body[r.position()..]);
    let new_len = w.done().map_err(|_| bad("the reseeded body does not fit"))?;
    out.truncate(new_len);
    let mut image = Vec::with_capacity(HEADER_LEN + out.len());
    image.extend_from_slice(&MAGIC);
    image.push(FORMAT);
    image.extend_from_slice(&[0, 0, 0]);
    image.extend_from_slice(&(out.len() as u32).to_le_bytes());
    image.extend_from_slice(&crc32c(&out).to_le_bytes());
    image.extend_from_slice(&out);
    Ok(image)
}
