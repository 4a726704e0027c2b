//! The twinkle guest ABI, version 1: what a guest program and the VMM agree on.
//!
//! One definition, used by both sides: the VMM (`vmm-lite`, on the host) and
//! the guest runtime (`rt`, in the VM). Everything is little-endian and laid
//! out at fixed offsets, encoded and decoded with plain byte functions (no
//! `repr(C)` casts), so neither side needs `unsafe` to read the other's data.
//! The rules every field follows are documented in docs/guest-abi.md.
//!
//! Guest physical and virtual addresses are the same (identity mapping).

#![no_std]
#![forbid(unsafe_code)]

/// ABI version written in the boot-info page; a guest refuses another version.
pub const ABI_VERSION: u32 = 1;

/// Magic at the start of the boot-info page.
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"TWNKBOOT");

/// 4 KiB: the unit of the free-page bitmap and of the fixed layout.
pub const PAGE_SIZE: u64 = 4096;

/// 2 MiB: guest memory is mapped with 2 MiB pages where possible.
pub const HUGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

/// The fixed low-memory layout (guest physical addresses).
pub mod layout {
    /// Page 0 is never mapped: a null pointer dereference faults.
    pub const NULL_GUARD: u64 = 0x0;
    /// Top-level page table.
    pub const PML4: u64 = 0x1000;
    /// Page-directory-pointer table (covers 512 GiB).
    pub const PDPT: u64 = 0x2000;
    /// Page table for the first 2 MiB (4 KiB pages; page 0 absent).
    pub const PT_LOW: u64 = 0x3000;
    /// Page directories, one per GiB of guest memory.
    pub const PD_BASE: u64 = 0x4000;
    /// Most page directories, hence most guest memory in GiB.
    pub const MAX_PDS: u64 = 32;
    /// The global descriptor table (never read by the CPU on this path, kept valid).
    pub const GDT: u64 = 0x24000;
    /// The task-state segment with its I/O permission bitmap (3 pages).
    pub const TSS: u64 = 0x25000;
    /// The boot-info page.
    pub const BOOT_INFO: u64 = 0x28000;
    /// The clock page.
    pub const CLOCK: u64 = 0x29000;
    /// Page table for the last 2 MiB (4 KiB pages: a guard page below the stack).
    pub const PT_HIGH: u64 = 0x2A000;
    /// Ring indices (one cache line each).
    pub const RING_HEADER: u64 = 0x30000;
    /// Submission queue entries (guest -> VMM).
    pub const SQ: u64 = 0x31000;
    /// Completion queue entries (VMM -> guest).
    pub const CQ: u64 = 0x51000;
    /// End of the ring area.
    pub const RINGS_END: u64 = 0x71000;
    /// The free-page bitmap (1 bit per 4 KiB page; up to 32 GiB of memory).
    pub const FREE_BITMAP: u64 = 0x100000;
    /// Size reserved for the bitmap.
    pub const FREE_BITMAP_MAX: u64 = 0x100000;
    /// Where guest ELF segments may start.
    pub const IMAGE_BASE: u64 = 0x200000;
    /// Stack size at the top of memory.
    pub const STACK_SIZE: u64 = 1024 * 1024;
}

/// I/O ports the guest uses with `out`.
pub mod port {
    /// Hypercalls: `out dx, eax` (a 4-byte access: ports 0x510-0x513 are
    /// allowed) with eax = the [`super::Hypercall`] number,
    /// arguments in rdi, rsi, r8, r9; the result comes back in rax.
    pub const HYPERCALL: u16 = 0x0510;
    /// Notify: any `out` here tells the VMM the submission queue has new
    /// entries. Served by an ioeventfd where KVM has one: no exit to the VMM.
    pub const NOTIFY: u16 = 0x0518;
}

/// Hypercall numbers (eax).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Hypercall {
    /// Block until a completion is queued or `rdi` nanoseconds pass
    /// (`u64::MAX`: no timeout). Returns 0. Use only when idle.
    Wait = 1,
    /// The same as an `out` to [`port::NOTIFY`], for guests that prefer it.
    Notify = 2,
    /// Initialization is done: the snapshot point. Returns 0.
    Ready = 3,
    /// Log `rsi` bytes of UTF-8 at `rdi` with level `r8` (see [`LogLevel`]).
    Log = 4,
    /// End the VM with exit code `rdi` (0-255). Does not return.
    Exit = 5,
    /// The guest panicked: message of `rsi` bytes at `rdi`. Does not return.
    Panic = 6,
}

impl Hypercall {
    /// Decodes a hypercall number.
    pub fn from_u32(n: u32) -> Option<Hypercall> {
        Some(match n {
            1 => Hypercall::Wait,
            2 => Hypercall::Notify,
            3 => Hypercall::Ready,
            4 => Hypercall::Log,
            5 => Hypercall::Exit,
            6 => Hypercall::Panic,
            _ => return None,
        })
    }
}

/// Log levels of the Log hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u64)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something is odd.
    Warn = 2,
    /// Normal progress.
    Info = 3,
    /// Details.
    Debug = 4,
}

impl LogLevel {
    /// Decodes a level; unknown values are Info.
    pub fn from_u64(n: u64) -> LogLevel {
        match n {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            4 => LogLevel::Debug,
            _ => LogLevel::Info,
        }
    }
}

/// Longest log message the VMM accepts (longer ones are truncated).
pub const MAX_LOG: u64 = 4096;

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}

fn get_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(b)
}

/// Most endpoints `--connect` may name.
pub const MAX_ENDPOINTS: usize = 16;
/// Longest endpoint name, in bytes.
pub const MAX_ENDPOINT_NAME: usize = 31;
/// Offset of the argument area in the boot-info page.
pub const ARGS_OFFSET: usize = 0x400;
/// Size of the argument area: NUL-terminated strings, one after the other.
pub const ARGS_MAX: usize = 4096 - ARGS_OFFSET;

/// The boot-info page: what the VMM tells the guest at entry (rdi points to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// ABI version ([`ABI_VERSION`]).
    pub abi_version: u32,
    /// Bytes of guest memory (a multiple of 2 MiB).
    pub mem_size: u64,
    /// First byte of the heap (after the ELF image, 4 KiB aligned).
    pub heap_start: u64,
    /// End of the heap (exclusive; a guard page follows, then the stack).
    pub heap_end: u64,
    /// Initial stack pointer (top of memory).
    pub stack_top: u64,
    /// Address of the free-page bitmap the guest allocator keeps.
    pub free_bitmap: u64,
    /// Pages the bitmap covers (`mem_size / 4096`; bit set = page free).
    pub free_bitmap_pages: u64,
    /// Address of the clock page.
    pub clock: u64,
    /// Address of the ring indices.
    pub ring_header: u64,
    /// Address of the submission queue entries.
    pub sq: u64,
    /// Address of the completion queue entries.
    pub cq: u64,
    /// Entries in each queue (a power of two).
    pub ring_entries: u32,
    /// 1 if the VMM has a host listener (`--listen`): ACCEPT will complete.
    pub has_listener: u32,
    /// Outbound endpoints by name; the index is CONNECT's endpoint number.
    pub endpoints: [[u8; MAX_ENDPOINT_NAME + 1]; MAX_ENDPOINTS],
    /// Number of endpoints used.
    pub n_endpoints: u32,
    /// Arguments (`--arg`), NUL-terminated, one after the other.
    pub args: [u8; ARGS_MAX],
    /// Number of arguments.
    pub argc: u32,
}

impl BootInfo {
    /// An empty boot info of the current ABI version.
    pub fn new() -> Self {
        BootInfo {
            abi_version: ABI_VERSION,
            mem_size: 0,
            heap_start: 0,
            heap_end: 0,
            stack_top: 0,
            free_bitmap: 0,
            free_bitmap_pages: 0,
            clock: 0,
            ring_header: 0,
            sq: 0,
            cq: 0,
            ring_entries: 0,
            has_listener: 0,
            endpoints: [[0; MAX_ENDPOINT_NAME + 1]; MAX_ENDPOINTS],
            n_endpoints: 0,
            args: [0; ARGS_MAX],
            argc: 0,
        }
    }

    /// Adds an argument; false if the argument area is full or it contains NUL.
    pub fn push_arg(&mut self, arg: &[u8]) -> bool {
        if arg.contains(&0) {
            return false;
        }
        let used = self.args_len();
        if used + arg.len() + 1 > ARGS_MAX {
            return false;
        }
        self.args[used..used + arg.len()].copy_from_slice(arg);
        self.args[used + arg.len()] = 0;
        self.argc += 1;
        true
    }

    fn args_len(&self) -> usize {
        let mut used = 0;
        for _ in 0..self.argc {
            match self.args[used..].iter().position(|&b| b == 0) {
                Some(n) => used += n + 1,
                None => return ARGS_MAX,
            }
        }
        used
    }

    /// The i-th argument.
    pub fn arg(&self, i: u32) -> Option<&[u8]> {
        if i >= self.argc {
            return None;
        }
        let mut start = 0;
        for _ in 0..i {
            start += self.args.get(start..)?.iter().position(|&b| b == 0)? + 1;
        }
        let len = self.args.get(start..)?.iter().position(|&b| b == 0)?;
        self.args.get(start..start + len)
    }

    /// Adds an endpoint name; false if full or the name is too long.
    pub fn push_endpoint(&mut self, name: &[u8]) -> bool {
        let i = self.n_endpoints as usize;
        if i >= MAX_ENDPOINTS || name.len() > MAX_ENDPOINT_NAME || name.is_empty() {
            return false;
        }
        self.endpoints[i] = [0; MAX_ENDPOINT_NAME + 1];
        self.endpoints[i][..name.len()].copy_from_slice(name);
        self.n_endpoints += 1;
        true
    }

    /// The index of the endpoint called `name`.
    pub fn endpoint(&self, name: &[u8]) -> Option<u32> {
        (0..self.n_endpoints.min(MAX_ENDPOINTS as u32)).find(|&i| {
            let e = &self.endpoints[i as usize];
            let len = e.iter().position(|&b| b == 0).unwrap_or(e.len());
            &e[..len] == name
        })
    }

    /// Writes the page image.
    pub fn encode(&self, page: &mut [u8; 4096]) {
        page.fill(0);
        put_u64(page, 0x00, BOOT_MAGIC);
        put_u32(page, 0x08, self.abi_version);
        put_u64(page, 0x10, self.mem_size);
        put_u64(page, 0x18, self.heap_start);
        put_u64(page, 0x20, self.heap_end);
        put_u64(page, 0x28, self.stack_top);
        put_u64(page, 0x30, self.free_bitmap);
        put_u64(page, 0x38, self.free_bitmap_pages);
        put_u64(page, 0x40, self.clock);
        put_u64(page, 0x48, self.ring_header);
        put_u64(page, 0x50, self.sq);
        put_u64(page, 0x58, self.cq);
        put_u32(page, 0x60, self.ring_entries);
        put_u32(page, 0x64, self.has_listener);
        put_u32(page, 0x68, self.n_endpoints);
        put_u32(page, 0x6C, self.argc);
        for (i, e) in self.endpoints.iter().enumerate() {
            let off = 0x100 + i * (MAX_ENDPOINT_NAME + 1);
            page[off..off + MAX_ENDPOINT_NAME + 1].copy_from_slice(e);
        }
        page[ARGS_OFFSET..].copy_from_slice(&self.args);
    }

    /// Reads a page image; `None` if the magic or version is wrong.
    pub fn decode(page: &[u8; 4096]) -> Option<BootInfo> {
        if get_u64(page, 0x00) != BOOT_MAGIC || get_u32(page, 0x08) != ABI_VERSION {
            return None;
        }
        let mut b = BootInfo::new();
        b.mem_size = get_u64(page, 0x10);
        b.heap_start = get_u64(page, 0x18);
        b.heap_end = get_u64(page, 0x20);
        b.stack_top = get_u64(page, 0x28);
        b.free_bitmap = get_u64(page, 0x30);
        b.free_bitmap_pages = get_u64(page, 0x38);
        b.clock = get_u64(page, 0x40);
        b.ring_header = get_u64(page, 0x48);
        b.sq = get_u64(page, 0x50);
        b.cq = get_u64(page, 0x58);
        b.ring_entries = get_u32(page, 0x60);
        b.has_listener = get_u32(page, 0x64);
        b.n_endpoints = get_u32(page, 0x68);
        b.argc = get_u32(page, 0x6C);
        for (i, e) in b.endpoints.iter_mut().enumerate() {
            let off = 0x100 + i * (MAX_ENDPOINT_NAME + 1);
            e.copy_from_slice(&page[off..off + MAX_ENDPOINT_NAME + 1]);
        }
        b.args.copy_from_slice(&page[ARGS_OFFSET..]);
        Some(b)
    }
}

impl Default for BootInfo {
    fn default() -> Self {
        Self::new()
    }
}

/// Offsets of the ring indices in the ring-header page. Each is a u32 on its
/// own cache line; free-running counters (they wrap at 2^32), the slot is
/// `index & (entries - 1)`.
pub mod ring {
    /// Submission tail: written by the guest after filling entries.
    pub const SQ_TAIL: u64 = 0x00;
    /// Submission head: written by the VMM after consuming entries.
    pub const SQ_HEAD: u64 = 0x40;
    /// Completion tail: written by the VMM after filling entries.
    pub const CQ_TAIL: u64 = 0x80;
    /// Completion head: written by the guest after consuming entries.
    pub const CQ_HEAD: u64 = 0xC0;
    /// Written by the VMM: 1 while its I/O thread is blocked and needs a
    /// notify to see new submissions, 0 while it is awake (it then rechecks
    /// the queue before blocking). Guests notify only when this is 1.
    pub const VMM_IDLE: u64 = 0x100;
    /// Default number of entries in each queue.
    pub const DEFAULT_ENTRIES: u32 = 4096;
    /// Most entries the layout has room for.
    pub const MAX_ENTRIES: u32 = 4096;
    /// Bytes per entry, both queues.
    pub const ENTRY_SIZE: u64 = 32;
    /// Largest buffer one SEND or RECV may name.
    pub const MAX_IO: u32 = 1024 * 1024;
}

/// Stream-socket operations (submission entries and their completions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Does nothing; completes with result 0.
    Nop = 0,
    /// Wait for the next inbound connection; completes with its id in `conn`.
    Accept = 1,
    /// Open a connection to endpoint number `conn`; completes with the new id in `conn`.
    Connect = 2,
    /// Receive up to `len` bytes into `addr`; result = bytes (0 = the peer closed).
    Recv = 3,
    /// Send the `len` bytes at `addr`; result = `len` once all were handed to the host.
    Send = 4,
    /// Close the sending half (the peer sees end of stream).
    Shutdown = 5,
    /// Close the connection; pending operations on it complete with -ECANCELED first.
    Close = 6,
}

impl Op {
    /// Decodes an op code.
    pub fn from_u8(n: u8) -> Option<Op> {
        Some(match n {
            0 => Op::Nop,
            1 => Op::Accept,
            2 => Op::Connect,
            3 => Op::Recv,
            4 => Op::Send,
            5 => Op::Shutdown,
            6 => Op::Close,
            _ => return None,
        })
    }
}

/// Error numbers in completion results (negated), Linux values.
pub mod errno {
    /// The connection id is not open.
    pub const EBADF: i64 = 9;
    /// Resources exhausted (too many connections).
    pub const EAGAIN: i64 = 11;
    /// Bad argument (unknown endpoint).
    pub const EINVAL: i64 = 22;
    /// The peer reset the connection.
    pub const ECONNRESET: i64 = 104;
    /// The connection was refused.
    pub const ECONNREFUSED: i64 = 111;
    /// The operation was cancelled by a Close.
    pub const ECANCELED: i64 = 125;
    /// The connection broke while sending.
    pub const EPIPE: i64 = 32;
    /// Any other I/O error.
    pub const EIO: i64 = 5;

    /// The name of a negated errno result (`-EPIPE` -> "EPIPE"), for messages.
    pub fn name(result: i64) -> &'static str {
        match -result {
            EBADF => "EBADF (connection not open)",
            EAGAIN => "EAGAIN (too many connections)",
            EINVAL => "EINVAL (no such endpoint)",
            ECONNRESET => "ECONNRESET (connection reset)",
            ECONNREFUSED => "ECONNREFUSED (connection refused)",
            ECANCELED => "ECANCELED (cancelled)",
            EPIPE => "EPIPE (connection broken)",
            EIO => "EIO (I/O error)",
            _ => "an I/O error",
        }
    }
}

/// A submission queue entry (guest -> VMM), 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sqe {
    /// [`Op`] code.
    pub op: u8,
    /// Connection id (or endpoint number for Connect).
    pub conn: u32,
    /// Guest address of the buffer (Recv, Send).
    pub addr: u64,
    /// Buffer length (Recv, Send), at most [`ring::MAX_IO`].
    pub len: u32,
    /// Opaque value returned in the completion.
    pub user: u64,
}

impl Sqe {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = self.op;
        put_u32(&mut b, 4, self.conn);
        put_u64(&mut b, 8, self.addr);
        put_u32(&mut b, 16, self.len);
        put_u64(&mut b, 24, self.user);
        b
    }

    /// Reads an entry.
    pub fn decode(b: &[u8; 32]) -> Sqe {
        Sqe { op: b[0], conn: get_u32(b, 4), addr: get_u64(b, 8), len: get_u32(b, 16), user: get_u64(b, 24) }
    }
}

/// A completion queue entry (VMM -> guest), 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cqe {
    /// The [`Op`] code of the submission this completes.
    pub op: u8,
    /// The connection (the new one for Accept and Connect).
    pub conn: u32,
    /// Bytes transferred, 0, or a negated [`errno`] value.
    pub result: i64,
    /// The submission's `user` value.
    pub user: u64,
}

impl Cqe {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = self.op;
        put_u32(&mut b, 4, self.conn);
        put_u64(&mut b, 8, self.result as u64);
        put_u64(&mut b, 16, self.user);
        b
    }

    /// Reads an entry.
    pub fn decode(b: &[u8; 32]) -> Cqe {
        Cqe { op: b[0], conn: get_u32(b, 4), result: get_u64(b, 8) as i64, user: get_u64(b, 16) }
    }
}

/// Offsets in the clock page, a seqlock: the VMM makes `SEQ` odd, writes the
/// fields, makes it even. A reader retries while `SEQ` is odd or changed.
/// Now = `MONO_NS` + (rdtsc - `TSC`) * `NS_PER_TSC_Q32` / 2^32 (0 until calibrated).
pub mod clock {
    /// Sequence counter (u32).
    pub const SEQ: u64 = 0;
    /// Monotonic nanoseconds since the VM started (u64).
    pub const MONO_NS: u64 = 8;
    /// Wall-clock nanoseconds since the Unix epoch (u64).
    pub const WALL_NS: u64 = 16;
    /// The TSC value at the moment of the two readings above (u64).
    pub const TSC: u64 = 24;
    /// Nanoseconds per TSC tick as a 32.32 fixed-point number (u64).
    pub const NS_PER_TSC_Q32: u64 = 32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_info_round_trips() {
        let mut b = BootInfo::new();
        b.mem_size = 256 << 20;
        b.heap_start = 0x300000;
        assert!(b.push_arg(b"first"));
        assert!(b.push_arg(b""));
        assert!(b.push_arg(b"third"));
        assert!(!b.push_arg(b"nul\0inside"));
        assert!(b.push_endpoint(b"redis"));
        let mut page = [0u8; 4096];
        b.encode(&mut page);
        let d = BootInfo::decode(&page).unwrap();
        assert_eq!(d, b);
        assert_eq!(d.arg(0), Some(&b"first"[..]));
        assert_eq!(d.arg(1), Some(&b""[..]));
        assert_eq!(d.arg(2), Some(&b"third"[..]));
        assert_eq!(d.arg(3), None);
        assert_eq!(d.endpoint(b"redis"), Some(0));
        assert_eq!(d.endpoint(b"nope"), None);
        page[8] = 9;
        assert!(BootInfo::decode(&page).is_none());
    }

    #[test]
    fn args_area_is_bounded() {
        let mut b = BootInfo::new();
        let big = [b'x'; 1000];
        let mut n = 0;
        while b.push_arg(&big) {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn entries_round_trip() {
        let s = Sqe { op: 4, conn: 7, addr: 0x1234_5678, len: 99, user: u64::MAX };
        assert_eq!(Sqe::decode(&s.encode()), s);
        let c = Cqe { op: 3, conn: 1, result: -104, user: 42 };
        assert_eq!(Cqe::decode(&c.encode()), c);
    }
}
