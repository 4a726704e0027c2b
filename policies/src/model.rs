//! The effective policy: plain data with every default filled in.
//!
//! This is what the rest of twinkle consumes (the dispatcher reads `dispatcher`,
//! `route`, `health`, `hold`, `retry`, `balance`; the provisioner reads `image`,
//! `start`, `instance`, `connect`; the [`Decider`](crate::Decider) reads the
//! scaling rules). The loader builds it from TOML; `policy explain` prints it.
//! Defaults live in the `Default` impls here and nowhere else.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::units::{Bandwidth, ByteSize, Dur, Step};

/// A whole policy file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    /// The HTTP front end: listeners, timeouts, limits.
    pub dispatcher: DispatcherConfig,
    /// Where snapshots are kept and how remote fetches are emulated.
    pub images: ImagesConfig,
    /// The services, in file order.
    #[serde(rename = "service")]
    pub services: Vec<ServicePolicy>,
}

impl Policy {
    /// The service named `name`, if the policy has one.
    pub fn service(&self, name: &str) -> Option<&ServicePolicy> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// `[dispatcher]`: the reverse proxy's listeners, timeouts and limits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DispatcherConfig {
    /// Address the proxy accepts client connections on.
    pub listen: String,
    /// Address of the admin API (status, metrics, pool membership).
    pub admin_listen: String,
    /// Bearer token the admin API requires; mandatory when `admin_listen` is not loopback.
    #[serde(serialize_with = "redact", skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Worker threads; 0 means one per core.
    pub threads: u32,
    /// `[dispatcher.timeouts]`.
    pub timeouts: Timeouts,
    /// `[dispatcher.limits]`.
    pub limits: Limits,
}

fn redact<S: Serializer>(token: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            admin_token: None,
            threads: 0,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
        }
    }
}

/// `[dispatcher.timeouts]`: every wait the proxy can be made to do is bounded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeouts {
    /// Time a client has to send the whole request head (slowloris guard).
    pub client_header: Dur,
    /// Idle keep-alive connections from clients are closed after this.
    pub client_idle: Dur,
    /// Connecting to an upstream.
    pub upstream_connect: Dur,
    /// From request sent to response head received from an upstream.
    pub upstream_response: Dur,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub shutdown_grace: Dur,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_header: Dur::from_secs(10),
            client_idle: Dur::from_secs(60),
            upstream_connect: Dur::from_secs(1),
            upstream_response: Dur::from_secs(30),
            shutdown_grace: Dur::from_secs(30),
        }
    }
}

/// `[dispatcher.limits]`: sizes beyond which a request is refused.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limits {
    /// Total size of the request line and headers.
    pub max_header_bytes: ByteSize,
    /// Number of request headers.
    pub max_headers: u32,
    /// Request body size.
    pub max_body_bytes: ByteSize,
    /// Client connections open at once; further ones wait in the accept queue.
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: ByteSize(64 * 1024),
            max_headers: 100,
            max_body_bytes: ByteSize(16 * 1024 * 1024),
            max_connections: 10_000,
        }
    }
}

/// `[images]`: the image store and the emulated link to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImagesConfig {
    /// Local directory (relative to the policy file), `http://host:port/prefix`, or `s3://bucket/prefix`.
    pub store: String,
    /// Emulated link for remote page fetches; absent means no emulation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkEmulation>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig { store: "images".into(), link: None }
    }
}

/// `[images.link]`: bandwidth and round-trip time added to image-store reads,
/// to reproduce the paper's "remote page" setting on one machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkEmulation {
    /// Throughput cap.
    pub bandwidth: Bandwidth,
    /// Added round-trip time per request.
    pub rtt: Dur,
}

/// How a new instance is started (see docs/architecture.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartStrategy {
    /// Boot the guest and run the application's initialization.
    Cold,
    /// Read the whole snapshot into memory, then run.
    Resume,
    /// Every page fetched on first touch (userfaultfd).
    Lazy,
    /// Guest memory is a private mapping of the snapshot's memory file.
    Mmap,
    /// Working set first, then demand prediction, free-page avoidance, background fetch.
    Twinkle,
}

impl StartStrategy {
    /// Every strategy with its name in the policy language.
    pub const ALL: [(&'static str, StartStrategy); 5] = [
        ("cold", StartStrategy::Cold),
        ("resume", StartStrategy::Resume),
        ("lazy", StartStrategy::Lazy),
        ("mmap", StartStrategy::Mmap),
        ("twinkle", StartStrategy::Twinkle),
    ];
}

/// One service: where its requests come from, what runs it, how it scales.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServicePolicy {
    /// Unique name (`[a-z0-9][a-z0-9_-]*`), used in the admin API and metrics.
    pub name: String,
    /// Which requests belong to this service.
    pub route: Route,
    /// The prepared snapshot, resolved against `[images].store` when relative.
    pub image: String,
    /// How new instances start.
    pub start: StartStrategy,
    /// Never fewer instances than this (0 allows scale to zero, with `hold`).
    pub min_instances: u32,
    /// Never more instances than this.
    pub max_instances: u32,
    /// Size of each instance.
    pub instance: InstanceSpec,
    /// Outbound endpoints the guest may connect to, by name (e.g. `redis`).
    pub connect: BTreeMap<String, String>,
    /// When to add instances.
    pub scale_up: ScaleUp,
    /// When to remove instances.
    pub scale_down: ScaleDown,
    /// Active health checks and passive ejection.
    pub health: Health,
    /// Holding requests while no instance is ready.
    pub hold: Hold,
    /// Retrying failed requests.
    pub retry: Retry,
    /// Replacing dead instances.
    pub failover: Failover,
    /// Spreading requests over instances.
    pub balance: Balance,
}

/// `route`: a service's share of the traffic, by Host header and path prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// `*` (any), an exact host (`shop.example.com`) or a wildcard (`*.example.com`). Lower case.
    pub host: String,
    /// A path prefix that starts with `/`; matched on whole path segments.
    pub path_prefix: String,
}

impl Default for Route {
    fn default() -> Self {
        Route { host: "*".into(), path_prefix: "/".into() }
    }
}

/// `instance`: the size of one VM.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceSpec {
    /// Guest memory in MiB; a multiple of 2 (guest memory is mapped in 2 MiB pages).
    pub mem_mib: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// CPU cap of the VM process in percent of one core (cgroup CFS quota).
    pub cpu_quota_pct: u32,
    /// An instance not ready after this long is replaced.
    pub start_timeout: Dur,
}

impl Default for InstanceSpec {
    fn default() -> Self {
        InstanceSpec { mem_mib: 256, vcpus: 1, cpu_quota_pct: 100, start_timeout: Dur::from_secs(30) }
    }
}

/// The measurement a service scales on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median response time.
    P50,
    /// 90th percentile response time.
    P90,
    /// 95th percentile response time.
    P95,
    /// 99th percentile response time.
    P99,
    /// Mean response time.
    Mean,
    /// Mean in-flight requests per ready instance.
    InflightPerInstance,
    /// Requests per second per ready instance.
    RpsPerInstance,
}

impl Metric {
    /// Every metric with its name in the policy language.
    pub const ALL: [(&'static str, Metric); 7] = [
        ("p50", Metric::P50),
        ("p90", Metric::P90),
        ("p95", Metric::P95),
        ("p99", Metric::P99),
        ("mean", Metric::Mean),
        ("inflight_per_instance", Metric::InflightPerInstance),
        ("rps_per_instance", Metric::RpsPerInstance),
    ];

    /// Whether the metric is a response time (thresholds in milliseconds).
    pub fn is_latency(self) -> bool {
        !matches!(self, Metric::InflightPerInstance | Metric::RpsPerInstance)
    }

    /// The metric's name in the policy language.
    pub fn name(self) -> &'static str {
        Metric::ALL.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// The unit its values are shown in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::InflightPerInstance => "in flight/instance",
            Metric::RpsPerInstance => "req/s/instance",
            _ => "ms",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[service.scale_up]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleUp {
    /// What is compared with the threshold.
    pub metric: Metric,
    /// Above this the service is too slow (ms for latency metrics).
    pub threshold: f64,
    /// The sliding window the metric is computed over.
    pub window: Dur,
    /// The metric must stay above the threshold this long before acting.
    pub sustain: Dur,
    /// Instances added per scale-up.
    pub step: Step,
    /// Cap on one scale-up (matters for percentage steps).
    pub max_step: u32,
    /// Minimum time between two scale-ups.
    pub cooldown: Dur,
    /// Stop adding after this many scale-ups in a row that improved neither
    /// the metric nor throughput (0 disables the guard).
    pub give_up_after: u32,
    /// What counts as an improvement, in percent.
    pub min_improvement_pct: u32,
}

impl Default for ScaleUp {
    fn default() -> Self {
        ScaleUp {
            metric: Metric::P99,
            threshold: 2000.0,
            window: Dur::from_secs(10),
            sustain: Dur::from_secs(2),
            step: Step::Count(1),
            max_step: 4,
            cooldown: Dur::from_secs(5),
            give_up_after: 3,
            min_improvement_pct: 10,
        }
    }
}

/// The threshold key's name for a metric: `threshold_ms` for response times,
/// `threshold` for the per-instance metrics.
pub fn threshold_key(metric: Metric) -> &'static str {
    if metric.is_latency() {
        "threshold_ms"
    } else {
        "threshold"
    }
}

/// The scale-down key's name for a metric: `below_ms` or `below`.
pub fn below_key(metric: Metric) -> &'static str {
    if metric.is_latency() {
        "below_ms"
    } else {
        "below"
    }
}

fn number_value(v: f64) -> serde_json::Number {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Number::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

impl Serialize for ScaleUp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ScaleUp", 9)?;
        st.serialize_field("metric", &self.metric)?;
        st.serialize_field(threshold_key(self.metric), &number_value(self.threshold))?;
        st.serialize_field("window", &self.window)?;
        st.serialize_field("sustain", &self.sustain)?;
        st.serialize_field("step", &self.step)?;
        st.serialize_field("max_step", &self.max_step)?;
        st.serialize_field("cooldown", &self.cooldown)?;
        st.serialize_field("give_up_after", &self.give_up_after)?;
        st.serialize_field("min_improvement_pct", &self.min_improvement_pct)?;
        st.end()
    }
}

/// `[service.scale_down]`. Uses the scale-up metric, over its own window.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleDown {
    /// The metric of `scale_up`, copied here so a `ScaleDown` can be read alone.
    pub metric: Metric,
    /// Below this the service has capacity to spare.
    pub below: f64,
    /// The sliding window the metric is computed over.
    pub window: Dur,
    /// The metric must have been below `below` (and nothing scaled up) this long.
    pub stabilization: Dur,
    /// Instances removed per scale-down.
    pub step: Step,
    /// Minimum time between two scale-downs.
    pub cooldown: Dur,
}

impl Default for ScaleDown {
    fn default() -> Self {
        ScaleDown {
            metric: Metric::P99,
            below: 500.0,
            window: Dur::from_secs(60),
            stabilization: Dur::from_secs(300),
            step: Step::Count(1),
            cooldown: Dur::from_secs(30),
        }
    }
}

impl Serialize for ScaleDown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ScaleDown", 5)?;
        st.serialize_field(below_key(self.metric), &number_value(self.below))?;
        st.serialize_field("window", &self.window)?;
        st.serialize_field("stabilization", &self.stabilization)?;
        st.serialize_field("step", &self.step)?;
        st.serialize_field("cooldown", &self.cooldown)?;
        st.end()
    }
}

/// `[service.health]`: active checks and passive ejection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    /// Path of the active check (GET; 2xx is healthy).
    pub path: String,
    /// Time between active checks of one instance.
    pub interval: Dur,
    /// An active check not answered in this time failed.
    pub timeout: Dur,
    /// Consecutive failed checks that mark an instance unhealthy.
    pub unhealthy_after: u32,
    /// Consecutive good checks that mark it healthy again.
    pub healthy_after: u32,
    /// Consecutive failed requests (connect failure, reset, 5xx) that eject an instance.
    pub eject_after: u32,
    /// First ejection time; doubles on each repeated ejection.
    pub eject_for: Dur,
    /// Cap on the ejection time.
    pub eject_max: Dur,
    /// Never eject more than this percentage of a service's instances.
    pub max_ejected_pct: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            path: "/health".into(),
            interval: Dur::from_secs(1),
            timeout: Dur::from_millis(500),
            unhealthy_after: 3,
            healthy_after: 2,
            eject_after: 5,
            eject_for: Dur::from_secs(10),
            eject_max: Dur::from_secs(300),
            max_ejected_pct: 50,
        }
    }
}

/// `[service.hold]`: requests wait for an instance instead of failing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hold {
    /// Longest a request waits for a ready instance before a 503.
    pub max_wait: Dur,
    /// Most requests held at once; beyond that, 503 at once.
    pub max_queue: u32,
}

impl Default for Hold {
    fn default() -> Self {
        Hold { max_wait: Dur::from_secs(5), max_queue: 1000 }
    }
}

/// What makes a request eligible for a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryOn {
    /// The upstream connection could not be made (always safe to retry).
    ConnectFailure,
    /// The connection was reset before a response.
    Reset,
    /// No response within the upstream response timeout.
    Timeout,
    /// Any 5xx status.
    Any5xx,
    /// This exact status (500..=599).
    Status(u16),
}

impl RetryOn {
    /// The condition's name in the policy language.
    pub fn name(self) -> String {
        match self {
            RetryOn::ConnectFailure => "connect-failure".into(),
            RetryOn::Reset => "reset".into(),
            RetryOn::Timeout => "timeout".into(),
            RetryOn::Any5xx => "5xx".into(),
            RetryOn::Status(code) => code.to_string(),
        }
    }
}

impl Serialize for RetryOn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// `[service.retry]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retry {
    /// Retries after the first try (0 disables).
    pub attempts: u32,
    /// Retries may add at most this percentage to the request rate.
    pub budget_pct: u32,
    /// When to retry. Non-idempotent requests are retried only on connect-failure.
    pub on: Vec<RetryOn>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 2,
            budget_pct: 20,
            on: vec![RetryOn::ConnectFailure, RetryOn::Reset, RetryOn::Status(502), RetryOn::Status(503)],
        }
    }
}

/// `[service.failover]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failover {
    /// Replace a dead instance at once, outside any cooldown.
    pub replace: bool,
}

impl Default for Failover {
    fn default() -> Self {
        Failover { replace: true }
    }
}

/// `[service.balance]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Balance {
    /// A new instance's share of requests ramps up over this time (0s: at once).
    pub slow_start: Dur,
}

impl Default for Balance {
    fn default() -> Self {
        Balance { slow_start: Dur::from_secs(0) }
    }
}
