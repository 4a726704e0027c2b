//! Running `twinkle` commands from benchmarks and reading what they print.

use std::path::Path;
use std::process::Command;

use crate::BenchError;

/// What a `twinkle` run printed.
pub(crate) struct RunOut {
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn run(twinkle: &Path, args: &[String]) -> Result<RunOut, BenchError> {
    let out = Command::new(twinkle)
        .args(args)
        .output()
        .map_err(|source| BenchError::Io { what: format!("run {}", twinkle.display()), source })?;
    let r = RunOut {
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    if !out.status.success() {
        return Err(BenchError::Process(format!("`twinkle {}` failed: {}", args.join(" "), r.stderr)));
    }
    Ok(r)
}

/// The number after `key` (e.g. `"elapsed_us="` or `"\"demand_faults\":"`).
pub(crate) fn num_after(text: &str, key: &str) -> Option<f64> {
    let at = text.rfind(key)? + key.len();
    text[at..].trim_start().split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
}

pub(crate) fn checksum(text: &str) -> Option<String> {
    let at = text.rfind("checksum=")? + 9;
    text.get(at..at + 16).map(str::to_string)
}

pub(crate) fn created_ms(stdout: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with("created ")).unwrap_or("");
    ["\"vm_create_us\":", "\"load_us\":", "\"vcpu_us\":"].iter().filter_map(|k| num_after(line, k)).sum::<f64>() / 1e3
}

pub(crate) fn paged(stdout: &str, key: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with("paged "))?;
    num_after(line, &format!("\"{key}\":"))
}
