//! Host TCP sockets behind the guest's stream-socket rings.
//!
//! A single-threaded tokio runtime, driven by the vCPU thread while the guest
//! waits ([`IoDriver::wait`]): it takes the guest's submissions, carries them
//! out on real sockets and posts completions. Per connection a reader task
//! serves Recv in order and a writer task serves Send and Shutdown in order.
//!
//! Bounded by construction: the VMM takes a submission only while the
//! operations it holds plus the completions not yet consumed fit in the
//! completion queue, reads from a socket only into a buffer the guest posted,
//! and moves data in chunks of at most 64 KiB: a slow peer or a guest that
//! stops consuming stalls its own connections, never grows host memory.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use guest_abi::{errno, ring, Cqe, Op, Sqe};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use vmm_sys_util::eventfd::EventFd;

use crate::control::VmShared;
use crate::error::{GuestFault, VmExit};
use crate::memory::{GuestAddr, GuestMemory};
use crate::rings::HostRings;

/// Largest chunk moved between a socket and guest memory at once.
const CHUNK: usize = 64 * 1024;
/// Chunk of the fast paths (operations done at submission time).
const FAST_CHUNK: usize = 64 * 1024;

/// An eventfd that wakes the vCPU thread out of [`IoDriver::wait`] (for a
/// pause or stop requested by another thread).
#[derive(Debug)]
pub struct Notifier {
    fd: EventFd,
}

impl Notifier {
    /// A non-blocking eventfd.
    pub fn new() -> std::io::Result<Notifier> {
        Ok(Notifier { fd: EventFd::new(libc::EFD_NONBLOCK)? })
    }

    /// Wakes the waiting vCPU thread.
    pub fn notify(&self) {
        // A failed write (counter saturated) still leaves the fd readable.
        let _ = self.fd.write(1);
    }

    /// Resets the counter.
    fn drain(&self) {
        let _ = self.fd.read();
    }
}

impl AsRawFd for Notifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Network settings of one VM.
#[derive(Debug)]
pub struct NetConfig {
    /// Inbound connections arrive here (already bound).
    pub listener: Option<std::net::TcpListener>,
    /// Outbound endpoints, in the order the guest numbers them.
    pub endpoints: Vec<SocketAddr>,
    /// Most connections open at once.
    pub max_conns: usize,
}

enum Done {
    /// `from_task`: finished by a connection task (else on the fast path).
    Io {
        op_id: u64,
        result: i64,
        bytes: u64,
        inbound: bool,
        from_task: bool,
    },
    Connected {
        op_id: u64,
        stream: std::io::Result<TcpStream>,
    },
}

enum WriteCmd {
    /// Send `len` bytes at `addr`, of which the first `sent` already went out.
    Send {
        op_id: u64,
        addr: u64,
        len: u32,
        sent: u32,
    },
    Shutdown {
        op_id: u64,
    },
}

struct Conn {
    stream: Arc<TcpStream>,
    recv_tx: mpsc::UnboundedSender<(u64, u64, u32)>,
    write_tx: mpsc::UnboundedSender<WriteCmd>,
    tasks: [tokio::task::JoinHandle<()>; 2],
    /// Recvs handed to the reader task and not finished.
    recv_queued: u32,
    /// Sends and Shutdowns handed to the writer task and not finished.
    write_queued: u32,
}

struct PendingOp {
    conn: u32,
    op: Op,
    user: u64,
}

struct Io {
    mem: Arc<GuestMemory>,
    shared: Arc<VmShared>,
    rings: HostRings,
    sq_head: u32,
    cq_tail: u32,
    next_op: u64,
    ops: HashMap<u64, PendingOp>,
    accepts: VecDeque<u64>,
    conns: HashMap<u32, Conn>,
    next_conn: u32,
    endpoints: Vec<SocketAddr>,
    max_conns: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    posted: bool,
    /// Buffer of the fast paths (reused: no allocation or zeroing per op).
    scratch: Box<[u8]>,
}

/// The VM's network side, driven by the vCPU thread whenever the guest waits.
///
/// One thread does everything, as a native single-threaded server would: the
/// guest runs until it has nothing to do, then its Wait hypercall lets this
/// driver carry out the queued submissions and block in epoll until at least
/// one completion is posted. On a machine with few cores this beats a separate
/// I/O thread, which would compete with the vCPU for a core and add a context
/// switch to every request.
pub struct IoDriver {
    rt: tokio::runtime::Runtime,
    io: Io,
    listener: Option<TcpListener>,
    bell: AsyncFd<NotifierFd>,
    notifier: Arc<Notifier>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

impl IoDriver {
    /// Sets up the runtime, the listener and the (empty) connection table.
    pub fn new(
        mem: Arc<GuestMemory>,
        shared: Arc<VmShared>,
        rings: HostRings,
        cfg: NetConfig,
        notifier: Arc<Notifier>,
        restore: Option<crate::snapshot::NetState>,
    ) -> Result<IoDriver, VmExit> {
        let host_err = |what: &str, e: std::io::Error| VmExit::HostError(format!("{what}: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| host_err("cannot start the I/O runtime", e))?;
        let _ctx = rt.enter();
        // SAFETY: `NotifierFd` holds an Arc of the Notifier, whose EventFd stays
        // open (and the same descriptor) for as long as the AsyncFd holds it.
        let bell = unsafe { AsyncFd::register(NotifierFd(Arc::clone(&notifier))) }
            .map_err(|e| host_err("cannot watch the wake-up eventfd", e.into()))?;
        let listener = match cfg.listener {
            Some(l) => {
                l.set_nonblocking(true).map_err(|e| host_err("listener", e))?;
                Some(TcpListener::from_std(l).map_err(|e| host_err("listener", e))?)
            }
            None => None,
        };
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let io = Io {
            mem,
            shared,
            rings,
            sq_head: 0,
            cq_tail: 0,
            next_op: 1,
            ops: HashMap::new(),
            accepts: VecDeque::new(),
            conns: HashMap::new(),
            next_conn: 1,
            endpoints: cfg.endpoints,
            max_conns: cfg.max_conns,
            done_tx,
            posted: false,
            scratch: vec![0u8; FAST_CHUNK].into_boxed_slice(),
        };
        let mut io = io;
        if let Some(state) = restore {
            io.restore(state)?;
        }
        drop(_ctx);
        Ok(IoDriver { rt, io, listener, bell, notifier, done_rx })
    }

    /// The VMM's ring state, for a snapshot (the vCPU is stopped).
    pub fn net_state(&self) -> crate::snapshot::NetState {
        let io = &self.io;
        let mut dropped: Vec<(u64, crate::snapshot::DroppedOp)> = io
            .ops
            .iter()
            .filter(|(_, p)| p.op != Op::Accept)
            .map(|(id, p)| (*id, crate::snapshot::DroppedOp { op: p.op as u8, conn: p.conn, user: p.user }))
            .collect();
        dropped.sort_by_key(|(id, _)| *id);
        crate::snapshot::NetState {
            sq_head: io.sq_head,
            cq_tail: io.cq_tail,
            accepts: io.accepts.iter().filter_map(|id| io.ops.get(id).map(|p| p.user)).collect(),
            dropped: dropped.into_iter().map(|(_, d)| d).collect(),
            next_conn: io.next_conn,
        }
    }

    /// Carries out the guest's submissions, then waits up to `timeout`
    /// (`None`: without limit) until at least one completion is posted.
    /// Returns early when the VM is stopping or a pause is requested.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), VmExit> {
        let IoDriver { rt, io, listener, bell, notifier, done_rx } = self;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        rt.block_on(async {
            io.drain_sq()?;
            // Let connection tasks that are ready run once, even for a zero timeout.
            tokio::task::yield_now().await;
            while let Ok(d) = done_rx.try_recv() {
                io.finish_op(d)?;
            }
            loop {
                if io.posted || io.shared.stopping() || io.shared.pause_requested() {
                    break;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                let can_accept = !io.accepts.is_empty() && io.conns.len() < io.max_conns;
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    ready = bell.readable() => {
                        if let Ok(mut guard) = ready {
                            notifier.drain();
                            guard.clear_ready();
                        }
                    }
                    Some(done) = done_rx.recv() => {
                        io.finish_op(done)?;
                        while let Ok(more) = done_rx.try_recv() {
                            io.finish_op(more)?;
                        }
                    }
                    accepted = accept(listener.as_ref()), if can_accept => {
                        if let Ok((stream, _)) = accepted {
                            io.on_accept(stream)?;
                        }
                    }
                    _ = sleep => break,
                }
            }
            // Before going back to the guest, let every connection that is
            // ready now finish its operation too: one exit then serves a batch.
            if io.posted {
                for _ in 0..8 {
                    tokio::task::yield_now().await;
                    let mut more = false;
                    while let Ok(d) = done_rx.try_recv() {
                        io.finish_op(d)?;
                        more = true;
                    }
                    if !more {
                        break;
                    }
                }
            }
            io.posted = false;
            Ok(())
        })
    }
}

async fn accept(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

struct NotifierFd(Arc<Notifier>);

impl AsRawFd for NotifierFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn ring_fault(msg: String) -> VmExit {
    VmExit::Faulted(GuestFault::Ring(msg))
}

impl Io {
    /// Takes over the ring state of a snapshot: pending Accepts are re-armed
    /// on the new listener; operations on connections that did not survive
    /// complete with ECONNRESET.
    fn restore(&mut self, state: crate::snapshot::NetState) -> Result<(), VmExit> {
        self.sq_head = state.sq_head;
        self.cq_tail = state.cq_tail;
        self.next_conn = state.next_conn.max(1);
        for user in state.accepts {
            let id = self.new_op(0, Op::Accept, user);
            self.accepts.push_back(id);
        }
        for d in state.dropped {
            self.post(Cqe { op: d.op, conn: d.conn, result: -errno::ECONNRESET, user: d.user })?;
        }
        Ok(())
    }

    fn post(&mut self, cqe: Cqe) -> Result<(), VmExit> {
        let used = self.rings.cq_used(&self.mem, self.cq_tail).map_err(ring_fault)?;
        if used >= self.rings.entries() {
            // Cannot happen unless the guest moved CQ_HEAD backwards after we
            // admitted the operation: treat it as the ring corruption it is.
            return Err(ring_fault("the completion queue is full although room was reserved".into()));
        }
        self.rings.push_cqe(&self.mem, self.cq_tail, &cqe).map_err(ring_fault)?;
        self.cq_tail = self.cq_tail.wrapping_add(1);
        self.shared.stats.cqes.fetch_add(1, Ordering::Relaxed);
        self.posted = true;
        Ok(())
    }

    fn drain_sq(&mut self) -> Result<(), VmExit> {
        loop {
            let avail = self.rings.sq_available(&self.mem, self.sq_head).map_err(ring_fault)?;
            if avail == 0 {
                return Ok(());
            }
            let used = self.rings.cq_used(&self.mem, self.cq_tail).map_err(ring_fault)?;
            // Room for this op's completion (and the Close's cancellations: a
            // Close completes only ops already counted here, plus itself).
            if self.ops.len() as u32 + used >= self.rings.entries() {
                return Ok(());
            }
            let sqe = self.rings.read_sqe(&self.mem, self.sq_head).map_err(ring_fault)?;
            self.sq_head = self.sq_head.wrapping_add(1);
            self.rings.set_sq_head(&self.mem, self.sq_head).map_err(ring_fault)?;
            self.shared.stats.sqes.fetch_add(1, Ordering::Relaxed);
            self.submit(sqe)?;
        }
    }

    fn new_op(&mut self, conn: u32, op: Op, user: u64) -> u64 {
        let id = self.next_op;
        self.next_op += 1;
        self.ops.insert(id, PendingOp { conn, op, user });
        id
    }

    fn submit(&mut self, sqe: Sqe) -> Result<(), VmExit> {
        let Some(op) = Op::from_u8(sqe.op) else {
            return Err(ring_fault(format!("unknown operation {} in a submission entry", sqe.op)));
        };
        if matches!(op, Op::Send | Op::Recv) {
            if sqe.len > ring::MAX_IO {
                return Err(ring_fault(format!("{op:?} of {} bytes exceeds the {} byte limit", sqe.len, ring::MAX_IO)));
            }
            if let Err(e) = self.mem.check(GuestAddr(sqe.addr), u64::from(sqe.len)) {
                return Err(ring_fault(format!("{op:?} buffer: {e}")));
            }
        }
        let fail = |io: &mut Io, err: i64| io.post(Cqe { op: sqe.op, conn: sqe.conn, result: -err, user: sqe.user });
        match op {
            Op::Nop => self.post(Cqe { op: sqe.op, conn: sqe.conn, result: 0, user: sqe.user }),
            Op::Accept => {
                let id = self.new_op(0, op, sqe.user);
                self.accepts.push_back(id);
                Ok(())
            }
            Op::Connect => {
                let Some(addr) = self.endpoints.get(sqe.conn as usize).copied() else {
                    return fail(self, errno::EINVAL);
                };
                if self.conns.len() >= self.max_conns {
                    return fail(self, errno::EAGAIN);
                }
                let id = self.new_op(0, op, sqe.user);
                let tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let stream =
                        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await.unwrap_or_else(
                            |_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
                        );
                    let _ = tx.send(Done::Connected { op_id: id, stream });
                });
                Ok(())
            }
            Op::Recv => {
                if !self.conns.contains_key(&sqe.conn) {
                    return fail(self, errno::EBADF);
                }
                let id = self.new_op(sqe.conn, op, sqe.user);
                self.recv(id, sqe.conn, sqe.addr, sqe.len)
            }
            Op::Send | Op::Shutdown => {
                if !self.conns.contains_key(&sqe.conn) {
                    return fail(self, errno::EBADF);
                }
                let id = self.new_op(sqe.conn, op, sqe.user);
                if op == Op::Send {
                    self.send(id, sqe.conn, sqe.addr, sqe.len)
                } else {
                    if let Some(c) = self.conns.get_mut(&sqe.conn) {
                        c.write_queued += 1;
                        let _ = c.write_tx.send(WriteCmd::Shutdown { op_id: id });
                    }
                    Ok(())
                }
            }
            Op::Close => {
                let Some(conn) = self.conns.remove(&sqe.conn) else {
                    return fail(self, errno::EBADF);
                };
                for t in &conn.tasks {
                    t.abort();
                }
                let mut cancelled: Vec<(u64, PendingOp)> = Vec::new();
                let ids: Vec<u64> = self
                    .ops
                    .iter()
                    .filter(|(_, p)| p.conn == sqe.conn && !matches!(p.op, Op::Accept | Op::Connect))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    if let Some(p) = self.ops.remove(&id) {
                        cancelled.push((id, p));
                    }
                }
                cancelled.sort_by_key(|(id, _)| *id);
                for (_, p) in cancelled {
                    self.post(Cqe { op: p.op as u8, conn: p.conn, result: -errno::ECANCELED, user: p.user })?;
                }
                self.post(Cqe { op: sqe.op, conn: sqe.conn, result: 0, user: sqe.user })
            }
        }
    }

    fn add_conn(&mut self, stream: TcpStream) -> u32 {
        let _ = stream.set_nodelay(true);
        let mut id = self.next_conn;
        while id == 0 || self.conns.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_conn = id.wrapping_add(1);
        let stream = Arc::new(stream);
        let (recv_tx, recv_rx) = mpsc::unbounded_channel();
        let (write_tx, write_rx) = mpsc::unbounded_channel();
        let reader =
            tokio::spawn(reader_task(Arc::clone(&stream), recv_rx, Arc::clone(&self.mem), self.done_tx.clone()));
        let writer =
            tokio::spawn(writer_task(Arc::clone(&stream), write_rx, Arc::clone(&self.mem), self.done_tx.clone()));
        self.conns
            .insert(id, Conn { stream, recv_tx, write_tx, tasks: [reader, writer], recv_queued: 0, write_queued: 0 });
        id
    }

    /// A Recv: read at once if data is there and nothing is queued before
    /// it, else hand it to the connection's reader task.
    fn recv(&mut self, op_id: u64, conn: u32, addr: u64, len: u32) -> Result<(), VmExit> {
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
        if c.recv_queued == 0 && len > 0 {
            let buf = &mut self.scratch;
            let want = (len as usize).min(buf.len());
            match c.stream.try_read(&mut buf[..want]) {
                Ok(n) => {
                    let result = match self.mem.write(GuestAddr(addr), &buf[..n]) {
                        Ok(()) => n as i64,
                        Err(_) => -errno::EIO,
                    };
                    return self.finish_op(Done::Io {
                        op_id,
                        result,
                        bytes: n as u64,
                        inbound: true,
                        from_task: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return self.finish_op(Done::Io {
                        op_id,
                        result: -io_errno(&e),
                        bytes: 0,
                        inbound: true,
                        from_task: false,
                    })
                }
            }
        }
        c.recv_queued += 1;
        let _ = c.recv_tx.send((op_id, addr, len));
        Ok(())
    }

    /// A Send: write at once what the socket takes if nothing is queued
    /// before it; the writer task sends the rest.
    fn send(&mut self, op_id: u64, conn: u32, addr: u64, len: u32) -> Result<(), VmExit> {
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
        let mut sent = 0u32;
        if c.write_queued == 0 {
            let buf = &mut self.scratch;
            while sent < len {
                let n = ((len - sent) as usize).min(buf.len());
                if self.mem.read(GuestAddr(addr + u64::from(sent)), &mut buf[..n]).is_err() {
                    return self.finish_op(Done::Io {
                        op_id,
                        result: -errno::EIO,
                        bytes: u64::from(sent),
                        inbound: false,
                        from_task: false,
                    });
                }
                match c.stream.try_write(&buf[..n]) {
                    Ok(w) => sent += w as u32,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return self.finish_op(Done::Io {
                            op_id,
                            result: -io_errno(&e),
                            bytes: u64::from(sent),
                            inbound: false,
                            from_task: false,
                        })
                    }
                }
            }
            if sent == len {
                return self.finish_op(Done::Io {
                    op_id,
                    result: i64::from(len),
                    bytes: u64::from(len),
                    inbound: false,
                    from_task: false,
                });
            }
        }
        c.write_queued += 1;
        let _ = c.write_tx.send(WriteCmd::Send { op_id, addr, len, sent });
        Ok(())
    }

    fn on_accept(&mut self, stream: TcpStream) -> Result<(), VmExit> {
        let Some(op_id) = self.accepts.pop_front() else {
            return Ok(());
        };
        let Some(p) = self.ops.remove(&op_id) else {
            return Ok(());
        };
        self.shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let id = self.add_conn(stream);
        self.post(Cqe { op: Op::Accept as u8, conn: id, result: 0, user: p.user })
    }

    fn finish_op(&mut self, done: Done) -> Result<(), VmExit> {
        match done {
            Done::Io { op_id, result, bytes, inbound, from_task } => {
                let Some(p) = self.ops.remove(&op_id) else {
                    return Ok(()); // cancelled by a Close
                };
                if from_task {
                    if let Some(c) = self.conns.get_mut(&p.conn) {
                        let n = if p.op == Op::Recv { &mut c.recv_queued } else { &mut c.write_queued };
                        *n = n.saturating_sub(1);
                    }
                }
                let stat = if inbound { &self.shared.stats.bytes_in } else { &self.shared.stats.bytes_out };
                stat.fetch_add(bytes, Ordering::Relaxed);
                if !inbound && bytes > 0 {
                    self.shared.set_first_byte();
                }
                self.post(Cqe { op: p.op as u8, conn: p.conn, result, user: p.user })
            }
            Done::Connected { op_id, stream } => {
                let Some(p) = self.ops.remove(&op_id) else {
                    return Ok(());
                };
                match stream {
                    Ok(s) if self.conns.len() < self.max_conns => {
                        self.shared.stats.connected.fetch_add(1, Ordering::Relaxed);
                        let id = self.add_conn(s);
                        self.post(Cqe { op: p.op as u8, conn: id, result: 0, user: p.user })
                    }
                    Ok(_) => self.post(Cqe { op: p.op as u8, conn: 0, result: -errno::EAGAIN, user: p.user }),
                    Err(e) => {
                        let err = match e.kind() {
                            std::io::ErrorKind::ConnectionRefused => errno::ECONNREFUSED,
                            _ => e.raw_os_error().map_or(errno::EIO, i64::from),
                        };
                        self.post(Cqe { op: p.op as u8, conn: 0, result: -err, user: p.user })
                    }
                }
            }
        }
    }
}

fn io_errno(e: &std::io::Error) -> i64 {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => errno::ECONNRESET,
        std::io::ErrorKind::BrokenPipe => errno::EPIPE,
        _ => e.raw_os_error().map_or(errno::EIO, i64::from),
    }
}

async fn reader_task(
    stream: Arc<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<(u64, u64, u32)>,
    mem: Arc<GuestMemory>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut buf = vec![0u8; CHUNK];
    while let Some((op_id, addr, len)) = rx.recv().await {
        let want = (len as usize).min(CHUNK);
        let result = loop {
            if want == 0 {
                break Ok(0);
            }
            if let Err(e) = stream.readable().await {
                break Err(e);
            }
            match stream.try_read(&mut buf[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => break other,
            }
        };
        let (result, bytes) = match result {
            Ok(n) => match mem.write(GuestAddr(addr), &buf[..n]) {
                Ok(()) => (n as i64, n as u64),
                Err(_) => (-errno::EIO, 0),
            },
            Err(e) => (-io_errno(&e), 0),
        };
        if done.send(Done::Io { op_id, result, bytes, inbound: true, from_task: true }).is_err() {
            return;
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn writer_task(
    stream: Arc<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    mem: Arc<GuestMemory>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut buf = vec![0u8; CHUNK];
    while let Some(cmd) = rx.recv().await {
        let (op_id, result, bytes) = match cmd {
            WriteCmd::Send { op_id, addr, len, sent: already } => {
                let mut sent = u64::from(already);
                let mut result = i64::from(len);
                while sent < u64::from(len) {
                    let n = (u64::from(len) - sent).min(CHUNK as u64) as usize;
                    if mem.read(GuestAddr(addr + sent), &mut buf[..n]).is_err() {
                        result = -errno::EIO;
                        break;
                    }
                    if let Err(e) = write_all(&stream, &buf[..n]).await {
                        result = -io_errno(&e);
                        break;
                    }
                    sent += n as u64;
                }
                (op_id, result, sent)
            }
            WriteCmd::Shutdown { op_id } => {
                let r = match socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Write) {
                    Ok(()) => 0,
                    Err(e) => -io_errno(&e),
                };
                (op_id, r, 0)
            }
        };
        if done.send(Done::Io { op_id, result, bytes, inbound: false, from_task: true }).is_err() {
            return;
        }
    }
}
