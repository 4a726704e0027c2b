//! Reading a per-second measurement trace (CSV) for `policy simulate`.
//!
//! Columns (header required, any order, all but `t` optional):
//! `t` (seconds), `p50_ms`, `p90_ms`, `p95_ms`, `p99_ms`, `mean_ms`,
//! `latency_ms` (sets every latency column at once), `rps`, `inflight`,
//! `queued`, `instances` (how many served when the trace was recorded),
//! `kill` (instances to kill at that second, for fail-over what-ifs).
//! A row holds until the next one: gaps repeat the previous row.

use crate::error::PolicyError;
use crate::suggest::did_you_mean;

/// Every column a trace may have.
pub const COLUMNS: [&str; 12] = [
    "t",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "latency_ms",
    "rps",
    "inflight",
    "queued",
    "instances",
    "kill",
];

/// Longest trace simulated, in seconds (a week).
pub const MAX_SECONDS: u64 = 7 * 24 * 3600;

/// One second of measurements; `None` where the trace has no such column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Second since the start of the trace.
    pub t: u64,
    /// Latency columns: p50, p90, p95, p99, mean (ms).
    pub latency: [Option<f64>; 5],
    /// Completed requests per second.
    pub rps: Option<f64>,
    /// Requests in flight.
    pub inflight: Option<f64>,
    /// Requests held for lack of an instance.
    pub queued: Option<f64>,
    /// Instances serving when the trace was recorded.
    pub instances: Option<f64>,
    /// Instances to kill at this second.
    pub kill: u32,
}

/// A parsed trace: one sample per second, gaps filled.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Samples for seconds first..=last, one per second.
    pub samples: Vec<Sample>,
    /// Which columns the file had.
    pub columns: Vec<String>,
}

impl Trace {
    /// Whether the file had column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }
}

fn trace_err(file: &str, message: String) -> PolicyError {
    PolicyError::Trace { file: file.to_string(), message }
}

/// Parses trace CSV text; `file` names it in errors.
pub fn parse_trace(file: &str, text: &str) -> Result<Trace, PolicyError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| trace_err(file, format!("cannot read the header row: {e}")))?.clone();
    let columns: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for (i, c) in columns.iter().enumerate() {
        if !COLUMNS.contains(&c.as_str()) {
            let hint = match did_you_mean(c, &COLUMNS) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known columns: {}", COLUMNS.join(", ")),
            };
            return Err(trace_err(file, format!("line 1, column {}: unknown column `{c}`; {hint}", i + 1)));
        }
        if columns[..i].contains(c) {
            return Err(trace_err(file, format!("line 1: column `{c}` appears twice")));
        }
    }
    if !columns.iter().any(|c| c == "t") {
        return Err(trace_err(file, "the header has no `t` column (seconds since the start)".into()));
    }
    let mut rows: Vec<Sample> = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let rec = rec.map_err(|e| trace_err(file, format!("line {line}: {e}")))?;
        let mut s = Sample::default();
        let mut t: Option<u64> = None;
        for (col, field) in columns.iter().zip(rec.iter()) {
            if field.is_empty() {
                continue;
            }
            let v: f64 = field.parse().map_err(|_| {
                trace_err(file, format!("line {line}, column `{col}`: expected a number, found \"{field}\""))
            })?;
            if !v.is_finite() || v < 0.0 {
                return Err(trace_err(
                    file,
                    format!("line {line}, column `{col}`: expected a number >= 0, found {field}"),
                ));
            }
            match col.as_str() {
                "t" => {
                    if v.fract() != 0.0 || v > MAX_SECONDS as f64 {
                        return Err(trace_err(
                            file,
                            format!(
                                "line {line}, column `t`: expected whole seconds up to {MAX_SECONDS}, found {field}"
                            ),
                        ));
                    }
                    t = Some(v as u64);
                }
                "p50_ms" => s.latency[0] = Some(v),
                "p90_ms" => s.latency[1] = Some(v),
                "p95_ms" => s.latency[2] = Some(v),
                "p99_ms" => s.latency[3] = Some(v),
                "mean_ms" => s.latency[4] = Some(v),
                "latency_ms" => {
                    for slot in &mut s.latency {
                        slot.get_or_insert(v);
                    }
                }
                "rps" => s.rps = Some(v),
                "inflight" => s.inflight = Some(v),
                "queued" => s.queued = Some(v),
                "instances" => s.instances = Some(v),
                "kill" => s.kill = v.min(1e6) as u32,
                _ => {}
            }
        }
        let Some(t) = t else {
            return Err(trace_err(file, format!("line {line}: no value in column `t`")));
        };
        if let Some(prev) = rows.last() {
            if t <= prev.t {
                return Err(trace_err(
                    file,
                    format!(
                        "line {line}: t = {t} is not after the previous row's t = {}; rows must be in time order",
                        prev.t
                    ),
                ));
            }
        }
        s.t = t;
        rows.push(s);
    }
    if rows.is_empty() {
        return Err(trace_err(file, "the trace has a header but no rows".into()));
    }
    let mut samples = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        samples.push(row.clone());
        let next_t = rows.get(i + 1).map_or(row.t + 1, |n| n.t);
        for t in row.t + 1..next_t {
            samples.push(Sample { t, kill: 0, ..row.clone() });
        }
    }
    Ok(Trace { samples, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_gaps_and_reads_columns() {
        let t = parse_trace("x.csv", "t,p99_ms,rps,kill\n0,100,10,\n3,2500,50,1\n").unwrap();
        assert_eq!(t.samples.len(), 4);
        assert_eq!(t.samples[2].latency[3], Some(100.0));
        assert_eq!(t.samples[3].latency[3], Some(2500.0));
        assert_eq!(t.samples[3].kill, 1);
        assert!(t.has("rps"));
    }

    #[test]
    fn bad_traces_name_line_and_column() {
        let e = parse_trace("x.csv", "t,p99\n0,1\n").unwrap_err().to_string();
        assert!(e.contains("unknown column `p99`; did you mean `p99_ms`?"), "{e}");
        let e = parse_trace("x.csv", "t,rps\n0,1\n1,abc\n").unwrap_err().to_string();
        assert!(e.contains("line 3, column `rps`: expected a number, found \"abc\""), "{e}");
        let e = parse_trace("x.csv", "t,rps\n5,1\n2,1\n").unwrap_err().to_string();
        assert!(e.contains("line 3: t = 2 is not after"), "{e}");
        let e = parse_trace("x.csv", "rps\n1\n").unwrap_err().to_string();
        assert!(e.contains("no `t` column"), "{e}");
        let e = parse_trace("x.csv", "t,rps\n").unwrap_err().to_string();
        assert!(e.contains("no rows"), "{e}");
        let e = parse_trace("x.csv", "t,rps\n0,-1\n").unwrap_err().to_string();
        assert!(e.contains(">= 0"), "{e}");
    }
}
