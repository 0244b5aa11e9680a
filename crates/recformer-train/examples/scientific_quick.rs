//! Trains a small RecFormer from scratch on CPU on the Scientific dataset (official processed
//! layout) for a few minutes and prints test metrics next to popularity and random baselines.
//!
//! ```text
//! cargo run --release -p recformer-train --example scientific_quick -- [--epochs 4] [--lr 1e-3] [--out DIR]
//! ```
//! Data: `$RECFORMER_DATA_DIR/scientific-recformer` and
//! `$RECFORMER_DATA_DIR/tokenizers/bert-base-uncased/vocab.txt` (default data dir: `../shared/data`
//! relative to the workspace root).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use recformer_data::{FinetuneDataset, RecformerDataConfig, RecformerTokenizer, Split};
use recformer_model::backend::CpuAutodiff;
use recformer_model::RecformerConfig;
use recformer_train::finetune::{FinetuneData, FinetuneOutcome, RunControl};
use recformer_train::metrics::{
    evaluate_random, evaluate_static_scores, popularity_scores, RankingCase,
};
use recformer_train::{
    finetune, FinetuneConfig, FinetuneVariant, InputBuilder, Metrics, MetricsEvent, Progress,
    RunDir,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prints evaluation events and phase timings to stderr.
struct Stderr {
    start: Instant,
}

impl Progress for Stderr {
    fn on_start(&self, label: &str, total: u64) {
        eprintln!(
            "[{:7.1}s] {label} ({total})",
            self.start.elapsed().as_secs_f64()
        );
    }
    fn on_advance(&self, _n: u64) {}
    fn on_finish(&self) {}
    fn on_event(&self, e: &MetricsEvent) {
        eprintln!(
            "[{:7.1}s] {} {} epoch {} step {} loss {:?} {}",
            self.start.elapsed().as_secs_f64(),
            e.stage,
            e.kind,
            e.epoch,
            e.step,
            e.loss,
            e.metrics.map(|m| fmt(&m)).unwrap_or_default()
        );
    }
}

fn fmt(m: &Metrics) -> String {
    format!(
        "NDCG@10 {:.4} Recall@10 {:.4} NDCG@50 {:.4} Recall@50 {:.4} MRR {:.4} (users {})",
        m.ndcg_10, m.recall_10, m.ndcg_50, m.recall_50, m.mrr, m.users
    )
}

fn data_dir() -> PathBuf {
    std::env::var_os("RECFORMER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn main() -> anyhow::Result<()> {
    let mut epochs = 4usize;
    let mut lr = 1e-3f64;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--epochs" => epochs = args.next().context("--epochs N")?.parse()?,
            "--lr" => lr = args.next().context("--lr X")?.parse()?,
            "--out" => out = Some(args.next().context("--out DIR")?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    let start = Instant::now();
    let root = data_dir();
    let data_path = root.join("scientific-recformer");
    let dataset = FinetuneDataset::load(&data_path)
        .with_context(|| format!("loading {}", data_path.display()))?;
    let tokenizer = RecformerTokenizer::from_wordpiece_vocab(
        &root.join("tokenizers/bert-base-uncased/vocab.txt"),
        true,
    )?;
    let data_config = RecformerDataConfig {
        max_attr_num: 3,
        max_attr_length: 16,
        max_item_embeddings: 51,
        max_token_num: 128,
    };
    let model_config = RecformerConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 256,
        max_position_embeddings: 256,
        pad_token_id: tokenizer.pad_token_id() as usize,
        attention_window: vec![64; 2],
        layer_norm_eps: 1e-12,
        max_token_num: data_config.max_token_num,
        max_item_embeddings: data_config.max_item_embeddings,
        max_attr_num: data_config.max_attr_num,
        max_attr_length: data_config.max_attr_length,
        ..RecformerConfig::default()
    };
    model_config.validate()?;
    let item_tokens = tokenizer.encode_catalogue(&dataset.items, &data_config)?;
    eprintln!(
        "{} users, {} items, {} interactions; tokenised in {:.1}s",
        dataset.num_users(),
        dataset.num_items(),
        dataset.num_interactions(),
        start.elapsed().as_secs_f64()
    );

    // Baselines on the test split (official rank rule: ties count for the label).
    let examples = dataset.eval_examples(Split::Test);
    let cases: Vec<RankingCase<'_>> = examples
        .iter()
        .map(|e| RankingCase {
            history: &e.history,
            label: e.label,
        })
        .collect();
    let pop = popularity_scores(dataset.num_items(), dataset.train.values());
    let popularity = evaluate_static_scores(&pop, &cases, false, 16);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let random = evaluate_random(dataset.num_items(), &cases, false, &mut rng);

    let config = FinetuneConfig {
        variant: FinetuneVariant::TwoStage,
        num_train_epochs: epochs,
        batch_size: 32,
        gradient_accumulation_steps: 1,
        learning_rate: lr,
        warmup_steps: 100,
        verbose: 1,
        patience_stage1: 2,
        patience_stage2: 1,
        eval_batch_size: 64,
        encode_batch_size: 64,
        ..FinetuneConfig::default()
    };
    let run_path = match out {
        Some(p) => p,
        None => {
            std::env::temp_dir().join(format!("recformer-scientific-quick-{}", std::process::id()))
        }
    };
    let run = RunDir::create(&run_path)?;
    let device = Default::default();
    CpuAutodiff::seed(&device, 42);
    let model = model_config.init_model::<CpuAutodiff>(&device);
    let data = FinetuneData {
        dataset: &dataset,
        item_tokens: &item_tokens,
        builder: InputBuilder::new(&tokenizer, data_config),
    };
    let progress = Stderr { start };
    let outcome = finetune(
        model,
        &model_config,
        &config,
        &data,
        &run,
        &device,
        &RunControl::default(),
        &progress,
    )?;
    let FinetuneOutcome::Finished(result) = outcome else {
        bail!("run interrupted");
    };
    let secs = start.elapsed().as_secs_f64();
    println!("run dir: {}", run_path.display());
    println!(
        "wall time: {secs:.0} s, optimizer steps: {}",
        result.optimizer_steps
    );
    println!("random     test: {}", fmt(&random));
    println!("popularity test: {}", fmt(&popularity));
    if let Some(z) = result.zero_shot {
        println!("untrained  test: {}", fmt(&z));
    }
    if let Some(v) = result.best_val {
        println!("best val        : {}", fmt(&v));
    }
    println!("RecFormer  test: {}", fmt(&result.test));
    println!(
        "(official batch-mean aggregation: {})",
        fmt(&result.test_batch_mean)
    );
    Ok(())
}
