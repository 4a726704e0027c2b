//! Services and their upstream pools. Membership changes rarely (the
//! provisioner adds and drains instances) and is read on every request, so
//! each pool is an atomically swapped snapshot ([`arc_swap`]): a request
//! loads the current list without a lock, a change publishes a new list.
//! Per-upstream state that changes per request (in-flight count, failures,
//! ejection) is atomics on the upstream itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::Notify;

use policies::model::RetryOn;

use crate::config::ServiceConfig;
use crate::error::DispatchError;
use crate::stats::ErrorKind;

/// Where an upstream is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// Takes new requests (unless ejected or unhealthy).
    Active,
    /// Removed from the pool: no new requests, in-flight ones finish.
    Draining,
}

/// One upstream address of a service.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Unique over the dispatcher's life (stats and connection pools key on it).
    pub id: u64,
    added: Instant,
    slow_start: Duration,
    state: AtomicU8,
    /// Requests sent to it and not yet answered.
    pub inflight: AtomicU32,
    consecutive_failures: AtomicU32,
    /// Nanoseconds since `epoch` until which it is ejected (0: not ejected).
    ejected_until_ns: AtomicU64,
    ejections: AtomicU32,
    /// Active checks: the upstream answers its health path.
    healthy: AtomicBool,
    check_failures: AtomicU32,
    check_successes: AtomicU32,
    epoch: Instant,
}

/// A snapshot of an upstream for status output.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamView {
    /// Address.
    pub addr: SocketAddr,
    /// Id.
    pub id: u64,
    /// Active or draining.
    pub state: UpstreamState,
    /// Passed its recent active checks.
    pub healthy: bool,
    /// Ejected by passive health (outlier detection) right now.
    pub ejected: bool,
    /// Times ejected so far.
    pub ejections: u32,
    /// Requests in flight.
    pub inflight: u32,
    /// Share of a full upstream's traffic it gets now (slow start), 0..1.
    pub weight: f64,
}

impl Upstream {
    fn new(addr: SocketAddr, id: u64, slow_start: Duration, epoch: Instant) -> Upstream {
        Upstream {
            addr,
            id,
            added: Instant::now(),
            slow_start,
            state: AtomicU8::new(0),
            inflight: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ns: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            check_failures: AtomicU32::new(0),
            check_successes: AtomicU32::new(0),
            epoch,
        }
    }

    /// Active or draining.
    pub fn state(&self) -> UpstreamState {
        if self.state.load(Ordering::Relaxed) == 0 {
            UpstreamState::Active
        } else {
            UpstreamState::Draining
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Ejected by passive health checks at this moment.
    pub fn ejected(&self) -> bool {
        let until = self.ejected_until_ns.load(Ordering::Relaxed);
        until != 0 && self.now_ns() < until
    }

    /// May take a new request.
    pub fn eligible(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 0 && self.healthy.load(Ordering::Relaxed) && !self.ejected()
    }

    /// Slow start: the share of traffic ramps linearly from 10% to 100%.
    pub fn weight(&self) -> f64 {
        if self.slow_start.is_zero() {
            return 1.0;
        }
        let f = self.added.elapsed().as_secs_f64() / self.slow_start.as_secs_f64();
        f.clamp(0.1, 1.0)
    }

    /// Least-request load: outstanding requests (plus the one to come) over weight.
    pub fn load(&self) -> f64 {
        f64::from(self.inflight.load(Ordering::Relaxed) + 1) / self.weight()
    }

    /// A request to it succeeded: its failure streak ends.
    pub fn success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// A request to it failed (connect failure, reset, timeout or 5xx).
    /// Returns the consecutive failures so far.
    pub fn failure(&self) -> u32 {
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ejects it for `base * 2^(ejections so far)`, at most `max`.
    pub fn eject(&self, base: Duration, max: Duration) -> Duration {
        let n = self.ejections.fetch_add(1, Ordering::Relaxed);
        let d = base.saturating_mul(1u32 << n.min(20)).min(max);
        self.ejected_until_ns.store(self.now_ns() + d.as_nanos() as u64, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        d
    }

    /// An active check answered (or not). Returns the new health when it changed.
    pub fn checked(&self, ok: bool, unhealthy_after: u32, healthy_after: u32) -> Option<bool> {
        if ok {
            self.check_failures.store(0, Ordering::Relaxed);
            let n = self.check_successes.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.healthy.load(Ordering::Relaxed) && n >= healthy_after {
                self.healthy.store(true, Ordering::Relaxed);
                return Some(true);
            }
        } else {
            self.check_successes.store(0, Ordering::Relaxed);
            let n = self.check_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if self.healthy.load(Ordering::Relaxed) && n >= unhealthy_after {
                self.healthy.store(false, Ordering::Relaxed);
                return Some(false);
            }
        }
        None
    }

    /// Its state for status output.
    pub fn view(&self) -> UpstreamView {
        UpstreamView {
            addr: self.addr,
            id: self.id,
            state: self.state(),
            healthy: self.healthy.load(Ordering::Relaxed),
            ejected: self.ejected(),
            ejections: self.ejections.load(Ordering::Relaxed),
            inflight: self.inflight.load(Ordering::Relaxed),
            weight: self.weight(),
        }
    }
}

/// A service: its settings, its pool, and the requests held for it.
pub struct Service {
    /// Index in route order (also its stats index).
    pub index: usize,
    /// Settings.
    pub cfg: ServiceConfig,
    /// Upstreams taking new requests.
    pool: ArcSwap<Vec<Arc<Upstream>>>,
    /// Upstreams removed but still finishing requests.
    draining: ArcSwap<Vec<Arc<Upstream>>>,
    /// Woken when an upstream becomes available (added, healthy again).
    pub available: Notify,
    /// Requests waiting for an upstream now.
    pub held: AtomicU32,
    /// Requests in flight through this service.
    pub inflight: AtomicU32,
    /// Retry budget, in thousandths of a retry.
    retry_tokens: AtomicU64,
    /// Serialises membership changes (never taken on the request path).
    change: std::sync::Mutex<()>,
}

/// Upper bound of the retry budget's savings, in retries.
const RETRY_BURST: u64 = 100;

impl Service {
    /// A service with its initial upstreams.
    pub fn new(index: usize, cfg: ServiceConfig, ids: &AtomicU64, epoch: Instant) -> Service {
        let slow_start = cfg.balance.slow_start.0;
        let pool = cfg
            .upstreams
            .iter()
            .map(|a| {
                // Upstreams given at start take full traffic at once.
                let mut u = Upstream::new(*a, ids.fetch_add(1, Ordering::Relaxed), slow_start, epoch);
                u.slow_start = Duration::ZERO;
                Arc::new(u)
            })
            .collect();
        Service {
            index,
            cfg,
            pool: ArcSwap::from_pointee(pool),
            draining: ArcSwap::from_pointee(Vec::new()),
            available: Notify::new(),
            held: AtomicU32::new(0),
            inflight: AtomicU32::new(0),
            retry_tokens: AtomicU64::new(10_000),
            change: std::sync::Mutex::new(()),
        }
    }

    /// The current pool (a snapshot: cheap, lock-free).
    pub fn upstreams(&self) -> arc_swap::Guard<Arc<Vec<Arc<Upstream>>>> {
        self.pool.load()
    }

    /// Upstreams draining now.
    pub fn draining(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.draining.load_full()
    }

    /// Adds an upstream (slow start applies) and releases held requests.
    pub fn add(&self, addr: SocketAddr, ids: &AtomicU64, epoch: Instant) -> Result<Arc<Upstream>, DispatchError> {
        let _g = self.change.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.pool.load_full();
        if cur.iter().any(|u| u.addr == addr) {
            return Err(DispatchError::DuplicateUpstream { service: self.cfg.name.clone(), addr });
        }
        let u =
            Arc::new(Upstream::new(addr, ids.fetch_add(1, Ordering::Relaxed), self.cfg.balance.slow_start.0, epoch));
        let mut next = (*cur).clone();
        next.push(Arc::clone(&u));
        self.pool.store(Arc::new(next));
        self.available.notify_waiters();
        Ok(u)
    }

    /// Takes an upstream out of the pool: it gets no new requests and its
    /// in-flight ones finish ([`Service::reap_drained`] forgets it once idle).
    pub fn drain(&self, addr: SocketAddr) -> Result<Arc<Upstream>, DispatchError> {
        let _g = self.change.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.pool.load_full();
        let Some(u) = cur.iter().find(|u| u.addr == addr).cloned() else {
            return Err(DispatchError::UnknownUpstream { service: self.cfg.name.clone(), addr });
        };
        u.state.store(1, Ordering::Relaxed);
        let next: Vec<_> = cur.iter().filter(|x| x.addr != addr).cloned().collect();
        self.pool.store(Arc::new(next));
        let mut d = (*self.draining.load_full()).clone();
        d.push(Arc::clone(&u));
        self.draining.store(Arc::new(d));
        Ok(u)
    }

    /// Forgets drained upstreams with nothing in flight; returns their ids.
    pub fn reap_drained(&self) -> Vec<u64> {
        let _g = self.change.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.draining.load_full();
        let (done, keep): (Vec<_>, Vec<_>) = cur.iter().cloned().partition(|u| u.inflight.load(Ordering::Relaxed) == 0);
        if !done.is_empty() {
            self.draining.store(Arc::new(keep));
        }
        done.iter().map(|u| u.id).collect()
    }

    /// Power of two random choices over least outstanding requests, weighted
    /// by slow start, among eligible upstreams; `avoid` (tried already) is
    /// skipped when anything else is eligible.
    pub fn pick(&self, avoid: &[u64]) -> Option<Arc<Upstream>> {
        let pool = self.pool.load();
        let n = pool.len();
        if n == 0 {
            return None;
        }
        let ok = |u: &Upstream| u.eligible() && !avoid.contains(&u.id);
        if n == 1 {
            let u = &pool[0];
            return if u.eligible() { Some(Arc::clone(u)) } else { None };
        }
        let a = fastrand::usize(..n);
        let mut b = fastrand::usize(..n - 1);
        if b >= a {
            b += 1;
        }
        let (ua, ub) = (&pool[a], &pool[b]);
        let best = match (ok(ua), ok(ub)) {
            (true, true) => Some(if ub.load() < ua.load() { ub } else { ua }),
            (true, false) => Some(ua),
            (false, true) => Some(ub),
            (false, false) => None,
        };
        if let Some(u) = best {
            return Some(Arc::clone(u));
        }
        // Both draws were unusable: the least loaded usable one, if any;
        // else one that was tried before but is still eligible.
        let scan = |f: &dyn Fn(&Upstream) -> bool| {
            pool.iter().filter(|u| f(u)).min_by(|x, y| x.load().total_cmp(&y.load())).cloned()
        };
        scan(&ok).or_else(|| scan(&|u: &Upstream| u.eligible()))
    }

    /// Ejects `u` after a failure streak, unless that would eject more than
    /// `max_ejected_pct` of the pool. Returns the ejection time.
    pub fn maybe_eject(&self, u: &Upstream, streak: u32) -> Option<Duration> {
        let h = &self.cfg.health;
        if h.eject_after == 0 || streak < h.eject_after {
            return None;
        }
        let pool = self.pool.load();
        let ejected = pool.iter().filter(|x| x.ejected()).count();
        let allowed = pool.len() * h.max_ejected_pct as usize / 100;
        if ejected + 1 > allowed {
            return None;
        }
        Some(u.eject(h.eject_for.0, h.eject_max.0))
    }

    /// Every request adds its share to the retry budget (`budget_pct` of a retry).
    pub fn earn_retry(&self) {
        let add = u64::from(self.cfg.retry.budget_pct) * 10;
        let cap = RETRY_BURST * 1000;
        let _ = self.retry_tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            if t >= cap {
                None
            } else {
                Some((t + add).min(cap))
            }
        });
    }

    /// Whether an answer with `status` is tried again: the status is one the
    /// policy retries, the request `safe` to resend (idempotent, body
    /// replayable), attempts are left and the budget allows it.
    pub fn retry_status(&self, status: u16, safe: bool, attempts_left: u32) -> bool {
        let listed = self.cfg.retry.on.iter().any(|o| match o {
            RetryOn::Any5xx => status >= 500,
            RetryOn::Status(s) => *s == status,
            _ => false,
        });
        listed && safe && attempts_left > 0 && self.spend_retry()
    }

    /// Whether a failed attempt (`kind`: connect, reset or timeout) is tried
    /// again. A connect failure is retried for any method, and does not spend
    /// the budget: the budget bounds the extra load retries put on upstreams,
    /// and a request that reached none adds none. A reset or a timeout is
    /// retried only when the request is `safe` and its body can still be
    /// sent (`resendable`).
    pub fn retry_failure(&self, kind: ErrorKind, safe: bool, resendable: bool, attempts_left: u32) -> bool {
        let on = &self.cfg.retry.on;
        let unsent = kind == ErrorKind::Connect;
        let allowed = match kind {
            ErrorKind::Connect => on.contains(&RetryOn::ConnectFailure),
            ErrorKind::Reset => safe && resendable && on.contains(&RetryOn::Reset),
            ErrorKind::Timeout => safe && resendable && on.contains(&RetryOn::Timeout),
            _ => false,
        };
        allowed && attempts_left > 0 && (unsent || self.spend_retry())
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn spend_retry(&self) -> bool {
        self.retry_tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1000)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DispatchConfig;

    fn service(n: u16) -> (Service, AtomicU64, Instant) {
        let addrs = (0..n).map(|i| SocketAddr::from(([127, 0, 0, 1], 9000 + i))).collect();
        let cfg = DispatchConfig::single_service(addrs).services.remove(0);
        let ids = AtomicU64::new(1);
        let epoch = Instant::now();
        (Service::new(0, cfg, &ids, epoch), ids, epoch)
    }

    #[test]
    fn p2c_prefers_the_less_loaded_of_two() {
        let (s, _, _) = service(2);
        s.upstreams()[0].inflight.store(50, Ordering::Relaxed);
        for _ in 0..100 {
            assert_eq!(s.pick(&[]).expect("one is eligible").addr.port(), 9001);
        }
    }

    #[test]
    fn picks_spread_over_equal_upstreams() {
        let (s, _, _) = service(4);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            let u = s.pick(&[]).expect("eligible");
            seen[(u.addr.port() - 9000) as usize] += 1;
        }
        assert!(seen.iter().all(|c| (700..1300).contains(c)), "{seen:?}");
    }

    #[test]
    fn draining_upstreams_get_nothing_new() {
        let (s, _, _) = service(2);
        let drained = s.drain(SocketAddr::from(([127, 0, 0, 1], 9000))).expect("known");
        assert_eq!(drained.state(), UpstreamState::Draining);
        for _ in 0..50 {
            assert_eq!(s.pick(&[]).expect("eligible").addr.port(), 9001);
        }
        drained.inflight.store(1, Ordering::Relaxed);
        assert!(s.reap_drained().is_empty(), "still busy");
        drained.inflight.store(0, Ordering::Relaxed);
        assert_eq!(s.reap_drained(), vec![drained.id]);
    }

    #[test]
    fn ejection_grows_and_respects_the_cap_on_ejected_share() {
        let (s, _, _) = service(4);
        let pool = s.upstreams();
        let eject_after = s.cfg.health.eject_after;
        let d1 = s.maybe_eject(&pool[0], eject_after).expect("first ejection");
        assert!(pool[0].ejected());
        assert!(!pool[0].eligible());
        let d2 = pool[0].eject(s.cfg.health.eject_for.0, s.cfg.health.eject_max.0);
        assert_eq!(d2, d1 * 2, "each ejection doubles");
        s.maybe_eject(&pool[1], eject_after).expect("2 of 4 is within 50%");
        assert!(s.maybe_eject(&pool[2], eject_after).is_none(), "3 of 4 would exceed 50%");
        assert!(s.maybe_eject(&pool[3], eject_after - 1).is_none(), "streak too short");
    }

    #[test]
    fn slow_start_weights_ramp_from_a_tenth() {
        let (mut s, ids, epoch) = service(1);
        s.cfg.balance.slow_start = policies::units::Dur(Duration::from_secs(60));
        let u = s.add(SocketAddr::from(([127, 0, 0, 1], 9100)), &ids, epoch).expect("new");
        assert!((u.weight() - 0.1).abs() < 1e-6);
        assert!(u.load() > 9.0, "a new upstream looks ten times as loaded");
        assert!(s.add(SocketAddr::from(([127, 0, 0, 1], 9100)), &ids, epoch).is_err(), "duplicates are refused");
    }

    #[test]
    fn the_retry_budget_is_earned_by_requests() {
        let (s, _, _) = service(1);
        let mut spent = 0;
        while s.spend_retry() {
            spent += 1;
        }
        assert_eq!(spent, 10, "the initial allowance");
        for _ in 0..10 {
            s.earn_retry();
        }
        assert!(s.spend_retry(), "20% of 10 requests is 2 retries");
        assert!(s.spend_retry());
        assert!(!s.spend_retry());
    }
}
