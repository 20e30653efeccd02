//! Reading what a crashed writer left beside a store file, before SQLite opens it: the WAL's
//! header and frame headers, and the committed frame count in the `-shm` wal-index. Read only:
//! this never writes either file (SQLite does its own recovery); it lets the store say how much
//! of the WAL SQLite discarded, which SQLite itself does not report.
//!
//! Formats (SQLite's documented file format, <https://www.sqlite.org/fileformat.html#wal_file_format>
//! and `wal.c`): the WAL is a 32-byte big-endian header (magic, version, page size, checkpoint
//! sequence, salt-1, salt-2, checksums) and frames of a 24-byte header (page number, database
//! size after commit or 0, salt-1, salt-2, checksums) plus one page. The `-shm` file starts
//! with two copies of a 48-byte native-endian wal-index header whose `mxFrame` (offset 16) is the
//! last frame of the last commit the writers made, and `aSalt` (offset 32) the WAL's salts.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The WAL header's size.
pub const WAL_HEADER_BYTES: u64 = 32;
/// A WAL frame header's size.
pub const FRAME_HEADER_BYTES: u64 = 24;

/// What the WAL and wal-index of a store held before it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalBefore {
    /// The WAL's size in bytes (0 when absent).
    pub wal_bytes: u64,
    /// The page size its header declares (0 when there is no valid header).
    pub page_size: u64,
    /// Complete frames of the current WAL generation (salts matching the header), counted
    /// from the start until the first frame of another generation.
    pub frames: u64,
    /// The last of those frames that ends a commit (by its header, checksums not verified).
    pub last_commit_frame: u64,
    /// Bytes after the last complete frame of the current generation (a torn frame).
    pub partial_bytes: u64,
    /// The wal-index's committed frame count, when the `-shm` file holds a valid header for
    /// this WAL generation (or for a WAL that is gone or has no valid header).
    pub shm_committed_frames: Option<u64>,
}

impl WalBefore {
    /// The size of one frame (header and page), 0 when unknown.
    pub fn frame_bytes(&self) -> u64 {
        if self.page_size == 0 {
            0
        } else {
            self.page_size + FRAME_HEADER_BYTES
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn ne32(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads the WAL (`<db>-wal`) and wal-index (`<db>-shm`) of database file `db`. Unreadable or
/// absent files read as empty: this is evidence gathering, never a reason to fail an open.
pub fn inspect(db: &Path) -> WalBefore {
    let mut out = WalBefore::default();
    let wal_path = with_suffix(db, "-wal");
    let mut salt: Option<[u8; 8]> = None;
    if let Ok(mut f) = File::open(&wal_path) {
        out.wal_bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut header = [0u8; WAL_HEADER_BYTES as usize];
        if out.wal_bytes >= WAL_HEADER_BYTES && f.read_exact(&mut header).is_ok() {
            let magic = be32(&header[0..4]);
            let page_size = be32(&header[8..12]) as u64;
            let page_size = if page_size == 1 { 65536 } else { page_size };
            if (magic == 0x377f_0682 || magic == 0x377f_0683) && page_size.is_power_of_two() && (512..=65536).contains(&page_size) {
                out.page_size = page_size;
                let mut s = [0u8; 8];
                s.copy_from_slice(&header[16..24]);
                salt = Some(s);
                scan_frames(&mut f, &mut out, s);
            }
        }
    }
    let shm_path = with_suffix(db, "-shm");
    if let Ok(mut f) = File::open(shm_path) {
        let mut hdr = [0u8; 136];
        if f.read_exact(&mut hdr).is_ok() {
            let (a, b) = (&hdr[0..48], &hdr[48..96]);
            let is_init = a[12] == 1;
            let version = ne32(&a[0..4]);
            if is_init && a == b && version == 3_007_000 {
                let same_generation = match salt {
                    Some(s) => a[32..40] == s,
                    None => true,
                };
                if same_generation {
                    out.shm_committed_frames = Some(ne32(&a[16..20]) as u64);
                }
            }
        }
    }
    out
}

fn scan_frames(f: &mut File, out: &mut WalBefore, salt: [u8; 8]) {
    let frame_bytes = out.frame_bytes();
    let mut offset = WAL_HEADER_BYTES;
    let mut header = [0u8; FRAME_HEADER_BYTES as usize];
    loop {
        if offset + frame_bytes > out.wal_bytes {
            // What is left is a torn frame of this generation if its header (when present)
            // carries this generation's salts.
            let left = out.wal_bytes.saturating_sub(offset);
            if left > 0 {
                let ours = if left >= FRAME_HEADER_BYTES {
                    f.seek(SeekFrom::Start(offset)).is_ok() && f.read_exact(&mut header).is_ok() && header[8..16] == salt
                } else {
                    true
                };
                if ours {
                    out.partial_bytes = left;
                }
            }
            return;
        }
        if f.seek(SeekFrom::Start(offset)).is_err() || f.read_exact(&mut header).is_err() {
            return;
        }
        if header[8..16] != salt {
            return;
        }
        out.frames += 1;
        if be32(&header[4..8]) != 0 {
            out.last_commit_frame = out.frames;
        }
        offset += frame_bytes;
    }
}

/// `path` with `suffix` appended to its file name (`x.sqlite` -> `x.sqlite-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}
