//! The storage tier as the guest applications and the host data loader see
//! it (docs/apps.md, "Storage layout").
//!
//! An application's data lives in Redis under its namespace (`rubis:`,
//! `tpcw:`): a `meta` record, the base tables in chunks of encoded records
//! written once by `twinkle data load`, and an append-only write log. An
//! instance loads the chunks at start, replays the log, and afterwards reads
//! only what was appended since ([`Log`]); a write is one `RPUSH` to the log,
//! acknowledged by Redis before the HTTP answer, so a killed VM loses no
//! acknowledged write, and every instance applies the same events in the same
//! order. `no_std` + `alloc`: the guests and the host share this code.

#![no_std]

extern crate alloc;

pub mod codec;
pub mod dataset;
pub mod log;
pub mod rng;
pub mod store;

pub use codec::{CodecError, Reader, Writer};
pub use log::Log;
pub use resp::Reply;
pub use rng::Rng;
pub use store::{Store, StoreError};
