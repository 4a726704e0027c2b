//! The TPC-W-like online bookstore (tpcw.md; workloads.md section 3): its
//! data model ([`model`]), the deterministic generator the loader uses
//! ([`gen`]), where the data lives in Redis ([`data`]), the in-memory
//! database an instance builds at start ([`db`]), the writes as log events
//! ([`event`]) and the 14 interactions' pages ([`pages`]). [`App`] ties them
//! to a [`Store`]: load at start, catch up with the write log before each
//! page that reads the database, append each write and answer only once
//! Redis has it.
//!
//! `no_std` + `alloc`, so a guest program serves it in a VM, the host data
//! loader generates its data, and the host tests run it.

#![no_std]

extern crate alloc;

pub mod data;
pub mod db;
pub mod event;
pub mod gen;
pub mod html;
pub mod model;
pub mod pages;

use alloc::format;

use appspec::tpcw::PATHS;
use storage::dataset::{Layout, Replica};
use storage::{Store, StoreError};
use webpage::{BadParam, Form};

use crate::data::{Meta, FORMAT_VERSION, LOG_KEY, META_KEY};
use crate::db::Db;
use crate::event::{Event, Outcome};
pub use crate::html::Page;
use crate::html::Session;
use crate::model::Table;
use crate::pages::Ctx;

/// One instance of the bookstore.
pub struct App {
    /// The database.
    pub db: Db,
    /// What the loader wrote.
    pub meta: Meta,
    /// Where it is in the write log.
    sync: Replica,
}

enum Fail {
    Bad(BadParam),
    Store(StoreError),
}

impl From<BadParam> for Fail {
    fn from(e: BadParam) -> Self {
        Fail::Bad(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl App {
    /// Loads the data set from `store`: the meta record, every chunk, then
    /// the write log. `progress` gets a line per table.
    pub fn load(store: &mut dyn Store, progress: &mut dyn FnMut(&str)) -> Result<App, StoreError> {
        let key = |t: usize, k: u32| data::chunk_key(Table::ALL[t], k);
        let layout = Layout {
            app: "tpcw",
            meta_key: META_KEY,
            version: FORMAT_VERSION,
            tables: Table::ALL.map(Table::name),
            chunk_key: &key,
        };
        let mut db = Db::new();
        let meta = storage::dataset::load(
            store,
            &layout,
            &mut |t, bytes| db.load_chunk(Table::ALL[t], bytes).map(|_| ()).map_err(|e| e.0),
            progress,
        )?;
        db.finish().map_err(|e| StoreError::Data(e.0))?;
        let mut app = App { db, meta, sync: Replica::new(LOG_KEY) };
        let n = app.catch_up(store)?;
        progress(&format!("write log: {n} events applied"));
        Ok(app)
    }

    /// Requests from now on may have arrived after the last catch-up: the
    /// next page that reads the database catches up first. Called per
    /// request, or once per batch of requests that all arrived before this
    /// call (http::Handler::batch).
    pub fn new_requests(&mut self) {
        self.sync.new_requests();
    }

    /// Applies what other instances (and this one) appended to the log since.
    pub fn catch_up(&mut self, store: &mut dyn Store) -> Result<u64, StoreError> {
        self.sync.catch_up(&mut self.db, store)
    }

    /// Events applied from the log.
    pub fn log_position(&self) -> u64 {
        self.sync.applied()
    }

    /// Log events that did not decode (skipped, so one bad event cannot
    /// stop every instance).
    pub fn bad_events(&self) -> u64 {
        self.sync.bad_events
    }

    /// Appends `e` to the log (Redis has it when this returns Ok) and returns
    /// its outcome, decided after every event before it.
    pub fn write(&mut self, store: &mut dyn Store, e: &Event) -> Result<Outcome, StoreError> {
        self.sync.write(&mut self.db, store, &e.encode())
    }

    /// Answers one request. `now` is Unix time in seconds. Pages show every
    /// write acknowledged (by any instance) before the request arrived,
    /// provided [`App::new_requests`] was called since it arrived.
    pub fn handle(&mut self, store: &mut dyn Store, now: i64, method: &str, target: &str, body: &[u8]) -> Page {
        if !matches!(method, "GET" | "HEAD" | "POST") {
            return Page::text(405, "TPC-W pages answer GET, HEAD and POST\n".into());
        }
        match self.route(store, now, target, body) {
            Ok(p) => p,
            Err(Fail::Bad(e)) => html::message("Error", 400, &format!("Error: bad request: {e}"), &Session::default()),
            Err(Fail::Store(e)) => html::message(
                "Error",
                503,
                &format!("Error: the storage tier did not answer: {e}"),
                &Session::default(),
            ),
        }
    }

    fn route(&mut self, store: &mut dyn Store, now: i64, target: &str, body: &[u8]) -> Result<Page, Fail> {
        let path = target.split(['?', ';']).next().unwrap_or(target);
        if path == "/health" {
            let n = self.db.counts();
            return Ok(Page::text(
                200,
                format!(
                    "ok tpcw items={} customers={} orders={} log={} bad_events={}\n",
                    n[Table::Items as usize],
                    n[Table::Customers as usize],
                    n[Table::Orders as usize],
                    self.sync.applied(),
                    self.sync.bad_events
                ),
            ));
        }
        let path = match path {
            "/" | "/tpcw" | "/tpcw/" => html::HOME,
            p => p,
        };
        if !PATHS.contains(&path) {
            return Ok(Page::text(404, format!("no TPC-W page at {path}\n")));
        }
        let f = Form::new(target, body);
        let sess = pages::session(target, &f)?;
        // Order Inquiry reads nothing from the database.
        if path == html::ORDER_INQUIRY {
            return Ok(pages::order_inquiry(&sess));
        }
        self.sync.fresh(&mut self.db, store)?;
        let rel = now.saturating_sub(self.meta.epoch);
        let c = Ctx { db: &self.db, epoch: self.meta.epoch, now: rel };
        let write = match path {
            html::ADMIN_CONFIRM => pages::admin_confirm(&c, &sess, &f)?,
            html::BUY_CONFIRM => pages::buy_confirm(&c, &sess, &f)?,
            html::BUY_REQUEST => pages::buy_request(&c, &sess, &f)?,
            html::SHOPPING_CART => pages::shopping_cart(&c, &sess, &f)?,
            html::ADMIN_REQUEST => return Ok(pages::admin_request(&c, &sess, &f)?),
            html::BEST_SELLERS => return Ok(pages::best_sellers(&c, &sess, &f)?),
            html::CUSTOMER_REGISTRATION => return Ok(pages::customer_registration(&c, &sess)),
            html::NEW_PRODUCTS => return Ok(pages::new_products(&c, &sess, &f)?),
            html::ORDER_DISPLAY => return Ok(pages::order_display(&c, &sess, &f)?),
            html::PRODUCT_DETAIL => return Ok(pages::product_detail(&c, &sess, &f)?),
            html::SEARCH_REQUEST => return Ok(pages::search_request(&c, &sess)),
            html::SEARCH_RESULTS => return Ok(pages::search_results(&c, &sess, &f)?),
            _ => return Ok(pages::home(&c, &sess)),
        };
        let event = match write {
            Ok(e) => e,
            Err(page) => return Ok(page),
        };
        let outcome = self.write(store, &event)?;
        let c = Ctx { db: &self.db, epoch: self.meta.epoch, now: rel };
        Ok(pages::after(&c, &sess, &event, outcome))
    }
}

#[cfg(test)]
mod tests;
