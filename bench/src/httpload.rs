//! Closed-loop HTTP load against one address: wrk when it is installed (the
//! reference client), otherwise a built-in keep-alive client. Both report
//! requests per second and latency percentiles.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::Summary;
use crate::BenchError;

/// What one load run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// `wrk` or `builtin`.
    pub client: String,
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 99th percentile latency in ms.
    pub p99_ms: f64,
    /// Errors (non-2xx, socket errors).
    pub errors: u64,
}

/// Whether wrk is on the PATH.
pub fn have_wrk() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// Runs `connections` keep-alive connections for `secs` against `http://addr/path`.
pub fn run(addr: SocketAddr, path: &str, connections: u32, secs: u32) -> Result<LoadResult, BenchError> {
    run_on(addr, path, connections, secs, None)
}

/// As [`run`], with wrk pinned to `cpus` (a taskset list such as "0") when given.
pub fn run_on(
    addr: SocketAddr,
    path: &str,
    connections: u32,
    secs: u32,
    cpus: Option<&str>,
) -> Result<LoadResult, BenchError> {
    if have_wrk() {
        wrk(addr, path, connections, secs, cpus)
    } else {
        builtin(addr, path, connections, secs)
    }
}

/// `program`, run through `taskset -c CPUS` when `cpus` is given.
pub fn pinned_command(cpus: Option<&str>, program: &str) -> Command {
    match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", c, program]);
            t
        }
        None => Command::new(program),
    }
}

fn parse_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

fn wrk(
    addr: SocketAddr,
    path: &str,
    connections: u32,
    secs: u32,
    cpus: Option<&str>,
) -> Result<LoadResult, BenchError> {
    let mut cmd = pinned_command(cpus, "wrk");
    let out = cmd
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .map_err(|source| BenchError::Io { what: "cannot run wrk".into(), source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = LoadResult { client: "wrk".into(), rps: 0.0, p50_ms: 0.0, p99_ms: 0.0, errors: 0 };
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = parse_ms(v).unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = parse_ms(v).unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            r.errors += v.split(',').filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        }
    }
    if r.rps == 0.0 {
        return Err(BenchError::Process(format!("wrk reported no throughput:\n{text}")));
    }
    Ok(r)
}

fn builtin(addr: SocketAddr, path: &str, connections: u32, secs: u32) -> Result<LoadResult, BenchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| BenchError::Io { what: "tokio runtime".into(), source })?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let end = Instant::now() + Duration::from_secs(u64::from(secs));
    let (lat, errors) = rt.block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let req = request.clone();
            tasks.push(tokio::spawn(async move { one_connection(addr, req, end).await }));
        }
        let mut lat = Vec::new();
        let mut errors = 0u64;
        for t in tasks {
            if let Ok((l, e)) = t.await {
                lat.extend(l);
                errors += e;
            }
        }
        (lat, errors)
    });
    let s = Summary::of(&lat);
    Ok(LoadResult {
        client: "builtin".into(),
        rps: lat.len() as f64 / f64::from(secs),
        p50_ms: s.p50,
        p99_ms: s.p99,
        errors,
    })
}

async fn one_connection(addr: SocketAddr, req: String, end: Instant) -> (Vec<f64>, u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut lat = Vec::new();
    let mut errors = 0;
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (lat, 1);
    };
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < end {
        let t0 = Instant::now();
        if s.write_all(req.as_bytes()).await.is_err() {
            errors += 1;
            break;
        }
        // Read one response: head, then Content-Length bytes.
        let mut have = 0usize;
        let complete = loop {
            match s.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => break false,
                Ok(n) => have += n,
            }
            if let Some(head_end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
                    .unwrap_or(0);
                if have >= head_end + 4 + len {
                    break head.starts_with("http/1.1 2");
                }
            }
            if have == buf.len() {
                break false;
            }
        };
        if !complete {
            errors += 1;
            break;
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    (lat, errors)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn wrk_latency_units() {
        assert_eq!(parse_ms("250.00us"), Some(0.25));
        assert_eq!(parse_ms(" 1.50ms"), Some(1.5));
        assert_eq!(parse_ms("2.00s"), Some(2000.0));
    }
}
