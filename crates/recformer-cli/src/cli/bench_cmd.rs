//! `recformer bench`: encoder throughput (forward and training step) on a device.

use anyhow::Result;
use recformer_train::throughput::{measure, ThroughputArgs, ThroughputRow};

use recformer_model::Precision;

use super::common::{check_precision, parse_device, with_autodiff_backend};

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Model shape: base, mini, minilm, small or tiny (random weights).
    #[arg(long, default_value = "mini")]
    pub preset: String,
    /// Sequences per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 512)]
    pub tokens: usize,
    /// Timed repetitions.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed warm-up repetitions.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Float type of the products and activations: f32, or bf16 / f16 (flex, cuda; f16 on wgpu);
    /// parameters, optimizer state and loss stay f32.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

fn parse_precision(s: &str) -> std::result::Result<Precision, String> {
    Precision::from_name(s).ok_or_else(|| format!("{s}: expected f32, bf16 or f16"))
}

pub fn run(a: BenchArgs) -> Result<()> {
    anyhow::ensure!(
        a.batch > 0 && a.tokens > 1 && a.steps > 0,
        "--batch, --tokens and --steps must be positive"
    );
    let kind = parse_device(&a.device)?;
    check_precision(kind, a.precision)?;
    let args = ThroughputArgs {
        device: a.device.clone(),
        preset: a.preset.clone(),
        batch: a.batch,
        tokens: a.tokens,
        steps: a.steps,
        warmup: a.warmup,
        precision: a.precision,
    };
    let row = with_autodiff_backend!(kind, B, device, {
        measure::<B>(device, &args).map_err(anyhow::Error::from)
    })
    .map_err(|e| e.context(format!("--preset {} --tokens {}", a.preset, a.tokens)))?;
    println!("{}", ThroughputRow::HEADER);
    println!("{}", row.markdown());
    Ok(())
}
