//! Creating a VM (KVM VM, memory slot, loaded guest or restored snapshot,
//! vCPU in its entry state) and running it to its end on one vCPU thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guest_abi::{layout as L, ring, BootInfo, PAGE_SIZE};
use kvm_bindings::{
    kvm_fpu, kvm_msr_entry, kvm_regs, kvm_sregs, kvm_userspace_memory_region, Msrs, KVM_MAX_CPUID_ENTRIES,
};
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
use crate::snapshot::{Image, NetState, SnapshotError};
use crate::vcpu::{run_vcpu, SnapshotPlan, VcpuCtx};

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
    /// Take a snapshot into this directory when the guest reports Ready, then end.
    pub snapshot: Option<PathBuf>,
    /// The app's name, recorded in snapshots.
    pub app: String,
}

/// How a restored VM gets its memory (see docs/architecture.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Boot the image's ELF and run the app's initialization again.
    Cold,
    /// Read the whole memory image, then run.
    Resume,
    /// Start with empty memory; each page is fetched on its first touch.
    Lazy,
    /// Guest memory is a private mapping of memory.bin (Firecracker's default).
    Mmap,
    /// Working set first, then demand prediction, free-page avoidance and a
    /// background fetch of the rest.
    Twinkle,
}

impl Strategy {
    /// Parses a strategy name; the error lists what exists.
    pub fn parse(s: &str) -> Result<Strategy, String> {
        match s {
            "cold" => Ok(Strategy::Cold),
            "resume" => Ok(Strategy::Resume),
            "lazy" => Ok(Strategy::Lazy),
            "mmap" => Ok(Strategy::Mmap),
            "twinkle" => Ok(Strategy::Twinkle),
            other => Err(format!("unknown strategy {other:?}; strategies: cold, resume, lazy, mmap, twinkle")),
        }
    }

    /// The strategy's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Cold => "cold",
            Strategy::Resume => "resume",
            Strategy::Lazy => "lazy",
            Strategy::Mmap => "mmap",
            Strategy::Twinkle => "twinkle",
        }
    }
}

/// Whether a restored VM's memory comes from the host's pool of 2 MiB huge
/// pages (hugetlbfs) instead of ordinary anonymous memory.
///
/// On PVM every 4 KiB host page the guest touches first costs a shadow fault
/// (~7 us), whereas a 2 MiB one costs about as much for 512 times the memory
/// (platform notes). Pages served through userfaultfd into ordinary memory are
/// 4 KiB pages, so a lazily restored VM runs slower than a resident one until
/// every page has been touched once; from the pool it runs at resident speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HugePages {
    /// `twinkle` uses the pool when it has room for the guest; the other
    /// strategies (the baselines) do not.
    #[default]
    Auto,
    /// Use the pool; an error when it is too small (`lazy` then serves 2 MiB
    /// per fault).
    On,
    /// Ordinary memory.
    Off,
}

impl HugePages {
    /// Parses `auto`, `on` or `off`.
    pub fn parse(s: &str) -> Result<HugePages, String> {
        match s {
            "auto" => Ok(HugePages::Auto),
            "on" => Ok(HugePages::On),
            "off" => Ok(HugePages::Off),
            other => Err(format!("unknown huge-page setting {other:?}; use auto, on or off")),
        }
    }

    /// Whether a restore with `strategy` of `mem_size` bytes takes its memory
    /// from the pool.
    fn wanted(self, strategy: Strategy, mem_size: u64) -> Result<bool, VmmError> {
        match (self, strategy) {
            (HugePages::Off, _) => Ok(false),
            (HugePages::On, Strategy::Mmap | Strategy::Cold) => Err(VmmError::Config(format!(
                "--huge-pages on does not apply to the {} strategy (use resume, lazy or twinkle)",
                strategy.name()
            ))),
            (HugePages::On, _) => Ok(true),
            (HugePages::Auto, Strategy::Twinkle) => {
                let pool = crate::memory::HugePool::read();
                let fits = pool.available() >= mem_size / guest_abi::HUGE_PAGE_SIZE;
                if !fits {
                    tracing::info!(
                        available = pool.available(),
                        needed = mem_size / guest_abi::HUGE_PAGE_SIZE,
                        "the huge-page pool is too small for this guest: ordinary memory, slower first touches \
                         (see `twinkle host prepare`)"
                    );
                }
                Ok(fits)
            }
            (HugePages::Auto, _) => Ok(false),
        }
    }
}

/// What to restore and with which host resources.
#[derive(Debug)]
pub struct RestoreConfig {
    /// The image: a directory or `http://HOST:PORT/PATH`.
    pub image: String,
    /// How memory is brought in.
    pub strategy: Strategy,
    /// Inbound connections.
    pub listener: Option<std::net::TcpListener>,
    /// Outbound endpoints; their names must be the image's.
    pub endpoints: Vec<(String, SocketAddr)>,
    /// Most connections open at once.
    pub max_conns: usize,
    /// Refuse an image of another app.
    pub expect_app: Option<String>,
    /// For `lazy` and `twinkle`: the techniques to use (default: the strategy's).
    pub techniques: Option<crate::pager::Techniques>,
    /// Record pages in first-touch order (working-set tracking).
    pub record: bool,
    /// Whether guest memory comes from the huge-page pool.
    pub huge_pages: HugePages,
}

/// Where the time of VM creation went.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CreateTimings {
    /// Open /dev/kvm, create the VM, map memory, add the slot.
    pub vm_create_us: u64,
    /// Load the ELF and write the boot structures, or load the snapshot's memory.
    pub load_us: u64,
    /// Create and set up the vCPU.
    pub vcpu_us: u64,
    /// Bytes of image read (restores).
    pub bytes_loaded: u64,
    /// Guest memory came from the host's huge-page pool.
    pub huge_pages: bool,
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
    snapshot: Option<SnapshotPlan>,
    restored_net: Option<NetState>,
    mono_from: u64,
    pager: Option<Arc<crate::pager::PagerStats>>,
    /// Timings of creation.
    pub timings: CreateTimings,
}

fn kvm_err(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { op, source }
}

fn check_mem(mem_mib: u32) -> Result<u64, VmmError> {
    if mem_mib < MIN_MEM_MIB || mem_mib % 2 != 0 {
        return Err(VmmError::Config(format!("--mem-mib {mem_mib} must be an even number of at least {MIN_MEM_MIB}")));
    }
    let mem_size = u64::from(mem_mib) << 20;
    if mem_size > MAX_MEM {
        return Err(VmmError::Config(format!(
            "--mem-mib {mem_mib} exceeds the {} MiB the layout supports",
            MAX_MEM >> 20
        )));
    }
    Ok(mem_size)
}

/// A KVM VM with one memory slot of `mem_size` bytes, anonymous or a
/// private mapping of `file`.
fn new_vm(
    mem_size: u64,
    file: Option<&std::fs::File>,
    hugetlb: bool,
) -> Result<(Kvm, VmFd, Arc<GuestMemory>), VmmError> {
    let kvm = Kvm::new().map_err(VmmError::NoKvm)?;
    let vm = kvm.create_vm().map_err(kvm_err("create VM"))?;
    let _ = vm.set_tss_address(0xfffb_d000);
    let mem = Arc::new(match file {
        Some(f) => GuestMemory::map_file(f, mem_size)?,
        None if hugetlb => GuestMemory::new_hugetlb(mem_size)?,
        None => GuestMemory::new(mem_size)?,
    });
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
    Ok((kvm, vm, mem))
}

/// The vCPU, in the given register state.
fn new_vcpu(
    kvm: &Kvm,
    vm: &VmFd,
    sregs: Option<kvm_sregs>,
    regs: &kvm_regs,
    fpu: &kvm_fpu,
) -> Result<(VcpuFd, Option<u32>), VmmError> {
    let vcpu = vm.create_vcpu(0).map_err(kvm_err("create vCPU"))?;
    let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(kvm_err("get supported CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(kvm_err("set CPUID"))?;
    let sregs = match sregs {
        Some(s) => s,
        None => arch::long_mode_sregs(vcpu.get_sregs().map_err(kvm_err("get sregs"))?),
    };
    vcpu.set_sregs(&sregs).map_err(kvm_err("set sregs"))?;
    vcpu.set_fpu(fpu).map_err(kvm_err("set FPU"))?;
    vcpu.set_regs(regs).map_err(kvm_err("set regs"))?;
    // The guest's TSC starts equal to the host's, so the clock page's TSC
    // readings (taken on the host) mean the same to the guest.
    let tsc =
        Msrs::from_entries(&[kvm_msr_entry { index: MSR_IA32_TSC, data: crate::clock::rdtsc(), ..Default::default() }])
            .map_err(|e| VmmError::Config(format!("MSR list: {e:?}")))?;
    let _ = vcpu.set_msrs(&tsc);
    let tsc_khz = vcpu.get_tsc_khz().ok().filter(|k| *k > 0);
    Ok((vcpu, tsc_khz))
}

/// What a restore carries over besides memory and registers.
struct Restored {
    net: NetState,
    mono_from: u64,
    pager: Option<Arc<crate::pager::PagerStats>>,
}

/// The pieces a [`Vm`] is assembled from.
struct Parts {
    kvm: Kvm,
    vm: VmFd,
    vcpu: VcpuFd,
    mem: Arc<GuestMemory>,
    rings: HostRings,
    tsc_khz: Option<u32>,
    net: NetConfig,
    snapshot: Option<SnapshotPlan>,
    restored: Option<Restored>,
    timings: CreateTimings,
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

impl Vm {
    /// Creates the VM and loads the guest; nothing runs yet.
    pub fn create(cfg: VmConfig) -> Result<Vm, VmmError> {
        let mem_size = check_mem(cfg.mem_mib)?;
        let t0 = Instant::now();
        let (kvm, vm, mem) = new_vm(mem_size, None, false)?;
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
        // An image's guest serves: its listener is attached when it is restored.
        boot.has_listener = u32::from(cfg.listener.is_some() || cfg.snapshot.is_some());
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

        let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
        let (vcpu, tsc_khz) = new_vcpu(&kvm, &vm, None, &arch::entry_regs(image.entry, mem_size), &fpu)?;
        let t3 = Instant::now();

        let snapshot = cfg.snapshot.map(|dir| SnapshotPlan {
            dir,
            app: cfg.app.clone(),
            args: cfg.args.clone(),
            endpoints: cfg.endpoints.iter().map(|(n, _)| n.clone()).collect(),
            elf: cfg.elf.clone(),
        });
        let net = NetConfig {
            listener: cfg.listener,
            endpoints: cfg.endpoints.into_iter().map(|(_, a)| a).collect(),
            max_conns: cfg.max_conns,
        };
        let timings = CreateTimings {
            vm_create_us: us(t1 - t0),
            load_us: us(t2 - t1),
            vcpu_us: us(t3 - t2),
            bytes_loaded: 0,
            huge_pages: false,
        };
        Vm::assemble(Parts { kvm, vm, vcpu, mem, rings, tsc_khz, net, snapshot, restored: None, timings })
    }

    /// Creates a VM from an image directory with the given strategy.
    pub fn restore(cfg: RestoreConfig) -> Result<Vm, VmmError> {
        let snap = |e: SnapshotError| VmmError::Snapshot(e);
        let image = Image::open(&cfg.image).map_err(snap)?;
        let state_file = image.store.name(crate::snapshot::STATE_FILE);
        if let Some(want) = &cfg.expect_app {
            if *want != image.meta.app {
                return Err(snap(SnapshotError::WrongApp {
                    file: state_file,
                    found: image.meta.app.clone(),
                    expected: want.clone(),
                }));
            }
        }
        // Endpoints: the same names as at the snapshot, in the guest's order.
        let mut endpoints = Vec::new();
        for name in &image.meta.endpoints {
            match cfg.endpoints.iter().find(|(n, _)| n == name) {
                Some(e) => endpoints.push(e.clone()),
                None => {
                    return Err(snap(SnapshotError::Mismatch {
                        file: state_file,
                        problem: format!("the guest expects endpoint {name:?}; give --connect {name}=HOST:PORT"),
                    }))
                }
            }
        }
        if let Some((extra, _)) = cfg.endpoints.iter().find(|(n, _)| !image.meta.endpoints.contains(n)) {
            return Err(snap(SnapshotError::Mismatch {
                file: state_file,
                problem: format!(
                    "endpoint {extra:?} is not one the guest knows (it knows: {})",
                    image.meta.endpoints.join(", ")
                ),
            }));
        }
        let mem_mib = u32::try_from(image.meta.mem_size >> 20).unwrap_or(u32::MAX);
        if cfg.strategy == Strategy::Cold {
            return Vm::create(VmConfig {
                mem_mib,
                elf: image.elf,
                args: image.meta.args,
                listener: cfg.listener,
                endpoints,
                max_conns: cfg.max_conns,
                snapshot: None,
                app: image.meta.app,
            });
        }
        let mem_size = check_mem(mem_mib)?;
        let rings = HostRings::new(image.meta.ring_entries).ok_or_else(|| {
            snap(SnapshotError::Corrupt {
                file: state_file.clone(),
                section: "meta".into(),
                problem: format!(
                    "ring size {} is not a power of two up to {}",
                    image.meta.ring_entries,
                    ring::MAX_ENTRIES
                ),
            })
        })?;
        let t0 = Instant::now();
        let mem_file = match cfg.strategy {
            Strategy::Mmap => {
                let Some(dir) = image.store.local_dir() else {
                    return Err(VmmError::Config(format!(
                        "the mmap strategy maps a local file; {} is remote (use lazy or twinkle)",
                        cfg.image
                    )));
                };
                let path = dir.join(crate::snapshot::MEMORY_FILE);
                Some(
                    std::fs::File::open(&path)
                        .map_err(|source| VmmError::Io { what: format!("cannot open {}", path.display()), source })?,
                )
            }
            _ => None,
        };
        let hugetlb = cfg.huge_pages.wanted(cfg.strategy, mem_size)?;
        let (kvm, vm, mem) = new_vm(mem_size, mem_file.as_ref(), hugetlb)?;
        let t1 = Instant::now();
        let mut pager = None;
        let bytes_loaded = match cfg.strategy {
            Strategy::Lazy | Strategy::Twinkle => {
                let tech = cfg.techniques.unwrap_or(if cfg.strategy == Strategy::Lazy {
                    crate::pager::Techniques::lazy()
                } else {
                    crate::pager::Techniques::twinkle()
                });
                if tech.working_set && image.working_set.is_empty() {
                    tracing::warn!(
                        "{} has no working set: run `twinkle image track --image {}` first",
                        cfg.image,
                        cfg.image
                    );
                }
                let stats = Arc::new(crate::pager::PagerStats::default());
                if cfg.record {
                    stats.record();
                }
                crate::pager::start(&mem, &image, Arc::clone(&stats), tech)?;
                pager = Some(stats);
                0
            }
            // The kernel reads pages from the file as the guest touches them.
            Strategy::Mmap => 0,
            _ => image.load_all(&mem).map_err(snap)?,
        };
        let t2 = Instant::now();
        let fpu: kvm_fpu = (&image.vcpu.fpu).into();
        let (vcpu, tsc_khz) = new_vcpu(&kvm, &vm, Some(image.vcpu.sregs), &image.vcpu.regs, &fpu)?;
        let t3 = Instant::now();
        let net = NetConfig {
            listener: cfg.listener,
            endpoints: endpoints.into_iter().map(|(_, a)| a).collect(),
            max_conns: cfg.max_conns,
        };
        let restored = Some(Restored { net: image.net, mono_from: image.meta.mono_ns, pager });
        let timings = CreateTimings {
            vm_create_us: us(t1 - t0),
            load_us: us(t2 - t1),
            vcpu_us: us(t3 - t2),
            bytes_loaded,
            huge_pages: hugetlb,
        };
        Vm::assemble(Parts { kvm, vm, vcpu, mem, rings, tsc_khz, net, snapshot: None, restored, timings })
    }

    fn assemble(p: Parts) -> Result<Vm, VmmError> {
        let notifier = Arc::new(Notifier::new().map_err(|source| VmmError::Io { what: "eventfd".into(), source })?);
        let (restored_net, mono_from, pager) = match p.restored {
            Some(r) => (Some(r.net), r.mono_from, r.pager),
            None => (None, 0, None),
        };
        Ok(Vm {
            sync_regs: p.kvm.check_extension(Cap::SyncRegs),
            _kvm: p.kvm,
            _vm: p.vm,
            vcpu: p.vcpu,
            mem: p.mem,
            shared: Arc::new(VmShared::new()),
            rings: p.rings,
            notifier,
            tsc_khz: p.tsc_khz,
            net: p.net,
            snapshot: p.snapshot,
            restored_net,
            mono_from,
            pager,
            timings: p.timings,
        })
    }

    /// The guest's memory (for status reports and snapshots).
    pub fn memory(&self) -> Arc<GuestMemory> {
        Arc::clone(&self.mem)
    }

    /// Page-server counters of a restored VM.
    pub fn pager_stats(&self) -> Option<Arc<crate::pager::PagerStats>> {
        self.pager.clone()
    }

    /// The VM's shared state: stop it, read its counters.
    pub fn shared(&self) -> Arc<VmShared> {
        Arc::clone(&self.shared)
    }

    /// Runs the VM until it ends, and says how.
    pub fn run(self) -> VmExit {
        kick::install_handler();
        let Vm {
            vcpu,
            mem,
            shared,
            rings,
            notifier,
            net: netcfg,
            sync_regs,
            tsc_khz,
            snapshot,
            restored_net,
            mono_from,
            pager,
            ..
        } = self;
        shared.set_waker(Arc::clone(&notifier));
        let (kicker_tx, kicker_rx) = std::sync::mpsc::channel::<ThreadKicker>();
        let done = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(ClockPage::new(tsc_khz).continuing_from(mono_from));
        clock.update(&mem);
        let vcpu_thread = {
            let mem = Arc::clone(&mem);
            let shared = Arc::clone(&shared);
            let done = Arc::clone(&done);
            let clock = Arc::clone(&clock);
            std::thread::Builder::new().name("vcpu0".into()).spawn(move || {
                shared.set_kicker(ThreadKicker::current());
                let _ = kicker_tx.send(ThreadKicker::current());
                match IoDriver::new(Arc::clone(&mem), Arc::clone(&shared), rings, netcfg, notifier, restored_net) {
                    Ok(io) => run_vcpu(vcpu, VcpuCtx { mem, shared, rings, io, clock, sync_regs, snapshot }),
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
        if let Some(p) = &pager {
            p.stop.store(true, Ordering::SeqCst);
        }
        shared.take_exit().unwrap_or(VmExit::Stopped)
    }
}
