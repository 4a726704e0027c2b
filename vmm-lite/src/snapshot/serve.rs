//! `twinkle images serve`: an image server for several hosts. Plain HTTP/1.1
//! with keep-alive and `Range: bytes=A-B` (what page-at-a-time restores ask
//! for), plus `GET PATH?len` for a file's length. An optional emulated link
//! adds a round-trip time per request and limits bandwidth, to reproduce the
//! paper's remote page faults on one machine.
//!
//! Only files below the served directory are reachable: path components are
//! plain names (letters, digits, `.`, `-`, `_`), never `..`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An emulated network link.
#[derive(Clone, Copy, Debug, Default)]
pub struct Link {
    /// Bits per second (0: unlimited).
    pub bandwidth_bps: u64,
    /// Added to every request.
    pub rtt: Duration,
}

impl Link {
    fn delay(&self, bytes: u64) {
        let mut d = self.rtt;
        if self.bandwidth_bps > 0 {
            d += Duration::from_secs_f64(bytes as f64 * 8.0 / self.bandwidth_bps as f64);
        }
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

/// Serves `dir` on `listener` until the process ends.
pub fn serve(dir: PathBuf, listener: TcpListener, link: Link) -> std::io::Result<()> {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let dir = dir.clone();
        std::thread::Builder::new().name("image-client".into()).spawn(move || {
            let _ = client(&dir, conn, link);
        })?;
    }
    Ok(())
}

/// Binds `addr`; returns the listener and its address.
pub fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr)?;
    let a = l.local_addr()?;
    Ok((l, a))
}

fn resolve(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for part in path.trim_start_matches('/').split('/') {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !ok {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

fn respond(w: &mut TcpStream, status: &str, body: &[u8], extra: &str) -> std::io::Result<()> {
    write!(w, "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n", body.len())?;
    w.write_all(body)
}

fn client(dir: &Path, conn: TcpStream, link: Link) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut range: Option<(u64, u64)> = None;
        let mut head_bytes = line.len();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            head_bytes += h.len();
            if head_bytes > 16 * 1024 {
                return respond(&mut w, "431 Request Header Fields Too Large", b"", "Connection: close\r\n");
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("range") {
                    range = v.trim().strip_prefix("bytes=").and_then(|spec| {
                        let (a, b) = spec.split_once('-')?;
                        Some((a.parse().ok()?, b.parse().ok()?))
                    });
                }
            }
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method != "GET" {
            respond(&mut w, "405 Method Not Allowed", b"only GET\n", "")?;
            continue;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some(file) = resolve(dir, path) else {
            respond(&mut w, "404 Not Found", b"no such image file\n", "")?;
            continue;
        };
        let Ok(f) = File::open(&file) else {
            respond(&mut w, "404 Not Found", b"no such image file\n", "")?;
            continue;
        };
        let len = f.metadata()?.len();
        link.delay(0);
        if query == "len" {
            respond(&mut w, "200 OK", format!("{len}\n").as_bytes(), "")?;
            continue;
        }
        match range {
            Some((a, b)) if a <= b && b < len && b - a < (64 << 20) => {
                let mut buf = vec![0u8; (b - a + 1) as usize];
                f.read_exact_at(&mut buf, a)?;
                link.delay(buf.len() as u64);
                respond(&mut w, "206 Partial Content", &buf, &format!("Content-Range: bytes {a}-{b}/{len}\r\n"))?;
            }
            Some(_) => respond(&mut w, "416 Range Not Satisfiable", b"", &format!("Content-Range: bytes */{len}\r\n"))?,
            None => {
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
                let mut f = f;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    link.delay(n as u64);
                    w.write_all(&buf[..n])?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::Path;

    #[test]
    fn paths_stay_inside_the_directory() {
        let d = Path::new("/srv/images");
        assert_eq!(resolve(d, "/hello/memory.bin"), Some(d.join("hello/memory.bin")));
        assert_eq!(resolve(d, "/../etc/passwd"), None);
        assert_eq!(resolve(d, "/hello/../../x"), None);
        assert_eq!(resolve(d, "/a//b"), None);
        assert_eq!(resolve(d, "/a b"), None);
        assert_eq!(resolve(d, "/"), None);
    }
}
