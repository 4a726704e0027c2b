//! rubis: the RUBiS-like auction site in a twinkle VM.
//!
//! At start it loads the data set from Redis (the `redis` endpoint:
//! `--connect redis=HOST:PORT`), builds its indexes, then calls `ready`
//! (the point a snapshot is taken) and serves the 26 interactions under
//! `/PHP/` and `GET /health` (docs/apps.md). Redis unreachable at start: it
//! says so and tries again every second; while serving: the page is a 503
//! and a log line.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;

use redis_guest::app::StoreApp;
use rubis_app::{App, Page};
use storage::{Store, StoreError};

twinkle_rt::entry!(main);

struct Rubis(App);

impl StoreApp for Rubis {
    const NAME: &'static str = "rubis";

    fn load(store: &mut dyn Store, progress: &mut dyn FnMut(&str)) -> Result<Self, StoreError> {
        App::load(store, progress).map(Rubis)
    }

    fn new_requests(&mut self) {
        self.0.new_requests();
    }

    fn handle(&mut self, store: &mut dyn Store, now: i64, method: &str, target: &str, body: &[u8]) -> Page {
        self.0.handle(store, now, method, target, body)
    }

    fn summary(&self) -> String {
        let [u, i, b, c, _] = self.0.db.counts();
        alloc::format!("{u} users, {i} items, {b} bids, {c} comments, log at {}", self.0.log_position())
    }
}

fn main() -> u8 {
    redis_guest::app::run::<Rubis>()
}
