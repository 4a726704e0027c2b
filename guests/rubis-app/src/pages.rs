//! The 26 interactions (rubis.md's table), each a function from the request
//! parameters and the database to a page. Writes return an [`Event`] for the
//! caller to append to the log; the caller then renders the outcome.
//!
//! Compatibility with RUBiS clients: links carry `itemId=N`, `userId=N`,
//! `to=N` in double-quoted hrefs, the next-page link a literal `&page=N`,
//! hidden fields are unquoted (`name=minBid value=N>`), a page with nothing
//! to show says "Sorry" (clients go back), ids from 0-based clients answer
//! "Sorry" instead of failing.

use alloc::string::String;
use core::fmt::Write as _;

use appspec::rubis::{CATEGORY_NAMES, REGION_NAMES};
use webpage::{BadParam, Form};

use crate::db::Db;
use crate::event::Event;
use crate::gen::DAY;
use crate::html::{self, begin, end, hidden, message, Page};
use crate::model::{Bid, BuyNow, Comment, Item, User};

/// Most rows a listing shows (pages stay within 2-20 KiB).
pub const MAX_ROWS: usize = 25;

/// Longest name, nickname, password or e-mail address of a user.
pub const MAX_FIELD: usize = 100;

/// Context of one request.
pub struct Ctx<'a> {
    /// The database, caught up with the log.
    pub db: &'a Db,
    /// The data set's epoch (Unix seconds).
    pub epoch: i64,
    /// Now, relative to the epoch.
    pub now: i64,
}

fn id(f: &Form<'_>, name: &str) -> Result<u32, BadParam> {
    let n = f.need_number(name)?;
    // Out-of-range ids are answered "Sorry" by the pages, like id 0.
    Ok(u32::try_from(n).unwrap_or(0))
}

fn opt_id(f: &Form<'_>, name: &str) -> Result<Option<u32>, BadParam> {
    Ok(f.number(name)?.map(|n| u32::try_from(n).unwrap_or(0)))
}

fn sorry(title: &str, text: &str) -> Page {
    message(title, 200, text)
}

/// Home (index.html).
pub fn home() -> Page {
    let mut s = begin("Welcome to RUBiS's home page!");
    s.push_str(
        "<p>RUBiS is an auction site prototype modelled after eBay.com. It is used to evaluate application \
design patterns and application servers' performance and scalability. This copy runs inside a twinkle virtual \
machine: its catalogue was loaded from the storage tier when the machine started, and every bid, purchase, \
comment and registration is stored there before you see the answer.</p>\n\
<h3>What you can do</h3>\n<ul>\n\
<li><a href=\"/PHP/register.html\">Register</a> to become a member and bid, buy or sell.</li>\n\
<li><a href=\"/PHP/browse.html\">Browse</a> the items on sale by category or by region.</li>\n\
<li><a href=\"/PHP/sell.html\">Sell</a> one of your items: choose a category, describe it, set a price.</li>\n\
<li><a href=\"/PHP/about_me.html\">About me</a>: your bids, purchases, sales and the comments about you.</li>\n\
</ul>\n<h3>How auctions work</h3>\n<p>Each item has an initial price and may have a reserve price (below it, \
the item is not sold) and a buy-now price (pay it and the item is yours at once). Bids must beat the current \
best bid; the best bid when the auction ends wins. After a sale, buyers and sellers can leave a comment and a \
rating about each other, which everyone can see on their user page.</p>\n",
    );
    end(s)
}

/// Register (register.html): the registration form.
pub fn register_form() -> Page {
    let mut s = begin("Register to RUBiS");
    s.push_str(
        "<form action=\"/PHP/RegisterUser.php\" method=GET>\n<table border=0 cellspacing=2 cellpadding=2>\n\
<tr><td align=right><b>First name</b></td><td><input type=text size=20 name=firstname></td></tr>\n\
<tr><td align=right><b>Last name</b></td><td><input type=text size=20 name=lastname></td></tr>\n\
<tr><td align=right><b>Nickname</b></td><td><input type=text size=20 name=nickname></td></tr>\n\
<tr><td align=right><b>E-mail</b></td><td><input type=text size=40 name=email></td></tr>\n\
<tr><td align=right><b>Password</b></td><td><input type=password size=20 name=password></td></tr>\n\
<tr><td align=right><b>Region</b></td><td><select name=region>\n",
    );
    for r in REGION_NAMES {
        s.push_str("<option value=\"");
        html::text(&mut s, r);
        s.push_str("\">");
        html::text(&mut s, r);
        s.push_str("</option>\n");
    }
    s.push_str("</select></td></tr>\n<tr><td></td><td><input type=submit value=\"Register now!\"></td></tr>\n</table>\n</form>\n");
    end(s)
}

/// RegisterUser: checks the form; the event to append.
pub fn register_user(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let region_name = f.need_text("region")?;
    let Some(region) = REGION_NAMES.iter().position(|r| *r == region_name) else {
        return Ok(Err(sorry("Register", "Sorry, this region does not exist.")));
    };
    // RUBiS's columns are varchar(20-50): every instance keeps every user
    // in memory, so a field's size is bounded here.
    let field = |name: &str| -> Result<alloc::borrow::Cow<'_, str>, BadParam> {
        let v = f.need_text(name)?;
        if v.len() > MAX_FIELD {
            return Err(BadParam(alloc::format!("{name} is longer than {MAX_FIELD} bytes")));
        }
        Ok(v)
    };
    let nickname = field("nickname")?;
    if c.db.user_by_nickname(&nickname).is_some() {
        return Ok(Err(message("Register", 200, &crate::event::Refusal::NicknameTaken.message())));
    }
    Ok(Ok(Event::RegisterUser(User {
        firstname: field("firstname")?.into(),
        lastname: field("lastname")?.into(),
        nickname: nickname.into(),
        password: field("password")?.into(),
        email: field("email")?.into(),
        rating: 0,
        balance: 0,
        created: c.now,
        region: region as u32 + 1,
    })))
}

/// The page after a registration took effect.
pub fn registered(c: &Ctx<'_>, id: u32) -> Page {
    let Some(u) = c.db.user(id) else {
        return sorry("Register", "Sorry, this user does not exist.");
    };
    let mut s = begin("Your registration has been processed successfully");
    let _ = write!(s, "<h3>Welcome ");
    html::text(&mut s, &u.nickname);
    let _ = write!(s, "</h3>\n<p>RUBiS has stored the following information about you:</p>\n<table>\n");
    for (k, v) in
        [("First name", &u.firstname), ("Last name", &u.lastname), ("Nickname", &u.nickname), ("E-mail", &u.email)]
    {
        let _ = write!(s, "<tr><td><b>{k}</b></td><td>");
        html::text(&mut s, v);
        s.push_str("</td></tr>\n");
    }
    let _ = write!(s, "<tr><td><b>User id</b></td><td>{id}</td></tr>\n<tr><td><b>Region</b></td><td>");
    html::text(&mut s, html::region_name(u.region).unwrap_or("?"));
    s.push_str(
        "</td></tr>\n</table>\n<p>Your account was created with a rating of 0 and a balance of 0. \
You can now <a href=\"/PHP/browse.html\">browse</a> the items on sale, bid on them, or \
<a href=\"/PHP/sell.html\">sell</a> your own.</p>\n",
    );
    end(s)
}

/// Browse (browse.html).
pub fn browse() -> Page {
    let mut s = begin("Browse");
    s.push_str(
        "<p>Find the items on sale by the category they are listed in, or by the region their seller lives in.</p>\n\
<ul>\n<li><a href=\"/PHP/BrowseCategories.php\">Browse all items by category</a>: twenty categories, \
from Antiques &amp; Art to Everything Else.</li>\n\
<li><a href=\"/PHP/BrowseRegions.php\">Browse all items by region</a>: sixty-two regions of the United States; \
pick one, then a category.</li>\n</ul>\n\
<p>Listings show the items whose auction has not ended yet, the ones that end soonest first, twenty-five to a \
page, with their current best bid and the number of bids so far. Click an item's name to see its description, \
its seller and its bid history, or go straight to bidding.</p>\n",
    );
    end(s)
}

/// BrowseCategories (all three uses: plain, in a region, to sell an item).
pub fn browse_categories(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    if let Some(nick) = f.text("nickname")? {
        // SelectCategoryToSellItem: log in, then categories linking to the sell form.
        let user = match login(c, &nick, f)? {
            Ok(u) => u,
            Err(p) => return Ok(p),
        };
        let mut s = begin("Select the category of the item you want to sell");
        s.push_str("<p>Choose the category your item fits best:</p>\n<ul>\n");
        for (i, name) in CATEGORY_NAMES.iter().enumerate() {
            let _ = write!(s, "<li><a href=\"/PHP/SellItemForm.php?category={}&user={user}\">", i + 1);
            html::text(&mut s, name);
            s.push_str("</a></li>\n");
        }
        s.push_str("</ul>\n");
        return Ok(end(s));
    }
    let region = match f.text("region")? {
        Some(name) => match REGION_NAMES.iter().position(|r| *r == name) {
            Some(r) => Some(r as u32 + 1),
            None => return Ok(sorry("Browse categories", "Sorry, this region does not exist.")),
        },
        None => None,
    };
    let mut s = begin(if region.is_some() { "Categories in this region" } else { "All categories" });
    if let Some(r) = region {
        s.push_str("<p>Items sold by members living in ");
        html::text(&mut s, html::region_name(r).unwrap_or("?"));
        s.push_str(":</p>\n");
    }
    s.push_str("<ul>\n");
    let mut listed = 0;
    for (i, name) in CATEGORY_NAMES.iter().enumerate() {
        // In a region, only the categories with items on sale there (a
        // client following links never lands on an empty listing).
        if let Some(r) = region {
            if c.db.active_items(i as u32 + 1, Some(r), c.now, 0, 1).is_empty() {
                continue;
            }
        }
        listed += 1;
        let _ = match region {
            Some(r) => {
                write!(s, "<li><a href=\"/PHP/SearchItemsByRegion.php?category={}&region={r}&categoryName=", i + 1)
            }
            None => write!(s, "<li><a href=\"/PHP/SearchItemsByCategory.php?category={}&categoryName=", i + 1),
        };
        let mut enc = String::new();
        appspec::rubis::push_escaped(&mut enc, name);
        s.push_str(&enc);
        s.push_str("\">");
        html::text(&mut s, name);
        s.push_str("</a></li>\n");
    }
    if listed == 0 {
        return Ok(sorry("Browse categories", "Sorry, but there are no items on sale in this region."));
    }
    s.push_str("</ul>\n");
    Ok(end(s))
}

/// BrowseRegions.
pub fn browse_regions() -> Page {
    let mut s = begin("All regions");
    s.push_str("<p>Choose the region you want to browse items in:</p>\n<ul>\n");
    for r in REGION_NAMES {
        let mut enc = String::new();
        appspec::rubis::push_escaped(&mut enc, r);
        let _ = write!(s, "<li><a href=\"/PHP/BrowseCategories.php?region={enc}\">");
        html::text(&mut s, r);
        s.push_str("</a></li>\n");
    }
    s.push_str("</ul>\n");
    end(s)
}

/// SearchItemsByCategory and SearchItemsByRegion.
pub fn search_items(c: &Ctx<'_>, f: &Form<'_>, by_region: bool) -> Result<Page, BadParam> {
    let category = id(f, "category")?;
    let region = if by_region { Some(id(f, "region")?) } else { None };
    let page = opt_id(f, "page")?.unwrap_or(0) as usize;
    let per_page = (opt_id(f, "nbOfItems")?.unwrap_or(MAX_ROWS as u32) as usize).clamp(1, MAX_ROWS);
    let title = "Items on sale";
    let Some(cat_name) = html::category_name(category) else {
        return Ok(sorry(title, "Sorry, but this category does not exist."));
    };
    if region.is_some_and(|r| html::region_name(r).is_none()) {
        return Ok(sorry(title, "Sorry, but this region does not exist."));
    }
    let ids = c.db.active_items(category, region, c.now, page.saturating_mul(per_page), per_page);
    if ids.is_empty() {
        return Ok(sorry(
            title,
            if page == 0 {
                "Sorry, but there are no items available in this category!"
            } else {
                "Sorry, but there are no more items available in this category!"
            },
        ));
    }
    let mut s = begin(title);
    s.push_str("<h3>Items in category ");
    html::text(&mut s, cat_name);
    if let Some(r) = region {
        s.push_str(" in region ");
        html::text(&mut s, html::region_name(r).unwrap_or("?"));
    }
    s.push_str(
        "</h3>\n<table border=1 cellspacing=0 cellpadding=3 width=\"100%\">\n\
<tr bgcolor=\"#CCCCFF\"><th>Designation</th><th>Price</th><th>Bids</th><th>End date</th><th>Bid now</th></tr>\n",
    );
    for i in &ids {
        let Some(it) = c.db.item(*i) else { continue };
        let _ = write!(s, "<tr><td><a href=\"/PHP/ViewItem.php?itemId={i}\">");
        html::text(&mut s, &it.name);
        let price = if it.nb_of_bids > 0 { it.max_bid } else { it.initial_price };
        let _ = write!(s, "</a></td><td>{price}</td><td>{}</td><td>", it.nb_of_bids);
        html::date(&mut s, c.epoch, it.end);
        let _ = writeln!(s, "</td><td><a href=\"/PHP/PutBidAuth.php?itemId={i}\">Bid now!</a></td></tr>");
    }
    s.push_str("</table>\n<p>");
    let mut name = String::new();
    appspec::rubis::push_escaped(&mut name, cat_name);
    let base = match region {
        Some(r) => alloc::format!("/PHP/SearchItemsByRegion.php?category={category}&region={r}&categoryName={name}"),
        None => alloc::format!("/PHP/SearchItemsByCategory.php?category={category}&categoryName={name}"),
    };
    if page > 0 {
        let _ = write!(s, "<a href=\"{base}&page={}&nbOfItems={per_page}\">Previous page</a> ", page - 1);
    }
    if ids.len() == per_page {
        let _ = write!(s, "<a href=\"{base}&page={}&nbOfItems={per_page}\">Next page</a>", page + 1);
    }
    s.push_str("</p>\n");
    Ok(end(s))
}

fn item_facts(s: &mut String, c: &Ctx<'_>, id: u32, it: &Item) {
    let ended = it.end < c.now;
    let _ = write!(s, "<table border=0 cellspacing=2 cellpadding=2>\n<tr><td><b>Item</b></td><td>");
    html::text(s, &it.name);
    let price = if it.nb_of_bids > 0 { it.max_bid } else { it.initial_price };
    let _ = write!(
        s,
        " (item {id})</td></tr>\n<tr><td><b>{}</b></td><td>{price}</td></tr>\n<tr><td><b>Quantity</b></td><td>{}</td></tr>\n",
        if ended { "Final price" } else { "Current price" },
        it.quantity
    );
    let _ = write!(
        s,
        "<tr><td><b>First bid</b></td><td>{}</td></tr>\n<tr><td><b># of bids</b></td><td>{} \
(<a href=\"/PHP/ViewBidHistory.php?itemId={id}\">bid history</a>)</td></tr>\n",
        it.initial_price, it.nb_of_bids
    );
    if it.reserve_price > 0 {
        let met = it.max_bid >= it.reserve_price;
        let _ = writeln!(s, "<tr><td><b>Reserve</b></td><td>{}</td></tr>", if met { "met" } else { "not met yet" });
    }
    if it.buy_now > 0 {
        let _ = writeln!(s, "<tr><td><b>Buy now</b></td><td>{}</td></tr>", it.buy_now);
    }
    s.push_str("<tr><td><b>Seller</b></td><td>");
    match c.db.user(it.seller) {
        Some(u) => {
            let _ = write!(s, "<a href=\"/PHP/ViewUserInfo.php?userId={}\">", it.seller);
            html::text(s, &u.nickname);
            let _ = write!(
                s,
                "</a> (rating {}) (<a href=\"/PHP/PutCommentAuth.php?to={}&itemId={id}\">Leave a comment on this user</a>)",
                u.rating, it.seller
            );
        }
        None => s.push_str("unknown"),
    }
    s.push_str("</td></tr>\n<tr><td><b>Started</b></td><td>");
    html::date(s, c.epoch, it.start);
    s.push_str("</td></tr>\n<tr><td><b>Ends</b></td><td>");
    html::date(s, c.epoch, it.end);
    s.push_str("</td></tr>\n</table>\n");
}

/// ViewItem.
pub fn view_item(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "itemId")?;
    let Some(it) = c.db.item(i) else {
        return Ok(sorry("View item", "Sorry, this item does not exist."));
    };
    let mut s = begin("View item");
    item_facts(&mut s, c, i, it);
    if it.end >= c.now {
        let _ = write!(s, "<p><a href=\"/PHP/PutBidAuth.php?itemId={i}\">Bid now!</a>");
        if it.buy_now > 0 {
            let _ = write!(s, " or <a href=\"/PHP/BuyNowAuth.php?itemId={i}\">buy it now for {}</a>", it.buy_now);
        }
        s.push_str("</p>\n");
    } else {
        s.push_str("<p>This auction has ended.</p>\n");
    }
    s.push_str("<h3>Item description</h3>\n<p>");
    html::text(&mut s, &it.description);
    s.push_str("</p>\n");
    Ok(end(s))
}

/// ViewUserInfo.
pub fn view_user_info(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let uid = id(f, "userId")?;
    let Some(u) = c.db.user(uid) else {
        return Ok(sorry("View user information", "Sorry, this user does not exist."));
    };
    let mut s = begin("View user information");
    user_facts(&mut s, c, u);
    comments_about(&mut s, c, uid);
    Ok(end(s))
}

fn user_facts(s: &mut String, c: &Ctx<'_>, u: &User) {
    s.push_str("<table border=0 cellspacing=2 cellpadding=2>\n<tr><td><b>Nickname</b></td><td>");
    html::text(s, &u.nickname);
    s.push_str("</td></tr>\n<tr><td><b>Name</b></td><td>");
    html::text(s, &u.firstname);
    s.push(' ');
    html::text(s, &u.lastname);
    s.push_str("</td></tr>\n<tr><td><b>Member since</b></td><td>");
    html::date(s, c.epoch, u.created);
    let _ =
        write!(s, "</td></tr>\n<tr><td><b>Rating</b></td><td>{}</td></tr>\n<tr><td><b>Region</b></td><td>", u.rating);
    html::text(s, html::region_name(u.region).unwrap_or("?"));
    s.push_str("</td></tr>\n</table>\n");
}

fn comments_about(s: &mut String, c: &Ctx<'_>, uid: u32) {
    let list = &c.db.user_index[uid as usize - 1].comments;
    if list.is_empty() {
        s.push_str("<h3>There is no comment for this user.</h3>\n");
        return;
    }
    let _ = writeln!(s, "<h3>Comments about this user ({} in all, latest first)</h3>\n<dl>", list.len());
    for cid in list.iter().rev().take(10) {
        let Some(cm) = c.db.comments.get(*cid as usize - 1) else { continue };
        let _ = write!(s, "<dt><a href=\"/PHP/ViewUserInfo.php?userId={}\">", cm.from);
        html::text(s, c.db.user(cm.from).map_or("?", |u| &u.nickname));
        let _ = write!(s, "</a> wrote (rating {}) on ", cm.rating);
        html::date(s, c.epoch, cm.date);
        s.push_str("<dd>");
        let shown = cm.text.char_indices().nth(400).map_or(&*cm.text, |(i, _)| &cm.text[..i]);
        html::text(s, shown);
        s.push('\n');
    }
    s.push_str("</dl>\n");
}

/// ViewBidHistory.
pub fn view_bid_history(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "itemId")?;
    let Some(it) = c.db.item(i) else {
        return Ok(sorry("Bid history", "Sorry, this item does not exist."));
    };
    let mut s = begin("Bid history");
    s.push_str("<h3>Bid history of ");
    html::text(&mut s, &it.name);
    s.push_str("</h3>\n");
    let bids = &c.db.item_bids[i as usize - 1];
    if bids.is_empty() {
        s.push_str("<p>There is no bid for this item yet.</p>\n");
        item_facts(&mut s, c, i, it);
        return Ok(end(s));
    }
    s.push_str("<table border=1 cellspacing=0 cellpadding=3>\n<tr bgcolor=\"#CCCCFF\"><th>User</th><th>Bid amount</th><th>Date of bid</th></tr>\n");
    for b in bids.iter().rev().take(MAX_ROWS * 2) {
        let Some(bid) = c.db.bids.get(*b as usize - 1) else { continue };
        let _ = write!(s, "<tr><td><a href=\"/PHP/ViewUserInfo.php?userId={}\">", bid.user);
        html::text(&mut s, c.db.user(bid.user).map_or("?", |u| &u.nickname));
        let _ = write!(s, "</a></td><td>{}</td><td>", bid.bid);
        html::date(&mut s, c.epoch, bid.date);
        s.push_str("</td></tr>\n");
    }
    s.push_str("</table>\n");
    item_facts(&mut s, c, i, it);
    Ok(end(s))
}

/// BuyNowAuth, PutBidAuth, PutCommentAuth: login forms.
pub fn auth_form(f: &Form<'_>, state: u8) -> Result<Page, BadParam> {
    let item = u64::from(id(f, "itemId")?);
    Ok(match state {
        12 => {
            let mut s = begin("Buy now: log in");
            html::login_form(&mut s, "/PHP/BuyNow.php", &[("itemId", item)], "buy this item");
            end(s)
        }
        15 => {
            let mut s = begin("Bid: log in");
            html::login_form(&mut s, "/PHP/PutBid.php", &[("itemId", item)], "bid on this item");
            end(s)
        }
        _ => {
            let to = u64::from(id(f, "to")?);
            let mut s = begin("Comment: log in");
            html::login_form(&mut s, "/PHP/PutComment.php", &[("itemId", item), ("to", to)], "leave a comment");
            end(s)
        }
    })
}

/// The user logging in with `nickname` and the form's password, or the page to answer.
fn login(c: &Ctx<'_>, nickname: &str, f: &Form<'_>) -> Result<Result<u32, Page>, BadParam> {
    let password = f.need_text("password")?;
    match c.db.user_by_nickname(nickname) {
        Some(u) if c.db.user(u).is_some_and(|user| *user.password == *password) => Ok(Ok(u)),
        _ => Ok(Err(message(
            "Log in",
            200,
            "You don't have an account on RUBiS with this nickname and password. You have to register first.",
        ))),
    }
}

fn login_from(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<u32, Page>, BadParam> {
    let nick = f.need_text("nickname")?;
    login(c, &nick, f)
}

/// BuyNow: the purchase form.
pub fn buy_now_form(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "itemId")?;
    let user = match login_from(c, f)? {
        Ok(u) => u,
        Err(p) => return Ok(p),
    };
    let Some(it) = c.db.item(i) else {
        return Ok(sorry("Buy now", "Sorry, this item does not exist."));
    };
    let mut s = begin("Buy now");
    item_facts(&mut s, c, i, it);
    if it.end < c.now || it.quantity == 0 {
        s.push_str("<h3>This auction has ended: the item can no longer be bought.</h3>\n");
        return Ok(end(s));
    }
    let price = if it.buy_now > 0 { it.buy_now } else { Db::minimum_bid(it) };
    let _ = write!(
        s,
        "<p>You are about to buy this item for {price} each.</p>\n<form action=\"/PHP/StoreBuyNow.php\" method=GET>\n"
    );
    hidden(&mut s, "itemId", i);
    hidden(&mut s, "userId", user);
    hidden(&mut s, "maxQty", it.quantity);
    let _ = write!(s, "<p>Quantity (at most {}): <input type=text size=5 name=qty value=1>\n<input type=submit value=\"Buy now!\"></p>\n</form>\n", it.quantity);
    Ok(end(s))
}

/// StoreBuyNow: the event.
pub fn store_buy_now(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let (item, buyer) = (id(f, "itemId")?, id(f, "userId")?);
    let qty = id(f, "qty")?;
    let max_qty = opt_id(f, "maxQty")?.unwrap_or(qty);
    if qty == 0 || qty > max_qty {
        return Ok(Err(message(
            "Buy now",
            200,
            "Not stored: you cannot buy 0 items or more items than are available.",
        )));
    }
    Ok(Ok(Event::BuyNow(BuyNow { buyer, item, qty, date: c.now })))
}

/// PutBid: the bid form (carries `minBid` and `maxQty`).
pub fn put_bid_form(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let i = id(f, "itemId")?;
    let user = match login_from(c, f)? {
        Ok(u) => u,
        Err(p) => return Ok(p),
    };
    let Some(it) = c.db.item(i) else {
        return Ok(sorry("Bid", "Sorry, this item does not exist."));
    };
    let mut s = begin("Bid on an item");
    item_facts(&mut s, c, i, it);
    if it.end < c.now {
        s.push_str("<h3>This auction has ended: bids are closed.</h3>\n");
        return Ok(end(s));
    }
    let min = Db::minimum_bid(it);
    let _ = write!(
        s,
        "<p>Your bid must be at least {min}. You may also give the most you would pay: \
we bid for you up to it.</p>\n<form action=\"/PHP/StoreBid.php\" method=GET>\n"
    );
    hidden(&mut s, "itemId", i);
    hidden(&mut s, "userId", user);
    hidden(&mut s, "minBid", min);
    hidden(&mut s, "maxQty", it.quantity);
    s.push_str(
        "<table>\n<tr><td>Your bid</td><td><input type=text size=10 name=bid></td></tr>\n\
<tr><td>Your maximum bid</td><td><input type=text size=10 name=maxBid></td></tr>\n\
<tr><td>Quantity</td><td><input type=text size=5 name=qty value=1></td></tr>\n\
<tr><td></td><td><input type=submit value=\"Bid now!\"></td></tr>\n</table>\n</form>\n",
    );
    Ok(end(s))
}

/// StoreBid: the event (the form's rules first, as RUBiS checks them).
pub fn store_bid(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let (item, user) = (id(f, "itemId")?, id(f, "userId")?);
    let (min_bid, bid) = (f.need_number("minBid")?, f.need_number("bid")?);
    let max_bid = f.number("maxBid")?.unwrap_or(bid);
    let qty = opt_id(f, "qty")?.unwrap_or(1);
    let max_qty = opt_id(f, "maxQty")?.unwrap_or(qty);
    if qty == 0 || qty > max_qty {
        return Ok(Err(message("Bid", 200, "Not stored: you cannot bid on 0 items or more items than are available.")));
    }
    if bid < min_bid {
        return Ok(Err(message("Bid", 200, "Not stored: your bid must be at least the minimum bid.")));
    }
    if max_bid < bid {
        return Ok(Err(message("Bid", 200, "Not stored: your maximum bid must be at least your bid.")));
    }
    let (Ok(bid), Ok(max_bid)) = (u32::try_from(bid), u32::try_from(max_bid)) else {
        return Err(BadParam("bid and maxBid must be between 0 and 4294967295".into()));
    };
    Ok(Ok(Event::Bid(Bid { user, item, qty, bid, max_bid, date: c.now })))
}

/// PutComment: the comment form (carries `to`).
pub fn put_comment_form(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let (i, to) = (id(f, "itemId")?, id(f, "to")?);
    let from = match login_from(c, f)? {
        Ok(u) => u,
        Err(p) => return Ok(p),
    };
    let (Some(it), Some(to_user)) = (c.db.item(i), c.db.user(to)) else {
        return Ok(sorry("Comment", "Sorry, this item or user does not exist."));
    };
    let mut s = begin("Leave a comment");
    s.push_str("<p>You are about to leave a comment about ");
    html::text(&mut s, &to_user.nickname);
    s.push_str(" on the sale of ");
    html::text(&mut s, &it.name);
    s.push_str(".</p>\n<form action=\"/PHP/StoreComment.php\" method=GET>\n");
    hidden(&mut s, "to", to);
    hidden(&mut s, "from", from);
    hidden(&mut s, "itemId", i);
    s.push_str("<p>Rating: <select name=rating>\n<option value=\"5\">Excellent</option>\n<option value=\"3\">Average</option>\n\
<option value=\"0\" selected>Neutral</option>\n<option value=\"-3\">Below average</option>\n<option value=\"-5\">Bad</option>\n</select></p>\n\
<p><textarea rows=10 cols=60 name=comment>Write your comment here</textarea></p>\n\
<p><input type=submit value=\"Post this comment now!\"></p>\n</form>\n");
    Ok(end(s))
}

/// StoreComment: the event.
pub fn store_comment(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let (item, to, from) = (id(f, "itemId")?, id(f, "to")?, id(f, "from")?);
    let rating = f.need_number("rating")?;
    if !(-5..=5).contains(&rating) {
        return Err(BadParam("rating must be between -5 and 5".into()));
    }
    let text = f.need_text("comment")?;
    if text.len() > 8192 {
        return Err(BadParam("comment is longer than 8192 bytes".into()));
    }
    Ok(Ok(Event::Comment(Comment { from, to, item, rating, date: c.now, text: text.into() })))
}

/// Sell (sell.html).
pub fn sell() -> Page {
    let mut s = begin("Sell your item");
    s.push_str("<p>To sell an item, log in; then choose its category, describe it and set its prices.</p>\n");
    html::login_form(&mut s, "/PHP/BrowseCategories.php", &[], "sell an item");
    end(s)
}

/// SellItemForm.
pub fn sell_item_form(f: &Form<'_>) -> Result<Page, BadParam> {
    let (category, user) = (id(f, "category")?, id(f, "user")?);
    let Some(name) = html::category_name(category) else {
        return Ok(sorry("Sell your item", "Sorry, this category does not exist."));
    };
    let mut s = begin("Sell your item");
    s.push_str("<p>Category: ");
    html::text(&mut s, name);
    s.push_str("</p>\n<form action=\"/PHP/RegisterItem.php\" method=GET>\n");
    hidden(&mut s, "categoryId", category);
    hidden(&mut s, "userId", user);
    s.push_str(
        "<table>\n<tr><td>Name</td><td><input type=text size=60 name=name></td></tr>\n\
<tr><td>Description</td><td><textarea rows=20 cols=80 name=description>Describe your item here</textarea></td></tr>\n\
<tr><td>Initial price</td><td><input type=text size=10 name=initialPrice></td></tr>\n\
<tr><td>Reserve price</td><td><input type=text size=10 name=reservePrice> (optional)</td></tr>\n\
<tr><td>Buy now price</td><td><input type=text size=10 name=buyNow> (optional)</td></tr>\n\
<tr><td>Duration (days)</td><td><input type=text size=5 name=duration value=7></td></tr>\n\
<tr><td>Quantity</td><td><input type=text size=5 name=quantity value=1></td></tr>\n\
<tr><td></td><td><input type=submit value=\"Register item!\"></td></tr>\n</table>\n</form>\n",
    );
    Ok(end(s))
}

/// RegisterItem: the event.
pub fn register_item(c: &Ctx<'_>, f: &Form<'_>) -> Result<Result<Event, Page>, BadParam> {
    let (seller, category) = (id(f, "userId")?, id(f, "categoryId")?);
    let name = f.need_text("name")?;
    let description = f.text("description")?.unwrap_or_default();
    if name.len() > 100 || description.len() > 8192 {
        return Err(BadParam("name must be at most 100 bytes and description at most 8192".into()));
    }
    let price = |k: &str, required: bool| -> Result<u32, BadParam> {
        let v = if required { Some(f.need_number(k)?) } else { f.number(k)? };
        u32::try_from(v.unwrap_or(0)).map_err(|_| BadParam(alloc::format!("{k} must be between 0 and 4294967295")))
    };
    let initial_price = price("initialPrice", true)?;
    let reserve_price = price("reservePrice", false)?;
    let buy_now = price("buyNow", false)?;
    let duration = f.need_number("duration")?;
    let quantity = price("quantity", true)?;
    if !(1..=365).contains(&duration) || quantity == 0 {
        return Err(BadParam("duration must be 1-365 days and quantity at least 1".into()));
    }
    Ok(Ok(Event::RegisterItem(Item {
        name: name.into(),
        description: description.into(),
        initial_price,
        quantity,
        reserve_price,
        buy_now,
        start: c.now,
        end: c.now + duration * DAY,
        seller,
        category,
        nb_of_bids: 0,
        max_bid: 0,
    })))
}

/// AboutMe form (about_me.html).
pub fn about_me_form() -> Page {
    let mut s = begin("About me");
    s.push_str("<p>See your bids, the items you won, bought and sell, and what other members said about you.</p>\n");
    html::login_form(&mut s, "/PHP/AboutMe.php", &[], "see your account");
    end(s)
}

/// AboutMe.
pub fn about_me(c: &Ctx<'_>, f: &Form<'_>) -> Result<Page, BadParam> {
    let uid = match login_from(c, f)? {
        Ok(u) => u,
        Err(p) => return Ok(p),
    };
    let Some(u) = c.db.user(uid) else {
        return Ok(sorry("About me", "Sorry, this user does not exist."));
    };
    let ix = &c.db.user_index[uid as usize - 1];
    let month = c.now - 30 * DAY;
    let mut s = begin("About me");
    user_facts(&mut s, c, u);
    let _ = writeln!(s, "<p>Balance: {}</p>", u.balance);
    let list = |s: &mut String, title: &str, items: &mut dyn Iterator<Item = (u32, u32)>| {
        let _ = writeln!(s, "<h3>{title}</h3>\n<table border=1 cellspacing=0 cellpadding=3>");
        let mut n = 0;
        for (item, price) in items.take(MAX_ROWS / 2) {
            let Some(it) = c.db.item(item) else { continue };
            let _ = write!(s, "<tr><td><a href=\"/PHP/ViewItem.php?itemId={item}\">");
            html::text(s, &it.name);
            let _ = write!(s, "</a></td><td>{price}</td><td>");
            html::date(s, c.epoch, it.end);
            s.push_str("</td></tr>\n");
            n += 1;
        }
        if n == 0 {
            s.push_str("<tr><td>None.</td></tr>\n");
        }
        s.push_str("</table>\n");
    };
    let now = c.now;
    list(&mut s, "Items you are bidding on", &mut bid_items(c, ix, move |_, it| it.end >= now));
    list(
        &mut s,
        "Items you won in the past 30 days",
        &mut bid_items(c, ix, move |b, it| it.end < now && it.end >= month && b.bid == it.max_bid),
    );
    list(
        &mut s,
        "Items you bought in the past 30 days",
        &mut ix.bought.iter().rev().filter_map(|b| {
            let p = c.db.buy_nows.get(*b as usize - 1)?;
            (p.date >= month).then_some((p.item, p.qty))
        }),
    );
    let selling = |active: bool| {
        ix.selling.iter().rev().filter_map(move |i| {
            let it = c.db.item(*i)?;
            let keep = if active { it.end >= c.now } else { it.end < c.now && it.end >= month && it.nb_of_bids > 0 };
            keep.then_some((*i, if it.nb_of_bids > 0 { it.max_bid } else { it.initial_price }))
        })
    };
    list(&mut s, "Items you are selling", &mut selling(true));
    list(&mut s, "Items you sold in the past 30 days", &mut selling(false));
    comments_about(&mut s, c, uid);
    Ok(end(s))
}

/// The items of a user's bids that `pred` keeps, latest bid first, with the bid.
fn bid_items<'a>(
    c: &'a Ctx<'a>,
    ix: &'a crate::db::UserIndex,
    pred: impl Fn(&Bid, &Item) -> bool + 'a,
) -> impl Iterator<Item = (u32, u32)> + 'a {
    ix.bids.iter().rev().filter_map(move |b| {
        let bid = c.db.bids.get(*b as usize - 1)?;
        let it = c.db.item(bid.item)?;
        pred(bid, it).then_some((bid.item, bid.bid))
    })
}
