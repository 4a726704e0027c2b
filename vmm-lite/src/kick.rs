//! Getting a vCPU thread out of KVM_RUN: a signal with an empty handler makes
//! the ioctl return EINTR. A signal that lands just before KVM_RUN is entered
//! is lost, so kicks are repeated until the thread has left its run loop.

use std::sync::Once;

/// The signal used to kick vCPU threads.
pub const KICK_SIGNAL: libc::c_int = libc::SIGUSR1;

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs the (empty) handler once per process, without SA_RESTART so that
/// KVM_RUN returns EINTR.
pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a zeroed struct, an empty mask and a handler
        // that does nothing (async-signal-safe); it affects only KICK_SIGNAL.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(KICK_SIGNAL, &sa, std::ptr::null_mut());
        }
    });
}

/// A handle to signal one thread.
#[derive(Clone, Copy, Debug)]
pub struct ThreadKicker(libc::pthread_t);

impl ThreadKicker {
    /// The calling thread.
    pub fn current() -> Self {
        // SAFETY: pthread_self has no preconditions.
        ThreadKicker(unsafe { libc::pthread_self() })
    }

    /// Sends the kick signal. The thread must still exist (the caller keeps
    /// the vCPU thread joined only after the last kick).
    pub fn kick(&self) {
        // SAFETY: the handle names a live thread of this process (see above);
        // the signal's handler was installed by `install_handler`.
        unsafe {
            libc::pthread_kill(self.0, KICK_SIGNAL);
        }
    }
}
