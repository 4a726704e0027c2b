//! SVG plots of a run: latency percentiles and throughput/errors per second.

use plotters::prelude::*;

use crate::report::SecondRow;

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn chart(title: &str, y_label: &str, series: &[Series<'_>]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| format!("plot: {e}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let x_max = series.iter().flat_map(|s| s.2.iter().map(|p| p.0)).fold(1.0, f64::max);
        let y_max = series.iter().flat_map(|s| s.2.iter().map(|p| p.1)).fold(1e-3, f64::max) * 1.1;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| fail(&e))?;
        c.configure_mesh().x_desc("second").y_desc(y_label).draw().map_err(|e| fail(&e))?;
        for (name, color, pts) in series {
            let color = *color;
            c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// p50/p90/p99/max per second.
pub fn latency_svg(rows: &[SecondRow]) -> Result<String, String> {
    let pts = |f: fn(&SecondRow) -> f64| rows.iter().map(|r| (r.t as f64, f(r))).collect::<Vec<_>>();
    chart(
        "response time per second (from intended send time)",
        "ms",
        &[
            ("p50", RGBColor(31, 119, 180), pts(|r| r.p50_ms)),
            ("p90", RGBColor(44, 160, 44), pts(|r| r.p90_ms)),
            ("p99", RGBColor(255, 127, 14), pts(|r| r.p99_ms)),
            ("max", RGBColor(214, 39, 40), pts(|r| r.max_ms)),
        ],
    )
}

/// Responses and errors per second.
pub fn throughput_svg(rows: &[SecondRow]) -> Result<String, String> {
    chart(
        "throughput and errors per second",
        "per second",
        &[
            ("responses", RGBColor(31, 119, 180), rows.iter().map(|r| (r.t as f64, r.rps as f64)).collect()),
            (
                "errors",
                RGBColor(214, 39, 40),
                rows.iter().map(|r| (r.t as f64, r.errors.iter().sum::<u64>() as f64)).collect(),
            ),
        ],
    )
}
