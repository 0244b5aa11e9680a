//! Progress observer: the library reports what it is doing through [`Progress`] and prints nothing.
//!
//! The CLI implements it with `indicatif` bars; tests and quiet mode use [`NoProgress`].

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// One line of the run's `metrics.jsonl` log, also sent to [`Progress::on_event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsEvent {
    /// What happened: `"epoch"` (end of a training epoch), `"eval"` (an evaluation),
    /// `"validation"` (pretraining dev accuracy) or `"test"` (final test evaluation).
    pub kind: String,
    /// Training stage: `"pretrain"`, `"zero-shot"`, `"stage1"`, `"stage2"` or `"final"`.
    pub stage: String,
    /// Epoch index (0-based) within the stage.
    pub epoch: usize,
    /// Number of optimizer steps done so far (global, across stages).
    pub step: usize,
    /// Mean training loss over the epoch / validation window, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub loss: Option<f64>,
    /// Evaluated split (`"val"`, `"test"`, `"dev"`), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub split: Option<String>,
    /// Ranking metrics, if this is an evaluation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metrics: Option<Metrics>,
    /// In-batch accuracy (pretraining), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accuracy: Option<f64>,
    /// Learning rate of the last optimizer step, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lr: Option<f64>,
    /// Whether this evaluation produced a new best checkpoint.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub best: Option<bool>,
}

impl MetricsEvent {
    /// A new event with only kind, stage, epoch and step filled in.
    pub fn new(kind: &str, stage: &str, epoch: usize, step: usize) -> Self {
        Self {
            kind: kind.to_string(),
            stage: stage.to_string(),
            epoch,
            step,
            loss: None,
            split: None,
            metrics: None,
            accuracy: None,
            lr: None,
            best: None,
        }
    }
}

/// Observer of long-running work (epochs, item encoding, evaluation).
///
/// Calls are nested at most one level deep: `on_start` → `on_advance`* → `on_finish`.
pub trait Progress {
    /// A task named `label` with `total` units starts.
    fn on_start(&self, label: &str, total: u64);
    /// `n` more units of the current task are done.
    fn on_advance(&self, n: u64);
    /// The current task is finished.
    fn on_finish(&self);
    /// An evaluation / epoch summary was produced (also written to `metrics.jsonl`).
    fn on_event(&self, _event: &MetricsEvent) {}
}

/// A [`Progress`] that ignores everything (tests, quiet mode).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_start(&self, _label: &str, _total: u64) {}
    fn on_advance(&self, _n: u64) {}
    fn on_finish(&self) {}
}
