//! One test per rule of the Decider.

use super::*;
use crate::clock::Timestamp;
use crate::diagnostic::SourceFile;
use crate::load::parse_policy;
use crate::model::ServicePolicy;

fn policy(extra: &str) -> ServicePolicy {
    let text = format!("[[service]]\nname = \"web\"\nimage = \"web\"\n{extra}");
    match parse_policy(&SourceFile::new("t.toml", text)) {
        Ok(p) => p.services[0].clone(),
        Err(e) => panic!("test policy invalid: {e}"),
    }
}

fn inst(id: u64, state: InstanceState, since_s: u64) -> InstanceView {
    InstanceView { id: InstanceId(id), state, since: Timestamp::from_secs(since_s), inflight: 0 }
}

fn ready(n: u64) -> Vec<InstanceView> {
    (1..=n).map(|i| inst(i, InstanceState::Ready, 0)).collect()
}

fn window(ms: Option<f64>, rps: f64) -> WindowStats {
    WindowStats {
        requests: if ms.is_some() { (rps * 10.0) as u64 } else { 0 },
        rps,
        inflight: 0.0,
        latency: ms.map(LatencySummary::flat),
    }
}

fn obs(up_ms: f64, down_ms: f64, instances: Vec<InstanceView>) -> Observation {
    Observation { up: window(Some(up_ms), 100.0), down: window(Some(down_ms), 100.0), queued: 0, instances }
}

fn at(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn starts(d: &Decision, rule: Rule) -> u32 {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { count, reason } if reason.rule == rule => Some(*count),
            _ => None,
        })
        .sum()
}

#[test]
fn threshold_must_be_sustained() {
    let p = policy("[service.scale_up]\nsustain = \"2s\"\n");
    let mut d = Decider::new(&p);
    assert!(d.decide(at(10), &obs(2500.0, 2500.0, ready(1))).actions.is_empty());
    assert!(d.decide(at(11), &obs(2500.0, 2500.0, ready(1))).actions.is_empty());
    let out = d.decide(at(12), &obs(2500.0, 2500.0, ready(1)));
    assert_eq!(starts(&out, Rule::ScaleUp), 1, "{out:?}");
    assert!(out.actions[0].reason().text.contains("p99 over 10s = 2500 ms > threshold 2000 ms for 2s"));
}

#[test]
fn a_dip_below_the_threshold_restarts_the_sustain_clock() {
    let p = policy("[service.scale_up]\nsustain = \"2s\"\n");
    let mut d = Decider::new(&p);
    d.decide(at(10), &obs(2500.0, 2500.0, ready(1)));
    d.decide(at(11), &obs(1500.0, 1500.0, ready(1)));
    assert!(d.decide(at(12), &obs(2500.0, 2500.0, ready(1))).actions.is_empty());
    assert!(d.decide(at(13), &obs(2500.0, 2500.0, ready(1))).actions.is_empty());
    assert_eq!(starts(&d.decide(at(14), &obs(2500.0, 2500.0, ready(1))), Rule::ScaleUp), 1);
}

#[test]
fn equal_to_threshold_is_not_above() {
    let p = policy("[service.scale_up]\nsustain = \"0s\"\n");
    let mut d = Decider::new(&p);
    assert!(d.decide(at(1), &obs(2000.0, 2000.0, ready(1))).actions.is_empty());
}

#[test]
fn cooldown_spaces_scale_ups() {
    let p = policy("[service.scale_up]\nsustain = \"0s\"\ncooldown = \"5s\"\n");
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(3000.0, 3000.0, ready(1))), Rule::ScaleUp), 1);
    for t in 1..5 {
        assert!(d.decide(at(t), &obs(3000.0, 3000.0, ready(2))).actions.is_empty(), "t={t}");
    }
    assert_eq!(starts(&d.decide(at(5), &obs(3000.0, 3000.0, ready(2))), Rule::ScaleUp), 1);
}

#[test]
fn percentage_steps_are_capped_by_max_step_and_max_instances() {
    let p = policy("max_instances = 10\n[service.scale_up]\nsustain = \"0s\"\nstep = \"100%\"\nmax_step = 3\n");
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(3000.0, 3000.0, ready(2))), Rule::ScaleUp), 2);
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(3000.0, 3000.0, ready(5))), Rule::ScaleUp), 3);
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(3000.0, 3000.0, ready(9))), Rule::ScaleUp), 1);
}

#[test]
fn at_max_nothing_starts_and_it_is_noted_once() {
    let p = policy("max_instances = 2\n[service.scale_up]\nsustain = \"0s\"\n");
    let mut d = Decider::new(&p);
    let first = d.decide(at(0), &obs(3000.0, 3000.0, ready(2)));
    assert!(first.actions.is_empty());
    assert_eq!(first.notes.len(), 1);
    assert_eq!(first.notes[0].rule, Rule::AtMax);
    let second = d.decide(at(1), &obs(3000.0, 3000.0, ready(2)));
    assert!(second.notes.is_empty(), "a note is reported once per episode");
}

#[test]
fn starting_instances_count_as_capacity() {
    let p = policy("[service.scale_up]\nsustain = \"0s\"\ncooldown = \"0s\"\n");
    let mut d = Decider::new(&p);
    let mut inst = ready(1);
    inst.push(inst_starting(2, 0));
    let out = d.decide(at(3), &obs(3000.0, 3000.0, inst));
    assert!(out.actions.is_empty(), "{out:?}");
    assert_eq!(out.notes[0].rule, Rule::WaitingForStart);
}

fn inst_starting(id: u64, since: u64) -> InstanceView {
    inst(id, InstanceState::Starting, since)
}

#[test]
fn min_instances_are_enforced() {
    let p = policy("min_instances = 2\n");
    let mut d = Decider::new(&p);
    let out = d.decide(at(0), &obs(10.0, 10.0, vec![]));
    assert_eq!(starts(&out, Rule::BelowMin), 2);
    // Starting instances count: no second start for the same gap.
    let out = d.decide(at(1), &obs(10.0, 10.0, vec![inst_starting(1, 0), inst_starting(2, 0)]));
    assert!(out.actions.is_empty(), "{out:?}");
}

#[test]
fn above_max_stops_starting_instances_first() {
    let p = policy("max_instances = 2\n");
    let mut d = Decider::new(&p);
    let mut inst = ready(2);
    inst.push(inst_starting(3, 5));
    let out = d.decide(at(6), &obs(10.0, 10.0, inst));
    match &out.actions[..] {
        [Action::Stop { instances, reason }] => {
            assert_eq!(instances, &vec![InstanceId(3)]);
            assert_eq!(reason.rule, Rule::AboveMax);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dead_instances_are_replaced_at_once_even_in_cooldown() {
    let p = policy("[service.scale_up]\nsustain = \"0s\"\ncooldown = \"60s\"\n");
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(3000.0, 3000.0, ready(1))), Rule::ScaleUp), 1);
    let mut fleet = ready(1);
    fleet.push(inst(2, InstanceState::Dead, 1));
    let out = d.decide(at(1), &obs(3000.0, 3000.0, fleet.clone()));
    assert!(
        matches!(&out.actions[..], [Action::Replace { instance: InstanceId(2), reason }] if reason.rule == Rule::Replace),
        "{out:?}"
    );
    // The same dead instance is not replaced twice.
    let out = d.decide(at(2), &obs(3000.0, 3000.0, fleet));
    assert!(!out.actions.iter().any(|a| matches!(a, Action::Replace { .. })), "{out:?}");
}

#[test]
fn without_failover_replace_only_min_is_restored() {
    let p = policy("min_instances = 1\n[service.failover]\nreplace = false\n");
    let mut d = Decider::new(&p);
    let fleet = vec![inst(1, InstanceState::Ready, 0), inst(2, InstanceState::Dead, 1)];
    let out = d.decide(at(2), &obs(10.0, 10.0, fleet));
    assert!(out.actions.is_empty(), "{out:?}");
    let out = d.decide(at(3), &obs(10.0, 10.0, vec![inst(2, InstanceState::Dead, 1)]));
    assert_eq!(starts(&out, Rule::BelowMin), 1);
}

#[test]
fn stuck_starts_are_replaced_after_start_timeout() {
    let p = policy("[service.instance]\nstart_timeout = \"10s\"\n");
    let mut d = Decider::new(&p);
    let inst = vec![inst_starting(1, 0)];
    assert!(d.decide(at(10), &obs(10.0, 10.0, inst.clone())).actions.is_empty());
    let out = d.decide(at(11), &obs(10.0, 10.0, inst));
    assert!(
        matches!(&out.actions[..], [Action::Replace { instance: InstanceId(1), reason }] if reason.rule == Rule::StartTimeout),
        "{out:?}"
    );
}

#[test]
fn scale_down_waits_for_stabilization_then_paces_by_cooldown() {
    let p = policy(
        "min_instances = 1\n[service.scale_down]\nbelow_ms = 500\nstabilization = \"60s\"\ncooldown = \"10s\"\n",
    );
    let mut d = Decider::new(&p);
    for t in 0..60 {
        assert!(d.decide(at(t), &obs(100.0, 100.0, ready(3))).actions.is_empty(), "t={t}");
    }
    let out = d.decide(at(60), &obs(100.0, 100.0, ready(3)));
    assert!(
        matches!(&out.actions[..], [Action::Stop { instances, reason }] if instances.len() == 1 && reason.rule == Rule::ScaleDown),
        "{out:?}"
    );
    for t in 61..70 {
        assert!(d.decide(at(t), &obs(100.0, 100.0, ready(2))).actions.is_empty(), "t={t}");
    }
    assert_eq!(d.decide(at(70), &obs(100.0, 100.0, ready(2))).actions.len(), 1);
    // At min_instances nothing more is removed.
    for t in 71..200 {
        assert!(d.decide(at(t), &obs(100.0, 100.0, ready(1))).actions.is_empty(), "t={t}");
    }
}

#[test]
fn a_busy_moment_restarts_stabilization() {
    let p = policy("[service.scale_down]\nstabilization = \"30s\"\ncooldown = \"0s\"\n");
    let mut d = Decider::new(&p);
    for t in 0..20 {
        d.decide(at(t), &obs(100.0, 100.0, ready(3)));
    }
    d.decide(at(20), &obs(100.0, 900.0, ready(3)));
    for t in 21..50 {
        assert!(d.decide(at(t), &obs(100.0, 100.0, ready(3))).actions.is_empty(), "t={t}");
    }
    assert_eq!(d.decide(at(51), &obs(100.0, 100.0, ready(3))).actions.len(), 1);
}

#[test]
fn no_traffic_counts_as_calm() {
    let p = policy("min_instances = 0\n[service.scale_down]\nstabilization = \"0s\"\n");
    let mut d = Decider::new(&p);
    let idle = Observation { instances: ready(1), ..Observation::default() };
    let out = d.decide(at(0), &idle);
    assert!(out.actions[0].reason().text.contains("no requests over 1m"), "{out:?}");
}

#[test]
fn victims_are_the_least_loaded_then_youngest() {
    let p = policy("min_instances = 1\n[service.scale_down]\nstabilization = \"0s\"\nstep = 2\n");
    let mut d = Decider::new(&p);
    let mut fleet = vec![
        inst(1, InstanceState::Ready, 0),
        inst(2, InstanceState::Ready, 5),
        inst(3, InstanceState::Ready, 9),
        inst(4, InstanceState::Ready, 7),
    ];
    fleet[0].inflight = 0;
    fleet[1].inflight = 0;
    fleet[2].inflight = 4;
    fleet[3].inflight = 1;
    let out = d.decide(at(10), &obs(10.0, 10.0, fleet));
    assert!(
        matches!(&out.actions[..], [Action::Stop { instances, .. }] if instances == &vec![InstanceId(2), InstanceId(1)]),
        "{out:?}"
    );
}

#[test]
fn scale_from_zero_when_requests_wait() {
    let p = policy("min_instances = 0\n");
    let mut d = Decider::new(&p);
    assert!(d.decide(at(0), &Observation::default()).actions.is_empty());
    let waiting = Observation { queued: 3, ..Observation::default() };
    let out = d.decide(at(1), &waiting);
    assert_eq!(starts(&out, Rule::ScaleFromZero), 1);
}

#[test]
fn per_instance_metrics_divide_by_ready_instances() {
    let p = policy("[service.scale_up]\nmetric = \"rps_per_instance\"\nthreshold = 100\nsustain = \"0s\"\n[service.scale_down]\nbelow = 20\n");
    let mut d = Decider::new(&p);
    let mut o = obs(0.0, 0.0, ready(2));
    o.up.rps = 180.0;
    assert!(d.decide(at(0), &o).actions.is_empty(), "90 req/s per instance is under 100");
    o.up.rps = 250.0;
    assert_eq!(starts(&d.decide(at(1), &o), Rule::ScaleUp), 1);
}

#[test]
fn the_guard_stops_scaling_that_does_not_help_and_lets_go_on_new_load() {
    let p = policy(
        "max_instances = 20\n[service.scale_up]\nsustain = \"0s\"\ncooldown = \"0s\"\ngive_up_after = 2\nmin_improvement_pct = 10\n",
    );
    let mut d = Decider::new(&p);
    // A slow database: latency and throughput stay put whatever we add.
    let mut n = 1;
    let mut t = 0;
    let mut ups = 0;
    let mut tripped = None;
    while t < 20 {
        let out = d.decide(at(t), &obs(5000.0, 5000.0, ready(n)));
        let s = starts(&out, Rule::ScaleUp);
        ups += s;
        n += u64::from(s);
        if out.notes.iter().any(|r| r.rule == Rule::ScalingIneffective) {
            tripped = Some(t);
            assert!(out.notes[0].text.contains("scaling did not help"), "{out:?}");
        }
        t += 1;
    }
    // Two scale-ups (give_up_after) that improved nothing, then hold.
    assert_eq!(ups, 2, "scale-ups before the guard held");
    assert!(tripped.is_some());
    // Load grows by more than half: scaling resumes.
    let mut o = obs(5000.0, 5000.0, ready(n));
    o.up.rps = 200.0;
    let out = d.decide(at(30), &o);
    assert_eq!(starts(&out, Rule::ScaleUp), 1, "{out:?}");
    assert!(out.notes.iter().any(|r| r.rule == Rule::GuardReset));
}

#[test]
fn the_guard_is_rearmed_when_latency_recovers() {
    let p = policy("max_instances = 20\n[service.scale_up]\nsustain = \"0s\"\ncooldown = \"0s\"\ngive_up_after = 1\n");
    let mut d = Decider::new(&p);
    assert_eq!(starts(&d.decide(at(0), &obs(5000.0, 5000.0, ready(1))), Rule::ScaleUp), 1);
    assert!(d.decide(at(1), &obs(5000.0, 5000.0, ready(2))).actions.is_empty());
    let out = d.decide(at(2), &obs(100.0, 100.0, ready(2)));
    assert!(out.notes.iter().any(|r| r.rule == Rule::GuardReset), "{out:?}");
    assert_eq!(starts(&d.decide(at(3), &obs(5000.0, 5000.0, ready(2))), Rule::ScaleUp), 1);
}

#[test]
fn improving_scale_ups_never_trip_the_guard() {
    let p = policy("max_instances = 20\n[service.scale_up]\nsustain = \"0s\"\ncooldown = \"0s\"\ngive_up_after = 1\n");
    let mut d = Decider::new(&p);
    let mut latency = 9000.0;
    for (t, n) in (0..6).zip(1..) {
        let out = d.decide(at(t), &obs(latency, latency, ready(n)));
        assert_eq!(starts(&out, Rule::ScaleUp), 1, "t={t} {out:?}");
        latency *= 0.8;
    }
}

#[test]
fn set_policy_applies_new_bounds() {
    let p = policy("max_instances = 4\n");
    let mut d = Decider::new(&p);
    assert!(d.decide(at(0), &obs(10.0, 10.0, ready(4))).actions.is_empty());
    let mut smaller = p.clone();
    smaller.max_instances = 2;
    d.set_policy(&smaller);
    let out = d.decide(at(1), &obs(10.0, 10.0, ready(4)));
    assert!(matches!(&out.actions[..], [Action::Stop { instances, .. }] if instances.len() == 2), "{out:?}");
}
