//! SVG plots of the comparison sweeps: throughput and p99 latency by connection count
//! and by queue depth, one line per server.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::compare::{MAX_ERROR_FRACTION, Pair, ServerKind, SweepPoint};

const COLORS: [RGBColor; 2] = [RGBColor(0xd6, 0x27, 0x28), RGBColor(0x1f, 0x77, 0xb4)];

/// One SVG per (pair, workload, axis) with two panels; returns the files written.
/// Points with errors above the ratio table's threshold, connection failures or a
/// failed setup are left out: they did not do the work the others did.
pub fn write_plots(dir: &Path, sweeps: &[SweepPoint]) -> anyhow::Result<Vec<PathBuf>> {
    let clean = |p: &&SweepPoint| {
        let r = &p.report;
        p.setup_error.is_none()
            && r.connection_failures.is_empty()
            && r.error_total as f64 <= MAX_ERROR_FRACTION * r.replies as f64
    };
    let mut keys: Vec<(Pair, String, &'static str)> = Vec::new();
    for p in sweeps {
        let k = (p.pair, p.report.workload.clone(), p.axis);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut files = Vec::new();
    for (pair, w, axis) in keys {
        let pts: Vec<&SweepPoint> = sweeps
            .iter()
            .filter(|p| p.pair == pair && p.report.workload == w && p.axis == axis)
            .filter(clean)
            .collect();
        let pair = pair.name();
        let path = dir.join(format!("sweep-{pair}-{w}-{axis}.svg"));
        plot_one(&path, &format!("{pair} {w}"), axis, &pts)
            .map_err(|e| anyhow::anyhow!("plotting {pair} {w}: {e}"))?;
        files.push(path);
    }
    Ok(files)
}

fn plot_one(
    path: &Path,
    workload: &str,
    axis: &str,
    pts: &[&SweepPoint],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut xs: Vec<usize> = pts.iter().map(|p| p.x).collect();
    xs.sort_unstable();
    xs.dedup();
    let root = SVGBackend::new(path, (1100, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let series = |k: ServerKind, f: &dyn Fn(&SweepPoint) -> f64| -> Vec<(f64, f64)> {
        xs.iter()
            .enumerate()
            .filter_map(|(i, x)| {
                pts.iter()
                    .find(|p| p.server == k && p.x == *x)
                    .map(|p| (i as f64, f(p)))
            })
            .collect()
    };
    let xlabel = if axis == "connections" {
        "connections (one session, depth 4 each)"
    } else {
        "queue depth per connection (2 connections)"
    };
    type Metric<'a> = (&'a str, &'a dyn Fn(&SweepPoint) -> f64);
    let metrics: [Metric; 2] = [
        ("ops/s", &|p| p.report.ops_per_sec),
        ("p99 latency (us)", &|p| p.report.latency_us.p99),
    ];
    for (panel, (name, f)) in panels.iter().zip(metrics) {
        let all: Vec<(ServerKind, Vec<(f64, f64)>)> = [ServerKind::Ringnfs, ServerKind::Ganesha]
            .into_iter()
            .map(|k| (k, series(k, f)))
            .collect();
        let ymax = all
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{workload}: {name}"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.2f64..(xs.len() as f64 - 0.8).max(0.2), 0f64..ymax)?;
        let labels = xs.clone();
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(name)
            .x_labels(xs.len().max(2))
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 0.01 && i >= 0.0 {
                    labels
                        .get(i as usize)
                        .map(|x| x.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (ci, (k, s)) in all.into_iter().enumerate() {
            let c = COLORS[ci];
            chart
                .draw_series(LineSeries::new(s.clone(), c.stroke_width(2)))?
                .label(k.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            chart.draw_series(s.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
