//! twinkle's benchmarks. Each compares against a peer measured in the same
//! run and reports ratios next to the raw figures; results are JSON.
//!
//! - [`boot`]: cold boot of a VM to its first HTTP response, with VM creation
//!   and ELF load broken out, and HTTP throughput of one VM against the same
//!   app run as a native host process.
//! - [`startup`]: restored VMs under every start strategy.
//! - [`proxy`]: the dispatcher against nginx and HAProxy as reverse proxies.
//! - [`loadgen`]: the load generator against wrk.

pub mod apps;
pub mod boot;
pub mod httpload;
pub mod loadgen;
pub mod plot;
pub mod prediction;
pub mod process;
pub mod proxy;
mod runner;
pub mod startup;
pub mod stats;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A process could not be started or misbehaved.
    #[error("{0}")]
    Process(String),
    /// An I/O error with context.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
