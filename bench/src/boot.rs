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
    /// HTTP rounds per target (alternating; medians are reported).
    pub rounds: u32,
    /// The native build of hello (an executable image), if available.
    pub native_hello: Option<&'static [u8]>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// HTTP throughput of the VM and of the native app, same client, same run.
#[derive(Clone, Debug, Serialize)]
pub struct HttpComparison {
    /// Connections used.
    pub connections: u32,
    /// Seconds per round.
    pub duration_s: u32,
    /// Rounds per target; the median round is reported.
    pub rounds: u32,
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

    // Both servers run side by side; rounds alternate between them and the
    // medians are compared, so a noisy neighbour hurts both alike.
    let pb = bar(o, u64::from(o.rounds) * 2, "HTTP load");
    let (vm_child, vm_addr) = start_vm(&o.twinkle, "hello", o.mem_mib, &[])?;
    wait_first_response(vm_addr, Duration::from_secs(10))?;
    let native_server = match o.native_hello {
        Some(image) => Some(NativeServer::start(image)?),
        None => None,
    };
    let mut vm_runs = Vec::new();
    let mut native_runs = Vec::new();
    for _ in 0..o.rounds.max(1) {
        vm_runs.push(httpload::run(vm_addr, "/", o.connections, o.http_secs)?);
        pb.inc(1);
        if let Some(n) = &native_server {
            native_runs.push(httpload::run(n.addr, "/", o.connections, o.http_secs)?);
        }
        pb.inc(1);
    }
    drop(vm_child);
    drop(native_server);
    pb.finish_and_clear();
    let vm_load = median_run(vm_runs);
    let native = (!native_runs.is_empty()).then(|| median_run(native_runs));
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
            rounds: o.rounds.max(1),
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

/// The run with the median throughput.
fn median_run(mut runs: Vec<LoadResult>) -> LoadResult {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// The native build of hello, running from a private temporary file.
struct NativeServer {
    _child: ChildGuard,
    dir: PathBuf,
    addr: std::net::SocketAddr,
}

impl NativeServer {
    fn start(image: &[u8]) -> Result<NativeServer, BenchError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |what: String| move |source| BenchError::Io { what, source };
        let dir = std::env::temp_dir().join(format!("twinkle-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let path = dir.join("hello-native");
        std::fs::write(&path, image).map_err(io(format!("write {}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", path.display())))?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("pick a port".into()))?;
            l.local_addr().map_err(io("pick a port".into()))?.port()
        };
        let child = Command::new(&path)
            .env("TWINKLE_NATIVE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(format!("cannot start native hello {}", path.display())))?;
        let server =
            NativeServer { _child: ChildGuard { child, stdout: None }, dir, addr: ([127, 0, 0, 1], port).into() };
        wait_first_response(server.addr, Duration::from_secs(10))?;
        Ok(server)
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
