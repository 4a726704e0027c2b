//! memcpy, memmove, memset, memcmp and bcmp: the compiler emits calls to
//! them, and with no C library the guest must provide them. Written with
//! `rep movsb`/`rep stosb` (fast on current CPUs) so that LLVM cannot turn
//! them back into calls to themselves.

use core::arch::asm;

/// # Safety
/// As C's memcpy: `dst` and `src` valid for `n` bytes and not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract is C's memcpy contract.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's memmove: `dst` and `src` valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: copying forwards is correct when dst is below src or past its end.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: copying backwards (direction flag set, then cleared) handles
    // dst inside [src, src + n).
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n).wrapping_sub(1) => _,
            inout("rsi") src.add(n).wrapping_sub(1) => _,
            options(nostack),
        );
    }
    dst
}

/// # Safety
/// As C's memset: `dst` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract is C's memset contract.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's memcmp: both pointers valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both ranges are valid for n bytes.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// # Safety
/// As C's bcmp: both pointers valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
