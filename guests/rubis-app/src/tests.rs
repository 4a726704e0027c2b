//! Host tests of the pure parts: records and events round-trip, the
//! generator is deterministic and keeps RUBiS's proportions, the database
//! applies the auction rules, and every interaction's page says what RUBiS
//! clients look for. (The whole app against a real Redis: loadgen/tests/apps.rs;
//! in a VM: tests/apps.rs.)

extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use std::format;

use appspec::rubis::{self, Params, Scale};
use webpage::Form;

use crate::db::Db;
use crate::event::{Event, Outcome, Refusal};
use crate::gen::{self, Generator};
use crate::model::{Bid, BuyNow, Table};
use crate::pages::{self, Ctx};

const SEED: u64 = 42;

fn small() -> Scale {
    Scale::of(0.001)
}

fn build(scale: Scale) -> Db {
    let mut db = Db::new();
    for c in Generator::new(scale, SEED) {
        db.load_chunk(c.table, &c.bytes).expect("generated chunks load");
    }
    db
}

fn page_of(p: crate::Page) -> String {
    assert_eq!(p.status, 200, "{}", p.body);
    p.body
}

#[test]
fn the_generator_is_deterministic_and_sized() {
    let sc = small();
    let a: Vec<Vec<u8>> = Generator::new(sc, SEED).map(|c| c.bytes).collect();
    let b: Vec<Vec<u8>> = Generator::new(sc, SEED).map(|c| c.bytes).collect();
    assert_eq!(a, b, "the same seed gives the same bytes");
    let c: Vec<Vec<u8>> = Generator::new(sc, SEED + 1).map(|c| c.bytes).collect();
    assert_ne!(a, c);
    let mut g = Generator::new(sc, SEED);
    for _ in g.by_ref() {}
    assert_eq!(g.counts[Table::Users as usize], sc.users);
    assert_eq!(g.counts[Table::Items as usize], sc.active_items + sc.old_items);
    let items = (sc.active_items + sc.old_items) as f64;
    let bids_per_item = g.counts[Table::Bids as usize] as f64 / items;
    assert!((8.5..=10.5).contains(&bids_per_item), "{bids_per_item} bids per item (RUBiS: about 10)");
    assert_eq!(g.counts[Table::Comments as usize], sc.active_items + sc.old_items);
    let buy_now = g.counts[Table::BuyNows as usize] as f64 / items;
    assert!(buy_now < 0.1, "buy-now share {buy_now}");
    assert_eq!(g.done(), g.work());
}

#[test]
fn active_items_keep_rubis_category_proportions() {
    let active = 32_667;
    let mut counts = [0u64; 20];
    for id in 1..=active {
        counts[gen::active_category(id, active) as usize - 1] += 1;
    }
    assert_eq!(counts, gen::CATEGORY_ITEMS);
    // Every category gets items at the default scale.
    let sc = Scale::of(rubis::DEFAULT_SCALE);
    assert!((1..=20).all(|c| (1..=sc.active_items).any(|id| gen::active_category(id, sc.active_items) == c)));
}

#[test]
fn events_round_trip_and_garbage_is_refused() {
    let db = build(small());
    let user = db.user(3).expect("user 3").clone();
    // Derived fields (bid count, best bid) are not part of the record.
    let item = crate::model::Item { nb_of_bids: 0, max_bid: 0, ..db.item(2).expect("item 2").clone() };
    for e in [
        Event::RegisterUser(user),
        Event::RegisterItem(item),
        Event::Bid(Bid { user: 1, item: 2, qty: 1, bid: 10, max_bid: 12, date: 5 }),
        Event::BuyNow(BuyNow { buyer: 1, item: 2, qty: 1, date: 5 }),
    ] {
        assert_eq!(Event::decode(&e.encode()), Ok(e));
    }
    assert!(Event::decode(&[9]).is_err());
    assert!(Event::decode(&[2, 1]).is_err());
    let mut long = Event::BuyNow(BuyNow { buyer: 1, item: 2, qty: 1, date: 5 }).encode();
    long.push(0);
    assert!(Event::decode(&long).is_err(), "trailing bytes are an error");
    // A chunk naming a user that does not exist is refused, not indexed.
    let mut empty = Db::new();
    let mut w = storage::Writer::new();
    crate::model::Record::encode(&Bid { user: 7, item: 1, qty: 1, bid: 1, max_bid: 1, date: 0 }, &mut w);
    assert!(empty.load_chunk(Table::Bids, &w.buf).is_err());
    assert!(empty.load_chunk(Table::Users, &[1, 2, 3]).is_err());
}

#[test]
fn the_auction_rules_apply_in_log_order() {
    let mut db = build(small());
    let id = 1u32;
    let it = db.item(id).expect("item").clone();
    assert!(it.end > 0, "item 1 is active");
    let min = Db::minimum_bid(&it);
    let bid = |user, amount| Event::Bid(Bid { user, item: id, qty: 1, bid: amount, max_bid: amount, date: 10 });
    assert!(matches!(db.apply(bid(1, min)), Outcome::Created(_)));
    assert_eq!(db.apply(bid(2, min)), Outcome::Refused(Refusal::BidTooLow { minimum: min + 1 }));
    assert!(matches!(db.apply(bid(2, min + 1)), Outcome::Created(_)));
    assert_eq!(db.item(id).map(|i| (i.nb_of_bids, i.max_bid)), Some((it.nb_of_bids + 2, min + 1)));
    let late = Event::Bid(Bid { user: 1, item: id, qty: 1, bid: min + 9, max_bid: min + 9, date: it.end + 1 });
    assert_eq!(db.apply(late), Outcome::Refused(Refusal::AuctionEnded));
    assert_eq!(db.apply(bid(1, 0).clone_with_item(999_999)), Outcome::Refused(Refusal::NoSuchItem));
    // Buying every unit ends the auction.
    let q = it.quantity;
    assert_eq!(
        db.apply(Event::BuyNow(BuyNow { buyer: 1, item: id, qty: q + 1, date: 20 })),
        Outcome::Refused(Refusal::NotEnoughUnits { left: q })
    );
    assert!(matches!(db.apply(Event::BuyNow(BuyNow { buyer: 1, item: id, qty: q, date: 20 })), Outcome::Created(_)));
    assert_eq!(db.item(id).map(|i| i.end), Some(20));
    assert!(!db.active_items(it.category, None, 21, 0, 1000).contains(&id), "a sold-out item leaves the listings");
    // Nicknames are unique: the first registration wins.
    let mut u = db.user(1).expect("user").clone();
    assert_eq!(db.apply(Event::RegisterUser(u.clone())), Outcome::Refused(Refusal::NicknameTaken));
    u.nickname = "newcomer".into();
    let n = db.users.len() as u32;
    assert_eq!(db.apply(Event::RegisterUser(u.clone())), Outcome::Created(n + 1));
    assert_eq!(db.user_by_nickname("newcomer"), Some(n + 1));
    assert_eq!(db.apply(Event::RegisterUser(u)), Outcome::Refused(Refusal::NicknameTaken));
}

impl Event {
    fn clone_with_item(&self, item: u32) -> Event {
        match self {
            Event::Bid(b) => Event::Bid(Bid { item, ..*b }),
            e => e.clone(),
        }
    }
}

/// Every interaction at the targets the load generator sends.
#[test]
fn every_interaction_answers_what_clients_look_for() {
    let sc = small();
    let db = build(sc);
    let c = Ctx { db: &db, epoch: 1_800_000_000, now: 0 };
    let p = Params {
        user: 5,
        item: 3,
        seller: db.item(3).expect("item").seller.into(),
        category: db.item(3).expect("item").category.into(),
        region: 1,
        page: 0,
        new_user: sc.users + 77,
        min_bid: 1,
        add_bid: 2,
        rating: 3,
        text_len: 30,
        price: 10,
    };
    let mut target = String::new();
    let mut sizes = Vec::new();
    for state in 0..27u8 {
        rubis::target(state, &p, &mut target);
        let f = Form::new(&target, b"");
        let body = match state {
            0 => page_of(pages::home()),
            1 => page_of(pages::register_form()),
            3 => page_of(pages::browse()),
            4 | 22 => page_of(pages::browse_categories(&c, &f).expect("ok")),
            7 => {
                // A region with items on sale (only their categories are listed).
                let region = db.user(db.item(1).expect("item").seller).expect("seller").region;
                let mut t = String::from("/PHP/BrowseCategories.php?region=");
                rubis::push_escaped(&mut t, rubis::REGION_NAMES[region as usize - 1]);
                let body = page_of(pages::browse_categories(&c, &Form::new(&t, b"")).expect("ok"));
                assert!(body.contains("SearchItemsByRegion.php?category="), "{body}");
                body
            }
            5 => page_of(pages::search_items(&c, &f, false).expect("ok")),
            6 => page_of(pages::browse_regions()),
            8 => {
                // The seller's region of an active item, so the list is not empty.
                let it = db.item(1).expect("item");
                let region = db.user(it.seller).expect("seller").region;
                let t = format!(
                    "/PHP/SearchItemsByRegion.php?region={region}&category={}&page=0&nbOfItems=25",
                    it.category
                );
                page_of(pages::search_items(&c, &Form::new(&t, b""), true).expect("ok"))
            }
            9 => page_of(pages::view_item(&c, &f).expect("ok")),
            10 => page_of(pages::view_user_info(&c, &f).expect("ok")),
            11 => page_of(pages::view_bid_history(&c, &f).expect("ok")),
            12 | 15 | 18 => page_of(pages::auth_form(&f, state).expect("ok")),
            13 => page_of(pages::buy_now_form(&c, &f).expect("ok")),
            16 => page_of(pages::put_bid_form(&c, &f).expect("ok")),
            19 => page_of(pages::put_comment_form(&c, &f).expect("ok")),
            21 => page_of(pages::sell()),
            23 => page_of(pages::sell_item_form(&f).expect("ok")),
            25 => page_of(pages::about_me_form()),
            26 => page_of(pages::about_me(&c, &f).expect("ok")),
            2 => {
                assert!(matches!(pages::register_user(&c, &f), Ok(Ok(Event::RegisterUser(_)))), "{target}");
                continue;
            }
            14 => {
                assert!(matches!(pages::store_buy_now(&c, &f), Ok(Ok(Event::BuyNow(_)))), "{target}");
                continue;
            }
            17 => {
                assert!(matches!(pages::store_bid(&c, &f), Ok(Ok(Event::Bid(_)))), "{target}");
                continue;
            }
            20 => {
                assert!(matches!(pages::store_comment(&c, &f), Ok(Ok(Event::Comment(_)))), "{target}");
                continue;
            }
            24 => {
                assert!(matches!(pages::register_item(&c, &f), Ok(Ok(Event::RegisterItem(_)))), "{target}");
                continue;
            }
            _ => unreachable!(),
        };
        assert!(!body.contains("Sorry") && !body.contains("ERROR"), "{}: {body}", rubis::NAMES[state as usize]);
        assert!(body.starts_with("<html>") && body.ends_with("</html>\n"));
        sizes.push((rubis::NAMES[state as usize], body.len()));
        match state {
            5 | 8 => assert!(body.contains("ViewItem.php?itemId=") && body.contains("PutBidAuth.php?itemId=")),
            9 => {
                assert!(body.contains("ViewUserInfo.php?userId=") && body.contains("PutBidAuth.php?itemId=3"));
                assert!(body.contains(&format!("PutCommentAuth.php?to={}&itemId=3", p.seller)), "{body}");
            }
            13 => assert!(body.contains("name=maxQty value=")),
            16 => {
                let want = format!("name=minBid value={}>", Db::minimum_bid(db.item(3).expect("item")));
                assert!(body.contains(&want), "{want} in {body}");
            }
            19 => assert!(body.contains(&format!("name=to value={}>", p.seller))),
            22 => assert!(body.contains("SellItemForm.php?category=1&user=5")),
            _ => {}
        }
    }
    for (name, len) in &sizes {
        assert!((2048..=20 * 1024).contains(len), "{name}: {len} bytes (RUBiS pages are 2-20 KiB)");
    }
}

#[test]
fn odd_requests_get_sorry_or_400_never_a_panic() {
    let db = build(small());
    let c = Ctx { db: &db, epoch: 0, now: 0 };
    let f = |t: &'static str| Form::new(t, b"");
    // 0-based ids of RUBiS clients: Sorry.
    let p = pages::search_items(&c, &f("/x?category=0&page=0"), false).expect("ok");
    assert!(p.body.contains("Sorry"));
    assert!(pages::view_item(&c, &f("/x?itemId=0")).expect("ok").body.contains("Sorry"));
    assert!(pages::view_item(&c, &f("/x?itemId=99999999999")).expect("ok").body.contains("Sorry"));
    assert!(pages::view_user_info(&c, &f("/x?userId=0")).expect("ok").body.contains("Sorry"));
    assert!(pages::search_items(&c, &f("/x?category=1&region=63"), true).expect("ok").body.contains("Sorry"));
    assert!(pages::search_items(&c, &f("/x?category=1&page=9999"), false).expect("ok").body.contains("Sorry"));
    // Malformed: an error naming the parameter.
    assert_eq!(
        pages::view_item(&c, &f("/x?itemId=abc")).err().map(|e| e.0),
        Some("itemId must be a number, not \"abc\"".into())
    );
    assert!(pages::view_item(&c, &f("/x")).is_err());
    assert!(pages::store_comment(&c, &f("/x?itemId=1&to=1&from=2&rating=9&comment=x")).is_err());
    // Wrong password: not a page of someone else's account.
    let p = pages::about_me(&c, &f("/x?nickname=user1&password=nope")).expect("ok");
    assert!(p.body.contains("have an account on RUBiS") && !p.body.contains("Balance"));
    // Fields every instance keeps in memory are bounded.
    let long = format!("/x?firstname={}&lastname=x&nickname=n&email=e&password=p&region=AZ--Phoenix", "a".repeat(101));
    assert_eq!(
        pages::register_user(&c, &Form::new(&long, b"")).err().map(|e| e.0),
        Some("firstname is longer than 100 bytes".into())
    );
    // A crafted comment event with an absurd rating is refused, not added.
    let mut db3 = build(small());
    let bad =
        Event::Comment(crate::model::Comment { from: 1, to: 2, item: 1, rating: i64::MAX, date: 0, text: "x".into() });
    assert_eq!(db3.apply(bad.clone()), Outcome::Refused(Refusal::BadRating));
    assert_eq!(db3.apply(bad), Outcome::Refused(Refusal::BadRating));
    // Markup in user input is escaped.
    let t = "/x?firstname=<b>&lastname=x&nickname=%3Cscript%3E&email=e&password=p&region=AZ--Phoenix";
    let Ok(Ok(Event::RegisterUser(u))) = pages::register_user(&c, &f(t)) else { panic!("registration") };
    let mut db2 = build(small());
    let Outcome::Created(id) = db2.apply(Event::RegisterUser(u)) else { panic!("created") };
    let c2 = Ctx { db: &db2, epoch: 0, now: 0 };
    let body = pages::registered(&c2, id).body;
    assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
}
