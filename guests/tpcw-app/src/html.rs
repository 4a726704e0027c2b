//! The page frame every TPC-W page shares (logo, search bar, navigation,
//! footer), in the spirit of TPC-W's servlet pages, the session's
//! parameters that every link carries, and small writing helpers.

use alloc::string::String;
use core::fmt::Write as _;

use appspec::tpcw::PATHS;

/// Admin Confirm (the servlet paths by name, from [`PATHS`]).
pub const ADMIN_CONFIRM: &str = PATHS[0];
/// Admin Request.
pub const ADMIN_REQUEST: &str = PATHS[1];
/// Best Sellers.
pub const BEST_SELLERS: &str = PATHS[2];
/// Buy Confirm.
pub const BUY_CONFIRM: &str = PATHS[3];
/// Buy Request.
pub const BUY_REQUEST: &str = PATHS[4];
/// Customer Registration.
pub const CUSTOMER_REGISTRATION: &str = PATHS[5];
/// Home.
pub const HOME: &str = PATHS[6];
/// New Products.
pub const NEW_PRODUCTS: &str = PATHS[7];
/// Order Display.
pub const ORDER_DISPLAY: &str = PATHS[8];
/// Order Inquiry.
pub const ORDER_INQUIRY: &str = PATHS[9];
/// Product Detail.
pub const PRODUCT_DETAIL: &str = PATHS[10];
/// Search Request.
pub const SEARCH_REQUEST: &str = PATHS[11];
/// Search Results.
pub const SEARCH_RESULTS: &str = PATHS[12];
/// Shopping Cart.
pub const SHOPPING_CART: &str = PATHS[13];

pub use webpage::Page;

/// What every link of a page carries: the customer and the cart the
/// browser told us about (`C_ID`, `SHOPPING_ID`), and the servlet session
/// id in the path (`;jsessionid=`), as TPC-W's pages do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    /// `C_ID` (which may name no customer).
    pub customer: Option<u32>,
    /// `SHOPPING_ID` (which may name no cart).
    pub cart: Option<u32>,
    /// The servlet session id (letters and digits only).
    pub jsession: Option<String>,
}

impl Session {
    /// Appends the URL of servlet `path` with `query` (may be empty) and
    /// the session's parameters.
    pub fn url(&self, s: &mut String, path: &str, query: &str) {
        s.push_str(path);
        if let Some(j) = &self.jsession {
            s.push_str(";jsessionid=");
            s.push_str(j);
        }
        // A literal `&`, as TPC-W's pages write it: clients that scrape
        // links take them as they are.
        let start = s.len();
        if !query.is_empty() {
            s.push('?');
            s.push_str(query);
        }
        for (k, v) in [("C_ID", self.customer), ("SHOPPING_ID", self.cart)] {
            if let Some(v) = v {
                s.push(if s.len() == start { '?' } else { '&' });
                let _ = write!(s, "{k}={v}");
            }
        }
        if s.len() == start && self.jsession.is_some() {
            s.push('?');
        }
    }

    /// Appends a link to `path` with `query` around `label` (escaped).
    pub fn link(&self, s: &mut String, path: &str, query: &str, label: &str) {
        s.push_str("<A HREF=\"");
        self.url(s, path, query);
        s.push_str("\">");
        text(s, label);
        s.push_str("</A>");
    }

    /// Appends the hidden form fields that carry the session.
    pub fn hidden(&self, s: &mut String) {
        if let Some(c) = self.customer {
            hidden(s, "C_ID", c);
        }
        if let Some(c) = self.cart {
            hidden(s, "SHOPPING_ID", c);
        }
    }

    /// Appends the opening of a form that goes to `path`.
    pub fn form(&self, s: &mut String, path: &str) {
        s.push_str("<FORM ACTION=\"");
        s.push_str(path);
        if let Some(j) = &self.jsession {
            s.push_str(";jsessionid=");
            s.push_str(j);
        }
        s.push_str("\" METHOD=\"get\">\n");
        self.hidden(s);
    }
}

/// Appends a hidden form field, `NAME="k" TYPE="hidden" VALUE="v"` (what
/// TPC-W clients search for).
pub fn hidden(s: &mut String, name: &str, value: impl core::fmt::Display) {
    let _ = writeln!(s, "<INPUT NAME=\"{name}\" TYPE=\"hidden\" VALUE=\"{value}\">");
}

/// Starts a page titled `title` (escaped).
pub fn begin(title: &str, sess: &Session) -> String {
    let mut s = String::with_capacity(8 << 10);
    s.push_str("<HTML>\n<HEAD>\n<TITLE>TPC-W Bookstore: ");
    text(&mut s, title);
    s.push_str(
        "</TITLE>\n<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=utf-8\">\n\
<META NAME=\"description\" CONTENT=\"TPC-W online bookstore served by a twinkle VM\">\n</HEAD>\n\
<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\" LINK=\"#003366\" VLINK=\"#663366\">\n\
<TABLE WIDTH=\"100%\" BORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"4\">\n<TR>\n<TD WIDTH=\"40%\"><A HREF=\"",
    );
    sess.url(&mut s, HOME, "");
    s.push_str(
        "\"><IMG SRC=\"/img0/tpclogo.gif\" ALT=\"TPC-W Bookstore\" WIDTH=\"288\" HEIGHT=\"67\" BORDER=\"0\"></A></TD>\n\
<TD ALIGN=\"right\">",
    );
    sess.form(&mut s, SEARCH_RESULTS);
    s.push_str(
        "<SELECT NAME=\"search_type\">\n<OPTION VALUE=\"author\">Author</OPTION>\n\
<OPTION VALUE=\"title\" SELECTED>Title</OPTION>\n<OPTION VALUE=\"subject\">Subject</OPTION>\n</SELECT>\n\
<INPUT TYPE=\"text\" NAME=\"search_string\" SIZE=\"24\">\n<INPUT TYPE=\"submit\" VALUE=\"Search\">\n</FORM></TD>\n\
</TR>\n</TABLE>\n",
    );
    nav(&mut s, sess);
    s.push_str("<H2 ALIGN=\"center\">");
    text(&mut s, title);
    s.push_str("</H2>\n");
    s
}

fn nav(s: &mut String, sess: &Session) {
    s.push_str("<TABLE WIDTH=\"100%\" BORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"3\" BGCOLOR=\"#DDE6F0\">\n<TR>\n");
    for (path, label) in [
        (HOME, "Home"),
        (SEARCH_REQUEST, "Search"),
        (SHOPPING_CART, "Shopping Cart"),
        (CUSTOMER_REGISTRATION, "Check Out"),
        (ORDER_INQUIRY, "Order Status"),
    ] {
        s.push_str("<TD ALIGN=\"center\"><B>");
        sess.link(s, path, "", label);
        s.push_str("</B></TD>\n");
    }
    s.push_str("</TR>\n</TABLE>\n");
}

/// Ends the page and makes it a 200 answer.
pub fn end(mut s: String, sess: &Session) -> Page {
    s.push_str("<BR><HR>\n");
    nav(&mut s, sess);
    s.push_str(
        "<P><FONT SIZE=\"-1\">Browse by subject from the home page: what is new and what sells best in each of \
twenty-four subjects. Search by title, by author or by subject with the search bar on every page. Add books to your \
shopping cart from their page; check out when you are ready: returning customers sign in with their user name, new \
customers register on the way. Orders ship by air, UPS, FedEx, ship, courier or mail; your order status page shows \
your most recent order.</FONT></P>\n\
<P><FONT SIZE=\"-2\">TPC-W-like online bookstore (after the TPC Benchmark W transactional web e-commerce \
benchmark), served from a twinkle virtual machine; data from the storage tier.</FONT></P>\n</BODY>\n</HTML>\n",
    );
    Page { status: 200, html: true, body: s }
}

/// A one-message page, status `status`.
pub fn message(title: &str, status: u16, msg: &str, sess: &Session) -> Page {
    let mut s = begin(title, sess);
    s.push_str("<H3>");
    text(&mut s, msg);
    s.push_str("</H3>\n");
    let mut p = end(s, sess);
    p.status = status;
    p
}

/// Appends escaped text.
pub fn text(s: &mut String, t: &str) {
    webpage::escape(s, t);
}

/// Appends a date and time (record time `t` relative to `epoch`).
pub fn date(s: &mut String, epoch: i64, t: i64) {
    webpage::date(s, epoch.saturating_add(t));
}

/// Appends a date without the time of day.
pub fn day(s: &mut String, epoch: i64, t: i64) {
    let mut d = String::new();
    webpage::date(&mut d, epoch.saturating_add(t));
    s.push_str(d.split(' ').next().unwrap_or(&d));
}

/// Appends an amount of `cents` as `$d.cc`.
pub fn money(s: &mut String, cents: i64) {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let _ = write!(s, "{sign}${}.{:02}", c / 100, c % 100);
}

/// Appends an image (`path` is relative to the site root: `img<k>/...`).
pub fn image(s: &mut String, path: &str, alt: &str, size: (u32, u32)) {
    s.push_str("<IMG SRC=\"/");
    text(s, path.trim_start_matches('/'));
    s.push_str("\" ALT=\"");
    text(s, alt);
    let _ = write!(s, "\" WIDTH=\"{}\" HEIGHT=\"{}\" BORDER=\"0\">", size.0, size.1);
}
