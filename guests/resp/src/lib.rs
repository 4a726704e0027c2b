//! RESP2, the Redis protocol: commands are arrays of bulk strings; replies
//! are simple strings, errors, integers, bulk strings (or null) and arrays
//! (or null), possibly nested. [`command`] encodes a command into a buffer;
//! [`parse`] takes one whole reply from the front of a buffer, or says that
//! more bytes are needed, so a client can read pipelined replies as they
//! arrive. Every length in a reply is checked before it is used: a server
//! (or a corrupted stream) cannot make the parser read out of bounds or
//! allocate without limit.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

/// A reply from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`: the command failed.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` data (`None`: the null bulk string, `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies (`None`: the null array, `*-1`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bytes of a bulk or simple string reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply (or of a bulk string holding one).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            Reply::Bulk(Some(b)) => core::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// Why bytes are not a valid reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// An unknown type byte.
    Type(u8),
    /// A length or integer that is not a number, or out of range.
    Number,
    /// A line or bulk string not ended by CRLF.
    Framing,
    /// Nested deeper than [`MAX_DEPTH`] or longer than the limits.
    TooLarge,
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Type(b) => write!(f, "unknown RESP type byte {b:#04x}"),
            ParseError::Number => f.write_str("a RESP length or integer is not a number"),
            ParseError::Framing => f.write_str("a RESP line is not ended by CRLF"),
            ParseError::TooLarge => f.write_str("a RESP reply is nested too deep or too long"),
        }
    }
}

/// Deepest nesting of arrays accepted.
pub const MAX_DEPTH: usize = 16;
/// Longest bulk string accepted (Redis's own limit is 512 MiB).
pub const MAX_BULK: usize = 512 << 20;
/// Most elements in one array.
pub const MAX_ARRAY: usize = 1 << 24;

/// Appends the command `args` (an array of bulk strings).
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_num(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        push_num(out, a.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
}

/// One whole reply from the front of `buf`: `Ok(Some((reply, bytes used)))`,
/// `Ok(None)` when `buf` ends before the reply does.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ParseError> {
    // Walk the reply first: a large reply that arrives in many pieces is
    // built once, when it is whole, not copied again on every attempt.
    if skip_at(buf, 0, 0)?.is_none() {
        return Ok(None);
    }
    parse_at(buf, 0, 0)
}

/// The index after the reply that starts at `at`, without building it.
fn skip_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooLarge);
    }
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((text, next)) = line(buf, at + 1)? else { return Ok(None) };
    match kind {
        b'+' | b'-' => Ok(Some(next)),
        b':' => number(text).map(|_| Some(next)),
        b'$' => {
            let n = number(text)?;
            if n == -1 {
                return Ok(Some(next));
            }
            let n = usize::try_from(n).map_err(|_| ParseError::Number)?;
            if n > MAX_BULK {
                return Err(ParseError::TooLarge);
            }
            let end = next.checked_add(n).ok_or(ParseError::TooLarge)?;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ParseError::Framing);
            }
            Ok(Some(end + 2))
        }
        b'*' => {
            let n = number(text)?;
            if n == -1 {
                return Ok(Some(next));
            }
            let n = usize::try_from(n).map_err(|_| ParseError::Number)?;
            if n > MAX_ARRAY {
                return Err(ParseError::TooLarge);
            }
            let mut pos = next;
            for _ in 0..n {
                match skip_at(buf, pos, depth + 1)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        other => Err(ParseError::Type(other)),
    }
}

/// The line starting at `at` (without CRLF) and the index after its CRLF.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let rest = &buf[at.min(buf.len())..];
    match rest.iter().position(|b| *b == b'\n') {
        Some(nl) => {
            if nl == 0 || rest[nl - 1] != b'\r' {
                return Err(ParseError::Framing);
            }
            Ok(Some((&rest[..nl - 1], at + nl + 1)))
        }
        None => Ok(None),
    }
}

fn number(b: &[u8]) -> Result<i64, ParseError> {
    let s = core::str::from_utf8(b).map_err(|_| ParseError::Number)?;
    s.parse::<i64>().map_err(|_| ParseError::Number)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooLarge);
    }
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((text, next)) = line(buf, at + 1)? else { return Ok(None) };
    let utf8 = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Simple(utf8(text)), next))),
        b'-' => Ok(Some((Reply::Error(utf8(text)), next))),
        b':' => Ok(Some((Reply::Integer(number(text)?), next))),
        b'$' => {
            let n = number(text)?;
            if n == -1 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            let n = usize::try_from(n).map_err(|_| ParseError::Number)?;
            if n > MAX_BULK {
                return Err(ParseError::TooLarge);
            }
            let end = next.checked_add(n).ok_or(ParseError::TooLarge)?;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ParseError::Framing);
            }
            Ok(Some((Reply::Bulk(Some(buf[next..end].to_vec())), end + 2)))
        }
        b'*' => {
            let n = number(text)?;
            if n == -1 {
                return Ok(Some((Reply::Array(None), next)));
            }
            let n = usize::try_from(n).map_err(|_| ParseError::Number)?;
            if n > MAX_ARRAY {
                return Err(ParseError::TooLarge);
            }
            // Never reserve more than the bytes present could hold.
            let mut items = Vec::with_capacity(n.min(buf.len() - next.min(buf.len())));
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some((r, p)) => {
                        items.push(r);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(ParseError::Type(other)),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"SET", b"k", b"hello world"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\nhello world\r\n");
    }

    #[test]
    fn every_reply_type_parses_and_reports_its_length() {
        let cases: [(&[u8], Reply); 8] = [
            (b"+OK\r\n", Reply::Simple("OK".into())),
            (b"-ERR wrong\r\n", Reply::Error("ERR wrong".into())),
            (b":-42\r\n", Reply::Integer(-42)),
            (b"$5\r\nhe\r\no\r\n", Reply::Bulk(Some(b"he\r\no".to_vec()))),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"$0\r\n\r\n", Reply::Bulk(Some(Vec::new()))),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*2\r\n$1\r\na\r\n*1\r\n:7\r\n",
                Reply::Array(Some(vec![Reply::Bulk(Some(b"a".to_vec())), Reply::Array(Some(vec![Reply::Integer(7)]))])),
            ),
        ];
        for (bytes, want) in cases {
            let mut with_tail = bytes.to_vec();
            with_tail.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(parse(&with_tail), Ok(Some((want.clone(), bytes.len()))), "{:?}", bytes);
            // Any prefix is incomplete, never an error.
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]), Ok(None), "{:?} cut at {cut}", bytes);
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in
            [&b"?x\r\n"[..], b":abc\r\n", b"$3\r\nabcX\r\n", b"+OK\n", b"$-2\r\n", b"*-5\r\n", b"$99999999999\r\n"]
        {
            assert!(parse(bad).is_err(), "{:?}", bad);
        }
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(b"*1\r\n");
        }
        deep.extend_from_slice(b":1\r\n");
        assert_eq!(parse(&deep), Err(ParseError::TooLarge));
        // A huge announced array with few bytes present does not allocate for it.
        assert_eq!(parse(b"*16000000\r\n:1\r\n"), Ok(None));
    }
}
