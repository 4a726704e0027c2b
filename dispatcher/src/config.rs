//! What the dispatcher runs with: listeners, timeouts, limits and the
//! services with their routes, health, hold, retry and balance settings.
//! Built from a policy file ([`DispatchConfig::from_policy`]) or from
//! command-line upstreams alone ([`DispatchConfig::single_service`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use policies::model::{Balance, DispatcherConfig, Health, Hold, Retry, Route, ScaleDown, ScaleUp};
use policies::Policy;

use crate::error::DispatchError;

/// Every bounded wait of the proxy.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// A client must send a whole request head within this (slowloris guard).
    pub client_header: Duration,
    /// A client connection with no request in flight is closed after this.
    pub client_idle: Duration,
    /// Connecting to an upstream.
    pub upstream_connect: Duration,
    /// From request sent to response head.
    pub upstream_response: Duration,
    /// On SIGTERM/SIGINT, in-flight requests get this long.
    pub shutdown_grace: Duration,
}

/// Sizes beyond which a request is refused.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus headers, bytes.
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
    /// Request body, bytes.
    pub max_body_bytes: u64,
    /// Client connections open at once (further ones wait in the accept queue).
    pub max_connections: usize,
}

/// One service: a route and the pool of upstreams behind it.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Its name (in the admin API, metrics and logs).
    pub name: String,
    /// Which requests it takes.
    pub route: Route,
    /// Active checks and passive ejection.
    pub health: Health,
    /// Holding requests while no upstream is ready.
    pub hold: Hold,
    /// Retries and their budget.
    pub retry: Retry,
    /// Slow start of new upstreams.
    pub balance: Balance,
    /// Longest window the policy reads (scale-up or scale-down), so that the
    /// latency history kept per second covers it.
    pub history: Duration,
    /// Upstreams in the pool at start.
    pub upstreams: Vec<SocketAddr>,
}

/// Everything the dispatcher runs with.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Client-facing address (port 0: any free port).
    pub listen: String,
    /// Admin API address; `None` runs no admin API.
    pub admin_listen: Option<String>,
    /// Bearer token of the admin API.
    pub admin_token: Option<String>,
    /// Worker threads (each with its own listening socket and upstream pools).
    pub threads: usize,
    /// Bounded waits.
    pub timeouts: Timeouts,
    /// Size limits.
    pub limits: Limits,
    /// Services in route order.
    pub services: Vec<ServiceConfig>,
    /// Run active health checks (tests and benchmarks may turn them off).
    pub active_health: bool,
    /// Serve plain HTTP/1.1 on the fast path (off: every request through hyper).
    pub fast_path: bool,
}

/// Parses `HOST:PORT` (a name is resolved once, now).
pub fn parse_addr(what: &'static str, text: &str) -> Result<SocketAddr, DispatchError> {
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| DispatchError::BadAddress { what, given: text.to_string() })
}

/// One worker per core unless told otherwise.
fn threads_or_cores(threads: u32) -> usize {
    if threads > 0 {
        threads as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl DispatchConfig {
    /// The dispatcher of a policy file: its `[dispatcher]` and its services,
    /// with no upstreams yet (the provisioner, or `--upstream`, adds them).
    pub fn from_policy(p: &Policy) -> DispatchConfig {
        let services = p
            .services
            .iter()
            .map(|s| ServiceConfig {
                name: s.name.clone(),
                route: s.route.clone(),
                health: s.health.clone(),
                hold: s.hold.clone(),
                retry: s.retry.clone(),
                balance: s.balance.clone(),
                history: s.scale_up.window.0.max(s.scale_down.window.0),
                upstreams: Vec::new(),
            })
            .collect();
        DispatchConfig::with_services(&p.dispatcher, services)
    }

    /// One service `default` that takes every request, with the policy
    /// defaults: what `twinkle dispatch --upstream ...` runs without a policy.
    pub fn single_service(upstreams: Vec<SocketAddr>) -> DispatchConfig {
        let service = ServiceConfig {
            name: "default".into(),
            route: Route::default(),
            health: Health::default(),
            hold: Hold::default(),
            retry: Retry::default(),
            balance: Balance::default(),
            history: ScaleUp::default().window.0.max(ScaleDown::default().window.0),
            upstreams,
        };
        DispatchConfig::with_services(&DispatcherConfig::default(), vec![service])
    }

    fn with_services(d: &DispatcherConfig, services: Vec<ServiceConfig>) -> DispatchConfig {
        DispatchConfig {
            listen: d.listen.clone(),
            admin_listen: Some(d.admin_listen.clone()),
            admin_token: d.admin_token.clone(),
            threads: threads_or_cores(d.threads),
            timeouts: Timeouts {
                client_header: d.timeouts.client_header.0,
                client_idle: d.timeouts.client_idle.0,
                upstream_connect: d.timeouts.upstream_connect.0,
                upstream_response: d.timeouts.upstream_response.0,
                shutdown_grace: d.timeouts.shutdown_grace.0,
            },
            limits: Limits {
                max_header_bytes: d.limits.max_header_bytes.bytes() as usize,
                max_headers: d.limits.max_headers as usize,
                max_body_bytes: d.limits.max_body_bytes.bytes(),
                max_connections: d.limits.max_connections as usize,
            },
            services,
            active_health: true,
            fast_path: true,
        }
    }

    /// The service called `name`, for adding upstreams to it.
    pub fn service_mut(&mut self, name: &str) -> Result<&mut ServiceConfig, DispatchError> {
        let known = self.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", ");
        self.services
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| DispatchError::UnknownService { name: name.to_string(), known })
    }
}
