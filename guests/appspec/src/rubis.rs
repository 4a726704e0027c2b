//! RUBiS: 26 interactions (27 states with the AboutMe form), the PHP-style
//! paths, the bidding and browsing transition matrices, and the original
//! client's rule for walking them.

/// Number of states including the pseudo-states Back (27) and End (28).
pub const STATES: usize = 29;
/// The pseudo-state "go back one page".
pub const BACK: u8 = 27;
/// The pseudo-state "end of session".
pub const END: u8 = 28;
/// The first page of every session.
pub const HOME: u8 = 0;

/// State names, in state order (27 and 28 are pseudo-states).
pub const NAMES: [&str; STATES] = [
    "Home",
    "Register",
    "RegisterUser",
    "Browse",
    "BrowseCategories",
    "SearchItemsInCategory",
    "BrowseRegions",
    "BrowseCategoriesInRegion",
    "SearchItemsInRegion",
    "ViewItem",
    "ViewUserInfo",
    "ViewBidHistory",
    "BuyNowAuth",
    "BuyNow",
    "StoreBuyNow",
    "PutBidAuth",
    "PutBid",
    "StoreBid",
    "PutCommentAuth",
    "PutComment",
    "StoreComment",
    "Sell",
    "SelectCategoryToSellItem",
    "SellItemForm",
    "RegisterItem",
    "AboutMeForm",
    "AboutMe",
    "Back",
    "EndOfSession",
];

/// URL path of each real state (RUBiS's PHP version).
pub const PATHS: [&str; 27] = [
    "/PHP/index.html",
    "/PHP/register.html",
    "/PHP/RegisterUser.php",
    "/PHP/browse.html",
    "/PHP/BrowseCategories.php",
    "/PHP/SearchItemsByCategory.php",
    "/PHP/BrowseRegions.php",
    "/PHP/BrowseCategories.php",
    "/PHP/SearchItemsByRegion.php",
    "/PHP/ViewItem.php",
    "/PHP/ViewUserInfo.php",
    "/PHP/ViewBidHistory.php",
    "/PHP/BuyNowAuth.php",
    "/PHP/BuyNow.php",
    "/PHP/StoreBuyNow.php",
    "/PHP/PutBidAuth.php",
    "/PHP/PutBid.php",
    "/PHP/StoreBid.php",
    "/PHP/PutCommentAuth.php",
    "/PHP/PutComment.php",
    "/PHP/StoreComment.php",
    "/PHP/sell.html",
    "/PHP/BrowseCategories.php",
    "/PHP/SellItemForm.php",
    "/PHP/RegisterItem.php",
    "/PHP/about_me.html",
    "/PHP/AboutMe.php",
];

/// States that write (RegisterUser, StoreBuyNow, StoreBid, StoreComment, RegisterItem).
pub const WRITES: [u8; 5] = [2, 14, 17, 20, 24];

/// A transition matrix: for each state, its targets in order with their probabilities.
pub type Matrix = [&'static [(u8, f32)]; 27];

/// The bidding mix (`default_transitions_7.txt`).
pub const BIDDING: Matrix = [
    &[(1, 0.07), (3, 0.7), (21, 0.05), (25, 0.15)],
    &[(0, 0.0001), (2, 0.99), (3, 0.0058), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.01), (3, 0.58), (21, 0.05), (25, 0.15), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (4, 0.7), (6, 0.29), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (5, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (5, 0.4), (9, 0.5), (15, 0.09), (21, 0.0005), (25, 0.0015), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (7, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (8, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (8, 0.4), (9, 0.5), (15, 0.09), (21, 0.0005), (25, 0.0015), (28, 0.2)],
    &[
        (0, 0.0001),
        (1, 0.01),
        (3, 0.0058),
        (10, 0.1),
        (11, 0.05),
        (12, 0.1),
        (15, 0.22),
        (19, 0.02),
        (21, 0.0005),
        (25, 0.0015),
        (27, 0.5),
        (28, 0.2),
    ],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (10, 0.19), (21, 0.0005), (25, 0.0015), (27, 0.8), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (10, 0.19), (21, 0.0005), (25, 0.0015), (27, 0.8)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (13, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (14, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.01), (1, 0.01), (3, 0.58), (21, 0.05), (25, 0.15), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (16, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (10, 0.05), (11, 0.15), (17, 0.74), (19, 0.05), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.01), (1, 0.01), (3, 0.58), (21, 0.05), (25, 0.15), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (19, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (20, 0.99), (21, 0.0005), (25, 0.0015)],
    &[(0, 0.01), (1, 0.01), (3, 0.58), (21, 0.05), (25, 0.15), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (21, 0.0005), (22, 0.99), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (21, 0.0005), (23, 0.99), (25, 0.0015)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (21, 0.0005), (24, 0.99), (25, 0.0015)],
    &[(0, 0.01), (1, 0.01), (3, 0.58), (21, 0.05), (25, 0.15), (28, 0.2)],
    &[(0, 0.0001), (1, 0.01), (3, 0.0058), (21, 0.0005), (25, 0.0015), (26, 0.99)],
    &[(0, 0.002), (1, 0.01), (3, 0.116), (9, 0.65), (10, 0.05), (15, 0.1), (21, 0.01), (25, 0.03), (28, 0.2)],
];

/// The browsing mix (`browse_only_transitions_7.txt`; only 0 and 3-11 are reachable).
pub const BROWSING: Matrix = [
    &[(3, 1.0)],
    &[],
    &[],
    &[(0, 0.0005), (4, 0.7), (6, 0.29)],
    &[(0, 0.0005), (3, 0.0075), (5, 0.99)],
    &[(0, 0.0005), (3, 0.0075), (5, 0.44), (9, 0.55), (28, 0.2)],
    &[(0, 0.0005), (3, 0.0075), (7, 0.99)],
    &[(0, 0.0005), (3, 0.0075), (8, 0.99)],
    &[(0, 0.0005), (3, 0.0075), (8, 0.44), (9, 0.55), (28, 0.2)],
    &[(0, 0.0005), (3, 0.0075), (10, 0.15), (11, 0.1), (27, 0.74), (28, 0.2)],
    &[(0, 0.0005), (3, 0.0075), (10, 0.19), (27, 0.8), (28, 0.2)],
    &[(0, 0.0005), (3, 0.0075), (10, 0.19), (27, 0.8)],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
    &[],
];

/// The original client's rule: walk `from`'s targets in order, adding
/// probabilities, and take the first whose running sum exceeds `r` (uniform
/// in [0, 1)); a row that sums below `r` stays on the same page, and a row
/// summing above 1 never reaches its last targets.
pub fn next(m: &Matrix, from: u8, r: f64) -> u8 {
    let Some(row) = m.get(from as usize) else { return END };
    let mut sum = 0.0f64;
    for (to, p) in row.iter() {
        sum += f64::from(*p);
        if sum > r {
            return *to;
        }
    }
    from
}

/// The 20 categories, in id order (ids start at 1).
pub const CATEGORY_NAMES: [&str; 20] = [
    "Antiques & Art",
    "Books",
    "Business, Office & Industrial",
    "Clothing & Accessories",
    "Coins",
    "Collectibles",
    "Computers",
    "Consumer Electronics",
    "Dolls & Bears",
    "Home & Garden",
    "Jewelry, Gems & Watches",
    "Movies & Television",
    "Music",
    "Photo",
    "Pottery & Glass",
    "Sports",
    "Stamps",
    "Tickets & Travel",
    "Toys & Hobbies",
    "Everything Else",
];

/// The 62 regions, in id order (ids start at 1): US states and a city each.
pub const REGION_NAMES: [&str; 62] = [
    "AZ--Phoenix",
    "CA--Los Angeles",
    "CA--Oakland",
    "CA--Sacramento",
    "CA--San Diego",
    "CA--San Francisco",
    "CA--San Jose",
    "CO--Denver",
    "CT--Hartford",
    "DC--Washington",
    "FL--Jacksonville",
    "FL--Miami",
    "FL--Orlando",
    "FL--Tampa-St. Pete",
    "FL--West Palm Beach",
    "GA--Atlanta",
    "HI--Honolulu",
    "ID--Boise",
    "IL--Chicago",
    "IN--Indianapolis",
    "KS--Kansas City",
    "KY--Louisville",
    "LA--New Orleans",
    "MA--Boston",
    "MD--Baltimore",
    "MI--Detroit",
    "MI--Grand Rapids",
    "MN--Minneapolis-St. Paul",
    "MO--Kansas City",
    "MO--St. Louis",
    "MT--Billings",
    "NC--Charlotte",
    "NC--Greensboro",
    "NC--Raleigh-Durham",
    "ND--Bismarck",
    "NM--Albuquerque",
    "NV--Las Vegas",
    "NY--Albany",
    "NY--Buffalo",
    "NY--New York",
    "NY--Rochester",
    "OH--Cincinnati",
    "OH--Cleveland",
    "OH--Columbus",
    "OH--Dayton",
    "OK--Oklahoma City",
    "OR--Portland",
    "PA--Philadelphia",
    "PA--Pittsburgh",
    "RI--Providence",
    "SC--Columbia",
    "TN--Memphis",
    "TN--Nashville",
    "TX--Austin",
    "TX--Dallas-Fort Worth",
    "TX--Houston",
    "TX--San Antonio",
    "UT--Salt Lake City",
    "VA--Norfolk-VA Beach",
    "VA--Richmond",
    "WA--Seattle",
    "WI--Milwaukee",
];

/// What fills a request's parameters (the load generator draws them; the
/// app reads them back with the same names).
#[derive(Clone, Debug, Default)]
pub struct Params {
    /// The session's user id (login `user{id}` / `password{id}`).
    pub user: u64,
    /// The item being looked at.
    pub item: u64,
    /// Its seller (ViewUserInfo, comments).
    pub seller: u64,
    /// Category id, 1-20.
    pub category: u64,
    /// Region id, 1-62.
    pub region: u64,
    /// Result page.
    pub page: u64,
    /// A new user's number (RegisterUser).
    pub new_user: u64,
    /// The current best bid + 1 (StoreBid's minBid).
    pub min_bid: u64,
    /// What a bid adds (1-10).
    pub add_bid: u64,
    /// Comment rating (-5, -3, 0, 3, 5).
    pub rating: i64,
    /// Length of generated text (comments, descriptions).
    pub text_len: usize,
    /// Initial price of a new item.
    pub price: u64,
}

fn push_u64(out: &mut alloc::string::String, n: u64) {
    use core::fmt::Write as _;
    let _ = write!(out, "{n}");
}

/// Appends `s` with spaces and the characters URLs reserve percent-encoded.
pub fn push_escaped(out: &mut alloc::string::String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// The request target (path and query) of `state` with `p`'s values.
pub fn target(state: u8, p: &Params, out: &mut alloc::string::String) {
    use core::fmt::Write as _;
    out.clear();
    let Some(path) = PATHS.get(state as usize) else {
        out.push_str(PATHS[0]);
        return;
    };
    out.push_str(path);
    let u = p.user;
    let cat = CATEGORY_NAMES[((p.category.max(1) - 1) % CATEGORIES) as usize];
    let region = REGION_NAMES[((p.region.max(1) - 1) % REGIONS) as usize];
    let login = |out: &mut alloc::string::String| {
        let _ = write!(out, "&nickname=user{u}&password=password{u}");
    };
    match state {
        2 => {
            let i = p.new_user;
            let _ = write!(out, "?firstname=Great{i}&lastname=User{i}&nickname=user{i}&email=Great{i}.User{i}@rubis.com&password=password{i}&region=");
            push_escaped(out, REGION_NAMES[(i % REGIONS) as usize]);
        }
        5 => {
            let _ = write!(out, "?category={}&categoryName=", p.category);
            push_escaped(out, cat);
            let _ = write!(out, "&page={}&nbOfItems=25", p.page);
        }
        7 => {
            out.push_str("?region=");
            push_escaped(out, region);
        }
        8 => {
            let _ = write!(out, "?region={}&category={}&categoryName=", p.region, p.category);
            push_escaped(out, cat);
            let _ = write!(out, "&page={}&nbOfItems=25", p.page);
        }
        9 | 11 | 12 | 15 => {
            out.push_str("?itemId=");
            push_u64(out, p.item);
        }
        10 => {
            out.push_str("?userId=");
            push_u64(out, p.seller);
        }
        13 | 16 => {
            out.push_str("?itemId=");
            push_u64(out, p.item);
            login(out);
        }
        14 => {
            let _ = write!(out, "?itemId={}&userId={u}&qty=1&maxQty=1", p.item);
        }
        17 => {
            let (m, a) = (p.min_bid, p.add_bid);
            let _ = write!(
                out,
                "?itemId={}&userId={u}&minBid={m}&bid={}&maxBid={}&qty=1&maxQty=1",
                p.item,
                m + a,
                m + 2 * a
            );
        }
        18 => {
            let _ = write!(out, "?itemId={}&to={}", p.item, p.seller);
        }
        19 => {
            let _ = write!(out, "?itemId={}&to={}", p.item, p.seller);
            login(out);
        }
        20 => {
            let _ = write!(out, "?itemId={}&to={}&from={u}&rating={}&comment=", p.item, p.seller, p.rating);
            for k in 0..p.text_len.max(1) {
                out.push(if k % 6 == 5 { '+' } else { 'c' });
            }
        }
        22 | 26 => {
            out.push('?');
            let _ = write!(out, "nickname=user{u}&password=password{u}");
        }
        23 => {
            let _ = write!(out, "?user={u}&category={}", p.category);
        }
        24 => {
            let _ = write!(out, "?name=RUBiS+automatically+generated+item+%23{}&description=", p.new_user);
            for k in 0..p.text_len.max(1) {
                out.push(if k % 7 == 6 { '+' } else { 'd' });
            }
            let _ = write!(
                out,
                "&initialPrice={}&reservePrice=0&buyNow=0&duration=7&quantity=1&userId={u}&categoryId={}",
                p.price.max(1),
                p.category
            );
        }
        _ => {}
    }
}

/// Most transitions of one session (the original client's cap).
pub const MAX_STEPS: u32 = 1000;

/// A session's walk over a matrix: the page it is on and the pages behind it
/// (for Back).
#[derive(Clone, Debug)]
pub struct Walk {
    /// The page shown now.
    pub current: u8,
    history: alloc::vec::Vec<u8>,
    steps: u32,
}

impl Default for Walk {
    fn default() -> Self {
        Walk { current: HOME, history: alloc::vec::Vec::new(), steps: 0 }
    }
}

impl Walk {
    /// The page to request next, given `r` uniform in [0, 1); `None` when
    /// the session is over. Back returns to the previous page (requested again).
    pub fn step(&mut self, m: &Matrix, r: f64) -> Option<u8> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return None;
        }
        match next(m, self.current, r) {
            END => None,
            BACK => {
                self.current = self.history.pop().unwrap_or(HOME);
                Some(self.current)
            }
            to => {
                self.history.push(self.current);
                self.current = to;
                Some(to)
            }
        }
    }

    /// The server answered "Sorry" (nothing to show): go back one page.
    pub fn sorry(&mut self) {
        self.current = self.history.pop().unwrap_or(HOME);
    }
}

/// The data scale: RUBiS's defaults times `scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Registered users.
    pub users: u64,
    /// Items on sale.
    pub active_items: u64,
    /// Ended auctions.
    pub old_items: u64,
}

/// Categories (fixed).
pub const CATEGORIES: u64 = 20;
/// Regions (fixed).
pub const REGIONS: u64 = 62;
/// The scale the data loader and the load generator use unless told otherwise.
pub const DEFAULT_SCALE: f64 = 0.01;

impl Scale {
    /// RUBiS's defaults (1,000,000 users, 32,667 active and 500,000 old items) times `s`, at least 1 of each.
    pub fn of(s: f64) -> Scale {
        let n = |x: f64| if (x * s) < 1.0 { 1 } else { (x * s) as u64 };
        Scale { users: n(1_000_000.0), active_items: n(32_667.0), old_items: n(500_000.0) }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    struct XorShift(u64);
    impl XorShift {
        fn f64(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Shares of each state over many sessions, and requests per session.
    fn simulate(m: &Matrix, sessions: u32) -> ([f64; STATES], f64) {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let mut counts = [0u64; STATES];
        let mut total = 0u64;
        for _ in 0..sessions {
            let mut w = Walk::default();
            counts[HOME as usize] += 1;
            total += 1;
            while let Some(page) = w.step(m, rng.f64()) {
                counts[page as usize] += 1;
                total += 1;
            }
        }
        let mut shares = [0.0; STATES];
        for i in 0..STATES {
            shares[i] = 100.0 * counts[i] as f64 / total as f64;
        }
        (shares, total as f64 / f64::from(sessions))
    }

    #[test]
    fn the_bidding_mix_matches_the_original_client() {
        let (s, per_session) = simulate(&BIDDING, 20_000);
        assert!((45.0..=57.0).contains(&per_session), "{per_session} requests per session (RUBiS: about 51)");
        for (state, want) in [(5usize, 17.0), (9, 16.3), (3, 7.6), (16, 7.2)] {
            assert!((s[state] - want).abs() < 0.6, "{}: {:.2}% (about {want}%)", NAMES[state], s[state]);
        }
        let writes: f64 = WRITES.iter().map(|w| s[*w as usize]).sum();
        assert!((writes - 9.2).abs() < 0.6, "writes {writes:.2}% (about 9.2%)");
        assert_eq!(s[18], 0.0, "PutCommentAuth is never reached");
    }

    #[test]
    fn the_browsing_mix_is_read_only_and_long() {
        let (s, per_session) = simulate(&BROWSING, 2_000);
        assert!((380.0..=520.0).contains(&per_session), "{per_session} requests per session (about 453)");
        let writes: f64 = WRITES.iter().map(|w| s[*w as usize]).sum();
        assert_eq!(writes, 0.0);
    }

    #[test]
    fn every_path_is_under_php() {
        for p in PATHS {
            assert!(p.starts_with("/PHP/"));
        }
    }
}
