//! The write log: an append-only Redis list of encoded events, applied by
//! every instance in list order. An instance remembers how far it has
//! applied; [`Log::catch_up`] fetches only what was appended since, and
//! [`Log::append`] writes an event and catches up in the same round trip,
//! so the writer learns the outcome of its own event (which depends on every
//! event before it, from any instance) before it answers.

use alloc::format;
use alloc::vec::Vec;

use crate::store::{array, int, Store, StoreError};

/// Events fetched per round trip while replaying a long log at start.
pub const PAGE: u64 = 20_000;

/// An instance's position in one write log.
#[derive(Clone, Debug)]
pub struct Log {
    key: Vec<u8>,
    applied: u64,
}

fn num(n: u64) -> Vec<u8> {
    format!("{n}").into_bytes()
}

impl Log {
    /// The log at Redis key `key`, nothing applied yet.
    pub fn new(key: &str) -> Log {
        Log { key: key.as_bytes().to_vec(), applied: 0 }
    }

    /// The Redis key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Events applied so far (the index of the next one).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies every event appended since the last call, in order; `apply`
    /// gets each event's index in the log and its bytes.
    pub fn catch_up(
        &mut self,
        store: &mut dyn Store,
        apply: &mut dyn FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let start = self.applied;
        loop {
            let (from, to) = (num(self.applied), num(self.applied + PAGE - 1));
            let cmd: &[&[u8]] = &[b"LRANGE", &self.key, &from, &to];
            let reply = store.exec(&[cmd])?.pop().ok_or_else(|| StoreError::Protocol("no reply to LRANGE".into()))?;
            let events = array(reply, cmd)?;
            let n = events.len() as u64;
            for e in events {
                apply(self.applied, &e)?;
                self.applied += 1;
            }
            if n < PAGE {
                return Ok(self.applied - start);
            }
        }
    }

    /// Appends `event` and applies everything up to and including it (and
    /// whatever followed it by then); returns the index of `event`. When this
    /// returns Ok, Redis holds the event.
    pub fn append(
        &mut self,
        store: &mut dyn Store,
        event: &[u8],
        apply: &mut dyn FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let from = num(self.applied);
        let push: &[&[u8]] = &[b"RPUSH", &self.key, event];
        let range: &[&[u8]] = &[b"LRANGE", &self.key, &from, b"-1"];
        let mut replies = store.exec(&[push, range])?.into_iter();
        let (Some(pushed), Some(listed)) = (replies.next(), replies.next()) else {
            return Err(StoreError::Protocol("fewer replies than commands".into()));
        };
        let len = int(pushed, push)?;
        let events = array(listed, range)?;
        let own =
            u64::try_from(len.saturating_sub(1)).map_err(|_| StoreError::Protocol(format!("RPUSH answered {len}")))?;
        if own < self.applied || own >= self.applied + events.len() as u64 {
            return Err(StoreError::Data(format!(
                "the write log {} changed under this instance (it had applied {} events, the new one is number {own}): \
                 was the data set reloaded? restart the app",
                alloc::string::String::from_utf8_lossy(&self.key),
                self.applied
            )));
        }
        for e in events {
            apply(self.applied, &e)?;
            self.applied += 1;
        }
        Ok(own)
    }
}
