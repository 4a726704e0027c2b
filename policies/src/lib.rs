//! twinkle's policy language.
//!
//! A policy file (TOML) describes the dispatcher, the image store and the
//! services, each with its pool of instances and its scaling rules. This crate
//! turns the file into a validated [`Policy`] (every problem reported with
//! file:line:col, key path, what was expected, what was found and a hint), and
//! turns measurements into scaling [`Action`]s with the pure [`Decider`].
//! It does no I/O beyond reading the files it is asked to read.
//!
//! ```
//! use policies::{parse_policy, SourceFile};
//! let src = SourceFile::new("demo.toml", "[[service]]\nname = \"web\"\nimage = \"images/web\"\n");
//! let policy = parse_policy(&src).unwrap();
//! assert_eq!(policy.services[0].scale_up.threshold, 2000.0);
//! ```

pub mod clock;
pub mod decide;
pub mod diagnostic;
pub mod error;
pub mod explain;
mod load;
pub mod model;
pub mod route;
pub mod simulate;
mod suggest;
pub mod units;
mod validate;

pub use clock::{Clock, ManualClock, MonotonicClock, Timestamp};
pub use decide::{
    Action, Decider, Decision, InstanceId, InstanceState, InstanceView, Observation, Reason, Rule, WindowStats,
};
pub use diagnostic::{Diagnostic, SourceFile};
pub use error::PolicyError;
pub use load::{load_policy_file, parse_policy, MAX_SERVICES};
pub use model::{Metric, Policy, ServicePolicy, StartStrategy};
pub use route::RouteTable;
pub use suggest::did_you_mean;
