//! Pure scaling decisions.
//!
//! A [`Decider`] holds one service's policy and the little memory the rules
//! need (since when the metric is above the threshold, when the last scale-up
//! happened, ...). Each call to [`Decider::decide`] takes the current time and
//! an [`Observation`] and returns the actions to take. No I/O, no clock of its
//! own: the provisioner (or the simulator, or a test) drives it.
//!
//! Rules, in the order they are applied each tick:
//! 1. dead instances are replaced at once (`failover.replace`), outside any cooldown;
//! 2. instances starting for longer than `instance.start_timeout` are replaced;
//! 3. fewer than `min_instances` active: start the difference; more than
//!    `max_instances`: stop the excess;
//! 4. requests waiting while there is no instance at all: start one (scale from zero);
//! 5. scale-up: the metric over `scale_up.window` above the threshold for
//!    `sustain`, `cooldown` elapsed, nothing still starting (starting instances
//!    count as capacity), and the "scaling did not help" guard not tripped;
//! 6. scale-down: the metric over `scale_down.window` below `below` (or no
//!    traffic) for `stabilization` with no scale-up in between, `cooldown`
//!    elapsed since the last scale-down.

mod action;
mod guard;
mod observation;

use std::collections::HashSet;

pub use action::{Action, Decision, Reason, Rule};
pub use observation::{
    fmt_metric, metric_value, Counts, InstanceId, InstanceState, InstanceView, LatencySummary, Observation, WindowStats,
};

use crate::clock::Timestamp;
use crate::model::ServicePolicy;
use guard::{Guard, GuardVerdict};

/// Scaling decisions for one service.
#[derive(Clone, Debug)]
pub struct Decider {
    policy: ServicePolicy,
    above_since: Option<Timestamp>,
    calm_since: Option<Timestamp>,
    last_up: Option<Timestamp>,
    last_down: Option<Timestamp>,
    guard: Guard,
    /// Dead or stuck instances already answered with a `Replace`.
    handled: HashSet<InstanceId>,
    /// Conditions noted in the previous tick (notes are emitted when they begin).
    noted: HashSet<Rule>,
}

impl Decider {
    /// A decider for `policy` with no history.
    pub fn new(policy: &ServicePolicy) -> Self {
        Decider {
            policy: policy.clone(),
            above_since: None,
            calm_since: None,
            last_up: None,
            last_down: None,
            guard: Guard::default(),
            handled: HashSet::new(),
            noted: HashSet::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }

    /// Switches to a new version of the service's policy, keeping the history.
    pub fn set_policy(&mut self, policy: &ServicePolicy) {
        self.policy = policy.clone();
    }

    /// Decides what to do at `now` given `obs`.
    pub fn decide(&mut self, now: Timestamp, obs: &Observation) -> Decision {
        let mut tick = Tick { now, out: Decision::default(), noted: HashSet::new() };
        let counts = Counts::of(&obs.instances);
        self.handled.retain(|id| obs.instances.iter().any(|i| i.id == *id));
        let mut active = i64::from(counts.active());

        self.replace_dead(&mut tick, obs, &mut active);
        self.replace_stuck(&mut tick, obs);
        self.enforce_bounds(&mut tick, obs, &mut active);
        self.scale_from_zero(&mut tick, obs, &mut active);
        let above = self.scale_up(&mut tick, obs, counts, &mut active);
        self.scale_down(&mut tick, obs, counts, above, active);

        self.noted = tick.noted;
        tick.out
    }

    fn replace_dead(&mut self, tick: &mut Tick, obs: &Observation, active: &mut i64) {
        let max = i64::from(self.policy.max_instances);
        let mut dead: Vec<&InstanceView> =
            obs.instances.iter().filter(|i| i.state == InstanceState::Dead && !self.handled.contains(&i.id)).collect();
        dead.sort_by_key(|i| (i.since, i.id));
        for inst in dead {
            if !self.policy.failover.replace {
                self.handled.insert(inst.id);
                continue;
            }
            if *active >= max {
                // Capacity is already at the cap without it: nothing to replace.
                self.handled.insert(inst.id);
                continue;
            }
            self.handled.insert(inst.id);
            *active += 1;
            tick.out.actions.push(Action::Replace {
                instance: inst.id,
                reason: Reason::new(
                    Rule::Replace,
                    format!(
                        "{} died at {}; replacing it at once (failover.replace), outside any cooldown",
                        inst.id, inst.since
                    ),
                ),
            });
        }
    }

    fn replace_stuck(&mut self, tick: &mut Tick, obs: &Observation) {
        let timeout = self.policy.instance.start_timeout;
        for inst in &obs.instances {
            if inst.state == InstanceState::Starting
                && tick.now.since(inst.since) > timeout.get()
                && !self.handled.contains(&inst.id)
            {
                self.handled.insert(inst.id);
                tick.out.actions.push(Action::Replace {
                    instance: inst.id,
                    reason: Reason::new(
                        Rule::StartTimeout,
                        format!(
                            "{} has been starting since {} ({} > instance.start_timeout {}); replacing it",
                            inst.id,
                            inst.since,
                            crate::units::Dur(tick.now.since(inst.since)),
                            timeout
                        ),
                    ),
                });
            }
        }
    }

    fn enforce_bounds(&mut self, tick: &mut Tick, obs: &Observation, active: &mut i64) {
        let min = i64::from(self.policy.min_instances);
        let max = i64::from(self.policy.max_instances);
        if *active < min {
            let count = (min - *active) as u32;
            tick.out.actions.push(Action::Start {
                count,
                reason: Reason::new(
                    Rule::BelowMin,
                    format!("{} active instance(s) < min_instances {}; starting {count}", *active, min),
                ),
            });
            *active = min;
        } else if *active > max {
            let excess = (*active - max) as usize;
            let victims = pick_victims(obs, excess, true);
            if !victims.is_empty() {
                *active -= victims.len() as i64;
                tick.out.actions.push(Action::Stop {
                    reason: Reason::new(
                        Rule::AboveMax,
                        format!(
                            "{} active instance(s) > max_instances {}; stopping {}",
                            *active + victims.len() as i64,
                            max,
                            victims.len()
                        ),
                    ),
                    instances: victims,
                });
            }
        }
    }

    fn scale_from_zero(&mut self, tick: &mut Tick, obs: &Observation, active: &mut i64) {
        if *active > 0 || self.policy.max_instances == 0 {
            return;
        }
        let waiting = obs.queued;
        if waiting == 0 && obs.up.requests == 0 {
            return;
        }
        *active = 1;
        self.last_up = Some(tick.now);
        self.calm_since = None;
        tick.out.actions.push(Action::Start {
            count: 1,
            reason: Reason::new(
                Rule::ScaleFromZero,
                format!("{waiting} request(s) waiting and no instance; starting 1 (scale from zero)"),
            ),
        });
    }

    /// Returns whether the scale-up metric is above its threshold.
    fn scale_up(&mut self, tick: &mut Tick, obs: &Observation, counts: Counts, active: &mut i64) -> bool {
        let p = &self.policy.scale_up;
        let metric = p.metric;
        let value = metric_value(metric, &obs.up, counts.ready);
        let Some(v) = value.filter(|v| *v > p.threshold) else {
            self.above_since = None;
            if let Some(text) = self.guard.recover(metric) {
                tick.note(&self.noted, Rule::GuardReset, text);
            }
            return false;
        };
        let since = *self.above_since.get_or_insert(tick.now);
        if tick.now.since(since) < p.sustain.get() {
            return true;
        }
        let max = i64::from(self.policy.max_instances);
        if *active >= max {
            tick.note(
                &self.noted,
                Rule::AtMax,
                format!(
                    "{metric} {} > {} but the service is at max_instances {max}",
                    fmt_metric(metric, v),
                    fmt_metric(metric, p.threshold)
                ),
            );
            return true;
        }
        let started_now = tick.out.actions.iter().any(|a| matches!(a, Action::Start { .. } | Action::Replace { .. }));
        if counts.starting > 0 || started_now {
            tick.note(
                &self.noted,
                Rule::WaitingForStart,
                format!(
                    "{metric} {} > {}; waiting for {} starting instance(s) before adding more",
                    fmt_metric(metric, v),
                    fmt_metric(metric, p.threshold),
                    counts.starting.max(1)
                ),
            );
            return true;
        }
        if self.last_up.is_some_and(|t| tick.now.since(t) < p.cooldown.get()) {
            return true;
        }
        match self.guard.judge(p, v, obs.up.rps, counts) {
            GuardVerdict::Proceed => {}
            GuardVerdict::Reset(text) => tick.note(&self.noted, Rule::GuardReset, text),
            GuardVerdict::Hold(text) => {
                tick.note(&self.noted, Rule::ScalingIneffective, text);
                return true;
            }
        }
        let current = u32::try_from(*active).unwrap_or(0);
        let want = p.step.instances(current).min(p.max_step);
        let count = i64::from(want).min(max - *active) as u32;
        *active += i64::from(count);
        tick.out.actions.push(Action::Start {
            count,
            reason: Reason::new(
                Rule::ScaleUp,
                format!(
                    "{metric} over {} = {} > threshold {} for {} (sustain {}); adding {count} (step {}) -> {} instance(s)",
                    p.window,
                    fmt_metric(metric, v),
                    fmt_metric(metric, p.threshold),
                    crate::units::Dur(tick.now.since(since)),
                    p.sustain,
                    p.step,
                    *active
                ),
            ),
        });
        self.guard.record(v, obs.up.rps);
        self.last_up = Some(tick.now);
        self.above_since = None;
        self.calm_since = None;
        true
    }

    fn scale_down(&mut self, tick: &mut Tick, obs: &Observation, counts: Counts, above: bool, active: i64) {
        let p = &self.policy.scale_down;
        let metric = p.metric;
        let value = metric_value(metric, &obs.down, counts.ready);
        let calm = !above && value.is_none_or(|v| v < p.below);
        if !calm {
            self.calm_since = None;
            return;
        }
        let since = *self.calm_since.get_or_insert(tick.now);
        let min = i64::from(self.policy.min_instances);
        if active <= min
            || counts.starting > 0
            || !tick.out.actions.is_empty()
            || tick.now.since(since) < p.stabilization.get()
            || self.last_down.is_some_and(|t| tick.now.since(t) < p.cooldown.get())
        {
            return;
        }
        let current = u32::try_from(active).unwrap_or(0);
        let count = i64::from(p.step.instances(current)).min(active - min) as usize;
        let victims = pick_victims(obs, count, false);
        if victims.is_empty() {
            return;
        }
        let shown = match value {
            Some(v) => format!("{metric} over {} = {}", p.window, fmt_metric(metric, v)),
            None => format!("no requests over {}", p.window),
        };
        let left = active - victims.len() as i64;
        tick.out.actions.push(Action::Stop {
            reason: Reason::new(
                Rule::ScaleDown,
                format!(
                    "{shown} < {} for {} (stabilization {}); removing {} (step {}) -> {left} instance(s)",
                    fmt_metric(metric, p.below),
                    crate::units::Dur(tick.now.since(since)),
                    p.stabilization,
                    victims.len(),
                    p.step
                ),
            ),
            instances: victims,
        });
        self.last_down = Some(tick.now);
        self.guard.forget();
    }
}

/// The `n` instances to stop: starting ones first when `starting_first`
/// (they serve nothing yet), then ready ones with the fewest requests in
/// flight, the youngest first among equals.
fn pick_victims(obs: &Observation, n: usize, starting_first: bool) -> Vec<InstanceId> {
    let mut candidates: Vec<&InstanceView> = obs
        .instances
        .iter()
        .filter(|i| match i.state {
            InstanceState::Ready => true,
            InstanceState::Starting => starting_first,
            _ => false,
        })
        .collect();
    candidates.sort_by_key(|i| {
        (!(starting_first && i.state == InstanceState::Starting), i.inflight, std::cmp::Reverse(i.since), i.id)
    });
    candidates.into_iter().take(n).map(|i| i.id).collect()
}

/// The output of one tick under construction.
struct Tick {
    now: Timestamp,
    out: Decision,
    noted: HashSet<Rule>,
}

impl Tick {
    /// Adds a note unless the same condition was already noted last tick.
    fn note(&mut self, previous: &HashSet<Rule>, rule: Rule, text: String) {
        if !previous.contains(&rule) && !self.noted.contains(&rule) {
            self.out.notes.push(Reason::new(rule, text));
        }
        self.noted.insert(rule);
    }
}

#[cfg(test)]
mod tests;
