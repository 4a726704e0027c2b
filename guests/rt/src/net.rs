//! The guest side of the stream-socket rings: submit operations, poll
//! completions, notify the VMM, and wait when idle (docs/guest-abi.md).
//!
//! At most `entries` operations are in flight; more are kept in a backlog and
//! submitted as completions free room, so the queues can never overflow.

use alloc_crate::collections::VecDeque;
use core::sync::atomic::{AtomicU32, Ordering};

use guest_abi::{ring, Cqe, Op, Sqe};

fn index(addr: u64) -> &'static AtomicU32 {
    // SAFETY: ring indices are aligned u32s in the ring-header page the boot
    // info names; they live as long as the VM.
    unsafe { AtomicU32::from_ptr(addr as *mut u32) }
}

/// The guest's end of the rings.
pub struct Net {
    header: u64,
    sq: u64,
    cq: u64,
    entries: u32,
    sq_tail: u32,
    cq_head: u32,
    inflight: u32,
    backlog: VecDeque<Sqe>,
    unnotified: bool,
    deferred: VecDeque<Cqe>,
    next_sync: u64,
}

/// Tag in the top byte of `user` for operations made by [`Net::call`].
pub const OWNER_SYNC: u64 = 0x53 << 56;

impl Net {
    /// Opens the rings the boot info describes.
    pub fn new() -> Net {
        let b = crate::boot();
        Net {
            header: b.ring_header,
            sq: b.sq,
            cq: b.cq,
            entries: b.ring_entries,
            sq_tail: index(b.ring_header + ring::SQ_TAIL).load(Ordering::Relaxed),
            cq_head: index(b.ring_header + ring::CQ_HEAD).load(Ordering::Relaxed),
            inflight: 0,
            backlog: VecDeque::new(),
            unnotified: false,
            deferred: VecDeque::new(),
            next_sync: 1,
        }
    }

    /// Whether the VMM has a host listener (Accept will complete).
    pub fn has_listener(&self) -> bool {
        crate::boot().has_listener != 0
    }

    /// The number of the endpoint called `name` (for Connect).
    pub fn endpoint(&self, name: &str) -> Option<u32> {
        crate::boot().endpoint(name.as_bytes())
    }

    /// Operations submitted and not completed.
    pub fn inflight(&self) -> u32 {
        self.inflight + self.backlog.len() as u32
    }

    fn push(&mut self, sqe: &Sqe) {
        let slot = u64::from(self.sq_tail & (self.entries - 1));
        let bytes = sqe.encode();
        // SAFETY: the slot lies inside the submission queue area.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.sq + slot * ring::ENTRY_SIZE) as *mut u8, 32) };
        self.sq_tail = self.sq_tail.wrapping_add(1);
        index(self.header + ring::SQ_TAIL).store(self.sq_tail, Ordering::Release);
        self.inflight += 1;
        self.unnotified = true;
    }

    /// Queues an operation.
    pub fn submit(&mut self, sqe: Sqe) {
        if self.backlog.is_empty() && self.inflight < self.entries {
            self.push(&sqe);
        } else {
            self.backlog.push_back(sqe);
        }
    }

    /// Shorthand for [`Net::submit`].
    pub fn op(&mut self, op: Op, conn: u32, addr: u64, len: u32, user: u64) {
        self.submit(Sqe { op: op as u8, conn, addr, len, user });
    }

    /// Moves backlog into the queue while there is room and tells the VMM.
    pub fn flush(&mut self) {
        while self.inflight < self.entries {
            match self.backlog.pop_front() {
                Some(s) => self.push(&s),
                None => break,
            }
        }
        if self.unnotified {
            self.unnotified = false;
            // SeqCst pairs with the VMM setting VMM_IDLE before it rechecks
            // the queue: either it sees our entries or we see it idle.
            core::sync::atomic::fence(Ordering::SeqCst);
            if index(self.header + ring::VMM_IDLE).load(Ordering::SeqCst) != 0 {
                crate::hypercall::notify();
            }
        }
    }

    /// The next completion, if any (completions set aside by [`Net::call`] first).
    pub fn poll(&mut self) -> Option<Cqe> {
        if let Some(c) = self.deferred.pop_front() {
            return Some(c);
        }
        self.poll_ring()
    }

    /// Submits one operation and waits for its completion, setting aside
    /// every other completion for later [`Net::poll`] calls. For code that
    /// is simplest written in blocking style (a request to a database).
    pub fn call(&mut self, op: Op, conn: u32, addr: u64, len: u32) -> Cqe {
        let tag = OWNER_SYNC | (self.next_sync & 0x00ff_ffff_ffff_ffff);
        self.next_sync += 1;
        self.op(op, conn, addr, len, tag);
        loop {
            self.flush();
            while let Some(c) = self.poll_ring() {
                if c.user == tag {
                    return c;
                }
                self.deferred.push_back(c);
            }
            self.idle_ring(20_000, u64::MAX);
        }
    }

    /// [`Net::call`] that gives up after `timeout_ns`: `Err(user tag)` when
    /// the operation has not completed by then. It is still in flight (its
    /// buffer still belongs to the VMM): close its connection, which
    /// completes it with -ECANCELED, before the buffer is reused; its
    /// completion comes later through [`Net::poll`] with that tag.
    pub fn call_within(&mut self, op: Op, conn: u32, addr: u64, len: u32, timeout_ns: u64) -> Result<Cqe, u64> {
        let tag = OWNER_SYNC | (self.next_sync & 0x00ff_ffff_ffff_ffff);
        self.next_sync += 1;
        self.op(op, conn, addr, len, tag);
        let start = crate::clock::monotonic_ns();
        loop {
            self.flush();
            while let Some(c) = self.poll_ring() {
                if c.user == tag {
                    return Ok(c);
                }
                self.deferred.push_back(c);
            }
            let waited = crate::clock::monotonic_ns().saturating_sub(start);
            if waited >= timeout_ns {
                return Err(tag);
            }
            self.idle_ring(20_000, timeout_ns - waited);
        }
    }

    fn poll_ring(&mut self) -> Option<Cqe> {
        let tail = index(self.header + ring::CQ_TAIL).load(Ordering::Acquire);
        if tail == self.cq_head {
            return None;
        }
        let slot = u64::from(self.cq_head & (self.entries - 1));
        let mut b = [0u8; 32];
        // SAFETY: the slot lies inside the completion queue area.
        unsafe { core::ptr::copy_nonoverlapping((self.cq + slot * ring::ENTRY_SIZE) as *const u8, b.as_mut_ptr(), 32) };
        self.cq_head = self.cq_head.wrapping_add(1);
        index(self.header + ring::CQ_HEAD).store(self.cq_head, Ordering::Release);
        self.inflight = self.inflight.saturating_sub(1);
        Some(Cqe::decode(&b))
    }

    /// Flushes, then polls for up to `spin_ns` before blocking in the VMM
    /// until a completion arrives or `timeout_ns` passes.
    pub fn idle(&mut self, spin_ns: u64, timeout_ns: u64) {
        if !self.deferred.is_empty() {
            return;
        }
        self.idle_ring(spin_ns, timeout_ns);
    }

    fn idle_ring(&mut self, spin_ns: u64, timeout_ns: u64) {
        self.flush();
        if index(self.header + ring::CQ_TAIL).load(Ordering::Acquire) != self.cq_head {
            return;
        }
        if spin_ns > 0 {
            let start = crate::clock::monotonic_ns();
            loop {
                if index(self.header + ring::CQ_TAIL).load(Ordering::Acquire) != self.cq_head {
                    return;
                }
                if crate::clock::monotonic_ns().saturating_sub(start) >= spin_ns {
                    break;
                }
                core::hint::spin_loop();
            }
        }
        crate::hypercall::wait(timeout_ns);
    }
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}
