//! Native clock: the host's.

extern crate std;

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static START: OnceLock<Instant> = OnceLock::new();

/// (monotonic ns, wall ns) now.
pub fn now() -> (u64, u64) {
    (monotonic_ns(), wall_ns())
}

/// Monotonic nanoseconds since the process started.
pub fn monotonic_ns() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
