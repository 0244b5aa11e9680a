//! Training configurations (serde; loadable from JSON or TOML; saved into the run directory).
//!
//! Every field has the official default (documented as "Default: …"); a file may give only the
//! fields it changes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Reads a config from `path`: TOML if the extension is `.toml`, JSON otherwise.
fn load_file<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(|source| Error::Toml {
            path: path.to_path_buf(),
            source,
        })
    } else {
        serde_json::from_str(&text).map_err(|e| Error::json(path, e))
    }
}

/// Pretraining settings (official `lightning_run.sh` / `LitWrapper`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Micro-batches per optimizer step. Default: 8.
    pub gradient_accumulation_steps: usize,
    /// Peak learning rate. Default: 5e-5.
    pub learning_rate: f64,
    /// AdamW weight decay. Default: 0.
    pub weight_decay: f64,
    /// AdamW epsilon (PyTorch's default; burn's is 1e-5). Default: 1e-8.
    pub adam_epsilon: f64,
    /// Linear warmup steps. Default: 0.
    pub warmup_steps: usize,
    /// Global gradient-norm clipping (`None`: off). Default: 1.0.
    pub max_grad_norm: Option<f64>,
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
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            max_epochs: 32,
            max_steps: None,
            batch_size: 16,
            gradient_accumulation_steps: 8,
            learning_rate: 5e-5,
            weight_decay: 0.0,
            adam_epsilon: 1e-8,
            warmup_steps: 0,
            max_grad_norm: Some(1.0),
            mlm_weight: None,
            mlm_probability: 0.15,
            fix_word_embedding: true,
            lean_mlm: true,
            val_check_interval: 2000,
            val_batch_size: 16,
            val_max_sequences: None,
            save_top_k: 5,
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
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.gradient_accumulation_steps == 0 {
            return Err(Error::config(
                "gradient_accumulation_steps",
                "must be at least 1",
            ));
        }
        if self.val_batch_size == 0 {
            return Err(Error::config("val_batch_size", "must be at least 1"));
        }
        if self.learning_rate.is_nan() || self.learning_rate <= 0.0 {
            return Err(Error::config("learning_rate", "must be positive"));
        }
        if !(0.0..1.0).contains(&self.mlm_probability) {
            return Err(Error::config("mlm_probability", "must be in [0, 1)"));
        }
        Ok(())
    }
}

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
#[serde(default, deny_unknown_fields)]
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
    /// Micro-batches per optimizer step. Default: 8.
    pub gradient_accumulation_steps: usize,
    /// Peak learning rate. Default: 5e-5.
    pub learning_rate: f64,
    /// AdamW weight decay. Default: 0.
    pub weight_decay: f64,
    /// AdamW epsilon. Default: 1e-8.
    pub adam_epsilon: f64,
    /// Warmup steps; afterwards the official `max(0, 1 - step / total)` decay. Default: 100.
    pub warmup_steps: usize,
    /// Global gradient-norm clipping (`None`: off, as in the official finetuning). Default: None.
    pub max_grad_norm: Option<f64>,
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
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            variant: FinetuneVariant::TwoStage,
            num_train_epochs: 128,
            schedule_epochs: None,
            batch_size: 16,
            gradient_accumulation_steps: 8,
            learning_rate: 5e-5,
            weight_decay: 0.0,
            adam_epsilon: 1e-8,
            warmup_steps: 100,
            max_grad_norm: None,
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
        for (field, v) in [
            ("batch_size", self.batch_size),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
            ),
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
        if self.learning_rate.is_nan() || self.learning_rate <= 0.0 {
            return Err(Error::config("learning_rate", "must be positive"));
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
        (batches / self.gradient_accumulation_steps) * epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_take_defaults_and_unknown_fields_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ft.toml");
        std::fs::write(&p, "num_train_epochs = 4\nvariant = \"fix\"\n").unwrap();
        let c = FinetuneConfig::from_file(&p).unwrap();
        assert_eq!(c.num_train_epochs, 4);
        assert_eq!(c.variant, FinetuneVariant::Fix);
        assert_eq!(c.warmup_steps, 100);
        assert_eq!(c.adam_epsilon, 1e-8);

        let p = dir.path().join("pt.json");
        std::fs::write(&p, r#"{"batch_size": 4, "bogus": 1}"#).unwrap();
        let err = PretrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");

        std::fs::write(&p, r#"{"batch_size": 0}"#).unwrap();
        let err = PretrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("batch_size"), "{err}");
    }

    #[test]
    fn official_total_steps() {
        let c = FinetuneConfig::default();
        // 1000 users -> 63 micro-batches -> 7 optimizer steps per epoch -> 7 * 128
        assert_eq!(c.total_steps(1000), 7 * 128);
        let both = FinetuneConfig {
            schedule_epochs: Some(256),
            ..c.clone()
        };
        assert_eq!(both.total_steps(1000), 7 * 256);
    }
}
