//! The in-memory database of one app instance: the five tables and the
//! indexes the pages need (nicknames, active items by category and by
//! category and region ordered by end date, per-item bids, per-user bids,
//! comments, items and purchases). Built from the chunks at start, then kept
//! current by applying the write log. Every id that comes from a record is
//! checked before it is used.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec::Vec;

use appspec::rubis::{CATEGORIES, REGIONS};
use storage::{CodecError, Reader};

use crate::event::{Event, Outcome, Refusal};
use crate::model::{Bid, BuyNow, Comment, Item, Record, Table, User};

/// What the pages list about a user.
#[derive(Clone, Debug, Default)]
pub struct UserIndex {
    /// Their bids.
    pub bids: Vec<u32>,
    /// Comments about them.
    pub comments: Vec<u32>,
    /// Items they sell or sold.
    pub selling: Vec<u32>,
    /// Their buy-now purchases.
    pub bought: Vec<u32>,
}

/// The tables and indexes.
#[derive(Debug, Default)]
pub struct Db {
    /// Users (id n at n-1).
    pub users: Vec<User>,
    /// Per user, at the same position.
    pub user_index: Vec<UserIndex>,
    /// Items (id n at n-1).
    pub items: Vec<Item>,
    /// Per item: its bids in order.
    pub item_bids: Vec<Vec<u32>>,
    /// Bids.
    pub bids: Vec<Bid>,
    /// Comments.
    pub comments: Vec<Comment>,
    /// Buy-now purchases.
    pub buy_nows: Vec<BuyNow>,
    nicknames: BTreeMap<Box<str>, u32>,
    /// Per category: (end, item) of items that had not ended at load or
    /// creation time; pages skip those that ended since.
    by_category: Vec<BTreeSet<(i64, u32)>>,
    /// The same per (category, seller's region).
    by_category_region: Vec<BTreeSet<(i64, u32)>>,
}

/// A record that does not fit the data already loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadError(pub alloc::string::String);

fn get<T>(v: &[T], id: u32) -> Option<&T> {
    v.get((id as usize).checked_sub(1)?)
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db {
            by_category: (0..CATEGORIES).map(|_| BTreeSet::new()).collect(),
            by_category_region: (0..CATEGORIES * REGIONS).map(|_| BTreeSet::new()).collect(),
            ..Db::default()
        }
    }

    /// User `id`.
    pub fn user(&self, id: u32) -> Option<&User> {
        get(&self.users, id)
    }

    /// Item `id`.
    pub fn item(&self, id: u32) -> Option<&Item> {
        get(&self.items, id)
    }

    /// The id of the user called `nickname`.
    pub fn user_by_nickname(&self, nickname: &str) -> Option<u32> {
        self.nicknames.get(nickname).copied()
    }

    /// The lowest acceptable bid on `it`.
    pub fn minimum_bid(it: &Item) -> u32 {
        if it.nb_of_bids == 0 {
            it.initial_price
        } else {
            it.max_bid.saturating_add(1)
        }
    }

    /// Items of `category` (and of sellers in `region`) that end at or
    /// after `now`, soonest first: `skip` of them passed over, then up to `take`.
    pub fn active_items(&self, category: u32, region: Option<u32>, now: i64, skip: usize, take: usize) -> Vec<u32> {
        let (Some(c), r) = ((category as usize).checked_sub(1), region.map(|r| (r as usize).checked_sub(1))) else {
            return Vec::new();
        };
        let set = match r {
            None => self.by_category.get(c),
            Some(None) => None,
            Some(Some(r)) if r < REGIONS as usize => self.by_category_region.get(c * REGIONS as usize + r),
            Some(Some(_)) => None,
        };
        let Some(set) = set else {
            return Vec::new();
        };
        set.range((now, 0)..)
            .filter(|(end, id)| get(&self.items, *id).is_some_and(|it| it.end == *end))
            .skip(skip)
            .take(take)
            .map(|(_, id)| *id)
            .collect()
    }

    fn index_active(&mut self, id: u32) {
        let Some(it) = get(&self.items, id) else {
            return;
        };
        if it.end < 0 {
            return;
        }
        let (end, c) = (it.end, it.category as usize - 1);
        let region = get(&self.users, it.seller).map_or(1, |u| u.region) as usize - 1;
        self.by_category[c].insert((end, id));
        self.by_category_region[c * REGIONS as usize + region].insert((end, id));
    }

    fn add_user(&mut self, u: User) -> Outcome {
        if self.nicknames.contains_key(&*u.nickname) {
            return Outcome::Refused(Refusal::NicknameTaken);
        }
        if u.region == 0 || u64::from(u.region) > REGIONS {
            return Outcome::Refused(Refusal::NoSuchRegion);
        }
        let id = self.users.len() as u32 + 1;
        self.nicknames.insert(u.nickname.clone(), id);
        self.users.push(u);
        self.user_index.push(UserIndex::default());
        Outcome::Created(id)
    }

    fn add_item(&mut self, it: Item) -> Outcome {
        if get(&self.users, it.seller).is_none() {
            return Outcome::Refused(Refusal::NoSuchUser);
        }
        if it.category == 0 || u64::from(it.category) > CATEGORIES {
            return Outcome::Refused(Refusal::NoSuchCategory);
        }
        let id = self.items.len() as u32 + 1;
        self.user_index[it.seller as usize - 1].selling.push(id);
        self.items.push(it);
        self.item_bids.push(Vec::new());
        self.index_active(id);
        Outcome::Created(id)
    }

    fn add_bid(&mut self, b: Bid) -> Outcome {
        if get(&self.users, b.user).is_none() {
            return Outcome::Refused(Refusal::NoSuchUser);
        }
        let Some(it) = self.items.get_mut((b.item as usize).wrapping_sub(1)) else {
            return Outcome::Refused(Refusal::NoSuchItem);
        };
        it.nb_of_bids += 1;
        it.max_bid = it.max_bid.max(b.bid);
        let id = self.bids.len() as u32 + 1;
        self.item_bids[b.item as usize - 1].push(id);
        self.user_index[b.user as usize - 1].bids.push(id);
        self.bids.push(b);
        Outcome::Created(id)
    }

    fn add_comment(&mut self, c: Comment) -> Outcome {
        if get(&self.users, c.from).is_none() || get(&self.users, c.to).is_none() {
            return Outcome::Refused(Refusal::NoSuchUser);
        }
        if get(&self.items, c.item).is_none() {
            return Outcome::Refused(Refusal::NoSuchItem);
        }
        if !(-5..=5).contains(&c.rating) {
            return Outcome::Refused(Refusal::BadRating);
        }
        let id = self.comments.len() as u32 + 1;
        let to = c.to as usize - 1;
        self.users[to].rating = self.users[to].rating.saturating_add(c.rating);
        self.user_index[to].comments.push(id);
        self.comments.push(c);
        Outcome::Created(id)
    }

    fn add_buy_now(&mut self, b: BuyNow) -> Outcome {
        if get(&self.users, b.buyer).is_none() {
            return Outcome::Refused(Refusal::NoSuchUser);
        }
        let Some(it) = self.items.get_mut((b.item as usize).wrapping_sub(1)) else {
            return Outcome::Refused(Refusal::NoSuchItem);
        };
        it.quantity = it.quantity.saturating_sub(b.qty);
        if it.quantity == 0 {
            // Sold out: the auction ends then (RUBiS sets end_date to now;
            // the listing's entry for the old end no longer matches).
            it.end = it.end.min(b.date);
        }
        let id = self.buy_nows.len() as u32 + 1;
        self.user_index[b.buyer as usize - 1].bought.push(id);
        self.buy_nows.push(b);
        Outcome::Created(id)
    }

    /// Adds the records of one chunk of `table` (data set records: no
    /// auction rules, only that every id they name exists).
    pub fn load_chunk(&mut self, table: Table, bytes: &[u8]) -> Result<u64, LoadError> {
        let mut r = Reader::new(bytes);
        let mut n = 0;
        let bad = |e: CodecError, n| LoadError(format!("{} record {n} of a chunk: {e}", table.name()));
        while !r.is_empty() {
            let outcome = match table {
                Table::Users => self.add_user(User::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Items => self.add_item(Item::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Bids => self.add_bid(Bid::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Comments => self.add_comment(Comment::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::BuyNows => self.add_buy_now(BuyNow::decode(&mut r).map_err(|e| bad(e, n))?),
            };
            if let Outcome::Refused(why) = outcome {
                return Err(LoadError(format!("{} record {n} of a chunk: {why:?}", table.name())));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Applies a write from the log, with the auction rules.
    pub fn apply(&mut self, e: Event) -> Outcome {
        match e {
            Event::RegisterUser(u) => self.add_user(u),
            Event::RegisterItem(it) => self.add_item(it),
            Event::Comment(c) => self.add_comment(c),
            Event::Bid(b) => {
                let Some(it) = self.item(b.item) else {
                    return Outcome::Refused(Refusal::NoSuchItem);
                };
                if it.end < b.date {
                    return Outcome::Refused(Refusal::AuctionEnded);
                }
                let minimum = Db::minimum_bid(it);
                if b.bid < minimum {
                    return Outcome::Refused(Refusal::BidTooLow { minimum });
                }
                if b.qty > it.quantity {
                    return Outcome::Refused(Refusal::NotEnoughUnits { left: it.quantity });
                }
                self.add_bid(b)
            }
            Event::BuyNow(b) => {
                let Some(it) = self.item(b.item) else {
                    return Outcome::Refused(Refusal::NoSuchItem);
                };
                if it.end < b.date {
                    return Outcome::Refused(Refusal::AuctionEnded);
                }
                if b.qty == 0 || b.qty > it.quantity {
                    return Outcome::Refused(Refusal::NotEnoughUnits { left: it.quantity });
                }
                self.add_buy_now(b)
            }
        }
    }

    /// Records per table, for /health and the init log.
    pub fn counts(&self) -> [usize; 5] {
        [self.users.len(), self.items.len(), self.bids.len(), self.comments.len(), self.buy_nows.len()]
    }
}

impl storage::dataset::Database for Db {
    type Outcome = Outcome;

    fn apply_bytes(&mut self, event: &[u8]) -> Result<Outcome, storage::CodecError> {
        Event::decode(event).map(|e| self.apply(e))
    }
}
