//! Helpers shared by the integration tests: real VMs, the huge-page pool,
//! a real HTTP server. Each test binary uses some of them.

#![allow(dead_code)]

use std::io::{BufRead, Read, Write};

/// Fails the test, saying why, when /dev/kvm cannot be used: these tests never skip.
pub fn require_kvm() {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        panic!("these tests start real KVM virtual machines and need /dev/kvm, which cannot be opened here: {e}");
    }
}

/// Fails the test, saying how to fix it, when the host's pool of 2 MiB huge
/// pages has fewer than `pages` free (make test reserves them as root).
pub fn require_huge_pages(pages: u64) {
    let pool = vmm_lite::memory::HugePool::read();
    if pool.available() < pages {
        panic!(
            "this test restores VMs into the host's huge-page pool and needs {pages} free 2 MiB pages; the pool has {} \
             (run as root: `twinkle host prepare --huge-pages 256`; `make test` does it)",
            pool.available()
        );
    }
}

/// A tiny keep-alive HTTP server on threads that answers every request
/// with "port N" (N: its port).
pub fn http_server() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
                let mut w = s;
                loop {
                    let mut line = String::new();
                    let mut len = 0usize;
                    // Request line and headers.
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let msg = format!("port {}", addr.port());
                    let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{msg}", msg.len());
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A redis-server of our own on a free port, stopped when dropped.
pub struct Redis {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Starts redis-server on a free port; fails saying how to install it when missing.
pub fn redis_server() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("these tests need redis-server (make deps installs it: apt-get install redis-server): {e}")
        });
    let server = Redis { child, port };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {port} within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server
}

/// One HTTP/1.1 request on a new connection; the status and the body.
pub fn http_get(addr: std::net::SocketAddr, target: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    write!(s, "GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}
