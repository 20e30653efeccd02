//! Volatile access to memory-mapped registers.

/// Reads the 32-bit register at `addr`.
///
/// # Safety
/// `addr` must be the 4-byte aligned address of a readable memory-mapped register (or memory)
/// on this board, and reading it must have no side effect the caller has not accounted for
/// (some registers, such as UART data registers, consume data when read).
#[inline(always)]
pub unsafe fn read32(addr: usize) -> u32 {
    // SAFETY: the caller guarantees `addr` is a valid, aligned, readable register.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes `value` to the 32-bit register at `addr`.
///
/// # Safety
/// `addr` must be the 4-byte aligned address of a writable memory-mapped register on this board,
/// outside any memory that Rust code owns, and the write must be valid for the device's state.
#[inline(always)]
pub unsafe fn write32(addr: usize, value: u32) {
    // SAFETY: the caller guarantees `addr` is a valid, aligned, writable register.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}
