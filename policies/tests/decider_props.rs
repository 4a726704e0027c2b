//! Properties of the Decider over random policies, random latency traces and
//! random instance deaths, with the simulator's fleet model applying actions:
//! - the active instance count (ready + starting) never leaves [min, max];
//! - two scale-ups are at least `cooldown` apart;
//! - a scale-up happens only after the metric was above the threshold for a
//!   full `sustain` that began after the previous scale-up;
//! - a dead instance is replaced in the same tick it is seen, whatever the cooldown;
//! - every stopped instance was ready or starting, every replaced one dead or stuck.

use std::time::Duration;

use policies::decide::{Counts, LatencySummary};
use policies::simulate::Fleet;
use policies::units::{Dur, Step};
use policies::{
    parse_policy, Action, Decider, InstanceState, Observation, Rule, ServicePolicy, SourceFile, Timestamp, WindowStats,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Params {
    min: u32,
    max: u32,
    sustain: u64,
    cooldown: u64,
    step: Step,
    max_step: u32,
    stabilization: u64,
    down_cooldown: u64,
    start_ms: u64,
    give_up_after: u32,
    replace: bool,
}

fn params() -> impl Strategy<Value = Params> {
    (
        0u32..4,
        1u32..10,
        0u64..6,
        0u64..12,
        prop_oneof![(1u32..4).prop_map(Step::Count), (10u32..200).prop_map(Step::Percent)],
        1u32..5,
        0u64..40,
        0u64..10,
        0u64..4000,
        0u32..4,
        any::<bool>(),
    )
        .prop_map(|(min, span, sustain, cooldown, step, max_step, stab, dcool, start_ms, gua, replace)| Params {
            min,
            max: (min + span).max(1),
            sustain,
            cooldown,
            step: match step {
                Step::Count(n) => Step::Count(n.min(max_step)),
                s => s,
            },
            max_step,
            stabilization: stab,
            down_cooldown: dcool,
            start_ms,
            give_up_after: gua,
            replace,
        })
}

fn service(p: &Params) -> ServicePolicy {
    let src = SourceFile::new("p.toml", "[[service]]\nname = \"web\"\nimage = \"web\"\n");
    let mut s = parse_policy(&src).expect("base policy").services[0].clone();
    s.min_instances = p.min;
    s.max_instances = p.max;
    s.scale_up.sustain = Dur::from_secs(p.sustain);
    s.scale_up.cooldown = Dur::from_secs(p.cooldown);
    s.scale_up.step = p.step;
    s.scale_up.max_step = p.max_step;
    s.scale_up.give_up_after = p.give_up_after;
    s.scale_down.stabilization = Dur::from_secs(p.stabilization);
    s.scale_down.cooldown = Dur::from_secs(p.down_cooldown);
    s.failover.replace = p.replace;
    s
}

fn stats(ms: Option<f64>, rps: f64) -> WindowStats {
    WindowStats { requests: ms.map_or(0, |_| 100), rps, inflight: 0.0, latency: ms.map(LatencySummary::flat) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invariants_hold(
        p in params(),
        latencies in proptest::collection::vec(prop_oneof![Just(None), (0u32..6000).prop_map(|v| Some(f64::from(v)))], 60..160),
        kills in proptest::collection::vec(prop_oneof![9 => Just(0u32), 1 => 1u32..3], 160),
        rps in proptest::collection::vec(0u32..500, 160),
    ) {
        let policy = service(&p);
        let threshold = policy.scale_up.threshold;
        let mut decider = Decider::new(&policy);
        let mut fleet = Fleet::new(Duration::from_millis(p.start_ms), Duration::from_secs(2));
        fleet.seed_ready(Timestamp::from_secs(0), p.min);
        let mut last_up: Option<u64> = None;
        let mut above_run_start: Option<u64> = None;
        for (t, lat) in latencies.iter().enumerate() {
            let t = t as u64;
            let now = Timestamp::from_secs(t);
            fleet.advance(now);
            let killed_before: Vec<_> = fleet.views().iter().filter(|i| i.state == InstanceState::Dead).map(|i| i.id).collect();
            fleet.kill(now, kills[t as usize]);
            let views = fleet.views();
            let newly_dead: Vec<_> = views.iter().filter(|i| i.state == InstanceState::Dead && !killed_before.contains(&i.id)).map(|i| i.id).collect();
            let above = lat.is_some_and(|v| v > threshold);
            if above {
                above_run_start.get_or_insert(t);
            } else {
                above_run_start = None;
            }
            let obs = Observation {
                up: stats(*lat, f64::from(rps[t as usize])),
                down: stats(*lat, f64::from(rps[t as usize])),
                queued: 0,
                instances: views.clone(),
            };
            let decision = decider.decide(now, &obs);
            for a in &decision.actions {
                match a {
                    Action::Start { reason, count } if reason.rule == Rule::ScaleUp => {
                        prop_assert!(*count >= 1);
                        if let Some(prev) = last_up {
                            prop_assert!(t - prev >= p.cooldown, "scale-ups at {prev} and {t} closer than cooldown {}", p.cooldown);
                            prop_assert!(t - prev > p.sustain, "scale-up at {t} within the sustain window of the one at {prev}");
                        }
                        let run = above_run_start.expect("scale-up while the metric is not above the threshold");
                        prop_assert!(t - run >= p.sustain, "scale-up at {t} after only {}s above (sustain {})", t - run, p.sustain);
                        if let Some(prev) = last_up {
                            prop_assert!(run > prev, "the sustain window must begin after the previous scale-up");
                        }
                        last_up = Some(t);
                        // The next scale-up needs a fresh sustain window.
                        above_run_start = None;
                    }
                    Action::Stop { instances, .. } => {
                        for id in instances {
                            let v = views.iter().find(|i| i.id == *id);
                            prop_assert!(v.is_some_and(|v| matches!(v.state, InstanceState::Ready | InstanceState::Starting)), "stopped {id} which is {v:?}");
                        }
                    }
                    Action::Replace { instance, .. } => {
                        let v = views.iter().find(|i| i.id == *instance);
                        prop_assert!(v.is_some_and(|v| matches!(v.state, InstanceState::Dead | InstanceState::Starting)), "replaced {instance} which is {v:?}");
                    }
                    _ => {}
                }
            }
            if p.replace {
                let active_before = Counts::of(&views).active();
                let mut room = p.max.saturating_sub(active_before);
                for id in &newly_dead {
                    if room == 0 {
                        break;
                    }
                    room -= 1;
                    let replaced = decision.actions.iter().any(|a| matches!(a, Action::Replace { instance, .. } if instance == id));
                    prop_assert!(replaced, "dead {id} not replaced at once at t={t}: {decision:?}");
                }
            }
            fleet.apply(now, &decision.actions);
            let active = fleet.counts().active();
            prop_assert!(active <= p.max, "t={t}: {active} active > max {}", p.max);
            prop_assert!(active >= p.min, "t={t}: {active} active < min {}", p.min);
        }
    }
}
