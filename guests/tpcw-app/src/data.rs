//! Where the data set lives in Redis, and its meta record.
//!
//! `tpcw:meta` (written last by the loader, so its presence means the load
//! finished), `tpcw:t:{table}:{k}` (chunk k of a table), `tpcw:log` (the
//! write log of events, see [`crate::event`]).

use alloc::format;
use alloc::string::String;

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

/// What the loader wrote (`tpcw:meta`).
pub type Meta = storage::dataset::Meta<TABLES>;
