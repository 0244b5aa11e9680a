//! `recformer demo`: the whole pipeline, offline, on a generated catalogue (or `--data DIR`):
//! tokenizer training -> pretraining -> two-stage finetuning -> test evaluation against
//! popularity and random baselines -> example recommendations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_cli::synth::{generate, SynthConfig};
use recformer_data::{FinetuneDataset, RecformerTokenizer, Split};
use recformer_train::metrics::{
    evaluate_random, evaluate_static_scores, popularity_scores, RankingCase,
};
use recformer_train::ModelDir;
use recformer_train::{Metrics, Recommender};
use serde_json::json;

use super::common::{parse_device, with_autodiff_backend};
use super::tokenizer::catalogue_texts;
use super::train_cmds::{finetune_on, pretrain_on, CommonTrainArgs, FinetuneArgs, PretrainArgs};
use super::Bars;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Run on a dataset in the official finetuning layout instead of the generated catalogue.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output directory (data, tokenizer, pretraining and finetuning runs, summary.json).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Smaller world and fewer epochs (CI smoke test, about a minute).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the generated world and of training.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Exit with an error unless the model beats the random baseline on test NDCG@10 and Recall@10.
    #[arg(long)]
    pub require_better_than_random: bool,
    /// Pretraining epochs (default: 2 with --quick, else 4).
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
    /// Finetuning epochs per stage (default: 4 with --quick, else 8).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Sequences per batch in pretraining and finetuning.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Start from a pretrained language model instead of a fresh small model: a model directory
    /// made by `recformer init` (used as it is), or an HF BERT / RoBERTa / Longformer directory
    /// (converted into OUT/init with the defaults of `init`, but at the demo's budget of
    /// 128 tokens per sequence). Its tokenizer is used; learning rates drop to 5e-5.
    #[arg(long)]
    pub init: Option<PathBuf>,
}

/// Peak learning rate of the demo: high for a fresh small model, low for a pretrained one.
fn demo_lr(pretrained_start: bool) -> f64 {
    if pretrained_start {
        5e-5
    } else {
        1e-3
    }
}

/// Tokens per sequence of a model the demo converts itself: the `small` preset's budget. At
/// MiniLM size a step is linear-to-quadratic in it; the source's 512 made one pretraining epoch of
/// the quick world take over 15 CPU-minutes on 2 cores.
const DEMO_INIT_MAX_TOKENS: usize = 128;

/// The model directory to start from: `dir` itself if it is a RecFormer model directory, else the
/// conversion of the HF directory `dir` into `out/init` (at [`DEMO_INIT_MAX_TOKENS`]).
fn init_model_dir(dir: &Path, out: &Path, bars: &Bars) -> Result<ModelDir> {
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json"))
            .with_context(|| format!("reading {}/config.json", dir.display()))?,
    )
    .with_context(|| format!("parsing {}/config.json", dir.display()))?;
    if config.get("model_type").is_some() {
        let options = recformer_model::pretrained::FromPretrainedConfig {
            max_token_num: Some(DEMO_INIT_MAX_TOKENS),
            ..Default::default()
        };
        let (md, report) = ModelDir::from_pretrained(dir, &out.join("init"), &options)
            .with_context(|| format!("converting {}", dir.display()))?;
        bars.say(&format!(
            "converted {} -> {}",
            report.to_string().lines().next().unwrap_or_default(),
            md.dir.display()
        ));
        Ok(md)
    } else {
        Ok(ModelDir::open(dir)?)
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        a.pretrain_epochs != Some(0) && a.finetune_epochs != Some(0),
        "--pretrain-epochs and --finetune-epochs must be at least 1"
    );
    let kind = parse_device(&a.device)?;
    with_autodiff_backend!(kind, B, device, { demo::<B>(&a, &device) })
}

fn demo<B: AutodiffBackend>(a: &DemoArgs, device: &B::Device) -> Result<()> {
    let t_start = Instant::now();
    let bars = Bars::new(a.quiet);
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;

    // 1. Data.
    let data_dir = match &a.data {
        Some(d) => d.clone(),
        None => {
            let cfg = if a.quick {
                SynthConfig {
                    num_items: 200,
                    num_users: 400,
                    seed: a.seed,
                    ..SynthConfig::default()
                }
            } else {
                SynthConfig {
                    seed: a.seed,
                    ..SynthConfig::default()
                }
            };
            let world = generate(&cfg);
            let dir = a.out.join("data");
            world
                .write_finetune_layout(&dir)
                .with_context(|| format!("writing {}", dir.display()))?;
            bars.say(&format!(
                "[1/5] generated {} items and {} users -> {}",
                cfg.num_items,
                cfg.num_users,
                dir.display()
            ));
            dir
        }
    };
    let dataset = FinetuneDataset::load(&data_dir)?;

    // 2. Tokenizer trained on the catalogue's own text, or the pretrained model's.
    let init = match &a.init {
        Some(dir) => Some(init_model_dir(dir, &a.out, &bars)?),
        None => None,
    };
    let tok_dir = match &init {
        Some(md) => {
            bars.say(&format!(
                "[2/5] pretrained start {}: {} layers x {}, tokenizer of {} tokens",
                md.dir.display(),
                md.config().num_hidden_layers,
                md.config().hidden_size,
                md.tokenizer().vocab_size()
            ));
            None
        }
        None => {
            let texts = catalogue_texts(&data_dir)?;
            let vocab = if a.data.is_some() { 8000 } else { 1000 };
            let tokenizer = RecformerTokenizer::train_wordpiece(texts.into_iter(), vocab, true)?;
            let tok_dir = a.out.join("tokenizer");
            tokenizer.save(&tok_dir)?;
            bars.say(&format!(
                "[2/5] WordPiece tokenizer: {} tokens -> {}",
                tokenizer.vocab_size(),
                tok_dir.display()
            ));
            Some(tok_dir)
        }
    };
    let lr = demo_lr(init.is_some());

    // 3. Pretraining (IIC + MLM) on the training histories.
    let corpus_dir = a.out.join("pretrain-data");
    recformer_data::prepare_in_domain_corpus(&data_dir, &corpus_dir, 10)?;
    let common = |out: PathBuf, epochs: usize| CommonTrainArgs {
        out,
        config: None,
        sets: vec![],
        seed: Some(a.seed),
        batch_size: Some(a.batch_size),
        accumulation: Some(1),
        lr: Some(lr),
        epochs: Some(epochs),
        device: a.device.clone(),
        quiet: a.quiet,
    };
    let pt_args = PretrainArgs {
        data: corpus_dir,
        model: init.as_ref().map(|md| md.dir.clone()),
        tokenizer: tok_dir,
        preset: "small".into(),
        max_steps: None,
        common: common(
            a.out.join("pretrain"),
            a.pretrain_epochs.unwrap_or(if a.quick { 2 } else { 4 }),
        ),
    };
    bars.say("[3/5] pretraining");
    let pt_cfg = recformer_train::PretrainConfig {
        seed: a.seed,
        max_epochs: pt_args.common.epochs.unwrap_or(1),
        batch_size: a.batch_size,
        optimizer: recformer_train::OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: lr,
            warmup_steps: 20,
            ..recformer_train::PretrainConfig::default().optimizer
        },
        val_check_interval: 0,
        save_top_k: 1,
        // A pretrained model keeps its word embeddings (the official choice); a fresh one must
        // train them.
        fix_word_embedding: init.is_some(),
        ..Default::default()
    };
    let pretrained = pretrain_on::<B>(&pt_args, &pt_cfg, device)?;

    // 4. Two-stage finetuning.
    bars.say("[4/5] two-stage finetuning");
    let ft_args = FinetuneArgs {
        model: pretrained.dir.clone(),
        data: data_dir.clone(),
        variant: None,
        from_scratch: false,
        common: common(
            a.out.join("finetune"),
            a.finetune_epochs.unwrap_or(if a.quick { 4 } else { 8 }),
        ),
    };
    let ft_epochs = ft_args.common.epochs.unwrap_or(1);
    let ft_cfg = recformer_train::FinetuneConfig {
        seed: a.seed,
        num_train_epochs: ft_epochs,
        // Decay over both stages, so that stage 2 still learns in a short run.
        schedule_epochs: Some(2 * ft_epochs),
        batch_size: a.batch_size,
        optimizer: recformer_train::OptimizerConfig {
            gradient_accumulation_steps: 1,
            learning_rate: lr,
            warmup_steps: 20,
            ..recformer_train::FinetuneConfig::default().optimizer
        },
        verbose: 1,
        patience_stage1: 3,
        patience_stage2: 2,
        encode_batch_size: 64,
        eval_batch_size: 64,
        fix_word_embedding: init.is_some(),
        ..Default::default()
    };
    let (result, model_dir) = finetune_on::<B>(&ft_args, &ft_cfg, device, false)?;

    // 5. Baselines, table and example recommendations.
    let test = dataset.eval_examples(Split::Test);
    let cases = RankingCase::of_examples(&test);
    let pop = evaluate_static_scores(
        &popularity_scores(dataset.num_items(), dataset.train.values()),
        &cases,
        false,
        16,
    );
    let rnd = evaluate_random(
        dataset.num_items(),
        &cases,
        false,
        &mut ChaCha8Rng::seed_from_u64(a.seed),
    );
    let row = |name: &str, m: &Metrics| {
        println!(
            "| {name:<22} | {:>9.4} | {:>9.4} | {:>9.4} | {:>9.4} |",
            m.recall_10, m.ndcg_10, m.mrr, m.recall_50
        )
    };
    println!();
    println!(
        "Test set: {} users, {} items (full ranking)",
        test.len(),
        dataset.num_items()
    );
    println!(
        "| {:<22} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "model", "Recall@10", "NDCG@10", "MRR", "Recall@50"
    );
    println!(
        "|{}|",
        [
            "-".repeat(24),
            "-".repeat(11),
            "-".repeat(11),
            "-".repeat(11),
            "-".repeat(11)
        ]
        .join("|")
    );
    row("RecFormer (finetuned)", &result.test);
    if let Some(z) = &result.zero_shot {
        row("RecFormer (zero-shot)", z);
    }
    row("popularity", &pop);
    row("random", &rnd);

    show_recommendations::<B::InnerBackend>(&model_dir, &dataset, &test, device)?;

    let plot_path = a.out.join("finetune").join("metrics.png");
    if let Err(e) = super::plot::plot_run(&a.out.join("finetune"), &plot_path) {
        bars.say(&format!("(no plot: {e:#})"));
    }
    let secs = t_start.elapsed().as_secs_f64();
    let summary = json!({
        "seconds": secs, "quick": a.quick, "seed": a.seed, "device": a.device,
        "users": dataset.num_users(), "items": dataset.num_items(),
        "recformer": result.test, "zero_shot": result.zero_shot, "popularity": pop, "random": rnd,
        "model": model_dir.dir,
    });
    std::fs::write(
        a.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!();
    println!("demo finished in {secs:.0}s; model: {} (try `recformer recommend --model {} --data {} --history KEY,KEY`)", model_dir.dir.display(), model_dir.dir.display(), data_dir.display());
    if a.require_better_than_random
        && !(result.test.ndcg_10 > rnd.ndcg_10 && result.test.recall_10 > rnd.recall_10)
    {
        bail!(
            "the model did not beat the random baseline (NDCG@10 {:.4} vs {:.4}, Recall@10 {:.4} vs {:.4})",
            result.test.ndcg_10, rnd.ndcg_10, result.test.recall_10, rnd.recall_10
        );
    }
    Ok(())
}

fn show_recommendations<B: burn::tensor::backend::Backend>(
    md: &ModelDir,
    dataset: &FinetuneDataset,
    test: &[recformer_data::EvalExample],
    device: &B::Device,
) -> Result<()> {
    let rec = Recommender::<B>::from_dir(&md.dir, device)?;
    println!();
    println!("Top-5 recommendations for three test users (history oldest first; * = the held-out test item):");
    for ex in test.iter().take(3) {
        let history: Vec<&str> = ex
            .history
            .iter()
            .map(|&r| dataset.item_keys[r].as_str())
            .collect();
        // The official protocol: history items stay candidates, as in the evaluation above.
        let recs = rec.recommend(&history, 5, false)?;
        println!(
            "user {}:",
            dataset
                .user_keys
                .get(ex.user)
                .map(String::as_str)
                .unwrap_or("?")
        );
        for &h in ex
            .history
            .iter()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            println!("    bought: {}", dataset.items[*h].title());
        }
        for r in &recs {
            let mark = if r.row == ex.label { "*" } else { " " };
            println!("  {mark} {:.3}  {}", r.score, dataset.items[r.row].title());
        }
    }
    Ok(())
}
