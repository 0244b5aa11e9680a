//! The official two-stage finetuning loop (`finetune.py`, spec §4.2) and its ablation variants.
//!
//! ```text
//! I0 = encode(initial model); test eval (zero-shot print)
//! stage 1: every epoch: I = encode(model) at epoch start; train one epoch against frozen I;
//!          every `verbose` epochs: val eval (with that I); best by NDCG@10 → save weights + I;
//!          patience_stage1 evaluations without improvement → stop
//! reload best weights and their I (optimizer and schedule continue)
//! stage 2: same, but I is never re-encoded; patience_stage2
//! reload best; final test eval
//! ```
//! Training samples: one per user per epoch (users shuffled), `t ~ U[0, len(train) - 1]`,
//! history `train[..t]` (may be empty), label `train[t]`. Loss: full-softmax CE of
//! `cos(seq, I) / temp`. AdamW, micro-batch × accumulation, warmup then `1 - step/total`;
//! leftover micro-batches carry their gradients into the next epoch.

mod eval;
pub mod item_matrix;
mod sampling;
mod state;
mod trainer;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use recformer_data::{FinetuneDataset, ItemTokens, Split};
use recformer_model::RecformerModel;

pub use self::eval::{encode_items_with, evaluate_split};
pub use self::sampling::sample_epoch;
pub use self::state::{BestCheckpoint, FinetuneOutcome, FinetuneResult, FinetuneState};
use self::trainer::Trainer;
use crate::checkpoint;
use crate::config::{FinetuneConfig, FinetuneVariant};
use crate::error::{Error, Result};
use crate::freeze::freeze_word_embeddings;
use crate::inputs::InputBuilder;
use crate::model_dir::{ModelDir, ModelSpec, RUN_MODEL_SUBDIR};
use crate::progress::{MetricsEvent, Progress};
use crate::run_dir::{self, RunDir};
use crate::schedule::DecayKind;
use crate::stepper::OptimizerStepper;

/// Data needed by finetuning and evaluation.
#[derive(Debug, Clone, Copy)]
pub struct FinetuneData<'a> {
    /// The model config and tokenizer (special ids, limits); exported with the best weights as
    /// `RUN/model`.
    pub spec: &'a ModelSpec,
    /// The dataset (train / val / test, item rows).
    pub dataset: &'a FinetuneDataset,
    /// Tokens of every item, indexed by item row.
    pub item_tokens: &'a [ItemTokens],
}

impl FinetuneData<'_> {
    /// Sequence construction (special ids from the tokenizer, limits from the config).
    pub fn builder(&self) -> InputBuilder {
        self.spec.input_builder()
    }
}

/// Limits of one call (not part of the run's semantics; used to interrupt runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunControl<'a> {
    /// Return after this many training epochs in this call (`None`: run to the end).
    pub stop_after_epochs: Option<usize>,
    /// A stop request (the CLI sets it on Ctrl-C): when it is `true` at a checkpoint boundary,
    /// the loop writes its resume checkpoint and returns as interrupted. Finetuning checks at
    /// the end of each epoch, pretraining after each micro-batch.
    pub stop: Option<&'a AtomicBool>,
}

impl RunControl<'_> {
    /// Whether a stop was requested through [`RunControl::stop`].
    pub fn stop_requested(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// Runs (or resumes) finetuning in `run`.
///
/// `model` is the initial model (pretrained, or freshly initialised for the "finetuning only"
/// ablation). If `run` holds a `state.json`, the run resumes from its last checkpoint (the given
/// weights are replaced by the checkpoint's) and the saved training config must equal `config`.
/// A finished run returns its stored result. The best model is exported as a model directory
/// `RUN/model` ([`ModelDir::open`] accepts the run directory itself).
pub fn finetune<B: AutodiffBackend>(
    model: RecformerModel<B>,
    config: &FinetuneConfig,
    data: &FinetuneData<'_>,
    run: &RunDir,
    device: &B::Device,
    control: &RunControl<'_>,
    progress: &dyn Progress,
) -> Result<FinetuneOutcome> {
    config.validate()?;
    let num_items = data.dataset.num_items();
    checkpoint::check_item_rows(data.item_tokens.len(), num_items)?;
    let train_users = data
        .dataset
        .train
        .values()
        .filter(|s| !s.is_empty())
        .count();
    if train_users == 0 {
        return Err(Error::InvalidData("no user has a training sequence".into()));
    }
    let model = model.with_precision(config.precision);
    let mut model = if config.fix_word_embedding {
        freeze_word_embeddings(model)
    } else {
        model
    };
    let stepper_config = config
        .optimizer
        .stepper(config.total_steps(train_users), DecayKind::Official);
    // The loss reads `forward_pooled`, which leaves the last layer's local projections out.
    let mut stepper = OptimizerStepper::<B, RecformerModel<B>>::new(stepper_config)
        .with_zero_gradients_for(RecformerModel::params_outside_pooled);

    let mut trainer = Trainer::<B>::new(config, data.spec.config(), data, run, device, progress);
    if config.variant == FinetuneVariant::ItemMatrix {
        return item_matrix::finetune_item_matrix(trainer, model, control);
    }

    let mut items: Tensor<B::InnerBackend, 2>;
    if let Some(mut state) = trainer.resume_state()? {
        if let Some(result) = &state.result {
            return finished(&trainer, result);
        }
        let last = state.last_dir.clone().ok_or_else(|| Error::Resume {
            path: run.root().to_path_buf(),
            reason: "state.json names no checkpoint".into(),
        })?;
        let dir = run.path(&last);
        let record =
            checkpoint::load_record::<B, _>(&dir.join(run_dir::MODEL_RECORD_FILE), device)?;
        model = model.load_record(record);
        items = checkpoint::load_item_matrix::<B::InnerBackend>(
            &dir.join(run_dir::ITEMS_FILE),
            device,
        )?;
        stepper = stepper.load(
            &dir,
            &model,
            state.pending_micro_batches,
            state.optimizer_steps,
            device,
        )?;
        trainer.session().resume(&mut state)?;
        trainer.state = state;
    } else {
        items = trainer.start_fresh(&model)?;
        if config.variant == FinetuneVariant::TrainingOnly {
            let ev = trainer.eval(&model, &items, Split::Val)?;
            let mut e = MetricsEvent::new("eval", "zero-shot", 0, 0);
            e.split = Some("val".into());
            e.metrics = Some(ev.metrics);
            trainer.log(e)?;
            trainer.save_best(&model, &items, ev.metrics, 0)?;
        }
    }

    if config.variant == FinetuneVariant::TrainingOnly {
        return finish(&mut trainer, model, stepper.steps);
    }

    let mut epochs_this_call = 0usize;
    if control.stop_after_epochs == Some(0) {
        trainer.save_last(&model, &items, &mut stepper)?;
        return Ok(FinetuneOutcome::Interrupted(trainer.state.clone()));
    }
    loop {
        let reencode = trainer.state.stage == 1 && config.variant != FinetuneVariant::Fix;
        if reencode {
            items = encode_items_with(&model, data, config.encode_batch_size, device, progress);
        }
        let (m, loss) = trainer.train_epoch(model, &items, &mut stepper);
        model = m;
        epochs_this_call += 1;
        let epoch = trainer.state.epoch;
        trainer.state.epoch += 1;
        let mut e = MetricsEvent::new("epoch", trainer.stage_name(), epoch, stepper.steps);
        e.loss = Some(loss);
        e.lr = Some(stepper.last_lr);
        trainer.log(e)?;

        let mut stage_over = trainer.state.epoch >= config.num_train_epochs;
        if (epoch + 1).is_multiple_of(config.verbose) {
            let ev = trainer.eval(&model, &items, Split::Val)?;
            let improved = trainer
                .state
                .best
                .as_ref()
                .is_none_or(|b| ev.metrics.ndcg_10 > b.val.ndcg_10);
            let mut e = MetricsEvent::new("eval", trainer.stage_name(), epoch, stepper.steps);
            e.split = Some("val".into());
            e.metrics = Some(ev.metrics);
            e.best = Some(improved);
            trainer.log(e)?;
            if improved {
                trainer.save_best(&model, &items, ev.metrics, epoch)?;
                trainer.state.patience_left = if trainer.state.stage == 1 {
                    config.patience_stage1
                } else {
                    config.patience_stage2
                };
            } else {
                trainer.state.patience_left = trainer.state.patience_left.saturating_sub(1);
                if trainer.state.patience_left == 0 {
                    stage_over = true;
                }
            }
        }

        if stage_over {
            if trainer.state.best.is_none() {
                // fewer epochs than `verbose`: evaluate once so that there is a best checkpoint
                let ev = trainer.eval(&model, &items, Split::Val)?;
                let mut e = MetricsEvent::new("eval", trainer.stage_name(), epoch, stepper.steps);
                e.split = Some("val".into());
                e.metrics = Some(ev.metrics);
                e.best = Some(true);
                trainer.log(e)?;
                trainer.save_best(&model, &items, ev.metrics, epoch)?;
            }
            if trainer.state.stage == 1 && config.variant == FinetuneVariant::TwoStage {
                let (m, best_items) = trainer.load_best(model)?;
                model = m;
                items = best_items;
                trainer.state.stage = 2;
                trainer.state.epoch = 0;
                trainer.state.patience_left = config.patience_stage2;
            } else {
                return finish(&mut trainer, model, stepper.steps);
            }
        }
        trainer.save_last(&model, &items, &mut stepper)?;
        if control
            .stop_after_epochs
            .is_some_and(|max| epochs_this_call >= max)
            || control.stop_requested()
        {
            return Ok(FinetuneOutcome::Interrupted(trainer.state.clone()));
        }
    }
}

/// Exports the best checkpoint as the model directory `RUN/model` (weights and item index).
fn export<B: AutodiffBackend>(trainer: &Trainer<'_, B>, result: &FinetuneResult) -> Result<()> {
    let items = result.best_model.with_file_name(run_dir::ITEMS_FILE);
    ModelDir::export(
        &trainer.run.path(RUN_MODEL_SUBDIR),
        trainer.data.spec,
        &result.best_model,
        Some(&items),
    )?;
    Ok(())
}

/// The stored result of a finished run; exports `RUN/model` first when the run has none (a run
/// finished by a version that did not export).
fn finished<B: AutodiffBackend>(
    trainer: &Trainer<'_, B>,
    result: &FinetuneResult,
) -> Result<FinetuneOutcome> {
    let config = trainer
        .run
        .path(RUN_MODEL_SUBDIR)
        .join(crate::model_dir::CONFIG_FILE);
    if !config.is_file() {
        export(trainer, result)?;
    }
    Ok(FinetuneOutcome::Finished(result.clone()))
}

/// Reloads the best checkpoint, evaluates the test split and writes `result.json`.
fn finish<B: AutodiffBackend>(
    trainer: &mut Trainer<'_, B>,
    model: RecformerModel<B>,
    optimizer_steps: usize,
) -> Result<FinetuneOutcome> {
    let (model, items) = trainer.load_best(model)?;
    let ev = trainer.eval(&model, &items, Split::Test)?;
    let best = trainer.state.best.clone();
    let mut e = MetricsEvent::new("test", "final", trainer.state.epoch, optimizer_steps);
    e.split = Some("test".into());
    e.metrics = Some(ev.metrics);
    trainer.log(e)?;
    let best_model = trainer
        .run
        .path(&best.as_ref().map(|b| b.dir.clone()).unwrap_or_default())
        .join(run_dir::MODEL_SAFETENSORS_FILE);
    let result = FinetuneResult {
        test: ev.metrics,
        test_batch_mean: ev.batch_mean,
        best_val: best.map(|b| b.val),
        zero_shot: trainer.state.zero_shot,
        best_model,
        optimizer_steps,
    };
    trainer.run.save_json(run_dir::RESULT_FILE, &result)?;
    export(trainer, &result)?;
    trainer.state.result = Some(result.clone());
    trainer.state.optimizer_steps = optimizer_steps;
    trainer.state.last_dir = None;
    trainer.commit_state()?;
    Ok(FinetuneOutcome::Finished(result))
}
