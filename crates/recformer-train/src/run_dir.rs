//! Run directory layout and the metrics log.
//!
//! ```text
//! <run>/
//!   train_config.json      resolved PretrainConfig / FinetuneConfig
//!   model_config.json      RecformerConfig of the trained model
//!   metrics.jsonl          one MetricsEvent per line (epochs, evaluations, final test)
//!   state.json             trainer state (points at the current checkpoint directories)
//!   last-<n>/              resume checkpoint: model.mpk, optimizer.mpk, items.safetensors,
//!                          pending_grads.safetensors
//!   best-<n>/              best checkpoint: model.mpk, model.safetensors (HF names, with
//!                          item_embedding.weight when finetuning), items.safetensors
//!   result.json            final metrics (finetuning) once the run has finished
//! ```
//! `state.json` is written (atomically) only after the directory it points to is complete, and
//! superseded directories are deleted afterwards, so a killed run always resumes from a
//! consistent checkpoint.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::MetricsEvent;

/// File name of the resolved training config.
pub const TRAIN_CONFIG_FILE: &str = "train_config.json";
/// File name of the model config.
pub const MODEL_CONFIG_FILE: &str = "model_config.json";
/// File name of the metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// File name of the trainer state.
pub const STATE_FILE: &str = "state.json";
/// File name of the final result.
pub const RESULT_FILE: &str = "result.json";
/// Model record (burn, parameter ids included) inside a checkpoint directory.
pub const MODEL_RECORD_FILE: &str = "model.mpk";
/// Optimizer record inside a checkpoint directory.
pub const OPTIMIZER_RECORD_FILE: &str = "optimizer.mpk";
/// Item matrix inside a checkpoint directory.
pub const ITEMS_FILE: &str = "items.safetensors";
/// HF-named model export inside a checkpoint directory.
pub const MODEL_SAFETENSORS_FILE: &str = "model.safetensors";
/// Not-yet-applied accumulated gradients inside a checkpoint directory.
pub const PENDING_GRADS_FILE: &str = "pending_grads.safetensors";

/// A training run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) a run directory.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Self { root })
    }

    /// The directory path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether a trainer state exists (the run can be resumed).
    pub fn has_state(&self) -> bool {
        self.path(STATE_FILE).is_file()
    }

    /// Creates (empty) the checkpoint sub-directory `name`, removing leftovers of a killed save.
    pub fn fresh_subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.path(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    /// Deletes checkpoint directories starting with `prefix` except those in `keep`.
    pub fn prune(&self, prefix: &str, keep: &[&str]) -> Result<()> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && !keep.contains(&name.as_str()) && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
        Ok(())
    }

    /// Appends one event to `metrics.jsonl` (flushed and synced).
    pub fn log_event(&self, event: &MetricsEvent) -> Result<()> {
        let path = self.path(METRICS_FILE);
        let mut line = serde_json::to_vec(event).map_err(|e| Error::json(&path, e))?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(&line).map_err(|e| Error::io(&path, e))?;
        f.sync_data().map_err(|e| Error::io(&path, e))?;
        Ok(())
    }

    /// Reads all events of `metrics.jsonl` (empty if the file does not exist).
    pub fn read_events(&self) -> Result<Vec<MetricsEvent>> {
        let path = self.path(METRICS_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| Error::json(&path, e)))
            .collect()
    }

    /// Rewrites `metrics.jsonl` keeping only the first `n` events (used on resume, to drop
    /// events logged after the checkpoint being resumed).
    pub fn truncate_events(&self, n: usize) -> Result<()> {
        let events = self.read_events()?;
        if events.len() <= n {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for e in &events[..n] {
            let path = self.path(METRICS_FILE);
            bytes.extend(serde_json::to_vec(e).map_err(|err| Error::json(&path, err))?);
            bytes.push(b'\n');
        }
        crate::checkpoint::write_atomic(&self.path(METRICS_FILE), &bytes)
    }

    /// Saves a JSON document atomically under `root/name`.
    pub fn save_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        crate::checkpoint::save_json(&self.path(name), value)
    }
}
