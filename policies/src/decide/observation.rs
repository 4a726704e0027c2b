//! What the Decider is told about a service at each tick: windowed
//! measurements from the dispatcher and instance states from the provisioner.

use std::fmt;

use crate::clock::Timestamp;
use crate::model::Metric;

/// Response-time percentiles over a window, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// The same value for every statistic (handy for traces and tests).
    pub fn flat(ms: f64) -> Self {
        LatencySummary { p50_ms: ms, p90_ms: ms, p95_ms: ms, p99_ms: ms, mean_ms: ms }
    }
}

/// Measurements of one service over one sliding window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowStats {
    /// Requests completed in the window.
    pub requests: u64,
    /// Mean completed requests per second over the window.
    pub rps: f64,
    /// Mean requests in flight over the window.
    pub inflight: f64,
    /// Response times; `None` when no request completed in the window.
    pub latency: Option<LatencySummary>,
}

/// Identifies an instance for the provisioner; opaque to the Decider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(pub u64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Started, not yet serving (counts toward capacity: no double provisioning).
    Starting,
    /// In the upstream pool, serving.
    Ready,
    /// Leaving: gets no new requests, finishes in-flight ones. Not capacity.
    Draining,
    /// Crashed, killed or failed its health checks for good. Not capacity.
    Dead,
}

/// One instance as the Decider sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceView {
    /// Its identity.
    pub id: InstanceId,
    /// Its state.
    pub state: InstanceState,
    /// When it entered that state.
    pub since: Timestamp,
    /// Requests in flight on it now (used to pick which to stop).
    pub inflight: u32,
}

/// Everything the Decider needs about one service at one moment.
///
/// Contract with the caller: actions returned by one `decide` call are applied
/// before the next observation is taken (a `Start` shows up as `Starting`
/// instances, a `Stop` as `Draining`, a `Replace` as a new `Starting` instance
/// with the dead one gone or still `Dead`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Over `scale_up.window`.
    pub up: WindowStats,
    /// Over `scale_down.window`.
    pub down: WindowStats,
    /// Requests held by the dispatcher because no instance is ready.
    pub queued: u32,
    /// The service's instances.
    pub instances: Vec<InstanceView>,
}

/// Instance counts by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Starting.
    pub starting: u32,
    /// Ready.
    pub ready: u32,
    /// Draining.
    pub draining: u32,
    /// Dead.
    pub dead: u32,
}

impl Counts {
    /// Counts the instances of an observation.
    pub fn of(instances: &[InstanceView]) -> Counts {
        let mut c = Counts::default();
        for i in instances {
            match i.state {
                InstanceState::Starting => c.starting += 1,
                InstanceState::Ready => c.ready += 1,
                InstanceState::Draining => c.draining += 1,
                InstanceState::Dead => c.dead += 1,
            }
        }
        c
    }

    /// Instances that are or will soon be capacity: ready + starting.
    pub fn active(self) -> u32 {
        self.ready + self.starting
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ready", self.ready)?;
        if self.starting > 0 {
            write!(f, " + {} starting", self.starting)?;
        }
        if self.draining > 0 {
            write!(f, ", {} draining", self.draining)?;
        }
        if self.dead > 0 {
            write!(f, ", {} dead", self.dead)?;
        }
        Ok(())
    }
}

/// The value of `metric` in a window for a service with `ready` serving
/// instances, or `None` when the window has no data for it.
pub fn metric_value(metric: Metric, w: &WindowStats, ready: u32) -> Option<f64> {
    let per = f64::from(ready.max(1));
    match metric {
        Metric::P50 => w.latency.map(|l| l.p50_ms),
        Metric::P90 => w.latency.map(|l| l.p90_ms),
        Metric::P95 => w.latency.map(|l| l.p95_ms),
        Metric::P99 => w.latency.map(|l| l.p99_ms),
        Metric::Mean => w.latency.map(|l| l.mean_ms),
        Metric::InflightPerInstance => Some(w.inflight / per),
        Metric::RpsPerInstance => Some(w.rps / per),
    }
    .filter(|v| v.is_finite())
}

/// Formats a metric value with its unit, for reasons.
pub fn fmt_metric(metric: Metric, v: f64) -> String {
    if metric.is_latency() {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} {}", metric.unit())
    }
}
