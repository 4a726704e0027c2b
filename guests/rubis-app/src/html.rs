//! The page frame every RUBiS page shares (title, navigation bar, footer),
//! in the spirit of RUBiS's PHP pages, and small writing helpers.

use alloc::string::String;
use core::fmt::Write as _;

use appspec::rubis::{CATEGORY_NAMES, REGION_NAMES};

pub use webpage::Page;

/// Starts a page titled `title`.
pub fn begin(title: &str) -> String {
    let mut s = String::with_capacity(8 << 10);
    let _ = write!(
        s,
        "<html>\n<head>\n<title>RUBiS: {title}</title>\n\
<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n\
<meta name=\"description\" content=\"RUBiS auction site served by a twinkle VM\">\n</head>\n\
<body bgcolor=\"#FFFFFF\" text=\"#000000\" link=\"#003399\" vlink=\"#003399\">\n\
<table width=\"100%\" border=\"0\" cellspacing=\"0\" cellpadding=\"4\" bgcolor=\"#CCCCFF\">\n<tr>\n\
<td width=\"20%\"><a href=\"/PHP/index.html\"><b><font size=\"+2\" color=\"#990000\">RUBiS</font></b></a></td>\n\
<td align=\"center\"><a href=\"/PHP/index.html\"><font size=\"+1\"><b>Home</b></font></a></td>\n\
<td align=\"center\"><a href=\"/PHP/register.html\"><font size=\"+1\"><b>Register</b></font></a></td>\n\
<td align=\"center\"><a href=\"/PHP/browse.html\"><font size=\"+1\"><b>Browse</b></font></a></td>\n\
<td align=\"center\"><a href=\"/PHP/sell.html\"><font size=\"+1\"><b>Sell</b></font></a></td>\n\
<td align=\"center\"><a href=\"/PHP/about_me.html\"><font size=\"+1\"><b>About me</b></font></a></td>\n\
</tr>\n</table>\n<br>\n<table width=\"100%\" border=\"0\" cellspacing=\"0\" cellpadding=\"2\">\n\
<tr><td bgcolor=\"#CCCCFF\" align=\"center\"><font size=\"+2\"><b>{title}</b></font></td></tr>\n</table>\n<br>\n"
    );
    s
}

/// Ends the page and makes it a 200 answer.
pub fn end(mut s: String) -> Page {
    s.push_str(
        "<br><hr>\n<table width=\"100%\" border=\"0\" cellspacing=\"0\" cellpadding=\"2\">\n<tr>\
<td><font size=\"-1\"><a href=\"/PHP/browse.html\">Browse categories and regions</a> | \
<a href=\"/PHP/BrowseCategories.php\">All categories</a> | <a href=\"/PHP/BrowseRegions.php\">All regions</a> | \
<a href=\"/PHP/sell.html\">Sell an item</a> | <a href=\"/PHP/about_me.html\">Your account</a></font></td></tr>\n\
<tr><td><font size=\"-1\"><b>Buying:</b> find an item by <a href=\"/PHP/BrowseCategories.php\">category</a> or by \
<a href=\"/PHP/BrowseRegions.php\">region</a>, bid more than the current best bid before the auction ends, or buy \
it at once when the seller set a buy-now price. <b>Selling:</b> <a href=\"/PHP/register.html\">register</a>, then \
<a href=\"/PHP/sell.html\">describe your item</a>, its initial, reserve and buy-now prices and how many days the \
auction lasts. <b>Trust:</b> after each sale buyers and sellers rate each other; every member's page shows the \
ratings and comments they received.</font></td></tr>\n\
<tr><td><font size=\"-2\">RUBiS auction site benchmark (after the Rice University and ObjectWeb RUBiS), \
served from a twinkle virtual machine; data from the storage tier.</font></td></tr>\n</table>\n</body>\n</html>\n",
    );
    Page { status: 200, html: true, body: s }
}

/// A one-message page (the message decides: "Sorry" sends RUBiS clients
/// back, "ERROR" makes them count an error).
pub fn message(title: &str, status: u16, text: &str) -> Page {
    let mut s = begin(title);
    s.push_str("<h3>");
    webpage::escape(&mut s, text);
    s.push_str("</h3>\n");
    let mut p = end(s);
    p.status = status;
    p
}

/// Appends escaped text.
pub fn text(s: &mut String, t: &str) {
    webpage::escape(s, t);
}

/// Appends a date (record time `t` relative to `epoch`).
pub fn date(s: &mut String, epoch: i64, t: i64) {
    webpage::date(s, epoch.saturating_add(t));
}

/// The name of category `id` (1-20).
pub fn category_name(id: u32) -> Option<&'static str> {
    CATEGORY_NAMES.get((id as usize).checked_sub(1)?).copied()
}

/// The name of region `id` (1-62).
pub fn region_name(id: u32) -> Option<&'static str> {
    REGION_NAMES.get((id as usize).checked_sub(1)?).copied()
}

/// A hidden form field, written as RUBiS's PHP writes it (unquoted), which
/// RUBiS clients search for: `name=minBid value=N>`.
pub fn hidden(s: &mut String, name: &str, value: impl core::fmt::Display) {
    let _ = writeln!(s, "<input type=hidden name={name} value={value}>");
}

/// A login form that goes to `action` with hidden fields.
pub fn login_form(s: &mut String, action: &str, hidden_fields: &[(&str, u64)], what: &str) {
    let _ = write!(
        s,
        "<p>You must log in to {what}. Please enter your nickname and password.</p>\n\
<form action=\"{action}\" method=GET>\n"
    );
    for (k, v) in hidden_fields {
        hidden(s, k, v);
    }
    s.push_str(
        "<table border=0 cellspacing=2 cellpadding=2>\n\
<tr><td align=right><b>Your nickname</b></td><td><input type=text size=20 name=nickname></td></tr>\n\
<tr><td align=right><b>Your password</b></td><td><input type=password size=20 name=password></td></tr>\n\
<tr><td></td><td><input type=submit value=\"Log in!\"></td></tr>\n</table>\n</form>\n\
<p>Not registered yet? <a href=\"/PHP/register.html\">Register now</a>: it takes a minute, \
and you can then bid on items, buy them at once, leave comments about sellers and sell your own items.</p>\n",
    );
}
