//! Errors of the dispatcher, each naming the input and what to do.

use std::net::SocketAddr;

/// Why the dispatcher could not start or a pool change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A listening address could not be parsed or bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An address given for an upstream or listener is not HOST:PORT.
    #[error("{what} {given:?} is not an address of the form IP:PORT (for example 127.0.0.1:8001)")]
    BadAddress {
        /// Which setting.
        what: &'static str,
        /// The text given.
        given: String,
    },
    /// A service name the dispatcher does not know.
    #[error("no service named {name:?} (services: {known})")]
    UnknownService {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// The upstream is not in the service's pool.
    #[error("service {service:?} has no upstream {addr}")]
    UnknownUpstream {
        /// Service name.
        service: String,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The upstream is already in the service's pool.
    #[error("service {service:?} already has upstream {addr}")]
    DuplicateUpstream {
        /// Service name.
        service: String,
        /// The address.
        addr: SocketAddr,
    },
    /// The settings contradict each other.
    #[error("{0}")]
    Config(String),
    /// A thread or runtime could not be started.
    #[error("cannot start {what}: {source}")]
    Start {
        /// What was being started.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}
