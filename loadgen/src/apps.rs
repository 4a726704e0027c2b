//! Session workloads of the two applications: a RUBiS user walks the
//! bidding or browsing matrix with the original client's rule, a TPC-W
//! browser walks its mix's navigation table; ids are drawn within the data
//! scale the data loader uses, and stay the same within a session (its user,
//! the item it looks at, its cart).

use std::time::{Duration, Instant};

use appspec::{rubis, tpcw};

use crate::workload::{CookieJar, Next, Session, Workload};

fn request(out: &mut Vec<u8>, host: &str, target: &str, jar: &CookieJar) {
    out.clear();
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: twinkle-loadgen\r\n");
    jar.header(out);
    out.extend_from_slice(b"\r\n");
}

/// A number after `key` in `body` (e.g. `name=minBid value=` then digits).
fn number_after(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = body[at..].iter().copied().take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Every number that follows `key` in `body` (the ids in a page's links).
fn numbers_after(body: &[u8], key: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let mut rest = body;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        rest = &rest[at + key.len()..];
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if rest.first().is_some_and(u8::is_ascii_digit) {
            out.push(n);
        }
    }
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

/// `--workload rubis`.
pub struct Rubis {
    host: String,
    matrix: &'static rubis::Matrix,
    scale: rubis::Scale,
    target: Vec<f64>,
}

impl Rubis {
    /// The bidding (`bidding`) or browsing (`browsing`) mix at data scale `scale`.
    pub fn new(host: &str, mix: &str, scale: f64) -> Result<Rubis, String> {
        let matrix = match mix {
            "bidding" => &rubis::BIDDING,
            "browsing" => &rubis::BROWSING,
            other => return Err(format!("RUBiS has the mixes bidding and browsing, not {other:?}")),
        };
        Ok(Rubis { host: host.to_string(), matrix, scale: rubis::Scale::of(scale), target: reference_mix(matrix) })
    }
}

/// The mix the original client's rule gives: shares of 20,000 simulated sessions.
fn reference_mix(m: &rubis::Matrix) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut counts = [0u64; 27];
    let mut total = 0u64;
    for _ in 0..20_000 {
        let mut w = rubis::Walk::default();
        counts[rubis::HOME as usize] += 1;
        total += 1;
        while let Some(p) = w.step(m, rng.f64()) {
            counts[p as usize] += 1;
            total += 1;
        }
    }
    counts.iter().map(|c| 100.0 * *c as f64 / total as f64).collect()
}

struct RubisSession {
    host: String,
    matrix: &'static rubis::Matrix,
    scale: rubis::Scale,
    walk: rubis::Walk,
    p: rubis::Params,
    started: bool,
    ended: bool,
    target: String,
    jar: CookieJar,
    /// Item ids in the links of the last listing page (search results, AboutMe).
    listed_items: Vec<u64>,
    /// Category ids in the links of the last categories-in-a-region page.
    listed_categories: Vec<u64>,
    /// Page numbers in the links of the last listing, and the next page.
    pages: Vec<u64>,
    next_page: u64,
}

impl Session for RubisSession {
    fn next(&mut self, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> Option<Next> {
        if self.ended {
            return None;
        }
        let state = if self.started {
            let prev = self.walk.current;
            let s = self.walk.step(self.matrix, rng.f64())?;
            self.draw(s, prev, rng);
            s
        } else {
            self.started = true;
            rubis::HOME
        };
        rubis::target(state, &self.p, &mut self.target);
        request(out, &self.host, &self.target, &self.jar);
        Some(Next { interaction: state as usize, head: false, keep_body: true })
    }

    fn observe(&mut self, status: u16, body: &[u8], set_cookie: &[u8]) {
        self.jar.store(set_cookie);
        if status >= 400 || contains(body, b"ERROR") {
            // The original client counts it and starts over at Home.
            self.ended = true;
        } else if contains(body, b"Sorry") {
            self.walk.sorry();
        } else {
            // As the original client: ids come from the links of the page
            // just shown (rubis.md "Client parameter rules").
            match self.walk.current {
                5 | 8 => {
                    numbers_after(body, b"itemId=", &mut self.listed_items);
                    // The next-page link; without one the client starts over at page 0.
                    numbers_after(body, b"&page=", &mut self.pages);
                    let now = self.p.page;
                    self.next_page = self.pages.iter().copied().filter(|p| *p > now).max().unwrap_or(0);
                }
                26 => numbers_after(body, b"itemId=", &mut self.listed_items),
                7 => numbers_after(body, b"category=", &mut self.listed_categories),
                9 => {
                    if let Some(seller) = number_after(body, b"userId=") {
                        self.p.seller = seller;
                    }
                }
                16 => {
                    if let Some(m) = number_after(body, b"name=minBid value=") {
                        self.p.min_bid = m;
                    }
                }
                _ => {}
            }
        }
    }
}

impl RubisSession {
    /// Draws what the page `s` (reached from `prev`) needs.
    fn draw(&mut self, s: u8, prev: u8, rng: &mut fastrand::Rng) {
        let sc = self.scale;
        // Pages about an item take it from a link of the listing they come
        // from (search results, AboutMe), or keep the current one.
        if (9..=20).contains(&s) && (self.p.item == 0 || matches!(prev, 5 | 8 | 26)) {
            self.p.item = match self.listed_items.len() {
                0 => rng.u64(1..=sc.active_items),
                n => self.listed_items[rng.usize(0..n)],
            };
            self.p.seller = rng.u64(1..=sc.users);
        }
        match s {
            5 | 8 if prev == s => self.p.page = self.next_page,
            5 => {
                self.p.category = rng.u64(1..=rubis::CATEGORIES);
                self.p.page = 0;
            }
            7 => self.p.region = rng.u64(1..=rubis::REGIONS),
            8 => {
                self.p.category = match self.listed_categories.len() {
                    0 => rng.u64(1..=rubis::CATEGORIES),
                    n => self.listed_categories[rng.usize(0..n)],
                };
                self.p.page = 0;
            }
            2 => self.p.new_user = sc.users + rng.u64(1..=1_000_000) + 1,
            17 => self.p.add_bid = rng.u64(1..=10),
            20 => {
                self.p.rating = [-5, -3, 0, 3, 5][rng.usize(0..5)];
                self.p.text_len = rng.usize(1..=2048);
            }
            24 => {
                self.p.new_user = rng.u64(1..=1_000_000);
                self.p.text_len = rng.usize(1..=8192);
                self.p.price = rng.u64(1..=5000);
                self.p.category = rng.u64(1..=rubis::CATEGORIES);
            }
            23 => self.p.category = rng.u64(1..=rubis::CATEGORIES),
            _ => {}
        }
    }
}

impl Workload for Rubis {
    fn interactions(&self) -> Vec<String> {
        rubis::NAMES[..27].iter().map(|s| s.to_string()).collect()
    }

    fn target_mix(&self) -> Option<Vec<f64>> {
        Some(self.target.clone())
    }

    fn session(&self, rng: &mut fastrand::Rng) -> Box<dyn Session> {
        let p = rubis::Params { user: rng.u64(1..=self.scale.users), min_bid: 1, add_bid: 1, ..Default::default() };
        Box::new(RubisSession {
            host: self.host.clone(),
            matrix: self.matrix,
            scale: self.scale,
            walk: rubis::Walk::default(),
            p,
            started: false,
            ended: false,
            target: String::with_capacity(256),
            jar: CookieJar::default(),
            listed_items: Vec::new(),
            listed_categories: Vec::new(),
            pages: Vec::new(),
            next_page: 0,
        })
    }
}

/// `--workload tpcw`.
pub struct Tpcw {
    host: String,
    table: &'static tpcw::Table,
    mix: &'static [f64; 14],
    scale: tpcw::Scale,
}

impl Tpcw {
    /// The browsing, shopping or ordering mix at data scale `scale`.
    pub fn new(host: &str, mix: &str, scale: f64) -> Result<Tpcw, String> {
        let (table, target) = match mix {
            "browsing" => (&tpcw::BROWSING, &tpcw::MIX_BROWSING),
            "shopping" => (&tpcw::SHOPPING, &tpcw::MIX_SHOPPING),
            "ordering" => (&tpcw::ORDERING, &tpcw::MIX_ORDERING),
            other => return Err(format!("TPC-W has the mixes browsing, shopping and ordering, not {other:?}")),
        };
        Ok(Tpcw { host: host.to_string(), table, mix: target, scale: tpcw::Scale::fraction(scale) })
    }
}

struct TpcwSession {
    host: String,
    table: &'static tpcw::Table,
    scale: tpcw::Scale,
    current: u8,
    started: bool,
    /// User session minimum duration (TPC-W 5.3.1.1): a new session starts
    /// only after it and at a move to Home.
    until: Instant,
    p: tpcw::Params,
    target: String,
    jar: CookieJar,
}

impl Session for TpcwSession {
    fn next(&mut self, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> Option<Next> {
        let ix = if self.started {
            let n = tpcw::next(self.table, self.current, rng.u16(1..=9999));
            if n == tpcw::HOME && Instant::now() >= self.until {
                return None;
            }
            n
        } else {
            self.started = true;
            tpcw::HOME
        };
        self.p.add_item = ix == 13 && self.current == 10;
        match ix {
            10 | 1 => self.p.item = rng.u64(1..=self.scale.items),
            2 | 7 => self.p.subject = rng.usize(0..tpcw::SUBJECTS.len()),
            12 => {
                self.p.search_type = rng.u8(0..3);
                self.p.search.clear();
                if self.p.search_type == 2 {
                    self.p.search.push_str(tpcw::SUBJECTS[rng.usize(0..tpcw::SUBJECTS.len())]);
                } else {
                    for _ in 0..rng.usize(1..=3) {
                        self.p.search.push(rng.alphabetic().to_ascii_uppercase());
                    }
                }
            }
            _ => {}
        }
        self.current = ix;
        tpcw::target(ix, &self.p, &mut self.target);
        request(out, &self.host, &self.target, &self.jar);
        Some(Next { interaction: ix as usize, head: false, keep_body: true })
    }

    fn observe(&mut self, _status: u16, body: &[u8], set_cookie: &[u8]) {
        self.jar.store(set_cookie);
        if let Some(id) = number_after(body, b"SHOPPING_ID=") {
            self.p.shopping_id = Some(id);
        }
    }
}

/// A draw from -mean x ln(r), at most `cap`.
fn negexp(rng: &mut fastrand::Rng, mean: Duration, cap: Duration) -> Duration {
    let r = 1.0 - rng.f64();
    Duration::from_secs_f64((-mean.as_secs_f64() * r.ln()).min(cap.as_secs_f64()))
}

impl Workload for Tpcw {
    fn interactions(&self) -> Vec<String> {
        tpcw::NAMES.iter().map(|s| s.to_string()).collect()
    }

    fn target_mix(&self) -> Option<Vec<f64>> {
        Some(self.mix.to_vec())
    }

    fn p90_limits_ms(&self) -> Option<Vec<f64>> {
        Some(tpcw::P90_LIMIT_S.iter().map(|s| s * 1000.0).collect())
    }

    fn session(&self, rng: &mut fastrand::Rng) -> Box<dyn Session> {
        let customers = self.scale.customers;
        // 80% of sessions are known customers, NURand-chosen.
        let customer = (rng.u8(0..10) < 8).then(|| {
            let a = tpcw::nurand_a_customers(customers);
            tpcw::nurand(rng.u64(0..=a), rng.u64(1..=customers), 1, customers)
        });
        let usmd = negexp(rng, Duration::from_secs(15 * 60), Duration::from_secs(60 * 60));
        Box::new(TpcwSession {
            host: self.host.clone(),
            table: self.table,
            scale: self.scale,
            current: tpcw::HOME,
            started: false,
            until: Instant::now() + usmd,
            p: tpcw::Params { customer, ..Default::default() },
            target: String::with_capacity(256),
            jar: CookieJar::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(w: &dyn Workload, n: usize) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut counts = vec![0u64; w.interactions().len()];
        let mut out = Vec::new();
        let mut s = w.session(&mut rng);
        let mut total = 0;
        while total < n {
            match s.next(&mut rng, &mut out) {
                Some(next) => {
                    counts[next.interaction] += 1;
                    total += 1;
                    assert!(out.starts_with(b"GET /"), "{}", String::from_utf8_lossy(&out));
                    s.observe(200, b"<html>ok</html>", b"");
                }
                None => s = w.session(&mut rng),
            }
        }
        counts.iter().map(|c| 100.0 * *c as f64 / n as f64).collect()
    }

    #[test]
    fn sessions_reach_their_mix() {
        for mix in ["browsing", "shopping", "ordering"] {
            let w = Tpcw::new("x", mix, 0.1).expect("mix");
            let got = walk(&w, 300_000);
            let want = w.target_mix().expect("target");
            for i in 0..14 {
                assert!((got[i] - want[i]).abs() < 1.0, "{mix} {}: {:.2} vs {:.2}", tpcw::NAMES[i], got[i], want[i]);
            }
        }
        let w = Rubis::new("x", "bidding", 0.01).expect("mix");
        let got = walk(&w, 300_000);
        let want = w.target_mix().expect("target");
        for i in 0..27 {
            assert!((got[i] - want[i]).abs() < 1.0, "{}: {:.2} vs {:.2}", rubis::NAMES[i], got[i], want[i]);
        }
    }

    #[test]
    fn sorry_goes_back_and_ids_are_in_range() {
        let w = Rubis::new("x", "bidding", 0.01).expect("mix");
        let mut rng = fastrand::Rng::with_seed(5);
        let mut s = w.session(&mut rng);
        let mut out = Vec::new();
        for _ in 0..2000 {
            if s.next(&mut rng, &mut out).is_none() {
                s = w.session(&mut rng);
                continue;
            }
            let text = String::from_utf8_lossy(&out).to_string();
            if let Some(v) = text.split("itemId=").nth(1) {
                let id: u64 = v.split(['&', ' ']).next().and_then(|x| x.parse().ok()).expect("an item id");
                assert!((1..=327).contains(&id), "item {id} beyond the 1% scale: {text}");
            }
        }
        assert!(Rubis::new("x", "ordering", 0.01).is_err());
    }
}
