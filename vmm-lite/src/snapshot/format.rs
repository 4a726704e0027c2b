//! The snapshot container: `state.twnk`, a header and a table of sections,
//! each with its own CRC-32, checked before anything is used
//! (docs/snapshot-format.md).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of `state.twnk`.
pub const MAGIC: &[u8; 8] = b"TWNKSNAP";
/// Version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Most sections a file may list.
pub const MAX_SECTIONS: u32 = 64;
/// Largest section accepted (the ELF and bitmap are the large ones).
pub const MAX_SECTION: u64 = 64 << 20;
const HEADER: u64 = 24;
const ENTRY: u64 = 32;

/// The sections of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionId {
    /// JSON: app, sizes, versions, clock.
    Meta = 1,
    /// JSON: vCPU registers.
    Vcpu = 2,
    /// JSON: ring indices and pending network operations.
    Net = 3,
    /// Raw: the guest's free-page bitmap at the snapshot.
    FreeBitmap = 4,
    /// Raw: CRC-32 of each 2 MiB chunk of memory.bin (little-endian u32s).
    MemoryCrc = 5,
    /// Raw: the guest ELF (for the `cold` strategy).
    Elf = 6,
    /// Raw: CRC-32 of each 4 KiB page of memory.bin (for page-at-a-time strategies).
    PageCrc = 7,
}

impl SectionId {
    /// Every section, in file order.
    pub const ALL: [SectionId; 7] = [
        SectionId::Meta,
        SectionId::Vcpu,
        SectionId::Net,
        SectionId::FreeBitmap,
        SectionId::MemoryCrc,
        SectionId::Elf,
        SectionId::PageCrc,
    ];

    /// The name used in messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            SectionId::Meta => "meta",
            SectionId::Vcpu => "vcpu",
            SectionId::Net => "net",
            SectionId::FreeBitmap => "free-bitmap",
            SectionId::MemoryCrc => "memory-crc",
            SectionId::Elf => "elf",
            SectionId::PageCrc => "page-crc",
        }
    }

    fn from_u32(n: u32) -> Option<SectionId> {
        SectionId::ALL.into_iter().find(|s| *s as u32 == n)
    }
}

/// Why a snapshot cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file system failed.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The content is damaged or not a snapshot.
    #[error("{}: section {section}: {problem}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// The section (or "header").
        section: String,
        /// What is wrong.
        problem: String,
    },
    /// Written by another format version.
    #[error("{}: snapshot format version {found}, this twinkle reads version {expected}; rebuild the image with `twinkle image build`", file.display())]
    Version {
        /// The file.
        file: PathBuf,
        /// Its version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// A snapshot of another app than the one asked for.
    #[error("{}: the image is of app {found:?}, not {expected:?}", file.display())]
    WrongApp {
        /// The file.
        file: PathBuf,
        /// The app in the image.
        found: String,
        /// The app expected.
        expected: String,
    },
    /// The snapshot does not fit the restore settings.
    #[error("{}: {problem}", file.display())]
    Mismatch {
        /// The file.
        file: PathBuf,
        /// What does not fit.
        problem: String,
    },
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Writes `state.twnk` with the given section payloads, in [`SectionId::ALL`] order.
pub fn write_state(path: &Path, sections: &[(SectionId, Vec<u8>)]) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io { file: path.to_path_buf(), source };
    let n = sections.len() as u64;
    let mut table = Vec::new();
    let mut offset = HEADER + n * ENTRY;
    for (id, data) in sections {
        table.extend_from_slice(&(*id as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&offset.to_le_bytes());
        table.extend_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        offset += data.len() as u64;
    }
    let mut head = Vec::with_capacity(HEADER as usize);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&(n as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&head);
    h.update(&table);
    head.extend_from_slice(&h.finalize().to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    let tmp = path.with_extension("twnk.tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&head).map_err(io)?;
    f.write_all(&table).map_err(io)?;
    for (_, data) in sections {
        f.write_all(data).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The checked sections of a `state.twnk`.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    sections: Vec<(SectionId, Vec<u8>)>,
}

impl StateFile {
    /// Reads and checks the whole file: magic, version, header CRC, the
    /// section table's bounds, every section's CRC, and that every section is there.
    pub fn read(path: &Path) -> Result<StateFile, SnapshotError> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| SnapshotError::Io { file: path.to_path_buf(), source })?;
        StateFile::parse(bytes, path)
    }

    /// Checks the bytes of a `state.twnk` (read from `path`, a file or URL).
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<StateFile, SnapshotError> {
        let corrupt = |section: &str, problem: String| SnapshotError::Corrupt {
            file: path.to_path_buf(),
            section: section.to_string(),
            problem,
        };
        if bytes.len() < HEADER as usize || &bytes[..8] != MAGIC {
            return Err(corrupt("header", "not a twinkle snapshot (bad magic or too short)".into()));
        }
        let version = le32(&bytes, 8);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::Version { file: path.to_path_buf(), found: version, expected: FORMAT_VERSION });
        }
        let n = le32(&bytes, 12);
        if n > MAX_SECTIONS {
            return Err(corrupt("header", format!("{n} sections listed, at most {MAX_SECTIONS} allowed")));
        }
        let table_end = HEADER + u64::from(n) * ENTRY;
        if (bytes.len() as u64) < table_end {
            return Err(corrupt("header", "truncated inside the section table".into()));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[..16]);
        h.update(&bytes[HEADER as usize..table_end as usize]);
        if h.finalize() != le32(&bytes, 16) {
            return Err(corrupt("header", "header checksum mismatch".into()));
        }
        let mut sections = Vec::new();
        for i in 0..n as usize {
            let e = HEADER as usize + i * ENTRY as usize;
            let raw_id = le32(&bytes, e);
            let (offset, len, crc) = (le64(&bytes, e + 8), le64(&bytes, e + 16), le32(&bytes, e + 24));
            let Some(id) = SectionId::from_u32(raw_id) else {
                return Err(corrupt("header", format!("unknown section id {raw_id}")));
            };
            let end = offset.checked_add(len).filter(|e| *e <= bytes.len() as u64 && len <= MAX_SECTION);
            let Some(end) = end else {
                return Err(corrupt(
                    id.name(),
                    format!(
                        "{len} bytes at offset {offset} run past the end of the file ({} bytes): truncated?",
                        bytes.len()
                    ),
                ));
            };
            let data = &bytes[offset as usize..end as usize];
            if crc32fast::hash(data) != crc {
                return Err(corrupt(id.name(), "checksum mismatch: the section is damaged".into()));
            }
            if sections.iter().any(|(s, _)| *s == id) {
                return Err(corrupt(id.name(), "listed twice".into()));
            }
            sections.push((id, data.to_vec()));
        }
        for id in SectionId::ALL {
            if !sections.iter().any(|(s, _)| *s == id) {
                return Err(corrupt(id.name(), "missing".into()));
            }
        }
        Ok(StateFile { path: path.to_path_buf(), sections })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A section's bytes.
    pub fn section(&self, id: SectionId) -> &[u8] {
        self.sections.iter().find(|(s, _)| *s == id).map(|(_, d)| d.as_slice()).unwrap_or(&[])
    }

    /// A JSON section, decoded.
    pub fn json<T: serde::de::DeserializeOwned>(&self, id: SectionId) -> Result<T, SnapshotError> {
        serde_json::from_slice(self.section(id)).map_err(|e| SnapshotError::Corrupt {
            file: self.path.clone(),
            section: id.name().into(),
            problem: format!("cannot decode: {e}"),
        })
    }
}

/// Reads `len` bytes at `offset` of `file`, failing on a short read.
pub fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<(), SnapshotError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            SnapshotError::Corrupt {
                file: path.to_path_buf(),
                section: "memory".into(),
                problem: format!("truncated: no {} bytes at offset {offset}", buf.len()),
            }
        } else {
            SnapshotError::Io { file: path.to_path_buf(), source: e }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_sections() -> Vec<(SectionId, Vec<u8>)> {
        SectionId::ALL.iter().map(|id| (*id, format!("payload of {}", id.name()).into_bytes())).collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("twinkle-fmt-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("state.twnk")
    }

    #[test]
    fn round_trip() {
        let p = tmp("rt");
        write_state(&p, &all_sections()).unwrap();
        let s = StateFile::read(&p).unwrap();
        assert_eq!(s.section(SectionId::Net), b"payload of net");
    }

    #[test]
    fn damage_is_named() {
        let p = tmp("dmg");
        write_state(&p, &all_sections()).unwrap();
        let good = std::fs::read(&p).unwrap();
        let check = |bytes: &[u8], want: &str| {
            std::fs::write(&p, bytes).unwrap();
            let e = StateFile::read(&p).unwrap_err().to_string();
            assert!(e.contains(want), "expected {want:?} in {e}");
        };
        let mut b = good.clone();
        b[0] = b'X';
        check(&b, "bad magic");
        let mut b = good.clone();
        b[8] = 9;
        check(&b, "format version 9");
        let mut b = good.clone();
        let last = b.len() - 1;
        b[last] ^= 1;
        check(&b, "section page-crc: checksum mismatch");
        check(&good[..good.len() - 3], "section page-crc:");
        check(&good[..30], "truncated inside the section table");
        let mut b = good.clone();
        b[HEADER as usize] = 99;
        check(&b, "header checksum mismatch");
    }
}
