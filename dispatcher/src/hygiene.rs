//! HTTP hygiene at the edge: refuse requests whose framing is ambiguous
//! (request smuggling) or whose size is beyond the limits, strip hop-by-hop
//! headers in both directions, and say who forwarded what (X-Forwarded-For,
//! X-Forwarded-Proto, Via).

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};

use crate::config::Limits;

/// The proxy's name in Via headers.
pub const VIA: &str = "1.1 twinkle";

/// Why a request is refused before it reaches any upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer with.
    pub status: StatusCode,
    /// What was wrong, for the client and the log.
    pub reason: &'static str,
    /// The connection must close after the answer (framing could not be trusted).
    pub close: bool,
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: length unknown until it ends.
    Chunked,
}

fn refuse(status: StatusCode, reason: &'static str, close: bool) -> Refusal {
    Refusal { status, reason, close }
}

/// Checks a client's request: framing, header count and body size.
pub fn check<B>(req: &Request<B>, limits: &Limits) -> Result<Framing, Refusal> {
    let h = req.headers();
    if h.len() > limits.max_headers {
        return Err(refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too many request headers", true));
    }
    let te = h.get_all(header::TRANSFER_ENCODING);
    let has_te = te.iter().next().is_some();
    let mut cls = h.get_all(header::CONTENT_LENGTH).iter();
    let cl = cls.next();
    if has_te && cl.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "both Transfer-Encoding and Content-Length: ambiguous framing",
            true,
        ));
    }
    if has_te {
        // Only "chunked" as the last (here: only) coding frames a request.
        let mut codings = te.iter().flat_map(|v| v.as_bytes().split(|b| *b == b',')).map(|c| c.trim_ascii());
        let all: Vec<&[u8]> = codings.by_ref().collect();
        if all.len() != 1 || !all[0].eq_ignore_ascii_case(b"chunked") {
            return Err(refuse(StatusCode::BAD_REQUEST, "Transfer-Encoding other than chunked", true));
        }
        return Ok(Framing::Chunked);
    }
    let Some(cl) = cl else {
        return Ok(Framing::None);
    };
    let n = parse_length(cl.as_bytes())
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "Content-Length is not a number", true))?;
    for other in cls {
        if parse_length(other.as_bytes()) != Some(n) {
            return Err(refuse(StatusCode::BAD_REQUEST, "conflicting Content-Length headers", true));
        }
    }
    if n > limits.max_body_bytes {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body larger than the limit", true));
    }
    Ok(if n == 0 { Framing::None } else { Framing::Length(n) })
}

/// A Content-Length value: digits only, no sign, no overflow.
pub fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Methods whose repetition has the same effect as one request (RFC 9110 9.2.2).
pub fn idempotent(m: &Method) -> bool {
    idempotent_name(m.as_str().as_bytes())
}

/// [`idempotent`], for a method name as it came on the wire.
pub fn idempotent_name(m: &[u8]) -> bool {
    matches!(m, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE")
}

/// Headers that never go to the next hop (RFC 9110 7.6.1), besides those the
/// Connection header names. Lower case.
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// Removes hop-by-hop headers: [`HOP_BY_HOP`] and every header the
/// Connection header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if let Some(conn) = h.get(header::CONNECTION) {
        let named: Vec<HeaderName> =
            conn.as_bytes().split(|b| *b == b',').filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok()).collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in HOP_BY_HOP {
        if h.contains_key(n) {
            h.remove(n);
        }
    }
}

/// Prepares a client's request headers for the upstream.
pub fn to_upstream(h: &mut HeaderMap, peer: SocketAddr) {
    strip_hop_by_hop(h);
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    append_via(h);
}

/// Prepares an upstream's response headers for the client.
pub fn to_client(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
    append_via(h);
}

fn append_via(h: &mut HeaderMap) {
    h.append(header::VIA, HeaderValue::from_static(VIA));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_header_bytes: 65536, max_headers: 10, max_body_bytes: 1000, max_connections: 10 }
    }

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/").method("POST");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn ambiguous_framing_is_refused_and_closes() {
        let r = check(&req(&[("content-length", "4"), ("transfer-encoding", "chunked")]), &limits());
        let e = r.expect_err("CL + TE");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.close);
        assert!(check(&req(&[("content-length", "4"), ("content-length", "5")]), &limits()).is_err());
        assert!(check(&req(&[("content-length", "-1")]), &limits()).is_err());
        assert!(check(&req(&[("content-length", "+4")]), &limits()).is_err());
        assert!(check(&req(&[("transfer-encoding", "gzip, chunked")]), &limits()).is_err());
        assert!(check(&req(&[("transfer-encoding", "identity")]), &limits()).is_err());
    }

    #[test]
    fn plain_requests_pass_with_their_framing() {
        assert_eq!(check(&req(&[]), &limits()), Ok(Framing::None));
        assert_eq!(check(&req(&[("content-length", "0")]), &limits()), Ok(Framing::None));
        assert_eq!(
            check(&req(&[("content-length", "10"), ("content-length", "10")]), &limits()),
            Ok(Framing::Length(10))
        );
        assert_eq!(check(&req(&[("transfer-encoding", "Chunked")]), &limits()), Ok(Framing::Chunked));
    }

    #[test]
    fn sizes_beyond_the_limits_are_refused() {
        assert_eq!(
            check(&req(&[("content-length", "1001")]), &limits()).expect_err("big").status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("x-h{i}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            check(&req(&refs), &limits()).expect_err("many").status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn hop_by_hop_headers_go_and_forwarding_headers_come() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        to_upstream(&mut h, "192.0.2.7:5555".parse().expect("addr"));
        assert!(h.get("connection").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get("x-secret").is_none());
        assert_eq!(h["x-kept"], "yes");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["via"], VIA);
    }

    #[test]
    fn idempotent_methods() {
        assert!(idempotent(&Method::GET));
        assert!(idempotent(&Method::PUT));
        assert!(!idempotent(&Method::POST));
        assert!(!idempotent(&Method::PATCH));
    }
}
