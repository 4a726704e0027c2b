//! What the Decider asks the provisioner to do, each with a reason a person
//! can read in a log or in `policy simulate`.

use std::fmt;

use super::observation::InstanceId;

/// Which rule produced an action or a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Fewer active instances than `min_instances`.
    BelowMin,
    /// More active instances than `max_instances` (e.g. after a policy change).
    AboveMax,
    /// Requests arrived while the service had no instance.
    ScaleFromZero,
    /// The metric stayed above the threshold for `sustain`.
    ScaleUp,
    /// The metric stayed below `below` for `stabilization`.
    ScaleDown,
    /// An instance died.
    Replace,
    /// An instance did not become ready within `start_timeout`.
    StartTimeout,
    /// Scaling up is suspended: recent scale-ups improved nothing.
    ScalingIneffective,
    /// Scaling up is allowed again after the guard tripped.
    GuardReset,
    /// A scale-up is wanted but `max_instances` is reached.
    AtMax,
    /// A scale-up is wanted but waits for instances still starting.
    WaitingForStart,
}

/// Why something was done: the rule and a sentence with the numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    /// The rule.
    pub rule: Rule,
    /// A sentence with the measured values and the settings involved.
    pub text: String,
}

impl Reason {
    pub(crate) fn new(rule: Rule, text: impl Into<String>) -> Self {
        Reason { rule, text: text.into() }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One thing for the provisioner to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start `count` new instances.
    Start {
        /// How many.
        count: u32,
        /// Why.
        reason: Reason,
    },
    /// Drain and stop these instances.
    Stop {
        /// Which (ready instances, least loaded first).
        instances: Vec<InstanceId>,
        /// Why.
        reason: Reason,
    },
    /// Discard this instance and start a new one in its place, now.
    Replace {
        /// The dead or stuck instance.
        instance: InstanceId,
        /// Why.
        reason: Reason,
    },
}

impl Action {
    /// The action's reason.
    pub fn reason(&self) -> &Reason {
        match self {
            Action::Start { reason, .. } | Action::Stop { reason, .. } | Action::Replace { reason, .. } => reason,
        }
    }

    /// Change in active instances this action causes.
    pub fn delta(&self) -> i64 {
        match self {
            Action::Start { count, .. } => i64::from(*count),
            Action::Stop { instances, .. } => -(instances.len() as i64),
            Action::Replace { .. } => 0,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Start { count, reason } => write!(f, "start {count}: {reason}"),
            Action::Stop { instances, reason } => {
                let ids: Vec<String> = instances.iter().map(|i| i.to_string()).collect();
                write!(f, "stop {}: {reason}", ids.join(","))
            }
            Action::Replace { instance, reason } => write!(f, "replace {instance}: {reason}"),
        }
    }
}

/// The result of one `decide` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// What to do now, in order.
    pub actions: Vec<Action>,
    /// Things worth logging that are not actions (a scale-up held back, the
    /// "scaling did not help" guard). Each is reported once, when it starts.
    pub notes: Vec<Reason>,
}
