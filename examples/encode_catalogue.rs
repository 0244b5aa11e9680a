//! Encode a whole catalogue into an item matrix with the library API.
//!
//! ```text
//! cargo run --release --example encode_catalogue -- [DATASET_DIR] [VOCAB_TXT]
//! ```
//! Defaults: `../shared/data/scientific-recformer` and the bert-base-uncased `vocab.txt` beside
//! it, with a randomly initialised Recformer-mini (no trained weights needed). Pass a model
//! directory's pieces instead to encode with trained weights (see `recformer encode-items`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use recformer::data::{FinetuneDataset, RecformerTokenizer};
use recformer::model::backend::Cpu;
use recformer::model::RecformerConfig;
use recformer::train::model_dir::data_config;
use recformer::train::{encode_all_items, InputBuilder, NoProgress};

fn main() -> Result<()> {
    let shared = recformer::data::shared_data::shared_data_dir(env!("CARGO_MANIFEST_DIR").as_ref());
    let mut args = std::env::args().skip(1);
    let data = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("scientific-recformer"));
    let vocab = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("tokenizers/bert-base-uncased/vocab.txt"));

    let dataset =
        FinetuneDataset::load(&data).with_context(|| format!("loading {}", data.display()))?;
    let tokenizer = RecformerTokenizer::from_wordpiece_vocab(&vocab, true)?;
    let config = RecformerConfig::mini();
    let dcfg = data_config(&config);

    let t0 = Instant::now();
    let tokens = tokenizer.encode_catalogue(&dataset.items, &dcfg)?;
    let t_tok = t0.elapsed();

    let device: burn::tensor::Device<Cpu> = Default::default();
    let model = config.init_model::<Cpu>(&device);
    let builder = InputBuilder::new(&tokenizer, dcfg);
    let t1 = Instant::now();
    let items = encode_all_items(&model, &tokens, &builder, 64, &device, &NoProgress);
    let [n, h] = items.dims();
    println!(
        "{n} items -> [{n}, {h}] item matrix; tokenised in {:.2}s, encoded in {:.1}s ({:.0} items/s)",
        t_tok.as_secs_f64(),
        t1.elapsed().as_secs_f64(),
        n as f64 / t1.elapsed().as_secs_f64()
    );
    let first = dataset.items[0].title();
    println!("item 0 = {first:?}: {} tokens", tokens[0].input_ids.len());
    Ok(())
}
