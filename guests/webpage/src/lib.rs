//! Helpers the guest web applications share: request parameters from the
//! query string and url-encoded bodies ([`Form`]), HTML escaping
//! ([`escape`]), and calendar dates from Unix time ([`date`]). `no_std` +
//! `alloc`, host-tested.

#![no_std]

extern crate alloc;

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// A finished answer of a web application.
#[derive(Debug, PartialEq)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// `text/html` (false: `text/plain`).
    pub html: bool,
    /// The body.
    pub body: String,
}

impl Page {
    /// A plain-text answer (health, errors outside the site).
    pub fn text(status: u16, body: String) -> Page {
        Page { status, html: false, body }
    }

    /// The Content-Type of the body.
    pub fn content_type(&self) -> &'static str {
        if self.html {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        }
    }
}

/// A request parameter that is missing or not what the page needs: the
/// app answers 400 with [`BadParam`]'s message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadParam(pub String);

impl core::fmt::Display for BadParam {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Percent-decodes `s` (`+` is a space). `None` when an escape is broken or
/// the result is not UTF-8.
pub fn decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The parameters of a request: its query string followed by an
/// `application/x-www-form-urlencoded` body, as RUBiS's and TPC-W's forms
/// send them (GET or POST).
#[derive(Debug)]
pub struct Form<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Form<'a> {
    /// The parameters of `target` (path and query) and `body`.
    pub fn new(target: &'a str, body: &'a [u8]) -> Form<'a> {
        let mut pairs = Vec::new();
        let mut add = |s: &'a str| {
            for kv in s.split('&').filter(|kv| !kv.is_empty()) {
                pairs.push(kv.split_once('=').unwrap_or((kv, "")));
            }
        };
        if let Some((_, q)) = target.split_once('?') {
            add(q);
        }
        if let Ok(b) = core::str::from_utf8(body) {
            add(b.trim_end_matches(['\r', '\n']));
        }
        Form { pairs }
    }

    /// The raw (undecoded) value of the first parameter `name`.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The raw values of every parameter `name`, in order (forms may repeat
    /// a name: TPC-W's cart refresh sends one `qty` per line).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &'a str> + '_ {
        let name = alloc::string::String::from(name);
        self.pairs.iter().filter(move |(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The decoded value of `name`; an error for a broken escape.
    pub fn text(&self, name: &str) -> Result<Option<Cow<'a, str>>, BadParam> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => {
                decode(v).map(Some).ok_or_else(|| BadParam(alloc::format!("{name}: broken %-escape or not UTF-8")))
            }
        }
    }

    /// The decoded, non-empty value of `name`, required.
    pub fn need_text(&self, name: &str) -> Result<Cow<'a, str>, BadParam> {
        match self.text(name)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(BadParam(alloc::format!("missing parameter {name}"))),
        }
    }

    /// The number in `name`, if given (a decimal point and what follows are
    /// ignored: RUBiS forms may send prices as `12.00`).
    pub fn number(&self, name: &str) -> Result<Option<i64>, BadParam> {
        let Some(v) = self.text(name)? else {
            return Ok(None);
        };
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        let int = v.split_once('.').map_or(v, |(i, f)| if f.bytes().all(|b| b.is_ascii_digit()) { i } else { v });
        int.parse::<i64>()
            .map(Some)
            .map_err(|_| BadParam(alloc::format!("{name} must be a number, not {:?}", truncate(v, 40))))
    }

    /// The number in `name`, required.
    pub fn need_number(&self, name: &str) -> Result<i64, BadParam> {
        self.number(name)?.ok_or_else(|| BadParam(alloc::format!("missing parameter {name}")))
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Appends `s` with `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Appends Unix time `t` (seconds) as `YYYY-MM-DD hh:mm:ss` (UTC).
pub fn date(out: &mut String, t: i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(out, "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn forms_decode_and_check() {
        let f = Form::new("/p?a=1&name=Great+User%21&bad=%zz&price=12.00&x=1e3", b"b=two&a=9");
        assert_eq!(f.need_number("a"), Ok(1));
        assert_eq!(f.need_text("name").as_deref(), Ok("Great User!"));
        assert_eq!(f.need_text("b").as_deref(), Ok("two"));
        assert!(f.text("bad").is_err());
        assert_eq!(f.number("price"), Ok(Some(12)));
        assert_eq!(f.number("x"), Err(BadParam("x must be a number, not \"1e3\"".into())));
        assert_eq!(f.need_number("nope"), Err(BadParam("missing parameter nope".into())));
        let q = Form::new("/c?qty=3&x=1&qty=5", b"qty=7");
        assert_eq!(q.all("qty").collect::<Vec<_>>(), ["3", "5", "7"]);
        assert_eq!(decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(decode("%ff"), None);
        assert_eq!(decode("%4"), None);
    }

    #[test]
    fn html_is_escaped_and_dates_are_civil() {
        let mut s = String::new();
        escape(&mut s, "<a href=\"x\">&'</a>");
        assert_eq!(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        for (t, want) in [
            (0, "1970-01-01 00:00:00"),
            (951_782_400, "2000-02-29 00:00:00"),
            (1_795_000_000, "2026-11-18 11:06:40"),
            (-1, "1969-12-31 23:59:59"),
        ] {
            let mut s = String::new();
            date(&mut s, t);
            assert_eq!(s, want);
        }
    }
}
