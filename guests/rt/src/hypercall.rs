//! Hypercalls: `out dx, eax` to the hypercall port, arguments in rdi, rsi,
//! r8, r9, the result in rax (docs/guest-abi.md).

use core::arch::asm;

use guest_abi::{port, Hypercall, LogLevel};

#[inline(always)]
fn call(nr: Hypercall, a0: u64, a1: u64, a2: u64) -> u64 {
    let ret: u64;
    // SAFETY: `out` to the hypercall port traps to the VMM, which reads the
    // registers named here and writes rax; no guest memory is touched by the
    // instruction itself (the VMM reads buffers the arguments point to).
    unsafe {
        asm!(
            "out dx, eax",
            in("dx") port::HYPERCALL,
            inout("rax") nr as u32 as u64 => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("r8") a2,
            options(nostack),
        );
    }
    ret
}

/// Blocks the vCPU until a completion arrives or `timeout_ns` passes
/// (`u64::MAX`: no timeout).
pub fn wait(timeout_ns: u64) {
    call(Hypercall::Wait, timeout_ns, 0, 0);
}

/// Tells the VMM the submission queue has new entries (an ioeventfd: cheap).
#[inline]
pub fn notify() {
    // SAFETY: an `out` to the notify port; the VMM only counts it.
    unsafe {
        asm!("out dx, al", in("dx") port::NOTIFY, in("al") 0u8, options(nostack, nomem));
    }
}

/// Reports that initialization is done (the snapshot point).
pub fn ready() {
    call(Hypercall::Ready, 0, 0, 0);
}

/// Sends a log line.
pub fn log(level: LogLevel, msg: &[u8]) {
    call(Hypercall::Log, msg.as_ptr() as u64, msg.len() as u64, level as u64);
}

/// Ends the VM with `code`.
pub fn exit(code: u8) -> ! {
    call(Hypercall::Exit, u64::from(code), 0, 0);
    loop {
        core::hint::spin_loop();
    }
}

/// Ends the VM reporting a panic message.
pub fn panic_exit(msg: &[u8]) -> ! {
    call(Hypercall::Panic, msg.as_ptr() as u64, msg.len() as u64, 0);
    loop {
        core::hint::spin_loop();
    }
}
