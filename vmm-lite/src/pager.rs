//! Lazy restore: guest memory starts empty and every page is brought in on
//! its first touch, by a userfaultfd handler thread (the `lazy` strategy, the
//! paper's "demand paging" baseline).
//!
//! A fault on a page that was free in the guest at the snapshot is answered
//! with a zero page, without reading anything; any other page is read from
//! memory.bin, checked against its CRC, and copied in. Faults come from the
//! vCPU (through KVM) and from the VMM's own accesses to guest memory, which
//! is why the handler is a thread of its own that never touches guest memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use userfaultfd::{Event, Uffd, UffdBuilder};

use crate::error::VmmError;
use crate::memory::GuestMemory;
use crate::snapshot::{page_free, Image, MEMORY_FILE};

const PAGE: usize = 4096;

/// Counters of the page server, reported in restore stats.
#[derive(Debug, Default)]
pub struct PagerStats {
    /// Pages read from the image because the guest touched them.
    pub demand: AtomicU64,
    /// Pages answered with zeros because they were free at the snapshot.
    pub zero: AtomicU64,
    /// Bytes read from the image.
    pub bytes: AtomicU64,
    /// Time spent serving faults (the vCPU waits meanwhile), ns.
    pub stall_ns: AtomicU64,
}

/// A snapshot of [`PagerStats`].
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct PagerReport {
    /// Demand faults served from the image.
    pub demand_faults: u64,
    /// Faults served with zero pages (free-page avoidance).
    pub zero_faults: u64,
    /// Bytes read from the image.
    pub bytes_fetched: u64,
    /// Time the handler spent serving faults, ms.
    pub stall_ms: f64,
}

impl PagerStats {
    /// The counters now.
    pub fn report(&self) -> PagerReport {
        PagerReport {
            demand_faults: self.demand.load(Ordering::Relaxed),
            zero_faults: self.zero.load(Ordering::Relaxed),
            bytes_fetched: self.bytes.load(Ordering::Relaxed),
            stall_ms: self.stall_ns.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Registers `mem` with a userfaultfd and starts the handler thread.
pub fn start(mem: &GuestMemory, image: &Image, stats: Arc<PagerStats>) -> Result<(), VmmError> {
    let uffd_err = |e: userfaultfd::Error| VmmError::Io {
        what: "userfaultfd (lazy restore needs it; as non-root set vm.unprivileged_userfaultfd=1)".into(),
        source: std::io::Error::other(e.to_string()),
    };
    // Faults from KVM are kernel-mode accesses: user_mode_only must be off.
    let uffd =
        UffdBuilder::new().close_on_exec(true).non_blocking(false).user_mode_only(false).create().map_err(uffd_err)?;
    uffd.register(mem.host_base() as *mut libc::c_void, mem.size() as usize).map_err(uffd_err)?;
    let path = image.dir.join(MEMORY_FILE);
    let file =
        File::open(&path).map_err(|source| VmmError::Io { what: format!("cannot open {}", path.display()), source })?;
    let server = Server {
        uffd,
        file,
        path,
        base: mem.host_base(),
        size: mem.size(),
        bitmap: image.bitmap.clone(),
        page_crcs: image.page_crcs.clone(),
        stats,
    };
    std::thread::Builder::new()
        .name("vm-pager".into())
        .spawn(move || server.serve())
        .map_err(|source| VmmError::Io { what: "cannot start the page-fault handler".into(), source })?;
    Ok(())
}

struct Server {
    uffd: Uffd,
    file: File,
    path: PathBuf,
    base: u64,
    size: u64,
    bitmap: Vec<u8>,
    page_crcs: Vec<u32>,
    stats: Arc<PagerStats>,
}

impl Server {
    /// Ends the process: a page the VM needs cannot be had, and a VM must
    /// never run on wrong memory.
    fn fatal(&self, why: String) -> ! {
        eprintln!("lazy restore: {why}");
        std::process::exit(70)
    }

    fn serve(self) {
        let mut buf = vec![0u8; PAGE];
        loop {
            let event = match self.uffd.read_event() {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => self.fatal(format!("reading userfaultfd events failed: {e}")),
            };
            let Event::Pagefault { addr, .. } = event else { continue };
            let t0 = Instant::now();
            let host = addr as u64 & !(PAGE as u64 - 1);
            let Some(off) = host.checked_sub(self.base).filter(|o| *o < self.size) else {
                self.fatal(format!("fault at {host:#x}, outside guest memory"));
            };
            let page = off / PAGE as u64;
            let dst = host as *mut libc::c_void;
            let result = if page_free(&self.bitmap, page) {
                self.stats.zero.fetch_add(1, Ordering::Relaxed);
                // SAFETY: `dst` is a page-aligned address inside the registered
                // guest mapping, which outlives this thread (one VM per process).
                unsafe { self.uffd.zeropage(dst, PAGE, true) }.map(|_| ())
            } else {
                if let Err(e) = self.file.read_exact_at(&mut buf, off) {
                    self.fatal(format!("{}: cannot read page at {off:#x}: {e}", self.path.display()));
                }
                if self.page_crcs.get(page as usize).copied() != Some(crc32fast::hash(&buf)) {
                    self.fatal(format!(
                        "{}: section memory: page {page} (offset {off:#x}) fails its checksum",
                        self.path.display()
                    ));
                }
                self.stats.demand.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(PAGE as u64, Ordering::Relaxed);
                // SAFETY: as above; `buf` is a live 4 KiB buffer.
                unsafe { self.uffd.copy(buf.as_ptr().cast(), dst, PAGE, true) }.map(|_| ())
            };
            match result {
                Ok(()) => {}
                // Another fault on the same page was served first.
                Err(userfaultfd::Error::CopyFailed(errno)) | Err(userfaultfd::Error::ZeropageFailed(errno))
                    if errno as i32 == libc::EEXIST => {}
                Err(e) => self.fatal(format!("serving the fault at {off:#x} failed: {e}")),
            }
            self.stats.stall_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}
