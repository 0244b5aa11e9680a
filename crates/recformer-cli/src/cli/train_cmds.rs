//! `recformer pretrain` and `recformer finetune`: run (or resume) training in a run directory,
//! then export its best model as a model directory `RUN/model/`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use recformer_data::{PretrainCorpus, RecformerTokenizer};
use recformer_model::{LongformerLMHead, RecformerForPretraining};
use recformer_train::model_dir::{ModelDir, ModelSpec};
use recformer_train::{
    finetune, pretrain, FinetuneConfig, FinetuneData, FinetuneOutcome, FinetuneVariant,
    PretrainConfig, PretrainData, RunDir,
};

use super::common::{
    check_precision, load_catalogue, load_config, parse_device, preset, with_autodiff_backend,
};
use super::{interrupt, Bars};

/// Options shared by the training commands.
#[derive(Debug, clap::Args)]
pub struct CommonTrainArgs {
    /// Run directory (created; an existing run with a state.json is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// Training config file (TOML or JSON); missing fields take their defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config field, e.g. `--set num_train_epochs=10` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Seed (overrides the config).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sequences per micro-batch (overrides the config).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Micro-batches per optimizer step (overrides the config).
    #[arg(long)]
    pub accumulation: Option<usize>,
    /// Peak learning rate (overrides the config).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Epochs (per stage for finetuning; overrides the config).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars (evaluation lines still go to stderr unless --quiet).
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `pretrain`.
#[derive(Debug, clap::Args)]
pub struct PretrainArgs {
    /// Pretraining corpus (meta_data.json, train.json, dev.json).
    #[arg(long)]
    pub data: PathBuf,
    /// Start from this model directory (else a fresh model from --preset and --tokenizer).
    #[arg(long, conflicts_with_all = ["tokenizer", "preset"])]
    pub model: Option<PathBuf>,
    /// Tokenizer directory for a fresh model (tokenizer.json, vocab.json + merges.txt, or vocab.txt).
    #[arg(long, required_unless_present = "model")]
    pub tokenizer: Option<PathBuf>,
    /// Architecture of a fresh model: base, mini, minilm, small or tiny.
    #[arg(long, default_value = "mini")]
    pub preset: String,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[command(flatten)]
    pub common: CommonTrainArgs,
}

/// Arguments of `finetune`.
#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// Model directory (pretrained) or a pretraining run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset in the official finetuning layout.
    #[arg(long)]
    pub data: PathBuf,
    /// two-stage (official), fix, variable, training-only (zero-shot evaluation) or
    /// item-matrix (encoder frozen, the item matrix trained; use a higher --lr, e.g. 3e-4).
    #[arg(long, value_parser = ["two-stage", "fix", "variable", "training-only", "item-matrix"])]
    pub variant: Option<String>,
    /// Ignore the model's weights and start from a random initialisation with its config
    /// (the "fine-tuning only" ablation).
    #[arg(long)]
    pub from_scratch: bool,
    #[command(flatten)]
    pub common: CommonTrainArgs,
}

fn pretrain_config(a: &PretrainArgs) -> Result<PretrainConfig> {
    let c = &a.common;
    let mut cfg = load_config(c.config.as_deref(), PretrainConfig::from_file, &c.sets)?;
    c.apply(Overridable {
        seed: &mut cfg.seed,
        batch_size: &mut cfg.batch_size,
        accumulation: &mut cfg.optimizer.gradient_accumulation_steps,
        lr: &mut cfg.optimizer.learning_rate,
        epochs: &mut cfg.max_epochs,
    });
    if let Some(v) = a.max_steps {
        cfg.max_steps = Some(v);
    }
    if a.model.is_none() && cfg.fix_word_embedding {
        // The official default freezes the word embeddings of a *pretrained* Longformer; on a
        // fresh model it would keep them random for the whole run.
        let explicit = c.sets.iter().any(|s| {
            s.split_once('=')
                .is_some_and(|(k, _)| k.trim() == "fix_word_embedding")
        }) || c.config.as_deref().is_some_and(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.contains("fix_word_embedding"))
        });
        if explicit {
            bail!(
                "fix_word_embedding = true on a fresh model would freeze random word embeddings for \
                 the whole run; set it to false, or start from a pretrained model \
                 (`recformer init --from HF_DIR --out DIR`, then `pretrain --model DIR`)"
            );
        }
        eprintln!("fresh model: its word embeddings are trained (fix_word_embedding = false)");
        cfg.fix_word_embedding = false;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn finetune_config(a: &FinetuneArgs) -> Result<FinetuneConfig> {
    let c = &a.common;
    let mut cfg = load_config(c.config.as_deref(), FinetuneConfig::from_file, &c.sets)?;
    c.apply(Overridable {
        seed: &mut cfg.seed,
        batch_size: &mut cfg.batch_size,
        accumulation: &mut cfg.optimizer.gradient_accumulation_steps,
        lr: &mut cfg.optimizer.learning_rate,
        epochs: &mut cfg.num_train_epochs,
    });
    if let Some(v) = &a.variant {
        cfg.variant = serde_json::from_value(serde_json::Value::String(v.clone()))?;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The config fields that the common flags override (pretraining and finetuning name some of
/// them differently).
struct Overridable<'a> {
    seed: &'a mut u64,
    batch_size: &'a mut usize,
    accumulation: &'a mut usize,
    lr: &'a mut f64,
    epochs: &'a mut usize,
}

impl CommonTrainArgs {
    /// Applies `--seed`, `--batch-size`, `--accumulation`, `--lr` and `--epochs` where given.
    fn apply(&self, f: Overridable<'_>) {
        fn set<T: Copy>(flag: Option<T>, field: &mut T) {
            if let Some(v) = flag {
                *field = v;
            }
        }
        set(self.seed, f.seed);
        set(self.batch_size, f.batch_size);
        set(self.accumulation, f.accumulation);
        set(self.lr, f.lr);
        set(self.epochs, f.epochs);
    }
}

pub fn run_pretrain(a: PretrainArgs) -> Result<()> {
    let cfg = pretrain_config(&a)?;
    interrupt::install();
    let kind = parse_device(&a.common.device)?;
    check_precision(kind, cfg.precision)?;
    with_autodiff_backend!(kind, B, device, {
        pretrain_on::<B>(&a, &cfg, &device).map(|_| ())
    })
}

pub fn run_finetune(a: FinetuneArgs) -> Result<()> {
    let cfg = finetune_config(&a)?;
    interrupt::install();
    let kind = parse_device(&a.common.device)?;
    check_precision(kind, cfg.precision)?;
    with_autodiff_backend!(kind, B, device, {
        finetune_on::<B>(&a, &cfg, &device, true).map(|_| ())
    })
}

/// Pretrains and exports `RUN/model`. Returns the exported model directory.
pub fn pretrain_on<B: AutodiffBackend>(
    a: &PretrainArgs,
    cfg: &PretrainConfig,
    device: &B::Device,
) -> Result<ModelDir> {
    let bars = Bars::new(a.common.quiet);
    let (spec, model) = match &a.model {
        Some(dir) => {
            let md = ModelDir::open(dir)?;
            let loaded = md.load::<B>(device)?;
            let lm_head = loaded
                .lm_head
                .unwrap_or_else(|| LongformerLMHead::init(md.config(), device));
            (
                md.spec,
                RecformerForPretraining {
                    longformer: loaded.model,
                    lm_head,
                },
            )
        }
        None => {
            let tok_dir = a
                .tokenizer
                .as_ref()
                .expect("clap requires --tokenizer without --model");
            let tokenizer = RecformerTokenizer::from_dir(tok_dir)
                .with_context(|| format!("loading the tokenizer from {}", tok_dir.display()))?;
            let spec = ModelSpec::fit(preset(&a.preset)?, tokenizer)?;
            let m = spec.config().init_pretraining::<B>(device);
            (spec, m)
        }
    };
    let dcfg = spec.data_config();
    let t0 = Instant::now();
    let corpus = PretrainCorpus::load(&a.data)
        .with_context(|| format!("loading corpus {}", a.data.display()))?;
    let tokens = spec.tokenizer().encode_catalogue(&corpus.items, &dcfg)?;
    bars.say(&format!(
        "corpus {}: {} train / {} dev sequences, {} items, tokenised in {:.1}s",
        a.data.display(),
        corpus.train.len(),
        corpus.dev.len(),
        corpus.num_items(),
        t0.elapsed().as_secs_f64()
    ));
    let data = PretrainData {
        spec: &spec,
        corpus: &corpus,
        item_tokens: &tokens,
    };
    let run = RunDir::create(&a.common.out)?;
    let outcome = pretrain(
        model,
        cfg,
        &data,
        &run,
        device,
        &interrupt::control(),
        &bars,
    )?;
    if !outcome.state.finished {
        bail!("pretraining interrupted; run the same command again to resume");
    }
    if outcome.best_model.is_none() {
        bail!("pretraining ran no validation, so there is no best checkpoint to export (set val_check_interval or run at least one epoch)");
    }
    let md = ModelDir::open(run.root())?;
    println!(
        "pretraining done: {} optimizer steps in {:.0}s; best checkpoint exported to {}",
        outcome.state.optimizer_steps,
        t0.elapsed().as_secs_f64(),
        md.dir.display()
    );
    Ok(md)
}

/// Finetunes (the library exports `RUN/model`: weights + item index). Returns the result and the
/// model dir.
pub fn finetune_on<B: AutodiffBackend>(
    a: &FinetuneArgs,
    cfg: &FinetuneConfig,
    device: &B::Device,
    print_result: bool,
) -> Result<(recformer_train::FinetuneResult, ModelDir)> {
    let bars = Bars::new(a.common.quiet);
    let md = ModelDir::open(&a.model)?;
    let cat = load_catalogue(&a.data, md.tokenizer(), &md.data_config(), &|m| bars.say(m))?;
    let model = if a.from_scratch {
        bars.say("--from-scratch: random initialisation (fine-tuning-only ablation)");
        md.config().init_model::<B>(device)
    } else {
        md.load_without_mlm_head::<B>(device)?.model
    };
    let data = FinetuneData {
        spec: &md.spec,
        dataset: &cat.dataset,
        item_tokens: &cat.tokens,
    };
    let run = RunDir::create(&a.common.out)?;
    if run.has_state() {
        bars.say(&format!("resuming the run in {}", run.root().display()));
    }
    let t0 = Instant::now();
    let outcome = finetune(
        model,
        cfg,
        &data,
        &run,
        device,
        &interrupt::control(),
        &bars,
    )?;
    let FinetuneOutcome::Finished(result) = outcome else {
        bail!("finetuning stopped before the end; run the same command again to resume");
    };
    let exported = ModelDir::open(run.root())?;
    let mut out = serde_json::json!({
        "test": result.test,
        "best_val": result.best_val,
        "zero_shot_test": result.zero_shot,
        "optimizer_steps": result.optimizer_steps,
        "seconds": t0.elapsed().as_secs_f64(),
        "variant": cfg.variant,
        "model": exported.dir,
    });
    if cfg.variant == FinetuneVariant::TrainingOnly {
        out["note"] = "training-only: no finetuning, test = zero-shot".into();
    }
    if print_result {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok((result, exported))
}
