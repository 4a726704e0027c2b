//! The five tables of RUBiS (users, items, bids, comments, buy-now) as
//! records, and their encoding in chunks. Ids are dense and start at 1: the
//! n-th record of a table has id n. Times are seconds relative to the data
//! set's epoch (the moment it was loaded, in the meta record), so the same
//! seed gives byte-identical chunks on every load.

use alloc::boxed::Box;

use storage::{CodecError, Reader, Writer};

/// A registered user.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// First name.
    pub firstname: Box<str>,
    /// Last name.
    pub lastname: Box<str>,
    /// Unique login name.
    pub nickname: Box<str>,
    /// Password (RUBiS stores it in clear; so do we).
    pub password: Box<str>,
    /// E-mail address.
    pub email: Box<str>,
    /// Sum of the ratings of comments about this user.
    pub rating: i64,
    /// Account balance.
    pub balance: i64,
    /// Registration time.
    pub created: i64,
    /// Region id, 1-62.
    pub region: u32,
}

/// An item, on sale or sold (an auction that ended).
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Title.
    pub name: Box<str>,
    /// Description (1-8192 characters).
    pub description: Box<str>,
    /// Starting price.
    pub initial_price: u32,
    /// Units left.
    pub quantity: u32,
    /// Reserve price (0: none).
    pub reserve_price: u32,
    /// Buy-now price (0: none).
    pub buy_now: u32,
    /// Start of the auction.
    pub start: i64,
    /// End of the auction.
    pub end: i64,
    /// Seller's user id.
    pub seller: u32,
    /// Category id, 1-20.
    pub category: u32,
    /// Bids so far (derived from the bids table).
    pub nb_of_bids: u32,
    /// Highest bid so far (derived; 0 without bids).
    pub max_bid: u32,
}

/// A bid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bid {
    /// Bidder.
    pub user: u32,
    /// Item.
    pub item: u32,
    /// Units wanted.
    pub qty: u32,
    /// Amount.
    pub bid: u32,
    /// Most the bidder will pay.
    pub max_bid: u32,
    /// When.
    pub date: i64,
}

/// A comment about a user, after a sale.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// Author.
    pub from: u32,
    /// Whom it is about.
    pub to: u32,
    /// The item it concerns.
    pub item: u32,
    /// -5, -3, 0, 3 or 5.
    pub rating: i64,
    /// When.
    pub date: i64,
    /// Text (1-2048 characters).
    pub text: Box<str>,
}

/// A buy-now purchase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BuyNow {
    /// Buyer.
    pub buyer: u32,
    /// Item.
    pub item: u32,
    /// Units bought.
    pub qty: u32,
    /// When.
    pub date: i64,
}

/// The tables, in load order (each table's records may refer to the ones before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// [`User`]s.
    Users = 0,
    /// [`Item`]s.
    Items = 1,
    /// [`Bid`]s.
    Bids = 2,
    /// [`Comment`]s.
    Comments = 3,
    /// [`BuyNow`]s.
    BuyNows = 4,
}

impl Table {
    /// Every table, in load order.
    pub const ALL: [Table; 5] = [Table::Users, Table::Items, Table::Bids, Table::Comments, Table::BuyNows];

    /// The name in Redis keys and summaries.
    pub fn name(self) -> &'static str {
        ["users", "items", "bids", "comments", "buy_now"][self as usize]
    }
}

/// A record's encoding.
pub trait Record: Sized {
    /// Appends the record.
    fn encode(&self, w: &mut Writer);
    /// Reads one record.
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;
}

impl Record for User {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.firstname).str(&self.lastname).str(&self.nickname).str(&self.password).str(&self.email);
        w.i64(self.rating).i64(self.balance).i64(self.created).u64(self.region.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(User {
            firstname: r.boxed_str()?,
            lastname: r.boxed_str()?,
            nickname: r.boxed_str()?,
            password: r.boxed_str()?,
            email: r.boxed_str()?,
            rating: r.i64()?,
            balance: r.i64()?,
            created: r.i64()?,
            region: r.u32()?,
        })
    }
}

impl Record for Item {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.name).str(&self.description);
        for v in [self.initial_price, self.quantity, self.reserve_price, self.buy_now] {
            w.u64(v.into());
        }
        w.i64(self.start).i64(self.end).u64(self.seller.into()).u64(self.category.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Item {
            name: r.boxed_str()?,
            description: r.boxed_str()?,
            initial_price: r.u32()?,
            quantity: r.u32()?,
            reserve_price: r.u32()?,
            buy_now: r.u32()?,
            start: r.i64()?,
            end: r.i64()?,
            seller: r.u32()?,
            category: r.u32()?,
            nb_of_bids: 0,
            max_bid: 0,
        })
    }
}

impl Record for Bid {
    fn encode(&self, w: &mut Writer) {
        for v in [self.user, self.item, self.qty, self.bid, self.max_bid] {
            w.u64(v.into());
        }
        w.i64(self.date);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Bid { user: r.u32()?, item: r.u32()?, qty: r.u32()?, bid: r.u32()?, max_bid: r.u32()?, date: r.i64()? })
    }
}

impl Record for Comment {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.from.into()).u64(self.to.into()).u64(self.item.into());
        w.i64(self.rating).i64(self.date).str(&self.text);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Comment {
            from: r.u32()?,
            to: r.u32()?,
            item: r.u32()?,
            rating: r.i64()?,
            date: r.i64()?,
            text: r.boxed_str()?,
        })
    }
}

impl Record for BuyNow {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.buyer.into()).u64(self.item.into()).u64(self.qty.into()).i64(self.date);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(BuyNow { buyer: r.u32()?, item: r.u32()?, qty: r.u32()?, date: r.i64()? })
    }
}
