//! Serialisable pretraining run state: kept checkpoints, `state.json` and the outcome of a call.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::session::SessionState;

/// One kept checkpoint (top-k by dev accuracy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptCheckpoint {
    /// Dev in-batch accuracy.
    pub accuracy: f64,
    /// Optimizer steps when it was saved.
    pub step: usize,
    /// Epoch it was saved in.
    pub epoch: usize,
    /// Directory name in the run directory (holds `model.safetensors`, HF names with `lm_head.*`).
    pub dir: String,
}

/// Persistent pretraining state (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainState {
    /// Current epoch.
    pub epoch: usize,
    /// Next micro-batch index within the epoch.
    pub batch_in_epoch: usize,
    /// Optimizer steps so far.
    pub optimizer_steps: usize,
    /// Micro-batches accumulated but not yet applied.
    pub pending_micro_batches: usize,
    /// Kept checkpoints, best first.
    pub top_k: Vec<KeptCheckpoint>,
    /// Resume checkpoint directory.
    pub last_dir: Option<String>,
    /// Lines of `metrics.jsonl` that belong to this state.
    pub events_logged: usize,
    /// Counter for directory names.
    pub counter: usize,
    /// Whether the run is complete.
    pub finished: bool,
}

/// What [`pretrain`](super::pretrain) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainOutcome {
    /// Final state (`finished == false` when stopped by
    /// [`RunControl`](crate::finetune::RunControl)).
    pub state: PretrainState,
    /// Path of the best checkpoint's `model.safetensors`, if any validation ran.
    pub best_model: Option<PathBuf>,
}

impl SessionState for PretrainState {
    fn events_logged_mut(&mut self) -> &mut usize {
        &mut self.events_logged
    }

    const CHECKPOINT_PREFIXES: &'static [&'static str] = &["last-", "ckpt-"];

    fn counter_mut(&mut self) -> &mut usize {
        &mut self.counter
    }

    fn set_last(&mut self, dir: String, optimizer_steps: usize, pending: usize) {
        self.last_dir = Some(dir);
        self.optimizer_steps = optimizer_steps;
        self.pending_micro_batches = pending;
    }

    fn referenced_dirs(&self) -> Vec<&str> {
        self.top_k
            .iter()
            .map(|k| k.dir.as_str())
            .chain(self.last_dir.as_deref())
            .collect()
    }
}
