//! Where images come from: a local directory, or an image server over HTTP
//! (`twinkle images serve`, ranged GETs), behind one trait so that an object
//! store can be added without touching the restore code.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::format::SnapshotError;

/// Random access to an image's memory file.
pub trait MemorySource: Send + Sync {
    /// The file's size in bytes.
    fn size(&self) -> Result<u64, SnapshotError>;
    /// Fills `buf` from `offset`; a short file is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), SnapshotError>;
    /// The name used in messages (a path or URL).
    fn name(&self) -> PathBuf;
}

/// An image's files.
pub trait ImageStore: Send + Sync {
    /// A whole (small) file, or `None` if the image has no such file.
    fn fetch(&self, file: &str) -> Result<Option<Vec<u8>>, SnapshotError>;
    /// The memory file.
    fn memory(&self) -> Result<Box<dyn MemorySource>, SnapshotError>;
    /// The name of `file` in messages.
    fn name(&self, file: &str) -> PathBuf;
    /// The local directory, if the image is local (the `mmap` strategy needs one).
    fn local_dir(&self) -> Option<&Path>;
}

/// Opens `spec`: `http://HOST:PORT/PATH` or a local directory.
pub fn open_store(spec: &str) -> Result<Box<dyn ImageStore>, SnapshotError> {
    if let Some(rest) = spec.strip_prefix("http://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(SnapshotError::Mismatch { file: spec.into(), problem: "the URL names no host".into() });
        }
        return Ok(Box::new(HttpStore { host: host.to_string(), prefix: format!("/{}", path.trim_end_matches('/')) }));
    }
    if spec.contains("://") {
        return Err(SnapshotError::Mismatch {
            file: spec.into(),
            problem: "unsupported image address; use a directory or http://HOST:PORT/PATH".into(),
        });
    }
    Ok(Box::new(LocalStore { dir: PathBuf::from(spec) }))
}

/// An image in a local directory.
pub struct LocalStore {
    dir: PathBuf,
}

struct LocalFile {
    file: File,
    path: PathBuf,
}

impl MemorySource for LocalFile {
    fn size(&self) -> Result<u64, SnapshotError> {
        self.file.metadata().map(|m| m.len()).map_err(|source| SnapshotError::Io { file: self.path.clone(), source })
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), SnapshotError> {
        super::format::read_exact_at(&self.file, &self.path, buf, offset)
    }

    fn name(&self) -> PathBuf {
        self.path.clone()
    }
}

impl ImageStore for LocalStore {
    fn fetch(&self, file: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        let path = self.dir.join(file);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file != super::STATE_FILE => Ok(None),
            Err(source) => Err(SnapshotError::Io { file: path, source }),
        }
    }

    fn memory(&self) -> Result<Box<dyn MemorySource>, SnapshotError> {
        let path = self.dir.join(super::MEMORY_FILE);
        let file = File::open(&path).map_err(|source| SnapshotError::Io { file: path.clone(), source })?;
        Ok(Box::new(LocalFile { file, path }))
    }

    fn name(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}

/// An image on an image server (`twinkle images serve`).
pub struct HttpStore {
    host: String,
    prefix: String,
}

/// One keep-alive connection to the image server, reopened when it breaks.
struct HttpFile {
    host: String,
    path: String,
    conn: Mutex<Option<BufReader<TcpStream>>>,
}

fn http_err(url: &str, problem: String) -> SnapshotError {
    SnapshotError::Io { file: url.into(), source: std::io::Error::other(problem) }
}

impl HttpFile {
    fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }

    /// GET, optionally a byte range; returns (status, body). One retry on a
    /// connection the server closed meanwhile.
    fn get(&self, range: Option<(u64, u64)>) -> Result<(u16, Vec<u8>), SnapshotError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard.is_none() {
                let s = TcpStream::connect(&self.host)
                    .map_err(|e| http_err(&self.url(), format!("cannot connect: {e}")))?;
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                *guard = Some(BufReader::new(s));
            }
            let Some(conn) = guard.as_mut() else { continue };
            match request(conn, &self.host, &self.path, range) {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    tracing::debug!("image server connection lost ({e}); reconnecting");
                    *guard = None;
                }
                Err(e) => return Err(http_err(&self.url(), e.to_string())),
            }
        }
        Err(http_err(&self.url(), "no connection".into()))
    }
}

fn request(
    conn: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
    range: Option<(u64, u64)>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some((a, b)) = range {
        req.push_str(&format!("Range: bytes={a}-{b}\r\n"));
    }
    req.push_str("\r\n");
    conn.get_mut().write_all(req.as_bytes())?;
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len: Option<u64> = None;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    let len = len.ok_or_else(|| std::io::Error::other("response without Content-Length"))?;
    // Nothing we ask for is larger than a state file (sections are capped at
    // 64 MiB); a bigger answer is refused before anything is allocated.
    if len > super::format::MAX_SECTION * 4 {
        return Err(std::io::Error::other(format!("response of {len} bytes is too large")));
    }
    let mut body = vec![0u8; len as usize];
    conn.read_exact(&mut body)?;
    Ok((status, body))
}

impl MemorySource for HttpFile {
    fn size(&self) -> Result<u64, SnapshotError> {
        let (status, body) = self.get_len()?;
        if status != 200 {
            return Err(http_err(&self.url(), format!("length query got {status}")));
        }
        String::from_utf8_lossy(&body).trim().parse().map_err(|_| http_err(&self.url(), "bad length answer".into()))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), SnapshotError> {
        if buf.is_empty() {
            return Ok(());
        }
        let (status, body) = self.get(Some((offset, offset + buf.len() as u64 - 1)))?;
        if status != 206 || body.len() != buf.len() {
            return Err(SnapshotError::Corrupt {
                file: self.url().into(),
                section: "memory".into(),
                problem: format!(
                    "range at {offset:#x}: status {status}, {} of {} bytes: truncated?",
                    body.len(),
                    buf.len()
                ),
            });
        }
        buf.copy_from_slice(&body);
        Ok(())
    }

    fn name(&self) -> PathBuf {
        self.url().into()
    }
}

impl HttpFile {
    /// The server answers `GET PATH?len` with the file's length (plain text).
    fn get_len(&self) -> Result<(u16, Vec<u8>), SnapshotError> {
        let f = HttpFile { host: self.host.clone(), path: format!("{}?len", self.path), conn: Mutex::new(None) };
        f.get(None)
    }
}

impl ImageStore for HttpStore {
    fn fetch(&self, file: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        let f = HttpFile { host: self.host.clone(), path: format!("{}/{file}", self.prefix), conn: Mutex::new(None) };
        match f.get(None)? {
            (200, body) => Ok(Some(body)),
            (404, _) if file != super::STATE_FILE => Ok(None),
            (status, _) => Err(http_err(&f.url(), format!("GET answered {status}"))),
        }
    }

    fn memory(&self) -> Result<Box<dyn MemorySource>, SnapshotError> {
        Ok(Box::new(HttpFile {
            host: self.host.clone(),
            path: format!("{}/{}", self.prefix, super::MEMORY_FILE),
            conn: Mutex::new(None),
        }))
    }

    fn name(&self, file: &str) -> PathBuf {
        format!("http://{}{}/{file}", self.host, self.prefix).into()
    }

    fn local_dir(&self) -> Option<&Path> {
        None
    }
}
