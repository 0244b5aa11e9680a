//! Renders a run's `metrics.jsonl` to a PNG: training loss per epoch, dev NDCG@10 per evaluation
//! and pretraining dev accuracy, with stage boundaries marked.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use recformer_train::MetricsEvent;

/// Font files tried in order when `RECFORMER_FONT` is not set.
const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

fn load_font() -> Result<()> {
    let candidates: Vec<PathBuf> = match std::env::var_os("RECFORMER_FONT") {
        Some(p) => vec![PathBuf::from(p)],
        None => FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    for path in &candidates {
        if let Ok(bytes) = fs::read(path) {
            // plotters keeps the font for the process lifetime.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return Ok(());
            }
        }
    }
    bail!(
        "no TrueType font found for plot labels (tried {}); install fonts-dejavu-core or set RECFORMER_FONT=/path/to/font.ttf",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// Reads `metrics.jsonl`, naming the line of any malformed record.
pub fn read_metrics_log(path: &Path) -> Result<Vec<MetricsEvent>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ev: MetricsEvent = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a metrics record", path.display(), i + 1))?;
        events.push(ev);
    }
    Ok(events)
}

struct Series {
    name: &'static str,
    points: Vec<(f64, f64)>,
}

/// Renders `run_dir/metrics.jsonl` into `out` (PNG). Returns the number of events plotted.
pub fn plot_run(run_dir: &Path, out: &Path) -> Result<usize> {
    let log = run_dir.join("metrics.jsonl");
    let events = read_metrics_log(&log)?;
    if events.is_empty() {
        bail!("{}: no metrics records to plot", log.display());
    }
    load_font()?;

    let mut loss = Series {
        name: "train loss (epoch mean)",
        points: vec![],
    };
    let mut ndcg = Series {
        name: "dev NDCG@10",
        points: vec![],
    };
    let mut acc = Series {
        name: "pretrain dev accuracy",
        points: vec![],
    };
    let mut boundaries: Vec<(f64, String)> = vec![];
    let mut last_stage = String::new();
    let mut last_step = 0.0;
    for ev in &events {
        let x = ev.step as f64;
        if ev.stage != last_stage && ev.stage != "final" && ev.stage != "zero-shot" {
            // A stage starts where the previous one's last record was.
            boundaries.push((last_step, ev.stage.clone()));
            last_stage = ev.stage.clone();
        }
        last_step = x;
        if ev.kind == "epoch" {
            if let Some(l) = ev.loss {
                loss.points.push((x, l));
            }
        }
        if ev.kind == "eval" && ev.split.as_deref() == Some("val") {
            if let Some(m) = ev.metrics {
                ndcg.points.push((x, m.ndcg_10));
            }
        }
        if let Some(a) = ev.accuracy {
            acc.points.push((x, a));
        }
    }

    let root = BitMapBackend::new(out, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    draw_panel(&left, "Training loss", "loss", &[&loss], &boundaries)?;
    draw_panel(&right, "Validation", "metric", &[&ndcg, &acc], &boundaries)?;
    root.present()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(events.len())
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &[&Series],
    boundaries: &[(f64, String)],
) -> Result<()> {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let (x_max, y_min, y_max) = if all.is_empty() {
        (1.0, 0.0, 1.0)
    } else {
        let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max);
        let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let y_max = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let pad = ((y_max - y_min) * 0.1).max(1e-3);
        (
            x_max,
            (y_min - pad).min(0.0f64.max(y_min - pad)),
            y_max + pad,
        )
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.02, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()?;
    for (x, stage) in boundaries {
        chart.draw_series(LineSeries::new(
            vec![(*x, y_min), (*x, y_max)],
            BLACK.mix(0.3),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            stage.clone(),
            (*x, y_max),
            ("sans-serif", 14).into_font(),
        )))?;
    }
    let colors = [RED, BLUE, GREEN];
    for (s, color) in series.iter().zip(colors) {
        if s.points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
            .label(s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}
