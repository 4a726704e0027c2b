//! A small HTTP/1.1 server for twinkle guests, on the stream-socket rings.
//!
//! Keep-alive and pipelining (requests on one connection are answered in
//! order), Content-Length bodies up to a limit, 400 for malformed requests,
//! 413 for bodies over the limit, 431 for oversized heads, 501 for chunked
//! request bodies. The application implements [`Handler`]; [`serve`] runs the
//! event loop. Completions whose `user` value does not carry [`OWNER_HTTP`]
//! are handed to the handler, so an application can run its own connections
//! (a Redis client, say) on the same rings.

#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt::Write;

use twinkle_rt::abi::{Cqe, Op};
use twinkle_rt::net::Net;

/// Tag in the top byte of `user` for the server's own operations.
pub const OWNER_HTTP: u64 = 0x48 << 56;

/// A parsed request.
pub struct Request<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target: path and query.
    pub target: &'a str,
    /// The headers.
    pub headers: &'a [httparse::Header<'a>],
    /// The body (Content-Length bytes).
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(self.target)
    }

    /// The value of query parameter `name`, undecoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// A response to send.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response { status, content_type, body }
    }

    /// A plain-text response.
    pub fn text(status: u16, text: &str) -> Self {
        Response::new(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
    }
}

/// The application.
pub trait Handler {
    /// Answers one request. `net` allows blocking calls to other services
    /// ([`Net::call`]) while answering.
    fn handle(&mut self, net: &mut Net, req: &Request<'_>) -> Response;
    /// A completion that is not the server's (its `user` lacks [`OWNER_HTTP`]).
    fn completion(&mut self, _net: &mut Net, _cqe: Cqe) {}
    /// A new batch of completions was taken from the rings and is about to
    /// be handled: every request handled until the next call arrived before
    /// this one. An app that reads shared state once per batch (rather than
    /// once per request) serves all of them fresh data.
    fn batch(&mut self, _net: &mut Net) {}
}

/// Server settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Largest request body accepted.
    pub max_body: usize,
    /// Largest request head (line + headers) accepted.
    pub max_head: usize,
    /// Receive buffer per connection.
    pub recv_buf: usize,
    /// Accept operations kept posted.
    pub accepts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_body: 1 << 20, max_head: 64 << 10, recv_buf: 16 << 10, accepts: 64 }
    }
}

struct Conn {
    rx: Box<[u8]>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sending: Option<Vec<u8>>,
    recv_posted: bool,
    eof: bool,
    close_after: bool,
    closing: bool,
}

/// Responses queued but not sent above which the server stops reading.
const MAX_OUT: usize = 4 << 20;

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(out: &mut Vec<u8>, resp: &Response, head_only: bool, close: bool) {
    let mut head = alloc::string::String::new();
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
}

enum Parsed {
    Incomplete,
    Done { consumed: usize, close: bool },
    Fatal,
}

fn parse_one<H: Handler>(c: &mut Conn, h: &mut H, net: &mut Net, cfg: &Config) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let fail = |c: &mut Conn, status: u16, msg: &str| {
        write_response(&mut c.out, &Response::text(status, msg), false, true);
        Parsed::Fatal
    };
    let head_len = match req.parse(&c.inbuf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if c.inbuf.len() > cfg.max_head {
                return fail(c, 431, "request head too large\n");
            }
            return Parsed::Incomplete;
        }
        Err(httparse::Error::TooManyHeaders) => return fail(c, 431, "too many headers\n"),
        Err(_) => return fail(c, 400, "malformed request\n"),
    };
    let mut content_length: Option<usize> = None;
    let mut close = req.version == Some(0);
    for hd in req.headers.iter() {
        if hd.name.eq_ignore_ascii_case("content-length") {
            let v = core::str::from_utf8(hd.value).ok().and_then(|s| s.trim().parse::<usize>().ok());
            match (v, content_length) {
                (Some(n), None) => content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return fail(c, 400, "bad Content-Length\n"),
            }
        } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            return fail(c, 501, "chunked request bodies are not supported; send Content-Length\n");
        } else if hd.name.eq_ignore_ascii_case("connection") {
            let v = hd.value;
            if v.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > cfg.max_body {
        return fail(c, 413, "request body too large\n");
    }
    if c.inbuf.len() < head_len + body_len {
        return Parsed::Incomplete;
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return fail(c, 400, "malformed request line\n");
    };
    let request = Request { method, target, headers: req.headers, body: &c.inbuf[head_len..head_len + body_len] };
    let resp = h.handle(net, &request);
    let head_only = method == "HEAD";
    let mut out = core::mem::take(&mut c.out);
    write_response(&mut out, &resp, head_only, close);
    c.out = out;
    Parsed::Done { consumed: head_len + body_len, close }
}

struct Server {
    net: Net,
    conns: BTreeMap<u32, Conn>,
    cfg: Config,
}

impl Server {
    fn post_recv(&mut self, id: u32) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.recv_posted || c.eof || c.closing || c.out.len() > MAX_OUT {
            return;
        }
        c.recv_posted = true;
        let (addr, len) = (c.rx.as_ptr() as u64, c.rx.len() as u32);
        self.net.op(Op::Recv, id, addr, len, OWNER_HTTP);
    }

    fn close(&mut self, id: u32) {
        if let Some(c) = self.conns.get_mut(&id) {
            if !c.closing {
                c.closing = true;
                self.net.op(Op::Close, id, 0, 0, OWNER_HTTP);
            }
        }
    }

    fn pump_send(&mut self, id: u32) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.sending.is_some() || c.closing {
            return;
        }
        if c.out.is_empty() {
            if c.close_after || c.eof {
                self.close(id);
            }
            return;
        }
        let max = twinkle_rt::abi::ring::MAX_IO as usize;
        let chunk: Vec<u8> =
            if c.out.len() <= max { core::mem::take(&mut c.out) } else { c.out.drain(..max).collect() };
        let (addr, len) = (chunk.as_ptr() as u64, chunk.len() as u32);
        c.sending = Some(chunk);
        self.net.op(Op::Send, id, addr, len, OWNER_HTTP);
    }

    fn process<H: Handler>(&mut self, id: u32, h: &mut H) {
        let cfg = self.cfg;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while !c.close_after && !c.inbuf.is_empty() {
            match parse_one(c, h, &mut self.net, &cfg) {
                Parsed::Incomplete => break,
                Parsed::Done { consumed, close } => {
                    c.inbuf.drain(..consumed);
                    if close {
                        c.close_after = true;
                    }
                }
                Parsed::Fatal => {
                    c.close_after = true;
                    c.inbuf.clear();
                }
            }
        }
        self.pump_send(id);
        self.post_recv(id);
    }

    fn on_completion<H: Handler>(&mut self, cqe: Cqe, h: &mut H) {
        match Op::from_u8(cqe.op) {
            Some(Op::Accept) => {
                self.net.op(Op::Accept, 0, 0, 0, OWNER_HTTP);
                if cqe.result < 0 {
                    return;
                }
                let rx = alloc::vec![0u8; self.cfg.recv_buf].into_boxed_slice();
                self.conns.insert(
                    cqe.conn,
                    Conn {
                        rx,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        sending: None,
                        recv_posted: false,
                        eof: false,
                        close_after: false,
                        closing: false,
                    },
                );
                self.post_recv(cqe.conn);
            }
            Some(Op::Recv) => {
                let id = cqe.conn;
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                c.recv_posted = false;
                if c.closing {
                    return;
                }
                if cqe.result < 0 {
                    self.close(id);
                    return;
                }
                if cqe.result == 0 {
                    c.eof = true;
                } else {
                    let n = cqe.result as usize;
                    let n = n.min(c.rx.len());
                    let Conn { rx, inbuf, .. } = c;
                    inbuf.extend_from_slice(&rx[..n]);
                }
                self.process(id, h);
            }
            Some(Op::Send) => {
                let id = cqe.conn;
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                c.sending = None;
                if cqe.result < 0 {
                    self.close(id);
                    return;
                }
                // Reading may have paused for a full output queue.
                self.process(id, h);
            }
            Some(Op::Close) => {
                self.conns.remove(&cqe.conn);
            }
            _ => {}
        }
    }
}

/// Runs the server forever: accepts connections on the VMM's listener and
/// answers requests with `handler`.
pub fn serve<H: Handler>(handler: &mut H, cfg: Config) -> ! {
    serve_on(Net::new(), handler, cfg)
}

/// [`serve`] on rings the application already uses (for its own
/// connections during initialization, say); nothing of `net` may be in flight.
pub fn serve_on<H: Handler>(net: Net, handler: &mut H, cfg: Config) -> ! {
    let mut s = Server { net, conns: BTreeMap::new(), cfg };
    if !s.net.has_listener() {
        twinkle_rt::warn!("http: the VM has no listener (--listen); nothing to serve");
    }
    for _ in 0..cfg.accepts {
        s.net.op(Op::Accept, 0, 0, 0, OWNER_HTTP);
    }
    let mut batch = Vec::new();
    loop {
        // Everything that has arrived, taken from the ring before any of it
        // is handled: see Handler::batch.
        while let Some(cqe) = s.net.poll() {
            batch.push(cqe);
        }
        if batch.is_empty() {
            s.net.idle(0, u64::MAX);
            continue;
        }
        handler.batch(&mut s.net);
        for cqe in batch.drain(..) {
            if cqe.user & (0xff << 56) == OWNER_HTTP {
                s.on_completion(cqe, handler);
            } else {
                handler.completion(&mut s.net, cqe);
            }
        }
        s.net.flush();
    }
}
