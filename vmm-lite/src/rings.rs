//! The host side of the stream-socket rings in guest memory.
//!
//! The guest owns `SQ_TAIL` and `CQ_HEAD`, the VMM owns `SQ_HEAD` and
//! `CQ_TAIL` and keeps its own copies of them (what the guest writes there is
//! ignored). Every index read from the guest is checked: a queue can never
//! hold more than `entries` items; a violation ends the VM.

use guest_abi::{layout as L, ring, Cqe, Sqe};

use crate::memory::{GuestAddr, GuestMemory};

/// Addresses and size of the two queues.
#[derive(Clone, Copy, Debug)]
pub struct HostRings {
    entries: u32,
}

impl HostRings {
    /// Rings of `entries` entries (a power of two, at most `ring::MAX_ENTRIES`).
    pub fn new(entries: u32) -> Option<HostRings> {
        (entries.is_power_of_two() && entries <= ring::MAX_ENTRIES).then_some(HostRings { entries })
    }

    /// Entries per queue.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    fn load(mem: &GuestMemory, off: u64) -> Result<u32, String> {
        mem.load_u32(GuestAddr(L::RING_HEADER + off)).map_err(|e| e.to_string())
    }

    /// Zeroes the indices (at boot).
    pub fn reset(&self, mem: &GuestMemory) -> Result<(), String> {
        for off in [ring::SQ_TAIL, ring::SQ_HEAD, ring::CQ_TAIL, ring::CQ_HEAD, ring::VMM_IDLE] {
            mem.store_u32(GuestAddr(L::RING_HEADER + off), 0).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Completions the guest has not consumed yet, given the VMM's `cq_tail`.
    pub fn cq_used(&self, mem: &GuestMemory, cq_tail: u32) -> Result<u32, String> {
        let head = Self::load(mem, ring::CQ_HEAD)?;
        let used = cq_tail.wrapping_sub(head);
        if used > self.entries {
            return Err(format!(
                "completion head {head} is {used} entries behind the tail {cq_tail}; the queue has {}",
                self.entries
            ));
        }
        Ok(used)
    }

    /// Whether completions are waiting for the guest (reads the VMM's tail from memory).
    pub fn completions_pending(&self, mem: &GuestMemory) -> Result<bool, String> {
        let tail = Self::load(mem, ring::CQ_TAIL)?;
        Ok(self.cq_used(mem, tail)? > 0)
    }

    /// Submissions available after the VMM's `sq_head`.
    pub fn sq_available(&self, mem: &GuestMemory, sq_head: u32) -> Result<u32, String> {
        let tail = Self::load(mem, ring::SQ_TAIL)?;
        let n = tail.wrapping_sub(sq_head);
        if n > self.entries {
            return Err(format!(
                "submission tail {tail} is {n} entries ahead of the head {sq_head}; the queue has {}",
                self.entries
            ));
        }
        Ok(n)
    }

    /// Reads the submission at `index` (any value: it is masked).
    pub fn read_sqe(&self, mem: &GuestMemory, index: u32) -> Result<Sqe, String> {
        let slot = u64::from(index & (self.entries - 1));
        let mut b = [0u8; 32];
        mem.read(GuestAddr(L::SQ + slot * ring::ENTRY_SIZE), &mut b).map_err(|e| e.to_string())?;
        Ok(Sqe::decode(&b))
    }

    /// Tells the guest whether the I/O thread is about to block (1) or awake (0).
    pub fn set_vmm_idle(&self, mem: &GuestMemory, idle: bool) -> Result<(), String> {
        mem.store_u32(GuestAddr(L::RING_HEADER + ring::VMM_IDLE), u32::from(idle)).map_err(|e| e.to_string())?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Publishes the VMM's submission head.
    pub fn set_sq_head(&self, mem: &GuestMemory, head: u32) -> Result<(), String> {
        mem.store_u32(GuestAddr(L::RING_HEADER + ring::SQ_HEAD), head).map_err(|e| e.to_string())
    }

    /// Writes a completion at `cq_tail` and publishes `cq_tail + 1`. The caller
    /// has checked there is room.
    pub fn push_cqe(&self, mem: &GuestMemory, cq_tail: u32, cqe: &Cqe) -> Result<(), String> {
        let slot = u64::from(cq_tail & (self.entries - 1));
        mem.write(GuestAddr(L::CQ + slot * ring::ENTRY_SIZE), &cqe.encode()).map_err(|e| e.to_string())?;
        mem.store_u32(GuestAddr(L::RING_HEADER + ring::CQ_TAIL), cq_tail.wrapping_add(1)).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (GuestMemory, HostRings) {
        let mem = GuestMemory::new(4 << 20).unwrap();
        let rings = HostRings::new(8).unwrap();
        rings.reset(&mem).unwrap();
        (mem, rings)
    }

    fn set(mem: &GuestMemory, off: u64, v: u32) {
        mem.store_u32(GuestAddr(L::RING_HEADER + off), v).unwrap();
    }

    #[test]
    fn sizes_must_be_powers_of_two_within_the_layout() {
        assert!(HostRings::new(6).is_none());
        assert!(HostRings::new(ring::MAX_ENTRIES * 2).is_none());
        assert!(HostRings::new(1).is_some());
    }

    #[test]
    fn submission_indices_beyond_the_queue_are_refused() {
        let (mem, rings) = setup();
        set(&mem, ring::SQ_TAIL, 8);
        assert_eq!(rings.sq_available(&mem, 0).unwrap(), 8);
        set(&mem, ring::SQ_TAIL, 9);
        assert!(rings.sq_available(&mem, 0).unwrap_err().contains("9 entries ahead"));
        // Wrapping counters are fine.
        set(&mem, ring::SQ_TAIL, 3);
        assert_eq!(rings.sq_available(&mem, u32::MAX - 1).unwrap(), 5);
        // A tail behind the head is a huge distance: refused.
        set(&mem, ring::SQ_TAIL, 10);
        assert!(rings.sq_available(&mem, 12).is_err());
    }

    #[test]
    fn completion_head_is_checked_and_entries_round_trip() {
        let (mem, rings) = setup();
        let cqe = Cqe { op: 3, conn: 7, result: 42, user: 9 };
        for tail in 0..8u32 {
            rings.push_cqe(&mem, tail, &cqe).unwrap();
        }
        assert_eq!(rings.cq_used(&mem, 8).unwrap(), 8);
        assert!(rings.completions_pending(&mem).unwrap());
        set(&mem, ring::CQ_HEAD, 8);
        assert!(!rings.completions_pending(&mem).unwrap());
        set(&mem, ring::CQ_HEAD, 20);
        assert!(rings.cq_used(&mem, 8).is_err(), "a head past the tail is corruption");
        let sqe = Sqe { op: 4, conn: 1, addr: 0x1000, len: 5, user: 1 };
        mem.write(GuestAddr(L::SQ + 3 * ring::ENTRY_SIZE), &sqe.encode()).unwrap();
        assert_eq!(rings.read_sqe(&mem, 8 * 1000 + 3).unwrap(), sqe);
    }
}
