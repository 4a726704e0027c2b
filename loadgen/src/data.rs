//! `twinkle data load`: writes an application's data set to Redis, the way
//! its guest app reads it (guests/storage; docs/apps.md "Storage layout").
//!
//! The namespace is emptied first (SCAN + UNLINK), so a load is idempotent:
//! the same app, scale and seed always leave the same records (only the
//! epoch in the meta record, the load time, differs). Chunks go out in
//! pipelines of a few MiB while the generator produces the next ones; the
//! meta record is written last, so an app never sees half a data set.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::redis::{Redis, RedisError};

/// The applications with a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    /// The auction site.
    Rubis,
    /// The bookstore.
    Tpcw,
}

impl App {
    /// The name on the command line and in keys.
    pub fn name(self) -> &'static str {
        match self {
            App::Rubis => "rubis",
            App::Tpcw => "tpcw",
        }
    }

    /// The scale used when none is given.
    pub fn default_scale(self) -> f64 {
        match self {
            App::Rubis => appspec::rubis::DEFAULT_SCALE,
            App::Tpcw => appspec::tpcw::DEFAULT_SCALE,
        }
    }

    /// Its key namespace in Redis.
    pub fn namespace(self) -> &'static str {
        match self {
            App::Rubis => rubis_app::data::NAMESPACE,
            App::Tpcw => tpcw_app::data::NAMESPACE,
        }
    }
}

impl std::str::FromStr for App {
    type Err = String;
    fn from_str(s: &str) -> Result<App, String> {
        match s {
            "rubis" => Ok(App::Rubis),
            "tpcw" => Ok(App::Tpcw),
            other => Err(format!("no data set for app {other:?}: the apps with data are rubis and tpcw")),
        }
    }
}

/// One chunk ready to store.
struct Out {
    table: usize,
    key: String,
    bytes: Vec<u8>,
}

/// An app's generator behind one interface.
enum Source {
    Rubis(rubis_app::gen::Generator),
    Tpcw(tpcw_app::gen::Generator),
}

impl Source {
    fn new(app: App, scale: f64, seed: u64) -> Source {
        match app {
            App::Rubis => Source::Rubis(rubis_app::gen::Generator::new(appspec::rubis::Scale::of(scale), seed)),
            App::Tpcw => Source::Tpcw(tpcw_app::gen::Generator::new(appspec::tpcw::Scale::fraction(scale), seed)),
        }
    }

    fn next(&mut self) -> Option<Out> {
        match self {
            Source::Rubis(g) => g.next().map(|c| Out {
                table: c.table as usize,
                key: rubis_app::data::chunk_key(c.table, c.index),
                bytes: c.bytes,
            }),
            Source::Tpcw(g) => g.next().map(|c| Out {
                table: c.table as usize,
                key: tpcw_app::data::chunk_key(c.table, c.index),
                bytes: c.bytes,
            }),
        }
    }

    fn work(&self) -> u64 {
        match self {
            Source::Rubis(g) => g.work(),
            Source::Tpcw(g) => g.work(),
        }
    }

    fn done(&self) -> u64 {
        match self {
            Source::Rubis(g) => g.done(),
            Source::Tpcw(g) => g.done(),
        }
    }

    /// Table names, records and chunks, in table order.
    fn tables(&self) -> Vec<(&'static str, u64, u32)> {
        match self {
            Source::Rubis(g) => rubis_app::model::Table::ALL
                .iter()
                .map(|t| (t.name(), g.counts[*t as usize], g.chunks[*t as usize]))
                .collect(),
            Source::Tpcw(g) => tpcw_app::model::Table::ALL
                .iter()
                .map(|t| (t.name(), g.counts[*t as usize], g.chunks[*t as usize]))
                .collect(),
        }
    }

    /// The meta record's key and bytes.
    fn meta(&self, seed: u64, scale: f64, epoch: i64) -> (&'static str, Vec<u8>) {
        match self {
            Source::Rubis(g) => (
                rubis_app::data::META_KEY,
                rubis_app::data::Meta {
                    version: rubis_app::data::FORMAT_VERSION,
                    seed,
                    scale,
                    epoch,
                    counts: g.counts,
                    chunks: g.chunks,
                }
                .encode(),
            ),
            Source::Tpcw(g) => (
                tpcw_app::data::META_KEY,
                tpcw_app::data::Meta {
                    version: tpcw_app::data::FORMAT_VERSION,
                    seed,
                    scale,
                    epoch,
                    counts: g.counts,
                    chunks: g.chunks,
                }
                .encode(),
            ),
        }
    }
}

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Talking to Redis failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The scale is not usable.
    #[error(
        "--scale {0}: give a fraction of the benchmark's default data set above 0 and at most 100 (1 = full size)"
    )]
    Scale(f64),
}

/// One table's share of a load.
#[derive(Clone, Debug, Serialize)]
pub struct TableSummary {
    /// Its name.
    pub table: String,
    /// Records written.
    pub records: u64,
    /// Chunks written.
    pub chunks: u32,
    /// Bytes of encoded records.
    pub bytes: u64,
}

/// What a load wrote.
#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    /// The app.
    pub app: App,
    /// The scale.
    pub scale: f64,
    /// The seed.
    pub seed: u64,
    /// The data set's epoch (Unix seconds).
    pub epoch: i64,
    /// Keys of an earlier load deleted first.
    pub deleted_keys: u64,
    /// Per table.
    pub tables: Vec<TableSummary>,
    /// Total bytes of records.
    pub bytes: u64,
    /// Wall time of the load.
    pub seconds: f64,
}

/// Pipelines are sent once this many bytes are queued.
const PIPELINE_BYTES: usize = 8 << 20;

/// Deletes every key that starts with `namespace`; returns how many.
pub fn delete_namespace(r: &mut Redis, namespace: &str) -> Result<u64, RedisError> {
    let pattern = format!("{namespace}*");
    let mut cursor = b"0".to_vec();
    let mut deleted = 0;
    loop {
        let reply = r.call(&[b"SCAN", &cursor, b"MATCH", pattern.as_bytes(), b"COUNT", b"1000"])?;
        let (next, keys) = match reply {
            resp::Reply::Array(Some(mut parts)) if parts.len() == 2 => {
                let keys = parts.pop();
                let next = parts.pop();
                match (next, keys) {
                    (Some(resp::Reply::Bulk(Some(n))), Some(resp::Reply::Array(Some(k)))) => (n, k),
                    other => return Err(protocol(r, format!("SCAN answered {other:?}"))),
                }
            }
            other => return Err(protocol(r, format!("SCAN answered {other:?}"))),
        };
        let keys: Vec<Vec<u8>> = keys.into_iter().filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)).collect();
        if !keys.is_empty() {
            let mut cmd: Vec<&[u8]> = vec![b"UNLINK"];
            cmd.extend(keys.iter().map(Vec::as_slice));
            deleted += r.call(&cmd)?.as_int().unwrap_or(0) as u64;
        }
        if next == b"0" {
            return Ok(deleted);
        }
        cursor = next;
    }
}

fn protocol(r: &Redis, problem: String) -> RedisError {
    RedisError::Protocol { addr: r.addr(), problem }
}

/// Loads `app`'s data set of `scale` from `seed` into the Redis at `url`.
pub fn load(app: App, url: &str, scale: f64, seed: u64, progress: bool) -> Result<LoadSummary, DataError> {
    if !(scale > 0.0 && scale <= 100.0) {
        return Err(DataError::Scale(scale));
    }
    let started = Instant::now();
    let mut r = Redis::connect(url)?;
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let deleted_keys = delete_namespace(&mut r, app.namespace())?;
    let mut src = Source::new(app, scale, seed);
    let pb = if progress { ProgressBar::new(src.work()) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:>11} [{bar:30}] {percent:>3}%  {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let names = src.tables();
    let mut bytes = vec![0u64; names.len()];
    let mut queued = 0usize;
    while let Some(chunk) = src.next() {
        r.queue(&[b"SET", chunk.key.as_bytes(), &chunk.bytes]);
        bytes[chunk.table] += chunk.bytes.len() as u64;
        queued += chunk.bytes.len();
        if queued >= PIPELINE_BYTES {
            r.flush()?;
            queued = 0;
        }
        pb.set_message(names[chunk.table].0);
        pb.set_position(src.done());
    }
    let (meta_key, meta) = src.meta(seed, scale, epoch);
    r.queue(&[b"SET", meta_key.as_bytes(), &meta]);
    r.flush()?;
    pb.finish_and_clear();
    let tables = src
        .tables()
        .into_iter()
        .zip(&bytes)
        .map(|((name, records, chunks), b)| TableSummary { table: name.to_string(), records, chunks, bytes: *b })
        .collect();
    Ok(LoadSummary {
        app,
        scale,
        seed,
        epoch,
        deleted_keys,
        tables,
        bytes: bytes.iter().sum(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl LoadSummary {
    /// The summary as a table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} data set at scale {} (seed {}) written in {:.2} s ({} keys of an earlier load deleted first)\n",
            self.app.name(),
            self.scale,
            self.seed,
            self.seconds,
            self.deleted_keys
        );
        s.push_str(&format!("{:<10} {:>10} {:>7} {:>12}\n", "table", "records", "chunks", "bytes"));
        for t in &self.tables {
            s.push_str(&format!("{:<10} {:>10} {:>7} {:>12}\n", t.table, t.records, t.chunks, t.bytes));
        }
        s.push_str(&format!(
            "{:<10} {:>10} {:>7} {:>12}\n",
            "total",
            "",
            self.tables.iter().map(|t| t.chunks).sum::<u32>(),
            self.bytes
        ));
        s
    }
}
