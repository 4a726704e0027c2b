//! The in-memory database of one app instance: the seven tables, the carts,
//! and the indexes the pages need (items by subject newest first and by
//! title, titles and authors' last names for prefix search, each customer's
//! orders, each order's lines, and the units sold per item in the most
//! recent orders for Best Sellers). Built from the chunks at start, then
//! kept current by applying the write log. Every id that comes from a record
//! or an event is checked before it is used.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::cmp::Reverse;

use appspec::tpcw::{digsyl, SUBJECTS};
use storage::{CodecError, Reader, Rng};

use crate::event::{
    CartChange, Event, ItemUpdate, Login, Outcome, Purchase, Refusal, Registration, MAX_CART_LINES, MAX_QTY,
};
use crate::gen::{self, DAY};
use crate::model::{
    Address, Author, Cart, CartLine, CcXact, Country, Customer, Item, Order, OrderLine, Record, Table, PENDING, TABLES,
};

/// Best Sellers count the order lines of this many most recent orders.
pub const BEST_SELLER_ORDERS: u32 = 3333;
/// Admin Confirm looks for items bought together in this many most recent orders.
pub const RELATED_ORDERS: usize = 10_000;
/// Most rows a listing (New Products, Best Sellers, Search Results) shows.
pub const LIST_ROWS: usize = 50;
/// How long a login lasts, seconds.
pub const LOGIN_SECONDS: i64 = 2 * 3600;

/// A record that does not fit the data already loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadError(pub String);

/// A New Products key: newest first, then by title.
type NewKey = (Reverse<i64>, Rc<str>, u32);

/// Units sold per item (id, units), most first.
pub type Ranking = Rc<Vec<(u32, u64)>>;

/// The tables and indexes.
#[derive(Debug)]
pub struct Db {
    /// Countries (id n at n-1).
    pub countries: Vec<Country>,
    /// Authors.
    pub authors: Vec<Author>,
    /// Items.
    pub items: Vec<Item>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Customers.
    pub customers: Vec<Customer>,
    /// Orders.
    pub orders: Vec<Order>,
    /// Order lines, each order's together.
    pub order_lines: Vec<OrderLine>,
    /// Shopping carts.
    pub carts: Vec<Cart>,
    /// Per author: their items.
    author_items: Vec<Vec<u32>>,
    /// (lower-case last name, author).
    last_names: BTreeSet<(Box<str>, u32)>,
    /// Per item: its lower-case title, shared by the indexes below.
    title_keys: Vec<Rc<str>>,
    /// (lower-case title, item).
    titles: BTreeSet<(Rc<str>, u32)>,
    /// Per subject: (lower-case title, item).
    subject_titles: Vec<BTreeSet<(Rc<str>, u32)>>,
    /// Per subject: (publication date, newest first; title; item).
    subject_new: Vec<BTreeSet<NewKey>>,
    /// Per customer: their orders, oldest first.
    customer_orders: Vec<Vec<u32>>,
    /// Per order: its lines, a range of `order_lines`.
    lines_of: Vec<(u32, u32)>,
    /// Per item: units in the lines of the orders from `window_from` on.
    window_qty: Vec<u64>,
    /// The oldest order Best Sellers count.
    window_from: u32,
    /// Per subject: Best Sellers, until the next order.
    best: RefCell<Vec<Option<Ranking>>>,
}

fn get<T>(v: &[T], id: u32) -> Option<&T> {
    v.get((id as usize).checked_sub(1)?)
}

fn get_mut<T>(v: &mut [T], id: u32) -> Option<&mut T> {
    v.get_mut((id as usize).checked_sub(1)?)
}

/// The customer id whose user name is `uname` (DigSyl's inverse).
pub fn undigsyl(uname: &str) -> Option<u32> {
    const SYL: [&str; 10] = ["BA", "OG", "AL", "RI", "RE", "SE", "AT", "UL", "IN", "NG"];
    let b = uname.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for pair in b.chunks(2) {
        let d = SYL.iter().position(|s| s.as_bytes() == pair)?;
        n = n.checked_mul(10)?.checked_add(d as u64)?;
    }
    u32::try_from(n).ok()
}

impl Default for Db {
    fn default() -> Db {
        Db::new()
    }
}

impl Db {
    /// An empty database.
    pub fn new() -> Db {
        Db {
            countries: Vec::new(),
            authors: Vec::new(),
            items: Vec::new(),
            addresses: Vec::new(),
            customers: Vec::new(),
            orders: Vec::new(),
            order_lines: Vec::new(),
            carts: Vec::new(),
            author_items: Vec::new(),
            last_names: BTreeSet::new(),
            title_keys: Vec::new(),
            titles: BTreeSet::new(),
            subject_titles: (0..SUBJECTS.len()).map(|_| BTreeSet::new()).collect(),
            subject_new: (0..SUBJECTS.len()).map(|_| BTreeSet::new()).collect(),
            customer_orders: Vec::new(),
            lines_of: Vec::new(),
            window_qty: Vec::new(),
            window_from: 1,
            best: RefCell::new((0..SUBJECTS.len()).map(|_| None).collect()),
        }
    }

    /// Country `id`.
    pub fn country(&self, id: u32) -> Option<&Country> {
        get(&self.countries, id)
    }

    /// Author `id`.
    pub fn author(&self, id: u32) -> Option<&Author> {
        get(&self.authors, id)
    }

    /// Item `id`.
    pub fn item(&self, id: u32) -> Option<&Item> {
        get(&self.items, id)
    }

    /// Address `id`.
    pub fn address(&self, id: u32) -> Option<&Address> {
        get(&self.addresses, id)
    }

    /// Customer `id`.
    pub fn customer(&self, id: u32) -> Option<&Customer> {
        get(&self.customers, id)
    }

    /// Order `id`.
    pub fn order(&self, id: u32) -> Option<&Order> {
        get(&self.orders, id)
    }

    /// Cart `id`.
    pub fn cart(&self, id: u32) -> Option<&Cart> {
        get(&self.carts, id)
    }

    /// The lines of order `id` (none for an unknown order).
    pub fn lines(&self, id: u32) -> &[OrderLine] {
        get(&self.lines_of, id).and_then(|(a, b)| self.order_lines.get(*a as usize..*b as usize)).unwrap_or(&[])
    }

    /// The id of the customer whose user name is `uname`.
    pub fn customer_by_uname(&self, uname: &str) -> Option<u32> {
        let id = undigsyl(uname)?;
        (*self.customer(id)?.uname == *uname).then_some(id)
    }

    /// Customer `id`'s most recent order.
    pub fn latest_order(&self, id: u32) -> Option<u32> {
        get(&self.customer_orders, id)?.last().copied()
    }

    /// New Products: the newest items of `subject` (then by title).
    pub fn new_products(&self, subject: usize) -> Vec<u32> {
        let Some(set) = self.subject_new.get(subject) else {
            return Vec::new();
        };
        set.iter().take(LIST_ROWS).map(|(_, _, id)| *id).collect()
    }

    /// Best Sellers: the items of `subject` most sold in the last
    /// [`BEST_SELLER_ORDERS`] orders, with the units sold.
    pub fn best_sellers(&self, subject: usize) -> Ranking {
        if let Some(Some(r)) = self.best.borrow().get(subject) {
            return r.clone();
        }
        let Some(set) = self.subject_titles.get(subject) else {
            return Rc::new(Vec::new());
        };
        let mut v: Vec<(u32, u64)> = set
            .iter()
            .filter_map(|(_, id)| {
                let q = *get(&self.window_qty, *id)?;
                (q > 0).then_some((*id, q))
            })
            .collect();
        v.sort_unstable_by_key(|(id, q)| (Reverse(*q), *id));
        v.truncate(LIST_ROWS);
        let r = Rc::new(v);
        if let Some(slot) = self.best.borrow_mut().get_mut(subject) {
            *slot = Some(r.clone());
        }
        r
    }

    /// Search by title: the items whose title starts with `prefix`
    /// (ignoring case), by title.
    pub fn search_title(&self, prefix: &str) -> Vec<u32> {
        let p = prefix.to_lowercase();
        let from: (Rc<str>, u32) = (Rc::from(p.as_str()), 0);
        self.titles.range(from..).take_while(|(t, _)| t.starts_with(&*p)).take(LIST_ROWS).map(|(_, id)| *id).collect()
    }

    /// Search by author: the items of the authors whose last name starts
    /// with `prefix` (ignoring case), by title.
    pub fn search_author(&self, prefix: &str) -> Vec<u32> {
        let p = prefix.to_lowercase();
        let from: (Box<str>, u32) = (Box::from(p.as_str()), 0);
        let mut found: Vec<(&str, u32)> = self
            .last_names
            .range(from..)
            .take_while(|(n, _)| n.starts_with(&*p))
            .filter_map(|(_, a)| get(&self.author_items, *a))
            .flatten()
            .filter_map(|i| Some((&**get(&self.title_keys, *i)?, *i)))
            .collect();
        // Only the first LIST_ROWS by title are shown: select them in linear
        // time, then sort those (a one-letter prefix matches 1/26 of the books).
        if found.len() > LIST_ROWS {
            found.select_nth_unstable(LIST_ROWS - 1);
            found.truncate(LIST_ROWS);
        }
        found.sort_unstable();
        found.into_iter().map(|(_, i)| i).collect()
    }

    /// Search by subject: the items of the subject named `name` (ignoring
    /// case), by title.
    pub fn search_subject(&self, name: &str) -> Vec<u32> {
        let Some(s) = SUBJECTS.iter().position(|n| n.eq_ignore_ascii_case(name.trim())) else {
            return Vec::new();
        };
        self.subject_titles[s].iter().take(LIST_ROWS).map(|(_, id)| *id).collect()
    }

    fn add_country(&mut self, c: Country) -> Outcome {
        self.countries.push(c);
        Outcome::Created(self.countries.len() as u32)
    }

    fn add_author(&mut self, a: Author) -> Outcome {
        let id = self.authors.len() as u32 + 1;
        self.last_names.insert((a.lname.to_lowercase().into(), id));
        self.authors.push(a);
        self.author_items.push(Vec::new());
        Outcome::Created(id)
    }

    fn add_item(&mut self, it: Item) -> Outcome {
        if self.author(it.author).is_none() {
            return Outcome::Refused(Refusal::NoSuchAuthor);
        }
        let subject = it.subject as usize;
        if subject >= SUBJECTS.len() || it.related.contains(&0) {
            return Outcome::Refused(Refusal::BadRecord);
        }
        let id = self.items.len() as u32 + 1;
        let key: Rc<str> = Rc::from(it.title.to_lowercase().as_str());
        self.titles.insert((key.clone(), id));
        self.subject_titles[subject].insert((key.clone(), id));
        self.subject_new[subject].insert((Reverse(it.pub_date), key.clone(), id));
        self.title_keys.push(key);
        self.author_items[it.author as usize - 1].push(id);
        self.items.push(it);
        self.window_qty.push(0);
        Outcome::Created(id)
    }

    fn add_address(&mut self, a: Address) -> Outcome {
        if self.country(a.country).is_none() {
            return Outcome::Refused(Refusal::NoSuchCountry);
        }
        self.addresses.push(a);
        Outcome::Created(self.addresses.len() as u32)
    }

    fn add_customer(&mut self, c: Customer) -> Outcome {
        if self.address(c.addr).is_none() {
            return Outcome::Refused(Refusal::NoSuchAddress);
        }
        let id = self.customers.len() as u32 + 1;
        let mut uname = String::new();
        digsyl(id.into(), &mut uname);
        if *c.uname != *uname || c.discount > 100 {
            return Outcome::Refused(Refusal::BadRecord);
        }
        self.customers.push(c);
        self.customer_orders.push(Vec::new());
        Outcome::Created(id)
    }

    fn add_order(&mut self, o: Order) -> Outcome {
        if self.customer(o.customer).is_none() {
            return Outcome::Refused(Refusal::NoSuchCustomer);
        }
        if self.address(o.bill_addr).is_none() || self.address(o.ship_addr).is_none() {
            return Outcome::Refused(Refusal::NoSuchAddress);
        }
        if self.country(o.cc.country).is_none() {
            return Outcome::Refused(Refusal::NoSuchCountry);
        }
        let id = self.orders.len() as u32 + 1;
        self.customer_orders[o.customer as usize - 1].push(id);
        self.orders.push(o);
        let end = self.order_lines.len() as u32;
        self.lines_of.push((end, end));
        // The oldest order leaves the Best Sellers window.
        let from = id.saturating_sub(BEST_SELLER_ORDERS) + 1;
        while self.window_from < from {
            let (a, b) = self.lines_of[self.window_from as usize - 1];
            for l in &self.order_lines[a as usize..b as usize] {
                if let Some(q) = get_mut(&mut self.window_qty, l.item) {
                    *q = q.saturating_sub(l.qty.into());
                }
            }
            self.window_from += 1;
        }
        self.forget_best_sellers();
        Outcome::Created(id)
    }

    fn add_line(&mut self, l: OrderLine) -> Outcome {
        let end = self.order_lines.len() as u32;
        let Some(range) = get_mut(&mut self.lines_of, l.order) else {
            return Outcome::Refused(Refusal::NoSuchOrder);
        };
        // An order's lines are together: they extend its range, which is
        // either empty or at the end of the table.
        if range.1 != end && range.0 != range.1 {
            return Outcome::Refused(Refusal::NoSuchOrder);
        }
        if get(&self.items, l.item).is_none() {
            return Outcome::Refused(Refusal::NoSuchItem);
        }
        if l.qty == 0 {
            return Outcome::Refused(Refusal::BadRecord);
        }
        let Some(range) = get_mut(&mut self.lines_of, l.order) else {
            return Outcome::Refused(Refusal::NoSuchOrder);
        };
        if range.0 == range.1 {
            *range = (end, end);
        }
        range.1 = end + 1;
        if l.order >= self.window_from {
            if let Some(q) = get_mut(&mut self.window_qty, l.item) {
                *q += u64::from(l.qty);
            }
            self.forget_best_sellers();
        }
        self.order_lines.push(l);
        Outcome::Created(end + 1)
    }

    fn forget_best_sellers(&self) {
        for slot in self.best.borrow_mut().iter_mut() {
            *slot = None;
        }
    }

    /// Adds the records of one chunk of `table` (data set records: only
    /// checks that every id they name exists).
    pub fn load_chunk(&mut self, table: Table, bytes: &[u8]) -> Result<u64, LoadError> {
        let mut r = Reader::new(bytes);
        let mut n = 0;
        let bad = |e: CodecError, n| LoadError(format!("{} record {n} of a chunk: {e}", table.name()));
        while !r.is_empty() {
            let outcome = match table {
                Table::Countries => self.add_country(Country::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Authors => self.add_author(Author::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Items => self.add_item(Item::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Addresses => self.add_address(Address::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Customers => self.add_customer(Customer::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::Orders => self.add_order(Order::decode(&mut r).map_err(|e| bad(e, n))?),
                Table::OrderLines => self.add_line(OrderLine::decode(&mut r).map_err(|e| bad(e, n))?),
            };
            if let Outcome::Refused(why) = outcome {
                return Err(LoadError(format!("{} record {n} of a chunk: {why:?}", table.name())));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Checks what could not be checked record by record (items name their
    /// related items, which may come later in the table); call it once every
    /// chunk is loaded.
    pub fn finish(&self) -> Result<(), LoadError> {
        for (i, it) in self.items.iter().enumerate() {
            if let Some(r) = it.related.iter().find(|r| self.item(**r).is_none()) {
                return Err(LoadError(format!("item {}: its related item {r} does not exist", i + 1)));
            }
        }
        Ok(())
    }

    /// Applies a write from the log.
    pub fn apply(&mut self, e: Event) -> Outcome {
        match e {
            Event::Cart(c) => self.change_cart(c),
            Event::Login(l) => self.login(l),
            Event::Register(r) => self.register(r),
            Event::BuyConfirm(p) => self.buy(p),
            Event::AdminConfirm(u) => self.update_item(u),
        }
    }

    fn change_cart(&mut self, c: CartChange) -> Outcome {
        if c.add != 0 && self.item(c.add).is_none() {
            return Outcome::Refused(Refusal::NoSuchItem);
        }
        let fallback = (c.fallback != 0 && self.item(c.fallback).is_some()).then_some(c.fallback);
        let id = if c.cart == 0 {
            self.carts.push(Cart::default());
            self.carts.len() as u32
        } else {
            c.cart
        };
        let Some(cart) = get_mut(&mut self.carts, id) else {
            return Outcome::Refused(Refusal::NoSuchCart);
        };
        if c.add != 0 {
            match cart.lines.iter().position(|l| l.item == c.add) {
                Some(k) => cart.lines[k].qty = (cart.lines[k].qty + 1).min(MAX_QTY),
                None if cart.lines.len() < MAX_CART_LINES => cart.lines.push(CartLine { item: c.add, qty: 1 }),
                None => {}
            }
        }
        for s in &c.set {
            if let Some(pos) = cart.lines.iter().position(|l| l.item == s.item) {
                if s.qty == 0 {
                    cart.lines.remove(pos);
                } else {
                    cart.lines[pos].qty = s.qty.min(MAX_QTY);
                }
            }
        }
        if let (true, Some(item)) = (cart.lines.is_empty(), fallback) {
            cart.lines.push(CartLine { item, qty: 1 });
        }
        cart.time = c.time;
        Outcome::Created(id)
    }

    fn take_cart(&mut self, cart: u32, customer: u32) {
        if let Some(c) = get_mut(&mut self.carts, cart) {
            c.customer = customer;
        }
    }

    fn login(&mut self, l: Login) -> Outcome {
        let Some(c) = get_mut(&mut self.customers, l.customer) else {
            return Outcome::Refused(Refusal::NoSuchCustomer);
        };
        c.last_login = c.login;
        c.login = l.time;
        c.expiration = l.time.saturating_add(LOGIN_SECONDS);
        self.take_cart(l.cart, l.customer);
        Outcome::Created(l.customer)
    }

    fn register(&mut self, r: Registration) -> Outcome {
        let addr = match self.add_address(r.address) {
            Outcome::Created(a) => a,
            refused => return refused,
        };
        let mut uname = String::new();
        digsyl(self.customers.len() as u64 + 1, &mut uname);
        let c = Customer {
            passwd: uname.to_lowercase().into(),
            uname: uname.into(),
            addr,
            since: r.time,
            last_login: r.time,
            login: r.time,
            expiration: r.time.saturating_add(LOGIN_SECONDS),
            discount: r.customer.discount.min(50),
            balance: 0,
            ytd_pmt: 0,
            ..r.customer
        };
        let outcome = self.add_customer(c);
        if let Outcome::Created(id) = outcome {
            self.take_cart(r.cart, id);
        }
        outcome
    }

    fn buy(&mut self, p: Purchase) -> Outcome {
        let Some(cart) = self.cart(p.cart) else {
            return Outcome::Refused(Refusal::NoSuchCart);
        };
        if cart.lines.is_empty() {
            return Outcome::Refused(Refusal::EmptyCart);
        }
        let cid = if p.customer != 0 { p.customer } else { cart.customer };
        if cid == 0 {
            return Outcome::Refused(Refusal::Anonymous);
        }
        let Some(cust) = self.customer(cid) else {
            return Outcome::Refused(Refusal::NoSuchCustomer);
        };
        if p.ship_addr.as_ref().is_some_and(|a| self.country(a.country).is_none()) {
            return Outcome::Refused(Refusal::NoSuchCountry);
        }
        let (discount, bill) = (cust.discount, cust.addr);
        let lines: Vec<(CartLine, u32)> =
            cart.lines.iter().filter_map(|l| Some((*l, self.item(l.item)?.cost))).collect();
        let (mut sub_total, mut units) = (0, 0);
        for (l, cost) in &lines {
            sub_total = gen::line_amount(*cost, l.qty, discount).saturating_add(sub_total);
            units += i64::from(l.qty);
        }
        let (tax, total) = gen::totals(sub_total, units);
        let ship = match p.ship_addr {
            Some(a) => match self.add_address(a) {
                Outcome::Created(id) => id,
                refused => return refused,
            },
            None => bill,
        };
        let country = self.address(ship).map_or(1, |a| a.country);
        let oid = self.orders.len() as u32 + 1;
        let mut rng = Rng::derive(p.time as u64, oid.into());
        let auth_id: String = (0..15).map(|_| (b'A' + rng.range(0, 25) as u8) as char).collect();
        let order = Order {
            customer: cid,
            date: p.time,
            sub_total,
            tax,
            total,
            ship_type: p.ship_type,
            ship_date: p.time.saturating_add(rng.range(0, 7 * DAY as u64) as i64),
            bill_addr: bill,
            ship_addr: ship,
            status: PENDING,
            cc: CcXact {
                cc_type: p.cc_type,
                number: p.cc_number,
                name: p.cc_name,
                expiry: p.cc_expiry,
                auth_id: auth_id.into(),
                amount: total,
                date: p.time,
                country,
            },
        };
        let outcome = self.add_order(order);
        let Outcome::Created(oid) = outcome else {
            return outcome;
        };
        for (l, _) in lines {
            let len = rng.range(20, 100) as usize;
            let comments = gen::text(&mut rng, len).into();
            self.add_line(OrderLine { order: oid, item: l.item, qty: l.qty, discount, comments });
            if let Some(it) = get_mut(&mut self.items, l.item) {
                let left = i64::from(it.stock) - i64::from(l.qty);
                it.stock = if left < 10 { left + 21 } else { left }.clamp(0, u32::MAX.into()) as u32;
            }
        }
        if let Some(c) = get_mut(&mut self.carts, p.cart) {
            c.lines.clear();
            c.time = p.time;
        }
        outcome
    }

    /// The five items most bought (by units) by the customers who bought
    /// `item` in the last [`RELATED_ORDERS`] orders, `item` excepted.
    pub fn co_bought(&self, item: u32) -> Vec<u32> {
        let from = self.orders.len().saturating_sub(RELATED_ORDERS);
        let mut buyers = BTreeSet::new();
        for (k, o) in self.orders.iter().enumerate().skip(from) {
            if self.lines(k as u32 + 1).iter().any(|l| l.item == item) {
                buyers.insert(o.customer);
            }
        }
        let mut units: BTreeMap<u32, u64> = BTreeMap::new();
        for c in buyers {
            for o in get(&self.customer_orders, c).map_or(&[][..], Vec::as_slice) {
                for l in self.lines(*o).iter().filter(|l| l.item != item) {
                    *units.entry(l.item).or_default() += u64::from(l.qty);
                }
            }
        }
        let mut ranked: Vec<(u32, u64)> = units.into_iter().collect();
        ranked.sort_unstable_by_key(|(id, q)| (Reverse(*q), *id));
        ranked.into_iter().take(5).map(|(id, _)| id).collect()
    }

    fn update_item(&mut self, u: ItemUpdate) -> Outcome {
        let Some(it) = self.item(u.item) else {
            return Outcome::Refused(Refusal::NoSuchItem);
        };
        // Fewer than five bought together: the old related items fill in.
        let mut related = self.co_bought(u.item);
        for r in it.related {
            if related.len() < 5 && !related.contains(&r) && r != u.item {
                related.push(r);
            }
        }
        for r in it.related {
            if related.len() < 5 {
                related.push(r);
            }
        }
        let (subject, old_date) = (it.subject as usize, it.pub_date);
        let Some(key) = get(&self.title_keys, u.item).cloned() else {
            return Outcome::Refused(Refusal::NoSuchItem);
        };
        if let Some(set) = self.subject_new.get_mut(subject) {
            set.remove(&(Reverse(old_date), key.clone(), u.item));
            set.insert((Reverse(u.time), key, u.item));
        }
        let Some(it) = get_mut(&mut self.items, u.item) else {
            return Outcome::Refused(Refusal::NoSuchItem);
        };
        for (slot, r) in it.related.iter_mut().zip(related) {
            *slot = r;
        }
        it.cost = u.cost;
        it.image = u.image;
        it.thumbnail = u.thumbnail;
        it.pub_date = u.time;
        Outcome::Created(u.item)
    }

    /// Records per table, for /health and the init log.
    pub fn counts(&self) -> [usize; TABLES] {
        [
            self.countries.len(),
            self.authors.len(),
            self.items.len(),
            self.addresses.len(),
            self.customers.len(),
            self.orders.len(),
            self.order_lines.len(),
        ]
    }
}

impl storage::dataset::Database for Db {
    type Outcome = Outcome;

    fn apply_bytes(&mut self, event: &[u8]) -> Result<Outcome, storage::CodecError> {
        Event::decode(event).map(|e| self.apply(e))
    }
}
