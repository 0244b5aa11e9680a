//! Argument parsing and dispatch of the `recformer` subcommands.

mod interrupt;
mod progress;

pub use progress::Bars;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// RecFormer sequential recommendation: items as text, a Longformer over user histories.
#[derive(Debug, Parser)]
#[command(name = "recformer", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (default: warnings;
    /// `RUST_LOG` overrides both).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only in the log (warnings hidden).
    #[arg(short = 'q', global = true)]
    pub log_errors_only: bool,
}

impl Cli {
    /// Whether the command only runs the model for inference (no training step): its
    /// batches run side by side (`recformer_train::waves`) and need no threaded GEMM inside.
    pub fn inference_only(&self) -> bool {
        matches!(
            self.command,
            Command::EncodeItems(_) | Command::Evaluate(_) | Command::Recommend(_)
        )
    }

    /// The log level of `-v` / `-q`.
    pub fn log_level(&self) -> log::LevelFilter {
        if self.log_errors_only {
            return log::LevelFilter::Error;
        }
        match self.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  recformer demo                                   # whole pipeline on a built-in synthetic catalogue
  recformer init --from ../shared/data/minilm-l6-v2 --out models/minilm   # start from a pretrained LM
  recformer demo --data ../shared/data/scientific-recformer
  recformer prepare finetune --reviews Industrial_and_Scientific_5.json.gz \\
      --meta meta_Industrial_and_Scientific.json.gz --out data/Scientific
  recformer tokenizer train --data data/Scientific --vocab-size 8000 --out models/tok
  recformer pretrain --data corpus/ --tokenizer models/tok --preset small --out runs/pt
  recformer finetune --model runs/pt --data data/Scientific --out runs/ft
  recformer evaluate --model runs/ft --data data/Scientific --split test --cold-start
  recformer baselines --data data/Scientific --model models/minilm --cold-start
  recformer encode-items --model runs/ft --data data/Scientific --out items.safetensors
  recformer recommend --model runs/ft --data data/Scientific --history B0001,B0002 --k 10
  recformer plot runs/ft";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start from a pretrained language model: convert an HF BERT / RoBERTa / Longformer
    /// directory into a RecFormer model directory (function-preserving; prints what each tensor is).
    Init(init::InitArgs),
    /// Raw Amazon 2018 files -> the official RecFormer layouts.
    #[command(subcommand)]
    Prepare(PrepareCommand),
    /// Tokenizer utilities.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Pretrain (item-item contrastive + MLM) on a corpus; exports RUN/model.
    Pretrain(train_cmds::PretrainArgs),
    /// Two-stage finetuning on a dataset (official recipe); exports RUN/model.
    Finetune(train_cmds::FinetuneArgs),
    /// Full-ranking evaluation; prints one JSON object (NDCG@10, Recall@10, NDCG@50, Recall@50, MRR, users).
    Evaluate(evaluate::EvaluateArgs),
    /// Reference baselines (popularity, random, text of the newest item with --model) as one JSON object.
    Baselines(baselines::BaselinesArgs),
    /// Encode every item of a dataset into an item matrix (safetensors, `item_embeddings`).
    EncodeItems(encode_items::EncodeItemsArgs),
    /// Top-k recommendations for histories, with cold-start items given as text.
    Recommend(recommend::RecommendArgs),
    /// Encoder throughput (forward and training step) with random weights on a device.
    Bench(bench_cmd::BenchArgs),
    /// Render a run's metrics.jsonl to PNG.
    Plot(plot_cmd::PlotArgs),
    /// The whole pipeline on a generated catalogue (or --data): tokenizer, pretraining,
    /// finetuning, evaluation against baselines, example recommendations.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum PrepareCommand {
    /// Finetuning layout (meta_data/smap/umap/train/val/test .json), exactly as the official process.py.
    Finetune {
        /// 5-core review file `{Category}_5.json[.gz]`.
        #[arg(long)]
        reviews: PathBuf,
        /// Metadata file `meta_{Category}.json[.gz]`.
        #[arg(long)]
        meta: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Keep this fraction of users (the official script's unseeded 20% sample); off by default.
        #[arg(long)]
        sample_users: Option<f64>,
        /// Seed of the user sample.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// In-domain pretraining corpus (meta_data.json, train.json, dev.json) from a finetuning
    /// dataset's training sequences only (never validation or test targets).
    Corpus {
        /// Dataset in the official finetuning layout.
        #[arg(long)]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Every n-th user (with at least two training items) goes to dev.json.
        #[arg(long, default_value_t = 10)]
        dev_every: usize,
    },
    /// Pretraining corpus (meta_data.json, train.json, dev.json) from several categories.
    Pretrain {
        /// Review files of the training categories.
        #[arg(long, num_args = 1.., required = true)]
        reviews: Vec<PathBuf>,
        /// Metadata files of the training categories.
        #[arg(long, num_args = 1.., required = true)]
        meta: Vec<PathBuf>,
        /// Review file of the validation category.
        #[arg(long)]
        dev_reviews: PathBuf,
        /// Metadata file of the validation category.
        #[arg(long)]
        dev_meta: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenizerCommand {
    /// Train a WordPiece tokenizer on the item text of one or more datasets.
    Train {
        /// Dataset directories (finetuning or pretraining layout) whose meta_data.json is read.
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Vocabulary size.
        #[arg(long, default_value_t = 8000)]
        vocab_size: usize,
        /// Keep case (default: lowercase, like bert-base-uncased).
        #[arg(long)]
        cased: bool,
        /// Output directory (tokenizer.json).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Prepare(p) => prepare::run(p),
        Command::Tokenizer(t) => tokenizer::run(t),
        Command::Pretrain(a) => train_cmds::run_pretrain(a),
        Command::Finetune(a) => train_cmds::run_finetune(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Baselines(a) => baselines::run(a),
        Command::EncodeItems(a) => encode_items::run(a),
        Command::Recommend(a) => recommend::run(a),
        Command::Plot(a) => plot_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Demo(a) => demo::run(a),
    }
}

mod baselines;
mod bench_cmd;
mod common;
mod demo;
mod encode_items;
mod evaluate;
mod init;
mod plot;
mod plot_cmd;
mod prepare;
mod recommend;
mod tokenizer;
mod train_cmds;
