//! The policies crate's error type.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Why a policy could not be loaded or a trace could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read at all.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        /// The path that was tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but has problems; every problem found is listed.
    #[error("{}", render(diagnostics))]
    Invalid {
        /// The problems, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// A simulation trace could not be read or has a bad row.
    #[error("trace {file}: {message}")]
    Trace {
        /// The trace file's display name.
        file: String,
        /// What is wrong, with the row and column where known.
        message: String,
    },
    /// A command named a service the policy does not have.
    #[error("the policy has no service named `{name}`; it has: {known}")]
    UnknownService {
        /// The requested name.
        name: String,
        /// The services the policy defines, comma-separated.
        known: String,
    },
}

impl PolicyError {
    /// The diagnostics of an invalid policy (empty for other errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid { diagnostics } => diagnostics,
            _ => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    let n = diagnostics.len();
    out.push_str(&format!("{n} error{} in policy", if n == 1 { "" } else { "s" }));
    out
}
