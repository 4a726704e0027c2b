//! Creating a VM (KVM VM, memory slot, loaded guest, vCPU in its entry state)
//! and running it to its end with a vCPU thread and an I/O thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guest_abi::{layout as L, ring, BootInfo, PAGE_SIZE};
use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_userspace_memory_region, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use crate::arch::{self, MAX_MEM};
use crate::clock::ClockPage;
use crate::control::VmShared;
use crate::elf;
use crate::error::{VmExit, VmmError};
use crate::kick::{self, ThreadKicker};
use crate::memory::{GuestAddr, GuestMemory};
use crate::net::{IoDriver, NetConfig, Notifier};
use crate::rings::HostRings;
use crate::vcpu::{run_vcpu, VcpuCtx};

/// The time-stamp counter MSR.
const MSR_IA32_TSC: u32 = 0x10;

/// Smallest guest memory: image, heap and stack need room.
pub const MIN_MEM_MIB: u32 = 8;

/// What to run and how.
#[derive(Debug)]
pub struct VmConfig {
    /// Guest memory in MiB (a multiple of 2, at least [`MIN_MEM_MIB`]).
    pub mem_mib: u32,
    /// The guest program (static ELF).
    pub elf: Vec<u8>,
    /// Arguments for the guest (`--arg`).
    pub args: Vec<String>,
    /// Inbound connections (already bound so the caller knows the port).
    pub listener: Option<std::net::TcpListener>,
    /// Outbound endpoints by name (`--connect NAME=HOST:PORT`).
    pub endpoints: Vec<(String, SocketAddr)>,
    /// Most connections open at once.
    pub max_conns: usize,
}

/// Where the time of VM creation went.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CreateTimings {
    /// Open /dev/kvm, create the VM, map memory, add the slot.
    pub vm_create_us: u64,
    /// Load the ELF, write page tables, TSS, boot info.
    pub load_us: u64,
    /// Create and set up the vCPU.
    pub vcpu_us: u64,
}

/// A created VM, ready to run.
pub struct Vm {
    _kvm: Kvm,
    _vm: VmFd,
    vcpu: VcpuFd,
    mem: Arc<GuestMemory>,
    shared: Arc<VmShared>,
    rings: HostRings,
    notifier: Arc<Notifier>,
    sync_regs: bool,
    tsc_khz: Option<u32>,
    net: NetConfig,
    /// Timings of creation.
    pub timings: CreateTimings,
}

fn kvm_err(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { op, source }
}

impl Vm {
    /// Creates the VM and loads the guest; nothing runs yet.
    pub fn create(cfg: VmConfig) -> Result<Vm, VmmError> {
        if cfg.mem_mib < MIN_MEM_MIB || cfg.mem_mib % 2 != 0 {
            return Err(VmmError::Config(format!(
                "--mem-mib {} must be an even number of at least {MIN_MEM_MIB}",
                cfg.mem_mib
            )));
        }
        let mem_size = u64::from(cfg.mem_mib) << 20;
        if mem_size > MAX_MEM {
            return Err(VmmError::Config(format!(
                "--mem-mib {} exceeds the {} MiB the layout supports",
                cfg.mem_mib,
                MAX_MEM >> 20
            )));
        }
        let t0 = Instant::now();
        let kvm = Kvm::new().map_err(VmmError::NoKvm)?;
        let vm = kvm.create_vm().map_err(kvm_err("create VM"))?;
        let _ = vm.set_tss_address(0xfffb_d000);
        let mem = Arc::new(GuestMemory::new(mem_size)?);
        let region = kvm_userspace_memory_region {
            slot: 0,
            guest_phys_addr: 0,
            memory_size: mem_size,
            userspace_addr: mem.host_base(),
            flags: 0,
        };
        // SAFETY: the region describes `mem`'s live mapping, which the `Vm`
        // keeps alive (Arc) for as long as the VM fd exists.
        unsafe { vm.set_user_memory_region(region) }.map_err(kvm_err("set memory region"))?;
        let t1 = Instant::now();

        let heap_end = arch::stack_guard(mem_size);
        let image = elf::load(&cfg.elf, &mem, heap_end)?;
        arch::write_page_tables(&mem)?;
        arch::write_tss(&mem)?;
        let rings = HostRings::new(ring::DEFAULT_ENTRIES).ok_or_else(|| VmmError::Config("bad ring size".into()))?;
        let mut boot = BootInfo::new();
        boot.mem_size = mem_size;
        boot.heap_start = image.end;
        boot.heap_end = heap_end;
        boot.stack_top = mem_size;
        boot.free_bitmap = L::FREE_BITMAP;
        boot.free_bitmap_pages = mem_size / PAGE_SIZE;
        boot.clock = L::CLOCK;
        boot.ring_header = L::RING_HEADER;
        boot.sq = L::SQ;
        boot.cq = L::CQ;
        boot.ring_entries = rings.entries();
        boot.has_listener = u32::from(cfg.listener.is_some());
        for a in &cfg.args {
            if !boot.push_arg(a.as_bytes()) {
                return Err(VmmError::Config(format!(
                    "argument {a:?} does not fit: the arguments share {} bytes and may not contain NUL",
                    guest_abi::ARGS_MAX
                )));
            }
        }
        for (name, _) in &cfg.endpoints {
            if !boot.push_endpoint(name.as_bytes()) {
                return Err(VmmError::Config(format!(
                    "endpoint name {name:?}: at most {} endpoints of 1-{} bytes each",
                    guest_abi::MAX_ENDPOINTS,
                    guest_abi::MAX_ENDPOINT_NAME
                )));
            }
        }
        let mut page = [0u8; 4096];
        boot.encode(&mut page);
        mem.write(GuestAddr(L::BOOT_INFO), &page)?;
        rings.reset(&mem).map_err(VmmError::Config)?;
        let t2 = Instant::now();

        let vcpu = vm.create_vcpu(0).map_err(kvm_err("create vCPU"))?;
        let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(kvm_err("get supported CPUID"))?;
        vcpu.set_cpuid2(&cpuid).map_err(kvm_err("set CPUID"))?;
        let sregs = vcpu.get_sregs().map_err(kvm_err("get sregs"))?;
        vcpu.set_sregs(&arch::long_mode_sregs(sregs)).map_err(kvm_err("set sregs"))?;
        let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
        vcpu.set_fpu(&fpu).map_err(kvm_err("set FPU"))?;
        vcpu.set_regs(&arch::entry_regs(image.entry, mem_size)).map_err(kvm_err("set regs"))?;
        let notifier = Arc::new(Notifier::new().map_err(|source| VmmError::Io { what: "eventfd".into(), source })?);
        // The guest's TSC starts equal to the host's, so the clock page's TSC
        // readings (taken on the host) mean the same to the guest.
        let tsc = Msrs::from_entries(&[kvm_msr_entry {
            index: MSR_IA32_TSC,
            data: crate::clock::rdtsc(),
            ..Default::default()
        }])
        .map_err(|e| VmmError::Config(format!("MSR list: {e:?}")))?;
        let _ = vcpu.set_msrs(&tsc);
        let tsc_khz = vcpu.get_tsc_khz().ok().filter(|k| *k > 0);
        let t3 = Instant::now();

        let sync_regs = kvm.check_extension(Cap::SyncRegs);
        let us = |d: Duration| d.as_micros() as u64;
        Ok(Vm {
            _kvm: kvm,
            _vm: vm,
            vcpu,
            mem,
            shared: Arc::new(VmShared::new()),
            rings,
            notifier,
            sync_regs,
            tsc_khz,
            net: NetConfig {
                listener: cfg.listener,
                endpoints: cfg.endpoints.into_iter().map(|(_, a)| a).collect(),
                max_conns: cfg.max_conns,
            },
            timings: CreateTimings { vm_create_us: us(t1 - t0), load_us: us(t2 - t1), vcpu_us: us(t3 - t2) },
        })
    }

    /// The guest's memory (for status reports and, later, snapshots).
    pub fn memory(&self) -> Arc<GuestMemory> {
        Arc::clone(&self.mem)
    }

    /// The VM's shared state: stop it, read its counters.
    pub fn shared(&self) -> Arc<VmShared> {
        Arc::clone(&self.shared)
    }

    /// Runs the VM until it ends, and says how.
    pub fn run(self) -> VmExit {
        kick::install_handler();
        let Vm { vcpu, mem, shared, rings, notifier, net: netcfg, sync_regs, tsc_khz, .. } = self;
        shared.set_waker(Arc::clone(&notifier));
        let (kicker_tx, kicker_rx) = std::sync::mpsc::channel::<ThreadKicker>();
        let done = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(ClockPage::new(tsc_khz));
        clock.update(&mem);
        let vcpu_thread = {
            let mem = Arc::clone(&mem);
            let shared = Arc::clone(&shared);
            let done = Arc::clone(&done);
            let clock = Arc::clone(&clock);
            std::thread::Builder::new().name("vcpu0".into()).spawn(move || {
                shared.set_kicker(ThreadKicker::current());
                let _ = kicker_tx.send(ThreadKicker::current());
                match IoDriver::new(Arc::clone(&mem), Arc::clone(&shared), rings, netcfg, notifier) {
                    Ok(io) => run_vcpu(vcpu, VcpuCtx { mem, shared, rings, io, clock, sync_regs }),
                    Err(why) => shared.finish(why),
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let vcpu_thread = match vcpu_thread {
            Ok(t) => t,
            Err(e) => return VmExit::HostError(format!("cannot start the vCPU thread: {e}")),
        };
        let kicker = kicker_rx.recv().ok();
        // Wait for the end, whoever causes it; kick the vCPU out of KVM_RUN
        // until it has left its loop (a kick just before KVM_RUN is lost).
        shared.wait_finished();
        while !done.load(Ordering::SeqCst) {
            if let Some(k) = kicker {
                k.kick();
            }
            shared.ring();
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = vcpu_thread.join();
        shared.take_exit().unwrap_or(VmExit::Stopped)
    }
}
