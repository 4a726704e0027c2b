//! Touches memory in a pattern, for the start-up measurements: allocates and
//! fills `mib` MiB (the "initialization"), reports ready (the snapshot point),
//! then reads and writes it `passes` times in `pattern` order and logs a
//! checksum, so a restored VM can be checked against a resident one.
//!
//! Arguments: `mib=N` (default 64), `pattern=seq|random|stride` (default
//! seq), `passes=N` (default 1).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

twinkle_rt::entry!(main);

fn setting(name: &str, default: &'static str) -> &'static str {
    twinkle_rt::arg_value(name).unwrap_or(default)
}

fn main() -> u8 {
    let mib: usize = setting("mib", "64").parse().unwrap_or(64);
    let pattern = setting("pattern", "seq");
    let passes: u32 = setting("passes", "1").parse().unwrap_or(1);
    let words = mib * (1 << 20) / 8;
    let mut data: Vec<u64> = Vec::with_capacity(words);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.push(x ^ i as u64);
    }
    twinkle_rt::info!("memtouch: {mib} MiB initialized; pattern {pattern}, {passes} pass(es)");
    twinkle_rt::hypercall::ready();
    let start = twinkle_rt::clock::monotonic_ns();
    let mut sum: u64 = 0;
    let pages = words / 512;
    for pass in 0..passes {
        match pattern {
            "random" => {
                let mut r: u64 = 0x2545_f491_4f6c_dd1d ^ u64::from(pass);
                for _ in 0..pages {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let page = (r as usize) % pages.max(1);
                    let i = page * 512;
                    sum = sum.wrapping_add(data[i]);
                    data[i] = data[i].rotate_left(1);
                }
            }
            "stride" => {
                for i in (0..words).step_by(512) {
                    sum = sum.wrapping_add(data[i]);
                    data[i] = data[i].rotate_left(1);
                }
            }
            _ => {
                for v in data.iter_mut() {
                    sum = sum.wrapping_add(*v);
                    *v = v.rotate_left(1);
                }
            }
        }
    }
    let elapsed = twinkle_rt::clock::monotonic_ns() - start;
    twinkle_rt::info!("memtouch: checksum={sum:016x} elapsed_us={}", elapsed / 1000);
    0
}
