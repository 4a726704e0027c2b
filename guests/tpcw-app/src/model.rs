//! The seven tables of TPC-W (countries, authors, items, addresses,
//! customers, orders with their credit-card transaction, order lines) as
//! records, their encoding in chunks, and the shopping carts, which exist
//! only at run time. Ids are dense and start at 1: the n-th record of a
//! table has id n. Times are seconds relative to the data set's epoch (the
//! moment it was loaded, in the meta record), so the same seed gives
//! byte-identical chunks on every load. Money is in cents.

use alloc::boxed::Box;
use alloc::vec::Vec;

use storage::{CodecError, Reader, Writer};

/// Number of tables (the length of [`Table::ALL`] and of the meta record's arrays).
pub const TABLES: usize = 7;

/// Book bindings; [`Item::backing`] indexes this.
pub const BACKINGS: [&str; 5] = ["HARDBACK", "PAPERBACK", "USED", "AUDIO", "LIMITED-EDITION"];
/// Credit cards the store takes; [`CcXact::cc_type`] indexes this.
pub const CC_TYPES: [&str; 5] = ["VISA", "MASTERCARD", "DISCOVER", "DINERS", "AMEX"];
/// Shipping methods; [`Order::ship_type`] indexes this.
pub const SHIP_TYPES: [&str; 6] = ["AIR", "UPS", "FEDEX", "SHIP", "COURIER", "MAIL"];
/// Order states; [`Order::status`] indexes this.
pub const STATUSES: [&str; 4] = ["PROCESSING", "SHIPPED", "PENDING", "DENIED"];
/// The status of an order Buy Confirm creates.
pub const PENDING: u8 = 2;

/// A country (addresses and payments name one).
#[derive(Clone, Debug, PartialEq)]
pub struct Country {
    /// Name.
    pub name: Box<str>,
    /// Its currency.
    pub currency: Box<str>,
    /// Units of the currency per US dollar, in thousandths.
    pub exchange: u64,
}

/// A book's author.
#[derive(Clone, Debug, PartialEq)]
pub struct Author {
    /// First name.
    pub fname: Box<str>,
    /// Middle name.
    pub mname: Box<str>,
    /// Last name (Search Results by author match its prefix).
    pub lname: Box<str>,
    /// Date of birth.
    pub dob: i64,
    /// Biography.
    pub bio: Box<str>,
}

/// A book on sale.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Title (Search Results by title match its prefix).
    pub title: Box<str>,
    /// Author id.
    pub author: u32,
    /// Publication date (Admin Confirm sets it to the time of the change).
    pub pub_date: i64,
    /// Publisher.
    pub publisher: Box<str>,
    /// Subject, an index into [`appspec::tpcw::SUBJECTS`].
    pub subject: u8,
    /// Description.
    pub desc: Box<str>,
    /// Five related item ids (Home's promotion; Admin Confirm recomputes them).
    pub related: [u32; 5],
    /// Thumbnail image path, `img<k>/thumb_<id>.gif`.
    pub thumbnail: Box<str>,
    /// Image path, `img<k>/image_<id>.gif`.
    pub image: Box<str>,
    /// Suggested retail price.
    pub srp: u32,
    /// Our price.
    pub cost: u32,
    /// When it is available.
    pub avail: i64,
    /// Units in stock.
    pub stock: u32,
    /// ISBN, 13 digits.
    pub isbn: Box<str>,
    /// Pages.
    pub pages: u32,
    /// Binding, an index into [`BACKINGS`].
    pub backing: u8,
    /// Dimensions, `L x W x H` in inches.
    pub dimensions: Box<str>,
}

/// A postal address (customers', billing and shipping).
#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    /// First street line.
    pub street1: Box<str>,
    /// Second street line (may be empty).
    pub street2: Box<str>,
    /// City.
    pub city: Box<str>,
    /// State or province.
    pub state: Box<str>,
    /// Postal code.
    pub zip: Box<str>,
    /// Country id.
    pub country: u32,
}

/// A registered customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    /// User name: DigSyl(id).
    pub uname: Box<str>,
    /// Password: the user name in lower case.
    pub passwd: Box<str>,
    /// First name.
    pub fname: Box<str>,
    /// Last name.
    pub lname: Box<str>,
    /// Address id.
    pub addr: u32,
    /// Phone number.
    pub phone: Box<str>,
    /// E-mail address.
    pub email: Box<str>,
    /// Registration time.
    pub since: i64,
    /// The login before the current one.
    pub last_login: i64,
    /// The current login (Buy Request).
    pub login: i64,
    /// When the current login expires.
    pub expiration: i64,
    /// Discount on every order, percent (0-50).
    pub discount: u32,
    /// Balance.
    pub balance: i64,
    /// Payments this year.
    pub ytd_pmt: i64,
    /// Date of birth.
    pub birthdate: i64,
    /// Free text about the customer.
    pub data: Box<str>,
}

/// The credit-card transaction that paid an order (one per order, so it
/// lives in the order record).
#[derive(Clone, Debug, PartialEq)]
pub struct CcXact {
    /// Card type, an index into [`CC_TYPES`].
    pub cc_type: u8,
    /// Card number.
    pub number: Box<str>,
    /// Name on the card.
    pub name: Box<str>,
    /// Expiry as the customer wrote it.
    pub expiry: Box<str>,
    /// Authorisation id from the payment gateway.
    pub auth_id: Box<str>,
    /// Amount charged.
    pub amount: i64,
    /// When.
    pub date: i64,
    /// Country id of the payment.
    pub country: u32,
}

/// An order.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// Customer id.
    pub customer: u32,
    /// When it was placed.
    pub date: i64,
    /// Sum of the lines after the customer's discount.
    pub sub_total: i64,
    /// Tax.
    pub tax: i64,
    /// Sub-total, tax and shipping.
    pub total: i64,
    /// Shipping method, an index into [`SHIP_TYPES`].
    pub ship_type: u8,
    /// When it ships.
    pub ship_date: i64,
    /// Billing address id.
    pub bill_addr: u32,
    /// Shipping address id.
    pub ship_addr: u32,
    /// State, an index into [`STATUSES`].
    pub status: u8,
    /// The payment.
    pub cc: CcXact,
}

/// A line of an order. An order's lines are consecutive in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderLine {
    /// Order id.
    pub order: u32,
    /// Item id.
    pub item: u32,
    /// Units.
    pub qty: u32,
    /// Discount, percent.
    pub discount: u32,
    /// Comments.
    pub comments: Box<str>,
}

/// A line of a shopping cart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartLine {
    /// Item id.
    pub item: u32,
    /// Units.
    pub qty: u32,
}

/// A shopping cart (created by the Shopping Cart interaction; none in the
/// data set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cart {
    /// The customer Buy Request associated with it (0: none yet).
    pub customer: u32,
    /// Last change.
    pub time: i64,
    /// Its lines, in the order the items were added.
    pub lines: Vec<CartLine>,
}

/// The tables, in load order (each table's records refer only to the
/// tables before it, except items to their related items).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// [`Country`]s.
    Countries = 0,
    /// [`Author`]s.
    Authors = 1,
    /// [`Item`]s.
    Items = 2,
    /// [`Address`]es.
    Addresses = 3,
    /// [`Customer`]s.
    Customers = 4,
    /// [`Order`]s.
    Orders = 5,
    /// [`OrderLine`]s.
    OrderLines = 6,
}

impl Table {
    /// Every table, in load order.
    pub const ALL: [Table; TABLES] = [
        Table::Countries,
        Table::Authors,
        Table::Items,
        Table::Addresses,
        Table::Customers,
        Table::Orders,
        Table::OrderLines,
    ];

    /// The name in Redis keys and summaries.
    pub fn name(self) -> &'static str {
        ["country", "author", "item", "address", "customer", "orders", "order_line"][self as usize]
    }
}

/// A record's encoding.
pub trait Record: Sized {
    /// Appends the record.
    fn encode(&self, w: &mut Writer);
    /// Reads one record.
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;
}

/// A small enumeration value: below `n`.
pub(crate) fn code(r: &mut Reader<'_>, n: usize) -> Result<u8, CodecError> {
    let v = r.u64()?;
    if v < n as u64 {
        Ok(v as u8)
    } else {
        Err(CodecError::Range)
    }
}

impl Record for Country {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.name).str(&self.currency).u64(self.exchange);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Country { name: r.boxed_str()?, currency: r.boxed_str()?, exchange: r.u64()? })
    }
}

impl Record for Author {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.fname).str(&self.mname).str(&self.lname).i64(self.dob).str(&self.bio);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Author {
            fname: r.boxed_str()?,
            mname: r.boxed_str()?,
            lname: r.boxed_str()?,
            dob: r.i64()?,
            bio: r.boxed_str()?,
        })
    }
}

impl Record for Item {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.title).u64(self.author.into()).i64(self.pub_date).str(&self.publisher);
        w.u64(self.subject.into()).str(&self.desc);
        for id in self.related {
            w.u64(id.into());
        }
        w.str(&self.thumbnail).str(&self.image).u64(self.srp.into()).u64(self.cost.into());
        w.i64(self.avail).u64(self.stock.into()).str(&self.isbn).u64(self.pages.into());
        w.u64(self.backing.into()).str(&self.dimensions);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let (title, author, pub_date, publisher) = (r.boxed_str()?, r.u32()?, r.i64()?, r.boxed_str()?);
        let (subject, desc) = (code(r, appspec::tpcw::SUBJECTS.len())?, r.boxed_str()?);
        let mut related = [0; 5];
        for id in &mut related {
            *id = r.u32()?;
        }
        Ok(Item {
            title,
            author,
            pub_date,
            publisher,
            subject,
            desc,
            related,
            thumbnail: r.boxed_str()?,
            image: r.boxed_str()?,
            srp: r.u32()?,
            cost: r.u32()?,
            avail: r.i64()?,
            stock: r.u32()?,
            isbn: r.boxed_str()?,
            pages: r.u32()?,
            backing: code(r, BACKINGS.len())?,
            dimensions: r.boxed_str()?,
        })
    }
}

impl Record for Address {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.street1).str(&self.street2).str(&self.city).str(&self.state).str(&self.zip);
        w.u64(self.country.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Address {
            street1: r.boxed_str()?,
            street2: r.boxed_str()?,
            city: r.boxed_str()?,
            state: r.boxed_str()?,
            zip: r.boxed_str()?,
            country: r.u32()?,
        })
    }
}

impl Record for Customer {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.uname).str(&self.passwd).str(&self.fname).str(&self.lname).u64(self.addr.into());
        w.str(&self.phone).str(&self.email);
        for t in [self.since, self.last_login, self.login, self.expiration] {
            w.i64(t);
        }
        w.u64(self.discount.into()).i64(self.balance).i64(self.ytd_pmt).i64(self.birthdate).str(&self.data);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Customer {
            uname: r.boxed_str()?,
            passwd: r.boxed_str()?,
            fname: r.boxed_str()?,
            lname: r.boxed_str()?,
            addr: r.u32()?,
            phone: r.boxed_str()?,
            email: r.boxed_str()?,
            since: r.i64()?,
            last_login: r.i64()?,
            login: r.i64()?,
            expiration: r.i64()?,
            discount: r.u32()?,
            balance: r.i64()?,
            ytd_pmt: r.i64()?,
            birthdate: r.i64()?,
            data: r.boxed_str()?,
        })
    }
}

impl Record for CcXact {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.cc_type.into()).str(&self.number).str(&self.name).str(&self.expiry).str(&self.auth_id);
        w.i64(self.amount).i64(self.date).u64(self.country.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CcXact {
            cc_type: code(r, CC_TYPES.len())?,
            number: r.boxed_str()?,
            name: r.boxed_str()?,
            expiry: r.boxed_str()?,
            auth_id: r.boxed_str()?,
            amount: r.i64()?,
            date: r.i64()?,
            country: r.u32()?,
        })
    }
}

impl Record for Order {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.customer.into()).i64(self.date).i64(self.sub_total).i64(self.tax).i64(self.total);
        w.u64(self.ship_type.into()).i64(self.ship_date).u64(self.bill_addr.into()).u64(self.ship_addr.into());
        w.u64(self.status.into());
        self.cc.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Order {
            customer: r.u32()?,
            date: r.i64()?,
            sub_total: r.i64()?,
            tax: r.i64()?,
            total: r.i64()?,
            ship_type: code(r, SHIP_TYPES.len())?,
            ship_date: r.i64()?,
            bill_addr: r.u32()?,
            ship_addr: r.u32()?,
            status: code(r, STATUSES.len())?,
            cc: CcXact::decode(r)?,
        })
    }
}

impl Record for OrderLine {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.order.into()).u64(self.item.into()).u64(self.qty.into()).u64(self.discount.into());
        w.str(&self.comments);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(OrderLine { order: r.u32()?, item: r.u32()?, qty: r.u32()?, discount: r.u32()?, comments: r.boxed_str()? })
    }
}

impl Record for CartLine {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.item.into()).u64(self.qty.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CartLine { item: r.u32()?, qty: r.u32()? })
    }
}
