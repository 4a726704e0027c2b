//! Guest memory: one anonymous mapping, reached only through bounds-checked
//! accessors keyed by [`GuestAddr`].
//!
//! Every read or write names a guest address and a length; both are checked
//! against the mapping before any byte moves, so an address the guest hands us
//! can never reach host memory outside it. The guest runs concurrently and may
//! change any byte at any time: data is copied in and out (never borrowed as a
//! Rust reference), and shared indices are read and written as atomics.
//! The `unsafe` of this crate's memory handling lives in this file.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A guest physical address (equal to the guest virtual address: identity map).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestAddr(pub u64);

impl GuestAddr {
    /// The address `n` bytes further, or `None` on overflow.
    pub fn checked_add(self, n: u64) -> Option<GuestAddr> {
        self.0.checked_add(n).map(GuestAddr)
    }

    /// The raw value.
    pub fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GuestAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// An access outside guest memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guest memory access of {len} bytes at {addr} is outside the {size:#x} bytes of guest memory")]
pub struct OutOfBounds {
    /// Start of the access.
    pub addr: GuestAddr,
    /// Its length.
    pub len: u64,
    /// Guest memory size.
    pub size: u64,
}

/// Why guest memory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// mmap failed.
    #[error("cannot map {size} bytes of guest memory: {source}")]
    Map {
        /// Requested size.
        size: u64,
        /// The OS error.
        source: std::io::Error,
    },
    /// The size is zero or not a multiple of 2 MiB.
    #[error("guest memory size {0:#x} must be a non-zero multiple of 2 MiB")]
    BadSize(u64),
    /// The host's pool of 2 MiB huge pages cannot hold the guest.
    #[error(
        "guest memory of {} MiB needs {needed} free 2 MiB huge pages, the host's pool has {available} \
         (reserve more as root: `twinkle host prepare --huge-pages N` or `sysctl vm.nr_hugepages=N`, \
         or restore with --huge-pages off)",
        size >> 20
    )]
    HugePool {
        /// Requested size.
        size: u64,
        /// Huge pages the guest needs.
        needed: u64,
        /// Free, unreserved huge pages in the pool.
        available: u64,
    },
}

/// The host's pool of 2 MiB huge pages (hugetlbfs), from sysfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HugePool {
    /// Pages in the pool (vm.nr_hugepages).
    pub total: u64,
    /// Pages not in use.
    pub free: u64,
    /// Free pages promised to mappings that have not touched them yet.
    pub reserved: u64,
}

impl HugePool {
    const DIR: &'static str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

    /// Reads the pool's counters; an empty pool when the kernel has none.
    pub fn read() -> HugePool {
        let get = |f: &str| -> u64 {
            std::fs::read_to_string(format!("{}/{f}", Self::DIR)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
        };
        HugePool { total: get("nr_hugepages"), free: get("free_hugepages"), reserved: get("resv_hugepages") }
    }

    /// Pages a new mapping can still reserve.
    pub fn available(&self) -> u64 {
        self.free.saturating_sub(self.reserved)
    }

    /// Touches every free page of the pool once, so that the pages are backed
    /// by real memory when a VM takes them. On a host that is itself a VM,
    /// memory left idle goes back to the outer host and costs 10-20x more on
    /// first touch (platform notes); pool pages keep their backing once
    /// touched, because they never return to the kernel's free lists.
    /// Returns the pages touched.
    pub fn warm() -> Result<u64, MemoryError> {
        let n = HugePool::read().available();
        if n == 0 {
            return Ok(0);
        }
        let m = GuestMemory::new_hugetlb(n * guest_abi::HUGE_PAGE_SIZE)?;
        for i in 0..n {
            // One byte faults the whole 2 MiB page in (the kernel zeroes it).
            let _ = m.fill(GuestAddr(i * guest_abi::HUGE_PAGE_SIZE), 1, 0);
        }
        Ok(n)
    }

    /// Sets the pool size (root only); the kernel may grant fewer pages when
    /// memory is fragmented, so the pool is read back.
    pub fn resize(pages: u64) -> std::io::Result<HugePool> {
        std::fs::write(format!("{}/nr_hugepages", Self::DIR), pages.to_string())?;
        Ok(HugePool::read())
    }
}

/// The guest's memory: an anonymous private mapping, unmapped on drop.
pub struct GuestMemory {
    ptr: NonNull<u8>,
    size: u64,
    hugetlb: bool,
}

// SAFETY: the mapping is plain memory owned by this value; all access goes
// through methods that copy bytes or use atomics, which are sound to call from
// any thread (the guest itself writes concurrently, as hardware would).
unsafe impl Send for GuestMemory {}
// SAFETY: see `Send`: no method hands out references into the mapping.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Maps `size` bytes (a multiple of 2 MiB) of zeroed anonymous memory,
    /// reserving no swap (MAP_NORESERVE) and asking for transparent huge pages.
    pub fn new(size: u64) -> Result<GuestMemory, MemoryError> {
        let mem = Self::map(size, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1)?;
        // SAFETY: the range is exactly the mapping just made. MADV_HUGEPAGE is
        // advice; failure only means 4 KiB host pages.
        unsafe {
            libc::madvise(mem.ptr.as_ptr().cast(), mem.size as usize, libc::MADV_HUGEPAGE);
        }
        Ok(mem)
    }

    /// Maps `size` bytes of anonymous memory from the host's pool of 2 MiB
    /// huge pages (hugetlbfs). The pages are reserved now, so a short pool is
    /// an error here rather than a SIGBUS later. Every host mapping is 2 MiB,
    /// which PVM maps for the guest with one shadow fault per 2 MiB; pages
    /// can only come in whole (userfaultfd copies 2 MiB at a time).
    pub fn new_hugetlb(size: u64) -> Result<GuestMemory, MemoryError> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | libc::MAP_HUGE_2MB;
        match Self::map(size, flags, -1) {
            Ok(mut m) => {
                m.hugetlb = true;
                Ok(m)
            }
            Err(MemoryError::Map { source, .. }) if source.raw_os_error() == Some(libc::ENOMEM) => {
                Err(MemoryError::HugePool {
                    size,
                    needed: size / guest_abi::HUGE_PAGE_SIZE,
                    available: HugePool::read().available(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the memory comes from the huge-page pool ([`GuestMemory::new_hugetlb`]).
    pub fn hugetlb(&self) -> bool {
        self.hugetlb
    }

    /// Maps `size` bytes of `file` privately as guest memory: pages are read
    /// from the file (page cache) on first touch and copied on first write;
    /// the file itself is never modified (the `mmap` restore strategy).
    pub fn map_file(file: &std::fs::File, size: u64) -> Result<GuestMemory, MemoryError> {
        use std::os::fd::AsRawFd;
        Self::map(size, libc::MAP_PRIVATE, file.as_raw_fd())
    }

    /// A new read-write mapping of `size` bytes with `flags` (of `fd`, or
    /// anonymous with -1) at an address the kernel chooses.
    fn map(size: u64, flags: libc::c_int, fd: libc::c_int) -> Result<GuestMemory, MemoryError> {
        if size == 0 || size % guest_abi::HUGE_PAGE_SIZE != 0 {
            return Err(MemoryError::BadSize(size));
        }
        let len = usize::try_from(size).map_err(|_| MemoryError::BadSize(size))?;
        // SAFETY: a fresh private mapping (anonymous, or of an open file whose
        // writes go to private copies) at an address the kernel chooses; no
        // existing memory is affected. The result is checked below.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(MemoryError::Map { size, source: std::io::Error::last_os_error() });
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| MemoryError::Map { size, source: std::io::Error::other("mmap returned null") })?;
        Ok(GuestMemory { ptr, size, hugetlb: false })
    }

    /// Bytes of guest memory.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The host address of guest address 0, for KVM's memory slot.
    pub fn host_base(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Checks that `[addr, addr + len)` lies inside guest memory and returns
    /// the offset of `addr`.
    pub fn check(&self, addr: GuestAddr, len: u64) -> Result<usize, OutOfBounds> {
        let oob = || OutOfBounds { addr, len, size: self.size };
        let end = addr.0.checked_add(len).ok_or_else(oob)?;
        if end > self.size {
            return Err(oob());
        }
        usize::try_from(addr.0).map_err(|_| oob())
    }

    /// Copies `buf.len()` bytes from guest memory at `addr` into `buf`.
    pub fn read(&self, addr: GuestAddr, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let off = self.check(addr, buf.len() as u64)?;
        // SAFETY: `check` proved [off, off + len) is inside the mapping; `buf`
        // is a distinct host buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into guest memory at `addr`.
    pub fn write(&self, addr: GuestAddr, buf: &[u8]) -> Result<(), OutOfBounds> {
        let off = self.check(addr, buf.len() as u64)?;
        // SAFETY: as in `read`, with the direction reversed.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.as_ptr().add(off), buf.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `addr` to `byte`.
    pub fn fill(&self, addr: GuestAddr, len: u64, byte: u8) -> Result<(), OutOfBounds> {
        let off = self.check(addr, len)?;
        // SAFETY: `check` proved the range is inside the mapping.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(off), byte, len as usize) };
        Ok(())
    }

    /// Reads a little-endian u64.
    pub fn read_u64(&self, addr: GuestAddr) -> Result<u64, OutOfBounds> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian u64.
    pub fn write_u64(&self, addr: GuestAddr, v: u64) -> Result<(), OutOfBounds> {
        self.write(addr, &v.to_le_bytes())
    }

    fn aligned<T>(&self, addr: GuestAddr) -> Result<*mut u8, OutOfBounds> {
        let size = std::mem::size_of::<T>() as u64;
        let off = self.check(addr, size)?;
        if addr.0 % size != 0 {
            return Err(OutOfBounds { addr, len: size, size: self.size });
        }
        // SAFETY: `check` proved the range is inside the mapping.
        Ok(unsafe { self.ptr.as_ptr().add(off) })
    }

    /// Atomically loads an aligned u32 shared with the guest (acquire).
    pub fn load_u32(&self, addr: GuestAddr) -> Result<u32, OutOfBounds> {
        let p = self.aligned::<u32>(addr)?;
        // SAFETY: `p` is in bounds and 4-byte aligned; AtomicU32 has the
        // layout of u32, and all concurrent access to it is atomic.
        Ok(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.load(Ordering::Acquire))
    }

    /// Atomically stores an aligned u32 shared with the guest (release).
    pub fn store_u32(&self, addr: GuestAddr, v: u32) -> Result<(), OutOfBounds> {
        let p = self.aligned::<u32>(addr)?;
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(v, Ordering::Release);
        Ok(())
    }

    /// Atomically stores an aligned u64 shared with the guest (release).
    pub fn store_u64_atomic(&self, addr: GuestAddr, v: u64) -> Result<(), OutOfBounds> {
        let p = self.aligned::<u64>(addr)?;
        // SAFETY: as in `load_u32`, for an 8-byte aligned u64.
        unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.store(v, Ordering::Release);
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`size` describe the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.size as usize);
        }
    }
}

impl fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuestMemory({:#x} bytes)", self.size)
    }
}

/// Counts the pages marked free in the guest's free-page bitmap (docs/guest-abi.md).
/// The guest may be changing it: the count is a snapshot, exact only while
/// the vCPU is stopped.
pub fn count_free_pages(mem: &GuestMemory) -> u64 {
    let pages = mem.size() / guest_abi::PAGE_SIZE;
    let words = pages.div_ceil(64);
    let mut buf = vec![0u8; (words * 8) as usize];
    if mem.read(GuestAddr(guest_abi::layout::FREE_BITMAP), &mut buf).is_err() {
        return 0;
    }
    buf.chunks_exact(8)
        .enumerate()
        .map(|(i, w)| {
            let mut v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            let first = i as u64 * 64;
            if first + 64 > pages {
                v &= (1u64 << (pages - first)) - 1;
            }
            u64::from(v.count_ones())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounds_checked() {
        let m = GuestMemory::new(2 << 20).unwrap();
        m.write(GuestAddr(0x1000), b"hello").unwrap();
        let mut b = [0u8; 5];
        m.read(GuestAddr(0x1000), &mut b).unwrap();
        assert_eq!(&b, b"hello");
        let end = m.size();
        assert!(m.read(GuestAddr(end - 4), &mut b).is_err());
        assert!(m.write(GuestAddr(u64::MAX - 2), b"xyz").is_err());
        assert!(m.check(GuestAddr(end), 0).is_ok());
        assert!(m.check(GuestAddr(end), 1).is_err());
        assert!(m.load_u32(GuestAddr(2)).is_err(), "misaligned atomics are refused");
        m.store_u32(GuestAddr(8), 7).unwrap();
        assert_eq!(m.load_u32(GuestAddr(8)).unwrap(), 7);
    }

    #[test]
    fn sizes_must_be_whole_huge_pages() {
        assert!(matches!(GuestMemory::new(0), Err(MemoryError::BadSize(0))));
        assert!(GuestMemory::new(3 << 20).is_err());
    }

    #[test]
    fn a_pool_too_small_for_the_guest_is_an_error_that_says_how_to_grow_it() {
        // More huge pages than any test host reserves.
        let size = 1u64 << 40;
        let err = GuestMemory::new_hugetlb(size).expect_err("a 1 TiB huge-page mapping cannot be reserved");
        let msg = err.to_string();
        assert!(matches!(err, MemoryError::HugePool { needed: 524_288, .. }), "{msg}");
        assert!(msg.contains("needs 524288 free 2 MiB huge pages"), "{msg}");
        assert!(msg.contains("twinkle host prepare --huge-pages N"), "{msg}");
    }

    #[test]
    fn memory_from_the_pool_reads_and_writes_like_any_other() {
        if HugePool::read().available() < 1 {
            panic!("this test needs one free 2 MiB huge page: run as root `twinkle host prepare --huge-pages 256`");
        }
        let m = GuestMemory::new_hugetlb(2 << 20).expect("one huge page");
        assert!(m.hugetlb());
        m.write(GuestAddr(0x1ff000), b"end").unwrap();
        let mut b = [0u8; 3];
        m.read(GuestAddr(0x1ff000), &mut b).unwrap();
        assert_eq!(&b, b"end");
        assert!(m.write(GuestAddr(2 << 20), b"x").is_err());
    }
}
