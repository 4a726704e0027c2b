//! The "scaling did not help" guard.
//!
//! More web servers do not fix a slow database. After each scale-up the guard
//! remembers the metric and the request rate; at the next scale-up it asks
//! whether either improved by `min_improvement_pct` (metric down, or throughput
//! up). After `give_up_after` scale-ups in a row that improved neither, while
//! every instance was healthy, it holds further scale-ups and says why. It lets
//! go when the metric falls back under the threshold, or when the request rate
//! has grown by half since it tripped (new load: more instances may help now).

use crate::decide::observation::{fmt_metric, Counts};
use crate::model::{Metric, ScaleUp};

/// Rate growth, relative to the rate when the guard tripped, that re-arms scaling.
const LOAD_CHANGE_FACTOR: f64 = 1.5;

#[derive(Clone, Debug, Default)]
pub(super) struct Guard {
    /// Metric and request rate at the last scale-up.
    baseline: Option<(f64, f64)>,
    /// Consecutive scale-ups that improved nothing.
    ineffective: u32,
    /// The request rate when the guard tripped.
    tripped_at_rps: Option<f64>,
}

pub(super) enum GuardVerdict {
    Proceed,
    /// Proceed; the guard was tripped and has been re-armed (text says why).
    Reset(String),
    /// Do not scale up (text says why).
    Hold(String),
}

impl Guard {
    /// Judges a scale-up that is about to happen with the metric at `value`
    /// and the service serving `rps`.
    pub fn judge(&mut self, p: &ScaleUp, value: f64, rps: f64, counts: Counts) -> GuardVerdict {
        if p.give_up_after == 0 {
            return GuardVerdict::Proceed;
        }
        if let Some(trip_rps) = self.tripped_at_rps {
            if rps >= trip_rps * LOAD_CHANGE_FACTOR {
                self.tripped_at_rps = None;
                self.ineffective = 0;
                self.baseline = None;
                return GuardVerdict::Reset(format!(
                    "request rate rose from {trip_rps:.1}/s to {rps:.1}/s since scaling was suspended; scaling up again"
                ));
            }
            return GuardVerdict::Hold(self.hold_text(p, value));
        }
        let healthy = counts.dead == 0 && counts.starting == 0;
        if let (Some((base_v, base_rps)), true) = (self.baseline, healthy) {
            let frac = f64::from(p.min_improvement_pct) / 100.0;
            let metric_better = value <= base_v * (1.0 - frac);
            let rate_better = rps >= base_rps * (1.0 + frac) && rps > 0.0;
            if metric_better || rate_better {
                self.ineffective = 0;
            } else {
                self.ineffective += 1;
            }
            if self.ineffective >= p.give_up_after {
                self.tripped_at_rps = Some(rps);
                return GuardVerdict::Hold(self.hold_text(p, value));
            }
        }
        GuardVerdict::Proceed
    }

    fn hold_text(&self, p: &ScaleUp, value: f64) -> String {
        format!(
            "scaling did not help: the last {} scale-up(s) improved neither {} (now {}) nor throughput by {}%; \
             not adding instances (a shared bottleneck such as the database?). Scaling resumes when {} falls under {} \
             or the request rate grows by half",
            self.ineffective.max(p.give_up_after),
            p.metric,
            fmt_metric(p.metric, value),
            p.min_improvement_pct,
            p.metric,
            fmt_metric(p.metric, p.threshold)
        )
    }

    /// Remembers the state at a scale-up.
    pub fn record(&mut self, value: f64, rps: f64) {
        self.baseline = Some((value, rps));
    }

    /// The metric is back under the threshold: scaling worked, start afresh.
    /// Returns a note when this re-arms a tripped guard.
    pub fn recover(&mut self, metric: Metric) -> Option<String> {
        let was_tripped = self.tripped_at_rps.take().is_some();
        self.baseline = None;
        self.ineffective = 0;
        was_tripped.then(|| format!("{metric} is back under the threshold; scale-ups allowed again"))
    }

    /// Instances were removed: the baseline no longer describes the fleet.
    pub fn forget(&mut self) {
        self.baseline = None;
        self.ineffective = 0;
    }
}
