//! vmm-lite: twinkle's KVM virtual machine monitor.
//!
//! One VM per process: a guest program (a static ELF that runs in ring 3 with
//! no kernel, see docs/guest-abi.md) gets identity-mapped memory, one vCPU,
//! hypercalls through `out`, a clock page, and TCP stream sockets carried over
//! shared-memory rings by an I/O thread. Every address, length and index the
//! guest hands over is checked; a misbehaving guest ends its VM with a message,
//! never the VMM.
//!
//! `unsafe` is confined to `memory.rs` (the guest mapping), `kick.rs` (signal
//! handling), `clock.rs` (rdtsc) and the memory-slot registration in `vm.rs`.

pub mod arch;
pub mod clock;
pub mod control;
pub mod control_socket;
pub mod elf;
pub mod error;
mod kick;
pub mod launch;
pub mod memory;
pub mod net;
pub mod pager;
pub mod rings;
pub mod snapshot;
mod vcpu;
pub mod vm;

pub use control::VmShared;
pub use error::{GuestFault, VmExit, VmmError};
pub use memory::{GuestAddr, GuestMemory};
pub use vm::{CreateTimings, Vm, VmConfig};
