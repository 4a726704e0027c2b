//! `twinkle bench app`: a guest application with its storage tier, measured
//! the way a user meets it. A redis-server of its own; per round the data
//! set is loaded afresh (the runs write: bids, purchases, registrations),
//! then the app is cold-booted in a VM (init = process start to the first
//! `/health` 200: boot, connect, read every chunk, build the indexes) and
//! loaded with the app's session mix by the load generator; then the same
//! app built natively on the host gets the same data and the same load.
//! Rounds alternate VM and native and the medians are compared.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::process::{start_listening, start_vm, wait_first_response, ChildGuard};
use crate::stats::Summary;
use crate::BenchError;

/// What to run.
pub struct AppBenchOptions {
    /// The twinkle binary (to start VMs).
    pub twinkle: PathBuf,
    /// The app: rubis.
    pub app: String,
    /// Its native build.
    pub native: Option<&'static [u8]>,
    /// Data scale.
    pub scale: f64,
    /// Guest memory.
    pub mem_mib: u32,
    /// Emulated users (closed loop, no think time).
    pub users: usize,
    /// Seconds of load per round.
    pub secs: u64,
    /// Rounds (each: reload, VM, reload, native).
    pub rounds: u32,
    /// Start-up rounds (image once, then each way of starting per round; 0: none).
    pub startup_rounds: u32,
    /// Show progress bars.
    pub progress: bool,
}

/// How fast one way of starting an instance answers.
#[derive(Clone, Debug, Serialize)]
pub struct StartupRow {
    /// cold (boot + load from Redis), resume, lazy, twinkle.
    pub start: String,
    /// Process start to the first 200 of a dynamic page, per round.
    pub first_response_ms: Vec<f64>,
    /// The next requests, one after another, per round.
    pub next_requests_ms: Vec<f64>,
}

/// The image and how instances started from it compare with a cold boot.
#[derive(Clone, Debug, Serialize)]
pub struct StartupReport {
    /// Memory stored in the image.
    pub image_mib: f64,
    /// The app's init while the image was built.
    pub image_init_ms: f64,
    /// Pages in the tracked working set.
    pub working_set_pages: u64,
    /// Requests after the first, per round.
    pub next_requests: usize,
    /// Per way of starting.
    pub rows: Vec<StartupRow>,
}

/// One load run.
#[derive(Clone, Debug, Serialize)]
pub struct AppRun {
    /// Requests completed per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Errors (connect, timeout, reset, 4xx, 5xx) other than requests in
    /// flight when the run ended.
    pub errors: u64,
}

/// Memory of one instance after its init.
#[derive(Clone, Debug, Serialize)]
pub struct Footprint {
    /// Guest heap in use (VM only: the guest allocator's pages).
    pub heap_mib: Option<f64>,
    /// Resident memory of the process (VM: VMM plus touched guest memory).
    pub rss_mib: f64,
}

/// The result.
#[derive(Clone, Debug, Serialize)]
pub struct AppBenchReport {
    /// "app".
    pub bench: &'static str,
    /// The app.
    pub app: String,
    /// Data scale.
    pub scale: f64,
    /// Bytes of records in Redis.
    pub data_bytes: u64,
    /// Seconds to generate and store the data set (median).
    pub load_s: f64,
    /// Cold boot in a VM to the first /health 200, including the load from Redis.
    pub vm_init_ms: Summary,
    /// The native process's start to its first /health 200.
    pub native_init_ms: Option<Summary>,
    /// Memory after init, VM.
    pub vm_memory: Footprint,
    /// Memory after init, native.
    pub native_memory: Option<Footprint>,
    /// Users and seconds per run.
    pub users: usize,
    /// Seconds of load per run.
    pub secs: u64,
    /// VM runs, in order.
    pub vm_runs: Vec<AppRun>,
    /// Native runs, in order.
    pub native_runs: Vec<AppRun>,
    /// Median VM req/s over median native req/s.
    pub vm_over_native: Option<f64>,
    /// Start-up from an image vs a cold boot (when asked for).
    pub startup: Option<StartupReport>,
}

/// A redis-server of the benchmark's own on a free port.
struct RedisServer {
    _child: ChildGuard,
    url: String,
}

fn redis_server() -> Result<RedisServer, BenchError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| BenchError::Io { what, source }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io("pick a port for redis-server"))?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io("cannot start redis-server (make deps installs it: apt-get install redis-server)"))?;
    let guard = ChildGuard { child, stdout: None };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(BenchError::Process(format!("redis-server did not listen on port {port} within 10 s")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(RedisServer { _child: guard, url: format!("redis://127.0.0.1:{port}") })
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn health(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn heap_mib(health: &str) -> Option<f64> {
    let v = health.split("heap_bytes=").nth(1)?;
    let n: f64 = v.split_whitespace().next()?.parse().ok()?;
    Some(n / (1 << 20) as f64)
}

/// The native build, written to a temporary file and started.
struct Native {
    guard: ChildGuard,
    addr: SocketAddr,
    path: PathBuf,
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.guard.child.kill();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn start_native(image: &[u8], app: &str, redis_port: u16) -> Result<Native, BenchError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what: String| move |source| BenchError::Io { what, source };
    let path = std::env::temp_dir().join(format!("twinkle-bench-{app}-{}", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, image).map_err(io(format!("write {}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", path.display())))?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io("pick a port".into()))?
        .port();
    let child = Command::new(&path)
        .env("TWINKLE_NATIVE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TWINKLE_NATIVE_CONNECT", format!("redis=127.0.0.1:{redis_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io(format!("cannot start the native {app} {}", path.display())))?;
    Ok(Native { guard: ChildGuard { child, stdout: None }, addr: ([127, 0, 0, 1], port).into(), path })
}

fn load_run(addr: SocketAddr, o: &AppBenchOptions) -> Result<AppRun, BenchError> {
    let workload: Arc<dyn loadgen::Workload> = match o.app.as_str() {
        "rubis" => Arc::new(loadgen::Rubis::new("bench", "bidding", o.scale).map_err(BenchError::Process)?),
        "tpcw" => Arc::new(loadgen::Tpcw::new("bench", "shopping", o.scale).map_err(BenchError::Process)?),
        other => return Err(BenchError::Process(format!("no load for app {other:?}"))),
    };
    let plan = loadgen::Plan {
        addr,
        workload,
        mode: loadgen::Mode::Closed {
            users: loadgen::Profile::constant(o.users as f64),
            think: loadgen::Think { mean: Duration::ZERO, max: Duration::ZERO },
        },
        duration: Duration::from_secs(o.secs),
        threads: 1,
        timeout: Duration::from_secs(10),
    };
    let r = loadgen::run(&plan, false).map_err(|e| BenchError::Process(e.to_string()))?;
    let errors = r.errors.get("total").copied().unwrap_or(0) - r.errors.get("cancelled").copied().unwrap_or(0);
    Ok(AppRun { rps: r.rps, p50_ms: r.latency_ms.p50, p99_ms: r.latency_ms.p99, errors })
}

fn median(v: &[f64]) -> f64 {
    Summary::of(v).p50
}

/// Runs the benchmark.
pub fn run(o: &AppBenchOptions) -> Result<AppBenchReport, BenchError> {
    let redis = redis_server()?;
    let redis_port: u16 = redis.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(6379);
    let app = match o.app.as_str() {
        "rubis" => loadgen::data::App::Rubis,
        "tpcw" => loadgen::data::App::Tpcw,
        other => {
            return Err(BenchError::Process(format!("--app {other}: the apps with a benchmark are rubis and tpcw")))
        }
    };
    let pb = if o.progress { ProgressBar::new(u64::from(o.rounds) * 2) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let (mut loads, mut data_bytes) = (Vec::new(), 0);
    let (mut vm_init, mut native_init) = (Vec::new(), Vec::new());
    let (mut vm_runs, mut native_runs) = (Vec::new(), Vec::new());
    let (mut vm_memory, mut native_memory) = (None, None);
    let mut reload = |loads: &mut Vec<f64>| -> Result<(), BenchError> {
        let s =
            loadgen::data::load(app, &redis.url, o.scale, 1, false).map_err(|e| BenchError::Process(e.to_string()))?;
        data_bytes = s.bytes;
        loads.push(s.seconds);
        Ok(())
    };
    for _ in 0..o.rounds.max(1) {
        pb.set_message(format!("{} in a VM", o.app));
        reload(&mut loads)?;
        let t0 = Instant::now();
        let connect = format!("redis=127.0.0.1:{redis_port}");
        let (vm, addr) = start_vm(&o.twinkle, &o.app, o.mem_mib, &["--connect", &connect])?;
        let up = wait_first_response(addr, Duration::from_secs(120))?;
        vm_init.push(up.duration_since(t0).as_secs_f64() * 1e3);
        vm_memory.get_or_insert(Footprint { heap_mib: heap_mib(&health(addr)), rss_mib: rss_mib(vm.child.id()) });
        vm_runs.push(load_run(addr, o)?);
        drop(vm);
        pb.inc(1);
        if let Some(image) = o.native {
            pb.set_message(format!("{} native", o.app));
            reload(&mut loads)?;
            let t0 = Instant::now();
            let n = start_native(image, &o.app, redis_port)?;
            let up = wait_first_response(n.addr, Duration::from_secs(120))?;
            native_init.push(up.duration_since(t0).as_secs_f64() * 1e3);
            native_memory.get_or_insert(Footprint { heap_mib: None, rss_mib: rss_mib(n.guard.child.id()) });
            native_runs.push(load_run(n.addr, o)?);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let vm_rps = median(&vm_runs.iter().map(|r| r.rps).collect::<Vec<_>>());
    let native_rps =
        (!native_runs.is_empty()).then(|| median(&native_runs.iter().map(|r: &AppRun| r.rps).collect::<Vec<_>>()));
    Ok(AppBenchReport {
        bench: "app",
        app: o.app.clone(),
        scale: o.scale,
        data_bytes,
        load_s: median(&loads),
        vm_init_ms: Summary::of(&vm_init),
        native_init_ms: (!native_init.is_empty()).then(|| Summary::of(&native_init)),
        vm_memory: vm_memory.unwrap_or(Footprint { heap_mib: None, rss_mib: 0.0 }),
        native_memory,
        users: o.users,
        secs: o.secs,
        vm_runs,
        native_runs,
        vm_over_native: native_rps.map(|n| if n > 0.0 { vm_rps / n } else { 0.0 }),
        startup: if o.startup_rounds > 0 {
            loadgen::data::load(app, &redis.url, o.scale, 1, false).map_err(|e| BenchError::Process(e.to_string()))?;
            Some(startup(o, redis_port)?)
        } else {
            None
        },
    })
}

/// Dynamic pages: the first is polled until it answers 200 (it needs the
/// app's data and a working Redis connection), the rest are requested in turn.
fn pages(app: &str) -> (&'static str, Vec<String>, Vec<&'static str>) {
    match app {
        "tpcw" => (
            "/tpcw/TPCW_product_detail_servlet?I_ID=3",
            (0..24)
                .map(|i| format!("/tpcw/TPCW_new_products_servlet?subject={}", appspec::tpcw::SUBJECTS[i]))
                .collect(),
            vec![
                "/tpcw/TPCW_home_interaction?C_ID=5",
                "/tpcw/TPCW_product_detail_servlet?I_ID=3",
                "/tpcw/TPCW_execute_search?search_type=title&search_string=B",
                "/tpcw/TPCW_best_sellers_servlet?subject=ARTS",
            ],
        ),
        _ => (
            "/PHP/ViewItem.php?itemId=3",
            (1..=20).map(|c| format!("/PHP/SearchItemsByCategory.php?category={c}&page=0&nbOfItems=25")).collect(),
            vec![
                "/PHP/ViewItem.php?itemId=3",
                "/PHP/SearchItemsByCategory.php?category=2&page=0&nbOfItems=25",
                "/PHP/AboutMe.php?nickname=user5&password=password5",
                "/PHP/ViewUserInfo.php?userId=7",
            ],
        ),
    }
}

/// GET `path` on a new connection: whether it answered 200.
fn get_ok(addr: SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return false };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(s, "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200")
}

fn twinkle_out(twinkle: &std::path::Path, args: &[&str]) -> Result<String, BenchError> {
    let out = Command::new(twinkle)
        .args(args)
        .output()
        .map_err(|source| BenchError::Io { what: format!("cannot run {}", twinkle.display()), source })?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(BenchError::Process(format!("twinkle {}: {text}", args.join(" "))));
    }
    Ok(text)
}

/// A number that follows `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let rest = text.split(key).nth(1)?;
    rest.trim_start().split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
}

fn startup(o: &AppBenchOptions, redis_port: u16) -> Result<StartupReport, BenchError> {
    let dir = std::env::temp_dir().join(format!("twinkle-bench-app-{}", std::process::id()));
    let image = dir.join(&o.app);
    let img = image.to_string_lossy().to_string();
    let connect = format!("redis=127.0.0.1:{redis_port}");
    let mem = o.mem_mib.to_string();
    let built = twinkle_out(
        &o.twinkle,
        &["image", "build", "--app", &o.app, "--connect", &connect, "--mem-mib", &mem, "--out", &img],
    )?;
    let (first, rest, warmups) = pages(&o.app);
    let mut track = vec!["image", "track", "--image", img.as_str(), "--connect", connect.as_str()];
    for w in &warmups {
        track.extend(["--warmup", w]);
    }
    let tracked = twinkle_out(&o.twinkle, &track)?;
    let starts = ["cold", "resume", "lazy", "twinkle"];
    let mut rows: Vec<StartupRow> = starts
        .iter()
        .map(|s| StartupRow { start: s.to_string(), first_response_ms: Vec::new(), next_requests_ms: Vec::new() })
        .collect();
    let next = 300;
    let pb = if o.progress {
        ProgressBar::new(u64::from(o.startup_rounds) * starts.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("start-up from the image");
    for _ in 0..o.startup_rounds {
        for row in rows.iter_mut() {
            let t0 = Instant::now();
            let (guard, addr) = if row.start == "cold" {
                start_vm(&o.twinkle, &o.app, o.mem_mib, &["--connect", &connect])?
            } else {
                let args = ["vm", "restore", "--image", &img, "--strategy", &row.start, "--listen", "127.0.0.1:0"];
                start_listening(&o.twinkle, &[&args[..], &["--connect", &connect, "-q"]].concat())?
            };
            let deadline = t0 + Duration::from_secs(120);
            while !get_ok(addr, first) {
                if Instant::now() > deadline {
                    return Err(BenchError::Process(format!(
                        "{} start of {}: no 200 from {first} in 120 s",
                        row.start, o.app
                    )));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            row.first_response_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            let t1 = Instant::now();
            for i in 0..next {
                get_ok(addr, &rest[i % rest.len()]);
            }
            row.next_requests_ms.push(t1.elapsed().as_secs_f64() * 1e3);
            drop(guard);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(StartupReport {
        image_mib: built.split("image written to").nth(1).and_then(|t| number_after(t, "(")).unwrap_or(0.0),
        image_init_ms: number_after(&built, "initialized in").unwrap_or(0.0),
        working_set_pages: number_after(&tracked, "\"pages\":").unwrap_or(0.0) as u64,
        next_requests: next,
        rows,
    })
}

impl AppBenchReport {
    /// The report for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} at scale {}: {:.1} MiB of records, loaded into Redis in {:.2} s\n",
            self.app,
            self.scale,
            self.data_bytes as f64 / (1 << 20) as f64,
            self.load_s
        );
        s.push_str(&format!(
            "init (cold boot + load from Redis to first /health): VM p50 {:.0} ms (min {:.0}, max {:.0})",
            self.vm_init_ms.p50, self.vm_init_ms.min, self.vm_init_ms.max
        ));
        if let Some(n) = &self.native_init_ms {
            s.push_str(&format!("; native p50 {:.0} ms", n.p50));
        }
        s.push('\n');
        s.push_str(&format!(
            "memory after init: VM guest heap {} MiB, VM process RSS {:.0} MiB",
            self.vm_memory.heap_mib.map_or("?".into(), |h| format!("{h:.1}")),
            self.vm_memory.rss_mib
        ));
        if let Some(n) = &self.native_memory {
            s.push_str(&format!("; native RSS {:.0} MiB", n.rss_mib));
        }
        s.push('\n');
        let line = |r: &AppRun| {
            format!("{:>9.0} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  errors {}", r.rps, r.p50_ms, r.p99_ms, r.errors)
        };
        for (i, r) in self.vm_runs.iter().enumerate() {
            s.push_str(&format!("round {} VM     {}\n", i + 1, line(r)));
            if let Some(n) = self.native_runs.get(i) {
                s.push_str(&format!("round {} native {}\n", i + 1, line(n)));
            }
        }
        if let Some(r) = self.vm_over_native {
            s.push_str(&format!("VM / native req/s (medians, {} users, no think time): {r:.2}\n", self.users));
        }
        if let Some(st) = &self.startup {
            s.push_str(&format!(
                "start-up: image of {:.1} MiB (init {:.0} ms), working set {} pages\n{:<8} {:>28} {:>34}\n",
                st.image_mib,
                st.image_init_ms,
                st.working_set_pages,
                "start",
                "first response ms",
                format!("next {} requests ms", st.next_requests)
            ));
            let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
            for r in &st.rows {
                s.push_str(&format!(
                    "{:<8} {:>28} {:>34}\n",
                    r.start,
                    list(&r.first_response_ms),
                    list(&r.next_requests_ms)
                ));
            }
        }
        s
    }
}
