//! Finetuning settings and recipes.

use recformer_model::Precision;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::flat::flat_serde;
use super::{load_file, OptimizerConfig};
use crate::error::{Error, Result};

/// Which finetuning recipe to run (the paper's main method and its ablations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FinetuneVariant {
    /// The official two-stage loop (§4.2): stage 1 re-encodes the item matrix at every epoch
    /// start; stage 2 reloads the best weights and their matrix and keeps it frozen.
    #[default]
    TwoStage,
    /// Item matrix encoded once by the initial (pretrained) model and kept for the whole run
    /// (ablation "w/o two-stage finetuning"); a single stage with the stage-1 patience.
    Fix,
    /// Item matrix re-encoded at every epoch start for the whole run (stage 1 only, no frozen stage).
    Variable,
    /// No training: evaluate the initial model on val and test (zero-shot when it is pretrained).
    TrainingOnly,
    /// Encoder frozen at its initial weights; the item matrix, initialised by encoding every
    /// item (I0), is the trained parameter, against the cached vectors of every training prefix
    /// (`finetune::item_matrix`). `num_train_epochs` caps the epochs, `verbose` spaces the val
    /// evaluations, `patience_stage1` stops it; `batch_size` counts contexts.
    ItemMatrix,
}

/// Finetuning settings (official `finetune.py` / `finetune.sh`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct FinetuneConfig {
    /// Seed of sampling, shuffling and dropout. Default: 42.
    pub seed: u64,
    /// Recipe. Default: two-stage.
    pub variant: FinetuneVariant,
    /// Epochs per stage (also sizes the LR schedule, once for both stages). Default: 128.
    pub num_train_epochs: usize,
    /// Epochs that size the LR schedule instead of `num_train_epochs` (`None`: the official
    /// choice). With few epochs the official schedule reaches 0 at the end of stage 1, so stage 2
    /// cannot learn; `2 × num_train_epochs` spreads the decay over both stages. Default: None.
    pub schedule_epochs: Option<usize>,
    /// Users per micro-batch. Default: 16.
    pub batch_size: usize,
    /// AdamW, accumulation, warmup and clipping (flat keys in a file); after the warmup the
    /// official `max(0, 1 - step / total)` decay. Default: 8 micro-batches per step, lr 5e-5,
    /// no weight decay, eps 1e-8, **100 warmup steps, no clipping** (the official finetuning).
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Evaluate on val every this many epochs (`--verbose`). Default: 3.
    pub verbose: usize,
    /// Evaluations without improvement before stage 1 stops. Default: 5.
    pub patience_stage1: usize,
    /// Evaluations without improvement before stage 2 stops. Default: 3.
    pub patience_stage2: usize,
    /// Evaluation batch size. Default: 16.
    pub eval_batch_size: usize,
    /// Item-encoding batch size. Default: 16.
    pub encode_batch_size: usize,
    /// Items per chunk of the full-softmax loss. Default: 65536.
    pub loss_chunk_size: usize,
    /// Freeze the word embeddings. Default: false.
    pub fix_word_embedding: bool,
    /// Remove history items from the ranking (official: not removed). Default: false.
    pub exclude_history: bool,
    /// Evaluate the test split before training (the official zero-shot print). Default: true.
    pub initial_test_eval: bool,
    /// Cap on users per *validation* evaluation (`None`: all; for quick experiments). The test
    /// evaluations (zero-shot and final) always use every user. Default: None.
    pub max_eval_users: Option<usize>,
    /// Float type of the encoder's products and activations: `f32`, or `bf16` / `f16` on a
    /// backend with half-precision tensors (Flex, CUDA; f16 on wgpu); parameters, the optimizer's state
    /// and the losses stay f32 (`recformer_model::precision`). Default: f32.
    pub precision: Precision,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            variant: FinetuneVariant::TwoStage,
            num_train_epochs: 128,
            schedule_epochs: None,
            batch_size: 16,
            optimizer: OptimizerConfig::default(),
            verbose: 3,
            patience_stage1: 5,
            patience_stage2: 3,
            eval_batch_size: 16,
            encode_batch_size: 16,
            loss_chunk_size: 65536,
            fix_word_embedding: false,
            exclude_history: false,
            initial_test_eval: true,
            max_eval_users: None,
            precision: Precision::F32,
        }
    }
}

impl FinetuneConfig {
    /// Loads a config file (TOML or JSON, by extension); missing fields take their defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = load_file(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks value ranges.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        for (field, v) in [
            ("batch_size", self.batch_size),
            ("verbose", self.verbose),
            ("eval_batch_size", self.eval_batch_size),
            ("encode_batch_size", self.encode_batch_size),
            ("loss_chunk_size", self.loss_chunk_size),
            ("patience_stage1", self.patience_stage1),
            ("patience_stage2", self.patience_stage2),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if self.schedule_epochs == Some(0) {
            return Err(Error::config("schedule_epochs", "must be at least 1"));
        }
        Ok(())
    }

    /// Official schedule length: `int(ceil(users / batch) / accumulation) * epochs`, computed
    /// once for one stage and shared by both (`epochs` = `schedule_epochs` when set).
    pub fn total_steps(&self, num_train_users: usize) -> usize {
        let batches = num_train_users.div_ceil(self.batch_size);
        let epochs = self.schedule_epochs.unwrap_or(self.num_train_epochs);
        (batches / self.optimizer.gradient_accumulation_steps) * epochs
    }
}

flat_serde!(FinetuneConfig);
