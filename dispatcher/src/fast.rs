//! The HTTP/1.1 fast path: plain HTTP/1.1 requests are proxied byte for
//! byte, with no intermediate request objects. The request head is parsed in
//! place (httparse), checked, and rewritten straight into the upstream
//! request (hop-by-hop headers out, X-Forwarded-For/-Proto and Via in); the
//! response head likewise; bodies are forwarded by their framing
//! (Content-Length, chunked, or until close) with one reused buffer per
//! connection. A request and its response are one task, one timer and no
//! hand-off between tasks, which is what lets a proxy keep up with the C
//! ones (docs/dispatcher.md has the measurements).
//!
//! Everything else on a connection (HTTP/1.0, HTTP/2, Upgrade, Expect,
//! CONNECT, more headers than the fast path's table) is handed to the hyper
//! engine ([`crate::proxy`]) together with the bytes already read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::hygiene::{idempotent_name, parse_length, HOP_BY_HOP, VIA};
use crate::pool::{Service, Upstream};
use crate::proxy::{hold, passive_failure, Worker};
use crate::stats::ErrorKind;
use httpwire::{push_num, ChunkScanner, Malformed};

/// Headers the fast path's parse table holds; a request with more goes to hyper.
const TABLE: usize = 128;
/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;
/// Request bodies up to this size are read whole first, so that a retry can
/// send them again; larger ones are streamed (and never retried once sent).
const BUFFER_LIMIT: u64 = 64 * 1024;

/// How a connection left the fast path.
pub enum Exit {
    /// It is over (closed, timed out, or answered with close).
    Closed,
    /// Its next request needs the hyper engine: these bytes were read and not used.
    Handoff(BytesMut),
}

/// Idle keep-alive connections to upstreams, per worker, by upstream id.
#[derive(Default)]
pub struct UpPool {
    idle: RefCell<HashMap<u64, Vec<TcpStream>>>,
}

/// Idle upstream connections kept per upstream per worker.
const MAX_IDLE: usize = 512;

impl UpPool {
    /// An idle connection that the upstream has not closed meanwhile.
    fn take(&self, id: u64) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&id)?;
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Some(s) = list.pop() {
            // Readable while idle means the upstream closed it (or sent
            // something unasked): either way it cannot carry a request.
            // Readiness comes from the event loop: no system call.
            if s.poll_read_ready(&mut cx).is_pending() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, id: u64, s: TcpStream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(id).or_default();
        if list.len() < MAX_IDLE {
            list.push(s);
        }
    }

    /// Drops the idle connections of upstreams not in `keep`.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        self.idle.borrow_mut().retain(|id, _| keep(*id));
    }
}

type Span = (usize, usize);

/// A parsed head: spans into the buffer it was parsed from.
struct Head {
    /// Request: method; response: unused.
    method: Span,
    /// Request: target; response: reason phrase.
    target: Span,
    /// Response status code.
    code: u16,
    /// HTTP/1.x minor version.
    minor: u8,
    /// Header name and value spans.
    headers: Vec<(Span, Span)>,
    /// Length of the head in bytes.
    len: usize,
}

enum Parsed {
    Complete,
    Partial,
    TooMany,
    Bad,
}

fn span(buf: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    (start, start + part.len())
}

/// Keeps a complete head's version, headers and length as spans into `buf`.
fn complete(buf: &[u8], head: &mut Head, minor: Option<u8>, headers: &[httparse::Header<'_>], len: usize) -> Parsed {
    head.minor = minor.unwrap_or(0);
    head.headers.clear();
    for h in headers {
        head.headers.push((span(buf, h.name.as_bytes()), span(buf, h.value)));
    }
    head.len = len;
    Parsed::Complete
}

/// What a parse that did not complete means.
fn incomplete(r: Result<httparse::Status<usize>, httparse::Error>) -> Parsed {
    match r {
        Ok(_) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::TooMany,
        Err(_) => Parsed::Bad,
    }
}

fn parse_request(buf: &[u8], max: usize, head: &mut Head) -> Parsed {
    let mut table = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; TABLE];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut table[..max.clamp(1, TABLE)]) {
        Ok(httparse::Status::Complete(n)) => {
            head.method = span(buf, req.method.unwrap_or("").as_bytes());
            head.target = span(buf, req.path.unwrap_or("").as_bytes());
            complete(buf, head, req.version, req.headers, n)
        }
        other => incomplete(other),
    }
}

fn parse_response(buf: &[u8], head: &mut Head) -> Parsed {
    let mut table = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; TABLE];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut table) {
        Ok(httparse::Status::Complete(n)) => {
            head.code = resp.code.unwrap_or(0);
            head.target = span(buf, resp.reason.unwrap_or("").as_bytes());
            complete(buf, head, resp.version, resp.headers, n)
        }
        other => incomplete(other),
    }
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

fn is(name: &[u8], lower: &[u8]) -> bool {
    name.eq_ignore_ascii_case(lower)
}

/// Headers not copied to the next hop: the hop-by-hop ones, and the framing
/// and forwarding headers the proxy writes itself.
fn dropped(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|d| is(name, d.as_bytes()))
        || is(name, b"content-length")
        || is(name, b"x-forwarded-proto")
        || is(name, b"x-forwarded-for")
}

/// Connection header tokens: whether one is `close`, and whether any other
/// names a header (which is then hop-by-hop too).
fn connection_tokens(v: &[u8]) -> (bool, bool) {
    let mut close = false;
    let mut names = false;
    for t in v.split(|b| *b == b',') {
        let t = t.trim_ascii();
        if is(t, b"close") {
            close = true;
        } else if !t.is_empty() && !is(t, b"keep-alive") {
            names = true;
        }
    }
    (close, names)
}

fn named_in_connection(buf: &[u8], head: &Head, name: &[u8]) -> bool {
    head.headers
        .iter()
        .filter(|(n, _)| is(&buf[n.0..n.1], b"connection"))
        .any(|(_, v)| buf[v.0..v.1].split(|b| *b == b',').any(|t| is(t.trim_ascii(), name)))
}

/// What the fast path needs to know about a request.
struct Request {
    framing: Framing,
    close: bool,
    host: Span,
    idempotent: bool,
    head_method: bool,
    /// Some header is named in Connection (so it must not be forwarded).
    conn_names: bool,
}

/// A request the fast path answers itself.
struct Refuse {
    status: u16,
    reason: &'static str,
    msg: &'static str,
}

fn refuse(status: u16, reason: &'static str, msg: &'static str) -> Result<Option<Request>, Refuse> {
    Err(Refuse { status, reason, msg })
}

/// Classifies a parsed request: `Ok(None)` means hand it to hyper.
fn classify(buf: &[u8], h: &Head, max_body: u64) -> Result<Option<Request>, Refuse> {
    let method = &buf[h.method.0..h.method.1];
    if h.minor != 1 || method == b"CONNECT" || method == b"PRI" {
        return Ok(None);
    }
    let (mut te, mut cl, mut close, mut conn_names) = (None, None, false, false);
    let mut host = None;
    for (n, v) in &h.headers {
        let (name, value) = (&buf[n.0..n.1], &buf[v.0..v.1]);
        if is(name, b"transfer-encoding") {
            if te.is_some() {
                return refuse(400, "Bad Request", "more than one Transfer-Encoding header\n");
            }
            te = Some(value);
        } else if is(name, b"content-length") {
            let Some(len) = parse_length(value.trim_ascii()) else {
                return refuse(400, "Bad Request", "Content-Length is not a number\n");
            };
            if cl.is_some_and(|c| c != len) {
                return refuse(400, "Bad Request", "conflicting Content-Length headers\n");
            }
            cl = Some(len);
        } else if is(name, b"connection") {
            let (c, names) = connection_tokens(value);
            close |= c;
            conn_names |= names;
        } else if is(name, b"host") {
            if host.is_some() {
                return refuse(400, "Bad Request", "more than one Host header\n");
            }
            host = Some(*v);
        } else if is(name, b"upgrade") || is(name, b"expect") {
            return Ok(None);
        }
    }
    let Some(host) = host else {
        return refuse(400, "Bad Request", "HTTP/1.1 requests need a Host header\n");
    };
    let framing = match (te, cl) {
        (Some(_), Some(_)) => {
            return refuse(400, "Bad Request", "both Transfer-Encoding and Content-Length: ambiguous framing\n")
        }
        (Some(t), None) => {
            if !is(t.trim_ascii(), b"chunked") {
                return refuse(400, "Bad Request", "Transfer-Encoding other than chunked\n");
            }
            Framing::Chunked
        }
        (None, Some(n)) if n > max_body => {
            return refuse(413, "Payload Too Large", "request body larger than the limit\n")
        }
        (None, Some(0)) | (None, None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
    };
    let idempotent = idempotent_name(method);
    Ok(Some(Request { framing, close, host, idempotent, head_method: method == b"HEAD", conn_names }))
}

/// Why forwarding a body stopped.
#[derive(Debug)]
enum PumpError {
    /// The side we read from closed, reset or timed out.
    Source,
    /// The side we write to failed.
    Sink,
    /// Bad chunked framing.
    Malformed,
}

impl From<Malformed> for PumpError {
    fn from(_: Malformed) -> Self {
        PumpError::Malformed
    }
}

/// Reads more into `buf`, giving up at `sleep`'s deadline.
async fn fill(s: &mut TcpStream, buf: &mut BytesMut, sleep: &mut Pin<&mut Sleep>) -> Result<usize, PumpError> {
    buf.reserve(READ_CHUNK);
    tokio::select! {
        r = s.read_buf(buf) => r.map_err(|_| PumpError::Source),
        _ = sleep.as_mut() => Err(PumpError::Source),
    }
}

/// Forwards the body whose first bytes are `buf[at..]` from `src` to `dst`,
/// writing `prefix` (a head) together with the first body bytes. Bytes after
/// the body's end stay in `buf`; returns where they start.
#[allow(clippy::too_many_arguments)]
async fn forward_body(
    src: &mut TcpStream,
    buf: &mut BytesMut,
    at: usize,
    dst: &mut TcpStream,
    framing: Framing,
    prefix: &mut Vec<u8>,
    sleep: &mut Pin<&mut Sleep>,
    idle: Duration,
) -> Result<usize, PumpError> {
    let mut pos = at;
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut scanner = ChunkScanner::default();
    loop {
        let avail = &buf[pos..];
        let (take, finished) = match framing {
            Framing::None => (0, true),
            Framing::Length(_) => {
                let t = (left.min(avail.len() as u64)) as usize;
                left -= t as u64;
                (t, left == 0)
            }
            Framing::Chunked => {
                let t = scanner.advance(avail)?;
                (t, scanner.done())
            }
            Framing::Close => (avail.len(), false),
        };
        if take > 0 || (finished && !prefix.is_empty()) {
            if prefix.is_empty() {
                dst.write_all(&buf[pos..pos + take]).await.map_err(|_| PumpError::Sink)?;
            } else {
                prefix.extend_from_slice(&buf[pos..pos + take]);
                dst.write_all(prefix).await.map_err(|_| PumpError::Sink)?;
                prefix.clear();
            }
            pos += take;
        }
        if finished {
            return Ok(pos);
        }
        if !prefix.is_empty() {
            // The head goes out before we wait for the body.
            dst.write_all(prefix).await.map_err(|_| PumpError::Sink)?;
            prefix.clear();
        }
        if pos == buf.len() {
            buf.clear();
            pos = 0;
        }
        sleep.as_mut().reset(tokio::time::Instant::now() + idle);
        if fill(src, buf, sleep).await? == 0 {
            return if framing == Framing::Close { Ok(pos) } else { Err(PumpError::Source) };
        }
    }
}

fn push_status(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes a response the proxy makes itself.
async fn local(s: &mut TcpStream, status: u16, reason: &str, msg: &str, close: bool, retry_after: bool) -> bool {
    let mut out = Vec::with_capacity(160 + msg.len());
    push_status(&mut out, status, reason);
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\nserver: twinkle\r\ncontent-length: ");
    push_num(&mut out, msg.len() as u64);
    out.extend_from_slice(b"\r\n");
    if retry_after {
        out.extend_from_slice(b"retry-after: 1\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg.as_bytes());
    s.write_all(&out).await.is_ok()
}

/// The request head as the upstream gets it.
fn upstream_head(out: &mut Vec<u8>, buf: &[u8], h: &Head, req: &Request, ip: &str) {
    out.clear();
    out.extend_from_slice(&buf[h.method.0..h.method.1]);
    out.push(b' ');
    out.extend_from_slice(&buf[h.target.0..h.target.1]);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut xff: Option<Span> = None;
    for (n, v) in &h.headers {
        let name = &buf[n.0..n.1];
        if dropped(name) {
            if is(name, b"x-forwarded-for") {
                xff = Some(*v);
            }
            continue;
        }
        if req.conn_names && named_in_connection(buf, h, name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&buf[v.0..v.1]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(v) = xff {
        out.extend_from_slice(&buf[v.0..v.1]);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\nvia: ");
    out.extend_from_slice(VIA.as_bytes());
    out.extend_from_slice(b"\r\n");
    match req.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_num(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// What the response head says about its body and the connection.
struct RespInfo {
    framing: Framing,
    /// The upstream connection cannot carry another request.
    upstream_close: bool,
    conn_names: bool,
}

fn response_info(buf: &[u8], h: &Head, head_method: bool) -> Result<RespInfo, &'static str> {
    let (mut te, mut cl, mut close, mut conn_names) = (None::<&[u8]>, None, h.minor == 0, false);
    for (n, v) in &h.headers {
        let (name, value) = (&buf[n.0..n.1], &buf[v.0..v.1]);
        if is(name, b"transfer-encoding") {
            te = Some(value);
        } else if is(name, b"content-length") {
            let len = parse_length(value.trim_ascii()).ok_or("the upstream sent a bad Content-Length")?;
            if cl.is_some_and(|c| c != len) {
                return Err("the upstream sent conflicting Content-Length headers");
            }
            cl = Some(len);
        } else if is(name, b"connection") {
            let (c, names) = connection_tokens(value);
            close |= c;
            conn_names |= names;
        }
    }
    let framing = if head_method || h.code == 204 || h.code == 304 || (100..200).contains(&h.code) {
        Framing::None
    } else if let Some(t) = te {
        let last = t.rsplit(|b| *b == b',').next().unwrap_or(b"").trim_ascii();
        if is(last, b"chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(n) = cl {
        if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::Close
    };
    Ok(RespInfo { framing, upstream_close: close || framing == Framing::Close, conn_names })
}

/// The response head as the client gets it.
fn client_head(out: &mut Vec<u8>, buf: &[u8], h: &Head, info: &RespInfo, close: bool) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, u64::from(h.code));
    out.push(b' ');
    out.extend_from_slice(&buf[h.target.0..h.target.1]);
    out.extend_from_slice(b"\r\n");
    for (n, v) in &h.headers {
        let name = &buf[n.0..n.1];
        if dropped(name) && !is(name, b"x-forwarded-for") && !is(name, b"x-forwarded-proto") {
            continue;
        }
        if info.conn_names && named_in_connection(buf, h, name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&buf[v.0..v.1]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"via: ");
    out.extend_from_slice(VIA.as_bytes());
    out.extend_from_slice(b"\r\n");
    match info.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_num(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None if !(100..200).contains(&h.code) && h.code != 204 && h.code != 304 => {
            // HEAD: keep the length the upstream announced.
            if let Some((_, v)) = h.headers.iter().find(|(n, _)| is(&buf[n.0..n.1], b"content-length")) {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(&buf[v.0..v.1]);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        _ => {}
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Why an attempt failed.
enum Failure {
    Connect(String),
    /// The connection failed after (part of) the request went out.
    Reset,
    Timeout,
    /// The upstream's response could not be understood.
    Protocol(&'static str),
}

/// Buffers a connection reuses for every request.
struct Bufs {
    up: BytesMut,
    out: Vec<u8>,
    resp: Head,
}

/// Serves HTTP/1.1 requests on `s` until the client leaves, the connection
/// idles out, shutdown, or a request that needs the hyper engine.
pub async fn serve(w: &Rc<Worker>, s: &mut TcpStream, peer: SocketAddr, shutdown: &mut watch::Receiver<bool>) -> Exit {
    let cfg = &w.shared.cfg;
    let t = &cfg.timeouts;
    let ip = peer.ip().to_string();
    let mut cbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut req_head =
        Head { method: (0, 0), target: (0, 0), code: 0, minor: 1, headers: Vec::with_capacity(32), len: 0 };
    let mut bufs = Bufs {
        up: BytesMut::with_capacity(READ_CHUNK),
        out: Vec::with_capacity(4096),
        resp: Head { method: (0, 0), target: (0, 0), code: 0, minor: 1, headers: Vec::with_capacity(32), len: 0 },
    };
    let sleep = tokio::time::sleep(t.client_idle);
    tokio::pin!(sleep);
    loop {
        // A request head: idle time before its first byte, header time after.
        sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + if cbuf.is_empty() { t.client_idle } else { t.client_header });
        let mut started = !cbuf.is_empty();
        loop {
            if !cbuf.is_empty() {
                match parse_request(&cbuf, cfg.limits.max_headers, &mut req_head) {
                    Parsed::Complete => break,
                    Parsed::Partial => {}
                    Parsed::TooMany if cfg.limits.max_headers > TABLE => return Exit::Handoff(cbuf),
                    Parsed::TooMany => {
                        local(s, 431, "Request Header Fields Too Large", "too many request headers\n", true, false)
                            .await;
                        return Exit::Closed;
                    }
                    Parsed::Bad => {
                        if cbuf.starts_with(b"PRI ") || cbuf.starts_with(b"PRI") && cbuf.len() < 4 {
                            return Exit::Handoff(cbuf);
                        }
                        local(s, 400, "Bad Request", "malformed request\n", true, false).await;
                        return Exit::Closed;
                    }
                }
                if cbuf.len() > cfg.limits.max_header_bytes {
                    local(
                        s,
                        431,
                        "Request Header Fields Too Large",
                        "request head larger than the limit\n",
                        true,
                        false,
                    )
                    .await;
                    return Exit::Closed;
                }
                if !started {
                    started = true;
                    sleep.as_mut().reset(tokio::time::Instant::now() + t.client_header);
                }
            }
            if cbuf.is_empty() && *shutdown.borrow() {
                return Exit::Closed;
            }
            cbuf.reserve(READ_CHUNK);
            tokio::select! {
                r = s.read_buf(&mut cbuf) => match r {
                    Ok(0) | Err(_) => return Exit::Closed,
                    Ok(_) => {}
                },
                _ = sleep.as_mut() => {
                    if started {
                        local(s, 408, "Request Timeout", "the request head did not arrive in time\n", true, false).await;
                    }
                    return Exit::Closed;
                }
                _ = shutdown.changed(), if !started => return Exit::Closed,
            }
        }
        let t0 = Instant::now();
        let req = match classify(&cbuf, &req_head, cfg.limits.max_body_bytes) {
            Ok(Some(r)) => r,
            Ok(None) => return Exit::Handoff(cbuf),
            Err(r) => {
                local(s, r.status, r.reason, r.msg, true, false).await;
                return Exit::Closed;
            }
        };
        let host = std::str::from_utf8(&cbuf[req.host.0..req.host.1]).unwrap_or("");
        let path = std::str::from_utf8(&cbuf[req_head.target.0..req_head.target.1]).unwrap_or("/");
        let path = path.split('?').next().unwrap_or("/");
        let Some(si) = w.shared.route(host, path) else {
            w.shared.unrouted.fetch_add(1, Ordering::Relaxed);
            let msg = format!("no service takes host {host:?} path {path:?}\n");
            let consumed = req_head.len;
            // A body we will not read leaves the connection out of step: close it.
            let close = req.close || req.framing != Framing::None;
            if !local(s, 404, "Not Found", &msg, close, false).await || close {
                return Exit::Closed;
            }
            cbuf.advance(consumed);
            continue;
        };
        let svc = std::sync::Arc::clone(&w.shared.services[si]);
        svc.inflight.fetch_add(1, Ordering::Relaxed);
        svc.earn_retry();
        let r = proxy_one(w, &svc, s, &mut cbuf, &req_head, &req, &ip, &mut bufs, &mut sleep).await;
        svc.inflight.fetch_sub(1, Ordering::Relaxed);
        w.rec.service(si, t0.elapsed(), r.status, r.error);
        match r.next {
            Next::Continue(consumed) if !req.close && !*shutdown.borrow() => cbuf.advance(consumed),
            _ => return Exit::Closed,
        }
    }
}

/// After one request: go on with the bytes after it, or close.
enum Next {
    Continue(usize),
    Close,
}

struct Done {
    status: u16,
    error: Option<ErrorKind>,
    next: Next,
}

fn done(status: u16, error: Option<ErrorKind>, next: Next) -> Done {
    Done { status, error, next }
}

#[allow(clippy::too_many_arguments)]
async fn proxy_one(
    w: &Worker,
    svc: &Service,
    s: &mut TcpStream,
    cbuf: &mut BytesMut,
    h: &Head,
    req: &Request,
    ip: &str,
    bufs: &mut Bufs,
    sleep: &mut Pin<&mut Sleep>,
) -> Done {
    let t = &w.shared.cfg.timeouts;
    // A small body is read whole first: it can then be sent again.
    let body_len = match req.framing {
        Framing::Length(n) if n <= BUFFER_LIMIT => {
            let need = h.len + n as usize;
            sleep.as_mut().reset(tokio::time::Instant::now() + t.client_header);
            while cbuf.len() < need {
                match fill(s, cbuf, sleep).await {
                    Ok(0) | Err(_) => return done(400, Some(ErrorKind::BadRequest), Next::Close),
                    Ok(_) => {}
                }
            }
            Some(n as usize)
        }
        Framing::None => Some(0),
        _ => None,
    };
    let replayable = body_len.is_some();
    let safe = req.idempotent && replayable;
    let mut attempts_left = svc.cfg.retry.attempts;
    // Upstreams tried so far (the first few: retries beyond that may repeat one).
    let mut tried = [0u64; 8];
    let mut ntried = 0usize;
    let mut streamed = false;
    loop {
        let up = match svc.pick(&tried[..ntried]) {
            Some(u) => u,
            None => match hold(svc).await {
                Some(u) => u,
                None => {
                    let msg = format!(
                        "service {} has no ready upstream (waited up to {:?})\n",
                        svc.cfg.name, svc.cfg.hold.max_wait.0
                    );
                    let ok = local(s, 503, "Service Unavailable", &msg, false, true).await;
                    return done(503, Some(ErrorKind::NoUpstream), after_local(ok, req, h, body_len));
                }
            },
        };
        if ntried < tried.len() {
            tried[ntried] = up.id;
            ntried += 1;
        }
        let t1 = Instant::now();
        up.inflight.fetch_add(1, Ordering::Relaxed);
        let res = attempt(w, svc, attempts_left, &up, s, cbuf, h, req, ip, body_len, bufs, sleep, &mut streamed).await;
        up.inflight.fetch_sub(1, Ordering::Relaxed);
        match res {
            Ok(result) => {
                w.rec.upstream(up.id, t1.elapsed(), result.status, None);
                if result.status >= 500 {
                    passive_failure(svc, &up);
                } else {
                    up.success();
                }
                return result.done;
            }
            Err(Attempt::RetryStatus(status)) => {
                // The upstream answered a status the policy retries, and the
                // budget allowed it (checked in `attempt`).
                w.rec.upstream(up.id, t1.elapsed(), status, None);
                passive_failure(svc, &up);
                attempts_left = attempts_left.saturating_sub(1);
                continue;
            }
            Err(Attempt::Failed(f)) => {
                let (code, kind, reason) = match &f {
                    Failure::Timeout => (504, ErrorKind::Timeout, "Gateway Timeout"),
                    Failure::Connect(_) => (502, ErrorKind::Connect, "Bad Gateway"),
                    _ => (502, ErrorKind::Reset, "Bad Gateway"),
                };
                w.rec.upstream(up.id, t1.elapsed(), code, Some(kind));
                passive_failure(svc, &up);
                // A streamed body that went out cannot be sent again.
                if svc.retry_failure(kind, safe, !streamed, attempts_left) {
                    attempts_left -= 1;
                    continue;
                }
                let msg = match &f {
                    Failure::Connect(e) => format!("upstream unreachable: {e}\n"),
                    Failure::Reset => format!("upstream {} closed the connection before a whole response\n", up.addr),
                    Failure::Timeout => {
                        format!("upstream {} did not answer within {:?}\n", up.addr, t.upstream_response)
                    }
                    Failure::Protocol(p) => format!("upstream {}: {p}\n", up.addr),
                };
                // A streamed body may be half read: the connection cannot go on.
                let ok = local(s, code, reason, &msg, streamed, false).await;
                let next = if streamed { Next::Close } else { after_local(ok, req, h, body_len) };
                return done(code, Some(kind), next);
            }
            Err(Attempt::ClientGone) => return done(499, None, Next::Close),
        }
    }
}

/// Where the connection goes after a local answer to a request whose body was read.
fn after_local(ok: bool, req: &Request, h: &Head, body_len: Option<usize>) -> Next {
    match body_len {
        Some(n) if ok && !req.close => Next::Continue(h.len + n),
        _ => Next::Close,
    }
}

enum Attempt {
    Failed(Failure),
    RetryStatus(u16),
    ClientGone,
}

struct Answered {
    status: u16,
    done: Done,
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    w: &Worker,
    svc: &Service,
    attempts_left: u32,
    up: &Upstream,
    s: &mut TcpStream,
    cbuf: &mut BytesMut,
    h: &Head,
    req: &Request,
    ip: &str,
    body_len: Option<usize>,
    bufs: &mut Bufs,
    sleep: &mut Pin<&mut Sleep>,
    streamed: &mut bool,
) -> Result<Answered, Attempt> {
    let t = &w.shared.cfg.timeouts;
    let mut pooled = w.up.take(up.id);
    let mut fresh_tries = 0;
    loop {
        let reused = pooled.is_some();
        let mut u = match pooled.take() {
            Some(c) => c,
            None => match tokio::time::timeout(t.upstream_connect, TcpStream::connect(up.addr)).await {
                Ok(Ok(c)) => {
                    let _ = c.set_nodelay(true);
                    c
                }
                Ok(Err(e)) => {
                    return Err(Attempt::Failed(Failure::Connect(format!("cannot connect to {}: {e}", up.addr))))
                }
                Err(_) => {
                    return Err(Attempt::Failed(Failure::Connect(format!(
                        "connecting to {} took longer than {:?}",
                        up.addr, t.upstream_connect
                    ))))
                }
            },
        };
        // Request head, with a small body in the same write.
        upstream_head(&mut bufs.out, cbuf, h, req, ip);
        let mut consumed = h.len;
        let sent = match body_len {
            Some(n) => {
                bufs.out.extend_from_slice(&cbuf[h.len..h.len + n]);
                consumed += n;
                u.write_all(&bufs.out).await.is_ok()
            }
            None => {
                *streamed = true;
                let mut prefix = std::mem::take(&mut bufs.out);
                let r = forward_body(s, cbuf, h.len, &mut u, req.framing, &mut prefix, sleep, t.client_idle).await;
                bufs.out = prefix;
                match r {
                    Ok(end) => {
                        consumed = end;
                        true
                    }
                    Err(PumpError::Sink) => false,
                    Err(_) => return Err(Attempt::ClientGone),
                }
            }
        };
        // The response head.
        bufs.up.clear();
        sleep.as_mut().reset(tokio::time::Instant::now() + t.upstream_response);
        let got_head = if sent { read_response_head(&mut u, bufs, req, sleep).await } else { Err(Failure::Reset) };
        let info = match got_head {
            Ok(info) => info,
            Err(Failure::Reset) if reused && bufs.up.is_empty() && !*streamed && fresh_tries == 0 && req.idempotent => {
                // The upstream closed this idle connection as we reused it:
                // nothing was answered; a fresh connection gets the request.
                fresh_tries += 1;
                continue;
            }
            Err(f) => return Err(Attempt::Failed(f)),
        };
        let status = bufs.resp.code;
        if svc.retry_status(status, req.idempotent && body_len.is_some(), attempts_left) {
            // The answer is dropped with its connection.
            return Err(Attempt::RetryStatus(status));
        }
        // Answer the client: head and what body is here, in one write.
        let closing = req.close || info.framing == Framing::Close;
        client_head(&mut bufs.out, &bufs.up, &bufs.resp, &info, closing);
        let body_at = bufs.resp.len;
        let mut prefix = std::mem::take(&mut bufs.out);
        let r =
            forward_body(&mut u, &mut bufs.up, body_at, s, info.framing, &mut prefix, sleep, t.upstream_response).await;
        bufs.out = prefix;
        let next = match r {
            Ok(end) => {
                if !info.upstream_close && end == bufs.up.len() {
                    w.up.put(up.id, u);
                }
                if closing {
                    Next::Close
                } else {
                    Next::Continue(consumed)
                }
            }
            // The client went away, or the upstream broke off mid-body: the
            // client connection cannot be trusted to be in sync any more.
            Err(_) => Next::Close,
        };
        return Ok(Answered { status, done: done(status, None, next) });
    }
}

/// Reads the upstream's response head (forwarding no 1xx but the final one).
async fn read_response_head(
    u: &mut TcpStream,
    bufs: &mut Bufs,
    req: &Request,
    sleep: &mut Pin<&mut Sleep>,
) -> Result<RespInfo, Failure> {
    loop {
        if !bufs.up.is_empty() {
            match parse_response(&bufs.up, &mut bufs.resp) {
                Parsed::Complete => {
                    if (100..200).contains(&bufs.resp.code) {
                        // Interim responses (103 Early Hints and the like) are
                        // not forwarded; 101 cannot happen: Upgrade is never sent.
                        if bufs.resp.code == 101 {
                            return Err(Failure::Protocol("switched protocols without being asked"));
                        }
                        let n = bufs.resp.len;
                        bufs.up.advance(n);
                        continue;
                    }
                    return response_info(&bufs.up, &bufs.resp, req.head_method).map_err(Failure::Protocol);
                }
                Parsed::Partial => {}
                Parsed::TooMany | Parsed::Bad => return Err(Failure::Protocol("malformed response head")),
            }
        }
        bufs.up.reserve(READ_CHUNK);
        tokio::select! {
            r = u.read_buf(&mut bufs.up) => match r {
                Ok(0) | Err(_) => return Err(Failure::Reset),
                Ok(_) => {}
            },
            _ = sleep.as_mut() => return Err(Failure::Timeout),
        }
    }
}

/// A stream that first yields bytes already read from it: how a connection
/// moves from the fast path to hyper without losing what was read.
pub struct Rewind {
    pre: BytesMut,
    inner: TcpStream,
}

impl Rewind {
    /// `inner`, with `pre` to be read first.
    pub fn new(pre: BytesMut, inner: TcpStream) -> Rewind {
        Rewind { pre, inner }
    }
}

impl tokio::io::AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_into_spans_and_framing_is_classified() {
        let buf = b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close, x-secret\r\n\r\nabc";
        let mut h = Head { method: (0, 0), target: (0, 0), code: 0, minor: 0, headers: Vec::new(), len: 0 };
        assert!(matches!(parse_request(buf, 100, &mut h), Parsed::Complete));
        assert_eq!(&buf[h.method.0..h.method.1], b"POST");
        assert_eq!(&buf[h.target.0..h.target.1], b"/a?b");
        assert_eq!(h.len, buf.len() - 3);
        let r = classify(buf, &h, 1000).ok().flatten().expect("fast path");
        assert_eq!(r.framing, Framing::Length(3));
        assert!(r.close && r.conn_names && !r.idempotent);
        let mut out = Vec::new();
        upstream_head(&mut out, buf, &h, &r, "10.0.0.9");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("POST /a?b HTTP/1.1\r\nHost: x\r\n"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("connection"), "{text}");
        assert!(text.contains("x-forwarded-for: 10.0.0.9\r\n"), "{text}");
        assert!(text.ends_with("content-length: 3\r\n\r\n"), "{text}");
        let mut h = Head { method: (0, 0), target: (0, 0), code: 0, minor: 0, headers: Vec::new(), len: 0 };
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nHo", 100, &mut h), Parsed::Partial));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\n", 1, &mut h), Parsed::TooMany));
        let upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        assert!(matches!(parse_request(upgrade, 100, &mut h), Parsed::Complete));
        assert!(classify(upgrade, &h, 1000).ok().expect("valid").is_none(), "upgrades go to hyper");
    }
}
