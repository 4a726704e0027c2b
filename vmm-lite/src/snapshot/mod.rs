//! Snapshots of an initialized VM: taken when the guest reports Ready, as
//! plain data (the VMM's live objects are rebuilt from it on restore).
//!
//! An image directory holds `state.twnk` (see [`format`]) and `memory.bin`,
//! a sparse file of the guest's memory in which the pages free in the guest
//! at the snapshot are holes (never written, read back as zeros).
//! docs/snapshot-format.md describes both.

pub mod format;
pub mod serve;
pub mod store;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use serde::{Deserialize, Serialize};

pub use format::{SectionId, SnapshotError, StateFile};

use crate::memory::{GuestAddr, GuestMemory};

/// Memory is checksummed and loaded in chunks of this size.
pub const CHUNK: u64 = 2 * 1024 * 1024;

/// File names inside an image directory.
pub const STATE_FILE: &str = "state.twnk";
/// The memory file.
pub const MEMORY_FILE: &str = "memory.bin";
/// The working set (optional): pages in first-touch order.
pub const WORKING_SET_FILE: &str = "working-set.bin";
const WS_MAGIC: &[u8; 8] = b"TWNKWSET";

/// What the tracking run found, stored beside the pages.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkingSetInfo {
    /// Pages in the set.
    pub pages: u64,
    /// The tracking window chosen, ms.
    pub window_ms: u64,
    /// Why the window ended (`quiet`, `cap`, `exit`).
    pub ended_by: String,
}

/// Writes `working-set.bin`: magic, version 1, count, CRC-32 of the page
/// list, the JSON length and CRC, then the pages (u32 LE) and the JSON info.
pub fn write_working_set(dir: &Path, pages: &[u32], info: &WorkingSetInfo) -> Result<(), SnapshotError> {
    let path = dir.join(WORKING_SET_FILE);
    let mut list = Vec::with_capacity(pages.len() * 4);
    for p in pages {
        list.extend_from_slice(&p.to_le_bytes());
    }
    let json = to_json(info);
    let mut out = Vec::new();
    out.extend_from_slice(WS_MAGIC);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(pages.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&list).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&list);
    out.extend_from_slice(&json);
    let tmp = path.with_extension("bin.tmp");
    std::fs::write(&tmp, out).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Reads `working-set.bin` if the image has one.
pub fn read_working_set(
    store: &dyn store::ImageStore,
    pages_in_image: u64,
) -> Result<Option<(Vec<u32>, WorkingSetInfo)>, SnapshotError> {
    let path = store.name(WORKING_SET_FILE);
    let Some(bytes) = store.fetch(WORKING_SET_FILE)? else { return Ok(None) };
    let corrupt =
        |problem: String| SnapshotError::Corrupt { file: path.clone(), section: "working-set".into(), problem };
    if bytes.len() < 32 || &bytes[..8] != WS_MAGIC {
        return Err(corrupt("not a working-set file (bad magic or too short)".into()));
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(8) != 1 {
        return Err(corrupt(format!("version {}, expected 1", word(8))));
    }
    let (n, crc, jlen, jcrc) = (word(12) as usize, word(16), word(20) as usize, word(24));
    let end = 32usize.checked_add(n.saturating_mul(4)).and_then(|e| e.checked_add(jlen));
    if end != Some(bytes.len()) {
        return Err(corrupt(format!(
            "{} bytes do not hold {n} pages and {jlen} bytes of info: truncated?",
            bytes.len()
        )));
    }
    let list = &bytes[32..32 + n * 4];
    let json = &bytes[32 + n * 4..];
    if crc32fast::hash(list) != crc || crc32fast::hash(json) != jcrc {
        return Err(corrupt("checksum mismatch: the file is damaged".into()));
    }
    let pages: Vec<u32> = list.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if let Some(bad) = pages.iter().find(|p| u64::from(**p) >= pages_in_image) {
        return Err(corrupt(format!("page {bad} is beyond the image's {pages_in_image} pages")));
    }
    let info = serde_json::from_slice(json).map_err(|e| corrupt(format!("cannot decode the info: {e}")))?;
    Ok(Some((pages, info)))
}

/// What the image is and how it was made.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// The app (`hello`, or the ELF path for `--elf`).
    pub app: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Endpoint names the guest knows (their addresses are given at restore).
    pub endpoints: Vec<String>,
    /// Guest memory size in bytes.
    pub mem_size: u64,
    /// Ring entries per queue.
    pub ring_entries: u32,
    /// The guest's monotonic clock at the snapshot, ns (restores continue from it).
    pub mono_ns: u64,
    /// Pages of guest memory.
    pub pages: u64,
    /// Pages free in the guest at the snapshot (not stored).
    pub free_pages: u64,
    /// When the image was made, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// The twinkle version that made it.
    pub twinkle_version: String,
    /// Boot to Ready, ms: what a restore saves.
    pub init_ms: f64,
}

/// The vCPU's registers, with the Ready hypercall completed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VcpuState {
    /// General registers.
    pub regs: kvm_regs,
    /// Segment and control registers.
    pub sregs: kvm_sregs,
    /// x87/SSE state.
    pub fpu: FpuState,
}

/// The x87/SSE registers (KVM's `kvm_fpu`, as plain data).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FpuState {
    /// x87 registers.
    pub fpr: [[u8; 16]; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word.
    pub fsw: u16,
    /// Abridged tag word.
    pub ftwx: u8,
    /// Last opcode.
    pub last_opcode: u16,
    /// Last instruction pointer.
    pub last_ip: u64,
    /// Last data pointer.
    pub last_dp: u64,
    /// SSE registers.
    pub xmm: [[u8; 16]; 16],
    /// SSE control/status.
    pub mxcsr: u32,
}

impl From<&kvm_fpu> for FpuState {
    fn from(f: &kvm_fpu) -> Self {
        FpuState {
            fpr: f.fpr,
            fcw: f.fcw,
            fsw: f.fsw,
            ftwx: f.ftwx,
            last_opcode: f.last_opcode,
            last_ip: f.last_ip,
            last_dp: f.last_dp,
            xmm: f.xmm,
            mxcsr: f.mxcsr,
        }
    }
}

impl From<&FpuState> for kvm_fpu {
    fn from(f: &FpuState) -> Self {
        kvm_fpu {
            fpr: f.fpr,
            fcw: f.fcw,
            fsw: f.fsw,
            ftwx: f.ftwx,
            last_opcode: f.last_opcode,
            last_ip: f.last_ip,
            last_dp: f.last_dp,
            xmm: f.xmm,
            mxcsr: f.mxcsr,
            ..Default::default()
        }
    }
}

/// A network operation that was pending at the snapshot on a connection
/// that does not survive it: it completes with an error after restore.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DroppedOp {
    /// Op code.
    pub op: u8,
    /// Connection id.
    pub conn: u32,
    /// The guest's tag.
    pub user: u64,
}

/// The VMM's side of the rings. The listener survives a snapshot (pending
/// Accepts are re-armed); live connections do not.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetState {
    /// Submissions consumed.
    pub sq_head: u32,
    /// Completions posted.
    pub cq_tail: u32,
    /// `user` tags of the pending Accepts, oldest first.
    pub accepts: Vec<u64>,
    /// Other pending operations (on connections that are gone after restore).
    pub dropped: Vec<DroppedOp>,
    /// The next connection id to hand out.
    pub next_conn: u32,
}

/// Everything a running VM hands over to be saved.
pub struct Capture<'a> {
    /// Guest memory (the vCPU is stopped).
    pub mem: &'a GuestMemory,
    /// Image metadata.
    pub meta: Meta,
    /// Registers.
    pub vcpu: VcpuState,
    /// Ring state.
    pub net: NetState,
    /// The guest ELF.
    pub elf: &'a [u8],
}

fn io_err(file: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { file: file.to_path_buf(), source }
}

/// Reads the guest's free-page bitmap (bit set = free).
pub fn free_bitmap(mem: &GuestMemory) -> Vec<u8> {
    let pages = mem.size() / guest_abi::PAGE_SIZE;
    let mut buf = vec![0u8; (pages.div_ceil(64) * 8) as usize];
    if mem.read(GuestAddr(guest_abi::layout::FREE_BITMAP), &mut buf).is_err() {
        buf.fill(0);
    }
    buf
}

/// Whether page `p` is free in `bitmap`.
pub fn page_free(bitmap: &[u8], p: u64) -> bool {
    bitmap.get((p / 8) as usize).is_some_and(|b| b >> (p % 8) & 1 == 1)
}

/// Writes an image directory. Returns the bytes of memory stored.
pub fn save(dir: &Path, cap: Capture<'_>) -> Result<u64, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mem = cap.mem;
    let bitmap = free_bitmap(mem);
    let mem_path = dir.join(MEMORY_FILE);
    let tmp = mem_path.with_extension("bin.tmp");
    let f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.set_len(mem.size()).map_err(io_err(&tmp))?;
    let page = guest_abi::PAGE_SIZE;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut crcs = Vec::new();
    let mut page_crcs = Vec::with_capacity((mem.size() / page * 4) as usize);
    let mut stored = 0u64;
    for chunk in 0..mem.size() / CHUNK {
        let base = chunk * CHUNK;
        mem.read(GuestAddr(base), &mut buf)
            .map_err(|e| SnapshotError::Mismatch { file: mem_path.clone(), problem: e.to_string() })?;
        // Free pages read back as zeros: checksum them as zeros, write only used runs.
        let mut run: Option<u64> = None;
        for i in 0..=CHUNK / page {
            let used = i < CHUNK / page && !page_free(&bitmap, base / page + i);
            if i < CHUNK / page && !used {
                buf[(i * page) as usize..((i + 1) * page) as usize].fill(0);
            }
            match (used, run) {
                (true, None) => run = Some(i),
                (false, Some(start)) => {
                    let (a, b) = ((start * page) as usize, (i * page) as usize);
                    f.write_all_at(&buf[a..b], base + a as u64).map_err(io_err(&tmp))?;
                    stored += (b - a) as u64;
                    run = None;
                }
                _ => {}
            }
        }
        crcs.extend_from_slice(&crc32fast::hash(&buf).to_le_bytes());
        for p in buf.chunks_exact(page as usize) {
            page_crcs.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        }
    }
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &mem_path).map_err(io_err(&mem_path))?;
    format::write_state(
        &dir.join(STATE_FILE),
        &[
            (SectionId::Meta, to_json(&cap.meta)),
            (SectionId::Vcpu, to_json(&cap.vcpu)),
            (SectionId::Net, to_json(&cap.net)),
            (SectionId::FreeBitmap, bitmap),
            (SectionId::MemoryCrc, crcs),
            (SectionId::Elf, cap.elf.to_vec()),
            (SectionId::PageCrc, page_crcs),
        ],
    )?;
    Ok(stored)
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain data structs of numbers, strings and arrays always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

/// A checked image, ready to restore from.
pub struct Image {
    /// Where its files come from.
    pub store: Box<dyn store::ImageStore>,
    /// Its memory file.
    pub memory: std::sync::Arc<dyn store::MemorySource>,
    /// Metadata.
    pub meta: Meta,
    /// Registers.
    pub vcpu: VcpuState,
    /// Ring state.
    pub net: NetState,
    /// The free-page bitmap at the snapshot.
    pub bitmap: Vec<u8>,
    /// CRC-32 per memory chunk.
    pub crcs: Vec<u32>,
    /// CRC-32 per page.
    pub page_crcs: Vec<u32>,
    /// The working set, if the image was tracked (pages in first-touch order).
    pub working_set: Vec<u32>,
    /// How it was found.
    pub working_set_info: Option<WorkingSetInfo>,
    /// The guest ELF.
    pub elf: Vec<u8>,
}

impl Image {
    /// Opens and checks an image (a directory or an `http://` address):
    /// every section's CRC, sizes that agree with each other and with memory.bin.
    pub fn open(spec: &str) -> Result<Image, SnapshotError> {
        let store = store::open_store(spec)?;
        let state_name = store.name(STATE_FILE);
        let bytes = store.fetch(STATE_FILE)?.ok_or_else(|| SnapshotError::Io {
            file: state_name.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        })?;
        let state = StateFile::parse(bytes, &state_name)?;
        let meta: Meta = state.json(SectionId::Meta)?;
        let vcpu: VcpuState = state.json(SectionId::Vcpu)?;
        let net: NetState = state.json(SectionId::Net)?;
        let path = state.path().to_path_buf();
        let corrupt = |section: SectionId, problem: String| SnapshotError::Corrupt {
            file: path.clone(),
            section: section.name().into(),
            problem,
        };
        if meta.mem_size == 0 || meta.mem_size % CHUNK != 0 {
            return Err(corrupt(
                SectionId::Meta,
                format!("memory size {:#x} is not a whole number of 2 MiB chunks", meta.mem_size),
            ));
        }
        let bitmap = state.section(SectionId::FreeBitmap).to_vec();
        let pages = meta.mem_size / guest_abi::PAGE_SIZE;
        if (bitmap.len() as u64) < pages.div_ceil(8) {
            return Err(corrupt(
                SectionId::FreeBitmap,
                format!("{} bytes cover fewer than the {pages} pages", bitmap.len()),
            ));
        }
        let raw = state.section(SectionId::MemoryCrc);
        if raw.len() as u64 != meta.mem_size / CHUNK * 4 {
            return Err(corrupt(
                SectionId::MemoryCrc,
                format!("{} bytes, expected {}", raw.len(), meta.mem_size / CHUNK * 4),
            ));
        }
        let crcs = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let raw = state.section(SectionId::PageCrc);
        if raw.len() as u64 != pages * 4 {
            return Err(corrupt(SectionId::PageCrc, format!("{} bytes, expected {}", raw.len(), pages * 4)));
        }
        let page_crcs = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let memory: std::sync::Arc<dyn store::MemorySource> = std::sync::Arc::from(store.memory()?);
        let len = memory.size()?;
        if len != meta.mem_size {
            return Err(SnapshotError::Corrupt {
                file: memory.name(),
                section: "memory".into(),
                problem: format!("{len} bytes, the image says {}: truncated or from another image", meta.mem_size),
            });
        }
        let (working_set, working_set_info) = match read_working_set(store.as_ref(), pages)? {
            Some((p, i)) => (p, Some(i)),
            None => (Vec::new(), None),
        };
        Ok(Image {
            elf: state.section(SectionId::Elf).to_vec(),
            store,
            memory,
            meta,
            vcpu,
            net,
            bitmap,
            crcs,
            page_crcs,
            working_set,
            working_set_info,
        })
    }

    /// Reads all of memory.bin into `mem`, checking every chunk (the `resume`
    /// strategy). Returns the bytes read.
    pub fn load_all(&self, mem: &GuestMemory) -> Result<u64, SnapshotError> {
        let path = self.memory.name();
        let mut buf = vec![0u8; CHUNK as usize];
        for (i, crc) in self.crcs.iter().enumerate() {
            let off = i as u64 * CHUNK;
            self.memory.read_exact_at(&mut buf, off)?;
            if crc32fast::hash(&buf) != *crc {
                return Err(SnapshotError::Corrupt {
                    file: path,
                    section: "memory".into(),
                    problem: format!("chunk {i} (bytes {off:#x}..{:#x}) fails its checksum", off + CHUNK),
                });
            }
            mem.write(GuestAddr(off), &buf)
                .map_err(|e| SnapshotError::Mismatch { file: path.clone(), problem: e.to_string() })?;
        }
        Ok(self.meta.mem_size)
    }
}
