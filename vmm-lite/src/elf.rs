//! Loading a static, non-PIE x86-64 ELF into guest memory.
//!
//! The ELF is as untrusted as the guest: every segment must lie between
//! `IMAGE_BASE` and the start of the stack area, file ranges must lie inside
//! the file, and the entry point must be inside an executable segment.

use goblin::elf::program_header::{PF_X, PT_LOAD};
use goblin::elf::Elf;
use guest_abi::{layout as L, PAGE_SIZE};

use crate::memory::{GuestAddr, GuestMemory};

/// Why an ELF cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not parseable as ELF.
    #[error("not a valid ELF file: {0}")]
    Parse(String),
    /// Parseable but not what a guest must be.
    #[error("unsupported guest ELF: {0}")]
    Unsupported(String),
    /// A segment does not fit where guest images go.
    #[error("ELF segment {index} ({vaddr:#x}..{end:#x}) lies outside the image area {base:#x}..{limit:#x}")]
    SegmentOutOfRange {
        /// Program header index.
        index: usize,
        /// Start address.
        vaddr: u64,
        /// End address.
        end: u64,
        /// Image area start.
        base: u64,
        /// Image area end.
        limit: u64,
    },
}

/// What the loader placed in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The entry point.
    pub entry: u64,
    /// First byte after the highest segment, rounded up to a page.
    pub end: u64,
}

/// Loads `bytes` into `mem`, refusing anything outside `IMAGE_BASE..limit`.
pub fn load(bytes: &[u8], mem: &GuestMemory, limit: u64) -> Result<LoadedImage, ElfError> {
    let elf = Elf::parse(bytes).map_err(|e| ElfError::Parse(e.to_string()))?;
    if !elf.is_64 || elf.header.e_machine != goblin::elf::header::EM_X86_64 {
        return Err(ElfError::Unsupported("not an x86-64 64-bit ELF".into()));
    }
    if !elf.little_endian {
        return Err(ElfError::Unsupported("not little-endian".into()));
    }
    if elf.header.e_type != goblin::elf::header::ET_EXEC {
        return Err(ElfError::Unsupported(
            "not a static executable (ET_EXEC); build with -C relocation-model=static and -no-pie".into(),
        ));
    }
    if elf.interpreter.is_some() {
        return Err(ElfError::Unsupported("dynamically linked (has PT_INTERP)".into()));
    }
    let mut end = L::IMAGE_BASE;
    let mut entry_ok = false;
    let mut any = false;
    for (index, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        any = true;
        let seg_end = ph.p_vaddr.saturating_add(ph.p_memsz);
        if ph.p_vaddr < L::IMAGE_BASE || seg_end > limit {
            return Err(ElfError::SegmentOutOfRange {
                index,
                vaddr: ph.p_vaddr,
                end: seg_end,
                base: L::IMAGE_BASE,
                limit,
            });
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(ElfError::Unsupported(format!("segment {index} has filesz > memsz")));
        }
        let off = usize::try_from(ph.p_offset).map_err(|_| ElfError::Unsupported("offset too large".into()))?;
        let len = usize::try_from(ph.p_filesz).map_err(|_| ElfError::Unsupported("segment too large".into()))?;
        let data = off
            .checked_add(len)
            .and_then(|e| bytes.get(off..e))
            .ok_or_else(|| ElfError::Unsupported(format!("segment {index} extends past the end of the file")))?;
        let map_err = |e: crate::memory::OutOfBounds| ElfError::Unsupported(e.to_string());
        mem.write(GuestAddr(ph.p_vaddr), data).map_err(map_err)?;
        let bss = ph.p_memsz - ph.p_filesz;
        mem.fill(GuestAddr(ph.p_vaddr + ph.p_filesz), bss, 0).map_err(map_err)?;
        if ph.p_flags & PF_X != 0 && (ph.p_vaddr..seg_end).contains(&elf.entry) {
            entry_ok = true;
        }
        end = end.max(seg_end);
    }
    if !any {
        return Err(ElfError::Unsupported("no loadable segment".into()));
    }
    if !entry_ok {
        return Err(ElfError::Unsupported(format!("entry point {:#x} is not in an executable segment", elf.entry)));
    }
    Ok(LoadedImage { entry: elf.entry, end: end.div_ceil(PAGE_SIZE) * PAGE_SIZE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mem = GuestMemory::new(4 << 20).unwrap();
        assert!(matches!(load(b"not an elf", &mem, 4 << 20), Err(ElfError::Parse(_))));
        assert!(load(&[], &mem, 4 << 20).is_err());
        let mut hdr = vec![0u8; 64];
        hdr[..4].copy_from_slice(b"\x7fELF");
        assert!(load(&hdr, &mem, 4 << 20).is_err());
    }

    #[test]
    fn the_host_binary_is_refused_as_not_static() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mem = GuestMemory::new(4 << 20).unwrap();
        let e = load(&me, &mem, 4 << 20).unwrap_err().to_string();
        assert!(e.contains("unsupported") || e.contains("outside"), "{e}");
    }
}
