//! Where the data set lives in Redis, and its meta record.
//!
//! `tpcw:meta` (written last by the loader, so its presence means the load
//! finished), `tpcw:t:{table}:{k}` (chunk k of a table), `tpcw:log` (the
//! write log of events, see [`crate::event`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use storage::{CodecError, Reader, Writer};

use crate::model::Table;
pub use crate::model::TABLES;

/// The namespace: every key starts with `tpcw:`.
pub const NAMESPACE: &str = "tpcw:";
/// The meta record's key.
pub const META_KEY: &str = "tpcw:meta";
/// The write log's key.
pub const LOG_KEY: &str = "tpcw:log";
/// Bumped when the encoding of records or events changes.
pub const FORMAT_VERSION: u64 = 1;

/// The key of chunk `k` of `table`.
pub fn chunk_key(table: Table, k: u32) -> String {
    format!("tpcw:t:{}:{k}", table.name())
}

/// What the loader wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u64,
    /// The generator's seed.
    pub seed: u64,
    /// The scale (fraction of the full data set: 10,000 items, 288,000 customers).
    pub scale: f64,
    /// Unix time (seconds) of the load: record times are relative to it.
    pub epoch: i64,
    /// Records per table ([`Table`] order).
    pub counts: [u64; TABLES],
    /// Chunks per table.
    pub chunks: [u32; TABLES],
}

impl Meta {
    /// The encoded record.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.version).u64(self.seed).u64(self.scale.to_bits()).i64(self.epoch);
        for c in self.counts {
            w.u64(c);
        }
        for c in self.chunks {
            w.u64(c.into());
        }
        w.buf
    }

    /// Reads the record.
    pub fn decode(b: &[u8]) -> Result<Meta, CodecError> {
        let mut r = Reader::new(b);
        let (version, seed, scale, epoch) = (r.u64()?, r.u64()?, f64::from_bits(r.u64()?), r.i64()?);
        let mut counts = [0; TABLES];
        for c in &mut counts {
            *c = r.u64()?;
        }
        let mut chunks = [0; TABLES];
        for c in &mut chunks {
            *c = r.u32()?;
        }
        if !r.is_empty() {
            return Err(CodecError::Range);
        }
        Ok(Meta { version, seed, scale, epoch, counts, chunks })
    }
}
