//! Writes, as events in the write log. Each event carries the whole new
//! record; whether it takes effect is decided when it is applied, against
//! every event before it in the log, so all instances agree (a nickname
//! registered twice: the first wins; a bid below the current best: refused).

use alloc::vec::Vec;

use storage::{CodecError, Reader, Writer};

use crate::model::{Bid, BuyNow, Comment, Item, Record, User};

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// RegisterUser.
    RegisterUser(User),
    /// StoreBid.
    Bid(Bid),
    /// StoreBuyNow.
    BuyNow(BuyNow),
    /// StoreComment.
    Comment(Comment),
    /// RegisterItem.
    RegisterItem(Item),
}

impl Event {
    /// The encoded event: a tag, then the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Event::RegisterUser(u) => {
                w.u64(1);
                u.encode(&mut w);
            }
            Event::Bid(b) => {
                w.u64(2);
                b.encode(&mut w);
            }
            Event::BuyNow(b) => {
                w.u64(3);
                b.encode(&mut w);
            }
            Event::Comment(c) => {
                w.u64(4);
                c.encode(&mut w);
            }
            Event::RegisterItem(i) => {
                w.u64(5);
                i.encode(&mut w);
            }
        }
        w.buf
    }

    /// Reads an event.
    pub fn decode(b: &[u8]) -> Result<Event, CodecError> {
        let mut r = Reader::new(b);
        let e = match r.u64()? {
            1 => Event::RegisterUser(User::decode(&mut r)?),
            2 => Event::Bid(Bid::decode(&mut r)?),
            3 => Event::BuyNow(BuyNow::decode(&mut r)?),
            4 => Event::Comment(Comment::decode(&mut r)?),
            5 => Event::RegisterItem(Item::decode(&mut r)?),
            _ => return Err(CodecError::Range),
        };
        if !r.is_empty() {
            return Err(CodecError::Range);
        }
        Ok(e)
    }
}

/// What applying an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect; the new record's id.
    Created(u32),
    /// It did not.
    Refused(Refusal),
}

/// Why an event did not take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// RegisterUser: someone has this nickname.
    NicknameTaken,
    /// A user id that does not exist.
    NoSuchUser,
    /// An item id that does not exist.
    NoSuchItem,
    /// A category id outside 1-20.
    NoSuchCategory,
    /// A region id outside 1-62.
    NoSuchRegion,
    /// Bid or buy-now on an auction that has ended.
    AuctionEnded,
    /// A bid below the current minimum (best bid + 1, or the initial price).
    BidTooLow {
        /// The minimum at the time the event was applied.
        minimum: u32,
    },
    /// A comment's rating outside -5..5.
    BadRating,
    /// More units than are left.
    NotEnoughUnits {
        /// Units left.
        left: u32,
    },
}

impl Refusal {
    /// Why, for the page. Not "Sorry": RUBiS clients go back on "Sorry",
    /// which RUBiS says only when there is nothing to show; after a refused
    /// write they carry on, as with RUBiS's own messages.
    pub fn message(self) -> alloc::string::String {
        use alloc::format;
        match self {
            Refusal::NicknameTaken => {
                "The nickname you have chosen is already taken by someone else. Please choose a new nickname.".into()
            }
            Refusal::NoSuchUser => "Not stored: this user does not exist.".into(),
            Refusal::NoSuchItem => "Not stored: this item does not exist.".into(),
            Refusal::NoSuchCategory => "Not stored: this category does not exist.".into(),
            Refusal::NoSuchRegion => "Not stored: this region does not exist.".into(),
            Refusal::AuctionEnded => "Not stored: this auction has ended.".into(),
            Refusal::BadRating => "Not stored: a rating is between -5 and 5.".into(),
            Refusal::BidTooLow { minimum } => format!("Your bid was not accepted: the minimum bid is now {minimum}."),
            Refusal::NotEnoughUnits { left } => format!("Not stored: only {left} units of this item are left."),
        }
    }
}
