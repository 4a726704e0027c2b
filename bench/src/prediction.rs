//! `twinkle bench prediction`: the sweep behind demand prediction's defaults.
//! For each workload and each (segment size N, threshold P), a restore with
//! prediction as the only technique (no working set, no background fetch):
//! demand faults left, pages fetched ahead (over-fetch included) and the
//! execution time. Good defaults cut faults most for the least fetched.

use std::path::PathBuf;

use indicatif::ProgressBar;
use serde::Serialize;

use crate::runner::{checksum, num_after, paged, run};
use crate::BenchError;

/// Settings.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The twinkle binary.
    pub twinkle: PathBuf,
    /// Guest memory, MiB.
    pub mem_mib: u32,
    /// Workload data, MiB.
    pub data_mib: u32,
    /// Work rounds.
    pub iters: u32,
    /// Workloads to sweep.
    pub workloads: Vec<String>,
    /// Segment sizes (pages).
    pub segments: Vec<u32>,
    /// Fault thresholds.
    pub thresholds: Vec<u32>,
    /// Where images are built.
    pub work_dir: PathBuf,
    /// Show progress.
    pub progress: bool,
}

/// One point of the sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// Workload.
    pub workload: String,
    /// Segment size N, pages.
    pub segment_pages: u32,
    /// Threshold P, faults.
    pub predict_after: u32,
    /// Demand faults left.
    pub demand_faults: u64,
    /// Pages fetched by prediction.
    pub predicted_pages: u64,
    /// Execution time, ms.
    pub exec_ms: f64,
}

/// Runs the sweep; every run must reproduce the resident checksum.
pub fn run_sweep(o: &SweepOptions) -> Result<Vec<SweepRow>, BenchError> {
    let s = |v: &str| v.to_string();
    let total = (o.workloads.len() * (2 + o.segments.len() * o.thresholds.len())) as u64;
    let pb = if o.progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    std::fs::create_dir_all(&o.work_dir)
        .map_err(|source| BenchError::Io { what: format!("create {}", o.work_dir.display()), source })?;
    let mut rows = Vec::new();
    for w in &o.workloads {
        let mut base = vec![s("--mem-mib"), o.mem_mib.to_string()];
        for a in [format!("kind={w}"), format!("mib={}", o.data_mib), format!("iters={}", o.iters)] {
            base.push(s("--arg"));
            base.push(a);
        }
        let mut args = vec![s("vm"), s("run"), s("--app"), s("workload")];
        args.extend(base.iter().cloned());
        let reference = checksum(&run(&o.twinkle, &args)?.stderr);
        pb.inc(1);
        let img = o.work_dir.join(w);
        let _ = std::fs::remove_dir_all(&img);
        let mut args = vec![s("image"), s("build"), s("--app"), s("workload"), s("--out"), img.display().to_string()];
        args.extend(base.iter().cloned());
        run(&o.twinkle, &args)?;
        pb.inc(1);
        for &n in &o.segments {
            for &p in &o.thresholds {
                let out = run(
                    &o.twinkle,
                    &[
                        s("vm"),
                        s("restore"),
                        s("--image"),
                        img.display().to_string(),
                        s("--strategy"),
                        s("twinkle"),
                        s("--no-working-set"),
                        s("--no-background"),
                        s("--segment-pages"),
                        n.to_string(),
                        s("--predict-after"),
                        p.to_string(),
                    ],
                )?;
                if checksum(&out.stderr) != reference {
                    return Err(BenchError::Process(format!(
                        "{w} N={n} P={p}: another checksum than the resident run"
                    )));
                }
                rows.push(SweepRow {
                    workload: w.clone(),
                    segment_pages: n,
                    predict_after: p,
                    demand_faults: paged(&out.stdout, "demand_faults").unwrap_or(0.0) as u64,
                    predicted_pages: paged(&out.stdout, "predicted_pages").unwrap_or(0.0) as u64,
                    exec_ms: num_after(&out.stderr, "elapsed_us=").unwrap_or(0.0) / 1e3,
                });
                pb.inc(1);
            }
        }
        let _ = std::fs::remove_dir_all(&img);
    }
    pb.finish_and_clear();
    Ok(rows)
}
