//! Host tests of the pure parts: records and events round-trip, the
//! generator is deterministic and follows TPC-W's scale rules, the database
//! applies the bookstore's rules, every interaction's page says what TPC-W
//! clients look for, and sessions walked like the load generator's get only
//! 200s from [`App`] over a real redis-server the tests start.

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::string::ToString;
use std::{format, println};

use appspec::tpcw::{self, Params, Scale};
use storage::{Reply, Rng, Store, StoreError, Writer};
use webpage::Form;

use crate::data::{self, Meta, FORMAT_VERSION, META_KEY, TABLES};
use crate::db::{Db, BEST_SELLER_ORDERS};
use crate::event::{CartChange, Event, ItemUpdate, Login, Outcome, Purchase, Refusal, Registration};
use crate::gen::{self, Generator};
use crate::html::Session;
use crate::model::{CartLine, Record, Table};
use crate::pages::{self, Ctx};
use crate::{App, Page};

const SEED: u64 = 42;
const EPOCH: i64 = 1_800_000_000;

fn small() -> Scale {
    Scale::of(100, 1)
}

fn build(scale: Scale) -> Db {
    let mut db = Db::new();
    for c in Generator::new(scale, SEED) {
        db.load_chunk(c.table, &c.bytes).expect("generated chunks load");
    }
    db.finish().expect("related items exist");
    db
}

fn ok(p: Page) -> String {
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.starts_with("<HTML>") && p.body.ends_with("</HTML>\n"));
    p.body
}

/// The number after the first `key` in `body`, as the load generator reads it.
fn number_after(body: &str, key: &str) -> Option<u64> {
    let at = body.find(key)? + key.len();
    let digits: String = body[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn the_generator_is_deterministic_and_follows_the_scale_rules() {
    let sc = small();
    let a: Vec<Vec<u8>> = Generator::new(sc, SEED).map(|c| c.bytes).collect();
    let b: Vec<Vec<u8>> = Generator::new(sc, SEED).map(|c| c.bytes).collect();
    assert_eq!(a, b, "the same seed gives the same bytes");
    let c: Vec<Vec<u8>> = Generator::new(sc, SEED + 1).map(|c| c.bytes).collect();
    assert_ne!(a, c);
    let mut g = Generator::new(sc, SEED);
    let mut indexes = [0u32; TABLES];
    for chunk in g.by_ref() {
        assert_eq!(chunk.index, indexes[chunk.table as usize], "chunks are numbered in order");
        indexes[chunk.table as usize] += 1;
        assert!(chunk.bytes.len() < storage::dataset::CHUNK_BYTES + 4096);
    }
    assert_eq!(g.done(), g.work());
    let n = |t: Table| g.counts[t as usize];
    assert_eq!(n(Table::Countries), 92);
    assert_eq!(n(Table::Items), 100);
    assert_eq!(n(Table::Authors), 25);
    assert_eq!(n(Table::Customers), 2880);
    assert_eq!(n(Table::Addresses), 2 * 2880);
    assert_eq!(n(Table::Orders), 2592);
    let lines = n(Table::OrderLines);
    assert!((2 * 2592..=4 * 2592).contains(&lines), "{lines} lines: 1-5 per order, 3 on average");
    let db = build(sc);
    assert_eq!(db.counts().map(|x| x as u64), g.counts);
    for (k, it) in db.items.iter().enumerate() {
        assert!((10..=30).contains(&it.stock));
        assert!(it.cost <= it.srp && it.cost > 0);
        assert!(!it.related.contains(&(k as u32 + 1)), "an item is not related to itself");
        assert!(it.thumbnail.starts_with("img") && it.thumbnail.contains("/thumb_"));
        assert!((100..=400).contains(&it.desc.len()));
    }
    let mut u = String::new();
    tpcw::digsyl(1907, &mut u);
    let cu = db.customer(1907).expect("customer");
    assert_eq!((&*cu.uname, &*cu.passwd), (u.as_str(), "ogngbaul"));
    assert!((100..=500).contains(&cu.data.len()));
    assert_eq!(db.customer_by_uname("OGNGBAUL"), Some(1907));
    assert_eq!(db.customer_by_uname("BAOGNGBAUL"), None, "leading zeros are another name");
    // Orders are in date order, the latest just before the load.
    assert!(db.orders.windows(2).all(|w| w[0].date <= w[1].date));
    assert!(db.orders.last().is_some_and(|o| o.date <= 0 && o.date > -gen::DAY));
    // Every letter starts some title at the default scale's 1,000 items.
    let big = Scale::fraction(tpcw::DEFAULT_SCALE);
    for letter in 'A'..='Z' {
        assert!(
            (1..=big.items).any(|id| gen::item(SEED, &big, id, false).title.starts_with(letter)),
            "no title starts with {letter}"
        );
    }
}

#[test]
fn the_default_scale_is_tens_of_mib() {
    let sc = Scale::fraction(tpcw::DEFAULT_SCALE);
    assert_eq!((sc.items, sc.customers), (1_000, 28_800));
    let started = std::time::Instant::now();
    let mut g = Generator::new(sc, SEED);
    let mut bytes = [0usize; TABLES];
    let mut db = Db::new();
    for c in g.by_ref() {
        bytes[c.table as usize] += c.bytes.len();
        db.load_chunk(c.table, &c.bytes).expect("loads");
    }
    db.finish().expect("related items exist");
    println!("generated and loaded in {:.2} s (debug build)", started.elapsed().as_secs_f64());
    for t in Table::ALL {
        println!(
            "{:>10}: {:>7} records {:>9} bytes {:>3} chunks",
            t.name(),
            g.counts[t as usize],
            bytes[t as usize],
            g.chunks[t as usize]
        );
    }
    let total: usize = bytes.iter().sum();
    println!("     total: {total} bytes ({:.1} MiB)", total as f64 / 1048576.0);
    assert!(total < 48 << 20, "{total} bytes");
    assert_eq!(g.counts[Table::Orders as usize], 25_920);
    assert_eq!(g.counts[Table::Authors as usize], 250);
    // Best Sellers and searches have something to show at this scale.
    for s in 0..tpcw::SUBJECTS.len() {
        assert!(db.best_sellers(s).len() >= 10, "{}", tpcw::SUBJECTS[s]);
        assert!(db.new_products(s).len() >= 10);
    }
    assert!(db.search_title("a").len() >= 20 && db.search_author("B").len() >= 10);
    // Full listings stay within 2-20 KiB.
    let c = Ctx { db: &db, epoch: EPOCH, now: 10 };
    let s = sess("/x?C_ID=28800&SHOPPING_ID=123456");
    for name in tpcw::SUBJECTS {
        let t = format!("/x?subject={name}");
        let f = Form::new(&t, b"");
        for p in [pages::new_products(&c, &s, &f), pages::best_sellers(&c, &s, &f)] {
            let body = ok(p.expect("ok"));
            assert!((2048..=20 * 1024).contains(&body.len()), "{t}: {} bytes", body.len());
        }
    }
    let t = "/x?search_type=title&search_string=a";
    let body = ok(pages::search_results(&c, &s, &Form::new(t, b"")).expect("ok"));
    assert!(body.len() <= 20 * 1024 && body.matches("I_ID=").count() == db.search_title("a").len(), "{}", body.len());
}

#[test]
fn records_and_events_round_trip_and_garbage_is_refused() {
    let db = build(small());
    let mut address = db.address(5).expect("address").clone();
    let events = vec![
        Event::Cart(CartChange {
            cart: 0,
            time: 7,
            add: 3,
            set: vec![CartLine { item: 4, qty: 0 }, CartLine { item: 5, qty: 2 }],
            fallback: 9,
        }),
        Event::Login(Login { cart: 2, customer: 17, time: -3 }),
        Event::Register(Registration {
            cart: 1,
            time: 9,
            customer: db.customer(3).expect("customer").clone(),
            address: address.clone(),
        }),
        Event::BuyConfirm(Purchase {
            cart: 1,
            customer: 0,
            time: 11,
            cc_type: 1,
            cc_number: "4111111111111111".into(),
            cc_name: "A B".into(),
            cc_expiry: "12/30".into(),
            ship_type: 5,
            ship_addr: Some(address.clone()),
        }),
        Event::AdminConfirm(ItemUpdate { item: 3, time: 1, cost: 999, image: "i".into(), thumbnail: "t".into() }),
    ];
    for e in events {
        assert_eq!(Event::decode(&e.encode()), Ok(e.clone()));
        let mut long = e.encode();
        long.push(0);
        assert!(Event::decode(&long).is_err(), "trailing bytes are an error");
        let b = e.encode();
        for cut in 0..b.len() {
            assert!(Event::decode(&b[..cut]).is_err(), "a truncated event is an error");
        }
    }
    assert!(Event::decode(&[9]).is_err());
    assert!(Event::decode(&[]).is_err());
    // Each table's records round-trip.
    let mut w = Writer::new();
    db.items[0].encode(&mut w);
    db.orders[0].encode(&mut w);
    address.country = 3;
    address.encode(&mut w);
    let mut r = storage::Reader::new(&w.buf);
    assert_eq!(crate::model::Item::decode(&mut r).as_ref(), Ok(&db.items[0]));
    assert_eq!(crate::model::Order::decode(&mut r).as_ref(), Ok(&db.orders[0]));
    assert_eq!(crate::model::Address::decode(&mut r), Ok(address));
    // Random bytes never panic: an error or, rarely, a record.
    let mut rng = Rng::new(5);
    for n in 0..3000 {
        let len = rng.range(0, 64) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = Event::decode(&junk);
        let _ = Meta::decode(&junk);
        let mut empty = Db::new();
        let _ = empty.load_chunk(Table::ALL[n % TABLES], &junk);
    }
    let meta =
        Meta { version: FORMAT_VERSION, seed: 1, scale: 0.1, epoch: EPOCH, counts: [1; TABLES], chunks: [2; TABLES] };
    assert_eq!(Meta::decode(&meta.encode()), Ok(meta));
    // A chunk naming what does not exist is refused, not indexed.
    let mut empty = Db::new();
    let mut w = Writer::new();
    db.items[0].encode(&mut w);
    assert!(empty.load_chunk(Table::Items, &w.buf).is_err(), "an item of an author not loaded");
    let mut w = Writer::new();
    db.order_lines[0].encode(&mut w);
    assert!(empty.load_chunk(Table::OrderLines, &w.buf).is_err());
    assert!(empty.load_chunk(Table::Customers, &[1, 2, 3]).is_err());
    // Related items are checked once the table is complete.
    let mut db2 = build(small());
    db2.items[0].related[2] = 5000;
    assert!(db2.finish().is_err());
    assert_eq!(data::chunk_key(Table::OrderLines, 3), "tpcw:t:order_line:3");
}

fn purchase(cart: u32, customer: u32, time: i64) -> Event {
    Event::BuyConfirm(Purchase {
        cart,
        customer,
        time,
        cc_type: 0,
        cc_number: "4111111111111111".into(),
        cc_name: "Card Holder".into(),
        cc_expiry: "12/30".into(),
        ship_type: 0,
        ship_addr: None,
    })
}

fn cart_event(cart: u32, add: u32, set: Vec<CartLine>, fallback: u32) -> Event {
    Event::Cart(CartChange { cart, time: 100, add, set, fallback })
}

#[test]
fn carts_add_refresh_and_are_never_left_empty() {
    let mut db = build(small());
    assert_eq!(db.apply(cart_event(0, 0, vec![], 0)), Outcome::Created(1));
    assert!(db.cart(1).is_some_and(|c| c.lines.is_empty()), "no fallback: an empty cart");
    assert_eq!(db.apply(cart_event(0, 7, vec![], 9)), Outcome::Created(2));
    assert_eq!(db.cart(2).map(|c| c.lines.clone()), Some(vec![CartLine { item: 7, qty: 1 }]));
    db.apply(cart_event(2, 7, vec![], 9));
    db.apply(cart_event(2, 8, vec![], 9));
    assert_eq!(
        db.cart(2).map(|c| c.lines.clone()),
        Some(vec![CartLine { item: 7, qty: 2 }, CartLine { item: 8, qty: 1 }])
    );
    // Refresh: set quantities, 0 removes, items not in the cart are ignored.
    let set = vec![CartLine { item: 7, qty: 0 }, CartLine { item: 8, qty: 5 }, CartLine { item: 9, qty: 3 }];
    db.apply(cart_event(2, 0, set, 9));
    assert_eq!(db.cart(2).map(|c| c.lines.clone()), Some(vec![CartLine { item: 8, qty: 5 }]));
    // Emptied by a refresh: the fallback book goes in.
    db.apply(cart_event(2, 0, vec![CartLine { item: 8, qty: 0 }], 9));
    assert_eq!(db.cart(2).map(|c| c.lines.clone()), Some(vec![CartLine { item: 9, qty: 1 }]));
    // A full cart, and the pages that list it, stay within 20 KiB.
    for item in 1..=40 {
        db.apply(cart_event(2, item, vec![], 9));
    }
    let lines = db.cart(2).map_or(0, |c| c.lines.len());
    assert_eq!(lines, crate::event::MAX_CART_LINES);
    let s = sess("/x?C_ID=77&SHOPPING_ID=2");
    let body = ok(pages::cart_page(&ctx(&db), &s, 2));
    assert!(body.len() <= 20 * 1024 && body.contains("NAME=\"QTY_29\" VALUE=\"1\""), "{}", body.len());
    let body = ok(pages::buy_request_page(&ctx(&db), &s, 77));
    assert!(body.len() <= 20 * 1024, "{}", body.len());
    let Outcome::Created(order) = db.apply(purchase(2, 77, 120)) else { panic!("bought") };
    let body = ok(pages::order_confirmed(&ctx(&db), &s, order));
    assert!(body.len() <= 20 * 1024, "{}", body.len());
    assert_eq!(db.apply(cart_event(99, 0, vec![], 9)), Outcome::Refused(Refusal::NoSuchCart));
    assert_eq!(db.apply(cart_event(0, 5000, vec![], 9)), Outcome::Refused(Refusal::NoSuchItem));
    assert_eq!(db.carts.len(), 2, "a refused change creates no cart");
}

#[test]
fn buy_confirm_is_one_atomic_step() {
    let mut db = build(small());
    let item = 11u32;
    let stock = db.item(item).expect("item").stock;
    let before_orders = db.orders.len();
    let subject = db.item(item).expect("item").subject as usize;
    let best_before = db.best_sellers(subject);
    db.apply(cart_event(0, item, vec![], 0));
    db.apply(cart_event(1, 12, vec![CartLine { item, qty: 50_000 }], 0));
    let qty = db.cart(1).expect("cart").lines[0].qty;
    assert_eq!(qty, crate::event::MAX_QTY);
    // Nobody took the cart at Buy Request: refused.
    assert_eq!(db.apply(purchase(1, 0, 200)), Outcome::Refused(Refusal::Anonymous));
    assert_eq!(db.apply(purchase(1, 99_999, 200)), Outcome::Refused(Refusal::NoSuchCustomer));
    assert_eq!(db.apply(Event::Login(Login { cart: 1, customer: 33, time: 150 })), Outcome::Created(33));
    assert_eq!(db.customer(33).map(|c| (c.login, c.expiration)), Some((150, 150 + 7200)));
    let Outcome::Created(oid) = db.apply(purchase(1, 0, 200)) else { panic!("bought") };
    assert_eq!(oid as usize, before_orders + 1);
    let o = db.order(oid).expect("order").clone();
    assert_eq!((o.customer, o.status, o.date), (33, crate::model::PENDING, 200));
    assert_eq!(db.latest_order(33), Some(oid));
    let lines: Vec<(u32, u32)> = db.lines(oid).iter().map(|l| (l.item, l.qty)).collect();
    assert_eq!(lines, vec![(item, qty), (12, 1)]);
    let discount = db.customer(33).expect("customer").discount;
    let sub = gen::line_amount(db.item(item).expect("item").cost, qty, discount)
        + gen::line_amount(db.item(12).expect("item").cost, 1, discount);
    assert_eq!(o.sub_total, sub);
    assert_eq!(o.total, gen::totals(sub, i64::from(qty) + 1).1);
    assert_eq!(o.cc.amount, o.total);
    // The stock rule: stock - qty, plus 21 when that falls below 10.
    let left = i64::from(stock) - i64::from(qty);
    let want = if left < 10 { left + 21 } else { left }.max(0) as u32;
    assert_eq!(db.item(item).map(|i| i.stock), Some(want));
    // The cart is empty: a second Buy Confirm (from another instance) finds nothing.
    assert!(db.cart(1).is_some_and(|c| c.lines.is_empty()));
    assert_eq!(db.apply(purchase(1, 33, 201)), Outcome::Refused(Refusal::EmptyCart));
    // Best Sellers count the new order at once.
    let best = db.best_sellers(subject);
    assert_eq!(best.first().map(|b| b.0), Some(item), "{best_before:?} then {best:?}");
    // ...and forget the oldest orders once 3,333 newer ones exist.
    let mut g = build(small());
    let oldest = g.orders.len() as u32 + 1;
    for k in 0..BEST_SELLER_ORDERS + 1 {
        let cart = g.carts.len() as u32 + 1;
        let add = if k == 0 { item } else { 1 + k % 5 };
        g.apply(cart_event(0, add, vec![], 0));
        if k == 0 {
            g.apply(cart_event(cart, 0, vec![CartLine { item, qty: 9999 }], 0));
        }
        assert!(matches!(g.apply(purchase(cart, 1, 300)), Outcome::Created(_)));
    }
    assert!(g.order(oldest).is_some());
    assert!(!g.best_sellers(subject).iter().any(|(i, q)| *i == item && *q >= 9999));
    // A new customer's address and user name are assigned when applied.
    let n = db.customers.len() as u32;
    let reg = Registration {
        cart: 1,
        time: 300,
        customer: db.customer(2).expect("customer").clone(),
        address: db.address(2).expect("address").clone(),
    };
    assert_eq!(db.apply(Event::Register(reg.clone())), Outcome::Created(n + 1));
    let cu = db.customer(n + 1).expect("new customer");
    let mut u = String::new();
    tpcw::digsyl(u64::from(n) + 1, &mut u);
    assert_eq!(*cu.uname, *u);
    assert_eq!(db.customer_by_uname(&u), Some(n + 1));
    assert_eq!(db.cart(1).map(|c| c.customer), Some(n + 1));
    let mut bad = reg;
    bad.address.country = 93;
    assert_eq!(db.apply(Event::Register(bad)), Outcome::Refused(Refusal::NoSuchCountry));
}

#[test]
fn admin_confirm_changes_the_item_and_its_related_items() {
    let mut db = build(small());
    let item = 21u32;
    let subject = db.item(item).expect("item").subject as usize;
    let want = db.co_bought(item);
    assert!(!want.is_empty() && !want.contains(&item));
    let e = Event::AdminConfirm(ItemUpdate {
        item,
        time: 500,
        cost: 1234,
        image: "img3/image_new.gif".into(),
        thumbnail: "img3/thumb_new.gif".into(),
    });
    assert_eq!(db.apply(e), Outcome::Created(item));
    let it = db.item(item).expect("item");
    assert_eq!((it.cost, it.pub_date, &*it.image), (1234, 500, "img3/image_new.gif"));
    assert_eq!(&it.related[..want.len().min(5)], &want[..want.len().min(5)]);
    assert!(it.related.iter().all(|r| *r != item && db.item(*r).is_some()));
    assert_eq!(db.new_products(subject).first(), Some(&item), "the newest book of its subject");
    let bad = Event::AdminConfirm(ItemUpdate { item: 0, time: 1, cost: 1, image: "".into(), thumbnail: "".into() });
    assert_eq!(db.apply(bad), Outcome::Refused(Refusal::NoSuchItem));
}

fn ctx(db: &Db) -> Ctx<'_> {
    Ctx { db, epoch: EPOCH, now: 1000 }
}

fn sess(target: &str) -> Session {
    pages::session(target, &Form::new(target, b"")).expect("session")
}

/// Every interaction at the targets the load generator sends, for a known
/// customer and an anonymous session.
#[test]
fn every_interaction_answers_what_clients_look_for() {
    let mut db = build(small());
    let mut sizes = Vec::new();
    for customer in [Some(5u64), None] {
        let mut p = Params { customer, item: 3, subject: 4, search_type: 1, search: "A".into(), ..Params::default() };
        let mut target = String::new();
        for ix in [6u8, 7, 2, 10, 13, 11, 12, 5, 4, 3, 9, 8, 1, 0] {
            p.add_item = ix == 13;
            tpcw::target(ix, &p, &mut target);
            let f = Form::new(&target, b"");
            let s = sess(&target);
            let c = ctx(&db);
            let write = match ix {
                0 => pages::admin_confirm(&c, &s, &f).expect("ok"),
                3 => pages::buy_confirm(&c, &s, &f).expect("ok"),
                4 => pages::buy_request(&c, &s, &f).expect("ok"),
                13 => pages::shopping_cart(&c, &s, &f).expect("ok"),
                _ => Err(match ix {
                    1 => pages::admin_request(&c, &s, &f).expect("ok"),
                    2 => pages::best_sellers(&c, &s, &f).expect("ok"),
                    5 => pages::customer_registration(&c, &s),
                    6 => pages::home(&c, &s),
                    7 => pages::new_products(&c, &s, &f).expect("ok"),
                    8 => pages::order_display(&c, &s, &f).expect("ok"),
                    9 => pages::order_inquiry(&s),
                    10 => pages::product_detail(&c, &s, &f).expect("ok"),
                    11 => pages::search_request(&c, &s),
                    _ => pages::search_results(&c, &s, &f).expect("ok"),
                }),
            };
            let page = match write {
                Err(page) => page,
                Ok(e) => {
                    let outcome = db.apply(e.clone());
                    assert!(matches!(outcome, Outcome::Created(_)), "{target}: {outcome:?}");
                    pages::after(&ctx(&db), &s, &e, outcome)
                }
            };
            let name = tpcw::NAMES[ix as usize];
            let body = ok(page);
            assert!(!body.contains("Error") && !body.contains("Sorry"), "{name}: {body}");
            sizes.push((name, body.len()));
            if let Some(c) = customer {
                assert!(body.contains(&format!("C_ID={c}")), "{name} carries C_ID");
            }
            match ix {
                6 => {
                    let at = body.find(";jsessionid=").expect("a session id");
                    assert!(body[at..].split('"').next().is_some_and(|u| u.contains('?')), "{body}");
                    assert!(body.contains("I_ID="));
                }
                2 | 7 | 12 => assert!(body.contains("I_ID="), "{name}"),
                10 => assert_eq!(number_after(&body, "I_ID="), Some(3), "the first I_ID= is the item"),
                13 => {
                    let cart = number_after(&body, "SHOPPING_ID=").expect("SHOPPING_ID");
                    assert!(db.cart(cart as u32).is_some());
                    p.shopping_id = Some(cart);
                    assert!(body.contains(";jsessionid=") && body.contains("NAME=\"QTY_0\" VALUE=\""), "{body}");
                }
                4 => assert!(body.contains("Firstname:</TD><TD>") && body.contains("Lastname: </TD><TD>")),
                3 => assert!(body.contains("Thank you"), "{body}"),
                8 => assert!(body.contains("Order number:"), "{body}"),
                1 => assert!(body.contains("I_ID\" TYPE=\"hidden\" VALUE=\"3\""), "{body}"),
                0 => assert!(body.contains("has been updated")),
                _ => {}
            }
        }
    }
    println!("page sizes: {sizes:?}");
    for (name, len) in &sizes {
        assert!((2048..=20 * 1024).contains(len), "{name}: {len} bytes (pages are 2-20 KiB)");
    }
    // The largest listings stay within 20 KiB.
    let c = ctx(&db);
    let t = "/x?search_type=title&search_string=a";
    let full = ok(pages::search_results(&c, &sess(t), &Form::new(t, b"")).expect("ok"));
    assert!(full.len() <= 20 * 1024);
}

/// A redis-server of the test's own on a free port (make deps installs
/// it), as the app's store; stopped when dropped or by [`TestRedis::stop`].
struct TestRedis {
    child: std::process::Child,
    conn: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestRedis {
    fn start() -> TestRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("these tests need redis-server (make deps installs it: apt-get install redis-server): {e}")
            });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let conn = loop {
            if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                break c;
            }
            assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {port} within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        TestRedis { child, conn, buf: Vec::new() }
    }

    /// Stops the server: the app's next round trip fails.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Store for TestRedis {
    fn exec(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Reply>, StoreError> {
        use std::io::{Read, Write};
        let gone = |e: std::io::Error| StoreError::Unavailable(e.to_string());
        let mut out = Vec::new();
        for c in cmds {
            resp::command(&mut out, c);
        }
        self.conn.write_all(&out).map_err(gone)?;
        let mut replies = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while replies.len() < cmds.len() {
            match resp::parse(&self.buf) {
                Ok(Some((r, used))) => {
                    self.buf.drain(..used);
                    replies.push(r);
                }
                Ok(None) => match self.conn.read(&mut chunk).map_err(gone)? {
                    0 => return Err(StoreError::Unavailable("redis-server closed the connection".into())),
                    n => self.buf.extend_from_slice(&chunk[..n]),
                },
                Err(e) => return Err(StoreError::Protocol(format!("{e:?}"))),
            }
        }
        Ok(replies)
    }
}

fn loaded(scale: Scale) -> TestRedis {
    let mut r = TestRedis::start();
    let mut g = Generator::new(scale, SEED);
    let chunks: Vec<(Vec<u8>, Vec<u8>)> =
        g.by_ref().map(|c| (data::chunk_key(c.table, c.index).into_bytes(), c.bytes)).collect();
    let meta =
        Meta { version: FORMAT_VERSION, seed: SEED, scale: 0.01, epoch: EPOCH, counts: g.counts, chunks: g.chunks };
    let meta = meta.encode();
    let mut cmds: Vec<[&[u8]; 3]> = chunks.iter().map(|(k, v)| [&b"SET"[..], &k[..], &v[..]]).collect();
    cmds.push([b"SET", META_KEY.as_bytes(), &meta]);
    let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| &c[..]).collect();
    let replies = r.exec(&refs).expect("the data set is stored");
    assert!(replies.iter().all(|x| *x == Reply::Simple("OK".into())));
    r
}

/// Sessions walked as the load generator walks them (its navigation
/// tables, parameters, anonymous sessions, `SHOPPING_ID` read back from
/// every page), against two instances sharing one real Redis: every answer is a
/// 200 of 2-20 KiB, and both instances end with the same data.
#[test]
fn load_generator_sessions_get_only_200s() {
    let sc = small();
    let mut store = loaded(sc);
    let mut a = App::load(&mut store, &mut |_| {}).expect("loads");
    let mut b = App::load(&mut store, &mut |_| {}).expect("loads");
    let mut rng = Rng::new(3);
    let mut target = String::new();
    let mut counts = [0u32; 14];
    let mut now = EPOCH + 100;
    let mut bought = 0;
    for (t, table) in [&tpcw::BROWSING, &tpcw::SHOPPING, &tpcw::ORDERING].into_iter().enumerate() {
        for session in 0..40 {
            let customer = (rng.range(0, 9) < 8).then(|| {
                let a = tpcw::nurand_a_customers(sc.customers);
                tpcw::nurand(rng.range(0, a), rng.range(1, sc.customers), 1, sc.customers)
            });
            // Some sessions bring a cart id this data set never had.
            let shopping_id = (session % 7 == 3).then_some(900_000 + session);
            let mut p = Params { customer, shopping_id, ..Params::default() };
            let mut current = tpcw::HOME;
            for step in 0..60 {
                let ix = if step == 0 { tpcw::HOME } else { tpcw::next(table, current, rng.range(1, 9999) as u16) };
                p.add_item = ix == 13 && current == 10;
                match ix {
                    10 | 1 => p.item = rng.range(1, sc.items),
                    2 | 7 => p.subject = rng.range(0, 23) as usize,
                    12 => {
                        p.search_type = rng.range(0, 2) as u8;
                        p.search.clear();
                        if p.search_type == 2 {
                            p.search.push_str(tpcw::SUBJECTS[rng.range(0, 23) as usize]);
                        } else {
                            for _ in 0..rng.range(1, 3) {
                                p.search.push((b'A' + rng.range(0, 25) as u8) as char);
                            }
                        }
                    }
                    _ => {}
                }
                current = ix;
                tpcw::target(ix, &p, &mut target);
                now += 1;
                let app = if (session + step + t as u64).is_multiple_of(2) { &mut a } else { &mut b };
                app.new_requests();
                let page = app.handle(&mut store, now, "GET", &target, b"");
                assert_eq!(page.status, 200, "{target}: {}", page.body);
                assert!((2048..=20 * 1024).contains(&page.body.len()), "{target}: {} bytes", page.body.len());
                if let Some(id) = number_after(&page.body, "SHOPPING_ID=") {
                    p.shopping_id = Some(id);
                }
                assert!(!page.body.contains("Error:"), "{target}: {}", page.body);
                if ix == 3 && page.body.contains("Thank you") {
                    bought += 1;
                }
                counts[ix as usize] += 1;
            }
        }
    }
    assert!(counts.iter().all(|n| *n > 0), "every interaction ran: {counts:?}");
    println!("interactions {counts:?}; {bought} of {} Buy Confirms placed an order", counts[3]);
    assert!(bought * 10 >= counts[3] * 9, "{bought} of {} Buy Confirms placed an order", counts[3]);
    a.catch_up(&mut store).expect("catch up");
    b.catch_up(&mut store).expect("catch up");
    assert_eq!(a.db.counts(), b.db.counts());
    assert_eq!((a.bad_events(), b.bad_events()), (0, 0));
    assert!(a.db.orders.len() > 2592, "Buy Confirms placed orders");
    let stocks = |app: &App| app.db.items.iter().map(|i| i.stock).collect::<Vec<_>>();
    assert_eq!(stocks(&a), stocks(&b));
    // A fresh instance replays the log and agrees.
    let c = App::load(&mut store, &mut |_| {}).expect("loads");
    assert_eq!(c.db.counts(), a.db.counts());
    assert_eq!(c.log_position(), a.log_position());
}

#[test]
fn odd_requests_get_not_found_or_400_never_a_panic() {
    let mut store = loaded(small());
    let mut app = App::load(&mut store, &mut |_| {}).expect("loads");
    let mut get = |t: &str| {
        app.new_requests();
        app.handle(&mut store, EPOCH + 50, "GET", t, b"")
    };
    let h = get("/health");
    assert_eq!(h.body, "ok tpcw items=100 customers=2880 orders=2592 log=0 bad_events=0\n");
    assert!(!h.html);
    let p = get("/tpcw/TPCW_product_detail_servlet?I_ID=abc");
    assert_eq!(p.status, 400);
    assert!(p.body.contains("I_ID must be a number"), "{}", p.body);
    assert_eq!(get("/tpcw/TPCW_product_detail_servlet").status, 400);
    for t in [
        "/tpcw/TPCW_product_detail_servlet?I_ID=0",
        "/tpcw/TPCW_product_detail_servlet?I_ID=99999999999",
        "/tpcw/TPCW_admin_request_servlet?I_ID=101",
        "/tpcw/TPCW_admin_response_servlet?I_ID=5000&I_NEW_IMAGE=a&I_NEW_THUMBNAIL=b&I_NEW_COST=1.5",
        "/tpcw/TPCW_shopping_cart_interaction?ADD_FLAG=Y&I_ID=0",
    ] {
        let p = get(t);
        assert_eq!(p.status, 200, "{t}");
        assert!(p.body.contains("no book with this id"), "{t}: {}", p.body);
    }
    // Unknown customers and carts: pages that say so, never an error.
    let unknown = [
        "/tpcw/TPCW_home_interaction?C_ID=999999999",
        "/tpcw/TPCW_buy_confirm_servlet?CC_TYPE=VISA&CC_NUMBER=4111111111111111&CC_NAME=X&CC_EXPIRY=1&SHIPPING=AIR",
        "/tpcw/TPCW_buy_confirm_servlet?CC_TYPE=VISA&CC_NUMBER=4111111111111111&CC_NAME=X&CC_EXPIRY=1&SHIPPING=AIR&C_ID=3&SHOPPING_ID=77",
        "/tpcw/TPCW_buy_request_servlet?RETURNING_FLAG=Y&UNAME=NOBODY&PASSWD=x&C_ID=7",
        "/tpcw/TPCW_buy_request_servlet?RETURNING_FLAG=Y&UNAME=OG&PASSWD=wrong",
        "/tpcw/TPCW_order_display_servlet?UNAME=OG&PASSWD=wrong",
        "/tpcw/TPCW_customer_registration_servlet?C_ID=4000000000",
    ];
    for t in unknown {
        assert_eq!(get(t).status, 200, "{t}");
    }
    assert!(get(unknown[1]).body.contains("cart is empty"));
    assert!(get("/tpcw/TPCW_order_display_servlet?UNAME=OG&PASSWD=wrong").body.contains("do not match"));
    // Malformed values are 400s naming the parameter.
    for (t, name) in [
        ("/tpcw/TPCW_new_products_servlet?subject=POETRY", "subject"),
        ("/tpcw/TPCW_execute_search?search_type=isbn&search_string=x", "search_type"),
        ("/tpcw/TPCW_execute_search?search_type=title", "search_string"),
        ("/tpcw/TPCW_admin_response_servlet?I_ID=1&I_NEW_IMAGE=a&I_NEW_THUMBNAIL=b&I_NEW_COST=ten", "I_NEW_COST"),
        ("/tpcw/TPCW_buy_confirm_servlet?CC_TYPE=VISA&CC_NUMBER=12&CC_NAME=X&CC_EXPIRY=1&SHIPPING=AIR", "CC_NUMBER"),
        ("/tpcw/TPCW_buy_confirm_servlet?CC_TYPE=CASH&CC_NUMBER=4111111111111111", "CC_TYPE"),
        ("/tpcw/TPCW_shopping_cart_interaction?I_ID_0=3&QTY_0=-1", "QTY_0"),
        ("/tpcw/TPCW_home_interaction?C_ID=x", "C_ID"),
    ] {
        let p = get(t);
        assert_eq!(p.status, 400, "{t}: {}", p.body);
        assert!(p.body.contains(name), "{t}: {}", p.body);
    }
    // What TPC-W's browsers send that we do not know is made up, not a 400
    // they would retry forever: a country, a day/weekday/year birth date.
    for t in [
        "/tpcw/TPCW_buy_request_servlet?RETURNING_FLAG=N&COUNTRY=Atlantis",
        "/tpcw/TPCW_buy_request_servlet?RETURNING_FLAG=N&BIRTHDATE=17%2f3%2f1952&COUNTRY=Gabon",
    ] {
        assert_eq!(get(t).status, 200, "{t}");
    }
    // Markup in input is escaped.
    let p = get("/tpcw/TPCW_execute_search?search_type=title&search_string=%3Cscript%3E");
    assert!(p.body.contains("&lt;script&gt;") && !p.body.contains("<script>"));
    let p = get("/tpcw/TPCW_buy_request_servlet?RETURNING_FLAG=N&FNAME=%3Cb%3EBold&LNAME=O%27Hara&COUNTRY=japan");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Firstname:</TD><TD>&lt;b&gt;Bold") && p.body.contains("O&#39;Hara"), "{}", p.body);
    assert!(p.body.contains("Japan"));
    let p = get("/tpcw/TPCW_home_interaction;jsessionid=%22%3E%3Cx?C_ID=1");
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("<x"));
    // Paths, methods, health, and a store that is down.
    assert_eq!(get("/tpcw/TPCW_home_interaction;jsessionid=ABC123?C_ID=3").status, 200);
    assert!(get("/tpcw/TPCW_home_interaction;jsessionid=ABC123?C_ID=3").body.contains(";jsessionid=ABC123?"));
    assert_eq!(get("/").status, 200);
    assert_eq!(get("/nope").status, 404);
    assert_eq!(app.handle(&mut store, EPOCH, "DELETE", "/", b"").status, 405);
    let mut posted = app.handle(&mut store, EPOCH, "POST", "/tpcw/TPCW_product_detail_servlet", b"I_ID=4");
    assert_eq!(posted.status, 200);
    posted.body.clear();
    store.stop();
    app.new_requests();
    assert_eq!(app.handle(&mut store, EPOCH, "GET", "/tpcw/TPCW_home_interaction", b"").status, 503);
    assert_eq!(app.handle(&mut store, EPOCH, "GET", "/tpcw/TPCW_order_inquiry_servlet?C_ID=5", b"").status, 200);
    // No data set: the error says how to load one.
    match App::load(&mut TestRedis::start(), &mut |_| {}) {
        Err(StoreError::NotLoaded(m)) => assert!(m.contains("twinkle data load --app tpcw"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    // A bad event in the log is skipped and counted.
    let mut store = loaded(small());
    store.exec(&[&[b"RPUSH", b"tpcw:log", b"junk"]]).expect("RPUSH");
    let app = App::load(&mut store, &mut |_| {}).expect("loads");
    assert_eq!((app.bad_events(), app.log_position()), (1, 1));
}

#[test]
fn a_browser_refresh_with_one_qty_per_line_sets_the_cart() {
    let mut store = loaded(small());
    let mut app = App::load(&mut store, &mut |_| {}).expect("loads");
    let mut get = |t: &str| {
        app.new_requests();
        let p = app.handle(&mut store, EPOCH + 50, "GET", t, b"");
        assert_eq!(p.status, 200, "{t}: {}", p.body);
        p.body
    };
    let body = get("/tpcw/TPCW_shopping_cart_interaction?ADD_FLAG=Y&I_ID=3&C_ID=5");
    let cart = number_after(&body, "SHOPPING_ID=").expect("a cart");
    get(&format!("/tpcw/TPCW_shopping_cart_interaction?ADD_FLAG=Y&I_ID=4&SHOPPING_ID={cart}"));
    get(&format!("/tpcw/TPCW_shopping_cart_interaction?ADD_FLAG=N&qty=3&qty=0&SHOPPING_ID={cart}"));
    let lines = app.db.cart(cart as u32).map(|c| c.lines.clone()).expect("the cart");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0].item, lines[0].qty), (3, 3));
}
