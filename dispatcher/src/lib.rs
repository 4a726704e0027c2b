//! twinkle's dispatcher: the HTTP load balancer in front of the VMs.
//!
//! Clients connect to worker threads (one single-threaded runtime and one
//! SO_REUSEPORT socket each, [`server`]); each request is routed by Host and
//! path to a service, checked ([`hygiene`]), held while the service has no
//! ready upstream, sent to one upstream picked by power of two random choices
//! over outstanding requests ([`pool`]) on a pooled keep-alive connection
//! ([`client`]), retried within a budget, and measured into per-second
//! histograms ([`stats`]) that the scaling policy reads over its windows.
//! Pool membership changes at run time through [`Dispatcher`] (the
//! provisioner, in-process) or the admin API ([`admin`]); the dispatcher
//! knows nothing about VMs.

pub mod admin;
pub mod body;
pub mod client;
pub mod config;
pub mod error;
pub mod fast;
pub mod health;
pub mod hygiene;
pub mod pool;
pub mod proxy;
pub mod server;
pub mod stats;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use policies::decide::WindowStats;
use policies::RouteTable;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

pub use config::{parse_addr, DispatchConfig, Limits, ServiceConfig, Timeouts};
pub use error::DispatchError;
pub use pool::{UpstreamState, UpstreamView};

use pool::Service;
use stats::Stats;

/// Mean in-flight requests per second, sampled every 100 ms.
pub struct InflightSamples {
    ring: Mutex<VecDeque<(u64, f64, u32)>>,
    keep: u64,
}

impl InflightSamples {
    fn new(keep_seconds: u64) -> Self {
        InflightSamples { ring: Mutex::new(VecDeque::new()), keep: keep_seconds.max(1) + 1 }
    }

    /// Adds a sample taken during `second`.
    pub fn sample(&self, second: u64, value: f64) {
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        match r.back_mut() {
            Some((s, sum, n)) if *s == second => {
                *sum += value;
                *n += 1;
            }
            _ => r.push_back((second, value, 1)),
        }
        while r.front().is_some_and(|(s, _, _)| s + self.keep <= second) {
            r.pop_front();
        }
    }

    /// Mean over the seconds `(now - n, now]`.
    pub fn mean(&self, now: u64, n: u64) -> f64 {
        let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let (sum, count) = r
            .iter()
            .filter(|(s, _, _)| *s <= now && s + n > now)
            .fold((0.0, 0u32), |(a, c), (_, sum, k)| (a + sum, c + k));
        if count == 0 {
            0.0
        } else {
            sum / f64::from(count)
        }
    }
}

/// What every worker and the admin API share.
pub struct Shared {
    /// Settings.
    pub cfg: DispatchConfig,
    /// Services in route order.
    pub services: Vec<Arc<Service>>,
    /// Host + path prefix -> service index.
    pub routes: RouteTable,
    /// Measurements.
    pub stats: Stats,
    /// Next upstream id.
    pub ids: AtomicU64,
    /// Time zero of ejection clocks.
    pub epoch: Instant,
    /// Requests no route took (404).
    pub unrouted: AtomicU64,
    /// In-flight samples per service.
    pub inflight: Vec<InflightSamples>,
    /// One service that takes every request: routing is skipped.
    pub catch_all: bool,
    /// Plain HTTP/1.1 goes through the fast path ([`fast`]); off, everything goes through hyper.
    pub fast_path: bool,
}

impl Shared {
    /// The service a request for `host` and `path` goes to.
    pub fn route(&self, host: &str, path: &str) -> Option<usize> {
        if self.catch_all {
            return Some(0);
        }
        self.routes.select(host, path)
    }

    fn service(&self, name: &str) -> Result<&Arc<Service>, DispatchError> {
        self.services.iter().find(|s| s.cfg.name == name).ok_or_else(|| DispatchError::UnknownService {
            name: name.to_string(),
            known: self.services.iter().map(|s| s.cfg.name.clone()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Adds `addr` to service `name`'s pool.
    pub fn add_upstream(&self, name: &str, addr: SocketAddr) -> Result<UpstreamView, DispatchError> {
        let u = self.service(name)?.add(addr, &self.ids, self.epoch)?;
        tracing::info!(service = name, upstream = %addr, "upstream added");
        Ok(u.view())
    }

    /// Drains `addr` out of service `name`'s pool (in-flight requests finish).
    pub fn remove_upstream(&self, name: &str, addr: SocketAddr) -> Result<UpstreamView, DispatchError> {
        let u = self.service(name)?.drain(addr)?;
        tracing::info!(service = name, upstream = %addr, inflight = u.inflight.load(Ordering::Relaxed), "upstream draining");
        Ok(u.view())
    }

    /// Service `name` over the last `window`: what the scaling policy reads.
    pub fn window(&self, name: &str, window: Duration) -> Result<WindowStats, DispatchError> {
        let svc = self.service(name)?;
        let i = svc.index;
        let inflight = self.inflight[i].mean(self.stats.now_second(), window.as_secs().max(1));
        Ok(self.stats.window_stats(i, window, inflight))
    }

    /// Everything, for `GET /status`.
    pub fn status(&self, window: Duration) -> Status {
        let services = self
            .services
            .iter()
            .map(|s| {
                let m = self.stats.service(s.index, window);
                let lat = m.latency();
                ServiceStatus {
                    name: s.cfg.name.clone(),
                    host: s.cfg.route.host.clone(),
                    path_prefix: s.cfg.route.path_prefix.clone(),
                    inflight: s.inflight.load(Ordering::Relaxed),
                    held: s.held.load(Ordering::Relaxed),
                    window_s: m.seconds,
                    requests: m.requests,
                    errors: m.errors,
                    rps: m.rps(),
                    p50_ms: lat.map(|l| l.p50_ms),
                    p90_ms: lat.map(|l| l.p90_ms),
                    p99_ms: lat.map(|l| l.p99_ms),
                    max_ms: lat.map(|_| m.max_ms()),
                    upstreams: s
                        .upstreams()
                        .iter()
                        .chain(s.draining().iter())
                        .map(|u| {
                            let um = self.stats.upstream(u.id, window);
                            let ul = um.latency();
                            UpstreamStatus {
                                view: u.view(),
                                rps: um.rps(),
                                p50_ms: ul.map(|l| l.p50_ms),
                                p90_ms: ul.map(|l| l.p90_ms),
                                p99_ms: ul.map(|l| l.p99_ms),
                                requests_total: um.totals.requests,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        Status {
            uptime_s: self.epoch.elapsed().as_secs_f64(),
            unrouted: self.unrouted.load(Ordering::Relaxed),
            services,
        }
    }
}

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Seconds since start.
    pub uptime_s: f64,
    /// Requests no route took.
    pub unrouted: u64,
    /// Per service.
    pub services: Vec<ServiceStatus>,
}

/// One service in [`Status`].
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    /// Name.
    pub name: String,
    /// Route host.
    pub host: String,
    /// Route path prefix.
    pub path_prefix: String,
    /// Requests in flight.
    pub inflight: u32,
    /// Requests waiting for an upstream.
    pub held: u32,
    /// Window the figures cover, s.
    pub window_s: f64,
    /// Requests in the window.
    pub requests: u64,
    /// Proxy errors in the window.
    pub errors: u64,
    /// Requests per second over the window.
    pub rps: f64,
    /// Median response time, ms.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Highest, ms.
    pub max_ms: Option<f64>,
    /// Pool, then draining upstreams.
    pub upstreams: Vec<UpstreamStatus>,
}

/// One upstream in [`Status`].
#[derive(Debug, Serialize)]
pub struct UpstreamStatus {
    /// State.
    #[serde(flatten)]
    pub view: UpstreamView,
    /// Attempts per second over the window (at most 10 s).
    pub rps: f64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Attempts since it joined.
    pub requests_total: u64,
}

/// A running dispatcher.
pub struct Dispatcher {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    background: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Binds the listeners and starts the workers, the admin API and the
    /// health checks.
    pub fn start(cfg: DispatchConfig) -> Result<Dispatcher, DispatchError> {
        let routes = RouteTable::new(cfg.services.iter().map(|s| &s.route)).map_err(DispatchError::Config)?;
        if cfg.services.is_empty() {
            return Err(DispatchError::Config("the dispatcher needs at least one service".into()));
        }
        if let (Some(admin), None) = (&cfg.admin_listen, &cfg.admin_token) {
            let a = parse_addr("--admin", admin)?;
            if !a.ip().is_loopback() {
                return Err(DispatchError::Config(format!(
                    "the admin API on {admin} would be reachable from other hosts: give it a token \
                     (--admin-token or [dispatcher].admin_token), or bind it to 127.0.0.1"
                )));
            }
        }
        let epoch = Instant::now();
        let ids = AtomicU64::new(1);
        let services: Vec<Arc<Service>> =
            cfg.services.iter().enumerate().map(|(i, s)| Arc::new(Service::new(i, s.clone(), &ids, epoch))).collect();
        let history: Vec<Duration> = cfg.services.iter().map(|s| s.history.max(Duration::from_secs(10))).collect();
        let threads = cfg.threads.max(1);
        let shared = Arc::new(Shared {
            stats: Stats::new(threads, &history),
            inflight: history.iter().map(|h| InflightSamples::new(h.as_secs())).collect(),
            routes,
            services,
            ids,
            epoch,
            unrouted: AtomicU64::new(0),
            catch_all: cfg.services.len() == 1
                && cfg.services[0].route.host == "*"
                && cfg.services[0].route.path_prefix == "/",
            fast_path: cfg.fast_path,
            cfg,
        });

        let listen = parse_addr("--listen", &shared.cfg.listen)?;
        let listen_err = |source| DispatchError::Listen { addr: shared.cfg.listen.clone(), source };
        let first = server::bind_shared(listen).map_err(listen_err)?;
        let local_addr = first.local_addr().map_err(listen_err)?;
        let mut sockets = vec![first];
        for _ in 1..threads {
            sockets.push(server::bind_shared(local_addr).map_err(listen_err)?);
        }
        let admin_listener = match &shared.cfg.admin_listen {
            Some(a) => {
                let addr = parse_addr("--admin", a)?;
                let l = std::net::TcpListener::bind(addr)
                    .map_err(|source| DispatchError::Listen { addr: a.clone(), source })?;
                l.set_nonblocking(true).map_err(|source| DispatchError::Listen { addr: a.clone(), source })?;
                Some(l)
            }
            None => None,
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let (tx, rx) = watch::channel(false);
        let limit = Arc::new(Semaphore::new(shared.cfg.limits.max_connections.max(1)));
        let mut workers = Vec::new();
        for (i, sock) in sockets.into_iter().enumerate() {
            let (sh, lim, stop) = (Arc::clone(&shared), Arc::clone(&limit), rx.clone());
            let h = std::thread::Builder::new()
                .name(format!("dispatch-{i}"))
                .spawn(move || {
                    if let Err(e) = server::worker_main(i, sh, sock, lim, stop) {
                        tracing::error!(worker = i, "worker failed: {e}");
                    }
                })
                .map_err(|source| DispatchError::Start { what: format!("worker thread {i}"), source })?;
            workers.push(h);
        }
        let sh = Arc::clone(&shared);
        let stop = rx.clone();
        let background = std::thread::Builder::new()
            .name("dispatch-admin".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("admin runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut tasks = vec![tokio::spawn(health::housekeeping(Arc::clone(&sh)))];
                    if sh.cfg.active_health {
                        for i in 0..sh.services.len() {
                            tasks.push(tokio::spawn(health::check_service(Arc::clone(&sh), i)));
                        }
                    }
                    if let Some(l) = admin_listener {
                        tasks.push(tokio::spawn(admin::serve(Arc::clone(&sh), l, stop.clone())));
                    }
                    let mut stop = stop;
                    let _ = stop.wait_for(|s| *s).await;
                    for t in tasks {
                        t.abort();
                    }
                });
            })
            .map_err(|source| DispatchError::Start { what: "admin thread".into(), source })?;
        Ok(Dispatcher { shared, local_addr, admin_addr, shutdown: tx, workers, background: Some(background) })
    }

    /// The client-facing address (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin API's address, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The state the workers share: pool changes and measurements.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace
    /// time) and waits for every thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.shutdown.send(true);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.background.take() {
            let _ = h.join();
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub fn run_until_signal(self) -> Result<(), DispatchError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| DispatchError::Start { what: "signal runtime".into(), source })?;
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|source| DispatchError::Start { what: "SIGTERM handler".into(), source })?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            Ok::<(), DispatchError>(())
        })?;
        tracing::info!("shutting down: no new connections; in-flight requests finish");
        self.shutdown();
        Ok(())
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop_and_join();
        }
    }
}
