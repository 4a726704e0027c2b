//! A guest's connection to Redis over the VMM's stream-socket rings
//! (`--connect redis=HOST:PORT`): commands are sent as one pipeline with
//! blocking [`Net::call`]s and the replies parsed as they arrive.
//!
//! After a snapshot restore the connection the guest had is gone (its id
//! completes with -EBADF); so is one Redis closed. A pipeline whose first
//! part (at most 1 MiB) fails to go out on such a connection reached Redis
//! incomplete or not at all, so it is sent again once on a new connection. A
//! failure after that is reported (for a write, the caller answers 503: it
//! was not acknowledged).

#![no_std]

extern crate alloc;

pub mod app;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use resp::Reply;
use storage::{Store, StoreError};
use twinkle_rt::abi::{errno, Op};
use twinkle_rt::net::Net;

/// Bytes received per Recv.
const RECV: usize = 256 << 10;

/// How long one operation (connect, send, receive) may take unless
/// [`Redis::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// The connection's state; borrow it with a [`Net`] as a [`Store`] via [`Redis::with`].
pub struct Redis {
    endpoint: Option<u32>,
    name: &'static str,
    conn: Option<u32>,
    rx: Box<[u8]>,
    buf: Vec<u8>,
    read: usize,
    timeout_ns: u64,
    /// Connects given up on: their connections are closed when they complete.
    abandoned: Vec<u64>,
    /// Pipelines sent (each one round trip), for /health.
    pub round_trips: u64,
}

/// An operation that failed: its errno result, or no answer in time.
enum OpError {
    Errno(i64),
    Timeout,
}

/// A [`Redis`] and the rings, for one request.
pub struct Session<'a> {
    redis: &'a mut Redis,
    net: &'a mut Net,
}

impl Redis {
    /// The connection to the endpoint called `name` (not opened yet).
    pub fn new(net: &Net, name: &'static str) -> Redis {
        Redis {
            endpoint: net.endpoint(name),
            name,
            conn: None,
            rx: alloc::vec![0u8; RECV].into_boxed_slice(),
            buf: Vec::new(),
            read: 0,
            timeout_ns: DEFAULT_TIMEOUT_MS * 1_000_000,
            abandoned: Vec::new(),
            round_trips: 0,
        }
    }

    /// How long one operation may take before the request is answered 503.
    pub fn set_timeout(&mut self, ms: u64) {
        self.timeout_ns = ms.max(1) * 1_000_000;
    }

    /// A completion that reached the application: the late Connect of one
    /// that timed out gets its connection closed; other late completions of
    /// this client (cancelled by a Close) need nothing.
    pub fn completion(&mut self, net: &mut Net, cqe: twinkle_rt::abi::Cqe) {
        if let Some(i) = self.abandoned.iter().position(|t| *t == cqe.user) {
            self.abandoned.swap_remove(i);
            if cqe.result >= 0 {
                net.op(Op::Close, cqe.conn, 0, 0, 0);
            }
        }
    }

    /// One operation on `conn`, within the timeout. On a timeout the
    /// connection is closed (which completes the operation with -ECANCELED
    /// first, so its buffer is the client's again when this returns).
    fn op(&mut self, net: &mut Net, op: Op, conn: u32, addr: u64, len: u32) -> Result<i64, OpError> {
        match net.call_within(op, conn, addr, len, self.timeout_ns) {
            Ok(c) if c.result < 0 => Err(OpError::Errno(c.result)),
            Ok(c) => Ok(c.result),
            Err(_) => {
                let _ = net.call(Op::Close, conn, 0, 0);
                self.conn = None;
                self.buf.clear();
                self.read = 0;
                Err(OpError::Timeout)
            }
        }
    }

    fn timeout_error(&self, what: &str) -> StoreError {
        StoreError::Unavailable(format!("no answer from Redis within {} ms ({what})", self.timeout_ns / 1_000_000))
    }

    /// This connection with `net`, as a [`Store`].
    pub fn with<'a>(&'a mut self, net: &'a mut Net) -> Session<'a> {
        Session { redis: self, net }
    }

    fn drop_conn(&mut self, net: &mut Net) {
        if let Some(c) = self.conn.take() {
            let _ = net.call(Op::Close, c, 0, 0);
        }
        self.buf.clear();
        self.read = 0;
    }

    fn connect(&mut self, net: &mut Net) -> Result<u32, StoreError> {
        if let Some(c) = self.conn {
            return Ok(c);
        }
        let Some(ep) = self.endpoint else {
            return Err(StoreError::Unavailable(format!(
                "this VM has no endpoint {:?}: start it with --connect {}=HOST:PORT",
                self.name, self.name
            )));
        };
        let c = match net.call_within(Op::Connect, ep, 0, 0, self.timeout_ns) {
            Ok(c) => c,
            Err(tag) => {
                self.abandoned.push(tag);
                return Err(self.timeout_error("connect"));
            }
        };
        if c.result < 0 {
            return Err(StoreError::Unavailable(format!(
                "connect to endpoint {:?}: {}",
                self.name,
                errno::name(c.result)
            )));
        }
        self.conn = Some(c.conn);
        Ok(c.conn)
    }

    /// Sends `out`; on failure, the error and whether any part went out.
    fn send(&mut self, net: &mut Net, conn: u32, out: &[u8]) -> Result<(), (OpError, bool)> {
        let max = twinkle_rt::abi::ring::MAX_IO as usize;
        for (i, part) in out.chunks(max).enumerate() {
            self.op(net, Op::Send, conn, part.as_ptr() as u64, part.len() as u32).map_err(|e| (e, i > 0))?;
        }
        Ok(())
    }

    fn replies(&mut self, net: &mut Net, conn: u32, n: usize) -> Result<Vec<Reply>, StoreError> {
        let mut replies = Vec::with_capacity(n);
        while replies.len() < n {
            match resp::parse(&self.buf[self.read..]) {
                Ok(Some((reply, used))) => {
                    self.read += used;
                    replies.push(reply);
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Err(StoreError::Protocol(format!("{e:?}"))),
            }
            if self.read > 0 {
                self.buf.drain(..self.read);
                self.read = 0;
            }
            let (addr, len) = (self.rx.as_mut_ptr() as u64, self.rx.len() as u32);
            let got = match self.op(net, Op::Recv, conn, addr, len) {
                Ok(0) => return Err(StoreError::Unavailable("Redis closed the connection".into())),
                Ok(n) => n,
                Err(OpError::Errno(e)) => return Err(StoreError::Unavailable(format!("receive: {}", errno::name(e)))),
                Err(OpError::Timeout) => return Err(self.timeout_error("reply")),
            };
            let got = (got as usize).min(self.rx.len());
            self.buf.extend_from_slice(&self.rx[..got]);
        }
        if self.read == self.buf.len() {
            self.buf.clear();
            self.read = 0;
        }
        Ok(replies)
    }
}

impl Store for Session<'_> {
    fn exec(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Reply>, StoreError> {
        let mut out = Vec::new();
        for c in cmds {
            resp::command(&mut out, c);
        }
        let (r, net) = (&mut *self.redis, &mut *self.net);
        r.round_trips += 1;
        for attempt in 0..2 {
            let fresh = r.conn.is_none();
            let conn = r.connect(net)?;
            if let Err((e, partly_sent)) = r.send(net, conn, &out) {
                r.drop_conn(net);
                let e = match e {
                    OpError::Timeout => return Err(r.timeout_error("send")),
                    OpError::Errno(e) => e,
                };
                // A connection from before a restore or one Redis closed,
                // failing on the first part: nothing, or an incomplete
                // command, reached Redis, so sending again cannot run a
                // command twice. After a whole part went out it could.
                let stale = matches!(-e, errno::EBADF | errno::EPIPE | errno::ECONNRESET);
                if attempt == 0 && !fresh && !partly_sent && stale {
                    continue;
                }
                return Err(StoreError::Unavailable(format!("send: {}", errno::name(e))));
            }
            return match r.replies(net, conn, cmds.len()) {
                Ok(v) => Ok(v),
                Err(e) => {
                    r.drop_conn(net);
                    Err(e)
                }
            };
        }
        Err(StoreError::Unavailable("no connection".into()))
    }
}
