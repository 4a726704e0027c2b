//! Writes, as events in the write log. Each event carries what the request
//! asked for; what it does is decided when it is applied, against every
//! event before it in the log, so all instances agree (two Buy Confirms of
//! one cart: the first buys, the second finds it empty; a new customer's id
//! and user name are the next free ones at that point of the log).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use storage::{CodecError, Reader, Writer};

use crate::model::{code, Address, CartLine, Customer, Record, CC_TYPES, SHIP_TYPES};

/// Most lines a cart holds (a page lists them all).
pub const MAX_CART_LINES: usize = 30;
/// Most units of one item in a cart.
pub const MAX_QTY: u32 = 9999;

/// Shopping Cart: create a cart or change one.
#[derive(Clone, Debug, PartialEq)]
pub struct CartChange {
    /// The cart (0: create one).
    pub cart: u32,
    /// When.
    pub time: i64,
    /// An item to add one unit of (0: none).
    pub add: u32,
    /// New quantities of lines already in the cart (0 removes the line).
    pub set: Vec<CartLine>,
    /// The item added when the cart would otherwise be empty (0: none),
    /// drawn by the instance that took the request.
    pub fallback: u32,
}

/// Buy Request by a returning customer: a new login, and the cart is theirs.
#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    /// The cart (0: none).
    pub cart: u32,
    /// The customer.
    pub customer: u32,
    /// When.
    pub time: i64,
}

/// Buy Request by a new customer: the customer and their address are
/// registered (id and user name assigned when applied), and the cart is theirs.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// The cart (0: none).
    pub cart: u32,
    /// When.
    pub time: i64,
    /// The customer (user name, password and address id are set when applied).
    pub customer: Customer,
    /// Their address.
    pub address: Address,
}

/// Buy Confirm: the cart becomes an order, in one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Purchase {
    /// The cart.
    pub cart: u32,
    /// The customer (0: the one Buy Request associated with the cart).
    pub customer: u32,
    /// When.
    pub time: i64,
    /// Card type, an index into [`CC_TYPES`].
    pub cc_type: u8,
    /// Card number.
    pub cc_number: Box<str>,
    /// Name on the card.
    pub cc_name: Box<str>,
    /// Expiry as written.
    pub cc_expiry: Box<str>,
    /// Shipping method, an index into [`SHIP_TYPES`].
    pub ship_type: u8,
    /// A new shipping address (None: the customer's).
    pub ship_addr: Option<Address>,
}

/// Admin Confirm: an item's price and images change, its publication date
/// becomes now and its related items are recomputed.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemUpdate {
    /// The item.
    pub item: u32,
    /// When.
    pub time: i64,
    /// New price, cents.
    pub cost: u32,
    /// New image path.
    pub image: Box<str>,
    /// New thumbnail path.
    pub thumbnail: Box<str>,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Shopping Cart.
    Cart(CartChange),
    /// Buy Request, returning customer.
    Login(Login),
    /// Buy Request, new customer.
    Register(Registration),
    /// Buy Confirm.
    BuyConfirm(Purchase),
    /// Admin Confirm.
    AdminConfirm(ItemUpdate),
}

impl Record for CartChange {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.cart.into()).i64(self.time).u64(self.add.into()).u64(self.set.len() as u64);
        for l in &self.set {
            l.encode(w);
        }
        w.u64(self.fallback.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let (cart, time, add, n) = (r.u32()?, r.i64()?, r.u32()?, r.u64()?);
        if n > MAX_CART_LINES as u64 {
            return Err(CodecError::Range);
        }
        let set = (0..n).map(|_| CartLine::decode(r)).collect::<Result<Vec<_>, _>>()?;
        Ok(CartChange { cart, time, add, set, fallback: r.u32()? })
    }
}

impl Record for Login {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.cart.into()).u64(self.customer.into()).i64(self.time);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Login { cart: r.u32()?, customer: r.u32()?, time: r.i64()? })
    }
}

impl Record for Registration {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.cart.into()).i64(self.time);
        self.customer.encode(w);
        self.address.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Registration {
            cart: r.u32()?,
            time: r.i64()?,
            customer: Customer::decode(r)?,
            address: Address::decode(r)?,
        })
    }
}

impl Record for Purchase {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.cart.into()).u64(self.customer.into()).i64(self.time).u64(self.cc_type.into());
        w.str(&self.cc_number).str(&self.cc_name).str(&self.cc_expiry).u64(self.ship_type.into());
        match &self.ship_addr {
            None => {
                w.u64(0);
            }
            Some(a) => {
                w.u64(1);
                a.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Purchase {
            cart: r.u32()?,
            customer: r.u32()?,
            time: r.i64()?,
            cc_type: code(r, CC_TYPES.len())?,
            cc_number: r.boxed_str()?,
            cc_name: r.boxed_str()?,
            cc_expiry: r.boxed_str()?,
            ship_type: code(r, SHIP_TYPES.len())?,
            ship_addr: match r.u64()? {
                0 => None,
                1 => Some(Address::decode(r)?),
                _ => return Err(CodecError::Range),
            },
        })
    }
}

impl Record for ItemUpdate {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.item.into()).i64(self.time).u64(self.cost.into()).str(&self.image).str(&self.thumbnail);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ItemUpdate {
            item: r.u32()?,
            time: r.i64()?,
            cost: r.u32()?,
            image: r.boxed_str()?,
            thumbnail: r.boxed_str()?,
        })
    }
}

impl Event {
    /// The encoded event: a tag, then the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Event::Cart(c) => {
                w.u64(1);
                c.encode(&mut w);
            }
            Event::Login(l) => {
                w.u64(2);
                l.encode(&mut w);
            }
            Event::Register(g) => {
                w.u64(3);
                g.encode(&mut w);
            }
            Event::BuyConfirm(p) => {
                w.u64(4);
                p.encode(&mut w);
            }
            Event::AdminConfirm(u) => {
                w.u64(5);
                u.encode(&mut w);
            }
        }
        w.buf
    }

    /// Reads an event.
    pub fn decode(b: &[u8]) -> Result<Event, CodecError> {
        let mut r = Reader::new(b);
        let e = match r.u64()? {
            1 => Event::Cart(CartChange::decode(&mut r)?),
            2 => Event::Login(Login::decode(&mut r)?),
            3 => Event::Register(Registration::decode(&mut r)?),
            4 => Event::BuyConfirm(Purchase::decode(&mut r)?),
            5 => Event::AdminConfirm(ItemUpdate::decode(&mut r)?),
            _ => return Err(CodecError::Range),
        };
        if !r.is_empty() {
            return Err(CodecError::Range);
        }
        Ok(e)
    }
}

/// What applying an event (or loading a record) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect; the id of the record it created or changed (cart,
    /// customer, order, item).
    Created(u32),
    /// It did not.
    Refused(Refusal),
}

/// Why an event did not take effect (or a record does not fit the data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A cart id that does not exist.
    NoSuchCart,
    /// A customer id that does not exist.
    NoSuchCustomer,
    /// An item id that does not exist.
    NoSuchItem,
    /// A country id that does not exist.
    NoSuchCountry,
    /// An author id that does not exist.
    NoSuchAuthor,
    /// An address id that does not exist.
    NoSuchAddress,
    /// An order id that does not exist, or lines of an order that are not
    /// together.
    NoSuchOrder,
    /// Buy Confirm of an empty cart.
    EmptyCart,
    /// Buy Confirm of a cart no customer took at Buy Request, without C_ID.
    Anonymous,
    /// A field outside its range (a customer whose user name is not
    /// DigSyl of its id, a zero quantity).
    BadRecord,
}

impl Refusal {
    /// Why, for the page (answered with status 200: an emulated browser
    /// carries on after it).
    pub fn message(self) -> String {
        match self {
            Refusal::NoSuchCart => "This shopping cart does not exist.",
            Refusal::NoSuchCustomer => "There is no customer with this id.",
            Refusal::NoSuchItem => "There is no book with this id.",
            Refusal::NoSuchCountry => "There is no such country.",
            Refusal::NoSuchAuthor => "There is no author with this id.",
            Refusal::NoSuchAddress => "There is no address with this id.",
            Refusal::NoSuchOrder => "There is no order with this id.",
            Refusal::EmptyCart => "Your shopping cart is empty: there is nothing to buy.",
            Refusal::Anonymous => "Please sign in or register at Buy Request before you confirm a purchase.",
            Refusal::BadRecord => "The record has a field outside its range.",
        }
        .into()
    }
}
