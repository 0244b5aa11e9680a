//! Serialisable finetuning run state: the best-checkpoint record, `state.json`, `result.json`
//! and the outcome of a call.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::session::SessionState;

use crate::metrics::Metrics;

/// The best checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    /// Validation metrics that made it best.
    pub val: Metrics,
    /// Stage (1 or 2) it was found in.
    pub stage: u8,
    /// Epoch (0-based, within the stage) after which it was evaluated.
    pub epoch: usize,
    /// Directory name inside the run directory.
    pub dir: String,
}

/// Persistent trainer state (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneState {
    /// Current stage (1 or 2).
    pub stage: u8,
    /// Next epoch to run within the stage.
    pub epoch: usize,
    /// Optimizer steps so far (the scheduler state).
    pub optimizer_steps: usize,
    /// Micro-batches accumulated but not yet applied.
    pub pending_micro_batches: usize,
    /// Evaluations left before the current stage stops.
    pub patience_left: usize,
    /// Best checkpoint so far.
    pub best: Option<BestCheckpoint>,
    /// Directory of the resume checkpoint.
    pub last_dir: Option<String>,
    /// Number of lines of `metrics.jsonl` that belong to this state.
    pub events_logged: usize,
    /// Counter for checkpoint directory names.
    pub counter: usize,
    /// Zero-shot test metrics (before training), if computed.
    pub zero_shot: Option<Metrics>,
    /// Final result, once finished.
    pub result: Option<FinetuneResult>,
}

/// Final numbers of a finetuning run (`result.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneResult {
    /// Test metrics of the best checkpoint, mean over users.
    pub test: Metrics,
    /// Same, official mean of batch means.
    pub test_batch_mean: Metrics,
    /// Validation metrics of the best checkpoint.
    pub best_val: Option<Metrics>,
    /// Zero-shot test metrics (initial model), if computed.
    pub zero_shot: Option<Metrics>,
    /// Path of the best model export (HF names, includes `item_embedding.weight`).
    pub best_model: PathBuf,
    /// Optimizer steps taken.
    pub optimizer_steps: usize,
}

/// What [`finetune`](super::finetune) returns.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum FinetuneOutcome {
    /// The run finished; final numbers.
    Finished(FinetuneResult),
    /// Stopped early by [`RunControl`](super::RunControl); call again with the same run
    /// directory to resume.
    Interrupted(FinetuneState),
}

impl SessionState for FinetuneState {
    fn events_logged_mut(&mut self) -> &mut usize {
        &mut self.events_logged
    }

    const CHECKPOINT_PREFIXES: &'static [&'static str] = &["last-", "best-"];

    fn counter_mut(&mut self) -> &mut usize {
        &mut self.counter
    }

    fn set_last(&mut self, dir: String, optimizer_steps: usize, pending: usize) {
        self.last_dir = Some(dir);
        self.optimizer_steps = optimizer_steps;
        self.pending_micro_batches = pending;
    }

    fn referenced_dirs(&self) -> Vec<&str> {
        self.last_dir
            .iter()
            .map(String::as_str)
            .chain(self.best.iter().map(|b| b.dir.as_str()))
            .collect()
    }
}
