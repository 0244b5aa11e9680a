//! Load an official RecFormer checkpoint (PyTorch `.bin` or `.safetensors`) strictly and encode a
//! sequence with it.
//!
//! ```text
//! cargo run --release --example load_official_checkpoint -- CONFIG_JSON CHECKPOINT
//! # e.g. the released RecFormer-base: config.json of longformer-base with the RecFormer fields,
//! # and recformer_seqrec_ckpt.bin (keys longformer.* + lm_head.*)
//! ```
//! Without arguments it loads the tiny committed parity fixture
//! (`crates/recformer-model/tests/fixtures/`), which has the same key layout as the real files.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::{Int, Tensor, TensorData};
use recformer::model::backend::Cpu;
use recformer::model::{load_checkpoint, RecformerConfig, RecformerInput};

fn main() -> Result<()> {
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/recformer-model/tests/fixtures");
    let mut args = std::env::args().skip(1);
    let config_path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures.join("config.json"));
    let ckpt = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures.join("pretraining.bin"));

    let config = RecformerConfig::from_json_file(&config_path)?;
    let device: burn::tensor::Device<Cpu> = Default::default();
    let loaded = load_checkpoint::<Cpu>(&ckpt, &config, &device)?;
    println!(
        "loaded {} ({:?} key style): {} encoder parameters, LM head: {}, item table: {:?}",
        ckpt.display(),
        loaded.prefix,
        config.model_num_params(),
        loaded.lm_head.is_some(),
        loaded.item_embedding.as_ref().map(|t| t.dims())
    );

    // `<s>` followed by two items' tokens (ids are arbitrary here), newest item first.
    let ids: Vec<i64> = vec![0, 5, 6, 7, 8, 9, 10, 11, 12];
    let types: Vec<i64> = vec![0, 1, 2, 2, 2, 1, 2, 2, 2];
    let items: Vec<i64> = vec![0, 1, 1, 1, 1, 2, 2, 2, 2];
    let n = ids.len();
    let t = |v: Vec<i64>| Tensor::<Cpu, 2, Int>::from_data(TensorData::new(v, [1, n]), &device);
    let input =
        RecformerInput::with_cls_global(t(ids), Tensor::ones([1, n], &device), t(types), t(items));
    let out = loaded.model.forward(input);
    let pooled: Vec<f32> = out
        .pooler_output
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!(
        "pooled <s> vector (first 4 of {}): {:?}",
        pooled.len(),
        &pooled[..4.min(pooled.len())]
    );
    Ok(())
}
