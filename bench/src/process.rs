//! Starting `twinkle vm run` children and reading their milestone lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// A child process killed when dropped.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    /// Its stdout, for further lines.
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `twinkle vm run --app APP --listen 127.0.0.1:0 ...` and returns the
/// child with the address it listens on, once the `listening` line arrived.
pub fn start_vm(
    twinkle: &Path,
    app: &str,
    mem_mib: u32,
    extra: &[&str],
) -> Result<(ChildGuard, SocketAddr), BenchError> {
    let mem = mem_mib.to_string();
    let mut args = vec!["vm", "run", "--app", app, "--listen", "127.0.0.1:0", "--mem-mib", &mem, "-q"];
    args.extend_from_slice(extra);
    start_listening(twinkle, &args)
}

/// Starts `twinkle ARGS` (a `vm run` or `vm restore` with `--listen`) and
/// returns the child with the address it listens on, once its `listening`
/// line arrived.
pub fn start_listening(twinkle: &Path, args: &[&str]) -> Result<(ChildGuard, SocketAddr), BenchError> {
    let mut child = Command::new(twinkle)
        .args(args)
        .stdout(Stdio::piped())
        // TWINKLE_BENCH_VM_LOGS=1 shows the VMs' logs (to debug a benchmark).
        .stderr(if std::env::var_os("TWINKLE_BENCH_VM_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .map_err(|source| BenchError::Io { what: format!("cannot start {}", twinkle.display()), source })?;
    let stdout = child.stdout.take().ok_or_else(|| BenchError::Process("no stdout".into()))?;
    let mut guard = ChildGuard { child, stdout: Some(BufReader::new(stdout)) };
    let line = guard.read_line()?;
    let addr = line
        .strip_prefix("listening ")
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| BenchError::Process(format!("expected `listening ADDR` from the VM, got {line:?}")))?;
    Ok((guard, addr))
}

impl ChildGuard {
    /// The next stdout line (empty at end of output).
    pub fn read_line(&mut self) -> Result<String, BenchError> {
        let mut line = String::new();
        if let Some(out) = self.stdout.as_mut() {
            out.read_line(&mut line)
                .map_err(|source| BenchError::Io { what: "reading the VM's stdout".into(), source })?;
        }
        Ok(line.trim_end().to_string())
    }
}

/// Polls `GET /health` until a 200 arrives; returns when it did.
pub fn wait_first_response(addr: SocketAddr, timeout: Duration) -> Result<Instant, BenchError> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n").is_ok() {
                let mut buf = [0u8; 256];
                if let Ok(n) = s.read(&mut buf) {
                    if buf[..n].starts_with(b"HTTP/1.1 200") {
                        return Ok(Instant::now());
                    }
                }
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Process(format!("no HTTP 200 from {addr} within {timeout:?}")));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}
