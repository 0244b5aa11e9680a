//! `recformer plot RUN_DIR`: metrics.jsonl -> PNG.

use std::path::PathBuf;

use anyhow::Result;

/// Arguments of `plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A run directory (with metrics.jsonl).
    pub run: PathBuf,
    /// Output PNG (default: RUN/metrics.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: PlotArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.run.join("metrics.png"));
    let n = super::plot::plot_run(&a.run, &out)?;
    println!("plotted {n} records -> {}", out.display());
    Ok(())
}
