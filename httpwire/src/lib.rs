//! HTTP/1.1 on the wire, below any HTTP library: what the dispatcher's fast
//! path and the load generator both need to move messages without building
//! request objects. Heads are parsed with httparse by the users; this crate
//! holds the parts they share.

pub mod chunked;
pub mod num;

pub use chunked::{ChunkScanner, Malformed};
pub use num::push_num;
