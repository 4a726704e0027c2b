//! Response-time measurements: each worker records into its own per-second
//! HDR histograms (no shared lock on the request path); readers merge the
//! seconds of a window across workers. What the policy `Decider` consumes
//! ([`policies::decide::WindowStats`]) is computed here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use policies::decide::{LatencySummary, WindowStats};
use serde::Serialize;

/// Longest response time a histogram holds (longer ones count as this), us.
const MAX_US: u64 = 3_600_000_000;
/// Seconds of history kept per upstream (for status and metrics).
pub const UPSTREAM_HISTORY_S: u64 = 10;

/// Why a request failed at the proxy rather than at the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection to the upstream could be made.
    Connect,
    /// The upstream did not answer within the response timeout.
    Timeout,
    /// The upstream closed or reset the connection before a whole response head.
    Reset,
    /// No upstream was ready and holding ran out of time or room.
    NoUpstream,
    /// The client's request was refused (framing, size, or no route).
    BadRequest,
}

impl ErrorKind {
    /// Every kind, in the order of counters.
    pub const ALL: [ErrorKind; 5] =
        [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Reset, ErrorKind::NoUpstream, ErrorKind::BadRequest];

    /// The kind's name in metrics and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::NoUpstream => "no_upstream",
            ErrorKind::BadRequest => "bad_request",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Index of a status code's class: 1xx .. 5xx, and 0 for anything else.
fn class(status: u16) -> usize {
    match status {
        100..=599 => (status / 100) as usize,
        _ => 0,
    }
}

fn new_histogram() -> Histogram<u32> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 2).expect("valid histogram bounds")
}

/// One second of one series.
struct Second {
    second: u64,
    hist: Histogram<u32>,
    requests: u64,
    errors: u64,
}

/// Totals since start, for counters (Prometheus).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Totals {
    /// Requests answered.
    pub requests: u64,
    /// By status class: index 1..=5 for 1xx..5xx, 0 for other.
    pub by_class: [u64; 6],
    /// By proxy error kind, in [`ErrorKind::ALL`] order.
    pub errors: [u64; 5],
    /// Sum of response times, us.
    pub latency_sum_us: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.requests += o.requests;
        for i in 0..6 {
            self.by_class[i] += o.by_class[i];
        }
        for i in 0..5 {
            self.errors[i] += o.errors[i];
        }
        self.latency_sum_us += o.latency_sum_us;
    }
}

/// A ring of per-second histograms plus totals: one service or upstream as
/// seen by one worker.
struct Series {
    ring: Vec<Option<Second>>,
    totals: Totals,
}

impl Series {
    fn new(seconds: u64) -> Series {
        Series { ring: (0..seconds.max(2)).map(|_| None).collect(), totals: Totals::default() }
    }

    fn record(&mut self, second: u64, us: u64, status: u16, error: Option<ErrorKind>) {
        let len = self.ring.len() as u64;
        let slot = &mut self.ring[(second % len) as usize];
        let s = match slot {
            Some(s) if s.second == second => s,
            Some(s) => {
                // A stale second: reuse its histogram.
                s.second = second;
                s.hist.reset();
                s.requests = 0;
                s.errors = 0;
                s
            }
            None => slot.insert(Second { second, hist: new_histogram(), requests: 0, errors: 0 }),
        };
        s.hist.saturating_record(us.clamp(1, MAX_US));
        s.requests += 1;
        self.totals.requests += 1;
        self.totals.by_class[class(status)] += 1;
        self.totals.latency_sum_us += us;
        if let Some(e) = error {
            s.errors += 1;
            self.totals.errors[e.index()] += 1;
        }
    }

    /// Adds the seconds `(now - n, now]` into `acc`.
    fn merge(&self, now: u64, n: u64, acc: &mut Merged) {
        for s in self.ring.iter().flatten() {
            if s.second <= now && s.second + n > now {
                let _ = acc.hist.add(&s.hist);
                acc.requests += s.requests;
                acc.errors += s.errors;
            }
        }
        acc.totals.add(&self.totals);
    }
}

/// What one worker recorded: its series per service (by index) and per upstream (by id).
pub struct WorkerStats {
    services: Vec<Series>,
    upstreams: HashMap<u64, Series>,
}

/// The measurements of every worker, and the clock they share.
pub struct Stats {
    start: Instant,
    workers: Vec<Arc<Mutex<WorkerStats>>>,
}

/// A worker's handle for recording.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    mine: Arc<Mutex<WorkerStats>>,
}

fn lock(m: &Mutex<WorkerStats>) -> MutexGuard<'_, WorkerStats> {
    // A panic while recording leaves plain counters behind: still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    /// Records a client-facing response of `service`.
    pub fn service(&self, service: usize, latency: Duration, status: u16, error: Option<ErrorKind>) {
        let second = self.start.elapsed().as_secs();
        let mut w = lock(&self.mine);
        if let Some(s) = w.services.get_mut(service) {
            s.record(second, latency.as_micros() as u64, status, error);
        }
    }

    /// Records one attempt against an upstream.
    pub fn upstream(&self, id: u64, latency: Duration, status: u16, error: Option<ErrorKind>) {
        let second = self.start.elapsed().as_secs();
        let mut w = lock(&self.mine);
        w.upstreams.entry(id).or_insert_with(|| Series::new(UPSTREAM_HISTORY_S + 1)).record(
            second,
            latency.as_micros() as u64,
            status,
            error,
        );
    }
}

/// Merged measurements of one series over a window.
pub struct Merged {
    hist: Histogram<u32>,
    /// Requests in the window.
    pub requests: u64,
    /// Of which proxy errors.
    pub errors: u64,
    /// Totals since start.
    pub totals: Totals,
    /// Length of the window actually covered, s.
    pub seconds: f64,
}

impl Merged {
    /// Percentiles and mean, or `None` with no request in the window.
    pub fn latency(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1e3;
        Some(LatencySummary {
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            mean_ms: self.hist.mean() / 1e3,
        })
    }

    /// Requests per second over the window.
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The highest response time in the window, ms.
    pub fn max_ms(&self) -> f64 {
        self.hist.max() as f64 / 1e3
    }
}

impl Stats {
    /// Measurements for `workers` workers of services keeping `history` each.
    pub fn new(workers: usize, history: &[Duration]) -> Stats {
        let start = Instant::now();
        let workers = (0..workers.max(1))
            .map(|_| {
                Arc::new(Mutex::new(WorkerStats {
                    services: history.iter().map(|h| Series::new(h.as_secs() + 2)).collect(),
                    upstreams: HashMap::new(),
                }))
            })
            .collect();
        Stats { start, workers }
    }

    /// The recorder of worker `i`.
    pub fn recorder(&self, i: usize) -> Recorder {
        Recorder { start: self.start, mine: Arc::clone(&self.workers[i % self.workers.len()]) }
    }

    /// Seconds since the dispatcher started.
    pub fn now_second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// The window covered by the last `window` seconds, which is shorter
    /// while the dispatcher is younger than it.
    fn span(&self, window: Duration) -> (u64, u64, f64) {
        let now = self.start.elapsed();
        let n = window.as_secs().max(1);
        let covered = now.as_secs_f64().min(n as f64).max(1e-3);
        (now.as_secs(), n, covered)
    }

    fn merged(&self, window: Duration, pick: impl Fn(&WorkerStats, u64, u64, &mut Merged)) -> Merged {
        let (now, n, seconds) = self.span(window);
        let mut acc = Merged { hist: new_histogram(), requests: 0, errors: 0, totals: Totals::default(), seconds };
        for w in &self.workers {
            pick(&lock(w), now, n, &mut acc);
        }
        acc
    }

    /// Service `i` over the last `window`.
    pub fn service(&self, i: usize, window: Duration) -> Merged {
        self.merged(window, |w, now, n, acc| {
            if let Some(s) = w.services.get(i) {
                s.merge(now, n, acc);
            }
        })
    }

    /// Upstream `id` over the last `window` (at most [`UPSTREAM_HISTORY_S`]).
    pub fn upstream(&self, id: u64, window: Duration) -> Merged {
        self.merged(window.min(Duration::from_secs(UPSTREAM_HISTORY_S)), |w, now, n, acc| {
            if let Some(s) = w.upstreams.get(&id) {
                s.merge(now, n, acc);
            }
        })
    }

    /// Forgets an upstream that left the pool (its totals stay in the service's).
    pub fn forget_upstream(&self, id: u64) {
        for w in &self.workers {
            lock(w).upstreams.remove(&id);
        }
    }

    /// What the Decider reads: service `i` over `window`, with the mean
    /// in-flight count given by the caller (sampled elsewhere).
    pub fn window_stats(&self, i: usize, window: Duration, inflight: f64) -> WindowStats {
        let m = self.service(i, window);
        WindowStats { requests: m.requests, rps: m.rps(), inflight, latency: m.latency() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_from_every_worker_merge_into_one_window() {
        let stats = Stats::new(2, &[Duration::from_secs(10)]);
        let (a, b) = (stats.recorder(0), stats.recorder(1));
        for i in 1..=100u64 {
            let r = if i % 2 == 0 { &a } else { &b };
            r.service(0, Duration::from_millis(i), 200, None);
        }
        a.service(0, Duration::from_millis(5), 502, Some(ErrorKind::Connect));
        let m = stats.service(0, Duration::from_secs(10));
        assert_eq!(m.requests, 101);
        assert_eq!(m.errors, 1);
        let l = m.latency().expect("requests were recorded");
        assert!((49.0..=52.0).contains(&l.p50_ms), "p50 {}", l.p50_ms);
        assert!((98.0..=101.0).contains(&l.p99_ms), "p99 {}", l.p99_ms);
        assert_eq!(m.totals.by_class[2], 100);
        assert_eq!(m.totals.by_class[5], 1);
        assert_eq!(m.totals.errors[ErrorKind::Connect.index()], 1);
    }

    #[test]
    fn a_stale_second_is_reused_not_added() {
        let mut s = Series::new(3);
        s.record(1, 1000, 200, None);
        s.record(4, 2000, 200, None); // same slot as second 1
        let mut acc = Merged { hist: new_histogram(), requests: 0, errors: 0, totals: Totals::default(), seconds: 3.0 };
        s.merge(4, 3, &mut acc);
        assert_eq!(acc.requests, 1, "second 1 fell out of the ring");
        assert_eq!(acc.totals.requests, 2, "totals keep everything");
    }

    #[test]
    fn an_empty_window_has_no_latency() {
        let stats = Stats::new(1, &[Duration::from_secs(5)]);
        let w = stats.window_stats(0, Duration::from_secs(5), 0.0);
        assert_eq!(w.requests, 0);
        assert!(w.latency.is_none());
    }
}
