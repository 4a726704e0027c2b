//! The VM's control interface: a Unix socket speaking JSON lines, so the
//! provisioner (or a person with `socat`) can ask a `twinkle vm run` process
//! for its status and pause, resume or stop it. Documented in
//! docs/vm-control.md; versioned by [`PROTOCOL_VERSION`].
//!
//! One request per line, one response per line:
//! `{"op":"status"}` -> `{"ok":true,"protocol":1,"state":"running",...}`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::control::VmShared;
use crate::error::VmExit;

/// Version of the control protocol; changes that break clients bump it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

/// Facts about the VM that status reports.
#[derive(Clone, Debug, Default)]
pub struct VmInfo {
    /// Guest memory, to count free pages in the guest's bitmap.
    pub mem: Option<Arc<crate::memory::GuestMemory>>,
    /// The page server of a lazily restored VM.
    pub pager: Option<Arc<crate::pager::PagerStats>>,
    /// The guest program.
    pub app: String,
    /// Guest memory in MiB.
    pub mem_mib: u32,
    /// The host address connections are accepted on.
    pub listen: Option<String>,
}

/// The control socket of one VM; the socket file is removed on drop.
pub struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (replacing a stale socket file) and serves it on a thread.
    pub fn start(path: &Path, shared: Arc<VmShared>, info: VmInfo) -> std::io::Result<ControlSocket> {
        if path.exists() {
            // Only a socket left by a dead VM may be replaced, never a live one.
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is the control socket of a running VM", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let info = Arc::new(info);
        std::thread::Builder::new().name("vm-control".into()).spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&shared);
                let info = Arc::clone(&info);
                let _ = std::thread::Builder::new()
                    .name("vm-control-client".into())
                    .spawn(move || serve_client(conn, &shared, &info));
            }
        })?;
        Ok(ControlSocket { path: path.to_path_buf() })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends one request to a VM's control socket and returns the response line.
pub fn request(path: &Path, op: &str) -> std::io::Result<Value> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(conn, "{}", json!({ "op": op }))?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn serve_client(conn: UnixStream, shared: &VmShared, info: &VmInfo) {
    let Ok(mut out) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64 + 1).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) if n > MAX_LINE => {
                let _ = writeln!(out, "{}", json!({"ok": false, "error": "request line longer than 64 KiB"}));
                return;
            }
            Ok(_) => {}
        }
        let reply = handle(line.trim(), shared, info);
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

/// Answers one request line.
pub fn handle(line: &str, shared: &VmShared, info: &VmInfo) -> Value {
    let req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"ok": false, "error": format!("not a JSON request: {e}; send {{\"op\":\"status\"}}")}),
    };
    let op = req.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "status" => status(shared, info),
        "pause" => {
            if shared.pause(Duration::from_secs(2)) {
                json!({"ok": true, "state": "paused"})
            } else {
                json!({"ok": false, "error": "the vCPU did not stop within 2 s (or the VM ended)"})
            }
        }
        "resume" => {
            shared.resume();
            json!({"ok": true, "state": "running"})
        }
        "stop" => {
            shared.finish(VmExit::Stopped);
            json!({"ok": true, "state": "stopping"})
        }
        other => json!({
            "ok": false,
            "error": format!("unknown op {other:?}; ops: status, pause, resume, stop"),
        }),
    }
}

fn status(shared: &VmShared, info: &VmInfo) -> Value {
    let s = &shared.stats;
    let state = if shared.stopping() {
        "stopping"
    } else if shared.is_paused() {
        "paused"
    } else if shared.ready_after().is_some() {
        "ready"
    } else {
        "starting"
    };
    json!({
        "ok": true,
        "protocol": PROTOCOL_VERSION,
        "state": state,
        "app": info.app,
        "mem_mib": info.mem_mib,
        "listen": info.listen,
        "pid": std::process::id(),
        "uptime_ms": shared.started.elapsed().as_millis() as u64,
        "ready_after_ms": shared.ready_after().map(|d| d.as_secs_f64() * 1e3),
        "first_byte_ms": shared.first_byte_after().map(|d| d.as_secs_f64() * 1e3),
        "memory": info.mem.as_ref().map(|m| {
            let pages = m.size() / guest_abi::PAGE_SIZE;
            json!({"pages": pages, "free_pages": crate::memory::count_free_pages(m)})
        }),
        "paging": info.pager.as_ref().map(|p| p.report()),
        "stats": {
            "exits": s.exits.load(Ordering::Relaxed),
            "hypercalls": s.hypercalls.load(Ordering::Relaxed),
            "waits": s.waits.load(Ordering::Relaxed),
            "sqes": s.sqes.load(Ordering::Relaxed),
            "cqes": s.cqes.load(Ordering::Relaxed),
            "accepted": s.accepted.load(Ordering::Relaxed),
            "connected": s.connected.load(Ordering::Relaxed),
            "bytes_in": s.bytes_in.load(Ordering::Relaxed),
            "bytes_out": s.bytes_out.load(Ordering::Relaxed),
        },
    })
}
