//! State shared by the vCPU thread, the I/O thread and whoever runs the VM:
//! the request to stop, how the VM ended, the doorbell the waiting vCPU sleeps
//! on, and counters for status reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::VmExit;
use crate::kick::ThreadKicker;
use crate::net::Notifier;
use std::sync::Arc;

/// Counters a status request reports.
#[derive(Debug, Default)]
pub struct Stats {
    /// KVM exits handled.
    pub exits: AtomicU64,
    /// Hypercalls handled.
    pub hypercalls: AtomicU64,
    /// Wait hypercalls that blocked.
    pub waits: AtomicU64,
    /// Submission entries processed.
    pub sqes: AtomicU64,
    /// Completion entries posted.
    pub cqes: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Outbound connections made.
    pub connected: AtomicU64,
    /// Bytes from guest to network.
    pub bytes_out: AtomicU64,
    /// Bytes from network to guest.
    pub bytes_in: AtomicU64,
}

/// The shared state of one running VM.
#[derive(Debug)]
pub struct VmShared {
    stop: AtomicBool,
    exit: Mutex<Option<VmExit>>,
    exit_cv: Condvar,
    bell: Mutex<u64>,
    bell_cv: Condvar,
    waker: OnceLock<Arc<Notifier>>,
    ready_at: OnceLock<Instant>,
    first_byte_at: OnceLock<Instant>,
    paused: Mutex<bool>,
    pause_cv: Condvar,
    parked: AtomicBool,
    kicker: OnceLock<ThreadKicker>,
    /// When the VM was created.
    pub started: Instant,
    /// Counters.
    pub stats: Stats,
}

impl VmShared {
    /// Fresh state.
    pub fn new() -> Self {
        VmShared {
            stop: AtomicBool::new(false),
            exit: Mutex::new(None),
            exit_cv: Condvar::new(),
            bell: Mutex::new(0),
            bell_cv: Condvar::new(),
            waker: OnceLock::new(),
            ready_at: OnceLock::new(),
            first_byte_at: OnceLock::new(),
            paused: Mutex::new(false),
            pause_cv: Condvar::new(),
            parked: AtomicBool::new(false),
            kicker: OnceLock::new(),
            started: Instant::now(),
            stats: Stats::default(),
        }
    }

    /// Ends the VM with `why` (the first ending recorded wins) and wakes everyone.
    pub fn finish(&self, why: VmExit) {
        let mut slot = self.exit.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(why);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.exit_cv.notify_all();
        drop(slot);
        self.pause_cv.notify_all();
        self.ring();
    }

    /// Blocks until the VM has an ending recorded.
    pub fn wait_finished(&self) {
        let mut slot = self.exit.lock().unwrap_or_else(|p| p.into_inner());
        while slot.is_none() {
            slot = self.exit_cv.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether the VM should stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// How the VM ended, once it has.
    pub fn take_exit(&self) -> Option<VmExit> {
        self.exit.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Sets the eventfd that wakes the vCPU thread out of network waits.
    pub(crate) fn set_waker(&self, n: Arc<Notifier>) {
        let _ = self.waker.set(n);
    }

    /// Whether a pause was requested (the vCPU parks at its next chance).
    pub fn pause_requested(&self) -> bool {
        *self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes whoever waits on the doorbell, and the vCPU thread if it waits
    /// for network events.
    pub fn ring(&self) {
        if let Some(w) = self.waker.get() {
            w.notify();
        }
        let mut n = self.bell.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.wrapping_add(1);
        self.bell_cv.notify_all();
    }

    /// The doorbell's current count (read before checking for work).
    pub fn bell_count(&self) -> u64 {
        *self.bell.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps until the doorbell count differs from `seen`, the VM stops, or
    /// `timeout` passes.
    pub fn wait_bell(&self, seen: u64, timeout: Option<Duration>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut n = self.bell.lock().unwrap_or_else(|p| p.into_inner());
        while *n == seen && !self.stopping() {
            match deadline {
                None => n = self.bell_cv.wait(n).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return;
                    }
                    n = self.bell_cv.wait_timeout(n, d - now).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
    }

    pub(crate) fn set_kicker(&self, k: ThreadKicker) {
        let _ = self.kicker.set(k);
    }

    /// Kicks the vCPU out of KVM_RUN (if it is in it) and out of a wait.
    pub(crate) fn kick(&self) {
        if let Some(k) = self.kicker.get() {
            k.kick();
        }
        self.ring();
    }

    /// Stops the vCPU between two instructions and keeps it stopped until
    /// [`VmShared::resume`]; the I/O thread keeps running (the network
    /// buffers what arrives). Returns once the vCPU is parked, false if it did
    /// not park within `timeout` (or the VM ended).
    pub fn pause(&self, timeout: Duration) -> bool {
        *self.paused.lock().unwrap_or_else(|p| p.into_inner()) = true;
        let deadline = Instant::now() + timeout;
        while !self.parked.load(Ordering::SeqCst) {
            if self.stopping() || Instant::now() >= deadline {
                return false;
            }
            self.kick();
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }

    /// Lets a paused vCPU run again.
    pub fn resume(&self) {
        *self.paused.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.pause_cv.notify_all();
    }

    /// Whether the vCPU is parked by a pause.
    pub fn is_paused(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// Called by the vCPU thread before entering the guest: parks while paused.
    pub(crate) fn park_if_paused(&self) {
        let mut p = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        while *p && !self.stopping() {
            self.parked.store(true, Ordering::SeqCst);
            p = self.pause_cv.wait_timeout(p, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
        self.parked.store(false, Ordering::SeqCst);
    }

    /// Records that the guest reported initialization done.
    pub fn set_ready(&self) -> bool {
        self.ready_at.set(Instant::now()).is_ok()
    }

    /// Records that the guest sent its first byte to a client (once).
    pub fn set_first_byte(&self) {
        let _ = self.first_byte_at.set(Instant::now());
    }

    /// Time from creation to the first byte the guest sent.
    pub fn first_byte_after(&self) -> Option<Duration> {
        self.first_byte_at.get().map(|t| t.duration_since(self.started))
    }

    /// Time from creation to the ready hypercall.
    pub fn ready_after(&self) -> Option<Duration> {
        self.ready_at.get().map(|t| t.duration_since(self.started))
    }
}

impl Default for VmShared {
    fn default() -> Self {
        Self::new()
    }
}
