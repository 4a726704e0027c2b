//! The 14 interactions (tpcw.md's table), each a function from the request
//! parameters and the database to a page. Writes return an [`Event`] for the
//! caller to append to the log (or the page to answer without writing); the
//! caller then renders the outcome with [`after`].
//!
//! Compatibility with TPC-W clients (tpcw.md): Home and Shopping Cart pages
//! put `;jsessionid=<id>?` in their URLs; links carry `C_ID` and
//! `SHOPPING_ID` once known; listings carry `I_ID=` links and on Product
//! Detail the first `I_ID=` is the item itself; the cart page has
//! `NAME="QTY_n" VALUE="q"` fields; Buy Request shows `Firstname:</TD><TD>`
//! and `Lastname: </TD><TD>`; Admin Request has `I_ID" TYPE="hidden"
//! VALUE="n"`. Whatever the load generator sends is answered 200: an
//! unknown customer, cart or item gives a page that says so.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use appspec::tpcw::{self, SUBJECTS};
use storage::Rng;
use webpage::{BadParam, Form};

use crate::db::Db;
use crate::event::{CartChange, Event, ItemUpdate, Login, Outcome, Purchase, Registration, MAX_CART_LINES, MAX_QTY};
use crate::gen::{self, DAY};
use crate::html::{
    self, begin, end, hidden, message, Page, Session, ADMIN_CONFIRM, ADMIN_REQUEST, BEST_SELLERS, BUY_CONFIRM,
    BUY_REQUEST, CUSTOMER_REGISTRATION, NEW_PRODUCTS, ORDER_DISPLAY, PRODUCT_DETAIL, SEARCH_RESULTS, SHOPPING_CART,
};
use crate::model::{Address, CartLine, Customer, Item, BACKINGS, CC_TYPES, SHIP_TYPES, STATUSES};

/// Most bytes of a free-text field (names, streets, card data).
pub const MAX_FIELD: usize = 100;
/// Most bytes of a new customer's DATA field.
pub const MAX_DATA: usize = 500;

/// Context of one request.
pub struct Ctx<'a> {
    /// The database, caught up with the log.
    pub db: &'a Db,
    /// The data set's epoch (Unix seconds).
    pub epoch: i64,
    /// Now, relative to the epoch.
    pub now: i64,
}

/// The session parameters of a request: `C_ID`, `SHOPPING_ID` (a number
/// beyond any id counts as unknown) and the `;jsessionid=` path parameter.
pub fn session(target: &str, f: &Form<'_>) -> Result<Session, BadParam> {
    let num = |k: &str| -> Result<Option<u32>, BadParam> { Ok(f.number(k)?.and_then(|n| u32::try_from(n).ok())) };
    let path = target.split('?').next().unwrap_or(target);
    let jsession = path.split_once(";jsessionid=").map(|(_, j)| {
        j.split(';').next().unwrap_or(j).chars().filter(char::is_ascii_alphanumeric).take(64).collect::<String>()
    });
    Ok(Session { customer: num("C_ID")?, cart: num("SHOPPING_ID")?, jsession: jsession.filter(|j| !j.is_empty()) })
}

/// `sess` with a servlet session id (a new one if the request had none).
fn with_jsession(sess: &Session, now: i64) -> Session {
    let mut s = sess.clone();
    if s.jsession.is_none() {
        let salt = u64::from(s.customer.unwrap_or(0)) << 32 | u64::from(s.cart.unwrap_or(0));
        s.jsession = Some(format!("{:016X}", Rng::derive(now as u64, salt).next()));
    }
    s
}

fn id(f: &Form<'_>, name: &str) -> Result<u32, BadParam> {
    let n = f.need_number(name)?;
    // Ids beyond any table are answered "not found", like id 0.
    Ok(u32::try_from(n).unwrap_or(0))
}

fn field<'a>(f: &Form<'a>, name: &str, max: usize) -> Result<Option<Cow<'a, str>>, BadParam> {
    match f.text(name)? {
        Some(v) if v.len() > max => Err(BadParam(format!("{name} is longer than {max} bytes"))),
        Some(v) if v.trim().is_empty() => Ok(None),
        v => Ok(v),
    }
}

fn need_field<'a>(f: &Form<'a>, name: &str, max: usize) -> Result<Cow<'a, str>, BadParam> {
    field(f, name, max)?.ok_or_else(|| BadParam(format!("missing parameter {name}")))
}

/// `name`'s value among `choices` (ignoring case), as its index.
fn choice(f: &Form<'_>, name: &str, choices: &[&str]) -> Result<usize, BadParam> {
    let v = f.need_text(name)?;
    choices
        .iter()
        .position(|c| c.eq_ignore_ascii_case(v.trim()))
        .ok_or_else(|| BadParam(format!("{name} must be one of {}", choices.join(", "))))
}

/// An amount like `12.34` (a leading `$` allowed), in cents.
fn amount(f: &Form<'_>, name: &str) -> Result<u32, BadParam> {
    let v = f.need_text(name)?;
    let t = v.trim().trim_start_matches('$');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 7 || frac.len() > 2 || !digits(int) || !digits(frac) {
        let shown: String = v.chars().take(40).collect();
        return Err(BadParam(format!("{name} must be an amount like 12.34, not {shown:?}")));
    }
    let whole: u32 = int.parse().map_err(|_| BadParam(format!("{name} is too large")))?;
    let mut cents = 0;
    for (k, b) in frac.bytes().chain(core::iter::repeat(b'0')).take(2).enumerate() {
        cents += u32::from(b - b'0') * if k == 0 { 10 } else { 1 };
    }
    Ok(whole * 100 + cents)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A date `YYYY-MM-DD` or `MM/DD/YYYY`, as Unix seconds; `None` when
/// absent or in another form (TPC-W's browsers send day/weekday/year; the
/// caller makes a date up rather than failing a request they would retry
/// forever).
fn civil_date(f: &Form<'_>, name: &str) -> Result<Option<i64>, BadParam> {
    let Some(v) = field(f, name, 20)? else {
        return Ok(None);
    };
    let parts: Vec<&str> = v.trim().split(['-', '/']).collect();
    let nums: Vec<i64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    let (y, m, d) = match (nums.as_slice(), v.contains('/')) {
        ([y, m, d], false) => (*y, *m, *d),
        ([m, d, y], true) => (*y, *m, *d),
        _ => (0, 0, 0),
    };
    if nums.len() != parts.len() || !(1800..=2200).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Ok(None);
    }
    Ok(Some(days_from_civil(y, m, d) * DAY))
}

fn subject(f: &Form<'_>) -> Result<usize, BadParam> {
    choice(f, "subject", &SUBJECTS)
}

fn item_link(s: &mut String, sess: &Session, id: u32, it: &Item) {
    sess.link(s, PRODUCT_DETAIL, &format!("I_ID={id}"), &it.title);
}

fn author_name(s: &mut String, c: &Ctx<'_>, it: &Item) {
    match c.db.author(it.author) {
        Some(a) => {
            html::text(s, &a.fname);
            s.push(' ');
            html::text(s, &a.lname);
        }
        None => s.push_str("unknown author"),
    }
}

/// A listing of items: number, title, author, price (and units sold).
fn listing(s: &mut String, c: &Ctx<'_>, sess: &Session, rows: &[(u32, Option<u64>)]) {
    if rows.is_empty() {
        s.push_str("<P>No books found. Try another search, or browse the subjects from the home page.</P>\n");
        return;
    }
    s.push_str(
        "<TABLE BORDER=\"1\" CELLPADDING=\"3\" CELLSPACING=\"0\">\n\
<TR BGCOLOR=\"#DDE6F0\"><TH>#</TH><TH>Title</TH><TH>Author</TH><TH>Our price</TH></TR>\n",
    );
    for (n, (id, sold)) in rows.iter().enumerate() {
        let Some(it) = c.db.item(*id) else { continue };
        let _ = write!(s, "<TR><TD>{}</TD><TD>", n + 1);
        item_link(s, sess, *id, it);
        s.push_str("</TD><TD>");
        author_name(s, c, it);
        s.push_str("</TD><TD>");
        html::money(s, it.cost.into());
        if let Some(q) = sold {
            let _ = write!(s, " ({q} sold)");
        }
        s.push_str("</TD></TR>\n");
    }
    s.push_str("</TABLE>\n");
}

/// Five related items of an item drawn from `salt`, as thumbnails.
fn promotion(s: &mut String, c: &Ctx<'_>, sess: &Session, salt: u64) {
    let n = c.db.items.len() as u64;
    if n == 0 {
        return;
    }
    let pick = Rng::derive(c.now as u64, salt).range(1, n) as u32;
    let Some(it) = c.db.item(pick) else { return };
    s.push_str("<P><B>Readers who liked these also liked:</B></P>\n<TABLE BORDER=\"0\" CELLPADDING=\"4\">\n<TR>\n");
    for r in it.related {
        let Some(rel) = c.db.item(r) else { continue };
        s.push_str("<TD ALIGN=\"center\" VALIGN=\"top\" WIDTH=\"20%\"><A HREF=\"");
        sess.url(s, PRODUCT_DETAIL, &format!("I_ID={r}"));
        s.push_str("\">");
        html::image(s, &rel.thumbnail, &rel.title, (50, 75));
        s.push_str("<BR>");
        html::text(s, &rel.title);
        s.push_str("</A></TD>\n");
    }
    s.push_str("</TR>\n</TABLE>\n");
}

/// Home.
pub fn home(c: &Ctx<'_>, sess: &Session) -> Page {
    let sess = &with_jsession(sess, c.now);
    let mut s = begin("Home", sess);
    match sess.customer.and_then(|id| c.db.customer(id)) {
        Some(cu) => {
            s.push_str("<H3>Hello, ");
            html::text(&mut s, &cu.fname);
            s.push(' ');
            html::text(&mut s, &cu.lname);
            s.push_str("! Welcome back.</H3>\n");
        }
        None => s.push_str("<H3>Hello, and welcome to our bookstore!</H3>\n"),
    }
    promotion(&mut s, c, sess, sess.customer.map_or(0, u64::from));
    s.push_str(
        "<TABLE WIDTH=\"100%\" BORDER=\"0\" CELLPADDING=\"2\">\n\
<TR BGCOLOR=\"#DDE6F0\"><TH>What's New</TH><TH>Best Sellers</TH></TR>\n",
    );
    for name in SUBJECTS {
        let q = format!("subject={name}");
        s.push_str("<TR><TD>");
        sess.link(&mut s, NEW_PRODUCTS, &q, name);
        s.push_str("</TD><TD>");
        sess.link(&mut s, BEST_SELLERS, &q, name);
        s.push_str("</TD></TR>\n");
    }
    s.push_str("</TABLE>\n");
    end(s, sess)
}

/// New Products: the 50 newest books of a subject.
pub fn new_products(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let sub = subject(f)?;
    let mut s = begin(&format!("New Products: {}", SUBJECTS[sub]), sess);
    s.push_str("<P>The newest books in this subject, most recently published first.</P>\n");
    let rows: Vec<(u32, Option<u64>)> = c.db.new_products(sub).into_iter().map(|id| (id, None)).collect();
    listing(&mut s, c, sess, &rows);
    Ok(end(s, sess))
}

/// Best Sellers: the 50 books of a subject most sold in the recent orders.
pub fn best_sellers(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let sub = subject(f)?;
    let mut s = begin(&format!("Best Sellers: {}", SUBJECTS[sub]), sess);
    let _ = writeln!(
        s,
        "<P>The books in this subject that sold the most copies in our last {} orders.</P>",
        crate::db::BEST_SELLER_ORDERS
    );
    let rows: Vec<(u32, Option<u64>)> = c.db.best_sellers(sub).iter().map(|(id, q)| (*id, Some(*q))).collect();
    listing(&mut s, c, sess, &rows);
    Ok(end(s, sess))
}

fn no_item(sess: &Session, title: &str) -> Page {
    message(title, 200, "Sorry, there is no book with this id in our catalogue.", sess)
}

fn item_facts(s: &mut String, c: &Ctx<'_>, it: &Item) {
    s.push_str("<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD><B>Author:</B></TD><TD>");
    author_name(s, c, it);
    s.push_str("</TD></TR>\n<TR><TD><B>Subject:</B></TD><TD>");
    html::text(s, SUBJECTS.get(it.subject as usize).copied().unwrap_or("?"));
    s.push_str("</TD></TR>\n<TR><TD><B>Publisher:</B></TD><TD>");
    html::text(s, &it.publisher);
    s.push_str("</TD></TR>\n<TR><TD><B>Published:</B></TD><TD>");
    html::day(s, c.epoch, it.pub_date);
    s.push_str("</TD></TR>\n<TR><TD><B>Binding:</B></TD><TD>");
    s.push_str(BACKINGS.get(it.backing as usize).copied().unwrap_or("?"));
    let _ =
        write!(s, "</TD></TR>\n<TR><TD><B>Pages:</B></TD><TD>{}</TD></TR>\n<TR><TD><B>ISBN:</B></TD><TD>", it.pages);
    html::text(s, &it.isbn);
    s.push_str("</TD></TR>\n<TR><TD><B>Dimensions:</B></TD><TD>");
    html::text(s, &it.dimensions);
    s.push_str(" inches</TD></TR>\n<TR><TD><B>List price:</B></TD><TD>");
    html::money(s, it.srp.into());
    s.push_str("</TD></TR>\n<TR><TD><B>Our price:</B></TD><TD><FONT COLOR=\"#990000\">");
    html::money(s, it.cost.into());
    s.push_str("</FONT> (you save ");
    html::money(s, i64::from(it.srp) - i64::from(it.cost));
    s.push_str(")</TD></TR>\n<TR><TD><B>Available:</B></TD><TD>");
    html::day(s, c.epoch, it.avail);
    let _ = write!(s, " ({} in stock)</TD></TR>\n</TABLE>\n", it.stock);
}

/// Product Detail.
pub fn product_detail(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "I_ID")?;
    let Some(it) = c.db.item(i) else {
        return Ok(no_item(sess, "Product Detail"));
    };
    let mut s = begin("Product Detail", sess);
    s.push_str("<TABLE BORDER=\"0\" CELLPADDING=\"6\"><TR><TD VALIGN=\"top\">");
    html::image(&mut s, &it.image, &it.title, (200, 300));
    s.push_str("</TD><TD VALIGN=\"top\">\n<H2>");
    html::text(&mut s, &it.title);
    s.push_str("</H2>\n<P><A HREF=\"");
    sess.url(&mut s, SHOPPING_CART, &format!("I_ID={i}&QTY=1&ADD_FLAG=Y"));
    s.push_str("\"><B>Add to Cart</B></A></P>\n");
    item_facts(&mut s, c, it);
    s.push_str("</TD></TR></TABLE>\n<H3>Description</H3>\n<P>");
    html::text(&mut s, &it.desc);
    s.push_str("</P>\n<P>");
    sess.link(&mut s, ADMIN_REQUEST, &format!("I_ID={i}"), "Update this book (store staff only)");
    s.push_str("</P>\n");
    Ok(end(s, sess))
}

/// Search Request: the search form and a promotion.
pub fn search_request(c: &Ctx<'_>, sess: &Session) -> Page {
    let mut s = begin("Search Request", sess);
    sess.form(&mut s, SEARCH_RESULTS);
    s.push_str(
        "<TABLE BORDER=\"0\" CELLPADDING=\"4\">\n<TR><TD ALIGN=\"right\"><B>Search by:</B></TD><TD>\
<SELECT NAME=\"search_type\">\n<OPTION VALUE=\"author\">Author</OPTION>\n<OPTION VALUE=\"title\" SELECTED>Title</OPTION>\n\
<OPTION VALUE=\"subject\">Subject</OPTION>\n</SELECT></TD></TR>\n\
<TR><TD ALIGN=\"right\"><B>Search for:</B></TD><TD><INPUT TYPE=\"text\" NAME=\"search_string\" SIZE=\"30\"></TD></TR>\n\
<TR><TD></TD><TD><INPUT TYPE=\"submit\" VALUE=\"Submit\"></TD></TR>\n</TABLE>\n</FORM>\n\
<P>Search by the beginning of a title or of an author's last name, or give a subject: ",
    );
    s.push_str(&SUBJECTS.join(", "));
    s.push_str(".</P>\n");
    promotion(&mut s, c, sess, sess.customer.map_or(1, |c| u64::from(c) + 1));
    end(s, sess)
}

/// Search Results: by author, title or subject.
pub fn search_results(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let kind = choice(f, "search_type", &["author", "title", "subject"])?;
    let q = need_field(f, "search_string", MAX_FIELD)?;
    let found = match kind {
        0 => c.db.search_author(q.trim()),
        1 => c.db.search_title(q.trim()),
        _ => c.db.search_subject(&q),
    };
    let mut s = begin("Search Results", sess);
    let _ = write!(s, "<P>Books whose {} ", ["author's last name", "title", "subject"][kind]);
    s.push_str(if kind == 2 { "is <B>" } else { "starts with <B>" });
    html::text(&mut s, q.trim());
    let _ = writeln!(s, "</B>: {} shown, by title.</P>", found.len());
    let rows: Vec<(u32, Option<u64>)> = found.into_iter().map(|id| (id, None)).collect();
    listing(&mut s, c, sess, &rows);
    Ok(end(s, sess))
}

/// Shopping Cart: the change to the cart (creating one when the request
/// names none this instance knows), or the page when nothing changes.
pub fn shopping_cart(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let add = match f.text("ADD_FLAG")? {
        Some(flag) if flag.eq_ignore_ascii_case("Y") => {
            let i = id(f, "I_ID")?;
            if c.db.item(i).is_none() {
                return Ok(Err(no_item(sess, "Shopping Cart")));
            }
            i
        }
        _ => 0,
    };
    let mut set = Vec::new();
    for n in 0..MAX_CART_LINES {
        let key = format!("I_ID_{n}");
        let Some(item) = f.number(&key)? else { break };
        let (upper, lower) = (format!("QTY_{n}"), format!("qty_{n}"));
        let qty = match f.number(&upper)? {
            Some(q) => Some((q, upper)),
            None => f.number(&lower)?.map(|q| (q, lower)),
        };
        let Some((qty, name)) = qty else { continue };
        let (Ok(item), Ok(qty)) = (u32::try_from(item), u32::try_from(qty)) else {
            return Err(BadParam(format!("{key} and {name} must be between 0 and {MAX_QTY}")));
        };
        if qty > MAX_QTY {
            return Err(BadParam(format!("{name} must be between 0 and {MAX_QTY}")));
        }
        set.push(CartLine { item, qty });
    }
    let cart = sess.cart.filter(|id| c.db.cart(*id).is_some());
    // TPC-W's browsers refresh with one `qty` per line, in the order the
    // cart page listed them, and no I_ID_n.
    if set.is_empty() && add == 0 {
        if let Some(lines) = cart.and_then(|id| c.db.cart(id)).map(|cart| &cart.lines) {
            let qtys: Vec<&str> = f.all("qty").chain(f.all("QTY")).collect();
            for (line, q) in lines.iter().zip(&qtys) {
                let qty = webpage::decode(q)
                    .and_then(|q| q.trim().parse::<u32>().ok())
                    .filter(|q| *q <= MAX_QTY)
                    .ok_or_else(|| BadParam(format!("qty must be a number between 0 and {MAX_QTY}, not {q:?}")))?;
                set.push(CartLine { item: line.item, qty });
            }
        }
    }
    if let Some(id) = cart {
        if add == 0 && set.is_empty() && c.db.cart(id).is_some_and(|cart| !cart.lines.is_empty()) {
            return Ok(Err(cart_page(c, sess, id)));
        }
    }
    // An empty cart gets a book, as TPC-W's cart does: drawn here, so
    // every instance adds the same one.
    let salt = u64::from(cart.unwrap_or(0)) << 32 | u64::from(sess.customer.unwrap_or(0));
    let fallback = Rng::derive(c.now as u64, salt).range(1, c.db.items.len().max(1) as u64) as u32;
    Ok(Ok(Event::Cart(CartChange { cart: cart.unwrap_or(0), time: c.now, add, set, fallback })))
}

/// Sum of a cart's lines after `discount` percent, and its units.
fn cart_totals(c: &Ctx<'_>, lines: &[CartLine], discount: u32) -> (i64, i64) {
    let (mut sub, mut units) = (0, 0);
    for l in lines {
        if let Some(it) = c.db.item(l.item) {
            sub = gen::line_amount(it.cost, l.qty, discount).saturating_add(sub);
            units += i64::from(l.qty);
        }
    }
    (sub, units)
}

/// The cart page of cart `id`.
pub fn cart_page(c: &Ctx<'_>, sess: &Session, id: u32) -> Page {
    let mut sess = with_jsession(sess, c.now);
    sess.cart = Some(id);
    let sess = &sess;
    let Some(cart) = c.db.cart(id) else {
        return message("Shopping Cart", 200, "This shopping cart does not exist.", sess);
    };
    let mut s = begin("Shopping Cart", sess);
    let _ = writeln!(s, "<P>Shopping cart number {id}, last changed ");
    html::date(&mut s, c.epoch, cart.time);
    s.push_str(".</P>\n");
    sess.form(&mut s, SHOPPING_CART);
    if cart.lines.is_empty() {
        s.push_str("<P>Your shopping cart is empty.</P>\n");
    } else {
        s.push_str(
            "<TABLE BORDER=\"1\" CELLPADDING=\"3\" CELLSPACING=\"0\">\n<TR BGCOLOR=\"#DDE6F0\"><TH>Qty</TH>\
<TH>Title</TH><TH>List price</TH><TH>Our price</TH></TR>\n",
        );
        for (n, l) in cart.lines.iter().enumerate() {
            let Some(it) = c.db.item(l.item) else { continue };
            let _ = write!(
                s,
                "<TR><TD><INPUT NAME=\"I_ID_{n}\" TYPE=\"hidden\" VALUE=\"{}\">\
<INPUT TYPE=\"text\" NAME=\"QTY_{n}\" VALUE=\"{}\" SIZE=\"3\"></TD><TD>",
                l.item, l.qty
            );
            item_link(&mut s, sess, l.item, it);
            s.push_str("</TD><TD>");
            html::money(&mut s, it.srp.into());
            s.push_str("</TD><TD>");
            html::money(&mut s, it.cost.into());
            s.push_str("</TD></TR>\n");
        }
        let (sub, units) = cart_totals(c, &cart.lines, 0);
        let _ = write!(s, "</TABLE>\n<P>{units} books, subtotal ");
        html::money(&mut s, sub);
        s.push_str(" before your discount, tax and shipping.</P>\n");
    }
    s.push_str("<P><INPUT TYPE=\"submit\" VALUE=\"Refresh Shopping Cart\"> (a quantity of 0 removes the book)</P>\n</FORM>\n<P>");
    sess.link(&mut s, CUSTOMER_REGISTRATION, "", "Check out");
    s.push_str(" | ");
    sess.link(&mut s, html::HOME, "", "Continue shopping");
    s.push_str("</P>\n");
    end(s, sess)
}

/// Customer Registration: sign in (returning) or register (new).
pub fn customer_registration(c: &Ctx<'_>, sess: &Session) -> Page {
    let mut s = begin("Customer Registration", sess);
    let known = sess.customer.and_then(|id| c.db.customer(id));
    sess.form(&mut s, BUY_REQUEST);
    hidden(&mut s, "RETURNING_FLAG", "Y");
    s.push_str("<H3>Returning customers</H3>\n<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>User name:</TD><TD><INPUT TYPE=\"text\" NAME=\"UNAME\" SIZE=\"23\" VALUE=\"");
    if let Some(cu) = known {
        html::text(&mut s, &cu.uname);
    }
    s.push_str(
        "\"></TD></TR>\n<TR><TD>Password:</TD><TD><INPUT TYPE=\"password\" NAME=\"PASSWD\" SIZE=\"14\"></TD></TR>\n\
<TR><TD></TD><TD><INPUT TYPE=\"submit\" VALUE=\"Sign in and check out\"></TD></TR>\n</TABLE>\n</FORM>\n",
    );
    sess.form(&mut s, BUY_REQUEST);
    hidden(&mut s, "RETURNING_FLAG", "N");
    s.push_str("<H3>New customers</H3>\n<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n");
    for (name, label, size) in [
        ("FNAME", "First name", 15),
        ("LNAME", "Last name", 15),
        ("STREET1", "Street", 40),
        ("STREET2", "Street (2nd line)", 40),
        ("CITY", "City", 30),
        ("STATE", "State", 20),
        ("ZIP", "Zip code", 10),
    ] {
        let _ = writeln!(s, "<TR><TD>{label}:</TD><TD><INPUT TYPE=\"text\" NAME=\"{name}\" SIZE=\"{size}\"></TD></TR>");
    }
    s.push_str("<TR><TD>Country:</TD><TD><SELECT NAME=\"COUNTRY\">\n");
    for ct in &c.db.countries {
        s.push_str("<OPTION>");
        html::text(&mut s, &ct.name);
        s.push_str("</OPTION>\n");
    }
    s.push_str(
        "</SELECT></TD></TR>\n\
<TR><TD>Phone:</TD><TD><INPUT TYPE=\"text\" NAME=\"PHONE\" SIZE=\"16\"></TD></TR>\n\
<TR><TD>E-mail:</TD><TD><INPUT TYPE=\"text\" NAME=\"EMAIL\" SIZE=\"40\"></TD></TR>\n\
<TR><TD>Birth date (YYYY-MM-DD):</TD><TD><INPUT TYPE=\"text\" NAME=\"BIRTHDATE\" SIZE=\"10\"></TD></TR>\n\
<TR><TD>About you:</TD><TD><TEXTAREA NAME=\"DATA\" ROWS=\"4\" COLS=\"50\"></TEXTAREA></TD></TR>\n\
<TR><TD></TD><TD><INPUT TYPE=\"submit\" VALUE=\"Register and check out\"></TD></TR>\n</TABLE>\n</FORM>\n\
<P>Your user name is given to you when you register; your password is your user name in lower case.</P>\n",
    );
    end(s, sess)
}

/// The id of the country named `name` (ignoring case).
fn country_named(c: &Ctx<'_>, name: &str) -> Option<u32> {
    c.db.countries.iter().position(|ct| ct.name.eq_ignore_ascii_case(name.trim())).map(|k| k as u32 + 1)
}

/// A country parameter: its id, or `None` when absent or not one of ours
/// (the caller makes one up: an emulated browser retries a failed request
/// forever, so a name we do not know must not stall it).
fn country(c: &Ctx<'_>, f: &Form<'_>, name: &str) -> Result<Option<u32>, BadParam> {
    Ok(field(f, name, MAX_FIELD)?.and_then(|v| country_named(c, &v)))
}

/// Buy Request: a returning customer signs in, or a new one registers
/// (fields the request leaves out are made up, as an emulated browser
/// would fill them); the cart becomes theirs.
pub fn buy_request(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let returning = choice(f, "RETURNING_FLAG", &["Y", "N"])? == 0;
    let cart = sess.cart.filter(|id| c.db.cart(*id).is_some()).unwrap_or(0);
    if returning {
        let uname = need_field(f, "UNAME", MAX_FIELD)?;
        let passwd = f.text("PASSWD")?.unwrap_or_default();
        return Ok(match c.db.customer_by_uname(uname.trim()) {
            Some(id) if c.db.customer(id).is_some_and(|cu| *cu.passwd == *passwd) => {
                Ok(Event::Login(Login { cart, customer: id, time: c.now }))
            }
            _ => Err(message(
                "Buy Request",
                200,
                "Error: the user name and password you gave do not match a customer. Please try again or register.",
                sess,
            )),
        });
    }
    let salt = u64::from(cart) << 32 | c.db.customers.len() as u64;
    let seed = Rng::derive(c.now as u64, salt).next();
    let scale = tpcw::Scale { items: c.db.items.len() as u64, customers: c.db.customers.len() as u64 };
    let made = gen::customer(seed, &scale, 1);
    let mut addr = gen::address(seed, 1);
    addr.country = addr.country.min(c.db.countries.len() as u32).max(1);
    let text = |name: &str, max: usize, made: &str| -> Result<alloc::boxed::Box<str>, BadParam> {
        Ok(field(f, name, max)?.map_or_else(|| made.into(), |v| v.trim().into()))
    };
    let address = Address {
        street1: text("STREET1", MAX_FIELD, &addr.street1)?,
        street2: text("STREET2", MAX_FIELD, &addr.street2)?,
        city: text("CITY", MAX_FIELD, &addr.city)?,
        state: text("STATE", MAX_FIELD, &addr.state)?,
        zip: text("ZIP", MAX_FIELD, &addr.zip)?,
        country: country(c, f, "COUNTRY")?.unwrap_or(addr.country),
    };
    let (fname, lname) = (text("FNAME", MAX_FIELD, &made.fname)?, text("LNAME", MAX_FIELD, &made.lname)?);
    let email = format!("{}.{}@{}", fname, lname, made.email.split('@').nth(1).unwrap_or("example.com")).to_lowercase();
    let birthdate = civil_date(f, "BIRTHDATE")?.map_or(made.birthdate, |t| t.saturating_sub(c.epoch));
    let customer = Customer {
        uname: "".into(),
        passwd: "".into(),
        fname,
        lname,
        phone: text("PHONE", MAX_FIELD, &made.phone)?,
        email: text("EMAIL", MAX_FIELD, &email)?,
        data: text("DATA", MAX_DATA, &made.data)?,
        birthdate,
        ..made
    };
    Ok(Ok(Event::Register(Registration { cart, time: c.now, customer, address })))
}

fn address_rows(s: &mut String, c: &Ctx<'_>, a: Option<&Address>) {
    let Some(a) = a else {
        s.push_str("<TR><TD COLSPAN=\"2\">(unknown address)</TD></TR>\n");
        return;
    };
    for (label, v) in
        [("Street:", &a.street1), ("", &a.street2), ("City:", &a.city), ("State:", &a.state), ("Zip:", &a.zip)]
    {
        if v.is_empty() {
            continue;
        }
        let _ = write!(s, "<TR><TD>{label}</TD><TD>");
        html::text(s, v);
        s.push_str("</TD></TR>\n");
    }
    s.push_str("<TR><TD>Country:</TD><TD>");
    html::text(s, c.db.country(a.country).map_or("?", |ct| &ct.name));
    s.push_str("</TD></TR>\n");
}

/// The page after Buy Request: the customer, the cart and the payment form.
pub fn buy_request_page(c: &Ctx<'_>, sess: &Session, customer: u32) -> Page {
    let mut sess = sess.clone();
    sess.customer = Some(customer);
    let sess = &sess;
    let Some(cu) = c.db.customer(customer) else {
        return message("Buy Request", 200, "There is no customer with this id.", sess);
    };
    let mut s = begin("Buy Request", sess);
    s.push_str("<H3>Billing information</H3>\n<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>Firstname:</TD><TD>");
    html::text(&mut s, &cu.fname);
    s.push_str("</TD></TR>\n<TR><TD>Lastname: </TD><TD>");
    html::text(&mut s, &cu.lname);
    s.push_str("</TD></TR>\n<TR><TD>User name:</TD><TD>");
    html::text(&mut s, &cu.uname);
    s.push_str("</TD></TR>\n");
    address_rows(&mut s, c, c.db.address(cu.addr));
    s.push_str("<TR><TD>E-mail:</TD><TD>");
    html::text(&mut s, &cu.email);
    s.push_str("</TD></TR>\n<TR><TD>Phone:</TD><TD>");
    html::text(&mut s, &cu.phone);
    let _ = write!(s, "</TD></TR>\n<TR><TD>Discount:</TD><TD>{}%</TD></TR>\n</TABLE>\n", cu.discount);
    let cart = sess.cart.and_then(|id| c.db.cart(id)).filter(|cart| !cart.lines.is_empty());
    let Some(cart) = cart else {
        s.push_str("<H3>Your shopping cart is empty.</H3>\n<P>Add books to it from their page, then check out.</P>\n");
        return end(s, sess);
    };
    s.push_str(
        "<H3>Your order</H3>\n<TABLE BORDER=\"1\" CELLPADDING=\"3\" CELLSPACING=\"0\">\n\
<TR BGCOLOR=\"#DDE6F0\"><TH>Qty</TH><TH>Title</TH><TH>Our price</TH></TR>\n",
    );
    for l in &cart.lines {
        let Some(it) = c.db.item(l.item) else { continue };
        let _ = write!(s, "<TR><TD>{}</TD><TD>", l.qty);
        item_link(&mut s, sess, l.item, it);
        s.push_str("</TD><TD>");
        html::money(&mut s, it.cost.into());
        s.push_str("</TD></TR>\n");
    }
    s.push_str("</TABLE>\n");
    let (sub, units) = cart_totals(c, &cart.lines, cu.discount);
    let (tax, total) = gen::totals(sub, units);
    s.push_str("<P>Subtotal with discount: ");
    html::money(&mut s, sub);
    s.push_str("<BR>Tax: ");
    html::money(&mut s, tax);
    s.push_str("<BR>Shipping and handling: ");
    html::money(&mut s, total.saturating_sub(sub).saturating_sub(tax));
    s.push_str("<BR><B>Total: ");
    html::money(&mut s, total);
    s.push_str("</B></P>\n");
    sess.form(&mut s, BUY_CONFIRM);
    s.push_str("<H3>Payment</H3>\n<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>Card:</TD><TD>");
    for (k, t) in CC_TYPES.iter().enumerate() {
        let checked = if k == 0 { " CHECKED" } else { "" };
        let _ = write!(s, "<INPUT TYPE=\"radio\" NAME=\"CC_TYPE\" VALUE=\"{t}\"{checked}>{t} ");
    }
    s.push_str(
        "</TD></TR>\n<TR><TD>Name on card:</TD><TD><INPUT TYPE=\"text\" NAME=\"CC_NAME\" SIZE=\"30\"></TD></TR>\n\
<TR><TD>Card number:</TD><TD><INPUT TYPE=\"text\" NAME=\"CC_NUMBER\" SIZE=\"16\"></TD></TR>\n\
<TR><TD>Expires (MM/YY):</TD><TD><INPUT TYPE=\"text\" NAME=\"CC_EXPIRY\" SIZE=\"5\"></TD></TR>\n\
<TR><TD>Shipping:</TD><TD><SELECT NAME=\"SHIPPING\">\n",
    );
    for t in SHIP_TYPES {
        let _ = writeln!(s, "<OPTION VALUE=\"{t}\">{t}</OPTION>");
    }
    s.push_str(
        "</SELECT></TD></TR>\n</TABLE>\n<P>Ship to another address (optional): street \
<INPUT TYPE=\"text\" NAME=\"STREET_1\" SIZE=\"30\"> <INPUT TYPE=\"text\" NAME=\"STREET_2\" SIZE=\"30\"> city \
<INPUT TYPE=\"text\" NAME=\"CITY\" SIZE=\"20\"> state <INPUT TYPE=\"text\" NAME=\"STATE\" SIZE=\"10\"> zip \
<INPUT TYPE=\"text\" NAME=\"ZIP\" SIZE=\"10\"> country <INPUT TYPE=\"text\" NAME=\"COUNTRY\" SIZE=\"15\"></P>\n\
<P><INPUT TYPE=\"submit\" VALUE=\"Process order\"></P>\n</FORM>\n",
    );
    end(s, sess)
}

/// Buy Confirm: the purchase of the cart, or the page saying why there is
/// nothing to buy.
pub fn buy_confirm(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let cc_type = choice(f, "CC_TYPE", &CC_TYPES)? as u8;
    let cc_number = need_field(f, "CC_NUMBER", 19)?;
    let cc_number = cc_number.trim();
    if cc_number.len() < 12 || !cc_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadParam("CC_NUMBER must be 12 to 19 digits".into()));
    }
    let cc_name = need_field(f, "CC_NAME", MAX_FIELD)?;
    let cc_expiry = need_field(f, "CC_EXPIRY", 30)?;
    let ship_type = choice(f, "SHIPPING", &SHIP_TYPES)? as u8;
    let ship_addr = match field(f, "STREET_1", MAX_FIELD)? {
        None => None,
        Some(street1) => Some(Address {
            street1: street1.trim().into(),
            street2: field(f, "STREET_2", MAX_FIELD)?.unwrap_or_default().trim().into(),
            city: need_field(f, "CITY", MAX_FIELD)?.trim().into(),
            state: need_field(f, "STATE", MAX_FIELD)?.trim().into(),
            zip: need_field(f, "ZIP", MAX_FIELD)?.trim().into(),
            country: country(c, f, "COUNTRY")?.ok_or_else(|| BadParam("missing parameter COUNTRY".into()))?,
        }),
    };
    let cart = sess.cart.and_then(|id| Some((id, c.db.cart(id)?)));
    let Some((cart_id, cart)) = cart.filter(|(_, cart)| !cart.lines.is_empty()) else {
        return Ok(Err(message(
            "Buy Confirm",
            200,
            "Your shopping cart is empty: there is nothing to buy. Add books to your cart, then check out.",
            sess,
        )));
    };
    // An unknown C_ID counts as none: the customer Buy Request associated
    // with the cart buys.
    let customer = sess.customer.filter(|id| c.db.customer(*id).is_some()).unwrap_or(0);
    if customer == 0 && cart.customer == 0 {
        return Ok(Err(message("Buy Confirm", 200, &crate::event::Refusal::Anonymous.message(), sess)));
    }
    Ok(Ok(Event::BuyConfirm(Purchase {
        cart: cart_id,
        customer,
        time: c.now,
        cc_type,
        cc_number: cc_number.into(),
        cc_name: cc_name.trim().into(),
        cc_expiry: cc_expiry.trim().into(),
        ship_type,
        ship_addr,
    })))
}

/// Appends order `id`: its facts, addresses, payment and lines.
fn order_facts(s: &mut String, c: &Ctx<'_>, sess: &Session, id: u32) {
    let Some(o) = c.db.order(id) else {
        s.push_str("<P>There is no order with this id.</P>\n");
        return;
    };
    let _ = write!(s, "<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>Order number:</TD><TD>{id}</TD></TR>\n<TR><TD>Ordered:</TD><TD>");
    html::date(s, c.epoch, o.date);
    s.push_str("</TD></TR>\n<TR><TD>Status:</TD><TD>");
    s.push_str(STATUSES.get(o.status as usize).copied().unwrap_or("?"));
    s.push_str("</TD></TR>\n<TR><TD>Shipping:</TD><TD>");
    s.push_str(SHIP_TYPES.get(o.ship_type as usize).copied().unwrap_or("?"));
    s.push_str(", ships ");
    html::day(s, c.epoch, o.ship_date);
    s.push_str("</TD></TR>\n");
    if let Some(cu) = c.db.customer(o.customer) {
        s.push_str("<TR><TD>Customer:</TD><TD>");
        html::text(s, &cu.fname);
        s.push(' ');
        html::text(s, &cu.lname);
        s.push_str(" (");
        html::text(s, &cu.email);
        s.push_str(")</TD></TR>\n");
    }
    s.push_str("<TR><TD COLSPAN=\"2\"><B>Billing address</B></TD></TR>\n");
    address_rows(s, c, c.db.address(o.bill_addr));
    s.push_str("<TR><TD COLSPAN=\"2\"><B>Shipping address</B></TD></TR>\n");
    address_rows(s, c, c.db.address(o.ship_addr));
    s.push_str("<TR><TD>Paid with:</TD><TD>");
    s.push_str(CC_TYPES.get(o.cc.cc_type as usize).copied().unwrap_or("?"));
    let last4 = o.cc.number.get(o.cc.number.len().saturating_sub(4)..).unwrap_or("");
    s.push_str(" ending in ");
    html::text(s, last4);
    s.push_str(", authorisation ");
    html::text(s, &o.cc.auth_id);
    s.push_str("</TD></TR>\n</TABLE>\n");
    s.push_str(
        "<TABLE BORDER=\"1\" CELLPADDING=\"3\" CELLSPACING=\"0\">\n<TR BGCOLOR=\"#DDE6F0\"><TH>Title</TH>\
<TH>Our price</TH><TH>Qty</TH><TH>Discount</TH><TH>Comments</TH></TR>\n",
    );
    for l in c.db.lines(id) {
        s.push_str("<TR><TD>");
        match c.db.item(l.item) {
            Some(it) => {
                item_link(s, sess, l.item, it);
                s.push_str("</TD><TD>");
                html::money(s, it.cost.into());
            }
            None => s.push_str("?</TD><TD>?"),
        }
        let _ = write!(s, "</TD><TD>{}</TD><TD>{}%</TD><TD>", l.qty, l.discount);
        html::text(s, &l.comments);
        s.push_str("</TD></TR>\n");
    }
    s.push_str("</TABLE>\n<P>Subtotal: ");
    html::money(s, o.sub_total);
    s.push_str("<BR>Tax: ");
    html::money(s, o.tax);
    s.push_str("<BR>Shipping and handling: ");
    html::money(s, o.total.saturating_sub(o.sub_total).saturating_sub(o.tax));
    s.push_str("<BR><B>Total: ");
    html::money(s, o.total);
    s.push_str("</B></P>\n");
}

/// The page after Buy Confirm took effect.
pub fn order_confirmed(c: &Ctx<'_>, sess: &Session, order: u32) -> Page {
    let mut sess = sess.clone();
    if let Some(o) = c.db.order(order) {
        sess.customer = Some(o.customer);
    }
    let sess = &sess;
    let mut s = begin("Buy Confirm", sess);
    s.push_str("<H3>Thank you! Your order has been placed.</H3>\n");
    order_facts(&mut s, c, sess, order);
    end(s, sess)
}

/// Order Inquiry: the sign-in form for Order Display (the user name is
/// DigSyl(C_ID), so the form is filled in without reading the database).
pub fn order_inquiry(sess: &Session) -> Page {
    let mut s = begin("Order Inquiry", sess);
    s.push_str("<P>Sign in to see the status of your most recent order.</P>\n");
    sess.form(&mut s, ORDER_DISPLAY);
    s.push_str("<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>User name:</TD><TD><INPUT TYPE=\"text\" NAME=\"UNAME\" SIZE=\"23\" VALUE=\"");
    if let Some(id) = sess.customer.filter(|id| *id > 0) {
        tpcw::digsyl(id.into(), &mut s);
    }
    s.push_str(
        "\"></TD></TR>\n<TR><TD>Password:</TD><TD><INPUT TYPE=\"password\" NAME=\"PASSWD\" SIZE=\"14\"></TD></TR>\n\
<TR><TD></TD><TD><INPUT TYPE=\"submit\" VALUE=\"Display last order\"></TD></TR>\n</TABLE>\n</FORM>\n",
    );
    end(s, sess)
}

/// Order Display: the customer's most recent order.
pub fn order_display(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let uname = need_field(f, "UNAME", MAX_FIELD)?;
    let passwd = f.text("PASSWD")?.unwrap_or_default();
    let customer =
        c.db.customer_by_uname(uname.trim()).filter(|id| c.db.customer(*id).is_some_and(|cu| *cu.passwd == *passwd));
    let Some(customer) = customer else {
        return Ok(message(
            "Order Display",
            200,
            "Error: the user name and password you gave do not match a customer.",
            sess,
        ));
    };
    let Some(order) = c.db.latest_order(customer) else {
        return Ok(message("Order Display", 200, "You have not placed any order yet.", sess));
    };
    let mut s = begin("Order Display", sess);
    s.push_str("<H3>Your most recent order</H3>\n");
    order_facts(&mut s, c, sess, order);
    Ok(end(s, sess))
}

/// Admin Request: the form to change a book's price and images.
pub fn admin_request(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "I_ID")?;
    let Some(it) = c.db.item(i) else {
        return Ok(no_item(sess, "Admin Request"));
    };
    let mut s = begin("Admin Request", sess);
    s.push_str("<H3>");
    html::text(&mut s, &it.title);
    s.push_str("</H3>\n");
    html::image(&mut s, &it.thumbnail, &it.title, (50, 75));
    item_facts(&mut s, c, it);
    sess.form(&mut s, ADMIN_CONFIRM);
    hidden(&mut s, "I_ID", i);
    s.push_str("<TABLE BORDER=\"0\" CELLPADDING=\"2\">\n<TR><TD>New price:</TD><TD><INPUT TYPE=\"text\" NAME=\"I_NEW_COST\" SIZE=\"10\" VALUE=\"");
    let mut cost = String::new();
    html::money(&mut cost, it.cost.into());
    s.push_str(cost.trim_start_matches('$'));
    s.push_str(
        "\"></TD></TR>\n<TR><TD>New image:</TD><TD><INPUT TYPE=\"text\" NAME=\"I_NEW_IMAGE\" SIZE=\"40\" VALUE=\"",
    );
    html::text(&mut s, &it.image);
    s.push_str("\"></TD></TR>\n<TR><TD>New thumbnail:</TD><TD><INPUT TYPE=\"text\" NAME=\"I_NEW_THUMBNAIL\" SIZE=\"40\" VALUE=\"");
    html::text(&mut s, &it.thumbnail);
    s.push_str(
        "\"></TD></TR>\n<TR><TD></TD><TD><INPUT TYPE=\"submit\" VALUE=\"Update book\"></TD></TR>\n</TABLE>\n</FORM>\n",
    );
    Ok(end(s, sess))
}

/// Admin Confirm: the change to the book.
pub fn admin_confirm(c: &Ctx<'_>, sess: &Session, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let i = id(f, "I_ID")?;
    let cost = amount(f, "I_NEW_COST")?;
    let image = need_field(f, "I_NEW_IMAGE", MAX_FIELD)?;
    let thumbnail = need_field(f, "I_NEW_THUMBNAIL", MAX_FIELD)?;
    if c.db.item(i).is_none() {
        return Ok(Err(no_item(sess, "Admin Confirm")));
    }
    Ok(Ok(Event::AdminConfirm(ItemUpdate {
        item: i,
        time: c.now,
        cost,
        image: image.trim().into(),
        thumbnail: thumbnail.trim().into(),
    })))
}

/// The page after Admin Confirm took effect.
pub fn admin_confirmed(c: &Ctx<'_>, sess: &Session, i: u32) -> Page {
    let Some(it) = c.db.item(i) else {
        return no_item(sess, "Admin Confirm");
    };
    let mut s = begin("Admin Confirm", sess);
    s.push_str("<H3>The book has been updated</H3>\n<P>");
    item_link(&mut s, sess, i, it);
    s.push_str("</P>\n");
    html::image(&mut s, &it.image, &it.title, (200, 300));
    item_facts(&mut s, c, it);
    s.push_str("<P><B>Related books</B> (bought by the same customers):</P>\n<UL>\n");
    for r in it.related {
        let Some(rel) = c.db.item(r) else { continue };
        s.push_str("<LI>");
        item_link(&mut s, sess, r, rel);
        s.push_str("</LI>\n");
    }
    s.push_str("</UL>\n");
    end(s, sess)
}

/// The page for a write's outcome.
pub fn after(c: &Ctx<'_>, sess: &Session, e: &Event, outcome: Outcome) -> Page {
    match (outcome, e) {
        (Outcome::Refused(why), _) => message(
            match e {
                Event::Cart(_) => "Shopping Cart",
                Event::Login(_) | Event::Register(_) => "Buy Request",
                Event::BuyConfirm(_) => "Buy Confirm",
                Event::AdminConfirm(_) => "Admin Confirm",
            },
            200,
            &why.message(),
            sess,
        ),
        (Outcome::Created(id), Event::Cart(_)) => cart_page(c, sess, id),
        (Outcome::Created(id), Event::Login(_) | Event::Register(_)) => buy_request_page(c, sess, id),
        (Outcome::Created(id), Event::BuyConfirm(_)) => order_confirmed(c, sess, id),
        (Outcome::Created(id), Event::AdminConfirm(_)) => admin_confirmed(c, sess, id),
    }
}
