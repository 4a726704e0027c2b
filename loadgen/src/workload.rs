//! What the emulated users ask for. A workload names its interactions and
//! makes sessions; a session produces one request after another (and may
//! read each response, as a browser follows links).

/// The next request of a session.
pub struct Next {
    /// Index of the interaction (in [`Workload::interactions`]).
    pub interaction: usize,
    /// It is a HEAD request (no body in the response).
    pub head: bool,
    /// The session wants the response body.
    pub keep_body: bool,
}

/// One user's sequence of requests.
pub trait Session {
    /// Writes the next request (whole HTTP/1.1 bytes) into `out`; `None`
    /// ends the session (a new one starts).
    fn next(&mut self, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> Option<Next>;

    /// Sees the response to the last request: its status, body (when asked
    /// for) and Set-Cookie `name=value` pairs (`; `-separated).
    fn observe(&mut self, _status: u16, _body: &[u8], _set_cookie: &[u8]) {}
}

/// A kind of load.
pub trait Workload: Send + Sync {
    /// Names of the interactions, for the report.
    fn interactions(&self) -> Vec<String>;

    /// Target share of each interaction, percent, when the workload has one.
    fn target_mix(&self) -> Option<Vec<f64>> {
        None
    }

    /// 90th-percentile response-time limit of each interaction, ms, when the benchmark sets them.
    fn p90_limits_ms(&self) -> Option<Vec<f64>> {
        None
    }

    /// A new session.
    fn session(&self, rng: &mut fastrand::Rng) -> Box<dyn Session>;
}

/// `--workload get`: the same GET over and over (what wrk does).
pub struct Get {
    request: Vec<u8>,
}

impl Get {
    /// `GET path` with `Host: host`.
    pub fn new(host: &str, path: &str) -> Get {
        Get {
            request: format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: twinkle-loadgen\r\n\r\n").into_bytes(),
        }
    }
}

struct GetSession {
    request: Vec<u8>,
}

impl Session for GetSession {
    fn next(&mut self, _rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> Option<Next> {
        out.clear();
        out.extend_from_slice(&self.request);
        Some(Next { interaction: 0, head: false, keep_body: false })
    }
}

impl Workload for Get {
    fn interactions(&self) -> Vec<String> {
        vec!["get".into()]
    }

    fn session(&self, _rng: &mut fastrand::Rng) -> Box<dyn Session> {
        Box::new(GetSession { request: self.request.clone() })
    }
}

/// A session's cookies, sent back as a browser would (name=value, the latest
/// value of each name wins).
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CookieJar {
    /// Keeps the pairs of a response's Set-Cookie headers.
    pub fn store(&mut self, set_cookie: &[u8]) {
        for part in set_cookie.split(|b| *b == b';') {
            let part = part.trim_ascii();
            let Some(eq) = part.iter().position(|b| *b == b'=') else { continue };
            let (name, value) = (&part[..eq], &part[eq + 1..]);
            match self.pairs.iter_mut().find(|(n, _)| n == name) {
                Some(p) => p.1 = value.to_vec(),
                None => self.pairs.push((name.to_vec(), value.to_vec())),
            }
        }
    }

    /// Appends a `Cookie:` header line when there is anything to send.
    pub fn header(&self, out: &mut Vec<u8>) {
        if self.pairs.is_empty() {
            return;
        }
        out.extend_from_slice(b"Cookie: ");
        for (i, (n, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(n);
            out.push(b'=');
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_come_back_latest_value_first_seen_order() {
        let mut j = CookieJar::default();
        let mut out = Vec::new();
        j.header(&mut out);
        assert!(out.is_empty());
        j.store(b"sid=1; theme=dark");
        j.store(b"sid=2");
        j.header(&mut out);
        assert_eq!(out, b"Cookie: sid=2; theme=dark\r\n");
    }
}
