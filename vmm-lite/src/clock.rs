//! The clock page: monotonic and wall time the VMM writes whenever the vCPU
//! returns from a wait, plus the TSC reading taken with them and the TSC rate,
//! so the guest can interpolate between updates without an exit.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use guest_abi::{clock as C, layout as L};

use crate::memory::{GuestAddr, GuestMemory};

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is available on every x86-64 CPU and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The VMM's writer of the clock page; shared by the I/O thread (periodic
/// updates) and the vCPU thread (an update on every wake-up).
#[derive(Debug)]
pub struct ClockPage {
    start: Instant,
    tsc0: u64,
    /// Nanoseconds per tick, 32.32, when KVM told us the TSC frequency.
    known_rate: Option<u64>,
    /// Added to the monotonic time: a restored VM continues from its snapshot.
    mono_offset: u64,
    seq: Mutex<u32>,
}

impl ClockPage {
    /// Starts the monotonic clock at zero now. With the TSC frequency (kHz)
    /// the rate is exact from the first update; without, it is measured.
    pub fn new(tsc_khz: Option<u32>) -> Self {
        let known_rate = tsc_khz.map(|k| ((1_000_000u128 << 32) / u128::from(k)) as u64);
        ClockPage { start: Instant::now(), tsc0: rdtsc(), known_rate, mono_offset: 0, seq: Mutex::new(0) }
    }

    /// The same clock, continuing from `mono_ns` (the snapshot's time).
    pub fn continuing_from(mut self, mono_ns: u64) -> Self {
        self.mono_offset = mono_ns;
        self
    }

    /// The guest's monotonic time now.
    pub fn mono_ns(&self) -> u64 {
        self.mono_offset.saturating_add(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Writes the current time into the page (a seqlock: odd while writing).
    pub fn update(&self, mem: &GuestMemory) {
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mono = self.mono_offset.saturating_add(elapsed);
        let tsc = rdtsc();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let ticks = tsc.wrapping_sub(self.tsc0);
        let rate = if let Some(r) = self.known_rate {
            r
        } else if elapsed > 5_000_000 && ticks > 0 {
            ((u128::from(elapsed) << 32) / u128::from(ticks)).min(u128::from(u64::MAX)) as u64
        } else {
            0
        };
        let base = L::CLOCK;
        *seq = seq.wrapping_add(1) | 1;
        let _ = mem.store_u32(GuestAddr(base + C::SEQ), *seq);
        let _ = mem.store_u64_atomic(GuestAddr(base + C::MONO_NS), mono);
        let _ = mem.store_u64_atomic(GuestAddr(base + C::WALL_NS), wall);
        let _ = mem.store_u64_atomic(GuestAddr(base + C::TSC), tsc);
        let _ = mem.store_u64_atomic(GuestAddr(base + C::NS_PER_TSC_Q32), rate);
        *seq = seq.wrapping_add(1);
        let _ = mem.store_u32(GuestAddr(base + C::SEQ), *seq);
    }
}

impl Default for ClockPage {
    fn default() -> Self {
        Self::new(None)
    }
}
