//! `recformer encode-items`: the item matrix of a catalogue, row = item id.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use recformer_train::checkpoint::{save_item_index, ItemRows};
use recformer_train::encode_all_items;
use recformer_train::ModelDir;

use super::common::{load_catalogue, parse_device, with_backend};
use super::Bars;

/// Arguments of `encode-items`.
#[derive(Debug, clap::Args)]
pub struct EncodeItemsArgs {
    /// Model directory (config.json + tokenizer + weights) or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset in the official finetuning layout (row = iid from smap.json).
    #[arg(long)]
    pub data: PathBuf,
    /// Output item index (safetensors: one f32 tensor `item_embeddings` [num_items, hidden], the
    /// item keys and texts in its metadata). `evaluate` and `recommend` read it with `--items`,
    /// or as `items.safetensors` inside a model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Items per forward pass. On a CPU backend one batch per core runs at once; 32 encodes as
    /// fast as 64 and keeps the process's peak memory ~80 MB lower (docs/performance.md).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: EncodeItemsArgs) -> Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be at least 1");
    let kind = parse_device(&a.device)?;
    with_backend!(kind, B, device, { encode::<B>(&a, &device) })
}

fn encode<B: Backend>(a: &EncodeItemsArgs, device: &B::Device) -> Result<()> {
    let bars = Bars::new(a.quiet);
    let md = ModelDir::open(&a.model)?;
    let cat = load_catalogue(&a.data, md.tokenizer(), &md.data_config(), &|m| bars.say(m))?;
    let model = md.load_without_mlm_head::<B>(device)?.model;
    let builder = md.spec.input_builder();
    let t0 = Instant::now();
    let items = encode_all_items(&model, &cat.tokens, &builder, a.batch_size, device, &bars);
    let [n, h] = items.dims();
    let rows = ItemRows {
        keys: &cat.dataset.item_keys,
        texts: Some(&cat.dataset.items),
    };
    save_item_index(&a.out, &items, Some(rows))
        .with_context(|| format!("writing {}", a.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "encoded {n} items (hidden {h}) in {secs:.1}s ({:.0} items/s) on {} -> {}",
        n as f64 / secs,
        a.device,
        a.out.display()
    );
    Ok(())
}
