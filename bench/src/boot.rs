//! `twinkle bench boot`: how fast a VM boots cold to its first HTTP response,
//! where the time goes, and how fast one VM serves HTTP next to the same app
//! run natively on the host.
//!
//! Cold boot is measured as a provisioner sees it: from spawning the
//! `twinkle vm run --app hello` process to the first `200` on `/health`,
//! polled every 100 us. The VM reports its own creation breakdown (KVM VM +
//! memory, ELF load + page tables, vCPU setup) on its `created` line.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::httpload::{self, LoadResult};
use crate::process::{start_vm, wait_first_response, ChildGuard};
use crate::stats::Summary;
use crate::BenchError;

/// Settings of the boot benchmark.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// The twinkle binary to start VMs with.
    pub twinkle: PathBuf,
    /// Measured boots (after 3 warm-up boots).
    pub runs: usize,
    /// Guest memory per VM.
    pub mem_mib: u32,
    /// Seconds of HTTP load per target.
    pub http_secs: u32,
    /// Concurrent connections of the HTTP load.
    pub connections: u32,
    /// The native build of hello, if available.
    pub native_hello: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// HTTP throughput of the VM and of the native app, same client, same run.
#[derive(Clone, Debug, Serialize)]
pub struct HttpComparison {
    /// Connections used.
    pub connections: u32,
    /// Seconds per target.
    pub duration_s: u32,
    /// hello in a VM.
    pub vm: LoadResult,
    /// hello as a native host process.
    pub native: Option<LoadResult>,
    /// vm.rps / native.rps.
    pub vm_over_native: Option<f64>,
}

/// Goals from the issue, and whether this run met them.
#[derive(Clone, Debug, Serialize)]
pub struct Goals {
    /// Target for the median cold boot, ms.
    pub cold_boot_p50_ms_max: f64,
    /// Whether the median cold boot met it.
    pub cold_boot_met: bool,
    /// Target for VM req/s over native req/s.
    pub vm_over_native_min: f64,
    /// Whether the ratio met it (`None` without a native run).
    pub throughput_met: Option<bool>,
}

/// The benchmark's result (printed as JSON).
#[derive(Clone, Debug, Serialize)]
pub struct BootReport {
    /// Always "boot".
    pub bench: &'static str,
    /// Measured boots.
    pub runs: usize,
    /// Guest memory per VM.
    pub mem_mib: u32,
    /// Spawn of the VM process to the first HTTP 200.
    pub cold_boot_to_first_response_ms: Summary,
    /// Spawn to the `listening` line (process start, argument parsing, bind).
    pub process_to_listening_ms: Summary,
    /// KVM VM creation, guest memory mapping, memory slot.
    pub vm_create_ms: Summary,
    /// ELF load, page tables, TSS, boot info.
    pub elf_load_ms: Summary,
    /// vCPU creation and register setup.
    pub vcpu_setup_ms: Summary,
    /// HTTP throughput, VM vs native.
    pub http: HttpComparison,
    /// Goals and whether they were met.
    pub goals: Goals,
}

#[derive(serde::Deserialize)]
struct Created {
    vm_create_us: u64,
    load_us: u64,
    vcpu_us: u64,
}

struct OneBoot {
    total_ms: f64,
    listening_ms: f64,
    created: Created,
}

fn one_boot(o: &BootOptions) -> Result<OneBoot, BenchError> {
    let t0 = Instant::now();
    let (mut vm, addr) = start_vm(&o.twinkle, "hello", o.mem_mib, &[])?;
    let listening_ms = t0.elapsed().as_secs_f64() * 1e3;
    let created_line = vm.read_line()?;
    let created: Created = created_line
        .strip_prefix("created ")
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| BenchError::Process(format!("expected `created {{...}}` from the VM, got {created_line:?}")))?;
    let done = wait_first_response(addr, Duration::from_secs(10))?;
    let total_ms = done.duration_since(t0).as_secs_f64() * 1e3;
    drop(vm);
    Ok(OneBoot { total_ms, listening_ms, created })
}

fn bar(o: &BootOptions, len: u64, what: &str) -> ProgressBar {
    if !o.progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Runs the benchmark.
pub fn run(o: &BootOptions) -> Result<BootReport, BenchError> {
    let pb = bar(o, (o.runs + 3) as u64, "cold boots");
    let mut boots = Vec::with_capacity(o.runs);
    for i in 0..o.runs + 3 {
        let b = one_boot(o)?;
        if i >= 3 {
            boots.push(b);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let ms = |f: &dyn Fn(&OneBoot) -> f64| Summary::of(&boots.iter().map(f).collect::<Vec<_>>());

    let pb = bar(o, 2, "HTTP load");
    let (vm_child, vm_addr) = start_vm(&o.twinkle, "hello", o.mem_mib, &[])?;
    wait_first_response(vm_addr, Duration::from_secs(10))?;
    let vm_load = httpload::run(vm_addr, "/", o.connections, o.http_secs)?;
    drop(vm_child);
    pb.inc(1);
    let native = match &o.native_hello {
        Some(path) => Some(native_load(path, o)?),
        None => None,
    };
    pb.inc(1);
    pb.finish_and_clear();
    let ratio = native.as_ref().map(|n| if n.rps > 0.0 { vm_load.rps / n.rps } else { 0.0 });

    let cold = ms(&|b| b.total_ms);
    Ok(BootReport {
        bench: "boot",
        runs: o.runs,
        mem_mib: o.mem_mib,
        cold_boot_to_first_response_ms: cold,
        process_to_listening_ms: ms(&|b| b.listening_ms),
        vm_create_ms: ms(&|b| b.created.vm_create_us as f64 / 1e3),
        elf_load_ms: ms(&|b| b.created.load_us as f64 / 1e3),
        vcpu_setup_ms: ms(&|b| b.created.vcpu_us as f64 / 1e3),
        http: HttpComparison {
            connections: o.connections,
            duration_s: o.http_secs,
            vm: vm_load,
            native,
            vm_over_native: ratio,
        },
        goals: Goals {
            cold_boot_p50_ms_max: 20.0,
            cold_boot_met: cold.p50 <= 20.0,
            vm_over_native_min: 0.5,
            throughput_met: ratio.map(|r| r >= 0.5),
        },
    })
}

fn native_load(path: &std::path::Path, o: &BootOptions) -> Result<LoadResult, BenchError> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|source| BenchError::Io { what: "pick a port".into(), source })?;
        l.local_addr().map_err(|source| BenchError::Io { what: "pick a port".into(), source })?.port()
    };
    let child = Command::new(path)
        .env("TWINKLE_NATIVE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchError::Io { what: format!("cannot start native hello {}", path.display()), source })?;
    let guard = ChildGuard { child, stdout: None };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_first_response(addr, Duration::from_secs(10))?;
    let r = httpload::run(addr, "/", o.connections, o.http_secs)?;
    drop(guard);
    Ok(r)
}
