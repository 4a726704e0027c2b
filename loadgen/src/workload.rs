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

    /// Sees the response to the last request.
    fn observe(&mut self, _status: u16, _body: &[u8]) {}
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
