//! The guest's memory allocator, and the free-page bitmap it keeps.
//!
//! Pages (4 KiB) are handed out from a bitmap with one bit per page of guest
//! memory, 1 = free. The bitmap lives where the boot-info page says and is the
//! one the VMM reads at snapshot time: a page whose bit is set holds nothing
//! the guest needs, so the VMM neither saves nor fetches it (free-page
//! avoidance) and may hand it back as zeros. Small objects (up to 2 KiB) come
//! from slab pages carved into blocks of one power-of-two size; each slab page
//! keeps its own free list and count (in a side table at the start of the
//! heap), and a slab page whose last block is freed goes back to the bitmap.
//! Large objects are runs of pages, returned to the bitmap when freed.
//!
//! The guest is single-threaded: a flag catches re-entrance (an allocation
//! from inside the allocator) and stops with a clear message.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

const PAGE: usize = 4096;
const CLASSES: usize = 8; // 16, 32, ..., 2048
const MIN_CLASS: usize = 16;
const MAX_SMALL: usize = 2048;

/// No page / no block.
const NONE: u32 = u32::MAX;
const NONE16: u16 = u16::MAX;

/// Side-table entry of a slab page.
#[derive(Clone, Copy)]
#[repr(C)]
struct SlabMeta {
    /// Next and previous page of the class's list of pages with free blocks.
    next: u32,
    prev: u32,
    /// First free block (its first two bytes hold the next one's index).
    free_head: u16,
    /// Blocks handed out.
    used: u16,
    /// Blocks carved so far; those at and after it were never used.
    carved: u16,
    class: u16,
}

struct State {
    bitmap: *mut u64,
    pages: usize,
    heap_first: usize,
    heap_last: usize,
    hint: usize,
    /// Per class: the first slab page with a free block (page number) or NONE.
    partial: [u32; CLASSES],
    /// Side table, one entry per heap page (indexed by page - heap_first).
    meta: *mut SlabMeta,
    used_pages: usize,
    busy: bool,
}

/// The global allocator of a guest.
pub struct PageAllocator {
    state: UnsafeCell<State>,
}

// SAFETY: guests are single-threaded (one vCPU, no interrupts); re-entrance is
// detected with `busy`.
unsafe impl Sync for PageAllocator {}

impl PageAllocator {
    /// An allocator that is not initialized yet (allocations fail).
    pub const fn new() -> Self {
        PageAllocator {
            state: UnsafeCell::new(State {
                bitmap: ptr::null_mut(),
                pages: 0,
                heap_first: 0,
                heap_last: 0,
                hint: 0,
                partial: [NONE; CLASSES],
                meta: ptr::null_mut(),
                used_pages: 0,
                busy: false,
            }),
        }
    }

    /// Sets up the bitmap: every page used, then the heap pages free.
    ///
    /// # Safety
    /// Called once, before any allocation, with the boot info's values: the
    /// bitmap area holds `pages` bits and the heap range is memory nobody else uses.
    pub unsafe fn init(&self, bitmap: u64, pages: u64, heap_start: u64, heap_end: u64) {
        // SAFETY: single-threaded; no allocation is in progress during init.
        let s = unsafe { &mut *self.state.get() };
        s.bitmap = bitmap as *mut u64;
        s.pages = pages as usize;
        let words = s.pages.div_ceil(64);
        for w in 0..words {
            // SAFETY: the bitmap area holds `pages` bits (caller's contract).
            unsafe { s.bitmap.add(w).write_volatile(0) };
        }
        s.heap_first = (heap_start as usize).div_ceil(PAGE);
        s.heap_last = (heap_end as usize) / PAGE;
        for p in s.heap_first..s.heap_last.min(s.pages) {
            s.set_free(p, true);
        }
        s.hint = s.heap_first;
        // The slab side table takes the first heap pages.
        let entries = s.heap_last.saturating_sub(s.heap_first);
        let table_pages = (entries * core::mem::size_of::<SlabMeta>()).div_ceil(PAGE);
        s.meta = s.alloc_pages(table_pages.max(1), 1).cast::<SlabMeta>();
        if s.meta.is_null() {
            crate::hypercall::panic_exit(b"heap too small for the allocator's side table");
        }
    }

    /// Pages in use (slabs and large objects).
    pub fn used_pages(&self) -> usize {
        // SAFETY: a read of a plain field; single-threaded.
        unsafe { (*self.state.get()).used_pages }
    }

    /// Pages free in the heap.
    pub fn free_pages(&self) -> usize {
        // SAFETY: as above.
        let s = unsafe { &*self.state.get() };
        (s.heap_last - s.heap_first).saturating_sub(s.used_pages)
    }
}

impl Default for PageAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn is_free(&self, p: usize) -> bool {
        // SAFETY: callers pass p < pages; the bitmap holds `pages` bits.
        unsafe { self.bitmap.add(p / 64).read_volatile() >> (p % 64) & 1 == 1 }
    }

    fn set_free(&mut self, p: usize, free: bool) {
        // SAFETY: as in `is_free`.
        unsafe {
            let w = self.bitmap.add(p / 64);
            let v = w.read_volatile();
            let bit = 1u64 << (p % 64);
            w.write_volatile(if free { v | bit } else { v & !bit });
        }
    }

    /// First-fit run of `n` free pages whose first page is a multiple of `align`.
    fn find_run(&self, n: usize, align: usize, from: usize) -> Option<usize> {
        let end = self.heap_last.min(self.pages);
        let mut p = from.max(self.heap_first).next_multiple_of(align);
        while p + n <= end {
            // Skip whole used words quickly.
            if p.is_multiple_of(64) {
                // SAFETY: p < pages, so word p/64 is inside the bitmap.
                let word = unsafe { self.bitmap.add(p / 64).read_volatile() };
                if word == 0 {
                    p = (p + 64).next_multiple_of(align);
                    continue;
                }
            }
            match (p..p + n).find(|&q| !self.is_free(q)) {
                None => return Some(p),
                Some(used) => p = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    fn alloc_pages(&mut self, n: usize, align: usize) -> *mut u8 {
        let start = self.find_run(n, align, self.hint).or_else(|| self.find_run(n, align, self.heap_first));
        let Some(p) = start else {
            return ptr::null_mut();
        };
        for q in p..p + n {
            self.set_free(q, false);
        }
        self.used_pages += n;
        if n == 1 {
            self.hint = p + 1;
        }
        (p * PAGE) as *mut u8
    }

    fn free_pages(&mut self, at: *mut u8, n: usize) {
        let p = at as usize / PAGE;
        for q in p..p + n {
            if q >= self.heap_first && q < self.heap_last {
                self.set_free(q, true);
            }
        }
        self.used_pages = self.used_pages.saturating_sub(n);
        if p < self.hint {
            self.hint = p;
        }
    }
}

impl State {
    fn meta(&mut self, page: u32) -> &mut SlabMeta {
        // SAFETY: `page` is a heap page (slab pages come from the heap), so its
        // index is inside the side table made in `init`.
        unsafe { &mut *self.meta.add(page as usize - self.heap_first) }
    }

    fn unlink(&mut self, page: u32, c: usize) {
        let (next, prev) = {
            let m = self.meta(page);
            (m.next, m.prev)
        };
        if prev == NONE {
            self.partial[c] = next;
        } else {
            self.meta(prev).next = next;
        }
        if next != NONE {
            self.meta(next).prev = prev;
        }
    }

    fn push_partial(&mut self, page: u32, c: usize) {
        let head = self.partial[c];
        {
            let m = self.meta(page);
            m.next = head;
            m.prev = NONE;
        }
        if head != NONE {
            self.meta(head).prev = page;
        }
        self.partial[c] = page;
    }

    fn alloc_small(&mut self, c: usize) -> *mut u8 {
        let size = MIN_CLASS << c;
        let per_page = (PAGE / size) as u16;
        if self.partial[c] == NONE {
            let base = self.alloc_pages(1, 1);
            if base.is_null() {
                return ptr::null_mut();
            }
            let page = (base as usize / PAGE) as u32;
            *self.meta(page) =
                SlabMeta { next: NONE, prev: NONE, free_head: NONE16, used: 0, carved: 0, class: c as u16 };
            self.push_partial(page, c);
        }
        let page = self.partial[c];
        let base = page as usize * PAGE;
        let m = self.meta(page);
        let idx = if m.free_head != NONE16 {
            let i = m.free_head;
            // SAFETY: a free block of this slab page holds the next index.
            m.free_head = unsafe { ((base + i as usize * size) as *const u16).read() };
            i
        } else {
            let i = m.carved;
            m.carved += 1;
            i
        };
        m.used += 1;
        let full = m.used == per_page;
        if full {
            self.unlink(page, c);
        }
        (base + idx as usize * size) as *mut u8
    }

    fn free_small(&mut self, p: *mut u8, c: usize) {
        let size = MIN_CLASS << c;
        let per_page = (PAGE / size) as u16;
        let page = (p as usize / PAGE) as u32;
        let idx = ((p as usize % PAGE) / size) as u16;
        let m = self.meta(page);
        let was_full = m.used == per_page;
        // SAFETY: `p` is a block of this page, ours again; it stores the list link.
        unsafe { p.cast::<u16>().write(m.free_head) };
        m.free_head = idx;
        m.used -= 1;
        let empty = m.used == 0;
        if empty {
            if !was_full {
                self.unlink(page, c);
            }
            self.free_pages((page as usize * PAGE) as *mut u8, 1);
        } else if was_full {
            self.push_partial(page, c);
        }
    }
}

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(MIN_CLASS);
    if size > MAX_SMALL {
        return None;
    }
    let size = size.next_power_of_two();
    Some(size.trailing_zeros() as usize - MIN_CLASS.trailing_zeros() as usize)
}

unsafe impl GlobalAlloc for PageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `busy` rejects re-entrance below.
        let s = unsafe { &mut *self.state.get() };
        if s.busy {
            crate::hypercall::panic_exit(b"allocator re-entered");
        }
        s.busy = true;
        let out = match class_of(&layout) {
            Some(c) => s.alloc_small(c),
            None => {
                let n = layout.size().div_ceil(PAGE);
                let align = (layout.align() / PAGE).max(1);
                s.alloc_pages(n, align)
            }
        };
        s.busy = false;
        out
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: single-threaded, as in alloc.
        let s = unsafe { &mut *self.state.get() };
        match class_of(&layout) {
            Some(c) => s.free_small(p, c),
            None => s.free_pages(p, layout.size().div_ceil(PAGE)),
        }
    }
}
