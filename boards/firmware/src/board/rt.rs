//! The Cortex-M runtime (ARMv7-M, shared by every board): vector table, reset handler, fault
//! handlers, panic handler, the SysTick millisecond clock, the stack high-water mark, and the
//! partition region.
//!
//! Memory layout and the symbols used here (`__stack_top`, `__sbss`, `__ebss`, `__sdata`,
//! `__edata`, `__sidata`, `__partition_start`, `__partition_end`) come from
//! `boards/firmware/sections.x` and the board's `memory.x`.

use core::sync::atomic::{AtomicU32, Ordering};

use super::mmio;

// The reset handler, in assembly so that no Rust code runs before `.bss` is zeroed and `.data`
// is initialized (Rust code may assume both). It then calls `manyfold_entry`, which never returns.
// The stack pointer is already set: the core loads it from word 0 of the vector table.
core::arch::global_asm!(
    ".section .text.Reset,\"ax\",%progbits",
    ".global Reset",
    ".type Reset,%function",
    ".thumb_func",
    "Reset:",
    // Paint the unused stack with STACK_PAINT (see `stack_peak`). The stack is still empty:
    // the core set SP to __stack_top, above the painted words.
    "    ldr r0, =__stack_paint_start",
    "    ldr r1, =__stack_top",
    "    ldr r2, ={paint}",
    "4:  cmp r0, r1",
    "    bhs 5f",
    "    str r2, [r0], #4",
    "    b 4b",
    // Zero .bss, a word at a time (sections.x aligns both ends to 4 bytes).
    "5:  ldr r0, =__sbss",
    "    ldr r1, =__ebss",
    "    movs r2, #0",
    "0:  cmp r0, r1",
    "    bhs 1f",
    "    str r2, [r0], #4",
    "    b 0b",
    // Copy .data from its load address in flash to RAM.
    "1:  ldr r0, =__sdata",
    "    ldr r1, =__edata",
    "    ldr r2, =__sidata",
    "2:  cmp r0, r1",
    "    bhs 3f",
    "    ldr r3, [r2], #4",
    "    str r3, [r0], #4",
    "    b 2b",
    "3:  bl manyfold_entry",
    "    udf #0",
    ".ltorg",
    ".size Reset, . - Reset",
    paint = const STACK_PAINT,
);

/// The word the reset handler fills the stack with; `stack_peak` looks for the first word that
/// differs.
const STACK_PAINT: u32 = 0x5AA5_F00D;

extern "C" {
    /// The reset handler above (only its address is used, in the vector table).
    fn Reset();
}

/// One vector table entry after the initial stack pointer: a handler, or a reserved word.
#[derive(Clone, Copy)]
#[repr(C)]
pub union Vector {
    handler: unsafe extern "C" fn(),
    reserved: usize,
}

const RESERVED: Vector = Vector { reserved: 0 };

/// The ARMv7-M exception vectors 1..=15; sections.x puts the initial stack pointer (vector 0)
/// in front of them at address 0. No external interrupt is enabled yet, so the table ends
/// before the IRQ vectors.
// SAFETY (link_section, no_mangle): `.vector_table` is placed at the start of FLASH by
// sections.x; the symbol name is unique and kept by EXTERN(__VECTOR_TABLE) there.
#[link_section = ".vector_table"]
#[no_mangle]
#[used]
pub static __VECTOR_TABLE: [Vector; 15] = [
    Vector { handler: Reset },    // 1 Reset
    Vector { handler: fault },    // 2 NMI
    Vector { handler: fault },    // 3 HardFault
    Vector { handler: fault },    // 4 MemManage
    Vector { handler: fault },    // 5 BusFault
    Vector { handler: fault },    // 6 UsageFault
    RESERVED,                     // 7
    RESERVED,                     // 8
    RESERVED,                     // 9
    RESERVED,                     // 10
    Vector { handler: fault },    // 11 SVCall
    Vector { handler: fault },    // 12 DebugMonitor
    RESERVED,                     // 13
    Vector { handler: fault },    // 14 PendSV
    Vector { handler: sys_tick }, // 15 SysTick
];

/// Called by the reset handler once memory is initialized.
// SAFETY (no_mangle): the one symbol of this name, called only from `Reset` above.
#[no_mangle]
extern "C" fn manyfold_entry() -> ! {
    crate::run()
}

/// Every exception without its own handler: stop here, where a debugger finds the core.
extern "C" fn fault() {
    halt()
}

/// Stops the firmware: spins forever.
pub fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    halt()
}

// --- SysTick: a millisecond counter ---

const SYST_CSR: usize = 0xE000_E010; // control and status
const SYST_RVR: usize = 0xE000_E014; // reload value
const SYST_CVR: usize = 0xE000_E018; // current value
const SYST_CSR_ENABLE: u32 = 1 << 0;
const SYST_CSR_TICKINT: u32 = 1 << 1;
const SYST_CSR_CLKSOURCE_CPU: u32 = 1 << 2;

static MILLIS: AtomicU32 = AtomicU32::new(0);

extern "C" fn sys_tick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick with one interrupt per millisecond of a `clock_hz` core clock.
pub fn start_millis(clock_hz: u32) {
    // The reload register has 24 bits.
    let reload = (clock_hz / 1000).saturating_sub(1).min(0x00FF_FFFF);
    // SAFETY: the SysTick registers are at these fixed System Control Space addresses on every
    // ARMv7-M core; nothing else in the firmware uses SysTick, and its handler only touches an
    // atomic.
    unsafe {
        mmio::write32(SYST_CSR, 0);
        mmio::write32(SYST_RVR, reload);
        mmio::write32(SYST_CVR, 0);
        mmio::write32(
            SYST_CSR,
            SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU,
        );
    }
}

/// Milliseconds since [`start_millis`] (wraps after about 49 days).
pub fn uptime_ms() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

// --- Stack high-water mark ---

extern "C" {
    static __stack_paint_start: u32;
    static __stack_top: u32;
}

/// The most stack the firmware has used since reset, in bytes: the distance from the top of
/// RAM to the lowest stack word that no longer holds the reset handler's paint. (Capped by the
/// painted length, 32 KiB; a frame that happens to store the paint value could hide a few words.)
pub fn stack_peak() -> usize {
    let start = core::ptr::addr_of!(__stack_paint_start) as usize;
    let top = core::ptr::addr_of!(__stack_top) as usize;
    let mut addr = start;
    while addr < top {
        // SAFETY: `addr` is word-aligned (sections.x aligns __ebss; __stack_top is a region end)
        // and within RAM, between the end of .bss and the top of the stack. The scan stops at
        // the first word a stack frame has written, so every word it reads lies below the
        // deepest stack pointer so far, except that one, which is only compared, never used.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != STACK_PAINT {
            break;
        }
        addr += 4;
    }
    top - addr
}

// --- The partition-image region ---

extern "C" {
    static __partition_start: u8;
    static __partition_end: u8;
}

fn partition_bounds() -> (usize, usize) {
    // Only the symbols' addresses are taken (safe), never their contents; sections.x defines
    // both as the ends of the PARTITION region of memory.x.
    let start = core::ptr::addr_of!(__partition_start) as usize;
    let end = core::ptr::addr_of!(__partition_end) as usize;
    (start, end.max(start))
}

/// The partition region as bytes. The region is flash (code memory on mps2) that the linker
/// reserves and that nothing in this program writes, so it can be read as an ordinary slice;
/// a loader or debugger writes it only while the firmware is not running.
pub fn partition() -> &'static [u8] {
    let (start, end) = partition_bounds();
    // SAFETY: `start..end` is the PARTITION region of memory.x: readable memory for the whole
    // run of the program, no Rust object occupies it, and the program never writes it, so a
    // shared `'static` slice over it is never aliased by a mutable access. `start` is non-null
    // and 1 KiB aligned (sections.x asserts it), and the length fits the address space.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}
