//! A guest that fails on purpose, one way per mode (`--arg MODE`), so tests
//! can check that each failure ends the VM with the right message and code.
//!
//! Modes: panic (default), null, stack, ud, div, oob, gp (out to a port that
//! is not ours), hlt, badcall, badptr, ring, badlen, oom, exit:N.

#![no_std]
#![no_main]

extern crate alloc;

use core::arch::asm;

use twinkle_rt::abi::{ring, Op, Sqe};

twinkle_rt::entry!(main);

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let big = [n; 64];
    core::hint::black_box(&big);
    recurse(n + 1) + big[3]
}

fn main() -> u8 {
    let mode = twinkle_rt::arg(0).unwrap_or("panic");
    twinkle_rt::info!("crash: mode {mode}");
    match mode {
        "panic" => panic!("crash test: deliberate panic"),
        // SAFETY (all below): deliberately wrong, to test the VMM's handling.
        "null" => unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) as u8 },
        "stack" => recurse(0) as u8,
        "ud" => unsafe {
            asm!("ud2");
            0
        },
        "div" => unsafe {
            asm!("xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _);
            0
        },
        "oob" => unsafe {
            let beyond = twinkle_rt::boot().mem_size + 0x1000;
            core::ptr::read_volatile(beyond as *const u64) as u8
        },
        "gp" => unsafe {
            asm!("out dx, al", in("dx") 0x80u16, in("al") 0u8);
            0
        },
        "hlt" => unsafe {
            asm!("hlt");
            0
        },
        "badcall" => unsafe {
            asm!("out dx, eax", in("dx") twinkle_rt::abi::port::HYPERCALL, in("eax") 999u32);
            0
        },
        "badptr" => {
            unsafe {
                asm!("out dx, eax", in("dx") twinkle_rt::abi::port::HYPERCALL, in("eax") 4u32,
                    in("rdi") 0xffff_ffff_0000u64, in("rsi") 16u64, in("r8") 3u64);
            }
            0
        }
        "ring" => {
            // Claim far more submissions than the queue holds.
            let b = twinkle_rt::boot();
            unsafe { core::ptr::write_volatile((b.ring_header + ring::SQ_TAIL) as *mut u32, 1_000_000) };
            twinkle_rt::hypercall::notify();
            twinkle_rt::hypercall::wait(1_000_000_000);
            0
        }
        "badlen" => {
            let mut net = twinkle_rt::net::Net::new();
            net.submit(Sqe { op: Op::Send as u8, conn: 1, addr: 0x200000, len: ring::MAX_IO + 1, user: 0 });
            net.flush();
            twinkle_rt::hypercall::wait(1_000_000_000);
            0
        }
        "oom" => {
            let mut keep = alloc::vec::Vec::new();
            loop {
                keep.push(alloc::vec![1u8; 1 << 20]);
            }
        }
        m if m.starts_with("exit:") => m[5..].parse().unwrap_or(255),
        other => panic!("unknown crash mode {other:?}"),
    }
}
