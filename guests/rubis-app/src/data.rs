//! Where the data set lives in Redis, and its meta record.
//!
//! `rubis:meta` (written last by the loader, so its presence means the load
//! finished), `rubis:t:{table}:{k}` (chunk k of a table), `rubis:log` (the
//! write log of events, see [`crate::event`]).

use alloc::format;
use alloc::string::String;

use crate::model::Table;

/// The namespace: every key starts with `rubis:`.
pub const NAMESPACE: &str = "rubis:";
/// The meta record's key.
pub const META_KEY: &str = "rubis:meta";
/// The write log's key.
pub const LOG_KEY: &str = "rubis:log";
/// Bumped when the encoding of records or events changes.
pub const FORMAT_VERSION: u64 = 1;

/// The key of chunk `k` of `table`.
pub fn chunk_key(table: Table, k: u32) -> String {
    format!("rubis:t:{}:{k}", table.name())
}

/// What the loader wrote (`rubis:meta`).
pub type Meta = storage::dataset::Meta<5>;
