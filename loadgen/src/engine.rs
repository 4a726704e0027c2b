//! The load engine: worker threads (each a single-threaded runtime) run
//! closed-loop users or open-loop connections, and record what they see.
//! The run always ends at its duration: requests still in flight then are
//! counted as `cancelled`, so every request sent is accounted for.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{arm, Conn};
use crate::profile::Profile;
use crate::record::{ErrorKind, ThreadStats};
use crate::workload::Workload;

/// Think time between a user's interactions: negative exponential with this
/// mean, cut at `max` (TPC-W 5.3: mean 7 s, max 70 s).
#[derive(Clone, Copy, Debug)]
pub struct Think {
    /// Mean (zero: no think time).
    pub mean: Duration,
    /// Cap.
    pub max: Duration,
}

impl Think {
    /// A think time.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.mean.is_zero() {
            return Duration::ZERO;
        }
        // r in (0, 1]: -mean * ln(r) is exponential with that mean.
        let r = 1.0 - rng.f64();
        Duration::from_secs_f64((-self.mean.as_secs_f64() * r.ln()).min(self.max.as_secs_f64()))
    }
}

/// Closed or open loop.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Emulated users, each one session at a time, thinking between requests.
    Closed {
        /// Active users over time.
        users: Profile,
        /// Think time.
        think: Think,
    },
    /// Requests arrive at a rate, whatever the server does.
    Open {
        /// Requests per second over time.
        rate: Profile,
        /// Connections the arrivals are spread over.
        connections: usize,
    },
}

/// A whole run.
pub struct Plan {
    /// Where to send.
    pub addr: SocketAddr,
    /// What to send.
    pub workload: Arc<dyn Workload>,
    /// How.
    pub mode: Mode,
    /// How long.
    pub duration: Duration,
    /// Worker threads.
    pub threads: usize,
    /// Per-request timeout (connect, and whole response).
    pub timeout: Duration,
}

/// What the threads share while running.
pub struct Shared {
    /// Time zero of the run.
    pub start: std::time::Instant,
    /// Set when the run is over.
    pub stop: AtomicBool,
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished (response or failure).
    pub finished: AtomicU64,
    /// Failures and 4xx/5xx so far.
    pub errors: AtomicU64,
    /// Per-thread statistics.
    pub stats: Vec<Arc<Mutex<ThreadStats>>>,
}

/// Locks a thread's statistics (a panic while recording leaves plain counters: still usable).
pub fn lock(m: &Mutex<ThreadStats>) -> MutexGuard<'_, ThreadStats> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn second(&self) -> usize {
        self.start.elapsed().as_secs() as usize
    }
}

/// Starts the threads; returns when the duration is over and every thread has stopped.
pub fn run(plan: &Plan, shared: &Arc<Shared>, on_tick: &mut dyn FnMut(&Shared)) -> std::io::Result<()> {
    let threads = plan.threads.max(1);
    let mut handles = Vec::new();
    for t in 0..threads {
        let sh = Arc::clone(shared);
        let wl = Arc::clone(&plan.workload);
        let (mode, addr, timeout, duration) = (plan.mode.clone(), plan.addr, plan.timeout, plan.duration);
        handles.push(std::thread::Builder::new().name(format!("loadgen-{t}")).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("load thread {t}: {e}");
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            let end = Instant::from_std(sh.start + duration);
            local.block_on(&rt, async move {
                let ctx = Rc::new(Ctx { t, threads, sh, wl, addr, timeout });
                match mode {
                    Mode::Closed { users, think } => closed(ctx, users, think, end).await,
                    Mode::Open { rate, connections } => open(ctx, rate, connections, end).await,
                }
            });
            // Dropping the LocalSet cancels what is still in flight.
        })?);
    }
    let end = shared.start + plan.duration;
    loop {
        let now = std::time::Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(250)));
        on_tick(shared);
    }
    shared.stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = h.join();
    }
    // Sent and never finished: cut off by the end of the run.
    let cancelled = shared.sent.load(Ordering::SeqCst).saturating_sub(shared.finished.load(Ordering::SeqCst));
    if cancelled > 0 {
        if let Some(s) = shared.stats.first() {
            lock(s).errors[ErrorKind::Cancelled as usize] += cancelled;
        }
    }
    Ok(())
}

/// One thread's context.
struct Ctx {
    t: usize,
    threads: usize,
    sh: Arc<Shared>,
    wl: Arc<dyn Workload>,
    addr: SocketAddr,
    timeout: Duration,
}

impl Ctx {
    fn stats(&self) -> MutexGuard<'_, ThreadStats> {
        lock(&self.sh.stats[self.t])
    }

    fn secs(&self) -> f64 {
        self.sh.start.elapsed().as_secs_f64()
    }
}

/// The state of one emulated user or open-loop connection.
struct Client {
    conn: Option<Conn>,
    session: Box<dyn crate::workload::Session>,
    buf: Vec<u8>,
    rng: fastrand::Rng,
}

impl Client {
    fn new(ctx: &Ctx, seed: u64) -> Client {
        let mut rng = fastrand::Rng::with_seed(seed);
        let session = ctx.wl.session(&mut rng);
        Client { conn: None, session, buf: Vec::with_capacity(512), rng }
    }

    /// One request, recorded; `intended` is when it should have been sent.
    async fn one(&mut self, ctx: &Ctx, intended: Instant, deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>) {
        let next = loop {
            match self.session.next(&mut self.rng, &mut self.buf) {
                Some(n) => break n,
                None => self.session = ctx.wl.session(&mut self.rng),
            }
        };
        ctx.sh.sent.fetch_add(1, Ordering::Relaxed);
        let sent_at = Instant::now();
        let sec = ctx.sh.second();
        if self.conn.is_none() {
            match Conn::open(ctx.addr, ctx.timeout).await {
                Ok(c) => self.conn = Some(c),
                Err(f) => {
                    ctx.stats().failure(sec, next.interaction, ErrorKind::from(f));
                    ctx.sh.errors.fetch_add(1, Ordering::Relaxed);
                    ctx.sh.finished.fetch_add(1, Ordering::Relaxed);
                    // Do not spin against a server that refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return;
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else { return };
        arm(deadline, ctx.timeout);
        let r = conn.exchange(&self.buf, next.head, next.keep_body, deadline).await;
        let done = Instant::now();
        let sec = ctx.sh.second();
        match r {
            Ok(resp) => {
                let (status, close) = (resp.status, resp.close);
                if status >= 400 {
                    ctx.sh.errors.fetch_add(1, Ordering::Relaxed);
                }
                ctx.stats().response(
                    sec,
                    next.interaction,
                    (done - intended).as_micros() as u64,
                    (done - sent_at).as_micros() as u64,
                    status,
                );
                self.session.observe(status, resp.body, resp.set_cookie);
                if close {
                    self.conn = None;
                }
            }
            Err(f) => {
                ctx.stats().failure(sec, next.interaction, ErrorKind::from(f));
                ctx.sh.errors.fetch_add(1, Ordering::Relaxed);
                self.conn = None;
            }
        }
        ctx.sh.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// Closed loop: users with global index `i` (i mod threads == this thread)
/// are active while i < the profile's user count.
async fn closed(ctx: Rc<Ctx>, users: Profile, think: Think, end: Instant) {
    let running: Rc<RefCell<Vec<bool>>> = Rc::new(RefCell::new(Vec::new()));
    let target = Rc::new(Cell::new(0usize));
    let control = async {
        loop {
            let want = users.at(ctx.secs()).round() as usize;
            target.set(want);
            // This thread's users: t, t + threads, t + 2 threads, ...
            let mut i = ctx.t;
            let mut k = 0;
            while i < want {
                let mut r = running.borrow_mut();
                if r.len() <= k {
                    r.resize(k + 1, false);
                }
                if !r[k] {
                    r[k] = true;
                    let (ctx, running, target) = (Rc::clone(&ctx), Rc::clone(&running), Rc::clone(&target));
                    tokio::task::spawn_local(async move {
                        user(&ctx, i, think, &target).await;
                        running.borrow_mut()[k] = false;
                    });
                }
                i += ctx.threads;
                k += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = control => {}
        _ = tokio::time::sleep_until(end) => {}
    }
}

async fn user(ctx: &Ctx, index: usize, think: Think, target: &Cell<usize>) {
    let mut c = Client::new(ctx, 0x9e37_79b9_7f4a_7c15 ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let deadline = tokio::time::sleep(ctx.timeout);
    tokio::pin!(deadline);
    // First requests are spread over the first think time, not all at once.
    if !think.mean.is_zero() {
        let stagger = Duration::from_secs_f64(c.rng.f64() * think.mean.as_secs_f64().min(2.0));
        tokio::time::sleep(stagger).await;
    }
    while index < target.get() && !ctx.sh.stop.load(Ordering::Relaxed) {
        let intended = Instant::now();
        c.one(ctx, intended, &mut deadline).await;
        let tt = think.sample(&mut c.rng);
        if !tt.is_zero() {
            tokio::time::sleep(tt).await;
        }
    }
}

/// Open loop: each connection sends at its share of the rate; a request's
/// time counts from when it was due, not from when it could be sent.
async fn open(ctx: Rc<Ctx>, rate: Profile, connections: usize, end: Instant) {
    let n = connections.max(1);
    let mut tasks = Vec::new();
    let mut k = ctx.t;
    while k < n {
        let (c, rate) = (Rc::clone(&ctx), rate.clone());
        tasks.push(tokio::task::spawn_local(async move { open_conn(&c, &rate, k, n).await }));
        k += ctx.threads;
    }
    tokio::time::sleep_until(end).await;
    for t in tasks {
        t.abort();
    }
}

async fn open_conn(ctx: &Ctx, rate: &Profile, k: usize, n: usize) {
    let mut c = Client::new(ctx, 0x5851_f42d_4c95_7f2d ^ (k as u64).wrapping_mul(0x1405_7b7e_f767_814f));
    let deadline = tokio::time::sleep(ctx.timeout);
    tokio::pin!(deadline);
    let start = Instant::from_std(ctx.sh.start);
    let first_rate = rate.at(0.0);
    // Connections start staggered over one gap so arrivals are even.
    let mut due = if first_rate > 0.0 {
        start + Duration::from_secs_f64(n as f64 / first_rate * k as f64 / n as f64)
    } else {
        start
    };
    loop {
        let t = (due - start).as_secs_f64();
        let r = rate.at(t);
        if r <= 0.0 {
            due = due.max(Instant::now()) + Duration::from_millis(10);
            tokio::time::sleep_until(due).await;
            continue;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        c.one(ctx, due, &mut deadline).await;
        due += Duration::from_secs_f64(n as f64 / r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_times_have_their_mean_and_cap() {
        let think = Think { mean: Duration::from_secs(7), max: Duration::from_secs(70) };
        let mut rng = fastrand::Rng::with_seed(1);
        let n = 200_000;
        let v: Vec<f64> = (0..n).map(|_| think.sample(&mut rng).as_secs_f64()).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        assert!((mean - 7.0).abs() < 0.1, "mean {mean}");
        assert!(v.iter().all(|x| *x <= 70.0));
        assert!(v.iter().any(|x| *x > 40.0), "the tail reaches far");
        assert_eq!(Think { mean: Duration::ZERO, max: Duration::ZERO }.sample(&mut rng), Duration::ZERO);
    }
}
