//! Pretraining settings.

use recformer_model::Precision;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::flat::flat_serde;
use super::{load_file, OptimizerConfig};
use crate::error::{Error, Result};

/// Pretraining settings (official `lightning_run.sh` / `LitWrapper`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct PretrainConfig {
    /// Seed of sampling, masking, shuffling and dropout. Default: 42.
    pub seed: u64,
    /// Epochs over the training sequences. Default: 32.
    pub max_epochs: usize,
    /// Stop after this many optimizer steps (`None`: run all epochs). Default: None.
    pub max_steps: Option<usize>,
    /// Sequences per micro-batch (= in-batch negatives of the IIC loss). Default: 16
    /// (the official 64 came from gathering 4 GPUs).
    pub batch_size: usize,
    /// AdamW, accumulation, warmup and clipping (flat keys in a file). Default: 8 micro-batches
    /// per step, lr 5e-5, no weight decay, eps 1e-8, **no warmup, clipping at 1.0**.
    #[serde(flatten)]
    pub optimizer: OptimizerConfig,
    /// Weight of each MLM term (`None`: the model config's `mlm_weight`, 0.1; `0`: IIC-only
    /// pretraining, which skips the two masked encoder passes). Default: None.
    pub mlm_weight: Option<f64>,
    /// Share of tokens selected for MLM (whole words). Default: 0.15.
    pub mlm_probability: f64,
    /// Freeze the word embeddings (`--fix_word_embedding`). Default: true.
    pub fix_word_embedding: bool,
    /// Compute MLM logits only at masked positions (same loss, less memory). Default: true.
    pub lean_mlm: bool,
    /// Validate (in-batch accuracy on dev) every this many micro-batches; 0 = only at epoch ends.
    /// Default: 2000.
    pub val_check_interval: usize,
    /// Micro-batch size of validation. Default: 16.
    pub val_batch_size: usize,
    /// Cap on dev sequences used per validation (`None`: all). Default: None.
    pub val_max_sequences: Option<usize>,
    /// Best checkpoints (by dev accuracy) kept in the run directory. Default: 5.
    pub save_top_k: usize,
    /// Float type of the encoder's products and activations: `f32`, or `bf16` / `f16` on a
    /// backend with half-precision tensors (Flex, CUDA; f16 on wgpu); parameters, the optimizer's state
    /// and the losses stay f32 (`recformer_model::precision`). Default: f32.
    pub precision: Precision,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            max_epochs: 32,
            max_steps: None,
            batch_size: 16,
            optimizer: OptimizerConfig {
                warmup_steps: 0,
                max_grad_norm: Some(1.0),
                ..OptimizerConfig::default()
            },
            mlm_weight: None,
            mlm_probability: 0.15,
            fix_word_embedding: true,
            lean_mlm: true,
            val_check_interval: 2000,
            val_batch_size: 16,
            val_max_sequences: None,
            save_top_k: 5,
            precision: Precision::F32,
        }
    }
}

impl PretrainConfig {
    /// Loads a config file (TOML or JSON, by extension); missing fields take their defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = load_file(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks value ranges.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.val_batch_size == 0 {
            return Err(Error::config("val_batch_size", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.mlm_probability) {
            return Err(Error::config("mlm_probability", "must be in [0, 1)"));
        }
        Ok(())
    }
}

flat_serde!(PretrainConfig);
