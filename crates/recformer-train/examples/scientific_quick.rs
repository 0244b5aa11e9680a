//! Trains a small RecFormer from scratch on CPU on the Scientific dataset (official processed
//! layout) and prints test metrics next to popularity and random baselines: optional in-domain
//! pretraining (IIC [+ MLM] on the training sequences, every 10th user held out as dev), then the
//! official two-stage finetuning.
//!
//! ```text
//! cargo run --release -p recformer-train --example scientific_quick -- [--epochs 4] [--lr 1e-3]
//!     [--pretrain-epochs 0] [--pretrain-lr 1e-3] [--mlm-weight 0.1] [--batch 32]
//!     [--max-tokens 128] [--attr-len 16] [--vocab bert|bert-catalogue|N] [--init-std 0.02]
//!     [--position-scale 1] [--hidden 64] [--layers 2] [--heads 2] [--dropout 0.1]
//!     [--pretrain-fix-word-embedding] [--val-users N] [--patience 2] [--no-zero-shot] [--out DIR]
//! ```
//! The recipe of `docs/results.md` (≈ 10 minutes on 2 CPU cores, test NDCG@10 ≈ 2× popularity):
//! `--pretrain-epochs 3 --pretrain-lr 2e-3 --mlm-weight 0 --init-std 0.1 --position-scale 0.05
//! --max-tokens 64 --attr-len 12 --batch 32 --lr 1e-4 --epochs 2 --val-users 2000`.
//!
//! - `--vocab`: `bert` = `bert-base-uncased`; `bert-catalogue` = that vocabulary restricted to the
//!   catalogue's tokens (same tokens, dense ids); `N` = an N-token WordPiece vocabulary trained on
//!   the catalogue (not deterministic across runs).
//! - `--init-std`: std of the random initialisation (HF `initializer_range`; 0.02 is the official
//!   value, meant for wide models that are then pretrained at length).
//! - `--position-scale`: multiplies the random token-position, token-type and item-position
//!   tables after initialisation, so that a token starts as mostly its word.
//! - Pretraining trains the word embeddings unless `--pretrain-fix-word-embedding` (the official
//!   setting, for a pretrained Longformer).
//! - `--val-users N`: validate on the first N val users only (the test evaluations use all).
//! - `--patience P`: stage-1 patience P, stage-2 patience ceil(P/2).
//!
//! Data: `$RECFORMER_DATA_DIR/scientific-recformer` and
//! `$RECFORMER_DATA_DIR/tokenizers/bert-base-uncased/vocab.txt` (default data dir: `../shared/data`
//! relative to the workspace root).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use recformer_data::{FinetuneDataset, PretrainCorpus, RecformerTokenizer, Split};
use recformer_model::backend::CpuAutodiff;
use recformer_model::RecformerConfig;
use recformer_train::finetune::{FinetuneData, FinetuneOutcome, RunControl};
use recformer_train::metrics::{
    evaluate_random, evaluate_static_scores, popularity_scores, RankingCase,
};
use recformer_train::pretrain::{pretrain, PretrainData};
use recformer_train::{
    finetune, FinetuneConfig, FinetuneVariant, Metrics, MetricsEvent, ModelSpec, OptimizerConfig,
    PretrainConfig, Progress, RunDir,
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
    recformer_data::shared_data::shared_data_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
    )
}

/// Which vocabulary the model uses.
#[derive(Debug, Clone, Copy)]
enum Vocab {
    /// `bert-base-uncased` (30,522 tokens).
    Bert,
    /// `bert-base-uncased` restricted to the tokens of the catalogue (same tokens, dense ids).
    BertCatalogue,
    /// A WordPiece vocabulary of this size trained on the catalogue.
    Trained(usize),
}

/// Command-line options (see the module docs).
struct Options {
    epochs: usize,
    lr: f64,
    pretrain_epochs: usize,
    pretrain_lr: f64,
    mlm_weight: f64,
    batch: usize,
    max_tokens: usize,
    attr_len: usize,
    vocab: Vocab,
    init_std: f64,
    position_scale: f64,
    hidden: usize,
    layers: usize,
    heads: usize,
    dropout: f64,
    pretrain_fix_word_embedding: bool,
    val_users: Option<usize>,
    patience: usize,
    zero_shot: bool,
    out: Option<PathBuf>,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut o = Options {
        epochs: 4,
        lr: 1e-3,
        pretrain_epochs: 0,
        pretrain_lr: 1e-3,
        mlm_weight: 0.1,
        batch: 32,
        max_tokens: 128,
        attr_len: 16,
        vocab: Vocab::Bert,
        init_std: 0.02,
        position_scale: 1.0,
        hidden: 64,
        layers: 2,
        heads: 2,
        dropout: 0.1,
        pretrain_fix_word_embedding: false,
        val_users: None,
        patience: 2,
        zero_shot: true,
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--epochs" => o.epochs = value()?.parse()?,
            "--lr" => o.lr = value()?.parse()?,
            "--pretrain-epochs" => o.pretrain_epochs = value()?.parse()?,
            "--pretrain-lr" => o.pretrain_lr = value()?.parse()?,
            "--mlm-weight" => o.mlm_weight = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--max-tokens" => o.max_tokens = value()?.parse()?,
            "--attr-len" => o.attr_len = value()?.parse()?,
            "--vocab" => {
                let v = value()?;
                o.vocab = match v.as_str() {
                    "bert" => Vocab::Bert,
                    "bert-catalogue" => Vocab::BertCatalogue,
                    n => Vocab::Trained(n.parse()?),
                }
            }
            "--init-std" => o.init_std = value()?.parse()?,
            "--position-scale" => o.position_scale = value()?.parse()?,
            "--hidden" => o.hidden = value()?.parse()?,
            "--layers" => o.layers = value()?.parse()?,
            "--heads" => o.heads = value()?.parse()?,
            "--dropout" => o.dropout = value()?.parse()?,
            "--pretrain-fix-word-embedding" => o.pretrain_fix_word_embedding = true,
            "--val-users" => o.val_users = Some(value()?.parse()?),
            "--patience" => o.patience = value()?.parse()?,
            "--no-zero-shot" => o.zero_shot = false,
            "--out" => o.out = Some(value()?.into()),
            other => bail!("unknown argument {other} (see the example's docs)"),
        }
    }
    Ok(o)
}

/// Multiplies the random token-position, token-type and item-position tables by `factor`, so
/// that at initialisation a token's embedding is mostly its word (with one std for all four
/// tables, three quarters of it is position and type, shared by every item).
fn scale_position_tables<B: Backend>(
    mut model: recformer_model::RecformerModel<B>,
    factor: f64,
) -> recformer_model::RecformerModel<B> {
    let e = &mut model.embeddings;
    for table in [
        &mut e.position_embeddings,
        &mut e.token_type_embeddings,
        &mut e.item_position_embeddings,
    ] {
        let scaled = table.weight.val().mul_scalar(factor).detach();
        table.weight = burn::module::Param::from_tensor(scaled);
    }
    model
}

fn main() -> anyhow::Result<()> {
    let o = parse_options()?;
    let start = Instant::now();
    let root = data_dir();
    let data_path = root.join("scientific-recformer");
    let dataset = FinetuneDataset::load(&data_path)
        .with_context(|| format!("loading {}", data_path.display()))?;
    let bert = || {
        RecformerTokenizer::from_wordpiece_vocab(
            &root.join("tokenizers/bert-base-uncased/vocab.txt"),
            true,
        )
    };
    let tokenizer = match o.vocab {
        Vocab::Bert => bert()?,
        Vocab::BertCatalogue => bert()?.restrict_wordpiece_to_catalogue(&dataset.items)?,
        Vocab::Trained(size) => {
            let mut texts: Vec<String> = ["title", "brand", "category"]
                .iter()
                .map(|k| k.to_string())
                .collect();
            for item in &dataset.items {
                for key in ["title", "brand", "category"] {
                    if let Some(v) = item.get(key).filter(|v| !v.is_empty()) {
                        texts.push(v.to_string());
                    }
                }
            }
            RecformerTokenizer::train_wordpiece(texts.into_iter(), size, true)?
        }
    };
    let model_config = RecformerConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: o.hidden,
        num_hidden_layers: o.layers,
        num_attention_heads: o.heads,
        intermediate_size: 4 * o.hidden,
        hidden_dropout_prob: o.dropout,
        attention_probs_dropout_prob: o.dropout,
        max_position_embeddings: o.max_tokens + tokenizer.pad_token_id() as usize + 2,
        pad_token_id: tokenizer.pad_token_id() as usize,
        attention_window: vec![64; o.layers],
        layer_norm_eps: 1e-12,
        initializer_range: o.init_std,
        max_token_num: o.max_tokens,
        max_item_embeddings: 51,
        max_attr_num: 3,
        max_attr_length: o.attr_len,
        ..RecformerConfig::default()
    };
    let spec = ModelSpec::new(model_config, tokenizer)?;
    let (model_config, tokenizer) = (spec.config(), spec.tokenizer());
    let data_config = spec.data_config();
    let item_tokens = tokenizer.encode_catalogue(&dataset.items, &data_config)?;
    eprintln!(
        "{} users, {} items, {} interactions; vocabulary of {} tokens; tokenised in {:.1}s",
        dataset.num_users(),
        dataset.num_items(),
        dataset.num_interactions(),
        tokenizer.vocab_size(),
        start.elapsed().as_secs_f64()
    );

    // Baselines on the test split (official rank rule: ties count for the label).
    let examples = dataset.eval_examples(Split::Test);
    let cases = RankingCase::of_examples(&examples);
    let pop = popularity_scores(dataset.num_items(), dataset.train.values());
    let popularity = evaluate_static_scores(&pop, &cases, false, 16);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let random = evaluate_random(dataset.num_items(), &cases, false, &mut rng);

    let config = FinetuneConfig {
        variant: FinetuneVariant::TwoStage,
        num_train_epochs: o.epochs,
        // Decay over both stages (the official schedule reaches 0 at the end of stage 1).
        schedule_epochs: Some(2 * o.epochs),
        batch_size: o.batch,
        optimizer: OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: o.lr,
            warmup_steps: 100,
            ..FinetuneConfig::default().optimizer
        },
        verbose: 1,
        patience_stage1: o.patience,
        patience_stage2: o.patience.div_ceil(2),
        max_eval_users: o.val_users,
        initial_test_eval: o.zero_shot,
        eval_batch_size: 64,
        encode_batch_size: 64,
        ..FinetuneConfig::default()
    };
    let run_path = match o.out {
        Some(p) => p,
        None => {
            std::env::temp_dir().join(format!("recformer-scientific-quick-{}", std::process::id()))
        }
    };
    let run = RunDir::create(&run_path)?;
    let progress = Stderr { start };
    let device = Default::default();
    CpuAutodiff::seed(&device, 42);
    let mut model = model_config.init_model::<CpuAutodiff>(&device);
    if o.position_scale != 1.0 {
        model = scale_position_tables(model, o.position_scale);
    }
    if o.pretrain_epochs > 0 {
        // In-domain pretraining on the training sequences (every 10th user is dev).
        let (mut train, mut dev) = (Vec::new(), Vec::new());
        for (i, seq) in dataset.train.values().enumerate() {
            if i % 10 == 9 {
                dev.push(seq.clone())
            } else {
                train.push(seq.clone())
            }
        }
        let corpus = PretrainCorpus {
            item_keys: dataset.item_keys.clone(),
            items: dataset.items.clone(),
            train,
            dev,
        };
        let pt_config = PretrainConfig {
            max_epochs: o.pretrain_epochs,
            batch_size: o.batch,
            optimizer: OptimizerConfig {
                gradient_accumulation_steps: 1,
                learning_rate: o.pretrain_lr,
                warmup_steps: 20,
                ..PretrainConfig::default().optimizer
            },
            mlm_weight: Some(o.mlm_weight),
            val_check_interval: 0,
            save_top_k: 1,
            // Random word embeddings must learn: freezing them (the official choice for a
            // pretrained Longformer) leaves a from-scratch model with fixed random token vectors.
            fix_word_embedding: o.pretrain_fix_word_embedding,
            ..PretrainConfig::default()
        };
        let pt_run = RunDir::create(run_path.join("pretrain"))?;
        let pt_data = PretrainData {
            spec: &spec,
            corpus: &corpus,
            item_tokens: &item_tokens,
        };
        let mut pt_model = model_config.init_pretraining::<CpuAutodiff>(&device);
        pt_model.longformer = model;
        let outcome = pretrain(
            pt_model,
            &pt_config,
            &pt_data,
            &pt_run,
            &device,
            &RunControl::default(),
            &progress,
        )?;
        let best = outcome
            .best_model
            .context("pretraining ran no validation, so there is no best model")?;
        model =
            recformer_model::load_checkpoint::<CpuAutodiff>(&best, model_config, &device)?.model;
        eprintln!(
            "[{:7.1}s] pretraining done ({} epochs), best model {}",
            start.elapsed().as_secs_f64(),
            o.pretrain_epochs,
            best.display()
        );
    }
    let data = FinetuneData {
        spec: &spec,
        dataset: &dataset,
        item_tokens: &item_tokens,
    };
    let outcome = finetune(
        model,
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
        let what = if o.pretrain_epochs > 0 {
            "pretrained"
        } else {
            "untrained "
        };
        println!("{what} test: {}  (zero-shot)", fmt(&z));
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
