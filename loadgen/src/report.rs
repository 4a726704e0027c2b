//! The run's report: merged histograms, the summary (JSON and a table),
//! per-second series and per-interaction CSV, and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::engine::{lock, Shared};
use crate::record::{histogram, ERROR_KINDS};

/// Percentiles of response times, ms.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Highest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1e3,
            mean: h.mean() / 1e3,
        }
    }
}

/// One interaction in the report.
#[derive(Clone, Debug, Serialize)]
pub struct InteractionReport {
    /// Requests (responses + errors).
    pub requests: u64,
    /// Errors of any kind.
    pub errors: u64,
    /// Share of all requests, percent.
    pub share_pct: f64,
    /// The workload's target share, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pct: Option<f64>,
    /// Response times, ms.
    pub latency_ms: Latency,
    /// The benchmark's 90th-percentile limit, ms (TPC-W), and whether p90 is within it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_limit_ms: Option<f64>,
    /// p90 <= its limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_ok: Option<bool>,
}

/// One second of the run.
#[derive(Clone, Debug, Serialize)]
pub struct SecondRow {
    /// Second since the start.
    pub t: usize,
    /// Responses in this second.
    pub rps: u64,
    /// Percentiles, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Highest, ms.
    pub max_ms: f64,
    /// Errors by kind ([`ERROR_KINDS`] order).
    pub errors: [u64; 6],
}

/// The summary of a run (`--json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Requests sent (each is a response or an error).
    pub requests: u64,
    /// Responses with any status.
    pub responses: u64,
    /// Errors: total and by kind.
    pub errors: BTreeMap<String, u64>,
    /// Length of the run, s.
    pub duration_s: f64,
    /// Responses per second.
    pub rps: f64,
    /// Response times from the intended send time (coordinated omission corrected), ms.
    pub latency_ms: Latency,
    /// Response times from the actual send time, ms (what a naive client reports).
    pub uncorrected_latency_ms: Latency,
    /// Per interaction.
    pub per_interaction: BTreeMap<String, InteractionReport>,
    /// Per second.
    #[serde(skip)]
    pub series: Vec<SecondRow>,
}

/// Merges the threads' statistics into a report.
pub fn build(
    shared: &Shared,
    names: &[String],
    target: Option<&[f64]>,
    limits: Option<&[f64]>,
    duration_s: f64,
) -> Report {
    let mut corrected = histogram(3);
    let mut uncorrected = histogram(3);
    // (histogram, responses, errors, failures)
    let mut per: Vec<(Histogram<u64>, u64, u64, u64)> = names.iter().map(|_| (histogram(2), 0, 0, 0)).collect();
    let mut seconds: Vec<(u64, [u64; 6], Histogram<u64>)> = Vec::new();
    let mut errors = [0u64; 6];
    let mut responses = 0;
    for s in &shared.stats {
        let st = lock(s);
        let _ = corrected.add(&st.corrected);
        let _ = uncorrected.add(&st.uncorrected);
        responses += st.responses;
        for (k, e) in st.errors.iter().enumerate() {
            errors[k] += e;
        }
        for (i, p) in st.per.iter().enumerate() {
            if let Some(acc) = per.get_mut(i) {
                let _ = acc.0.add(&p.hist);
                acc.1 += p.responses;
                acc.2 += p.errors;
                acc.3 += p.failures;
            }
        }
        for (t, sec) in st.seconds.iter().enumerate() {
            let Some(sec) = sec else { continue };
            if seconds.len() <= t {
                seconds.resize_with(t + 1, || (0, [0; 6], histogram(2)));
            }
            let acc = &mut seconds[t];
            acc.0 += sec.responses;
            for k in 0..6 {
                acc.1[k] += sec.errors[k];
            }
            let _ = acc.2.add(&sec.hist);
        }
    }
    // Transport failures (connect, timeout, reset, cancelled) got no response.
    let failures = errors[0] + errors[1] + errors[2] + errors[5];
    let requests = responses + failures;
    let total: u64 = per.iter().map(|p| p.1 + p.3).sum::<u64>().max(1);
    let mut per_interaction = BTreeMap::new();
    for (i, (h, resp, errs, fails)) in per.iter().enumerate() {
        per_interaction.insert(
            names[i].clone(),
            InteractionReport {
                requests: resp + fails,
                errors: *errs,
                share_pct: 100.0 * (resp + fails) as f64 / total as f64,
                target_pct: target.and_then(|t| t.get(i).copied()),
                latency_ms: Latency::of(h),
                p90_limit_ms: limits.and_then(|l| l.get(i).copied()),
                p90_ok: limits.and_then(|l| l.get(i)).map(|l| h.is_empty() || Latency::of(h).p90 <= *l),
            },
        );
    }
    let mut err_map = BTreeMap::new();
    for (k, name) in ERROR_KINDS.iter().enumerate() {
        err_map.insert(name.to_string(), errors[k]);
    }
    err_map.insert("total".into(), errors.iter().sum());
    let series = seconds
        .iter()
        .enumerate()
        .map(|(t, (n, e, h))| {
            let l = Latency::of(h);
            SecondRow { t, rps: *n, p50_ms: l.p50, p90_ms: l.p90, p99_ms: l.p99, max_ms: l.max, errors: *e }
        })
        .collect();
    Report {
        requests,
        responses,
        errors: err_map,
        duration_s,
        rps: responses as f64 / duration_s.max(1e-9),
        latency_ms: Latency::of(&corrected),
        uncorrected_latency_ms: Latency::of(&uncorrected),
        per_interaction,
        series,
    }
}

impl Report {
    /// The summary as a text table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let l = &self.latency_ms;
        let kinds: Vec<String> =
            self.errors
                .iter()
                .filter(|(k, v)| *k != "total" && **v > 0)
                .map(|(k, v)| {
                    if k == "cancelled" {
                        format!("{v} still in flight when the run ended")
                    } else {
                        format!("{k} {v}")
                    }
                })
                .collect();
        let detail = if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) };
        let _ = writeln!(
            o,
            "{} requests in {:.1} s: {:.0} req/s, {} errors{detail}",
            self.requests,
            self.duration_s,
            self.rps,
            self.errors.get("total").copied().unwrap_or(0),
        );
        let _ = writeln!(
            o,
            "latency (from intended send) ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        if self.per_interaction.len() > 1 {
            let _ = writeln!(
                o,
                "\n{:<28} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9}",
                "interaction", "requests", "errors", "share%", "target%", "p50 ms", "p99 ms"
            );
            for (name, i) in &self.per_interaction {
                let _ = writeln!(
                    o,
                    "{:<28} {:>9} {:>7} {:>8.2} {:>8} {:>9.2} {:>9.2} {:>9.2}{}",
                    name,
                    i.requests,
                    i.errors,
                    i.share_pct,
                    i.target_pct.map_or("-".into(), |t| format!("{t:.2}")),
                    i.latency_ms.p50,
                    i.latency_ms.p90,
                    i.latency_ms.p99,
                    match (i.p90_ok, i.p90_limit_ms) {
                        (Some(false), Some(l)) => format!("  p90 over its {:.0} s limit", l / 1e3),
                        _ => String::new(),
                    }
                );
            }
        }
        o
    }

    /// Writes summary.json, series.csv, interactions.csv and plots into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("summary.json"), json + "\n")?;
        let mut csv = format!("second,rps,p50_ms,p90_ms,p99_ms,max_ms,{}\n", ERROR_KINDS.join(","));
        for r in &self.series {
            let errs: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
            let _ = writeln!(
                csv,
                "{},{},{:.3},{:.3},{:.3},{:.3},{}",
                r.t,
                r.rps,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.max_ms,
                errs.join(",")
            );
        }
        std::fs::write(dir.join("series.csv"), csv)?;
        let mut csv = String::from("interaction,requests,errors,share_pct,target_pct,p50_ms,p90_ms,p99_ms,max_ms\n");
        for (n, i) in &self.per_interaction {
            let _ = writeln!(
                csv,
                "{n},{},{},{:.3},{},{:.3},{:.3},{:.3},{:.3}",
                i.requests,
                i.errors,
                i.share_pct,
                i.target_pct.map_or(String::new(), |t| format!("{t:.3}")),
                i.latency_ms.p50,
                i.latency_ms.p90,
                i.latency_ms.p99,
                i.latency_ms.max
            );
        }
        std::fs::write(dir.join("interactions.csv"), csv)?;
        std::fs::write(
            dir.join("latency.svg"),
            crate::plot::latency_svg(&self.series).map_err(std::io::Error::other)?,
        )?;
        std::fs::write(
            dir.join("throughput.svg"),
            crate::plot::throughput_svg(&self.series).map_err(std::io::Error::other)?,
        )?;
        Ok(())
    }
}
