//! `policy simulate`: replays a per-second trace through the Decider and a
//! model of the instances, so a user can see what a policy would do before
//! deploying it.
//!
//! Model: each second the window statistics are computed from the trace rows
//! in the window (latency percentiles as the request-weighted mean of the
//! per-second values: exact for the mean, an approximation for percentiles),
//! the Decider is called, and its actions are applied to a simulated fleet in
//! which instances take `start_time` to become ready. Latencies are replayed as
//! recorded, unless the trace has an `instances` column: then they are scaled by
//! (instances when recorded) / (instances ready in the simulation), a crude
//! "latency grows with load per instance" model that lets scale-ups show effect.

mod fleet;
mod trace;

use std::time::Duration;

use serde::Serialize;

pub use fleet::Fleet;
pub use trace::{parse_trace, Sample, Trace, COLUMNS};

use crate::clock::Timestamp;
use crate::decide::{fmt_metric, metric_value, Action, Decider, LatencySummary, Observation, Rule, WindowStats};
use crate::error::PolicyError;
use crate::model::{Metric, ServicePolicy, StartStrategy};

/// Settings of a simulation run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Time a started instance takes to become ready.
    pub start_time: Duration,
    /// Time a stopped instance takes to leave.
    pub drain_time: Duration,
}

impl SimOptions {
    /// Start times assumed for each strategy when the user gives none: rough
    /// orders of magnitude (boot + application init for `cold`, reading a
    /// whole image for `resume`); `twinkle bench startup` measures real ones.
    pub fn assumed_start_time(strategy: StartStrategy) -> Duration {
        Duration::from_millis(match strategy {
            StartStrategy::Cold => 10_000,
            StartStrategy::Resume => 2_000,
            StartStrategy::Lazy | StartStrategy::Mmap => 300,
            StartStrategy::Twinkle => 100,
        })
    }
}

/// One action in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ActionRecord {
    /// `start`, `stop` or `replace`.
    pub kind: &'static str,
    /// Instances started or stopped (1 for replace).
    pub count: u32,
    /// The rule, e.g. `ScaleUp`.
    pub rule: String,
    /// The reason sentence.
    pub reason: String,
}

/// One simulated second.
#[derive(Clone, Debug, Serialize)]
pub struct TickRecord {
    /// Second of the trace.
    pub t: u64,
    /// The scale-up metric over its window (as the Decider saw it).
    pub metric: Option<f64>,
    /// Request rate that second.
    pub rps: Option<f64>,
    /// Instances after the tick's actions were applied.
    pub ready: u32,
    /// Starting instances.
    pub starting: u32,
    /// Draining instances.
    pub draining: u32,
    /// Dead instances.
    pub dead: u32,
    /// What the Decider did.
    pub actions: Vec<ActionRecord>,
    /// What the Decider noted.
    pub notes: Vec<String>,
}

/// Totals over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Scale-up actions (and instances they added).
    pub scale_ups: u32,
    /// Instances added by scale-ups.
    pub instances_added: u32,
    /// Scale-down actions.
    pub scale_downs: u32,
    /// Instances removed by scale-downs.
    pub instances_removed: u32,
    /// Replacements (dead or stuck instances).
    pub replacements: u32,
    /// Most instances active at once.
    pub max_active: u32,
    /// Sum over seconds of ready instances (cost).
    pub instance_seconds: u64,
    /// Seconds in which the scale-up metric was above the threshold.
    pub seconds_above_threshold: u64,
    /// Whether the "scaling did not help" guard tripped.
    pub guard_tripped: bool,
}

/// The result of a simulation.
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// The service simulated.
    pub service: String,
    /// The scale-up metric.
    pub metric: String,
    /// Its threshold.
    pub threshold: f64,
    /// Assumed start time in ms.
    pub start_time_ms: u64,
    /// Whether latencies were rescaled by the `instances` column.
    pub latency_model: bool,
    /// Every second.
    pub ticks: Vec<TickRecord>,
    /// Totals.
    pub summary: Summary,
}

/// Runs `policy` over `trace`.
pub fn simulate(
    policy: &ServicePolicy,
    trace: &Trace,
    opts: &SimOptions,
    trace_name: &str,
) -> Result<SimReport, PolicyError> {
    let metric = policy.scale_up.metric;
    check_columns(metric, trace, trace_name)?;
    let scale_latency = trace.has("instances");
    let mut decider = Decider::new(policy);
    let mut fleet = Fleet::new(opts.start_time, opts.drain_time);
    if let Some(first) = trace.samples.first() {
        fleet.seed_ready(Timestamp::from_secs(first.t), policy.min_instances);
    }
    let mut ticks = Vec::with_capacity(trace.samples.len());
    let mut summary = Summary::default();
    // Per-second latencies as the simulated fleet would have seen them.
    let mut seen: Vec<Sample> = Vec::with_capacity(trace.samples.len());
    for sample in &trace.samples {
        let now = Timestamp::from_secs(sample.t);
        fleet.advance(now);
        if sample.kill > 0 {
            fleet.kill(now, sample.kill);
        }
        let ready = fleet.counts().ready;
        seen.push(adjust(sample, ready, scale_latency));
        let obs = Observation {
            up: window(&seen, policy.scale_up.window.get()),
            down: window(&seen, policy.scale_down.window.get()),
            queued: sample.queued.unwrap_or(0.0).round() as u32,
            instances: fleet.views(),
        };
        let m = metric_value(metric, &obs.up, ready);
        if m.is_some_and(|v| v > policy.scale_up.threshold) {
            summary.seconds_above_threshold += 1;
        }
        let decision = decider.decide(now, &obs);
        fleet.apply(now, &decision.actions);
        let counts = fleet.counts();
        summary.max_active = summary.max_active.max(counts.active());
        summary.instance_seconds += u64::from(counts.ready);
        let mut actions = Vec::new();
        for a in &decision.actions {
            let r = a.reason();
            let (kind, count) = match a {
                Action::Start { count, .. } => ("start", *count),
                Action::Stop { instances, .. } => ("stop", instances.len() as u32),
                Action::Replace { .. } => ("replace", 1),
            };
            match r.rule {
                Rule::ScaleUp | Rule::ScaleFromZero => {
                    summary.scale_ups += 1;
                    summary.instances_added += count;
                }
                Rule::ScaleDown => {
                    summary.scale_downs += 1;
                    summary.instances_removed += count;
                }
                Rule::Replace | Rule::StartTimeout => summary.replacements += 1,
                _ => {}
            }
            actions.push(ActionRecord { kind, count, rule: format!("{:?}", r.rule), reason: r.text.clone() });
        }
        if decision.notes.iter().any(|n| n.rule == Rule::ScalingIneffective) {
            summary.guard_tripped = true;
        }
        ticks.push(TickRecord {
            t: sample.t,
            metric: m,
            rps: sample.rps,
            ready: counts.ready,
            starting: counts.starting,
            draining: counts.draining,
            dead: counts.dead,
            actions,
            notes: decision.notes.iter().map(|n| n.text.clone()).collect(),
        });
    }
    Ok(SimReport {
        service: policy.name.clone(),
        metric: metric.name().to_string(),
        threshold: policy.scale_up.threshold,
        start_time_ms: u64::try_from(opts.start_time.as_millis()).unwrap_or(u64::MAX),
        latency_model: scale_latency,
        ticks,
        summary,
    })
}

fn check_columns(metric: Metric, trace: &Trace, name: &str) -> Result<(), PolicyError> {
    let needed = match metric {
        Metric::P50 => "p50_ms",
        Metric::P90 => "p90_ms",
        Metric::P95 => "p95_ms",
        Metric::P99 => "p99_ms",
        Metric::Mean => "mean_ms",
        Metric::InflightPerInstance => "inflight",
        Metric::RpsPerInstance => "rps",
    };
    let has = trace.has(needed) || (metric.is_latency() && trace.has("latency_ms"));
    if has {
        Ok(())
    } else {
        Err(PolicyError::Trace {
            file: name.to_string(),
            message: format!(
                "the policy scales on {metric} but the trace has no `{needed}` column{}; columns: {}",
                if metric.is_latency() { " (or `latency_ms`)" } else { "" },
                trace.columns.join(", ")
            ),
        })
    }
}

fn adjust(s: &Sample, ready: u32, scale_latency: bool) -> Sample {
    let mut out = s.clone();
    if let (true, Some(recorded)) = (scale_latency, s.instances) {
        let factor = if ready == 0 { 1.0 } else { recorded.max(1.0) / f64::from(ready) };
        for l in out.latency.iter_mut().flatten() {
            *l *= factor;
        }
    }
    out
}

/// Window statistics over the samples of the last `len` (whole seconds).
fn window(seen: &[Sample], len: Duration) -> WindowStats {
    let secs = (len.as_secs() as usize).max(1);
    let from = seen.len().saturating_sub(secs);
    let rows = &seen[from..];
    let n = rows.len().max(1) as f64;
    let rps_known = rows.iter().any(|r| r.rps.is_some());
    let mut weights = 0.0;
    let mut sums = [0.0f64; 5];
    let mut any_latency = false;
    for r in rows {
        let w = if rps_known { r.rps.unwrap_or(0.0) } else { 1.0 };
        if w <= 0.0 || r.latency.iter().all(Option::is_none) {
            continue;
        }
        any_latency = true;
        weights += w;
        for (sum, v) in sums.iter_mut().zip(r.latency.iter()) {
            *sum += w * v.unwrap_or(0.0);
        }
    }
    let latency = (any_latency && weights > 0.0).then(|| LatencySummary {
        p50_ms: sums[0] / weights,
        p90_ms: sums[1] / weights,
        p95_ms: sums[2] / weights,
        p99_ms: sums[3] / weights,
        mean_ms: sums[4] / weights,
    });
    let total: f64 = rows.iter().map(|r| r.rps.unwrap_or(0.0)).sum();
    WindowStats {
        requests: if rps_known {
            total.round() as u64
        } else if any_latency {
            rows.len() as u64
        } else {
            0
        },
        rps: total / n,
        inflight: rows.iter().map(|r| r.inflight.unwrap_or(0.0)).sum::<f64>() / n,
        latency,
    }
}

impl SimReport {
    /// A table of the seconds where something happened (every second with
    /// `all`), then the totals.
    pub fn render(&self, all: bool) -> String {
        let metric = self.metric.as_str();
        let m = Metric::ALL.iter().find(|(n, _)| *n == metric).map_or(Metric::P99, |(_, m)| *m);
        let mut out = format!(
            "service \"{}\": scale up when {metric} > {}; instances assumed to start in {} ms{}\n\n",
            self.service,
            fmt_metric(m, self.threshold),
            self.start_time_ms,
            if self.latency_model { "; latency rescaled by recorded/simulated instances" } else { "" }
        );
        out.push_str(&format!("{:>7}  {:>14}  {:>9}  {:<24}  {}\n", "time", metric, "req/s", "instances", "decision"));
        for t in &self.ticks {
            if !all && t.actions.is_empty() && t.notes.is_empty() {
                continue;
            }
            let mv = t.metric.map_or("-".into(), |v| fmt_metric(m, v));
            let rps = t.rps.map_or("-".into(), |r| format!("{r:.1}"));
            let mut inst = format!("{} ready", t.ready);
            if t.starting > 0 {
                inst.push_str(&format!(" +{} starting", t.starting));
            }
            if t.dead > 0 {
                inst.push_str(&format!(" {} dead", t.dead));
            }
            let mut lines: Vec<String> =
                t.actions.iter().map(|a| format!("{} {}: {}", a.kind.to_uppercase(), a.count, a.reason)).collect();
            lines.extend(t.notes.iter().map(|n| format!("note: {n}")));
            if lines.is_empty() {
                lines.push(String::new());
            }
            for (i, line) in lines.iter().enumerate() {
                if i == 0 {
                    out.push_str(&format!("{:>6}s  {:>14}  {:>9}  {:<24}  {line}\n", t.t, mv, rps, inst));
                } else {
                    out.push_str(&format!("{:>7}  {:>14}  {:>9}  {:<24}  {line}\n", "", "", "", ""));
                }
            }
        }
        let s = &self.summary;
        out.push_str(&format!(
            "\nsummary: {} scale-up(s) adding {}, {} scale-down(s) removing {}, {} replacement(s); at most {} instances; {} instance-seconds; {metric} above threshold for {}s{}\n",
            s.scale_ups,
            s.instances_added,
            s.scale_downs,
            s.instances_removed,
            s.replacements,
            s.max_active,
            s.instance_seconds,
            s.seconds_above_threshold,
            if s.guard_tripped { "; the \"scaling did not help\" guard tripped" } else { "" }
        ));
        out
    }
}
