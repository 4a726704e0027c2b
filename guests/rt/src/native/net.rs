//! Native stand-in for the stream-socket rings: the same [`Net`] API, with
//! every operation carried out by this process on non-blocking sockets and
//! `poll(2)`. Semantics match the VM's: one completion per submission, Recvs
//! and Sends of one connection in order, Close cancels what is pending.

extern crate std;

use alloc_crate::collections::{BTreeMap, VecDeque};
use alloc_crate::vec::Vec;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use guest_abi::{errno, Cqe, Op, Sqe};

/// Tag in the top byte of `user` for operations made by [`Net::call`].
pub const OWNER_SYNC: u64 = 0x53 << 56;

struct Conn {
    stream: TcpStream,
    recvs: VecDeque<Sqe>,
    sends: VecDeque<(Sqe, usize)>,
}

/// The process's sockets, behind the ring API.
pub struct Net {
    listener: Option<TcpListener>,
    endpoints: Vec<Option<SocketAddr>>,
    conns: BTreeMap<u32, Conn>,
    next_id: u32,
    accepts: VecDeque<Sqe>,
    done: VecDeque<Cqe>,
    inflight: u32,
    next_sync: u64,
}

fn io_errno(e: &std::io::Error) -> i64 {
    match e.kind() {
        ErrorKind::ConnectionReset => errno::ECONNRESET,
        ErrorKind::BrokenPipe => errno::EPIPE,
        ErrorKind::ConnectionRefused => errno::ECONNREFUSED,
        _ => e.raw_os_error().map_or(errno::EIO, i64::from),
    }
}

/// The listener and endpoints from the environment:
/// `TWINKLE_NATIVE_LISTEN=ADDR`, `TWINKLE_NATIVE_CONNECT=NAME=HOST:PORT,...`.
pub(crate) fn from_env(boot: &mut guest_abi::BootInfo) {
    if std::env::var("TWINKLE_NATIVE_LISTEN").is_ok() {
        boot.has_listener = 1;
    }
    if let Ok(list) = std::env::var("TWINKLE_NATIVE_CONNECT") {
        for spec in list.split(',').filter(|s| !s.is_empty()) {
            if let Some((name, _)) = spec.split_once('=') {
                boot.push_endpoint(name.as_bytes());
            }
        }
    }
}

impl Net {
    /// Binds `TWINKLE_NATIVE_LISTEN` and resolves `TWINKLE_NATIVE_CONNECT`.
    pub fn new() -> Net {
        let listener = std::env::var("TWINKLE_NATIVE_LISTEN").ok().map(|addr| {
            let l = TcpListener::bind(&addr).unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
            l.set_nonblocking(true).unwrap_or_else(|e| panic!("listener: {e}"));
            l
        });
        let endpoints = std::env::var("TWINKLE_NATIVE_CONNECT")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|spec| spec.split_once('=').and_then(|(_, a)| a.to_socket_addrs().ok()?.next()))
            .collect();
        Net {
            listener,
            endpoints,
            conns: BTreeMap::new(),
            next_id: 1,
            accepts: VecDeque::new(),
            done: VecDeque::new(),
            inflight: 0,
            next_sync: 1,
        }
    }

    /// Whether a listener is configured.
    pub fn has_listener(&self) -> bool {
        self.listener.is_some()
    }

    /// The number of the endpoint called `name`.
    pub fn endpoint(&self, name: &str) -> Option<u32> {
        crate::boot().endpoint(name.as_bytes())
    }

    /// Operations submitted and not completed.
    pub fn inflight(&self) -> u32 {
        self.inflight
    }

    fn complete(&mut self, sqe: &Sqe, conn: u32, result: i64) {
        self.done.push_back(Cqe { op: sqe.op, conn, result, user: sqe.user });
    }

    fn add_conn(&mut self, stream: TcpStream) -> u32 {
        let _ = stream.set_nonblocking(true);
        let _ = stream.set_nodelay(true);
        let mut id = self.next_id;
        while id == 0 || self.conns.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.conns.insert(id, Conn { stream, recvs: VecDeque::new(), sends: VecDeque::new() });
        id
    }

    /// Queues an operation.
    pub fn submit(&mut self, sqe: Sqe) {
        self.inflight += 1;
        match Op::from_u8(sqe.op) {
            Some(Op::Nop) => self.complete(&sqe, sqe.conn, 0),
            Some(Op::Accept) => self.accepts.push_back(sqe),
            Some(Op::Connect) => {
                let addr = self.endpoints.get(sqe.conn as usize).copied().flatten();
                match addr.map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10))) {
                    None => self.complete(&sqe, 0, -errno::EINVAL),
                    Some(Ok(s)) => {
                        let id = self.add_conn(s);
                        self.complete(&sqe, id, 0);
                    }
                    Some(Err(e)) => self.complete(&sqe, 0, -io_errno(&e)),
                }
            }
            Some(Op::Recv) => match self.conns.get_mut(&sqe.conn) {
                Some(c) => c.recvs.push_back(sqe),
                None => self.complete(&sqe, sqe.conn, -errno::EBADF),
            },
            Some(Op::Send) | Some(Op::Shutdown) => match self.conns.get_mut(&sqe.conn) {
                Some(c) => c.sends.push_back((sqe, 0)),
                None => self.complete(&sqe, sqe.conn, -errno::EBADF),
            },
            Some(Op::Close) => match self.conns.remove(&sqe.conn) {
                Some(c) => {
                    for s in c.recvs.iter().chain(c.sends.iter().map(|(s, _)| s)) {
                        self.done.push_back(Cqe { op: s.op, conn: s.conn, result: -errno::ECANCELED, user: s.user });
                    }
                    self.complete(&sqe, sqe.conn, 0);
                }
                None => self.complete(&sqe, sqe.conn, -errno::EBADF),
            },
            None => panic!("unknown operation {}", sqe.op),
        }
    }

    /// Shorthand for [`Net::submit`].
    pub fn op(&mut self, op: Op, conn: u32, addr: u64, len: u32, user: u64) {
        self.submit(Sqe { op: op as u8, conn, addr, len, user });
    }

    /// Nothing to flush natively.
    pub fn flush(&mut self) {}

    /// Carries out whatever can proceed without blocking.
    fn progress(&mut self) {
        while !self.accepts.is_empty() {
            let Some(l) = &self.listener else { break };
            match l.accept() {
                Ok((s, _)) => {
                    let id = self.add_conn(s);
                    if let Some(sqe) = self.accepts.pop_front() {
                        self.complete(&sqe, id, 0);
                    }
                }
                Err(_) => break,
            }
        }
        let mut finished: Vec<Cqe> = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            while let Some(sqe) = c.recvs.front() {
                // SAFETY: the guest code keeps a Recv buffer alive and
                // untouched until its completion (the ring contract).
                let buf = unsafe { core::slice::from_raw_parts_mut(sqe.addr as *mut u8, sqe.len as usize) };
                let r = match c.stream.read(buf) {
                    Ok(n) => n as i64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => -io_errno(&e),
                };
                finished.push(Cqe { op: sqe.op, conn: id, result: r, user: sqe.user });
                c.recvs.pop_front();
            }
            while let Some((sqe, off)) = c.sends.front_mut() {
                if sqe.op == Op::Shutdown as u8 {
                    let r = c.stream.shutdown(Shutdown::Write).map_or_else(|e| -io_errno(&e), |_| 0);
                    finished.push(Cqe { op: sqe.op, conn: id, result: r, user: sqe.user });
                    c.sends.pop_front();
                    continue;
                }
                // SAFETY: as for Recv: a Send buffer stays valid until its completion.
                let buf = unsafe { core::slice::from_raw_parts(sqe.addr as *const u8, sqe.len as usize) };
                match c.stream.write(&buf[*off..]) {
                    Ok(n) => {
                        *off += n;
                        if *off < buf.len() {
                            continue;
                        }
                        finished.push(Cqe { op: sqe.op, conn: id, result: i64::from(sqe.len), user: sqe.user });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => finished.push(Cqe { op: sqe.op, conn: id, result: -io_errno(&e), user: sqe.user }),
                }
                c.sends.pop_front();
            }
        }
        self.done.extend(finished);
    }

    /// The next completion, if any.
    pub fn poll(&mut self) -> Option<Cqe> {
        if self.done.is_empty() {
            self.progress();
        }
        let c = self.done.pop_front()?;
        self.inflight = self.inflight.saturating_sub(1);
        Some(c)
    }

    /// Submits one operation and waits for its completion, keeping the others.
    pub fn call(&mut self, op: Op, conn: u32, addr: u64, len: u32) -> Cqe {
        let tag = OWNER_SYNC | (self.next_sync & 0x00ff_ffff_ffff_ffff);
        self.next_sync += 1;
        self.op(op, conn, addr, len, tag);
        loop {
            self.progress();
            if let Some(i) = self.done.iter().position(|c| c.user == tag) {
                if let Some(c) = self.done.remove(i) {
                    self.inflight = self.inflight.saturating_sub(1);
                    return c;
                }
            }
            self.block(u64::MAX);
        }
    }

    /// [`Net::call`] that gives up after `timeout_ns` (see the VM version).
    pub fn call_within(&mut self, op: Op, conn: u32, addr: u64, len: u32, timeout_ns: u64) -> Result<Cqe, u64> {
        let tag = OWNER_SYNC | (self.next_sync & 0x00ff_ffff_ffff_ffff);
        self.next_sync += 1;
        self.op(op, conn, addr, len, tag);
        let start = crate::clock::monotonic_ns();
        loop {
            self.progress();
            if let Some(i) = self.done.iter().position(|c| c.user == tag) {
                if let Some(c) = self.done.remove(i) {
                    self.inflight = self.inflight.saturating_sub(1);
                    return Ok(c);
                }
            }
            let waited = crate::clock::monotonic_ns().saturating_sub(start);
            if waited >= timeout_ns {
                return Err(tag);
            }
            self.block((timeout_ns - waited).min(10_000_000));
        }
    }

    /// Returns when a completion is ready or `timeout_ns` passed.
    pub fn idle(&mut self, _spin_ns: u64, timeout_ns: u64) {
        if self.done.is_empty() {
            self.progress();
        }
        if self.done.is_empty() {
            self.block(timeout_ns);
        }
    }

    fn block(&mut self, timeout_ns: u64) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        if !self.accepts.is_empty() {
            if let Some(l) = &self.listener {
                fds.push(libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(l), events: libc::POLLIN, revents: 0 });
            }
        }
        for c in self.conns.values() {
            let mut events = 0;
            if !c.recvs.is_empty() {
                events |= libc::POLLIN;
            }
            if !c.sends.is_empty() {
                events |= libc::POLLOUT;
            }
            if events != 0 {
                fds.push(libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&c.stream), events, revents: 0 });
            }
        }
        let ms = if timeout_ns == u64::MAX { -1 } else { (timeout_ns / 1_000_000).min(i32::MAX as u64) as i32 };
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structures.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}
