//! The deterministic data generator (rubis.md "Data"): users, active and
//! old items, bids, comments and buy-now purchases at a fraction of RUBiS's
//! default size, as chunks ready to store. Every record comes from a random
//! stream derived from (seed, table, id), so a table can be produced without
//! the others and the same seed always gives the same bytes.
//!
//! Deliberate differences from RUBiS's generator (docs/apps.md): reserve and
//! buy-now prices are drawn per item (RUBiS tests the global item index, so
//! at its default sizes no active item gets one); old and active items share
//! one id space (active first: ids 1..=active, as the load generator draws).

use alloc::string::String;
use alloc::vec::Vec;

use appspec::rubis::{Scale, CATEGORIES, REGIONS};
use storage::dataset::Chunker;
use storage::Rng;

use crate::model::{Bid, BuyNow, Comment, Item, Record, Table, User};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Active items per category in RUBiS's default data (sum 32,667): the
/// generator keeps these proportions.
pub const CATEGORY_ITEMS: [u64; 20] =
    [1374, 2691, 259, 2874, 538, 7521, 664, 586, 1077, 976, 2325, 1051, 1420, 170, 1069, 3029, 305, 242, 3671, 825];

const WORDS: [&str; 32] = [
    "vintage",
    "mint",
    "condition",
    "rare",
    "original",
    "box",
    "signed",
    "collector",
    "edition",
    "limited",
    "shipping",
    "included",
    "excellent",
    "works",
    "perfectly",
    "antique",
    "classic",
    "new",
    "sealed",
    "authentic",
    "great",
    "gift",
    "bargain",
    "quality",
    "handmade",
    "brass",
    "silver",
    "wooden",
    "leather",
    "model",
    "series",
    "set",
];

fn text(r: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len + 12);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        let w: &&str = r.pick(&WORDS[..]);
        s.push_str(w);
    }
    s.truncate(len);
    s
}

/// One stream per (table, id); descriptions and comment texts get their own
/// so records can be regenerated without their text.
fn stream(seed: u64, part: u64, id: u64) -> Rng {
    Rng::derive(seed, (part << 40) | id)
}

/// The category of active item `id` of `active`: contiguous runs in
/// RUBiS's proportions.
pub fn active_category(id: u64, active: u64) -> u32 {
    let total: u64 = CATEGORY_ITEMS.iter().sum();
    let pos = (id - 1) * total / active.max(1);
    let mut cum = 0;
    for (c, n) in CATEGORY_ITEMS.iter().enumerate() {
        cum += n;
        if pos < cum {
            return c as u32 + 1;
        }
    }
    CATEGORIES as u32
}

/// User `id` (1-based).
pub fn user(seed: u64, id: u64) -> User {
    let mut r = stream(seed, 1, id);
    User {
        firstname: alloc::format!("Great{id}").into(),
        lastname: alloc::format!("User{id}").into(),
        nickname: alloc::format!("user{id}").into(),
        password: alloc::format!("password{id}").into(),
        email: alloc::format!("Great{id}.User{id}@rubis.com").into(),
        rating: 0,
        balance: 0,
        created: -(r.range(DAY as u64, 730 * DAY as u64) as i64),
        region: ((id - 1) % REGIONS) as u32 + 1,
    }
}

/// Item `id` (active when `id <= sc.active_items`), with its description
/// when `with_text`.
pub fn item(seed: u64, sc: &Scale, id: u64, with_text: bool) -> Item {
    let mut r = stream(seed, 2, id);
    let active = id <= sc.active_items;
    let initial_price = r.range(1, 5000);
    let reserve_price = if r.percent(40) { initial_price + r.range(0, 999) } else { 0 };
    let buy_now = if r.percent(10) { initial_price + reserve_price + r.range(0, 999) } else { 0 };
    let quantity = if r.percent(80) { 1 } else { r.range(1, 10) };
    let days = r.range(1, 7) as i64;
    let end = if active { r.range(600, (days * DAY) as u64) as i64 } else { -(r.range(3600, 30 * DAY as u64) as i64) };
    let seller = r.range(1, sc.users) as u32;
    let category = if active { active_category(id, sc.active_items) } else { r.range(1, CATEGORIES) as u32 };
    let desc_len = r.range(1, 8192) as usize;
    let description = if with_text { text(&mut stream(seed, 3, id), desc_len) } else { String::new() };
    Item {
        name: alloc::format!("RUBiS automatically generated item #{id}").into(),
        description: description.into(),
        initial_price: initial_price as u32,
        quantity: quantity as u32,
        reserve_price: reserve_price as u32,
        buy_now: buy_now as u32,
        start: end - days * DAY,
        end,
        seller,
        category,
        nb_of_bids: 0,
        max_bid: 0,
    }
}

/// The bids on `it` (item `id`): 0-19, rising from the initial price,
/// spread over the auction's time so far.
pub fn bids(seed: u64, sc: &Scale, id: u64, it: &Item) -> Vec<Bid> {
    let mut r = stream(seed, 4, id);
    let n = r.range(0, 19);
    let until = it.end.min(0);
    let mut price = u64::from(it.initial_price);
    (0..n)
        .map(|k| {
            price += r.range(1, 10);
            Bid {
                user: r.range(1, sc.users) as u32,
                item: id as u32,
                qty: 1,
                bid: price as u32,
                max_bid: (price + r.range(0, 10)) as u32,
                date: it.start + (until - it.start) * (k as i64 + 1) / (n as i64 + 1),
            }
        })
        .collect()
}

/// The comment on the sale of item `id` (one per item): a user rates the seller.
pub fn comment(seed: u64, sc: &Scale, id: u64, it: &Item) -> Comment {
    let mut r = stream(seed, 5, id);
    let len = r.range(1, 2048) as usize;
    Comment {
        from: r.range(1, sc.users) as u32,
        to: it.seller,
        item: id as u32,
        rating: *r.pick(&[-5, -3, 0, 3, 5]),
        date: it.start + (it.end.min(0) - it.start) / 2,
        text: text(&mut stream(seed, 6, id), len).into(),
    }
}

/// The buy-now purchase of item `id`, if any: half of the items with a
/// buy-now price were bought that way.
pub fn buy_now(seed: u64, sc: &Scale, id: u64, it: &Item) -> Option<BuyNow> {
    let mut r = stream(seed, 7, id);
    (it.buy_now > 0 && r.percent(50)).then(|| BuyNow {
        buyer: r.range(1, sc.users) as u32,
        item: id as u32,
        qty: 1,
        date: it.start + (it.end.min(0) - it.start) / 3,
    })
}

/// A chunk of encoded records of one table.
#[derive(Debug)]
pub struct Chunk {
    /// Its table.
    pub table: Table,
    /// Its number within the table.
    pub index: u32,
    /// Records in it.
    pub records: u64,
    /// The encoded records, back to back.
    pub bytes: Vec<u8>,
}

/// Produces the data set chunk by chunk (an iterator, so the loader can
/// store while it generates).
pub struct Generator {
    seed: u64,
    scale: Scale,
    chunker: Chunker<5>,
    /// Records produced per table so far.
    pub counts: [u64; 5],
    /// Chunks produced per table so far.
    pub chunks: [u32; 5],
}

impl Generator {
    /// The data set of `scale` from `seed`.
    pub fn new(scale: Scale, seed: u64) -> Generator {
        let items = scale.active_items + scale.old_items;
        // Users, then four passes over the items (items, bids, comments, buy-nows).
        let rows = [scale.users, items, items, items, items];
        Generator { seed, scale, chunker: Chunker::new(rows), counts: [0; 5], chunks: [0; 5] }
    }

    /// Source rows to go through (for a progress bar).
    pub fn work(&self) -> u64 {
        self.chunker.work()
    }

    /// Rows gone through so far.
    pub fn done(&self) -> u64 {
        self.chunker.done()
    }
}

impl Iterator for Generator {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        let (seed, sc) = (self.seed, self.scale);
        let c = self.chunker.next_chunk(&mut |t, id, sink| match Table::ALL[t] {
            Table::Users => sink.push(|w| user(seed, id).encode(w)),
            Table::Items => sink.push(|w| item(seed, &sc, id, true).encode(w)),
            Table::Bids => {
                let it = item(seed, &sc, id, false);
                for b in bids(seed, &sc, id, &it) {
                    sink.push(|w| b.encode(w));
                }
            }
            Table::Comments => {
                let it = item(seed, &sc, id, false);
                sink.push(|w| comment(seed, &sc, id, &it).encode(w));
            }
            Table::BuyNows => {
                let it = item(seed, &sc, id, false);
                if let Some(b) = buy_now(seed, &sc, id, &it) {
                    sink.push(|w| b.encode(w));
                }
            }
        });
        self.counts = self.chunker.counts;
        self.chunks = self.chunker.chunks;
        c.map(|c| Chunk { table: Table::ALL[c.table], index: c.index, records: c.records, bytes: c.bytes })
    }
}
