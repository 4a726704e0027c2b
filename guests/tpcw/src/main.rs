//! tpcw: the TPC-W-like bookstore in a twinkle VM.
//!
//! At start it loads the data set from Redis (the `redis` endpoint:
//! `--connect redis=HOST:PORT`), builds its indexes, then calls `ready`
//! (the point a snapshot is taken) and serves the 14 interactions under
//! `/tpcw/` and `GET /health` (docs/apps.md). Redis unreachable at start: it
//! says so and tries again every second; while serving: the page is a 503
//! and a log line.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;

use redis_guest::app::StoreApp;
use storage::{Store, StoreError};
use tpcw_app::model::Table;
use tpcw_app::{App, Page};

twinkle_rt::entry!(main);

struct Tpcw(App);

impl StoreApp for Tpcw {
    const NAME: &'static str = "tpcw";

    fn load(store: &mut dyn Store, progress: &mut dyn FnMut(&str)) -> Result<Self, StoreError> {
        App::load(store, progress).map(Tpcw)
    }

    fn new_requests(&mut self) {
        self.0.new_requests();
    }

    fn handle(&mut self, store: &mut dyn Store, now: i64, method: &str, target: &str, body: &[u8]) -> Page {
        self.0.handle(store, now, method, target, body)
    }

    fn summary(&self) -> String {
        let n = self.0.db.counts();
        alloc::format!(
            "{} items, {} customers, {} orders, {} order lines, log at {}",
            n[Table::Items as usize],
            n[Table::Customers as usize],
            n[Table::Orders as usize],
            n[Table::OrderLines as usize],
            self.0.log_position()
        )
    }
}

fn main() -> u8 {
    redis_guest::app::run::<Tpcw>()
}
