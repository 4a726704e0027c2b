//! twinkle-rt: the runtime of twinkle guest programs.
//!
//! A guest is a `#![no_std] #![no_main]` program that calls
//! [`entry!`](crate::entry) with its main function. The runtime checks the
//! boot-info page, sets up the allocator (with the free-page bitmap the VMM
//! reads at snapshot time), and offers hypercalls, logging, the clock, and
//! stream sockets over the rings (see docs/guest-abi.md). A panic reports its
//! message to the VMM and ends the VM.

#![no_std]

extern crate alloc as alloc_crate;

pub mod alloc;
#[cfg(not(feature = "native"))]
pub mod clock;
#[cfg(not(feature = "native"))]
pub mod hypercall;
pub mod log;
#[cfg(not(feature = "native"))]
mod mem;
#[cfg(not(feature = "native"))]
pub mod net;

#[cfg(feature = "native")]
#[path = "native/clock.rs"]
pub mod clock;
#[cfg(feature = "native")]
#[path = "native/hypercall.rs"]
pub mod hypercall;
#[cfg(feature = "native")]
#[path = "native/net.rs"]
pub mod net;

pub use guest_abi as abi;

use core::cell::UnsafeCell;

use abi::BootInfo;

#[cfg(not(feature = "native"))]
#[global_allocator]
static ALLOCATOR: alloc::PageAllocator = alloc::PageAllocator::new();
#[cfg(feature = "native")]
static ALLOCATOR: alloc::PageAllocator = alloc::PageAllocator::new();

struct BootCell(UnsafeCell<Option<BootInfo>>);
// SAFETY: written once by `start` before main runs; read-only afterwards; one vCPU.
unsafe impl Sync for BootCell {}
static BOOT: BootCell = BootCell(UnsafeCell::new(None));

/// The boot information (valid once main runs).
pub fn boot() -> &'static BootInfo {
    // SAFETY: set once in `start` before any caller can run.
    match unsafe { &*BOOT.0.get() } {
        Some(b) => b,
        None => hypercall::panic_exit(b"boot info used before start"),
    }
}

/// The allocator, for statistics.
pub fn allocator() -> &'static alloc::PageAllocator {
    &ALLOCATOR
}

/// The arguments given with `--arg`, in order.
pub fn args() -> impl Iterator<Item = &'static str> {
    let b = boot();
    (0..b.argc).filter_map(move |i| b.arg(i).and_then(|a| core::str::from_utf8(a).ok()))
}

/// The value of a `name=value` argument, if given.
pub fn arg_value(name: &str) -> Option<&'static str> {
    args().find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// The i-th argument.
pub fn arg(i: u32) -> Option<&'static str> {
    boot().arg(i).and_then(|a| core::str::from_utf8(a).ok())
}

/// Called by [`entry!`]: sets up the runtime and runs `main`; its return value
/// is the exit code.
///
/// # Safety
/// Called once, at entry, with the boot-info address the VMM passed in rdi.
pub unsafe fn start(boot_info: u64, main: fn() -> u8) -> ! {
    let mut page = [0u8; 4096];
    // SAFETY: the VMM passes the address of the mapped boot-info page.
    unsafe { core::ptr::copy_nonoverlapping(boot_info as *const u8, page.as_mut_ptr(), 4096) };
    let Some(info) = BootInfo::decode(&page) else {
        hypercall::panic_exit(b"boot info has the wrong magic or ABI version");
    };
    // SAFETY: single write before anything reads BOOT.
    unsafe { *BOOT.0.get() = Some(info) };
    let b = boot();
    // SAFETY: the boot info describes the bitmap and heap areas, unused so far.
    unsafe { ALLOCATOR.init(b.free_bitmap, b.free_bitmap_pages, b.heap_start, b.heap_end) };
    hypercall::exit(main())
}

/// Native builds: the C runtime calls `main`; arguments come from the command
/// line, the listener and endpoints from the environment (see `native/net.rs`).
#[cfg(feature = "native")]
pub fn native_start(main: fn() -> u8) -> i32 {
    extern crate std;
    let mut info = BootInfo::new();
    for a in std::env::args().skip(1) {
        info.push_arg(a.as_bytes());
    }
    net::from_env(&mut info);
    // SAFETY: single write before anything reads BOOT.
    unsafe { *BOOT.0.get() = Some(info) };
    i32::from(main())
}

/// Defines the program's entry point: `twinkle_rt::entry!(main);` with
/// `fn main() -> u8`.
#[cfg(feature = "native")]
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[export_name = "main"]
        pub extern "C" fn __twinkle_native_main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::native_start($main)
        }
    };
}

/// Defines the program's entry point: `twinkle_rt::entry!(main);` with
/// `fn main() -> u8`.
#[cfg(not(feature = "native"))]
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        #[link_section = ".text._start"]
        pub unsafe extern "C" fn _start(boot_info: u64) -> ! {
            // SAFETY: the VMM enters here once with the boot-info address in rdi.
            unsafe { $crate::start(boot_info, $main) }
        }
    };
}

/// The precompiled `alloc` library has unwinding landing pads that name this
/// symbol; guests abort on panic, so it is never reached.
#[cfg(not(feature = "native"))]
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    hypercall::panic_exit(b"unwinding is not supported in guests (panic = abort)")
}

#[cfg(not(feature = "native"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut line = log::LineBuf::new();
    let _ = write!(line, "{}", info);
    hypercall::panic_exit(line.as_bytes())
}
