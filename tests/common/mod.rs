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
