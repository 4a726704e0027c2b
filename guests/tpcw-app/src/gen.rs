//! The deterministic data generator (tpcw.md "Scale"): countries, authors,
//! items, addresses, customers, orders and their lines at a [`Scale`], as
//! chunks ready to store. Every record comes from a random stream derived
//! from (seed, table, id), so a table can be produced without the others and
//! the same seed always gives the same bytes.
//!
//! Titles and authors' last names start with a letter drawn uniformly, so
//! the load generator's one- to three-letter search strings find books.
//! Orders are spread over the 60 days before the load, in id order, so the
//! most recent orders (Best Sellers) are the ones with the highest ids.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use appspec::tpcw::{digsyl, Scale, SUBJECTS};
use storage::dataset::Chunker;
use storage::Rng;

use crate::model::{
    Address, Author, CcXact, Country, Customer, Item, Order, OrderLine, Record, Table, BACKINGS, CC_TYPES, SHIP_TYPES,
    STATUSES, TABLES,
};

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a year (365 days).
pub const YEAR: i64 = 365 * DAY;

/// Tax on every order, in hundredths of a percent (8.25%).
pub const TAX_BP: i64 = 825;
/// Shipping: a fixed part plus a part per unit, in cents.
pub const SHIPPING_BASE: i64 = 300;
/// Shipping per unit, in cents.
pub const SHIPPING_PER_UNIT: i64 = 100;

/// The 92 countries of TPC-W (the names its emulated browsers send): name,
/// currency, units per US dollar in thousandths.
pub const COUNTRIES: [(&str, &str, u64); 92] = [
    ("United States", "Dollars", 1_000),
    ("United Kingdom", "Pounds", 790),
    ("Canada", "Dollars", 1_360),
    ("Germany", "Euros", 920),
    ("France", "Euros", 920),
    ("Japan", "Yen", 150_000),
    ("Netherlands", "Euros", 920),
    ("Italy", "Euros", 920),
    ("Switzerland", "Francs", 880),
    ("Australia", "Dollars", 1_520),
    ("Algeria", "Dinars", 134_000),
    ("Argentina", "Pesos", 850_000),
    ("Armenia", "Drams", 400_000),
    ("Austria", "Euros", 920),
    ("Azerbaijan", "Manat", 1_700),
    ("Bahamas", "Dollars", 1_000),
    ("Bahrain", "Dinars", 376),
    ("Bangla Desh", "Taka", 110_000),
    ("Barbados", "Dollars", 2_000),
    ("Belarus", "Rubles", 3_270),
    ("Belgium", "Euros", 920),
    ("Bermuda", "Dollars", 1_000),
    ("Bolivia", "Bolivianos", 6_910),
    ("Botswana", "Pula", 13_600),
    ("Brazil", "Reais", 4_970),
    ("Bulgaria", "Leva", 1_800),
    ("Cayman Islands", "Dollars", 830),
    ("Chad", "Francs", 604_000),
    ("Chile", "Pesos", 950_000),
    ("China", "Yuan Renminbi", 7_200),
    ("Christmas Island", "Dollars", 1_520),
    ("Colombia", "Pesos", 3_900_000),
    ("Croatia", "Euros", 920),
    ("Cuba", "Pesos", 24_000),
    ("Cyprus", "Euros", 920),
    ("Czech Republic", "Koruny", 23_000),
    ("Denmark", "Kroner", 6_900),
    ("Dominican Republic", "Pesos", 58_500),
    ("Eastern Caribbean", "Dollars", 2_700),
    ("Ecuador", "Dollars", 1_000),
    ("Egypt", "Pounds", 30_900),
    ("El Salvador", "Dollars", 1_000),
    ("Estonia", "Euros", 920),
    ("Ethiopia", "Birr", 56_000),
    ("Falkland Island", "Pounds", 790),
    ("Faroe Island", "Kroner", 6_900),
    ("Fiji", "Dollars", 2_250),
    ("Finland", "Euros", 920),
    ("Gabon", "Francs", 604_000),
    ("Gibraltar", "Pounds", 790),
    ("Greece", "Euros", 920),
    ("Guam", "Dollars", 1_000),
    ("Hong Kong", "Dollars", 7_820),
    ("Hungary", "Forint", 360_000),
    ("Iceland", "Kronur", 138_000),
    ("India", "Rupees", 83_000),
    ("Indonesia", "Rupiahs", 15_600_000),
    ("Iran", "Rials", 42_000_000),
    ("Iraq", "Dinars", 1_310_000),
    ("Ireland", "Euros", 920),
    ("Israel", "New Shekels", 3_650),
    ("Jamaica", "Dollars", 156_000),
    ("Jordan", "Dinars", 709),
    ("Kazakhstan", "Tenge", 450_000),
    ("Kuwait", "Dinars", 308),
    ("Lebanon", "Pounds", 15_000_000),
    ("Luxembourg", "Euros", 920),
    ("Malaysia", "Ringgits", 4_750),
    ("Mexico", "Pesos", 17_100),
    ("Mauritius", "Rupees", 45_000),
    ("New Zealand", "Dollars", 1_640),
    ("Norway", "Kroner", 10_500),
    ("Pakistan", "Rupees", 279_000),
    ("Philippines", "Pesos", 56_000),
    ("Poland", "Zlotych", 4_000),
    ("Portugal", "Euros", 920),
    ("Romania", "Lei", 4_600),
    ("Russia", "Rubles", 92_000),
    ("Saudi Arabia", "Riyals", 3_750),
    ("Singapore", "Dollars", 1_340),
    ("Slovakia", "Euros", 920),
    ("South Africa", "Rand", 18_900),
    ("South Korea", "Won", 1_330_000),
    ("Spain", "Euros", 920),
    ("Sudan", "Pounds", 600_000),
    ("Sweden", "Kronor", 10_400),
    ("Taiwan", "Dollars", 31_500),
    ("Thailand", "Baht", 35_800),
    ("Trinidad", "Dollars", 6_780),
    ("Turkey", "Lira", 31_000),
    ("Venezuela", "Bolivares", 36_000),
    ("Zambia", "Kwacha", 26_000),
];

/// Title words, four per initial letter (A-Z), so a title's first letter
/// can be drawn uniformly.
const WORDS: [[&str; 4]; 26] = [
    ["Ancient", "Autumn", "Atlas", "Answer"],
    ["Broken", "Bridge", "Blue", "Border"],
    ["Crimson", "City", "Castle", "Counting"],
    ["Dark", "Desert", "Dream", "Distant"],
    ["Empire", "Echo", "Evening", "Engine"],
    ["Forest", "Falling", "Fire", "Frontier"],
    ["Garden", "Golden", "Ghost", "Glass"],
    ["Hidden", "Harbor", "Heart", "History"],
    ["Iron", "Island", "Ivory", "Infinite"],
    ["Journey", "Jade", "Justice", "Jungle"],
    ["Kingdom", "Keeper", "Kitchen", "Knight"],
    ["Last", "Light", "Lantern", "Library"],
    ["Midnight", "Mountain", "Mirror", "Memory"],
    ["Night", "North", "Number", "Novel"],
    ["Ocean", "Orchard", "Open", "Origin"],
    ["Paper", "Promise", "Prairie", "Pilgrim"],
    ["Quiet", "Quest", "Queen", "Quarter"],
    ["River", "Red", "Road", "Rising"],
    ["Secret", "Shadow", "Summer", "Stone"],
    ["Tower", "Tide", "Thunder", "Twelve"],
    ["Under", "Unknown", "Union", "Upper"],
    ["Valley", "Velvet", "Voyage", "Vanishing"],
    ["Winter", "Wild", "Window", "Wanderer"],
    ["Xanadu", "Xylophone", "Xenon", "Xerxes"],
    ["Yellow", "Yesterday", "Young", "Yonder"],
    ["Zero", "Zephyr", "Zenith", "Zodiac"],
];

const FILLERS: [&str; 12] = ["of", "the", "and", "in", "a", "to", "for", "with", "on", "at", "from", "by"];

const SYLLABLES: [&str; 32] = [
    "ar", "en", "is", "on", "ul", "ka", "lo", "mi", "ra", "ven", "tor", "el", "dell", "ton", "sha", "ri", "bo", "li",
    "ne", "qua", "zen", "ith", "os", "em", "cor", "da", "fi", "gor", "hel", "jin", "mar", "wyn",
];

const FIRST_NAMES: [&str; 40] = [
    "Alice", "Bruno", "Carmen", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kara", "Liam", "Maya",
    "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Walter", "Ximena", "Yusuf", "Zoe",
    "Anna", "Ben", "Chloe", "Dmitri", "Eva", "Felix", "Gina", "Hugo", "Irene", "Jack", "Leila", "Marco", "Nora",
    "Oscar",
];

const STREETS: [&str; 8] = ["Street", "Avenue", "Road", "Lane", "Drive", "Boulevard", "Way", "Court"];
const PUBLISHING: [&str; 6] = ["Press", "Books", "Publishing", "House", "Editions", "and Sons"];
const DOMAINS: [&str; 8] =
    ["example.com", "mail.test", "books.test", "post.example", "inbox.test", "web.example", "net.test", "home.example"];

/// One stream per (part, id): records can be regenerated without their
/// neighbours (order totals need item costs; text has its own streams).
fn stream(seed: u64, part: u64, id: u64) -> Rng {
    Rng::derive(seed, (part << 40) | id)
}

/// One of `words`.
fn pick(r: &mut Rng, words: &[&'static str]) -> &'static str {
    let k = r.range(0, words.len().saturating_sub(1) as u64) as usize;
    words.get(k).copied().unwrap_or("")
}

/// A title-case word whose first letter is uniform over A-Z.
fn word(r: &mut Rng) -> &'static str {
    let row = r.pick(&WORDS[..]);
    pick(r, row)
}

/// A made-up proper name, first letter uniform over A-Z.
fn name(r: &mut Rng, syllables: u64) -> String {
    let mut s = String::with_capacity(12);
    s.push((b'A' + r.range(0, 25) as u8) as char);
    for _ in 0..r.range(1, syllables) {
        s.push_str(pick(r, &SYLLABLES));
    }
    s
}

/// Running text of about `len` bytes.
pub fn text(r: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len + 12);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        if r.percent(35) {
            s.push_str(pick(r, &FILLERS));
        } else {
            let w = word(r);
            s.extend(w.chars().map(|c| c.to_ascii_lowercase()));
        }
    }
    s.truncate(len);
    s
}

fn digits(r: &mut Rng, n: u64) -> String {
    (0..n).map(|_| (b'0' + r.range(0, 9) as u8) as char).collect()
}

/// Cents between `lo` and `hi` dollars.
fn dollars(r: &mut Rng, lo: u64, hi: u64) -> u32 {
    r.range(lo * 100, hi * 100 - 1) as u32
}

/// Authors at `sc`: a quarter of the items (at least one).
pub fn authors(sc: &Scale) -> u64 {
    (sc.items / 4).max(1)
}

/// Orders at `sc`: 0.9 per customer.
pub fn orders(sc: &Scale) -> u64 {
    sc.customers * 9 / 10
}

/// Source rows per table: records, except order lines, which are produced
/// per order.
pub fn rows(sc: &Scale) -> [u64; TABLES] {
    [COUNTRIES.len() as u64, authors(sc), sc.items, 2 * sc.customers, sc.customers, orders(sc), orders(sc)]
}

/// Country `id` (1-92).
pub fn country(id: u64) -> Country {
    let (name, currency, exchange) = COUNTRIES[(id as usize).saturating_sub(1) % COUNTRIES.len()];
    Country { name: name.into(), currency: currency.into(), exchange }
}

/// Author `id`.
pub fn author(seed: u64, id: u64) -> Author {
    let mut r = stream(seed, 2, id);
    let fname = *r.pick(&FIRST_NAMES[..]);
    let initial = (b'A' + r.range(0, 25) as u8) as char;
    let lname = name(&mut r, 3);
    let dob = -(r.range((20 * YEAR) as u64, (100 * YEAR) as u64) as i64);
    let len = r.range(100, 300) as usize;
    Author {
        fname: fname.into(),
        mname: format!("{initial}.").into(),
        lname: lname.into(),
        dob,
        bio: text(&mut r, len).into(),
    }
}

/// Item `id`, with its description when `with_text`.
pub fn item(seed: u64, sc: &Scale, id: u64, with_text: bool) -> Item {
    let mut r = stream(seed, 3, id);
    let mut title = String::from(word(&mut r));
    for _ in 0..r.range(0, 4) {
        title.push(' ');
        title.push_str(if r.percent(30) { pick(&mut r, &FILLERS) } else { word(&mut r) });
    }
    let author = if id <= authors(sc) { id } else { r.range(1, authors(sc)) };
    let pub_date = -(r.range(DAY as u64, (70 * YEAR) as u64) as i64);
    let publisher = format!("{} {}", name(&mut r, 2), r.pick(&PUBLISHING[..]));
    let subject = r.range(0, SUBJECTS.len() as u64 - 1) as u8;
    let mut related = [0u32; 5];
    for k in 0..5 {
        loop {
            let candidate = r.range(1, sc.items) as u32;
            let fresh = u64::from(candidate) != id && !related[..k].contains(&candidate);
            if fresh || sc.items < 6 {
                related[k] = candidate;
                break;
            }
        }
    }
    let srp = dollars(&mut r, 1, 10_000);
    let cost = (u64::from(srp) * (100 - r.range(0, 50)) / 100).max(1) as u32;
    let dims = [r.range(1, 9999), r.range(1, 9999), r.range(1, 9999)];
    let desc_len = r.range(100, 400) as usize;
    Item {
        title: title.into(),
        author: author as u32,
        pub_date,
        publisher: publisher.into(),
        subject,
        desc: if with_text { text(&mut stream(seed, 4, id), desc_len).into() } else { "".into() },
        related,
        thumbnail: format!("img{}/thumb_{id}.gif", id % 100).into(),
        image: format!("img{}/image_{id}.gif", id % 100).into(),
        srp,
        cost,
        avail: pub_date + r.range(DAY as u64, 30 * DAY as u64) as i64,
        stock: r.range(10, 30) as u32,
        isbn: digits(&mut r, 13).into(),
        pages: r.range(20, 9999) as u32,
        backing: r.range(0, BACKINGS.len() as u64 - 1) as u8,
        dimensions: format!(
            "{}.{:02} x {}.{:02} x {}.{:02}",
            dims[0] / 100,
            dims[0] % 100,
            dims[1] / 100,
            dims[1] % 100,
            dims[2] / 100,
            dims[2] % 100
        )
        .into(),
    }
}

/// Address `id`.
pub fn address(seed: u64, id: u64) -> Address {
    let mut r = stream(seed, 5, id);
    let street1 = format!("{} {} {}", r.range(1, 9999), word(&mut r), r.pick(&STREETS[..]));
    let street2 = match r.range(0, 3) {
        0 => format!("Apt {}", r.range(1, 999)),
        1 => format!("Suite {}", r.range(100, 999)),
        _ => String::new(),
    };
    let zip = if r.percent(50) { digits(&mut r, 5) } else { format!("{}-{}", digits(&mut r, 5), digits(&mut r, 4)) };
    Address {
        street1: street1.into(),
        street2: street2.into(),
        city: name(&mut r, 3).into(),
        state: name(&mut r, 2).into(),
        zip: zip.into(),
        country: r.range(1, COUNTRIES.len() as u64) as u32,
    }
}

/// Customer `id`: user name DigSyl(id), password its lower case.
pub fn customer(seed: u64, sc: &Scale, id: u64) -> Customer {
    let mut r = stream(seed, 6, id);
    let mut uname = String::new();
    digsyl(id, &mut uname);
    let since = -(r.range(DAY as u64, 730 * DAY as u64) as i64);
    let data_len = r.range(100, 500) as usize;
    let phone_len = r.range(9, 16);
    let phone = digits(&mut r, phone_len);
    let domain = *r.pick(&DOMAINS[..]);
    Customer {
        passwd: uname.to_lowercase().into(),
        email: format!("{}@{domain}", uname.to_lowercase()).into(),
        uname: uname.into(),
        fname: (*r.pick(&FIRST_NAMES[..])).into(),
        lname: name(&mut r, 3).into(),
        addr: r.range(1, 2 * sc.customers) as u32,
        phone: phone.into(),
        since,
        last_login: (since + r.range(0, 60 * DAY as u64) as i64).min(0),
        login: 0,
        expiration: 2 * 3600,
        discount: r.range(0, 50) as u32,
        balance: 0,
        ytd_pmt: r.range(0, 9_999_999) as i64,
        birthdate: -(r.range((18 * YEAR) as u64, (90 * YEAR) as u64) as i64),
        data: text(&mut stream(seed, 7, id), data_len).into(),
    }
}

/// The lines of order `id`: 1-5 distinct items, 1-300 units each.
pub fn order_lines(seed: u64, sc: &Scale, id: u64) -> Vec<OrderLine> {
    let mut r = stream(seed, 9, id);
    let n = r.range(1, 5).min(sc.items);
    let mut lines: Vec<OrderLine> = Vec::with_capacity(n as usize);
    while lines.len() < n as usize {
        let item = r.range(1, sc.items) as u32;
        if lines.iter().any(|l| l.item == item) {
            continue;
        }
        let len = r.range(20, 100) as usize;
        lines.push(OrderLine {
            order: id as u32,
            item,
            qty: r.range(1, 300) as u32,
            discount: r.range(0, 3) as u32,
            comments: text(&mut r, len).into(),
        });
    }
    lines
}

/// The amount of `qty` units at `cost` cents less `discount` percent.
pub fn line_amount(cost: u32, qty: u32, discount: u32) -> i64 {
    i64::from(cost).saturating_mul(i64::from(qty)).saturating_mul(100 - i64::from(discount.min(100))) / 100
}

/// Tax, shipping and total of an order: (tax, total).
pub fn totals(sub_total: i64, units: i64) -> (i64, i64) {
    let tax = sub_total.saturating_mul(TAX_BP) / 10_000;
    (
        tax,
        sub_total
            .saturating_add(tax)
            .saturating_add(SHIPPING_BASE)
            .saturating_add(SHIPPING_PER_UNIT.saturating_mul(units)),
    )
}

/// Order `id` (its totals from its lines and the items' costs).
pub fn order(seed: u64, sc: &Scale, id: u64) -> Order {
    let mut r = stream(seed, 8, id);
    let n = orders(sc).max(1);
    let span = 60 * DAY;
    let slot = span / n as i64;
    let date = -span + span * (id as i64 - 1) / n as i64 + r.range(0, slot.max(1) as u64 - 1) as i64;
    let (mut sub_total, mut units) = (0, 0);
    for l in order_lines(seed, sc, id) {
        sub_total += line_amount(item(seed, sc, l.item.into(), false).cost, l.qty, l.discount);
        units += i64::from(l.qty);
    }
    let (tax, total) = totals(sub_total, units);
    let cc_name = format!("{} {}", r.pick(&FIRST_NAMES[..]), name(&mut r, 3));
    let expiry = format!("{:02}/{:02}", r.range(1, 12), r.range(25, 35));
    let auth_id: String = (0..15).map(|_| (b'A' + r.range(0, 25) as u8) as char).collect();
    Order {
        customer: r.range(1, sc.customers) as u32,
        date,
        sub_total,
        tax,
        total,
        ship_type: r.range(0, SHIP_TYPES.len() as u64 - 1) as u8,
        ship_date: date + r.range(0, 7 * DAY as u64) as i64,
        bill_addr: r.range(1, 2 * sc.customers) as u32,
        ship_addr: r.range(1, 2 * sc.customers) as u32,
        status: r.range(0, STATUSES.len() as u64 - 1) as u8,
        cc: CcXact {
            cc_type: r.range(0, CC_TYPES.len() as u64 - 1) as u8,
            number: digits(&mut r, 16).into(),
            name: cc_name.into(),
            expiry: expiry.into(),
            auth_id: auth_id.into(),
            amount: total,
            date,
            country: r.range(1, COUNTRIES.len() as u64) as u32,
        },
    }
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
    chunker: Chunker<TABLES>,
    /// Records produced per table so far.
    pub counts: [u64; TABLES],
    /// Chunks produced per table so far.
    pub chunks: [u32; TABLES],
}

impl Generator {
    /// The data set of `scale` from `seed`.
    pub fn new(scale: Scale, seed: u64) -> Generator {
        Generator { seed, scale, chunker: Chunker::new(rows(&scale)), counts: [0; TABLES], chunks: [0; TABLES] }
    }

    /// Source rows to go through (for a progress bar): every record, with
    /// order lines counted per order.
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
            Table::Countries => sink.push(|w| country(id).encode(w)),
            Table::Authors => sink.push(|w| author(seed, id).encode(w)),
            Table::Items => sink.push(|w| item(seed, &sc, id, true).encode(w)),
            Table::Addresses => sink.push(|w| address(seed, id).encode(w)),
            Table::Customers => sink.push(|w| customer(seed, &sc, id).encode(w)),
            Table::Orders => sink.push(|w| order(seed, &sc, id).encode(w)),
            Table::OrderLines => {
                for l in order_lines(seed, &sc, id) {
                    sink.push(|w| l.encode(w));
                }
            }
        });
        self.counts = self.chunker.counts;
        self.chunks = self.chunker.chunks;
        c.map(|c| Chunk { table: Table::ALL[c.table], index: c.index, records: c.records, bytes: c.bytes })
    }
}
