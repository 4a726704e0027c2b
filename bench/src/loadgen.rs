//! `twinkle bench loadgen`: the load generator against wrk, in one run, with
//! the same connections and one thread each, against nginx serving a small
//! static response. Rounds alternate the two clients; medians are reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::proxy::{free_port, median, spawn, upstream_config, wait_ready, write};
use crate::{httpload, BenchError};

/// Settings.
#[derive(Clone, Debug)]
pub struct LoadgenBenchOptions {
    /// The twinkle binary.
    pub twinkle: PathBuf,
    /// Connections of each client.
    pub connections: u32,
    /// Seconds per measurement.
    pub secs: u32,
    /// Rounds.
    pub rounds: u32,
    /// Scratch directory.
    pub work_dir: PathBuf,
}

/// One client's medians.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRow {
    /// `wrk` or `twinkle-loadgen`.
    pub name: String,
    /// Requests per second (median of rounds).
    pub rps: f64,
    /// 99th percentile latency, ms (median of rounds).
    pub p99_ms: f64,
    /// Each round's req/s.
    pub rounds_rps: Vec<f64>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadgenBenchReport {
    /// Always "loadgen".
    pub bench: String,
    /// Connections.
    pub connections: u32,
    /// Seconds per round.
    pub secs: u32,
    /// Rounds.
    pub rounds: u32,
    /// wrk and twinkle-loadgen.
    pub results: Vec<ClientRow>,
    /// twinkle-loadgen req/s over wrk's.
    pub loadgen_vs_wrk: f64,
}

fn loadgen_once(o: &LoadgenBenchOptions, addr: SocketAddr) -> Result<(f64, f64), BenchError> {
    let out = Command::new(&o.twinkle)
        .args([
            "loadgen",
            "--target",
            &format!("http://{addr}/"),
            "--workload",
            "get",
            "--think",
            "0",
            "--threads",
            "1",
            "--json",
            "-q",
        ])
        .args(["--users", &o.connections.to_string(), "--duration", &format!("{}s", o.secs)])
        .output()
        .map_err(|source| BenchError::Io { what: "cannot run twinkle loadgen".into(), source })?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        BenchError::Process(format!("twinkle loadgen printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
    })?;
    let rps = v["rps"].as_f64().unwrap_or(0.0);
    let p99 = v["latency_ms"]["p99"].as_f64().unwrap_or(0.0);
    Ok((rps, p99))
}

/// Runs the benchmark (needs nginx and wrk: `make deps`).
pub fn run_bench(o: &LoadgenBenchOptions) -> Result<LoadgenBenchReport, BenchError> {
    if !httpload::have_wrk() {
        return Err(BenchError::Process(
            "wrk is needed as the peer; install it with `make deps` (apt-get install wrk)".into(),
        ));
    }
    std::fs::create_dir_all(&o.work_dir)
        .map_err(|source| BenchError::Io { what: format!("create {}", o.work_dir.display()), source })?;
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = std::fs::create_dir_all(o.work_dir.join(sub));
    }
    let port = free_port()?;
    let conf = o.work_dir.join("upstream.conf");
    write(&conf, &upstream_config(&o.work_dir, &[port]))?;
    let conf_s = conf.display().to_string();
    let _nginx = spawn(None, "nginx", &["-c", &conf_s, "-e", "stderr"]).map_err(|e| {
        BenchError::Process(format!("{e} (nginx serves the static response; install it with `make deps`)"))
    })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(addr, "nginx")?;
    let (mut wrk, mut lg) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds.max(1) {
        let w = httpload::run(addr, "/", o.connections, o.secs)?;
        wrk.push((w.rps, w.p99_ms));
        lg.push(loadgen_once(o, addr)?);
    }
    let row = |name: &str, v: &[(f64, f64)]| ClientRow {
        name: name.into(),
        rps: median(&v.iter().map(|x| x.0).collect::<Vec<_>>()),
        p99_ms: median(&v.iter().map(|x| x.1).collect::<Vec<_>>()),
        rounds_rps: v.iter().map(|x| x.0).collect(),
    };
    let results = vec![row("wrk", &wrk), row("twinkle-loadgen", &lg)];
    let loadgen_vs_wrk = results[1].rps / results[0].rps.max(1e-9);
    Ok(LoadgenBenchReport {
        bench: "loadgen".into(),
        connections: o.connections,
        secs: o.secs,
        rounds: o.rounds.max(1),
        results,
        loadgen_vs_wrk,
    })
}
