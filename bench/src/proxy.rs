//! `twinkle bench proxy`: the dispatcher against nginx and HAProxy as reverse
//! proxies, in one run, with the same client (wrk where installed) and the
//! same upstream (nginx answering a small static response). Each proxy gets
//! one worker/thread and keep-alive to its upstreams. By default the
//! scheduler places the processes (as platform.md measured); with `pin`, the
//! proxy runs alone on CPU 1 and the client and upstream share CPU 0. Rounds
//! alternate the proxies and the medians are reported.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::httpload;
use crate::process::ChildGuard;
use crate::BenchError;

/// Settings.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// The twinkle binary.
    pub twinkle: PathBuf,
    /// Client connections.
    pub connections: u32,
    /// Seconds per measurement.
    pub secs: u32,
    /// Rounds (each measures every target once).
    pub rounds: u32,
    /// Upstream addresses behind each proxy.
    pub upstreams: u32,
    /// Scratch directory for generated configs.
    pub work_dir: PathBuf,
    /// Show progress.
    pub progress: bool,
    /// Pin each proxy to CPU 1 and the client and upstream to CPU 0.
    pub pin: bool,
}

/// One target's medians.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProxyRow {
    /// `direct`, `twinkle`, `nginx` or `haproxy`.
    pub name: String,
    /// Requests per second (median of rounds).
    pub rps: f64,
    /// Median latency, ms (median of rounds).
    pub p50_ms: f64,
    /// 99th percentile latency, ms (median of rounds).
    pub p99_ms: f64,
    /// Requests per second of each round.
    pub rounds_rps: Vec<f64>,
    /// Errors over all rounds (non-2xx and socket errors).
    pub errors: u64,
    /// CPU time the proxy process spent per request, us (median of rounds;
    /// none for `direct`).
    pub cpu_us_per_req: Option<f64>,
    /// Requests per second the proxy would serve on one fully busy core:
    /// 1e6 / `cpu_us_per_req`. On a machine where the client and the
    /// upstream share the cores with the proxy, this is the fair "req/s on
    /// one core".
    pub rps_per_core: Option<f64>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProxyReport {
    /// Always "proxy".
    pub bench: String,
    /// `wrk` or `builtin`.
    pub client: String,
    /// Client connections.
    pub connections: u32,
    /// Upstream addresses behind each proxy.
    pub upstreams: u32,
    /// Seconds per measurement.
    pub secs: u32,
    /// Rounds.
    pub rounds: u32,
    /// Whether proxies ran pinned on their own CPU.
    pub pinned: bool,
    /// One row per target.
    pub results: Vec<ProxyRow>,
    /// twinkle req/s over nginx's.
    pub twinkle_vs_nginx: Option<f64>,
    /// twinkle req/s over HAProxy's.
    pub twinkle_vs_haproxy: Option<f64>,
    /// twinkle req/s per core over nginx's.
    pub twinkle_vs_nginx_per_core: Option<f64>,
    /// twinkle req/s per core over HAProxy's.
    pub twinkle_vs_haproxy_per_core: Option<f64>,
    /// p99 added over direct, ms, per proxy.
    pub added_p99_ms: Vec<(String, f64)>,
    /// What could not be measured and why.
    pub notes: Vec<String>,
}

pub(crate) fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|source| BenchError::Io { what: "finding a free port".into(), source })?;
    l.local_addr().map(|a| a.port()).map_err(|source| BenchError::Io { what: "finding a free port".into(), source })
}

pub(crate) fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Io { what: format!("write {}", path.display()), source })
}

/// Starts `cmd` (pinned to `cpus` when given), killed when dropped.
pub(crate) fn spawn(cpus: Option<&str>, cmd: &str, args: &[&str]) -> Result<ChildGuard, BenchError> {
    let child = httpload::pinned_command(cpus, cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| BenchError::Io { what: format!("cannot start {cmd}"), source })?;
    let mut g = ChildGuard { child, stdout: None };
    g.stdout = g.child.stdout.take().map(std::io::BufReader::new);
    Ok(g)
}

/// Waits until `GET /` at `addr` answers 200.
pub(crate) fn wait_ready(addr: SocketAddr, what: &str) -> Result<(), BenchError> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            if s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").is_ok() {
                let mut b = [0u8; 64];
                if let Ok(n) = s.read(&mut b) {
                    if b[..n].starts_with(b"HTTP/1.1 200") {
                        return Ok(());
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BenchError::Process(format!("{what} on {addr} did not answer GET / with 200 within 10 s")))
}

fn nginx_common(dir: &Path, tag: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/{tag}.pid;\nerror_log {d}/{tag}-error.log;\n\
         events {{ worker_connections 16384; }}\n"
    )
}

fn nginx_http_common(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  keepalive_requests 1000000;\n"
    )
}

/// The upstream: nginx answering `GET /` with a small static body on each port.
pub(crate) fn upstream_config(dir: &Path, ports: &[u16]) -> String {
    let mut c = nginx_common(dir, "upstream");
    c.push_str("http {\n");
    c.push_str(&nginx_http_common(dir));
    for p in ports {
        c.push_str(&format!(
            "  server {{ listen 127.0.0.1:{p}; location / {{ default_type text/plain; return 200 \"hello from {p}\\n\"; }} }}\n"
        ));
    }
    c.push_str("}\n");
    c
}

fn nginx_proxy_config(dir: &Path, port: u16, ups: &[u16]) -> String {
    let mut c = nginx_common(dir, "nginx-proxy");
    c.push_str("http {\n");
    c.push_str(&nginx_http_common(dir));
    c.push_str("  upstream backend {\n    least_conn;\n");
    for p in ups {
        c.push_str(&format!("    server 127.0.0.1:{p};\n"));
    }
    c.push_str("    keepalive 256;\n  }\n");
    c.push_str(&format!(
        "  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://backend;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    ));
    c
}

fn haproxy_config(port: u16, ups: &[u16]) -> String {
    let mut c = String::from(
        "global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  \
         timeout server 30s\n  http-reuse always\n  option http-keep-alive\n",
    );
    c.push_str(&format!(
        "frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  balance leastconn\n"
    ));
    for (i, p) in ups.iter().enumerate() {
        c.push_str(&format!("  server s{i} 127.0.0.1:{p}\n"));
    }
    c
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no memory effects; _SC_CLK_TCK is a valid name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) / if hz > 0 { hz as f64 } else { 100.0 })
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Runs the benchmark.
pub fn run_bench(o: &ProxyOptions) -> Result<ProxyReport, BenchError> {
    std::fs::create_dir_all(&o.work_dir)
        .map_err(|source| BenchError::Io { what: format!("create {}", o.work_dir.display()), source })?;
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = std::fs::create_dir_all(o.work_dir.join(sub));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = o.pin && cores >= 2 && have("taskset");
    let (proxy_cpu, client_cpu) = if pinned { (Some("1"), Some("0")) } else { (None, None) };
    let mut notes = Vec::new();
    if o.pin && !pinned {
        notes.push("not pinned: needs taskset and two cores".to_string());
    }
    if !httpload::have_wrk() {
        notes.push("wrk is not installed: the built-in client measured (install wrk: make deps)".to_string());
    }

    // The upstream.
    if !have("nginx") {
        return Err(BenchError::Process(
            "nginx is needed as the upstream and as a peer proxy; install it with `make deps` (apt-get install nginx-light)"
                .into(),
        ));
    }
    let up_ports: Vec<u16> = (0..o.upstreams.max(1)).map(|_| free_port()).collect::<Result<_, _>>()?;
    let up_conf = o.work_dir.join("upstream.conf");
    write(&up_conf, &upstream_config(&o.work_dir, &up_ports))?;
    let conf_s = up_conf.display().to_string();
    let _upstream = spawn(client_cpu, "nginx", &["-c", &conf_s, "-e", "stderr"])?;
    let up_addrs: Vec<SocketAddr> = up_ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
    for a in &up_addrs {
        wait_ready(*a, "the upstream nginx")?;
    }

    // The proxies.
    let mut targets: Vec<(String, SocketAddr, Option<ChildGuard>)> = vec![("direct".into(), up_addrs[0], None)];
    let mut args: Vec<String> = ["dispatch", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push("--no-health-checks".into());
    args.push("-q".into());
    for a in &up_addrs {
        args.push("--upstream".into());
        args.push(a.to_string());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let twinkle_s = o.twinkle.display().to_string();
    let mut tw = spawn(proxy_cpu, &twinkle_s, &arg_refs)?;
    let line = tw.read_line()?;
    let tw_addr: SocketAddr =
        line.strip_prefix("listening on ").and_then(|a| a.trim().parse().ok()).ok_or_else(|| {
            BenchError::Process(format!("expected `listening on ADDR` from twinkle dispatch, got {line:?}"))
        })?;
    wait_ready(tw_addr, "twinkle dispatch")?;
    targets.push(("twinkle".into(), tw_addr, Some(tw)));

    let port = free_port()?;
    let conf = o.work_dir.join("nginx-proxy.conf");
    write(&conf, &nginx_proxy_config(&o.work_dir, port, &up_ports))?;
    let conf_s = conf.display().to_string();
    let ng = spawn(proxy_cpu, "nginx", &["-c", &conf_s, "-e", "stderr"])?;
    let ng_addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(ng_addr, "nginx (proxy)")?;
    targets.push(("nginx".into(), ng_addr, Some(ng)));

    if have("haproxy") {
        let port = free_port()?;
        let conf = o.work_dir.join("haproxy.cfg");
        write(&conf, &haproxy_config(port, &up_ports))?;
        let conf_s = conf.display().to_string();
        let hp = spawn(proxy_cpu, "haproxy", &["-f", &conf_s, "-db"])?;
        let hp_addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_ready(hp_addr, "haproxy")?;
        targets.push(("haproxy".into(), hp_addr, Some(hp)));
    } else {
        notes.push("haproxy is not installed (make deps installs it): no haproxy row".into());
    }

    let pb =
        if o.progress { ProgressBar::new(u64::from(o.rounds) * targets.len() as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let mut samples: Vec<Vec<httpload::LoadResult>> = vec![Vec::new(); targets.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    // A short warm-up per target (connection pools, caches), not measured.
    for (_, addr, _) in &targets {
        let _ = httpload::run_on(*addr, "/", o.connections, 1, client_cpu);
    }
    for round in 0..o.rounds.max(1) {
        for (k, (name, addr, _)) in targets.iter().enumerate() {
            pb.set_message(format!("{name} ({}/{})", round + 1, o.rounds.max(1)));
            let pid = targets[k].2.as_ref().map(|g| g.child.id());
            let c0 = pid.and_then(cpu_seconds);
            let r = httpload::run_on(*addr, "/", o.connections, o.secs, client_cpu)?;
            if let (Some(p), Some(c0)) = (pid, c0) {
                if let Some(c1) = cpu_seconds(p) {
                    let n = r.rps * f64::from(o.secs);
                    if n > 0.0 {
                        cpu[k].push((c1 - c0) * 1e6 / n);
                    }
                }
            }
            samples[k].push(r);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let client = samples.first().and_then(|s| s.first()).map_or("wrk".into(), |r| r.client.clone());
    let results: Vec<ProxyRow> = targets
        .iter()
        .zip(&samples)
        .zip(&cpu)
        .map(|(((name, _, _), runs), cpu)| ProxyRow {
            cpu_us_per_req: (!cpu.is_empty()).then(|| median(cpu)),
            rps_per_core: (!cpu.is_empty()).then(|| 1e6 / median(cpu).max(1e-9)),
            name: name.clone(),
            rps: median(&runs.iter().map(|r| r.rps).collect::<Vec<_>>()),
            p50_ms: median(&runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
            p99_ms: median(&runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>()),
            rounds_rps: runs.iter().map(|r| r.rps).collect(),
            errors: runs.iter().map(|r| r.errors).sum(),
        })
        .collect();
    let get = |n: &str| results.iter().find(|r| r.name == n);
    let ratio = |a: &str, b: &str| Some(get(a)?.rps / get(b)?.rps.max(1e-9));
    let per_core = |a: &str, b: &str| Some(get(a)?.rps_per_core? / get(b)?.rps_per_core?.max(1e-9));
    let direct_p99 = get("direct").map_or(0.0, |r| r.p99_ms);
    let added_p99_ms =
        results.iter().filter(|r| r.name != "direct").map(|r| (r.name.clone(), r.p99_ms - direct_p99)).collect();
    Ok(ProxyReport {
        bench: "proxy".into(),
        client,
        connections: o.connections,
        upstreams: o.upstreams.max(1),
        secs: o.secs,
        rounds: o.rounds.max(1),
        pinned,
        twinkle_vs_nginx: ratio("twinkle", "nginx"),
        twinkle_vs_haproxy: ratio("twinkle", "haproxy"),
        twinkle_vs_nginx_per_core: per_core("twinkle", "nginx"),
        twinkle_vs_haproxy_per_core: per_core("twinkle", "haproxy"),
        added_p99_ms,
        results,
        notes,
    })
}

impl ProxyReport {
    /// A markdown table of the results.
    pub fn markdown(&self) -> String {
        let mut o = format!(
            "{} connections, {} upstream(s), {} x {} s rounds, client {}{}\n\n| target | req/s (median) | CPU us/request | req/s per core | p50 ms | p99 ms | rounds req/s | errors |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
            self.connections,
            self.upstreams,
            self.rounds,
            self.secs,
            self.client,
            if self.pinned { ", proxy pinned to CPU 1, client and upstream to CPU 0" } else { "" }
        );
        for r in &self.results {
            let rounds: Vec<String> = r.rounds_rps.iter().map(|v| format!("{:.0}", v)).collect();
            o.push_str(&format!(
                "| {} | {:.0} | {} | {} | {:.3} | {:.3} | {} | {} |\n",
                r.name,
                r.rps,
                r.cpu_us_per_req.map_or("-".into(), |v| format!("{v:.1}")),
                r.rps_per_core.map_or("-".into(), |v| format!("{v:.0}")),
                r.p50_ms,
                r.p99_ms,
                rounds.join(", "),
                r.errors
            ));
        }
        if let Some(x) = self.twinkle_vs_nginx {
            o.push_str(&format!("\ntwinkle / nginx: {x:.2}x"));
        }
        if let Some(x) = self.twinkle_vs_haproxy {
            o.push_str(&format!("; twinkle / haproxy: {x:.2}x"));
        }
        if let (Some(a), Some(b)) = (self.twinkle_vs_nginx_per_core, self.twinkle_vs_haproxy_per_core) {
            o.push_str(&format!("\nper core: twinkle / nginx {a:.2}x; twinkle / haproxy {b:.2}x"));
        }
        o.push('\n');
        o
    }
}
