//! The field's two plots, as SVG: time per iteration against N for each M (log scales), and
//! each method's time divided by the fastest GPU method's (the fastest method without a GPU).

use std::path::Path;

use plotters::prelude::*;

use super::stats::Summary;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn one_d(summary: &[Summary]) -> Vec<&Summary> {
    summary
        .iter()
        .filter(|s| s.kind == "lloyd1d" && s.median_ms.is_finite() && s.median_ms > 0.0)
        .collect()
}

fn distinct<T: PartialEq + Copy>(v: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Draws one panel per M of `value(series) vs N`, a line per method.
fn panels(path: &Path, title: &str, y_label: &str, rows: &[(&Summary, f64)]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let ms = distinct(rows.iter().map(|(s, _)| s.m));
    let methods = distinct(rows.iter().map(|(s, _)| s.method.as_str()));
    let width = 520 * ms.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((1, ms.len().max(1)));
    for (area, &m) in areas.iter().zip(&ms) {
        let pts: Vec<&(&Summary, f64)> = rows.iter().filter(|(s, _)| s.m == m).collect();
        let (nmin, nmax) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), (s, _)| {
            (a.min(s.n as f64), b.max(s.n as f64))
        });
        let (ymin, ymax) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), (_, v)| {
            (a.min(*v), b.max(*v))
        });
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title}, M = {m}"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (nmin * 0.8..nmax * 1.25).log_scale(),
                (ymin * 0.5..ymax * 2.0).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("N (centroids)")
            .y_desc(y_label)
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3e}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, method) in methods.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut line: Vec<(f64, f64)> = pts
                .iter()
                .filter(|(s, _)| s.method == *method)
                .map(|(s, v)| (s.n as f64, *v))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(method.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// Time per iteration against N, a panel per M.
pub fn time_vs_n(path: &Path, summary: &[Summary]) -> Result<(), String> {
    let rows: Vec<(&Summary, f64)> = one_d(summary)
        .into_iter()
        .map(|s| (s, s.median_ms))
        .collect();
    panels(path, "ms per Lloyd iteration", "ms / iteration", &rows)
}

/// Each method's time over the fastest GPU method's at the same (N, M).
pub fn ratio_vs_n(path: &Path, summary: &[Summary]) -> Result<(), String> {
    let rows = one_d(summary);
    let gpu = |s: &Summary| s.method.starts_with("gpu");
    let any_gpu = rows.iter().any(|s| gpu(s));
    let mut out = Vec::new();
    for s in &rows {
        let best = rows
            .iter()
            .filter(|x| x.n == s.n && x.m == s.m && (!any_gpu || gpu(x)))
            .map(|x| x.median_ms)
            .fold(f64::INFINITY, f64::min);
        out.push((*s, s.median_ms / best));
    }
    let reference = if any_gpu {
        "fastest GPU"
    } else {
        "fastest method"
    };
    panels(path, &format!("time / {reference}"), "ratio", &out)
}
