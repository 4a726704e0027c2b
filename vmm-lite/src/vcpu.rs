//! The vCPU run loop: KVM_RUN until the guest exits, faults or is stopped,
//! serving hypercalls on the way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use guest_abi::{port, Hypercall, LogLevel, MAX_LOG, PAGE_SIZE};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use crate::arch::stack_guard;
use crate::clock::ClockPage;
use crate::control::VmShared;
use crate::error::{GuestFault, VmExit};
use crate::memory::{GuestAddr, GuestMemory};
use crate::net::IoDriver;
use crate::rings::HostRings;

/// Where and what to save when the guest reports Ready.
#[derive(Debug)]
pub(crate) struct SnapshotPlan {
    /// The image directory.
    pub dir: std::path::PathBuf,
    /// App name.
    pub app: String,
    /// App arguments.
    pub args: Vec<String>,
    /// Endpoint names.
    pub endpoints: Vec<String>,
    /// The guest ELF.
    pub elf: Vec<u8>,
}

/// What the vCPU thread works with.
pub(crate) struct VcpuCtx {
    /// Guest memory.
    pub mem: Arc<GuestMemory>,
    /// State shared with the other threads.
    pub shared: Arc<VmShared>,
    /// The rings, for Wait's check of pending completions.
    pub rings: HostRings,
    /// The network, driven while the guest waits.
    pub io: IoDriver,
    /// The clock page, refreshed after each wait.
    pub clock: Arc<ClockPage>,
    /// Whether registers travel with exits (KVM_CAP_SYNC_REGS).
    pub sync_regs: bool,
    /// Snapshot at Ready (image build).
    pub snapshot: Option<SnapshotPlan>,
}

/// Runs the vCPU until the VM ends; records the ending in `shared`.
pub(crate) fn run_vcpu(mut vcpu: VcpuFd, mut cx: VcpuCtx) {
    let VcpuCtx { ref mem, ref shared, sync_regs, .. } = cx;
    let (mem, shared) = (Arc::clone(mem), Arc::clone(shared));
    if sync_regs {
        vcpu.set_sync_valid_reg(SyncReg::Register);
    }
    let why = loop {
        shared.park_if_paused();
        if shared.stopping() {
            break VmExit::Stopped;
        }
        let exit = match vcpu.run() {
            Ok(e) => e,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => break VmExit::HostError(format!("KVM_RUN failed: {e}")),
        };
        shared.stats.exits.fetch_add(1, Ordering::Relaxed);
        let outcome = match exit {
            VcpuExit::IoOut(p, data) if p == port::HYPERCALL => {
                let mut n = [0u8; 4];
                let k = data.len().min(4);
                n[..k].copy_from_slice(&data[..k]);
                let number = u32::from_le_bytes(n);
                match hypercall(&mut vcpu, number, &mut cx) {
                    Ok(()) if number == Hypercall::Ready as u32 && cx.snapshot.is_some() => {
                        Err(take_snapshot(&mut vcpu, &mut cx))
                    }
                    other => other,
                }
            }
            VcpuExit::IoOut(p, _) if p == port::NOTIFY => Ok(()),
            VcpuExit::IoOut(p, _) => Err(VmExit::Faulted(GuestFault::BadPort { port: p, input: false })),
            VcpuExit::IoIn(p, _) => Err(VmExit::Faulted(GuestFault::BadPort { port: p, input: true })),
            VcpuExit::MmioRead(addr, _) | VcpuExit::MmioWrite(addr, _) => {
                Err(VmExit::Faulted(GuestFault::Mmio { addr }))
            }
            VcpuExit::Shutdown => Err(VmExit::Faulted(describe_crash(&vcpu, mem.size()))),
            VcpuExit::Hlt => Err(VmExit::Faulted(GuestFault::Halt { rip: rip(&vcpu) })),
            VcpuExit::Intr => Ok(()),
            VcpuExit::FailEntry(reason, cpu) => {
                Err(VmExit::HostError(format!("KVM could not enter the guest (reason {reason:#x}, cpu {cpu})")))
            }
            VcpuExit::InternalError => Err(VmExit::HostError("KVM internal error".into())),
            other => Err(VmExit::Faulted(GuestFault::UnknownExit(format!("{other:?}")))),
        };
        if let Err(why) = outcome {
            break why;
        }
    };
    shared.finish(why);
}

/// Completes the Ready hypercall without running the guest (KVM_RUN with
/// immediate_exit finishes the pending `out`), then saves the image.
fn take_snapshot(vcpu: &mut VcpuFd, cx: &mut VcpuCtx) -> VmExit {
    let Some(plan) = cx.snapshot.take() else { return VmExit::Stopped };
    vcpu.set_kvm_immediate_exit(1);
    let _ = vcpu.run();
    vcpu.set_kvm_immediate_exit(0);
    let host = |what: &str, e: kvm_ioctls::Error| VmExit::HostError(format!("{what} for the snapshot: {e}"));
    let regs = match vcpu.get_regs() {
        Ok(r) => r,
        Err(e) => return host("KVM_GET_REGS", e),
    };
    let sregs = match vcpu.get_sregs() {
        Ok(r) => r,
        Err(e) => return host("KVM_GET_SREGS", e),
    };
    let fpu = match vcpu.get_fpu() {
        Ok(r) => r,
        Err(e) => return host("KVM_GET_FPU", e),
    };
    let init_ms = cx.shared.ready_after().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let pages = cx.mem.size() / PAGE_SIZE;
    let meta = crate::snapshot::Meta {
        app: plan.app,
        args: plan.args,
        endpoints: plan.endpoints,
        mem_size: cx.mem.size(),
        ring_entries: cx.rings.entries(),
        mono_ns: cx.clock.mono_ns(),
        pages,
        free_pages: crate::memory::count_free_pages(&cx.mem),
        created_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        twinkle_version: env!("CARGO_PKG_VERSION").to_string(),
        init_ms,
    };
    let capture = crate::snapshot::Capture {
        mem: &cx.mem,
        meta,
        vcpu: crate::snapshot::VcpuState { regs, sregs, fpu: (&fpu).into() },
        net: cx.io.net_state(),
        elf: &plan.elf,
    };
    match crate::snapshot::save(&plan.dir, capture) {
        Ok(stored) => VmExit::Snapshotted { dir: plan.dir, stored, init_ms },
        Err(e) => VmExit::HostError(format!("cannot write the image: {e}")),
    }
}

fn rip(vcpu: &VcpuFd) -> u64 {
    vcpu.get_regs().map(|r| r.rip).unwrap_or(0)
}

fn describe_crash(vcpu: &VcpuFd, mem_size: u64) -> GuestFault {
    let rip = rip(vcpu);
    let cr2 = vcpu.get_sregs().map(|s| s.cr2).unwrap_or(0);
    let vector = vcpu.get_vcpu_events().ok().map(|e| e.exception.nr);
    let guard = stack_guard(mem_size);
    let note = if vector == Some(14) {
        if cr2 < PAGE_SIZE {
            Some("null pointer dereference".to_string())
        } else if (guard..guard + PAGE_SIZE).contains(&cr2) {
            Some("stack overflow: the stack guard page was hit".to_string())
        } else if cr2 >= mem_size {
            Some(format!("the address is beyond the {} MiB of guest memory", mem_size >> 20))
        } else {
            None
        }
    } else {
        None
    };
    GuestFault::Exception { rip, cr2, vector, note }
}

fn guest_str(mem: &GuestMemory, addr: u64, len: u64, call: &'static str) -> Result<String, VmExit> {
    let len = len.min(MAX_LOG);
    let mut buf = vec![0u8; len as usize];
    mem.read(GuestAddr(addr), &mut buf)
        .map_err(|e| VmExit::Faulted(GuestFault::BadPointer { call, detail: e.to_string() }))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn hypercall(vcpu: &mut VcpuFd, number: u32, cx: &mut VcpuCtx) -> Result<(), VmExit> {
    let VcpuCtx { mem, shared, rings, io, clock, sync_regs, .. } = cx;
    let (mem, shared, sync_regs): (&GuestMemory, &VmShared, bool) = (mem, shared, *sync_regs);
    shared.stats.hypercalls.fetch_add(1, Ordering::Relaxed);
    // With KVM_CAP_SYNC_REGS the registers come with the exit and go back
    // with the next entry: two ioctls fewer per hypercall.
    let mut regs = if sync_regs {
        vcpu.sync_regs().regs
    } else {
        vcpu.get_regs().map_err(|e| VmExit::HostError(format!("KVM_GET_REGS: {e}")))?
    };
    let Some(call) = Hypercall::from_u32(number) else {
        return Err(VmExit::Faulted(GuestFault::BadHypercall { number: u64::from(number), rip: regs.rip }));
    };
    let result: u64 = match call {
        Hypercall::Wait => {
            // Completions already waiting: carry out new submissions without
            // blocking and return. Otherwise block until one is posted.
            let pending = rings.completions_pending(mem).map_err(|e| VmExit::Faulted(GuestFault::Ring(e)))?;
            let timeout = if pending || shared.stopping() {
                Some(Duration::ZERO)
            } else {
                shared.stats.waits.fetch_add(1, Ordering::Relaxed);
                (regs.rdi != u64::MAX).then(|| Duration::from_nanos(regs.rdi))
            };
            io.wait(timeout)?;
            clock.update(mem);
            0
        }
        // Submissions are carried out at the next Wait: nothing to do now.
        Hypercall::Notify => 0,
        Hypercall::Ready => {
            if shared.set_ready() {
                let after = shared.ready_after().unwrap_or_default();
                tracing::info!(target: "guest", "ready after {:.1} ms", after.as_secs_f64() * 1e3);
            }
            0
        }
        Hypercall::Log => {
            let text = guest_str(mem, regs.rdi, regs.rsi, "log")?;
            let text = text.trim_end();
            match LogLevel::from_u64(regs.r8) {
                LogLevel::Error => tracing::error!(target: "guest", "{text}"),
                LogLevel::Warn => tracing::warn!(target: "guest", "{text}"),
                LogLevel::Info => tracing::info!(target: "guest", "{text}"),
                LogLevel::Debug => tracing::debug!(target: "guest", "{text}"),
            }
            0
        }
        Hypercall::Exit => return Err(VmExit::Exited((regs.rdi & 0xff) as u8)),
        Hypercall::Panic => {
            let text = guest_str(mem, regs.rdi, regs.rsi, "panic")?;
            return Err(VmExit::Panicked(text));
        }
    };
    regs.rax = result;
    if sync_regs {
        vcpu.sync_regs_mut().regs.rax = result;
        vcpu.set_sync_dirty_reg(SyncReg::Register);
    } else {
        vcpu.set_regs(&regs).map_err(|e| VmExit::HostError(format!("KVM_SET_REGS: {e}")))?;
    }
    Ok(())
}
