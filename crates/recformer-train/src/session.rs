//! The bookkeeping that pretraining and finetuning share, written once: a run's configs, its
//! `state.json` (committed last, then unreferenced checkpoints pruned), the metrics log whose
//! lines belong to the committed state, and the config check of a resume. The two loops are the
//! policies on top (what to train, when to validate, which checkpoints to keep).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use recformer_model::RecformerConfig;

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::stepper::OptimizerStepper;

/// A run's persistent state (`state.json`).
pub(crate) trait SessionState: Serialize + DeserializeOwned {
    /// Lines of `metrics.jsonl` that belong to this state.
    fn events_logged_mut(&mut self) -> &mut usize;
    /// The checkpoint directories this state refers to (kept by [`Session::commit`]).
    fn referenced_dirs(&self) -> Vec<&str>;
    /// Prefixes of the checkpoint directories the loop writes; [`Session::commit`] deletes
    /// those the state no longer refers to.
    const CHECKPOINT_PREFIXES: &'static [&'static str];
    /// Counter of checkpoint directories written (their names are `{prefix}-{counter:05}`).
    fn counter_mut(&mut self) -> &mut usize;
    /// Records the resume checkpoint `dir`, taken after `optimizer_steps` optimizer steps with
    /// `pending` micro-batches accumulated.
    fn set_last(&mut self, dir: String, optimizer_steps: usize, pending: usize);
}

/// A run directory with the observer of its events.
#[derive(Clone, Copy)]
pub(crate) struct Session<'a> {
    pub(crate) run: &'a RunDir,
    pub(crate) progress: &'a dyn Progress,
}

impl<'a> Session<'a> {
    pub(crate) fn new(run: &'a RunDir, progress: &'a dyn Progress) -> Self {
        Self { run, progress }
    }

    /// The saved state, if the run directory has one; the training config saved with it must
    /// equal `config` (a resume with another config is refused).
    pub(crate) fn saved_state<C, S>(&self, config: &C) -> Result<Option<S>>
    where
        C: DeserializeOwned + PartialEq,
        S: SessionState,
    {
        if !self.run.has_state() {
            return Ok(None);
        }
        let saved: C = checkpoint::load_json(&self.run.path(run_dir::TRAIN_CONFIG_FILE))?;
        if &saved != config {
            return Err(Error::Resume {
                path: self.run.root().to_path_buf(),
                reason: format!(
                    "{} differs from the given config",
                    run_dir::TRAIN_CONFIG_FILE
                ),
            });
        }
        Ok(Some(checkpoint::load_json(
            &self.run.path(run_dir::STATE_FILE),
        )?))
    }

    /// A new run: voids what a killed earlier attempt logged and writes both configs.
    pub(crate) fn start<C: Serialize>(
        &self,
        config: &C,
        model_config: &RecformerConfig,
    ) -> Result<()> {
        self.run.truncate_events(0)?;
        self.run.save_json(run_dir::TRAIN_CONFIG_FILE, config)?;
        model_config.save_json(self.run.path(run_dir::MODEL_CONFIG_FILE))?;
        Ok(())
    }

    /// Continues from `state`: events logged after it was committed are cut from the log.
    pub(crate) fn resume<S: SessionState>(&self, state: &mut S) -> Result<()> {
        self.run.truncate_events(*state.events_logged_mut())
    }

    /// Appends `event` to the log, reports it, and counts it in `state`.
    pub(crate) fn log<S: SessionState>(&self, state: &mut S, event: MetricsEvent) -> Result<()> {
        self.run.log_event(&event)?;
        self.progress.on_event(&event);
        *state.events_logged_mut() += 1;
        Ok(())
    }

    /// Writes `state.json`, then deletes the checkpoint directories named `{prefix}-*` that the
    /// state no longer refers to.
    pub(crate) fn commit<S: SessionState>(&self, state: &S) -> Result<()> {
        self.run.save_json(run_dir::STATE_FILE, state)?;
        let keep = state.referenced_dirs();
        for prefix in S::CHECKPOINT_PREFIXES {
            self.run.prune(prefix, &keep)?;
        }
        Ok(())
    }

    /// Writes the resume checkpoint `last-NNNNN` and commits the state that refers to it:
    /// `write` saves what the loop trains (weights, item matrix) into the fresh directory, the
    /// stepper adds its optimizer state and pending gradients.
    pub(crate) fn save_last<S, B, M>(
        &self,
        state: &mut S,
        stepper: &mut OptimizerStepper<B, M>,
        module: &M,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()>
    where
        S: SessionState,
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let counter = state.counter_mut();
        *counter += 1;
        let name = format!("last-{:05}", *counter);
        let dir = self.run.fresh_subdir(&name)?;
        write(&dir)?;
        stepper.save(&dir, module)?;
        state.set_last(name, stepper.steps, stepper.pending);
        self.commit(state)
    }
}
