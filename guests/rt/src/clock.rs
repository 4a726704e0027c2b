//! Time from the clock page: the VMM's last reading plus the TSC ticks since,
//! under a seqlock (docs/guest-abi.md).

use core::sync::atomic::{AtomicU32, Ordering};

use guest_abi::clock as C;

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; the VMM leaves it enabled at CPL3.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn read_u64(addr: u64) -> u64 {
    // SAFETY: the clock page is mapped guest memory given by the boot info.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

fn seq(base: u64) -> u32 {
    // SAFETY: the sequence word is an aligned u32 in the clock page.
    unsafe { AtomicU32::from_ptr((base + C::SEQ) as *mut u32) }.load(Ordering::Acquire)
}

/// (monotonic ns, wall ns) now.
pub fn now() -> (u64, u64) {
    let base = crate::boot().clock;
    loop {
        let s1 = seq(base);
        if s1 & 1 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let mono = read_u64(base + C::MONO_NS);
        let wall = read_u64(base + C::WALL_NS);
        let tsc = read_u64(base + C::TSC);
        let rate = read_u64(base + C::NS_PER_TSC_Q32);
        if seq(base) != s1 {
            continue;
        }
        let ticks = rdtsc().wrapping_sub(tsc);
        let extra = if ticks > (1 << 40) { 0 } else { ((u128::from(ticks) * u128::from(rate)) >> 32) as u64 };
        return (mono + extra, wall + extra);
    }
}

/// Monotonic nanoseconds since the VM started.
pub fn monotonic_ns() -> u64 {
    now().0
}

/// Nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    now().1
}
