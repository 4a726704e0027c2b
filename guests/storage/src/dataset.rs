//! What every storage-backed app does with its data set, once: the meta
//! record, loading the chunks of every table, and keeping an in-memory
//! database in step with the write log ([`Replica`]). An app supplies its
//! tables, keys and a [`Database`] that applies its events.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{CodecError, Reader, Writer};
use crate::log::Log;
use crate::store::{bulk, Store, StoreError};

/// Chunks fetched per round trip at start.
pub const CHUNKS_PER_ROUND: u32 = 8;

/// What the loader wrote about a data set of `N` tables (written last, so
/// its presence means the load finished).
#[derive(Clone, Debug, PartialEq)]
pub struct Meta<const N: usize> {
    /// The format version of the writer.
    pub version: u64,
    /// The generator's seed.
    pub seed: u64,
    /// The scale (fraction of the benchmark's default data set).
    pub scale: f64,
    /// Unix time (seconds) of the load: record times are relative to it.
    pub epoch: i64,
    /// Records per table, in the app's table order.
    pub counts: [u64; N],
    /// Chunks per table.
    pub chunks: [u32; N],
}

impl<const N: usize> Meta<N> {
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
    pub fn decode(b: &[u8]) -> Result<Meta<N>, CodecError> {
        let mut r = Reader::new(b);
        let (version, seed, scale, epoch) = (r.u64()?, r.u64()?, f64::from_bits(r.u64()?), r.i64()?);
        let mut counts = [0; N];
        for c in &mut counts {
            *c = r.u64()?;
        }
        let mut chunks = [0; N];
        for c in &mut chunks {
            *c = r.u32()?;
        }
        Ok(Meta { version, seed, scale, epoch, counts, chunks })
    }
}

/// Where an app's data set lives and how it is read.
pub struct Layout<'a, const N: usize> {
    /// The app's name, for messages (`twinkle data load --app NAME`).
    pub app: &'a str,
    /// The meta record's key.
    pub meta_key: &'a str,
    /// The format version this build reads.
    pub version: u64,
    /// The tables' names, in load order.
    pub tables: [&'a str; N],
    /// The key of chunk k of table t.
    pub chunk_key: &'a dyn Fn(usize, u32) -> String,
}

/// Reads the meta record and every chunk, table by table in order, handing
/// each chunk to `load` (table index, bytes; an error names the problem).
/// `progress` gets a line per table.
pub fn load<const N: usize>(
    store: &mut dyn Store,
    layout: &Layout<'_, N>,
    load: &mut dyn FnMut(usize, &[u8]) -> Result<(), String>,
    progress: &mut dyn FnMut(&str),
) -> Result<Meta<N>, StoreError> {
    let key = layout.meta_key;
    let get: &[&[u8]] = &[b"GET", key.as_bytes()];
    let reply = store.exec(&[get])?.pop().ok_or_else(|| StoreError::Protocol("no reply to GET".into()))?;
    let Some(raw) = bulk(reply, get)? else {
        return Err(StoreError::NotLoaded(format!(
            "{key} is missing: load the data first with `twinkle data load --app {} --redis redis://HOST:PORT`",
            layout.app
        )));
    };
    let meta = Meta::<N>::decode(&raw).map_err(|e| StoreError::Data(format!("{key}: {e}")))?;
    if meta.version != layout.version {
        return Err(StoreError::Data(format!(
            "{key} has format version {}, this app reads version {}: reload with this twinkle's `data load`",
            meta.version, layout.version
        )));
    }
    for (t, name) in layout.tables.iter().enumerate() {
        let chunks = meta.chunks[t];
        let mut k = 0;
        while k < chunks {
            let keys: Vec<String> = (k..chunks.min(k + CHUNKS_PER_ROUND)).map(|i| (layout.chunk_key)(t, i)).collect();
            let cmds: Vec<[&[u8]; 2]> = keys.iter().map(|key| [&b"GET"[..], key.as_bytes()]).collect();
            let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| &c[..]).collect();
            let replies = store.exec(&refs)?;
            if replies.len() != refs.len() {
                return Err(StoreError::Protocol(format!("{} replies to {} GETs", replies.len(), refs.len())));
            }
            for (reply, (key, cmd)) in replies.into_iter().zip(keys.iter().zip(&refs)) {
                let bytes = bulk(reply, cmd)?.ok_or_else(|| {
                    StoreError::Data(format!(
                        "{key} is missing (a load was interrupted?): run `twinkle data load` again"
                    ))
                })?;
                load(t, &bytes).map_err(|e| StoreError::Data(format!("{key}: {e}")))?;
            }
            k += CHUNKS_PER_ROUND;
        }
        progress(&format!("{name}: {} records from {chunks} chunks", meta.counts[t]));
    }
    Ok(meta)
}

/// An in-memory database that applies an app's write events.
pub trait Database {
    /// What applying an event did (the writer answers from it).
    type Outcome: Copy;
    /// Decodes and applies one event of the log; `Err` for bytes that are
    /// not an event of this app (skipped and counted).
    fn apply_bytes(&mut self, event: &[u8]) -> Result<Self::Outcome, CodecError>;
}

/// An instance's position in the write log and how fresh its database is.
#[derive(Debug)]
pub struct Replica {
    log: Log,
    /// Log events that did not decode (skipped, so one bad event cannot
    /// stop every instance).
    pub bad_events: u64,
    fresh: bool,
}

impl Replica {
    /// Nothing of the log at `key` applied yet.
    pub fn new(key: &str) -> Replica {
        Replica { log: Log::new(key), bad_events: 0, fresh: false }
    }

    /// Events applied.
    pub fn applied(&self) -> u64 {
        self.log.applied()
    }

    /// Requests from now on may have arrived after the last catch-up: the
    /// next [`Replica::fresh`] catches up. Called per request, or once per
    /// batch of requests that all arrived before the call.
    pub fn new_requests(&mut self) {
        self.fresh = false;
    }

    /// Applies what any instance appended since the last catch-up.
    pub fn catch_up<D: Database>(&mut self, db: &mut D, store: &mut dyn Store) -> Result<u64, StoreError> {
        let bad = &mut self.bad_events;
        self.log.catch_up(store, &mut |_, b| {
            if db.apply_bytes(b).is_err() {
                *bad += 1;
            }
            Ok(())
        })
    }

    /// Catches up unless it already did since [`Replica::new_requests`]:
    /// afterwards `db` holds every write acknowledged before the requests
    /// at hand arrived.
    pub fn fresh<D: Database>(&mut self, db: &mut D, store: &mut dyn Store) -> Result<(), StoreError> {
        if !self.fresh {
            self.catch_up(db, store)?;
            self.fresh = true;
        }
        Ok(())
    }

    /// Appends `event` (Redis has it when this returns Ok), applies
    /// everything up to it, and returns its outcome, decided after every
    /// event before it in the log.
    pub fn write<D: Database>(
        &mut self,
        db: &mut D,
        store: &mut dyn Store,
        event: &[u8],
    ) -> Result<D::Outcome, StoreError> {
        let bad = &mut self.bad_events;
        let mut outcomes = Vec::new();
        let own = self.log.append(store, event, &mut |ix, b| {
            match db.apply_bytes(b) {
                Ok(o) => outcomes.push((ix, o)),
                Err(_) => *bad += 1,
            }
            Ok(())
        })?;
        outcomes
            .into_iter()
            .find(|(ix, _)| *ix == own)
            .map(|(_, o)| o)
            .ok_or_else(|| StoreError::Data(format!("event {own} of the write log does not decode")))
    }
}

/// Chunks are closed once they pass this many bytes.
pub const CHUNK_BYTES: usize = 256 << 10;

/// A chunk of encoded records of one table, ready to store.
#[derive(Debug)]
pub struct Chunk {
    /// Its table's index.
    pub table: usize,
    /// Its number within the table.
    pub index: u32,
    /// Records in it.
    pub records: u64,
    /// The encoded records, back to back.
    pub bytes: Vec<u8>,
}

/// Where a generator puts the records of one source row.
pub struct Sink<'a> {
    out: &'a mut Writer,
    records: &'a mut u64,
}

impl Sink<'_> {
    /// Appends one record (`encode` writes it).
    pub fn push(&mut self, encode: impl FnOnce(&mut Writer)) {
        encode(self.out);
        *self.records += 1;
    }
}

/// Cuts a generated data set into chunks: table by table, source rows
/// 1..=rows\[t\] each, a row giving any number of records.
#[derive(Debug)]
pub struct Chunker<const N: usize> {
    rows: [u64; N],
    table: usize,
    next_id: u64,
    out: Writer,
    records: u64,
    chunk_index: u32,
    /// Records produced per table so far.
    pub counts: [u64; N],
    /// Chunks produced per table so far.
    pub chunks: [u32; N],
}

impl<const N: usize> Chunker<N> {
    /// `rows[t]` source rows for table t.
    pub fn new(rows: [u64; N]) -> Chunker<N> {
        Chunker {
            rows,
            table: 0,
            next_id: 1,
            out: Writer::new(),
            records: 0,
            chunk_index: 0,
            counts: [0; N],
            chunks: [0; N],
        }
    }

    /// Source rows to go through (for a progress bar).
    pub fn work(&self) -> u64 {
        self.rows.iter().sum()
    }

    /// Rows gone through so far.
    pub fn done(&self) -> u64 {
        self.rows[..self.table.min(N)].iter().sum::<u64>() + self.next_id - 1
    }

    fn emit(&mut self) -> Option<Chunk> {
        if self.records == 0 {
            return None;
        }
        let c = Chunk {
            table: self.table,
            index: self.chunk_index,
            records: self.records,
            bytes: core::mem::take(&mut self.out.buf),
        };
        self.counts[self.table] += self.records;
        self.chunks[self.table] += 1;
        self.chunk_index += 1;
        self.records = 0;
        Some(c)
    }

    /// The next chunk; `produce(table, row, sink)` writes the records of one
    /// source row. `None` when every table is done.
    pub fn next_chunk(&mut self, produce: &mut dyn FnMut(usize, u64, &mut Sink<'_>)) -> Option<Chunk> {
        while self.table < N {
            while self.next_id <= self.rows[self.table] && self.out.len() < CHUNK_BYTES {
                let id = self.next_id;
                self.next_id += 1;
                produce(self.table, id, &mut Sink { out: &mut self.out, records: &mut self.records });
            }
            if self.out.len() >= CHUNK_BYTES {
                return self.emit();
            }
            // The table is done: its last chunk, then the next table.
            let last = self.emit();
            self.table += 1;
            self.next_id = 1;
            self.chunk_index = 0;
            if last.is_some() {
                return last;
            }
        }
        None
    }
}
