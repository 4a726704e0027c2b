//! SVG plots of benchmark results, next to their CSV and JSON.

use plotters::prelude::*;

use crate::startup::StartupReport;
use crate::BenchError;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One chart: where it goes, its title, and the value it shows per row.
type Panel<'a, 'b> =
    (&'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>, &'static str, fn(&crate::startup::Row) -> f64);

/// Start-up latency and execution overhead per strategy, one line per
/// workload, both on log scales: the paper's two questions in one picture.
pub fn startup_svg(r: &StartupReport) -> Result<String, BenchError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 480)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| BenchError::Process(format!("plot: {e}"));
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (left, right) = root.split_horizontally(550);
        let workloads: Vec<&str> = {
            let mut w: Vec<&str> = r.rows.iter().map(|x| x.workload.as_str()).collect();
            w.dedup();
            w
        };
        let strategies: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for x in &r.rows {
                if !v.contains(&x.strategy.as_str()) {
                    v.push(&x.strategy);
                }
            }
            v
        };
        let panels: [Panel<'_, '_>; 2] = [
            (&left, "start-up latency (ms, log)", |x| x.startup_ms.max(0.1)),
            (&right, "execution time / resident (log)", |x| (1.0 + x.exec_overhead_pct / 100.0).max(0.5)),
        ];
        for (area, title, value) in panels {
            let ys: Vec<f64> = r.rows.iter().map(value).collect();
            let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d(-0.3f64..(strategies.len() as f64 - 0.7), (lo * 0.8..hi * 1.25).log_scale())
                .map_err(|e| fail(&e))?;
            chart
                .configure_mesh()
                .x_labels(strategies.len())
                .x_label_formatter(&|x| {
                    let i = x.round() as usize;
                    if (x - i as f64).abs() < 0.01 {
                        strategies.get(i).copied().unwrap_or("").to_string()
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| if *y >= 10.0 { format!("{y:.0}") } else { format!("{y:.1}") })
                .draw()
                .map_err(|e| fail(&e))?;
            for (k, w) in workloads.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let pts: Vec<(f64, f64)> = strategies
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| {
                        r.rows.iter().find(|x| x.workload == *w && x.strategy == *s).map(|x| (i as f64, value(x)))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(|e| fail(&e))?
                    .label(*w)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| fail(&e))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}
