//! x86-64 structures for entering a guest at CPL3 in long mode: identity page
//! tables with user pages (2 MiB pages except the first and last 2 MiB), the
//! TSS whose I/O bitmap lets the guest `out` to our ports, and the segment and
//! control-register values that make the vCPU run at CPL3 on PVM (SS.DPL = 3).

use guest_abi::layout as L;
use guest_abi::{port, HUGE_PAGE_SIZE, PAGE_SIZE};
use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};

use crate::memory::{GuestAddr, GuestMemory, OutOfBounds};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
const HUGE: u64 = 1 << 7;
/// Flags of every present entry. A and D are preset: on PVM that saves an
/// extra fault per page on first touch (platform notes).
const FLAGS: u64 = PRESENT | WRITABLE | USER | ACCESSED | DIRTY;

/// Largest guest memory the fixed layout's page directories cover.
pub const MAX_MEM: u64 = L::MAX_PDS << 30;

/// Writes identity page tables for `mem.size()` bytes.
///
/// The first 2 MiB use 4 KiB pages with page 0 absent (null pointers fault);
/// the last 2 MiB use 4 KiB pages with one absent page below the stack (a stack
/// overflow faults instead of corrupting the heap); everything else uses 2 MiB pages.
pub fn write_page_tables(mem: &GuestMemory) -> Result<(), OutOfBounds> {
    let size = mem.size();
    let n_huge = size / HUGE_PAGE_SIZE;
    let n_pds = size.div_ceil(1 << 30);
    mem.write_u64(GuestAddr(L::PML4), L::PDPT | FLAGS)?;
    for i in 0..n_pds {
        let pd = L::PD_BASE + i * PAGE_SIZE;
        mem.write_u64(GuestAddr(L::PDPT + i * 8), pd | FLAGS)?;
    }
    for i in 0..n_huge {
        let pd_entry = GuestAddr(L::PD_BASE + i * 8);
        let base = i * HUGE_PAGE_SIZE;
        let entry = if i == 0 {
            L::PT_LOW | FLAGS
        } else if i == n_huge - 1 {
            L::PT_HIGH | FLAGS
        } else {
            base | FLAGS | HUGE
        };
        mem.write_u64(pd_entry, entry)?;
    }
    for j in 1..512u64 {
        mem.write_u64(GuestAddr(L::PT_LOW + j * 8), (j * PAGE_SIZE) | FLAGS)?;
    }
    if n_huge > 1 {
        let base = (n_huge - 1) * HUGE_PAGE_SIZE;
        let guard = stack_guard(size);
        for j in 0..512u64 {
            let page = base + j * PAGE_SIZE;
            let entry = if page == guard { 0 } else { page | FLAGS };
            mem.write_u64(GuestAddr(L::PT_HIGH + j * 8), entry)?;
        }
    }
    Ok(())
}

/// The absent page between the heap and the stack.
pub fn stack_guard(mem_size: u64) -> u64 {
    mem_size - L::STACK_SIZE - PAGE_SIZE
}

/// Writes the TSS: I/O map base at 0x68, an 8 KiB bitmap in which only our
/// two ports are allowed (zero bits), and the trailing 0xff byte.
pub fn write_tss(mem: &GuestMemory) -> Result<(), OutOfBounds> {
    let iomap = L::TSS + 0x68;
    mem.fill(GuestAddr(L::TSS), 0x68, 0)?;
    mem.write(GuestAddr(L::TSS + 0x66), &0x68u16.to_le_bytes())?;
    mem.fill(GuestAddr(iomap), 8192 + 1, 0xff)?;
    // A 4-byte `out` checks the bits of all four ports it touches.
    for p in (port::HYPERCALL..port::HYPERCALL + 4).chain([port::NOTIFY]) {
        let byte = GuestAddr(iomap + u64::from(p / 8));
        let mut b = [0u8; 1];
        mem.read(byte, &mut b)?;
        b[0] &= !(1 << (p % 8));
        mem.write(byte, &b)?;
    }
    // A flat GDT for completeness: null, kernel code, kernel data, user data, user code.
    let gdt: [u64; 5] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00cf_f300_0000_ffff, 0x00af_fb00_0000_ffff];
    for (i, d) in gdt.iter().enumerate() {
        mem.write_u64(GuestAddr(L::GDT + 8 * i as u64), *d)?;
    }
    Ok(())
}

fn segment(selector: u16, type_: u8, dpl: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Adjusts KVM's default special registers for 64-bit CPL3 entry.
pub fn long_mode_sregs(mut s: kvm_sregs) -> kvm_sregs {
    s.cs = segment(0x23, 0xb, 3, true);
    let data = segment(0x1b, 0x3, 3, false);
    s.ss = data;
    s.ds = data;
    s.es = data;
    s.fs = data;
    s.gs = data;
    s.tr = kvm_segment {
        base: L::TSS,
        limit: 0x2068,
        selector: 0x28,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    s.gdt.base = L::GDT;
    s.gdt.limit = 5 * 8 - 1;
    s.cr0 = 0x8005_0033;
    s.cr3 = L::PML4;
    s.cr4 = 0x620;
    s.efer = 0x500;
    s
}

/// General registers at entry: `rip` the ELF entry, `rdi` the boot-info page,
/// `rsp` 16-byte aligned minus 8 (as after a call).
pub fn entry_regs(entry: u64, stack_top: u64) -> kvm_regs {
    kvm_regs { rip: entry, rsp: stack_top - 8, rdi: L::BOOT_INFO, rflags: 0x2, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tables_map_all_but_the_guards() {
        let mem = GuestMemory::new(8 << 20).unwrap();
        write_page_tables(&mem).unwrap();
        assert_eq!(mem.read_u64(GuestAddr(L::PT_LOW)).unwrap(), 0, "page 0 absent");
        assert_eq!(mem.read_u64(GuestAddr(L::PT_LOW + 8)).unwrap(), 0x1000 | FLAGS);
        assert_eq!(mem.read_u64(GuestAddr(L::PD_BASE + 8)).unwrap(), (2 << 20) | FLAGS | HUGE);
        let guard = stack_guard(8 << 20);
        let idx = (guard - (6 << 20)) / PAGE_SIZE;
        assert_eq!(mem.read_u64(GuestAddr(L::PT_HIGH + idx * 8)).unwrap(), 0, "stack guard absent");
        assert_eq!(mem.read_u64(GuestAddr(L::PT_HIGH + (idx + 1) * 8)).unwrap(), (guard + PAGE_SIZE) | FLAGS);
    }

    #[test]
    fn tss_allows_exactly_our_ports() {
        let mem = GuestMemory::new(2 << 20).unwrap();
        write_tss(&mem).unwrap();
        let bit = |p: u16| {
            let mut b = [0u8; 1];
            mem.read(GuestAddr(L::TSS + 0x68 + u64::from(p / 8)), &mut b).unwrap();
            b[0] >> (p % 8) & 1
        };
        assert_eq!(bit(port::HYPERCALL), 0);
        assert_eq!(bit(port::NOTIFY), 0);
        assert_eq!(bit(0x80), 1);
        assert_eq!(bit(port::HYPERCALL + 3), 0);
        assert_eq!(bit(port::HYPERCALL + 4), 1);
    }
}
