//! The RUBiS-like auction site (rubis.md; docs/apps.md): its data model
//! ([`model`]), the deterministic generator the loader uses ([`gen`]), where
//! the data lives in Redis ([`data`]), the in-memory database an instance
//! builds at start ([`db`]), the writes as log events ([`event`]) and the 26
//! interactions' pages ([`pages`]). [`App`] ties them to a [`Store`]: load
//! at start, catch up with the write log before each dynamic page, append
//! each write and answer only once Redis has it.
//!
//! `no_std` + `alloc`, so the guest program `rubis` serves it in a VM, the
//! host data loader generates its data, and the host tests run it.

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

use storage::dataset::{Layout, Replica};
use storage::{Store, StoreError};
use webpage::{BadParam, Form};

use crate::data::{Meta, FORMAT_VERSION, LOG_KEY, META_KEY};
use crate::db::Db;
use crate::event::{Event, Outcome};
pub use crate::html::Page;
use crate::model::Table;
use crate::pages::Ctx;

/// Largest write event: every instance replays the log at start.
pub const MAX_EVENT: usize = 16 << 10;

/// One instance of the site.
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
            app: "rubis",
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

    /// Answers one request. `now` is Unix time in seconds. Dynamic pages
    /// show every write acknowledged (by any instance) before the request
    /// arrived, provided [`App::new_requests`] was called since it arrived.
    pub fn handle(&mut self, store: &mut dyn Store, now: i64, method: &str, target: &str, body: &[u8]) -> Page {
        if !matches!(method, "GET" | "HEAD" | "POST") {
            return Page::text(405, "RUBiS pages answer GET, HEAD and POST\n".into());
        }
        match self.route(store, now, target, body) {
            Ok(p) => p,
            Err(Fail::Bad(e)) => html::message("ERROR", 400, &format!("ERROR: bad request: {e}")),
            Err(Fail::Store(e)) => html::message("ERROR", 503, &format!("ERROR: the storage tier did not answer: {e}")),
        }
    }

    fn route(&mut self, store: &mut dyn Store, now: i64, target: &str, body: &[u8]) -> Result<Page, Fail> {
        let path = target.split(['?', ';']).next().unwrap_or(target);
        let f = Form::new(target, body);
        // Pages that read nothing mutable.
        let page = match path {
            "/health" => {
                let [u, i, b, c, n] = self.db.counts();
                return Ok(Page::text(
                    200,
                    format!(
                        "ok rubis users={u} items={i} bids={b} comments={c} buy_now={n} log={} bad_events={}\n",
                        self.sync.applied(),
                        self.sync.bad_events
                    ),
                ));
            }
            "/" | "/PHP" | "/PHP/" | "/PHP/index.html" => Some(pages::home()),
            "/PHP/register.html" => Some(pages::register_form()),
            "/PHP/browse.html" => Some(pages::browse()),
            "/PHP/sell.html" => Some(pages::sell()),
            "/PHP/about_me.html" => Some(pages::about_me_form()),
            "/PHP/BrowseRegions.php" => Some(pages::browse_regions()),
            "/PHP/BuyNowAuth.php" => Some(pages::auth_form(&f, 12)?),
            "/PHP/PutBidAuth.php" => Some(pages::auth_form(&f, 15)?),
            "/PHP/PutCommentAuth.php" => Some(pages::auth_form(&f, 18)?),
            "/PHP/SellItemForm.php" => Some(pages::sell_item_form(&f)?),
            _ => None,
        };
        if let Some(p) = page {
            return Ok(p);
        }
        self.sync.fresh(&mut self.db, store)?;
        let rel = now.saturating_sub(self.meta.epoch);
        let c = Ctx { db: &self.db, epoch: self.meta.epoch, now: rel };
        let write = match path {
            "/PHP/BrowseCategories.php" => return Ok(pages::browse_categories(&c, &f)?),
            "/PHP/SearchItemsByCategory.php" => return Ok(pages::search_items(&c, &f, false)?),
            "/PHP/SearchItemsByRegion.php" => return Ok(pages::search_items(&c, &f, true)?),
            "/PHP/ViewItem.php" => return Ok(pages::view_item(&c, &f)?),
            "/PHP/ViewUserInfo.php" => return Ok(pages::view_user_info(&c, &f)?),
            "/PHP/ViewBidHistory.php" => return Ok(pages::view_bid_history(&c, &f)?),
            "/PHP/BuyNow.php" => return Ok(pages::buy_now_form(&c, &f)?),
            "/PHP/PutBid.php" => return Ok(pages::put_bid_form(&c, &f)?),
            "/PHP/PutComment.php" => return Ok(pages::put_comment_form(&c, &f)?),
            "/PHP/AboutMe.php" => return Ok(pages::about_me(&c, &f)?),
            "/PHP/RegisterUser.php" => pages::register_user(&c, &f)?,
            "/PHP/StoreBuyNow.php" => pages::store_buy_now(&c, &f)?,
            "/PHP/StoreBid.php" => pages::store_bid(&c, &f)?,
            "/PHP/StoreComment.php" => pages::store_comment(&c, &f)?,
            "/PHP/RegisterItem.php" => pages::register_item(&c, &f)?,
            _ => return Ok(Page::text(404, format!("no RUBiS page at {path}\n"))),
        };
        let event = match write {
            Ok(e) => e,
            Err(page) => return Ok(page),
        };
        let bytes = event.encode();
        if bytes.len() > MAX_EVENT {
            return Err(Fail::Bad(BadParam(format!("the write is larger than {MAX_EVENT} bytes"))));
        }
        let outcome = self.sync.write(&mut self.db, store, &bytes)?;
        let c = Ctx { db: &self.db, epoch: self.meta.epoch, now: rel };
        Ok(match (outcome, &event) {
            (Outcome::Refused(why), _) => html::message("Not stored", 200, &why.message()),
            (Outcome::Created(id), Event::RegisterUser(_)) => pages::registered(&c, id),
            (Outcome::Created(_), Event::Bid(b)) => html::message(
                "Bid stored",
                200,
                &format!("Your bid of {} on item {} has been processed.", b.bid, b.item),
            ),
            (Outcome::Created(_), Event::BuyNow(b)) => html::message(
                "Purchase stored",
                200,
                &format!("Your purchase of {} unit(s) of item {} has been processed.", b.qty, b.item),
            ),
            (Outcome::Created(_), Event::Comment(cm)) => {
                html::message("Comment stored", 200, &format!("Your comment about user {} has been posted.", cm.to))
            }
            (Outcome::Created(id), Event::RegisterItem(_)) => {
                pages::view_item(&c, &Form::new(&format!("?itemId={id}"), b""))?
            }
        })
    }
}

#[cfg(test)]
mod tests;
