//! The page server of restored VMs: guest memory starts empty and pages come
//! in through userfaultfd (the `lazy` and `twinkle` strategies).
//!
//! The three Twinkle techniques live here, each switchable on its own:
//! - **working set**: the pages the image's tracking run touched are loaded in
//!   bulk before the vCPU runs: contiguous runs, one read and one UFFDIO_COPY
//!   each;
//! - **demand prediction**: memory is cut into segments of N pages; when more
//!   than P demand faults hit a segment, the rest of it is fetched right after
//!   the faulting page, while the vCPU already runs again;
//! - **free-page avoidance**: pages free in the guest at the snapshot are
//!   answered with zero pages, never read.
//!
//! Plus a background fetch of everything else, so the VM ends fully resident.
//!
//! The unit of a fault follows the memory: 4 KiB pages for ordinary memory,
//! whole 2 MiB pages for memory from the host's huge-page pool (userfaultfd
//! serves hugetlbfs only in its own page size). With 2 MiB units a chunk's
//! free pages are still never read: they are zeros in the copied chunk.
//! Every page read from the image is checked against its CRC; a bad page ends
//! the process (a VM must never run on wrong memory). The handler threads never
//! touch guest memory through the VMM's accessors, only through UFFDIO ioctls.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use userfaultfd::{Event, Uffd, UffdBuilder};

use crate::error::VmmError;
use crate::memory::GuestMemory;
use crate::snapshot::store::MemorySource;
use crate::snapshot::{page_free, Image};

const PAGE: usize = 4096;
/// Largest run fetched with one read and one copy.
const MAX_RUN: usize = 512;
/// Working-set pages this close together are read as one range, the pages
/// between them included: one large read instead of many small ones (what
/// matters with a remote image, where every request costs a round trip).
const WS_GAP: u64 = 32;

/// Which techniques a restore uses.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Techniques {
    /// Load the image's working set before the vCPU runs.
    pub working_set: bool,
    /// Fetch the rest of a segment after more than `predict_after` faults in it.
    pub prediction: bool,
    /// Answer pages free at the snapshot with zero pages.
    pub free_pages: bool,
    /// Fetch the remaining pages in the background after start.
    pub background: bool,
    /// Segment size for prediction, in pages.
    pub segment_pages: u32,
    /// Demand faults in a segment above which the rest is fetched.
    pub predict_after: u32,
}

impl Techniques {
    /// Plain demand paging (`lazy`): free-page avoidance only.
    pub fn lazy() -> Self {
        Techniques {
            working_set: false,
            prediction: false,
            free_pages: true,
            background: false,
            segment_pages: 128,
            predict_after: 2,
        }
    }

    /// Everything on (`twinkle`).
    pub fn twinkle() -> Self {
        Techniques { working_set: true, prediction: true, free_pages: true, background: true, ..Techniques::lazy() }
    }
}

/// Counters of the page server, reported in restore stats.
#[derive(Debug, Default)]
pub struct PagerStats {
    /// Pages read because the guest touched them.
    pub demand: AtomicU64,
    /// Pages fetched ahead by demand prediction.
    pub predicted: AtomicU64,
    /// Pages answered with zeros (free at the snapshot).
    pub zero: AtomicU64,
    /// Pages loaded with the working set.
    pub working_set: AtomicU64,
    /// Pages fetched in the background.
    pub background: AtomicU64,
    /// Bytes read from the image.
    pub bytes: AtomicU64,
    /// Time spent serving faults (the vCPU waits meanwhile), ns.
    pub stall_ns: AtomicU64,
    /// Time to load the working set, ns.
    pub working_set_ns: AtomicU64,
    /// Pages in first-touch order, when recording (working-set estimation).
    pub touched: Mutex<Option<Vec<u32>>>,
    /// Whether `touched` records (checked per fault without taking the lock).
    recording: AtomicBool,
    /// Set when the VM has ended: the background fetch stops.
    pub stop: AtomicBool,
    /// Pages per fault (set when the pager starts).
    unit_pages: AtomicU64,
}

/// A snapshot of [`PagerStats`].
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct PagerReport {
    /// Demand faults served from the image (the paper's remote page faults).
    pub demand_faults: u64,
    /// Pages fetched by demand prediction.
    pub predicted_pages: u64,
    /// Faults served with zero pages (free-page avoidance).
    pub zero_faults: u64,
    /// Pages loaded with the working set before the vCPU ran.
    pub working_set_pages: u64,
    /// Pages fetched in the background.
    pub background_pages: u64,
    /// Bytes read from the image.
    pub bytes_fetched: u64,
    /// Time the handler spent serving demand faults (the vCPU stalled), ms.
    pub stall_ms: f64,
    /// Time to load the working set, ms.
    pub working_set_ms: f64,
    /// KiB per fault: 4, or 2048 for memory from the huge-page pool.
    pub fault_unit_kib: u64,
}

impl PagerStats {
    /// The counters now.
    pub fn report(&self) -> PagerReport {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PagerReport {
            demand_faults: l(&self.demand),
            predicted_pages: l(&self.predicted),
            zero_faults: l(&self.zero),
            working_set_pages: l(&self.working_set),
            background_pages: l(&self.background),
            bytes_fetched: l(&self.bytes),
            stall_ms: l(&self.stall_ns) as f64 / 1e6,
            working_set_ms: l(&self.working_set_ns) as f64 / 1e6,
            fault_unit_kib: l(&self.unit_pages).max(1) * PAGE as u64 / 1024,
        }
    }

    /// Starts recording pages in first-touch order.
    pub fn record(&self) {
        *self.touched.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        self.recording.store(true, Ordering::SeqCst);
    }

    /// The pages recorded so far.
    pub fn touched(&self) -> Vec<u32> {
        self.touched.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default()
    }
}

/// What the handler threads share.
struct Shared {
    /// Keeps the guest mapping alive as long as a handler thread may copy into it.
    _mem: Arc<GuestMemory>,
    uffd: Uffd,
    memory: Arc<dyn MemorySource>,
    path: PathBuf,
    base: u64,
    pages: u64,
    bitmap: Vec<u8>,
    page_crcs: Vec<u32>,
    stats: Arc<PagerStats>,
    tech: Techniques,
    /// Pages known to be in guest memory (a hint: UFFDIO_COPY's EEXIST is the truth).
    present: Vec<AtomicBool>,
    /// Demand faults per segment.
    seg_faults: Vec<AtomicU64>,
    /// Pages per fault unit: 1, or [`HUGE_UNIT`] for hugetlb memory.
    unit: u64,
    /// Pages per prediction segment (a multiple of `unit`).
    segment: u64,
}

/// Pages in a 2 MiB huge page.
const HUGE_UNIT: u64 = guest_abi::HUGE_PAGE_SIZE / PAGE as u64;

/// Registers `mem` with a userfaultfd, loads the working set if asked, and
/// starts the fault handler (and the background fetcher).
pub fn start(mem: &Arc<GuestMemory>, image: &Image, stats: Arc<PagerStats>, tech: Techniques) -> Result<(), VmmError> {
    let uffd_err = |e: userfaultfd::Error| VmmError::Io {
        what: "userfaultfd (page-at-a-time restores need it; as non-root set vm.unprivileged_userfaultfd=1)".into(),
        source: std::io::Error::other(e.to_string()),
    };
    let memory = Arc::clone(&image.memory);
    let path = memory.name();
    let pages = mem.size() / PAGE as u64;
    let present: Vec<AtomicBool> = (0..pages).map(|_| AtomicBool::new(false)).collect();
    // Faults from KVM are kernel-mode accesses: user_mode_only must be off.
    let uffd =
        UffdBuilder::new().close_on_exec(true).non_blocking(false).user_mode_only(false).create().map_err(uffd_err)?;
    uffd.register(mem.host_base() as *mut libc::c_void, mem.size() as usize).map_err(uffd_err)?;
    let unit = if mem.hugetlb() { HUGE_UNIT } else { 1 };
    stats.unit_pages.store(unit, Ordering::Relaxed);
    // A segment smaller than the fault unit has nothing left to predict.
    let segment = u64::from(tech.segment_pages.max(1)).div_ceil(unit) * unit;
    let segs = pages.div_ceil(segment);
    let shared = Arc::new(Shared {
        _mem: Arc::clone(mem),
        uffd,
        memory,
        path,
        base: mem.host_base(),
        pages,
        bitmap: image.bitmap.clone(),
        page_crcs: image.page_crcs.clone(),
        stats,
        tech,
        present,
        seg_faults: (0..segs).map(|_| AtomicU64::new(0)).collect(),
        unit,
        segment,
    });
    if tech.working_set {
        let t0 = Instant::now();
        let mut ws: Vec<u64> = image.working_set.iter().map(|p| u64::from(*p)).filter(|p| *p < pages).collect();
        ws.sort_unstable();
        ws.dedup();
        let n = if unit == 1 { shared.fetch_coalesced(&ws, WS_GAP) } else { shared.fetch_pages(&ws, Kind::WorkingSet) };
        shared.stats.working_set.fetch_add(n, Ordering::Relaxed);
        shared.stats.working_set_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    let handler = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("vm-pager".into())
        .spawn(move || handler.serve())
        .map_err(|source| VmmError::Io { what: "cannot start the page-fault handler".into(), source })?;
    if tech.background {
        let bg = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("vm-prefetch".into())
            .spawn(move || bg.background())
            .map_err(|source| VmmError::Io { what: "cannot start the background fetcher".into(), source })?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Demand,
    Predicted,
    WorkingSet,
    Background,
}

impl Shared {
    /// Ends the process: a page the VM needs cannot be had, and a VM must
    /// never run on wrong memory.
    fn fatal(&self, why: String) -> ! {
        eprintln!("restore: {why}");
        std::process::exit(70)
    }

    fn free(&self, p: u64) -> bool {
        self.tech.free_pages && page_free(&self.bitmap, p)
    }

    /// Copies `n` pages from `buf` to guest page `first`; pages already there
    /// are skipped. Returns the pages copied.
    fn copy_in(&self, first: u64, buf: &[u8], wake: bool) -> u64 {
        let n = (buf.len() / PAGE) as u64;
        let mut done = 0u64;
        let mut i = 0u64;
        while i < n {
            let dst = (self.base + (first + i) * PAGE as u64) as *mut libc::c_void;
            let src = buf[(i as usize) * PAGE..].as_ptr();
            let len = ((n - i) as usize) * PAGE;
            // SAFETY: `dst` is page-aligned inside the registered guest mapping,
            // which lives as long as the process (one VM per process); `src`
            // points into `buf`, valid for `len` bytes.
            match unsafe { self.uffd.copy(src.cast(), dst, len, wake) } {
                Ok(bytes) => {
                    let k = (bytes / PAGE) as u64;
                    for q in first + i..first + i + k {
                        self.present[q as usize].store(true, Ordering::Relaxed);
                    }
                    done += k;
                    i += k.max(1);
                }
                Err(userfaultfd::Error::PartiallyCopied(bytes)) => {
                    let k = (bytes / PAGE) as u64;
                    done += k;
                    i += k;
                }
                Err(userfaultfd::Error::CopyFailed(e)) if e as i32 == libc::EEXIST => {
                    // Some page in the range is already there: go page by page.
                    if len == PAGE {
                        self.present[(first + i) as usize].store(true, Ordering::Relaxed);
                        // Whoever faulted on it may wait for a wake the other
                        // copier did not give.
                        let _ = self.uffd.wake(dst, PAGE);
                        i += 1;
                    } else {
                        let sub = &buf[(i as usize) * PAGE..(i as usize + 1) * PAGE];
                        done += self.copy_in(first + i, sub, wake);
                        i += 1;
                    }
                }
                // The VM has ended; nothing needs this page any more.
                Err(userfaultfd::Error::CopyFailed(_)) if self.stats.stop.load(Ordering::Relaxed) => return done,
                Err(userfaultfd::Error::CopyFailed(e)) => {
                    self.fatal(format!("copying pages at {:#x} failed: {e}", (first + i) * PAGE as u64))
                }
                Err(e) => self.fatal(format!("copying pages at {:#x} failed: {e}", (first + i) * PAGE as u64)),
            }
        }
        done
    }

    /// Checks pages read from the image (starting at page `first`) against their CRCs.
    fn check_pages(&self, first: u64, data: &[u8]) {
        for (k, page) in data.chunks_exact(PAGE).enumerate() {
            let p = first + k as u64;
            if self.page_crcs.get(p as usize).copied() != Some(crc32fast::hash(page)) {
                self.fatal(format!(
                    "{}: section memory: page {p} (offset {:#x}) fails its checksum",
                    self.path.display(),
                    p * PAGE as u64
                ));
            }
        }
    }

    /// Whether every page of the unit starting at `first` was free at the snapshot.
    fn unit_free(&self, first: u64) -> bool {
        (first..first + self.unit).all(|p| self.free(p))
    }

    /// Reads the huge page starting at page `first` (its free pages as zeros,
    /// never read), checks it and copies it in whole. Returns the pages
    /// copied (0 when it was already there).
    fn fetch_chunk(&self, first: u64, buf: &mut Vec<u8>, kind: Kind) -> u64 {
        let len = self.unit as usize * PAGE;
        buf.clear();
        buf.resize(len, 0);
        let mut k = 0u64;
        while k < self.unit {
            if self.free(first + k) {
                k += 1;
                continue;
            }
            let mut n = 1;
            while k + n < self.unit && !self.free(first + k + n) {
                n += 1;
            }
            let run = &mut buf[k as usize * PAGE..(k + n) as usize * PAGE];
            let off = (first + k) * PAGE as u64;
            if let Err(e) = self.memory.read_exact_at(run, off) {
                self.fatal(format!("cannot read {} bytes at {off:#x}: {e}", run.len()));
            }
            self.check_pages(first + k, run);
            self.stats.bytes.fetch_add(run.len() as u64, Ordering::Relaxed);
            k += n;
        }
        let dst = (self.base + first * PAGE as u64) as *mut libc::c_void;
        // SAFETY: `dst` is huge-page aligned inside the registered guest
        // mapping, which lives as long as the process; `buf` holds `len` bytes.
        let copied = match unsafe { self.uffd.copy(buf.as_ptr().cast(), dst, len, true) } {
            Ok(_) => self.unit,
            Err(userfaultfd::Error::CopyFailed(e)) if e as i32 == libc::EEXIST => {
                // Another copier won; whoever faulted may wait for a wake.
                let _ = self.uffd.wake(dst, len);
                0
            }
            Err(userfaultfd::Error::CopyFailed(_)) if self.stats.stop.load(Ordering::Relaxed) => return 0,
            Err(e) => self.fatal(format!("copying the huge page at {:#x} failed: {e}", first * PAGE as u64)),
        };
        for q in first..first + self.unit {
            self.present[q as usize].store(true, Ordering::Relaxed);
        }
        match kind {
            Kind::Predicted => self.stats.predicted.fetch_add(copied, Ordering::Relaxed),
            Kind::Background => self.stats.background.fetch_add(copied, Ordering::Relaxed),
            _ => 0,
        };
        copied
    }

    /// Reads pages `[first, first + n)` from the image, checks them, copies them in.
    fn fetch_run(&self, first: u64, n: u64, buf: &mut Vec<u8>, kind: Kind) -> u64 {
        let len = (n as usize) * PAGE;
        buf.resize(len, 0);
        let off = first * PAGE as u64;
        if let Err(e) = self.memory.read_exact_at(&mut buf[..len], off) {
            self.fatal(format!("cannot read {len} bytes at {off:#x}: {e}"));
        }
        self.check_pages(first, &buf[..len]);
        self.stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
        let copied = self.copy_in(first, &buf[..len], true);
        match kind {
            Kind::Predicted => self.stats.predicted.fetch_add(copied, Ordering::Relaxed),
            Kind::Background => self.stats.background.fetch_add(copied, Ordering::Relaxed),
            _ => 0,
        };
        copied
    }

    /// Fetches the given sorted pages in runs, skipping free and present ones.
    fn fetch_pages(&self, pages: &[u64], kind: Kind) -> u64 {
        let mut buf = Vec::new();
        let mut done = 0;
        if self.unit > 1 {
            let mut last = None;
            for p in pages {
                let first = p / self.unit * self.unit;
                if last == Some(first) || self.present[first as usize].load(Ordering::Relaxed) {
                    continue;
                }
                last = Some(first);
                done += self.fetch_chunk(first, &mut buf, kind);
            }
            return done;
        }
        let mut i = 0;
        while i < pages.len() {
            let p = pages[i];
            if self.present[p as usize].load(Ordering::Relaxed) || self.free(p) {
                i += 1;
                continue;
            }
            let mut n = 1;
            while i + n < pages.len()
                && n < MAX_RUN
                && pages[i + n] == p + n as u64
                && !self.present[(p + n as u64) as usize].load(Ordering::Relaxed)
                && !self.free(p + n as u64)
            {
                n += 1;
            }
            done += self.fetch_run(p, n as u64, &mut buf, kind);
            i += n;
        }
        done
    }

    /// Fetches sorted pages as ranges that bridge gaps of up to `gap` pages
    /// (at most [`MAX_RUN`] pages each). Returns the pages copied in.
    fn fetch_coalesced(&self, pages: &[u64], gap: u64) -> u64 {
        let mut buf = Vec::new();
        let mut done = 0;
        let mut i = 0;
        while i < pages.len() {
            let first = pages[i];
            let mut last = first;
            let mut j = i + 1;
            while j < pages.len() && pages[j] - last <= gap + 1 && pages[j] - first < MAX_RUN as u64 {
                last = pages[j];
                j += 1;
            }
            done += self.fetch_run(first, last - first + 1, &mut buf, Kind::WorkingSet);
            i = j;
        }
        done
    }

    fn zero(&self, p: u64) {
        let dst = (self.base + p * PAGE as u64) as *mut libc::c_void;
        // SAFETY: as in `copy_in`.
        match unsafe { self.uffd.zeropage(dst, PAGE, true) } {
            Ok(_) => {}
            Err(userfaultfd::Error::ZeropageFailed(e)) if e as i32 == libc::EEXIST => {
                let _ = self.uffd.wake(dst, PAGE);
            }
            Err(e) => self.fatal(format!("zero page at {:#x} failed: {e}", p * PAGE as u64)),
        }
        self.present[p as usize].store(true, Ordering::Relaxed);
    }

    fn serve(&self) {
        let mut buf = Vec::new();
        loop {
            let event = match self.uffd.read_event() {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => self.fatal(format!("reading userfaultfd events failed: {e}")),
            };
            let Event::Pagefault { addr, .. } = event else { continue };
            let t0 = Instant::now();
            let host = addr as u64 & !(PAGE as u64 - 1);
            let Some(p) = host.checked_sub(self.base).map(|o| o / PAGE as u64).filter(|p| *p < self.pages) else {
                self.fatal(format!("fault at {host:#x}, outside guest memory"));
            };
            if self.stats.recording.load(Ordering::Relaxed) {
                if let Some(t) = self.stats.touched.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    t.push(p as u32);
                }
            }
            if self.unit > 1 {
                let first = p / self.unit * self.unit;
                let counter = if self.unit_free(first) { &self.stats.zero } else { &self.stats.demand };
                counter.fetch_add(1, Ordering::Relaxed);
                self.fetch_chunk(first, &mut buf, Kind::Demand);
            } else if self.free(p) {
                self.stats.zero.fetch_add(1, Ordering::Relaxed);
                self.zero(p);
            } else {
                self.stats.demand.fetch_add(1, Ordering::Relaxed);
                self.fetch_run(p, 1, &mut buf, Kind::Demand);
            }
            self.stats.stall_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if self.tech.prediction {
                self.predict(p);
            }
        }
    }

    /// Demand prediction: after more than P faults in a segment, fetch the
    /// rest of it (the vCPU was already woken for its own page).
    fn predict(&self, p: u64) {
        let n = self.segment;
        let seg = (p / n) as usize;
        let faults = self.seg_faults[seg].fetch_add(1, Ordering::Relaxed) + 1;
        if faults != u64::from(self.tech.predict_after) + 1 {
            return;
        }
        let first = seg as u64 * n;
        let rest: Vec<u64> = (first..(first + n).min(self.pages)).collect();
        self.fetch_pages(&rest, Kind::Predicted);
    }

    /// Fetches every page not yet present, in large runs, at low priority.
    fn background(&self) {
        // SAFETY: setpriority on this thread only (who = 0 with PRIO_PROCESS
        // means the calling thread on Linux); it changes scheduling, nothing else.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
        let all: Vec<u64> = (0..self.pages).collect();
        for chunk in all.chunks(MAX_RUN) {
            if self.stats.stop.load(Ordering::Relaxed) {
                return;
            }
            self.fetch_pages(chunk, Kind::Background);
        }
    }
}
