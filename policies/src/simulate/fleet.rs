//! A model of a service's instances for simulation: applies the Decider's
//! actions and moves instances through starting -> ready -> draining -> gone.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::decide::{Action, Counts, InstanceId, InstanceState, InstanceView};

#[derive(Clone, Debug)]
struct SimInstance {
    id: InstanceId,
    state: InstanceState,
    since: Timestamp,
}

/// The simulated instances of one service.
#[derive(Clone, Debug)]
pub struct Fleet {
    instances: Vec<SimInstance>,
    next_id: u64,
    start_time: Duration,
    drain_time: Duration,
}

impl Fleet {
    /// An empty fleet whose instances take `start_time` to become ready and
    /// `drain_time` to leave once stopped.
    pub fn new(start_time: Duration, drain_time: Duration) -> Self {
        Fleet { instances: Vec::new(), next_id: 1, start_time, drain_time }
    }

    /// Adds `n` instances that are already ready at `now` (the steady state a
    /// trace starts from).
    pub fn seed_ready(&mut self, now: Timestamp, n: u32) {
        for _ in 0..n {
            let id = InstanceId(self.next_id);
            self.next_id += 1;
            self.instances.push(SimInstance { id, state: InstanceState::Ready, since: now });
        }
    }

    /// The instances as the Decider sees them.
    pub fn views(&self) -> Vec<InstanceView> {
        self.instances.iter().map(|i| InstanceView { id: i.id, state: i.state, since: i.since, inflight: 0 }).collect()
    }

    /// Counts by state.
    pub fn counts(&self) -> Counts {
        Counts::of(&self.views())
    }

    fn start(&mut self, now: Timestamp) {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        self.instances.push(SimInstance { id, state: InstanceState::Starting, since: now });
    }

    /// Carries out the Decider's actions.
    pub fn apply(&mut self, now: Timestamp, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Start { count, .. } => {
                    for _ in 0..*count {
                        self.start(now);
                    }
                }
                Action::Stop { instances, .. } => {
                    for inst in self.instances.iter_mut().filter(|i| instances.contains(&i.id)) {
                        inst.state = InstanceState::Draining;
                        inst.since = now;
                    }
                }
                Action::Replace { instance, .. } => {
                    self.instances.retain(|i| i.id != *instance);
                    self.start(now);
                }
            }
        }
        self.advance(now);
    }

    /// Lets time pass: starting instances become ready after the start time,
    /// draining ones disappear after the drain time.
    pub fn advance(&mut self, now: Timestamp) {
        let (start, drain) = (self.start_time, self.drain_time);
        for inst in &mut self.instances {
            if inst.state == InstanceState::Starting && now.since(inst.since) >= start {
                inst.state = InstanceState::Ready;
                inst.since = inst.since + start;
            }
        }
        self.instances.retain(|i| !(i.state == InstanceState::Draining && now.since(i.since) >= drain));
    }

    /// Kills up to `n` ready instances (the oldest first); returns how many died.
    pub fn kill(&mut self, now: Timestamp, n: u32) -> u32 {
        let mut killed = 0;
        let mut ready: Vec<usize> =
            (0..self.instances.len()).filter(|&i| self.instances[i].state == InstanceState::Ready).collect();
        ready.sort_by_key(|&i| (self.instances[i].since, self.instances[i].id));
        for i in ready.into_iter().take(n as usize) {
            self.instances[i].state = InstanceState::Dead;
            self.instances[i].since = now;
            killed += 1;
        }
        killed
    }
}
