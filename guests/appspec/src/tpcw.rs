//! TPC-W: the 14 web interactions, their servlet paths, the three navigation
//! tables (cumulative, out of 9999), the target mixes, and the spec's rules
//! for ids and names.

/// Interactions, in the navigation tables' column order.
pub const CODES: [&str; 14] =
    ["ADMC", "ADMR", "BESS", "BUYC", "BUYR", "CREG", "HOME", "NEWP", "ORDD", "ORDI", "PROD", "SREQ", "SRES", "SHOP"];

/// Readable names, same order.
pub const NAMES: [&str; 14] = [
    "Admin Confirm",
    "Admin Request",
    "Best Sellers",
    "Buy Confirm",
    "Buy Request",
    "Customer Registration",
    "Home",
    "New Products",
    "Order Display",
    "Order Inquiry",
    "Product Detail",
    "Search Request",
    "Search Results",
    "Shopping Cart",
];

/// Servlet paths, same order.
pub const PATHS: [&str; 14] = [
    "/tpcw/TPCW_admin_response_servlet",
    "/tpcw/TPCW_admin_request_servlet",
    "/tpcw/TPCW_best_sellers_servlet",
    "/tpcw/TPCW_buy_confirm_servlet",
    "/tpcw/TPCW_buy_request_servlet",
    "/tpcw/TPCW_customer_registration_servlet",
    "/tpcw/TPCW_home_interaction",
    "/tpcw/TPCW_new_products_servlet",
    "/tpcw/TPCW_order_display_servlet",
    "/tpcw/TPCW_order_inquiry_servlet",
    "/tpcw/TPCW_product_detail_servlet",
    "/tpcw/TPCW_search_request_servlet",
    "/tpcw/TPCW_execute_search",
    "/tpcw/TPCW_shopping_cart_interaction",
];

/// 90th-percentile response-time limits, seconds (TPC-W 1.8), in [`CODES`] order.
pub const P90_LIMIT_S: [f64; 14] = [20.0, 3.0, 5.0, 5.0, 3.0, 3.0, 3.0, 5.0, 3.0, 3.0, 3.0, 3.0, 10.0, 3.0];

/// Index of Home, where every session starts.
pub const HOME: u8 = 6;
/// Interactions that write (Shopping Cart, Buy Request, Buy Confirm, Admin Confirm).
pub const WRITES: [u8; 4] = [13, 4, 3, 0];

/// A navigation table: for each interaction, (next, cumulative out of 9999).
pub type Table = [&'static [(u8, u16)]; 14];

const ADMC: u8 = 0;
const ADMR: u8 = 1;
const BESS: u8 = 2;
const BUYC: u8 = 3;
const BUYR: u8 = 4;
const CREG: u8 = 5;
const HOMI: u8 = 6;
const NEWP: u8 = 7;
const ORDD: u8 = 8;
const ORDI: u8 = 9;
const PROD: u8 = 10;
const SREQ: u8 = 11;
const SRES: u8 = 12;
const SHOP: u8 = 13;

/// The browsing mix.
pub const BROWSING: Table = [
    &[(HOMI, 9877), (SREQ, 9999)],
    &[(ADMC, 8999), (HOMI, 9999)],
    &[(HOMI, 4607), (PROD, 5259), (SREQ, 9942), (SHOP, 9999)],
    &[(HOMI, 342), (SREQ, 9999)],
    &[(BUYC, 9199), (HOMI, 9595), (SHOP, 9999)],
    &[(BUYR, 9145), (HOMI, 9619), (SREQ, 9999)],
    &[(BESS, 3792), (NEWP, 7585), (ORDI, 7688), (SREQ, 9559), (SHOP, 9999)],
    &[(HOMI, 299), (PROD, 9867), (SREQ, 9941), (SHOP, 9999)],
    &[(HOMI, 802), (SREQ, 9999)],
    &[(HOMI, 523), (ORDD, 8856), (SREQ, 9999)],
    &[(ADMR, 47), (HOMI, 8346), (PROD, 9749), (SREQ, 9890), (SHOP, 9999)],
    &[(HOMI, 788), (SRES, 9955), (SHOP, 9999)],
    &[(HOMI, 3674), (PROD, 9868), (SREQ, 9942), (SHOP, 9999)],
    &[(CREG, 4099), (HOMI, 8883), (SHOP, 9999)],
];

/// The shopping mix (SHOP -> HOME 9552, not the UW file's 9992 typo).
pub const SHOPPING: Table = [
    &[(HOMI, 9952), (SREQ, 9999)],
    &[(ADMC, 8999), (HOMI, 9999)],
    &[(HOMI, 167), (PROD, 472), (SREQ, 9927), (SHOP, 9999)],
    &[(HOMI, 84), (SREQ, 9999)],
    &[(BUYC, 4614), (HOMI, 6546), (SHOP, 9999)],
    &[(BUYR, 8666), (HOMI, 8760), (SREQ, 9999)],
    &[(BESS, 3124), (NEWP, 6249), (ORDI, 6718), (SREQ, 7026), (SHOP, 9999)],
    &[(HOMI, 156), (PROD, 9735), (SREQ, 9784), (SHOP, 9999)],
    &[(HOMI, 69), (SREQ, 9999)],
    &[(HOMI, 72), (ORDD, 8872), (SREQ, 9999)],
    &[(ADMR, 58), (HOMI, 832), (PROD, 1288), (SREQ, 8603), (SHOP, 9999)],
    &[(HOMI, 635), (SRES, 9135), (SHOP, 9999)],
    &[(HOMI, 2657), (PROD, 9294), (SREQ, 9304), (SHOP, 9999)],
    &[(CREG, 2585), (HOMI, 9552), (SHOP, 9999)],
];

/// The ordering mix.
pub const ORDERING: Table = [
    &[(HOMI, 8348), (SREQ, 9999)],
    &[(ADMC, 8999), (HOMI, 9999)],
    &[(HOMI, 1), (PROD, 333), (SREQ, 9998), (SHOP, 9999)],
    &[(HOMI, 2), (SREQ, 9999)],
    &[(BUYC, 7999), (HOMI, 9453), (SHOP, 9999)],
    &[(BUYR, 9899), (HOMI, 9901), (SREQ, 9999)],
    &[(BESS, 499), (NEWP, 999), (ORDI, 1269), (SREQ, 1295), (SHOP, 9999)],
    &[(HOMI, 504), (PROD, 9942), (SREQ, 9976), (SHOP, 9999)],
    &[(HOMI, 9939), (SREQ, 9999)],
    &[(HOMI, 1168), (ORDD, 9968), (SREQ, 9999)],
    &[(ADMR, 99), (HOMI, 3750), (PROD, 5621), (SREQ, 6341), (SHOP, 9999)],
    &[(HOMI, 815), (SRES, 9815), (SHOP, 9999)],
    &[(HOMI, 486), (PROD, 7817), (SREQ, 9998), (SHOP, 9999)],
    &[(CREG, 9499), (HOMI, 9918), (SHOP, 9999)],
];

/// Target mixes in percent, in [`CODES`] order: browsing, shopping, ordering.
pub const MIX_BROWSING: [f64; 14] =
    [0.09, 0.10, 11.00, 0.69, 0.75, 0.82, 29.00, 11.00, 0.25, 0.30, 21.00, 12.00, 11.00, 2.00];
/// Shopping mix targets, percent.
pub const MIX_SHOPPING: [f64; 14] =
    [0.09, 0.10, 5.00, 1.20, 2.60, 3.00, 16.00, 5.00, 0.66, 0.75, 17.00, 20.00, 17.00, 11.60];
/// Ordering mix targets, percent.
pub const MIX_ORDERING: [f64; 14] =
    [0.11, 0.12, 0.46, 10.18, 12.73, 12.86, 9.12, 0.46, 0.22, 0.25, 12.35, 14.53, 13.08, 13.53];

/// The next interaction: `r` uniform in 1..=9999, the first entry whose
/// cumulative value is >= r.
pub fn next(t: &Table, from: u8, r: u16) -> u8 {
    let row = t.get(from as usize).copied().unwrap_or(&[]);
    for (to, cum) in row.iter() {
        if r <= *cum {
            return *to;
        }
    }
    HOME
}

/// The spec's non-uniform random number NURand(A, x, y), given uniform
/// draws `a` in [0, A] and `b` in [x, y].
pub fn nurand(a_draw: u64, b_draw: u64, x: u64, y: u64) -> u64 {
    ((a_draw | b_draw) % (y - x + 1)) + x
}

/// A for customer ids at this many customers.
pub fn nurand_a_customers(customers: u64) -> u64 {
    match customers {
        0..=9_999 => 1023,
        10_000..=39_999 => 4095,
        40_000..=159_999 => 16383,
        160_000..=639_999 => 65535,
        _ => 262_143,
    }
}

/// A user name from a customer id: each decimal digit as a syllable.
pub fn digsyl(mut n: u64, out: &mut alloc::string::String) {
    const SYL: [&str; 10] = ["BA", "OG", "AL", "RI", "RE", "SE", "AT", "UL", "IN", "NG"];
    let mut digits = [0u8; 20];
    let mut k = 0;
    loop {
        digits[k] = (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits[..k].iter().rev() {
        out.push_str(SYL[*d as usize]);
    }
}

/// The 24 subjects.
pub const SUBJECTS: [&str; 24] = [
    "ARTS",
    "BIOGRAPHIES",
    "BUSINESS",
    "CHILDREN",
    "COMPUTERS",
    "COOKING",
    "HEALTH",
    "HISTORY",
    "HOME",
    "HUMOR",
    "LITERATURE",
    "MYSTERY",
    "NON-FICTION",
    "PARENTING",
    "POLITICS",
    "REFERENCE",
    "RELIGION",
    "ROMANCE",
    "SELF-HELP",
    "SCIENCE-NATURE",
    "SCIENCE-FICTION",
    "SPORTS",
    "YOUTH",
    "TRAVEL",
];

/// What fills a request's parameters.
#[derive(Clone, Debug, Default)]
pub struct Params {
    /// The customer id (None: an anonymous session).
    pub customer: Option<u64>,
    /// The cart, once the store gave one.
    pub shopping_id: Option<u64>,
    /// The item at hand.
    pub item: u64,
    /// Subject index, 0-23.
    pub subject: usize,
    /// 0 author, 1 title, 2 subject.
    pub search_type: u8,
    /// Search string (a name prefix or a subject).
    pub search: alloc::string::String,
    /// The cart request adds `item` (coming from Product Detail).
    pub add_item: bool,
}

/// The request target (path and query) of interaction `ix` with `p`'s values.
pub fn target(ix: u8, p: &Params, out: &mut alloc::string::String) {
    use core::fmt::Write as _;
    out.clear();
    out.push_str(PATHS.get(ix as usize).copied().unwrap_or(PATHS[HOME as usize]));
    let mut sep = '?';
    let mut param = |out: &mut alloc::string::String, k: &str, v: &dyn core::fmt::Display| {
        let _ = write!(out, "{sep}{k}={v}");
        sep = '&';
    };
    let uname = |c: u64| {
        let mut s = alloc::string::String::new();
        digsyl(c, &mut s);
        s
    };
    match ix {
        HOMI => {}
        NEWP | BESS => param(out, "subject", &SUBJECTS[p.subject % SUBJECTS.len()]),
        PROD | ADMR => param(out, "I_ID", &p.item),
        SRES => {
            param(out, "search_type", &["author", "title", "subject"][(p.search_type % 3) as usize]);
            param(out, "search_string", &p.search);
        }
        SHOP if p.add_item => {
            param(out, "ADD_FLAG", &"Y");
            param(out, "I_ID", &p.item);
        }
        BUYR => {
            if let Some(c) = p.customer {
                let u = uname(c);
                param(out, "RETURNING_FLAG", &"Y");
                param(out, "UNAME", &u);
                param(out, "PASSWD", &u.to_lowercase());
            } else {
                param(out, "RETURNING_FLAG", &"N");
            }
        }
        BUYC => {
            param(out, "CC_TYPE", &"VISA");
            param(out, "CC_NUMBER", &"4111111111111111");
            param(out, "CC_NAME", &"TWINKLE+LOAD");
            param(out, "CC_EXPIRY", &"12/30");
            param(out, "SHIPPING", &"AIR");
        }
        ORDD => {
            let u = uname(p.customer.unwrap_or(1));
            param(out, "UNAME", &u);
            param(out, "PASSWD", &u.to_lowercase());
        }
        ADMC => {
            param(out, "I_ID", &p.item);
            param(out, "I_NEW_IMAGE", &"img");
            param(out, "I_NEW_THUMBNAIL", &"thumb");
            param(out, "I_NEW_COST", &"10.00");
        }
        _ => {}
    }
    if let Some(c) = p.customer {
        param(out, "C_ID", &c);
    }
    if let Some(s) = p.shopping_id {
        param(out, "SHOPPING_ID", &s);
    }
}

/// The data scale: items and customers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Items (1k, 10k, 100k ...).
    pub items: u64,
    /// Customers (2880 per emulated browser).
    pub customers: u64,
}

/// The fraction of the full data set (10,000 items, 288,000 customers = 100
/// emulated browsers) the data loader and the load generator use unless told
/// otherwise: 1,000 items, 28,800 customers.
pub const DEFAULT_SCALE: f64 = 0.1;

impl Scale {
    /// `items` items and 2880 x `browsers` customers.
    pub fn of(items: u64, browsers: u64) -> Scale {
        Scale { items: items.max(1), customers: (2880 * browsers).max(1) }
    }

    /// The full data set times `s` (at least one of each).
    pub fn fraction(s: f64) -> Scale {
        let n = |x: f64| if x * s < 1.0 { 1 } else { (x * s) as u64 };
        Scale { items: n(10_000.0), customers: n(288_000.0) }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn targets_carry_their_parameters() {
        let mut out = alloc::string::String::new();
        let p = Params { customer: Some(12), shopping_id: Some(7), item: 42, ..Params::default() };
        target(PROD, &p, &mut out);
        assert_eq!(out, "/tpcw/TPCW_product_detail_servlet?I_ID=42&C_ID=12&SHOPPING_ID=7");
        target(BUYR, &p, &mut out);
        assert!(out.contains("UNAME=OGAL&PASSWD=ogal"), "{out}");
    }

    /// Stationary distribution of a table by power iteration.
    fn stationary(t: &Table) -> [f64; 14] {
        let mut p = [1.0 / 14.0; 14];
        for _ in 0..10_000 {
            let mut q = [0.0; 14];
            for (from, row) in t.iter().enumerate() {
                let mut prev = 0u16;
                for (to, cum) in row.iter() {
                    q[*to as usize] += p[from] * f64::from(cum - prev) / 9999.0;
                    prev = *cum;
                }
            }
            p = q;
        }
        p
    }

    #[test]
    fn each_table_reproduces_its_mix() {
        for (t, mix) in [(&BROWSING, &MIX_BROWSING), (&SHOPPING, &MIX_SHOPPING), (&ORDERING, &MIX_ORDERING)] {
            let s = stationary(t);
            for i in 0..14 {
                assert!((s[i] * 100.0 - mix[i]).abs() < 0.011, "{}: {:.3} vs {}", CODES[i], s[i] * 100.0, mix[i]);
            }
        }
    }

    #[test]
    fn rows_end_at_9999() {
        for t in [&BROWSING, &SHOPPING, &ORDERING] {
            for row in t.iter() {
                assert_eq!(row.last().map(|x| x.1), Some(9999));
                assert!(row.windows(2).all(|w| w[0].1 < w[1].1));
            }
        }
    }

    #[test]
    fn names_are_syllables_of_digits() {
        let mut s = alloc::string::String::new();
        digsyl(1907, &mut s);
        assert_eq!(s, "OGNGBAUL");
        let v: Vec<u64> = (0..4).map(|i| nurand(i * 300, 5, 1, 1000)).collect();
        assert!(v.iter().all(|x| (1..=1000).contains(x)));
    }
}
