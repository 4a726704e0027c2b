//! twinkle's load generator: emulated users (closed loop, with think times
//! and sessions) or arrivals at a rate (open loop, latency counted from the
//! intended send time so a stalled server cannot hide its queue), over time
//! profiles such as flash crowds; HDR histograms overall, per interaction
//! and per second; reports as a table, JSON, CSV and SVG plots.

pub mod apps;
pub mod client;
pub mod data;
pub mod engine;
pub mod plot;
pub mod profile;
pub mod record;
pub mod redis;
pub mod report;
pub mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

pub use apps::{Rubis, Tpcw};
pub use engine::{Mode, Plan, Think};
pub use profile::{parse_secs, Profile};
pub use report::Report;
pub use workload::{Get, Workload};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target URL is not usable.
    #[error("--target {0}")]
    Target(String),
    /// Threads could not start.
    #[error("cannot start the load threads: {0}")]
    Start(#[from] std::io::Error),
}

/// A parsed `http://HOST:PORT/PATH` target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// Host header value.
    pub host: String,
    /// Path (with query).
    pub path: String,
}

impl Target {
    /// Parses a URL (http only).
    pub fn parse(url: &str) -> Result<Target, LoadError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| LoadError::Target(format!("{url:?}: only http://HOST:PORT/PATH URLs are supported")))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if hostport.is_empty() {
            return Err(LoadError::Target(format!("{url:?}: no host")));
        }
        let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| LoadError::Target(format!("{url:?}: cannot resolve {hostport}")))?;
        Ok(Target { addr, host: hostport.to_string(), path: path.to_string() })
    }
}

/// Runs `plan`, showing a live progress bar when `progress`; returns the report.
pub fn run(plan: &Plan, progress: bool) -> Result<Report, LoadError> {
    let names = plan.workload.interactions();
    let shared = Arc::new(engine::Shared {
        start: std::time::Instant::now(),
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stats: (0..plan.threads.max(1)).map(|_| Arc::new(Mutex::new(record::ThreadStats::new(names.len())))).collect(),
    });
    let pb = if progress { ProgressBar::new(plan.duration.as_secs().max(1)) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} s  {msg}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let mut last = (0u64, std::time::Instant::now());
    let mut tick = |sh: &engine::Shared| {
        let done = sh.finished.load(Ordering::Relaxed);
        let now = std::time::Instant::now();
        let dt = (now - last.1).as_secs_f64();
        if dt < 0.9 {
            return;
        }
        let rps = (done - last.0) as f64 / dt;
        last = (done, now);
        // p99 of the last whole second, merged over threads.
        let sec = sh.start.elapsed().as_secs() as usize;
        let mut h = record::histogram(2);
        if sec > 0 {
            for s in &sh.stats {
                let st = engine::lock(s);
                if let Some(Some(x)) = st.seconds.get(sec - 1) {
                    let _ = h.add(&x.hist);
                }
            }
        }
        let p99 = if h.is_empty() { 0.0 } else { h.value_at_quantile(0.99) as f64 / 1e3 };
        pb.set_position(sh.start.elapsed().as_secs());
        pb.set_message(format!("{rps:.0} req/s  p99 {p99:.2} ms  errors {}", sh.errors.load(Ordering::Relaxed)));
    };
    engine::run(plan, &shared, &mut tick)?;
    pb.finish_and_clear();
    let target = plan.workload.target_mix();
    let limits = plan.workload.p90_limits_ms();
    Ok(report::build(&shared, &names, target.as_deref(), limits.as_deref(), plan.duration.as_secs_f64()))
}
