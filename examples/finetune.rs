//! Two-stage finetuning on a dataset directory with the library API.
//!
//! ```text
//! cargo run --release --example finetune -- [DATASET_DIR] [RUN_DIR]
//! ```
//! Without arguments a small synthetic catalogue is generated (offline, about a minute on two
//! cores). The model is a small randomly initialised RecFormer with a WordPiece vocabulary
//! trained on the catalogue ("fine-tuning only"); bring a pretrained model directory with
//! `recformer finetune --model DIR` for the full recipe.

use std::path::PathBuf;

use anyhow::Result;
use recformer::data::{FinetuneDataset, RecformerTokenizer};
use recformer::model::backend::CpuAutodiff;
use recformer::model::RecformerConfig;
use recformer::train::{
    finetune, FinetuneConfig, FinetuneData, FinetuneOutcome, ModelSpec, NoProgress,
    OptimizerConfig, RunControl, RunDir,
};
use recformer_cli::synth::{generate, SynthConfig};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let tmp = tempfile::tempdir()?;
    let data = match args.next() {
        Some(d) => PathBuf::from(d),
        None => {
            let dir = tmp.path().join("data");
            generate(&SynthConfig {
                num_items: 120,
                num_users: 200,
                ..SynthConfig::default()
            })
            .write_finetune_layout(&dir)?;
            dir
        }
    };
    let run_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("run"));

    let dataset = FinetuneDataset::load(&data)?;
    let texts = dataset
        .items
        .iter()
        .flat_map(|i| i.attrs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]));
    let tokenizer = RecformerTokenizer::train_wordpiece(texts, 1000, true)?;

    let mut config = RecformerConfig::tiny();
    config.hidden_size = 64;
    config.intermediate_size = 256;
    config.max_token_num = 96;
    config.max_item_embeddings = 51;
    config.attention_window = vec![16; config.num_hidden_layers];
    // Vocabulary, pad id and position table from the tokenizer, checked against the config.
    let spec = ModelSpec::fit(config, tokenizer)?;

    let device: burn::tensor::Device<CpuAutodiff> = Default::default();
    let item_tokens = spec
        .tokenizer()
        .encode_catalogue(&dataset.items, &spec.data_config())?;
    let train_config = FinetuneConfig {
        num_train_epochs: 3,
        batch_size: 16,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: 1e-3,
            warmup_steps: 10,
            ..FinetuneConfig::default().optimizer
        },
        verbose: 1,
        ..FinetuneConfig::default()
    };
    let fdata = FinetuneData {
        spec: &spec,
        dataset: &dataset,
        item_tokens: &item_tokens,
    };
    let model = spec.config().init_model::<CpuAutodiff>(&device);
    let run = RunDir::create(&run_dir)?;
    match finetune(model, &train_config, &fdata, &run, &device, &RunControl::default(), &NoProgress)? {
        FinetuneOutcome::Finished(r) => println!(
            "test NDCG@10 {:.4}  Recall@10 {:.4}  MRR {:.4}  ({} users, {} optimizer steps); best model: {}",
            r.test.ndcg_10,
            r.test.recall_10,
            r.test.mrr,
            r.test.users,
            r.optimizer_steps,
            r.best_model.display()
        ),
        FinetuneOutcome::Interrupted(s) => println!("interrupted at stage {} epoch {}", s.stage, s.epoch),
    }
    Ok(())
}
