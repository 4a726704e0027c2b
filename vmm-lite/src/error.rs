//! How a VM can fail to start, and how a running VM ends.

use std::fmt;

use crate::elf::ElfError;
use crate::memory::{MemoryError, OutOfBounds};

/// Why a VM could not be created or run (a host-side problem or bad input).
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// /dev/kvm is missing or not usable.
    #[error(
        "cannot open /dev/kvm: {0} (twinkle needs KVM: load the kvm module and run as a user who can open /dev/kvm)"
    )]
    NoKvm(#[source] kvm_ioctls::Error),
    /// A KVM ioctl failed.
    #[error("KVM {op} failed: {source}")]
    Kvm {
        /// What was attempted.
        op: &'static str,
        /// The error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Writing the boot structures failed (memory too small).
    #[error("guest memory too small for the boot layout: {0}")]
    Layout(#[from] OutOfBounds),
    /// The guest ELF was refused.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// A setting is out of range.
    #[error("invalid VM configuration: {0}")]
    Config(String),
    /// A snapshot could not be written or used.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// Host I/O failed (listener, threads).
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A fault of the guest: the VM is ended, the VMM is fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFault {
    /// The vCPU took an exception it could not handle (triple fault).
    Exception {
        /// Instruction pointer, if KVM reported it.
        rip: u64,
        /// Faulting address for page faults.
        cr2: u64,
        /// Exception vector, when known (14 = page fault, 13 = general protection, 6 = invalid opcode).
        vector: Option<u8>,
        /// What the address means (null page, stack guard, outside memory).
        note: Option<String>,
    },
    /// An unknown hypercall number.
    BadHypercall {
        /// The number in eax.
        number: u64,
        /// Where.
        rip: u64,
    },
    /// An `out`/`in` to a port that is not ours, or an `in`.
    BadPort {
        /// The port.
        port: u16,
        /// Whether it was an `in`.
        input: bool,
    },
    /// An access to an address outside every memory slot.
    Mmio {
        /// The address.
        addr: u64,
    },
    /// A hypercall argument pointed outside guest memory.
    BadPointer {
        /// Which hypercall.
        call: &'static str,
        /// The details.
        detail: String,
    },
    /// A ring index or entry was invalid.
    Ring(String),
    /// The vCPU stopped with `hlt` (not allowed: use the wait hypercall).
    Halt {
        /// Where.
        rip: u64,
    },
    /// A KVM exit twinkle does not handle.
    UnknownExit(String),
}

fn vector_name(v: u8) -> &'static str {
    match v {
        0 => "divide error (or an exception KVM did not name)",
        3 => "breakpoint",
        6 => "invalid opcode",
        8 => "double fault",
        13 => "general protection fault",
        14 => "page fault",
        17 => "alignment check",
        19 => "SIMD floating-point exception",
        _ => "exception",
    }
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestFault::Exception { rip, cr2, vector, note } => {
                match vector {
                    Some(v) => write!(f, "guest crashed: {} (vector {v}) at rip {rip:#x}", vector_name(*v))?,
                    None => write!(f, "guest crashed: triple fault at rip {rip:#x}")?,
                }
                if *vector == Some(14) {
                    write!(f, ", address {cr2:#x}")?;
                }
                if let Some(n) = note {
                    write!(f, " ({n})")?;
                }
                Ok(())
            }
            GuestFault::BadHypercall { number, rip } => {
                write!(f, "guest made unknown hypercall {number} at rip {rip:#x}")
            }
            GuestFault::BadPort { port, input } => {
                write!(
                    f,
                    "guest used `{}` on port {port:#x}, which is not a twinkle port",
                    if *input { "in" } else { "out" }
                )
            }
            GuestFault::Mmio { addr } => {
                write!(f, "guest accessed {addr:#x}, outside guest memory")
            }
            GuestFault::BadPointer { call, detail } => {
                write!(f, "guest passed a bad pointer to {call}: {detail}")
            }
            GuestFault::Ring(d) => write!(f, "guest corrupted its rings: {d}"),
            GuestFault::Halt { rip } => write!(f, "guest executed hlt at rip {rip:#x} (use the wait hypercall)"),
            GuestFault::UnknownExit(d) => write!(f, "unexpected KVM exit: {d}"),
        }
    }
}

/// How a VM ended.
#[derive(Debug)]
pub enum VmExit {
    /// The guest called exit.
    Exited(u8),
    /// The guest panicked (message).
    Panicked(String),
    /// The guest faulted.
    Faulted(GuestFault),
    /// The host side failed while running.
    HostError(String),
    /// Stopped from outside (signal or control request).
    Stopped,
    /// An image was written at the guest's Ready (`twinkle image build`).
    Snapshotted {
        /// The image directory.
        dir: std::path::PathBuf,
        /// Bytes of memory stored (free pages are not).
        stored: u64,
        /// Boot to Ready, ms.
        init_ms: f64,
    },
}

impl VmExit {
    /// The process exit code `twinkle vm run` uses for this ending: the guest's
    /// own code, 101 for a panic, 134 for a fault, 70 for a host error, 143 when stopped.
    pub fn code(&self) -> u8 {
        match self {
            VmExit::Exited(c) => *c,
            VmExit::Panicked(_) => 101,
            VmExit::Faulted(_) => 134,
            VmExit::HostError(_) => 70,
            VmExit::Stopped => 143,
            VmExit::Snapshotted { .. } => 0,
        }
    }
}

impl fmt::Display for VmExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmExit::Exited(c) => write!(f, "guest exited with code {c}"),
            VmExit::Panicked(m) => write!(f, "guest panicked: {m}"),
            VmExit::Faulted(g) => write!(f, "{g}"),
            VmExit::HostError(e) => write!(f, "VMM error: {e}"),
            VmExit::Stopped => write!(f, "VM stopped"),
            VmExit::Snapshotted { dir, stored, init_ms } => write!(
                f,
                "image written to {} ({:.1} MiB of memory stored; the app initialized in {init_ms:.1} ms)",
                dir.display(),
                *stored as f64 / (1 << 20) as f64
            ),
        }
    }
}
