//! What each load thread measures: response times from the *intended* send
//! time (coordinated-omission corrected, as wrk2) and from the actual send
//! time, per interaction and per second, and errors by kind. Threads record
//! into their own [`ThreadStats`]; the report merges them.

use hdrhistogram::Histogram;

use crate::client::Failure;

/// Longest response time a histogram holds, us (longer ones count as this).
pub const MAX_US: u64 = 3_600_000_000;

/// Error kinds, in counter order.
pub const ERROR_KINDS: [&str; 6] = ["connect", "timeout", "reset", "status_4xx", "status_5xx", "cancelled"];

/// Index of a kind in [`ERROR_KINDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No connection.
    Connect = 0,
    /// No whole response in time.
    Timeout = 1,
    /// Closed or reset mid-response.
    Reset = 2,
    /// A 4xx answer.
    Status4xx = 3,
    /// A 5xx answer.
    Status5xx = 4,
    /// Sent, still unanswered when the run ended.
    Cancelled = 5,
}

impl From<Failure> for ErrorKind {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Connect => ErrorKind::Connect,
            Failure::Timeout => ErrorKind::Timeout,
            Failure::Reset => ErrorKind::Reset,
        }
    }
}

/// A histogram of response times in microseconds.
pub fn histogram(sigfig: u8) -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("valid histogram bounds")
}

/// One second of one thread.
pub struct Second {
    /// Responses (any status).
    pub responses: u64,
    /// Errors by kind.
    pub errors: [u64; 6],
    /// Response times (corrected), us.
    pub hist: Histogram<u64>,
}

/// One interaction of one thread.
pub struct Interaction {
    /// Response times (corrected), us.
    pub hist: Histogram<u64>,
    /// Responses.
    pub responses: u64,
    /// Errors of any kind.
    pub errors: u64,
    /// Requests that got no response (connect, timeout, reset).
    pub failures: u64,
}

/// Everything one thread measured.
pub struct ThreadStats {
    /// Response times from the intended send time, us.
    pub corrected: Histogram<u64>,
    /// Response times from the actual send time, us.
    pub uncorrected: Histogram<u64>,
    /// Per interaction, in the workload's order.
    pub per: Vec<Interaction>,
    /// Per second since the start.
    pub seconds: Vec<Option<Second>>,
    /// Errors by kind.
    pub errors: [u64; 6],
    /// Responses (any status).
    pub responses: u64,
}

impl ThreadStats {
    /// Empty statistics for `interactions` interactions.
    pub fn new(interactions: usize) -> ThreadStats {
        ThreadStats {
            corrected: histogram(3),
            uncorrected: histogram(3),
            per: (0..interactions)
                .map(|_| Interaction { hist: histogram(2), responses: 0, errors: 0, failures: 0 })
                .collect(),
            seconds: Vec::new(),
            errors: [0; 6],
            responses: 0,
        }
    }

    fn second(&mut self, s: usize) -> &mut Second {
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, || None);
        }
        self.seconds[s].get_or_insert_with(|| Second { responses: 0, errors: [0; 6], hist: histogram(2) })
    }

    /// A response to interaction `ix` at second `s`.
    pub fn response(&mut self, s: usize, ix: usize, corrected_us: u64, uncorrected_us: u64, status: u16) {
        let c = corrected_us.clamp(1, MAX_US);
        self.corrected.saturating_record(c);
        self.uncorrected.saturating_record(uncorrected_us.clamp(1, MAX_US));
        self.responses += 1;
        let kind = match status {
            400..=499 => Some(ErrorKind::Status4xx),
            500..=599 => Some(ErrorKind::Status5xx),
            _ => None,
        };
        if let Some(i) = self.per.get_mut(ix) {
            i.hist.saturating_record(c);
            i.responses += 1;
            if kind.is_some() {
                i.errors += 1;
            }
        }
        let sec = self.second(s);
        sec.responses += 1;
        sec.hist.saturating_record(c);
        if let Some(k) = kind {
            sec.errors[k as usize] += 1;
            self.errors[k as usize] += 1;
        }
    }

    /// A request of interaction `ix` that got no response.
    pub fn failure(&mut self, s: usize, ix: usize, kind: ErrorKind) {
        self.errors[kind as usize] += 1;
        if let Some(i) = self.per.get_mut(ix) {
            i.errors += 1;
            i.failures += 1;
        }
        self.second(s).errors[kind as usize] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_failures_are_classified() {
        let mut t = ThreadStats::new(2);
        t.response(0, 0, 1000, 900, 200);
        t.response(0, 1, 2000, 2000, 404);
        t.response(1, 1, 3000, 3000, 503);
        t.failure(1, 0, ErrorKind::from(Failure::Timeout));
        t.failure(2, 0, ErrorKind::Connect);
        assert_eq!(t.responses, 3);
        assert_eq!(t.errors, [1, 1, 0, 1, 1, 0]);
        assert_eq!(t.per[0].responses, 1);
        assert_eq!(t.per[0].errors, 2);
        assert_eq!(t.per[1].errors, 2);
        assert_eq!(t.seconds.len(), 3);
        assert_eq!(t.seconds[1].as_ref().map(|s| s.errors), Some([0, 1, 0, 0, 1, 0]));
    }
}
