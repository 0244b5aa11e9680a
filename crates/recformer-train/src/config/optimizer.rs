//! The optimizer settings both recipes share (AdamW, accumulation, warmup, clipping).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schedule::{DecayKind, LrSchedule};
use crate::stepper::StepperConfig;

/// AdamW with gradient accumulation, linear warmup and global-norm clipping, as the official
/// `torch.optim.AdamW` + Lightning / `finetune.py` loops use them.
///
/// A recipe embeds it flattened: in a recipe file these are top-level keys
/// (`learning_rate = 1e-4`), and a key the file leaves out takes the *recipe's* default
/// ([`PretrainConfig`](super::PretrainConfig) and [`FinetuneConfig`](super::FinetuneConfig)
/// differ in `warmup_steps` and `max_grad_norm`). `Default` here is the finetuning recipe's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Micro-batches per optimizer step. Default: 8.
    pub gradient_accumulation_steps: usize,
    /// Peak learning rate. Default: 5e-5.
    pub learning_rate: f64,
    /// AdamW weight decay. Default: 0.
    pub weight_decay: f64,
    /// AdamW epsilon (PyTorch's default; burn's is 1e-5). Default: 1e-8.
    pub adam_epsilon: f64,
    /// Linear warmup steps. Default: 100 (finetuning; pretraining: 0).
    pub warmup_steps: usize,
    /// Global gradient-norm clipping (`None`: off). Default: None (finetuning; pretraining: 1.0).
    pub max_grad_norm: Option<f64>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            gradient_accumulation_steps: 8,
            learning_rate: 5e-5,
            weight_decay: 0.0,
            adam_epsilon: 1e-8,
            warmup_steps: 100,
            max_grad_norm: None,
        }
    }
}

impl OptimizerConfig {
    /// Checks value ranges.
    pub fn validate(&self) -> Result<()> {
        if self.gradient_accumulation_steps == 0 {
            return Err(Error::config(
                "gradient_accumulation_steps",
                "must be at least 1",
            ));
        }
        if self.learning_rate.is_nan() || self.learning_rate <= 0.0 {
            return Err(Error::config("learning_rate", "must be positive"));
        }
        if self.max_grad_norm.is_some_and(|m| m.is_nan() || m <= 0.0) {
            return Err(Error::config("max_grad_norm", "must be positive"));
        }
        Ok(())
    }

    /// The stepper of a run of `total_steps` optimizer steps with this warmup and `decay`.
    pub fn stepper(&self, total_steps: usize, decay: DecayKind) -> StepperConfig {
        StepperConfig {
            schedule: LrSchedule {
                base_lr: self.learning_rate,
                warmup_steps: self.warmup_steps,
                total_steps,
                decay,
            },
            accumulation: self.gradient_accumulation_steps,
            max_grad_norm: self.max_grad_norm,
            weight_decay: self.weight_decay,
            adam_epsilon: self.adam_epsilon,
        }
    }
}
