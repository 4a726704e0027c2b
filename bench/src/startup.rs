//! `twinkle bench startup`: the paper's start-up evaluation on our stack.
//!
//! For each memory workload: build an image at its Ready point, track its
//! working set, run it resident (uninterrupted `vm run`: the reference), then
//! restore it with every strategy and measure start-up latency (restore begins
//! to the guest about to run; for `cold`, boot to Ready), execution time of
//! the same work, its overhead against the resident run, the invalid execution
//! ratio (time the vCPU waited on the page server / execution time), remote
//! (demand) faults and bytes fetched. Every restored run must reproduce the
//! resident checksum, or the benchmark fails. Plus the table of demand faults
//! for the 8 combinations of the three techniques.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::runner::{checksum, created_ms, num_after, paged, run};
use crate::BenchError;

/// The six workloads.
pub const WORKLOADS: [&str; 6] = ["astar", "libquantum", "mcf", "omnetpp", "perlbench", "xalancbmk"];
/// The strategies compared.
pub const STRATEGIES: [&str; 5] = ["cold", "resume", "lazy", "mmap", "twinkle"];

/// The rows of one workload: a name and the `vm restore` flags. `twinkle`
/// and `resume-huge` take guest memory from the huge-page pool (when the
/// bench may use it), `twinkle-4k` shows the same strategy without it, so
/// the table separates what the techniques save from what the pool saves.
fn variants(huge: bool) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let pool: Vec<&str> = if huge { vec!["--huge-pages", "on"] } else { vec!["--huge-pages", "off"] };
    let mut v = vec![
        ("cold", "cold", vec![]),
        ("resume", "resume", vec!["--huge-pages", "off"]),
        ("lazy", "lazy", vec!["--huge-pages", "off"]),
        ("mmap", "mmap", vec![]),
    ];
    if huge {
        v.insert(2, ("resume-huge", "resume", vec!["--huge-pages", "on"]));
        v.push(("twinkle-4k", "twinkle", vec!["--huge-pages", "off"]));
    }
    v.push(("twinkle", "twinkle", pool));
    v
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Settings.
#[derive(Clone, Debug)]
pub struct StartupOptions {
    /// The twinkle binary.
    pub twinkle: PathBuf,
    /// Guest memory, MiB.
    pub mem_mib: u32,
    /// Workload data size, MiB.
    pub data_mib: u32,
    /// Work rounds per run.
    pub iters: u32,
    /// Where images are built (removed afterwards).
    pub work_dir: PathBuf,
    /// Show progress.
    pub progress: bool,
    /// Runs of each row (and of the resident reference), interleaved; the
    /// medians are reported.
    pub repeat: u32,
    /// Take guest memory from the host's huge-page pool for the `twinkle`
    /// and `resume-huge` rows (the caller checked the pool has room).
    pub huge_pages: bool,
}

/// One workload under one strategy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// Workload name.
    pub workload: String,
    /// Strategy name.
    pub strategy: String,
    /// Restore begins to the guest about to run (cold: boot to Ready), ms.
    pub startup_ms: f64,
    /// The workload's run time after start, ms.
    pub exec_ms: f64,
    /// Execution time over the resident run's, percent.
    pub exec_overhead_pct: f64,
    /// Page-server stall time over execution time (null where not measured).
    pub invalid_exec_ratio: Option<f64>,
    /// Demand faults served from the image (null where not measured).
    pub remote_faults: Option<u64>,
    /// Bytes read from the image.
    pub bytes_fetched: u64,
    /// Guest memory came from the huge-page pool.
    #[serde(default)]
    pub huge_pages: bool,
}

/// Demand faults of one technique combination.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Combination {
    /// Workload.
    pub workload: String,
    /// Working set preloaded.
    pub working_set: bool,
    /// Demand prediction.
    pub prediction: bool,
    /// Free-page avoidance.
    pub free_pages: bool,
    /// Demand faults served from the image.
    pub remote_faults: u64,
    /// Zero-page faults.
    pub zero_faults: u64,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartupReport {
    /// Always "startup".
    pub bench: String,
    /// Guest memory, MiB.
    pub mem_mib: u32,
    /// Workload data, MiB.
    pub data_mib: u32,
    /// Resident execution time per workload, ms.
    pub resident_exec_ms: Vec<(String, f64)>,
    /// Working-set pages per workload.
    pub working_set_pages: Vec<(String, u64)>,
    /// Runs behind each median.
    #[serde(default)]
    pub repeat: u32,
    /// Whether the huge-page pool was used (see [`StartupOptions::huge_pages`]).
    #[serde(default)]
    pub huge_pages: bool,
    /// workload x strategy.
    pub rows: Vec<Row>,
    /// The 8 combinations of the three techniques (no background fetch).
    pub combinations: Vec<Combination>,
}

/// Runs the benchmark.
pub fn run_bench(o: &StartupOptions) -> Result<StartupReport, BenchError> {
    let t = &o.twinkle;
    let s = |v: &str| v.to_string();
    let rows = variants(o.huge_pages);
    let repeat = o.repeat.max(1);
    let steps = WORKLOADS.len() as u64 * (2 + u64::from(repeat) * (1 + rows.len() as u64) + 8);
    let pb = if o.progress { ProgressBar::new(steps) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    std::fs::create_dir_all(&o.work_dir)
        .map_err(|source| BenchError::Io { what: format!("create {}", o.work_dir.display()), source })?;
    let mut report = StartupReport {
        bench: "startup".into(),
        mem_mib: o.mem_mib,
        data_mib: o.data_mib,
        resident_exec_ms: Vec::new(),
        working_set_pages: Vec::new(),
        repeat,
        huge_pages: o.huge_pages,
        rows: Vec::new(),
        combinations: Vec::new(),
    };
    for w in WORKLOADS {
        let app_args = [format!("kind={w}"), format!("mib={}", o.data_mib), format!("iters={}", o.iters)];
        let mut base = vec![s("--mem-mib"), o.mem_mib.to_string()];
        for a in &app_args {
            base.push(s("--arg"));
            base.push(a.clone());
        }
        let img = o.work_dir.join(w);
        let _ = std::fs::remove_dir_all(&img);
        pb.set_message(format!("{w}: image build"));
        let mut args = vec![s("image"), s("build"), s("--app"), s("workload"), s("--out"), img.display().to_string()];
        args.extend(base.iter().cloned());
        run(t, &args)?;
        pb.inc(1);
        pb.set_message(format!("{w}: image track"));
        let tracked = run(t, &[s("image"), s("track"), s("--image"), img.display().to_string()])?;
        report.working_set_pages.push((w.into(), num_after(&tracked.stdout, "\"pages\":").unwrap_or(0.0) as u64));
        pb.inc(1);

        // Each round runs the resident reference and every row once, so the
        // machine's drift spreads over all of them alike.
        let mut resident_ms = Vec::new();
        let mut cold_ready_ms;
        let mut reference = None;
        let mut samples: Vec<Vec<Row>> = vec![Vec::new(); rows.len()];
        for round in 0..repeat {
            pb.set_message(format!("{w}: resident ({}/{repeat})", round + 1));
            let mut args = vec![s("vm"), s("run"), s("--app"), s("workload")];
            args.extend(base.iter().cloned());
            let resident = run(t, &args)?;
            let sum = checksum(&resident.stderr).ok_or_else(|| BenchError::Process(format!("{w}: no checksum")))?;
            if reference.get_or_insert_with(|| sum.clone()) != &sum {
                return Err(BenchError::Process(format!("{w}: two resident runs computed different checksums")));
            }
            resident_ms.push(num_after(&resident.stderr, "elapsed_us=").unwrap_or(0.0) / 1e3);
            cold_ready_ms = num_after(&resident.stderr, "ready after").unwrap_or(0.0);
            pb.inc(1);
            for (k, (name, strategy, flags)) in rows.iter().enumerate() {
                pb.set_message(format!("{w}: {name} ({}/{repeat})", round + 1));
                let mut args =
                    vec![s("vm"), s("restore"), s("--image"), img.display().to_string(), s("--strategy"), s(strategy)];
                args.extend(flags.iter().map(|f| s(f)));
                let out = run(t, &args)?;
                if checksum(&out.stderr) != reference {
                    return Err(BenchError::Process(format!(
                        "{w} restored with {name} computed another checksum than the resident run"
                    )));
                }
                let created = out.stdout.lines().find(|l| l.starts_with("created ")).unwrap_or("");
                let exec_ms = num_after(&out.stderr, "elapsed_us=").unwrap_or(0.0) / 1e3;
                let startup_ms =
                    if *strategy == "cold" { created_ms(&out.stdout) + cold_ready_ms } else { created_ms(&out.stdout) };
                let stall = paged(&out.stdout, "stall_ms");
                samples[k].push(Row {
                    workload: w.into(),
                    strategy: (*name).into(),
                    startup_ms,
                    exec_ms,
                    exec_overhead_pct: 0.0,
                    invalid_exec_ratio: stall.map(|st| if exec_ms > 0.0 { (st / exec_ms).min(1.0) } else { 0.0 }),
                    remote_faults: paged(&out.stdout, "demand_faults").map(|f| f as u64),
                    bytes_fetched: paged(&out.stdout, "bytes_fetched")
                        .or_else(|| num_after(created, "\"bytes_loaded\":"))
                        .unwrap_or(0.0) as u64,
                    huge_pages: created.contains("\"huge_pages\":true"),
                });
                pb.inc(1);
            }
        }
        let resident = median(&mut resident_ms);
        report.resident_exec_ms.push((w.into(), resident));
        for mut runs in samples {
            let startup = median(&mut runs.iter().map(|r| r.startup_ms).collect::<Vec<_>>());
            let exec = median(&mut runs.iter().map(|r| r.exec_ms).collect::<Vec<_>>());
            let stall = median(
                &mut runs.iter().filter_map(|r| r.invalid_exec_ratio.map(|v| v * r.exec_ms)).collect::<Vec<_>>(),
            );
            let Some(mut row) = runs.pop() else { continue };
            row.startup_ms = startup;
            row.exec_ms = exec;
            row.exec_overhead_pct = if resident > 0.0 { (exec - resident) / resident * 100.0 } else { 0.0 };
            row.invalid_exec_ratio =
                row.invalid_exec_ratio.map(|_| if exec > 0.0 { (stall / exec).min(1.0) } else { 0.0 });
            report.rows.push(row);
        }
        for combo in 0..8u8 {
            let (ws, pred, free) = (combo & 4 != 0, combo & 2 != 0, combo & 1 != 0);
            pb.set_message(format!("{w}: combination {combo}"));
            let mut args = vec![
                s("vm"),
                s("restore"),
                s("--image"),
                img.display().to_string(),
                s("--strategy"),
                s("twinkle"),
                s("--no-background"),
                // 4 KiB faults, as in the paper's table.
                s("--huge-pages"),
                s("off"),
            ];
            if !ws {
                args.push(s("--no-working-set"));
            }
            if !pred {
                args.push(s("--no-prediction"));
            }
            if !free {
                args.push(s("--no-free-pages"));
            }
            let out = run(t, &args)?;
            report.combinations.push(Combination {
                workload: w.into(),
                working_set: ws,
                prediction: pred,
                free_pages: free,
                remote_faults: paged(&out.stdout, "demand_faults").unwrap_or(0.0) as u64,
                zero_faults: paged(&out.stdout, "zero_faults").unwrap_or(0.0) as u64,
            });
            pb.inc(1);
        }
        let _ = std::fs::remove_dir_all(&img);
    }
    pb.finish_and_clear();
    Ok(report)
}

impl StartupReport {
    /// The rows as CSV.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "workload,strategy,startup_ms,exec_ms,exec_overhead_pct,invalid_exec_ratio,remote_faults,bytes_fetched\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{:.3},{:.3},{:.2},{},{},{}\n",
                r.workload,
                r.strategy,
                r.startup_ms,
                r.exec_ms,
                r.exec_overhead_pct,
                r.invalid_exec_ratio.map_or(String::new(), |v| format!("{v:.4}")),
                r.remote_faults.map_or(String::new(), |v| v.to_string()),
                r.bytes_fetched
            ));
        }
        out
    }

    /// A markdown table of the rows.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| workload | strategy | start-up ms | exec ms | overhead % | invalid exec ratio | remote faults | MiB fetched |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} | {:+.1} | {} | {} | {:.1} |\n",
                r.workload,
                r.strategy,
                r.startup_ms,
                r.exec_ms,
                r.exec_overhead_pct,
                r.invalid_exec_ratio.map_or("-".into(), |v| format!("{v:.3}")),
                r.remote_faults.map_or("-".into(), |v| v.to_string()),
                r.bytes_fetched as f64 / (1 << 20) as f64
            ));
        }
        out
    }
}
